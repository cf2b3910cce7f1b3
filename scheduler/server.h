/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - tripgen-scheduler's HTTP + WebSocket server (civetweb): the EAS
 * queue API of every configured service, /healthz, and the autoscaling
 * numbers (/metrics, /v1/autoscale).
 */
#ifndef SCH_SERVER_H
#define SCH_SERVER_H

#include "control.h"
#include "sch_config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sch_server_s sch_server_t;

/**
 * sch_server_start() - listen and serve
 * @conf:     the validated config (copied)
 * @control:  the control loops, whose readings /metrics and /v1/autoscale serve
 * @port_out: set to the bound port
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: the server, or NULL.
 */
sch_server_t *sch_server_start(const struct sch_conf *conf, sch_control_t *control,
                               int *port_out, char *errstr, size_t n);

/**
 * sch_server_stop() - end watches, stop serving, free (NULL-safe)
 * @s: the server
 */
void sch_server_stop(sch_server_t *s);

#endif
