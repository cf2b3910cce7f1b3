/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.h - the worker's operations endpoint (civetweb): /metrics in the
 * Prometheus text format, /healthz (the process is alive) and /readyz (the
 * queue is reachable, the stages are ready and the worker is not draining).
 */
#ifndef TG_WORKER_HTTP_H
#define TG_WORKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tg_http_s tg_http_t;

/* Answers /readyz: true when ready, else false with the reason in why. */
typedef bool (*tg_ready_fn)(void *ctx, char *why, size_t n);

/**
 * tg_http_start() - listen and serve
 * @listen:   "host:port" (port 0: any free port)
 * @env:      env label of the metrics
 * @ready:    readiness callback
 * @ctx:      its argument
 * @port_out: set to the bound port
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: the server, or NULL.
 */
tg_http_t *tg_http_start(const char *listen, const char *env, tg_ready_fn ready, void *ctx,
                         int *port_out, char *errstr, size_t n);

/**
 * tg_http_stop() - stop serving and free (NULL-safe)
 * @h: the server
 */
void tg_http_stop(tg_http_t *h);

#endif
