/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - tripgen-scheduler's HTTP + WebSocket server (civetweb): the EAS
 * queue API of every configured service, and /healthz.
 */
#ifndef SCH_SERVER_H
#define SCH_SERVER_H

#include "sch_config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sch_server_s sch_server_t;

/**
 * sch_server_start() - listen and serve
 * @conf:     the validated config (copied)
 * @port_out: set to the bound port
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: the server, or NULL.
 */
sch_server_t *sch_server_start(const struct sch_conf *conf, int *port_out, char *errstr,
                               size_t n);

/**
 * sch_server_stop() - end watches, stop serving, free (NULL-safe)
 * @s: the server
 */
void sch_server_stop(sch_server_t *s);

#endif
