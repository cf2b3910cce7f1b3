/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - the civetweb server: routes /api/predict/{service}[/sink] to
 * the EAS operations by method and reserved parameter, checks the token in
 * constant time, keeps one store (Redis connection) per service per server
 * thread, and maps errors to the status codes of docs/eas-api.md.
 */
#include "autoscale.h"
#include "server_int.h"
#include "tg_json.h"
#include "tg_log.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct thread_stores {
  sch_store_t *s[SCH_MAX_SERVICES];
};

static void free_thread_stores(void *p) {
  struct thread_stores *ts = p;
  for (int i = 0; i < SCH_MAX_SERVICES; i++)
    sch_store_destroy(ts->s[i]);
  free(ts);
}

sch_store_t *sch_thread_store(sch_server_t *s, int service, char *errstr, size_t n) {
  struct thread_stores *ts = pthread_getspecific(s->stores_key);
  if (!ts) {
    if (!(ts = calloc(1, sizeof(*ts)))) {
      snprintf(errstr, n, "out of memory");
      return NULL;
    }
    pthread_setspecific(s->stores_key, ts);
  }
  if (!ts->s[service]) {
    const struct sch_service_conf *sc = &s->conf.services[service];
    if (sc->on_kafka) {
      snprintf(errstr, n, "service %s is on Kafka: produce to its input topic", sc->name);
      return NULL;
    }
    /* on the heap: civetweb's worker threads have small stacks, and a
     * transport conf carries the Kafka settings (several KiB) */
    struct tg_transport_conf *tc = malloc(sizeof(*tc));
    if (!tc) {
      snprintf(errstr, n, "out of memory");
      return NULL;
    }
    tg_transport_conf_init(tc, sc->env);
    snprintf(tc->redis_url, sizeof(tc->redis_url), "%s", s->conf.redis_url);
    snprintf(tc->consumer, sizeof(tc->consumer), "scheduler");
    tc->visibility_timeout_ms = sc->visibility_timeout_ms;
    tc->queue_cap = sc->queue_cap;
    tc->sink_max_len = sc->sink_max_len;
    tc->reconnect_max_ms = 2000; /* answer 503 rather than hang a client */
    ts->s[service] = sch_store_new(tc, errstr, n);
    free(tc);
  }
  return ts->s[service];
}

static const char *status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 204: return "No Content";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Payload Too Large";
  case 429: return "Too Many Requests";
  case 500: return "Internal Server Error";
  case 503: return "Service Unavailable";
  default: return "Error";
  }
}

void sch_reply_bytes(struct mg_connection *c, int status, const char *type,
                     const unsigned char *data, size_t len, const char *extra_headers) {
  mg_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n", status,
            status_text(status), type, len, extra_headers ? extra_headers : "");
  if (len)
    mg_write(c, data, len);
}

void sch_reply_text(struct mg_connection *c, int status, const char *text) {
  sch_reply_bytes(c, status, "text/plain; charset=utf-8", (const unsigned char *)text,
                  strlen(text), NULL);
}

int sch_reply_error(struct mg_connection *c, tg_err_t err, const char *errstr) {
  int status;
  switch (err) {
  case TG_ERR_BAD_MSG:
  case TG_ERR_INVAL: status = 400; break;
  case TG_ERR_TOO_LARGE: status = 413; break;
  case TG_ERR_QUEUE_FULL: status = 429; break;
  case TG_ERR_TRANSPORT:
  case TG_ERR_TIMEOUT: status = 503; break;
  default: status = 500; break;
  }
  if (status == 503 || status == 500) {
    tg_log(TG_WARN, "event=queue_error status=%d err=\"%s\"", status, errstr);
    sch_reply_text(c, status, status == 503 ? "queue unavailable" : "internal error");
  } else if (status == 429) {
    sch_reply_text(c, status, "queue full");
  } else {
    sch_reply_text(c, status, errstr);
  }
  return status;
}

bool sch_authorized(const sch_server_t *s, const struct mg_connection *c, int service) {
  const char *got = mg_get_header(c, "Authorization");
  const char *want = s->conf.services[service].token;
  if (!got)
    return false;
  /* compare digests, so neither the contents nor the length of the token leak in time */
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)got, strlen(got), a);
  SHA256((const unsigned char *)want, strlen(want), b);
  return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}

/* Consumer and group names reach Redis and the logs: keep them plain. */
static bool identity_ok(const char *s) {
  size_t l = strlen(s);
  if (l == 0 || l > 127)
    return l == 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("._:@/-", *p)))
      return false;
  return true;
}

