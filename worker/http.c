/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - /metrics, /healthz and /readyz on civetweb, two threads, bound
 * to the configured host:port only.
 */
#include "http.h"
#include "metrics.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tg_http_s {
  struct mg_context *ctx;
  char env[64];
  tg_ready_fn ready;
  void *ready_ctx;
};

static void reply(struct mg_connection *c, int status, const char *type, const char *body,
                  size_t len) {
  mg_printf(c,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            status, status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Error", type,
            len);
  mg_write(c, body, len);
}

static int on_metrics(struct mg_connection *c, void *data) {
  struct tg_http_s *h = data;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    reply(c, 500, "text/plain", "out of memory\n", 14);
    return 500;
  }
  tg_metrics_render(f, h->env);
  fclose(f);
  reply(c, 200, "text/plain; version=0.0.4", buf, len);
  free(buf);
  return 200;
}

static int on_healthz(struct mg_connection *c, void *data) {
  (void)data;
  reply(c, 200, "text/plain", "ok\n", 3);
  return 200;
}

static int on_readyz(struct mg_connection *c, void *data) {
  struct tg_http_s *h = data;
  char why[256] = "", body[300];
  bool ok = h->ready(h->ready_ctx, why, sizeof(why));
  int len = snprintf(body, sizeof(body), "%s\n", ok ? "ready" : why);
  reply(c, ok ? 200 : 503, "text/plain", body, (size_t)len);
  return ok ? 200 : 503;
}

tg_http_t *tg_http_start(const char *listen, const char *env, tg_ready_fn ready, void *ctx,
                         int *port_out, char *errstr, size_t n) {
  static int initialised;
  if (!initialised++)
    mg_init_library(0);
  tg_http_t *h = calloc(1, sizeof(*h));
  if (!h) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  snprintf(h->env, sizeof(h->env), "%s", env);
  h->ready = ready;
  h->ready_ctx = ctx;
  const char *options[] = {"listening_ports", listen, "num_threads", "2",
                           "request_timeout_ms", "5000", NULL};
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  h->ctx = mg_start(&cb, h, options);
  if (!h->ctx) {
    snprintf(errstr, n, "http.listen %s: cannot listen (address in use or invalid)", listen);
    free(h);
    return NULL;
  }
  mg_set_request_handler(h->ctx, "/metrics$", on_metrics, h);
  mg_set_request_handler(h->ctx, "/healthz$", on_healthz, h);
  mg_set_request_handler(h->ctx, "/readyz$", on_readyz, h);
  struct mg_server_port ports[4];
  int np = mg_get_server_ports(h->ctx, 4, ports);
  *port_out = np > 0 ? ports[0].port : 0;
  return h;
}

void tg_http_stop(tg_http_t *h) {
  if (!h)
    return;
  mg_stop(h->ctx);
  free(h);
}