/* /api/predict/{service}[/sink | /sub/path] → service, queue, identity. 0 or a status. */
int sch_parse_target(sch_server_t *s, const struct mg_connection *c, struct sch_request *r,
                     char *errstr, size_t n) {
  const struct mg_request_info *ri = mg_get_request_info(c);
  const char *prefix = "/api/predict/";
  r->method = ri->request_method;
  if (strncmp(ri->local_uri, prefix, strlen(prefix)) != 0) {
    snprintf(errstr, n, "not found");
    return 404;
  }
  const char *name = ri->local_uri + strlen(prefix);
  size_t nl = strcspn(name, "/");
  r->service = -1;
  for (size_t i = 0; i < s->conf.n_services; i++)
    if (strlen(s->conf.services[i].name) == nl && strncmp(s->conf.services[i].name, name, nl) == 0)
      r->service = (int)i;
  if (r->service < 0) {
    snprintf(errstr, n, "no such service");
    return 404;
  }
  const char *rest = name + nl;
  r->queue = SCH_QUEUE_INPUT;
  if (strcmp(rest, "/sink") == 0 || strcmp(rest, "/sink/") == 0) {
    r->queue = SCH_QUEUE_SINK;
  } else if (*rest && strcmp(rest, "/") != 0) {
    if (strcmp(r->method, "POST") != 0 || strlen(rest) >= sizeof(r->subpath)) {
      snprintf(errstr, n, "not found");
      return 404;
    }
    snprintf(r->subpath, sizeof(r->subpath), "%s", rest);
  }
  const char *uid = mg_get_header(c, "X-EAS-QueueService-Redis-Uid");
  const char *gid = mg_get_header(c, "X-EAS-QueueService-Redis-Gid");
  if ((uid && !identity_ok(uid)) || (gid && !identity_ok(gid))) {
    snprintf(errstr, n, "X-EAS-QueueService-Redis-Uid/Gid: 1-127 of letters, digits and ._:@/-");
    return 400;
  }
  if (uid && *uid)
    snprintf(r->uid, sizeof(r->uid), "%s", uid);
  else
    snprintf(r->uid, sizeof(r->uid), "%s:%d", ri->remote_addr, ri->remote_port);
  snprintf(r->gid, sizeof(r->gid), "%s", gid && *gid ? gid : "eas");
  const char *accept = mg_get_header(c, "Accept");
  r->protobuf = accept && strstr(accept, "application/vnd.google.protobuf");
  snprintf(r->caller, sizeof(r->caller), "%s/%s", ri->remote_addr, r->uid);
  if (!sch_request_parse_query(r, ri->query_string, errstr, n))
    return 400;
  if (*r->request_id && (strlen(r->request_id) > TG_MAX_REQUEST_ID_CHARS ||
                         !tg_charset_ok(r->request_id, TG_CS_REQUEST_ID))) {
    snprintf(errstr, n, "requestId: 1-%d of letters, digits, _ and -", TG_MAX_REQUEST_ID_CHARS);
    return 400;
  }
  return 0;
}

static int on_queue(struct mg_connection *c, void *data) {
  sch_server_t *s = data;
  struct sch_request r;
  char errstr[256];
  memset(&r, 0, sizeof(r));
  int status = sch_parse_target(s, c, &r, errstr, sizeof(errstr));
  if (status) {
    sch_reply_text(c, status, errstr);
    sch_request_clear(&r);
    return status;
  }
  if (!sch_authorized(s, c, r.service)) {
    sch_reply_text(c, 401, "unauthorized");
    sch_request_clear(&r);
    return 401;
  }
  const char *m = r.method;
  if (strcmp(m, "POST") == 0)
    status = sch_request_flag(&r, "_eos_", false) ? sch_op_eos(s, c, &r) : sch_op_put(s, c, &r);
  else if (strcmp(m, "GET") == 0)
    status = sch_request_flag(&r, "_attrs_", false)    ? sch_op_attributes(s, c, &r)
             : sch_request_flag(&r, "_search_", false) ? sch_op_search(s, c, &r)
             : sch_request_flag(&r, "_count_", false)  ? sch_op_count(s, c, &r)
             : sch_request_flag(&r, "_watch_", false)  ? sch_op_watch_stream(s, c, &r)
                                                       : sch_op_get(s, c, &r);
  else if (strcmp(m, "PUT") == 0)
    status = sch_op_commit(s, c, &r);
  else if (strcmp(m, "DELETE") == 0)
    status = sch_op_delete(s, c, &r);
  else {
    sch_reply_text(c, 405, "method not allowed");
    status = 405;
  }
  sch_request_clear(&r);
  return status;
}

static int on_not_found(struct mg_connection *c, void *data) {
  (void)data;
  sch_reply_text(c, 404, "not found");
  return 404;
}

static int on_healthz(struct mg_connection *c, void *data) {
  (void)data;
  sch_reply_text(c, 200, "ok");
  return 200;
}

/* GET /metrics: Prometheus text, no token (like /healthz). */
static int on_metrics(struct mg_connection *c, void *data) {
  sch_server_t *s = data;
  char *text = sch_metrics_text(&s->conf, s->control);
  if (!text) {
    sch_reply_text(c, 500, "out of memory");
    return 500;
  }
  sch_reply_bytes(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                  (const unsigned char *)text, strlen(text), NULL);
  free(text);
  return 200;
}

/* GET /v1/autoscale (every service) or /v1/autoscale/<service>; 503 while
 * the depth cannot be read, so an autoscaler keeps its last decision. */
static int on_autoscale(struct mg_connection *c, void *data) {
  sch_server_t *s = data;
  const char *uri = mg_get_request_info(c)->local_uri;
  const char *name = strncmp(uri, "/v1/autoscale/", 14) == 0 ? uri + 14 : NULL;
  if (!name && strcmp(uri, "/v1/autoscale") != 0) { /* the route is a prefix */
    sch_reply_text(c, 404, "not found");
    return 404;
  }
  if (strcmp(mg_get_request_info(c)->request_method, "GET") != 0) {
    sch_reply_text(c, 405, "method not allowed");
    return 405;
  }
  size_t found = s->conf.n_services;
  for (size_t i = 0; name && i < s->conf.n_services; i++)
    if (strcmp(s->conf.services[i].name, name) == 0)
      found = i;
  if (name && found == s->conf.n_services) {
    sch_reply_text(c, 404, "no such service");
    return 404;
  }
  size_t from = name ? found : 0, to = name ? found + 1 : s->conf.n_services;
  size_t cap = 64, len = 0;
  char *body = malloc(cap);
  int status = 200;
  if (body)
    len = (size_t)snprintf(body, cap, "%s", name ? "" : "{\"services\":[");
  for (size_t i = from; body && i < to; i++) {
    struct sch_service_status st;
    sch_control_status(s->control, i, &st);
    if (!st.depth_ok)
      status = 503;
    char *one = sch_autoscale_json(&s->conf.services[i], &st);
    size_t ol = one ? strlen(one) : 0;
    char *nb = one ? realloc(body, cap + ol + 8) : NULL;
    if (!nb) {
      free(one);
      free(body);
      body = NULL;
      break;
    }
    body = nb;
    cap += ol + 8;
    len += (size_t)snprintf(body + len, cap - len, "%s%s", i > from ? "," : "", one);
    free(one);
  }
  if (body && !name)
    len += (size_t)snprintf(body + len, cap - len, "]}");
  if (!body) {
    sch_reply_text(c, 500, "out of memory");
    return 500;
  }
  sch_reply_bytes(c, status, "application/json", (const unsigned char *)body, len,
                  "Cache-Control: no-store\r\n");
  free(body);
  return status;
}

sch_server_t *sch_server_start(const struct sch_conf *conf, sch_control_t *control,
                               int *port_out, char *errstr, size_t n) {
  static int initialised;
  if (!initialised++)
    mg_init_library(0);
  sch_server_t *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  s->conf = *conf;
  s->control = control;
  pthread_key_create(&s->stores_key, free_thread_stores);
  /* every watcher holds a server thread for its whole life: leave room for
   * the short requests beside the most watchers the services allow */
  int need = 16;
  for (size_t i = 0; i < conf->n_services; i++) /* watchers and long polls, input and sink */
    need += 2 * (conf->services[i].max_watchers + conf->services[i].max_long_polls);
  int nthreads = conf->threads > need ? conf->threads : need;
  if (nthreads != conf->threads)
    tg_log(TG_INFO, "event=threads_raised from=%d to=%d reason=max_watchers+max_long_polls",
           conf->threads,
           nthreads);
  char threads[16];
  snprintf(threads, sizeof(threads), "%d", nthreads);
  const char *options[] = {"listening_ports", conf->listen,
                           "num_threads", threads,
                           "request_timeout_ms", "120000",
                           "max_request_size", "16384",
                           "websocket_timeout_ms", "3600000",
                           "enable_keep_alive", "yes",
                           /* replies go out as two writes (headers, body): without
                            * this, Nagle + delayed ACK hold each one ~40 ms */
                           "tcp_nodelay", "1",
                           NULL};
  struct mg_callbacks cb;
  memset(&cb, 0, sizeof(cb));
  s->ctx = mg_start(&cb, s, options);
  if (!s->ctx) {
    snprintf(errstr, n, "listen %s: cannot listen (address in use or invalid)", conf->listen);
    pthread_key_delete(s->stores_key);
    free(s);
    return NULL;
  }
  mg_set_request_handler(s->ctx, "/api/predict/", on_queue, s);
  mg_set_request_handler(s->ctx, "/healthz$", on_healthz, s);
  mg_set_request_handler(s->ctx, "/metrics$", on_metrics, s);
  mg_set_request_handler(s->ctx, "/v1/autoscale", on_autoscale, s);
  mg_set_request_handler(s->ctx, "/", on_not_found, s); /* everything else */
  sch_watch_register(s);
  struct mg_server_port ports[4];
  int np = mg_get_server_ports(s->ctx, 4, ports);
  *port_out = np > 0 ? ports[0].port : 0;
  return s;
}

void sch_server_stop(sch_server_t *s) {
  if (!s)
    return;
  atomic_store(&s->stopping, true);
  mg_stop(s->ctx);
  pthread_key_delete(s->stores_key);
  free(s);
}
