/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport.c - the backend-independent half of the queue transport:
 * picks the backend from the ops tables, validates arguments, parses
 * delivered jobs, dead-letters entries delivered too often, and turns
 * results into the bytes a backend publishes.
 */
#include "tg_transport.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"
#include "transport_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct tg_transport_ops *const backends[] = {&tg_transport_redis, NULL};

void tg_transport_conf_init(struct tg_transport_conf *conf, const char *env) {
  memset(conf, 0, sizeof(*conf));
  snprintf(conf->backend, sizeof(conf->backend), "redis");
  snprintf(conf->redis_url, sizeof(conf->redis_url), "redis://127.0.0.1:6379");
  snprintf(conf->env, sizeof(conf->env), "%s", env ? env : "dev");
  snprintf(conf->group, sizeof(conf->group), "workers");
  conf->visibility_timeout_ms = 300000;
  conf->max_deliveries = 5;
  conf->queue_cap = TG_DEFAULT_QUEUE_LENGTH;
  conf->sink_max_len = 100000;
  conf->result_ttl_ms = 7LL * 24 * 3600 * 1000;
  conf->connect_timeout_ms = 2000;
  conf->command_timeout_ms = 5000;
  conf->reconnect_max_ms = 10000;
}

static bool conf_valid(const struct tg_transport_conf *c, char *errstr, size_t n) {
  if (!*c->env || strlen(c->env) > TG_MAX_ENV_CHARS || !tg_charset_ok(c->env, TG_CS_ENV)) {
    snprintf(errstr, n, "env: must be 1-%d of %s", TG_MAX_ENV_CHARS,
             tg_charset_describe(TG_CS_ENV));
    return false;
  }
  if (!*c->group || !tg_charset_ok(c->group, TG_CS_ID)) {
    snprintf(errstr, n, "queue group: must be %s", tg_charset_describe(TG_CS_ID));
    return false;
  }
  if (*c->consumer && !tg_charset_ok(c->consumer, TG_CS_ID)) {
    snprintf(errstr, n, "consumer name: must be %s", tg_charset_describe(TG_CS_ID));
    return false;
  }
  struct { const char *name; int64_t v, min, max; } ranges[] = {
    {"visibility timeout (ms)", c->visibility_timeout_ms, 100, 86400000},
    {"max deliveries", c->max_deliveries, 1, 1000},
    {"queue cap", c->queue_cap, 1, TG_MAX_QUEUE_LENGTH},
    {"sink max length", c->sink_max_len, 100, 100000000},
    {"result ttl (ms)", c->result_ttl_ms, 1000, 366LL * 86400000},
    {"connect timeout (ms)", c->connect_timeout_ms, 1, 600000},
    {"command timeout (ms)", c->command_timeout_ms, 1, 600000},
    {"reconnect max (ms)", c->reconnect_max_ms, 0, 3600000},
  };
  for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
    if (ranges[i].v < ranges[i].min || ranges[i].v > ranges[i].max) {
      snprintf(errstr, n, "%s: %lld is out of range [%lld, %lld]", ranges[i].name,
               (long long)ranges[i].v, (long long)ranges[i].min, (long long)ranges[i].max);
      return false;
    }
  return true;
}

tg_transport_t *tg_transport_new(const struct tg_transport_conf *conf, char *errstr, size_t n) {
  if (!conf_valid(conf, errstr, n))
    return NULL;
  tg_transport_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  t->conf = *conf;
  if (!*t->conf.consumer) {
    char host[64] = "host";
    gethostname(host, sizeof(host) - 1);
    for (char *p = host; *p; p++)
      if (!tg_charset_ok((char[]){*p, 0}, TG_CS_ID) && *p != '-')
        *p = '-';
    snprintf(t->conf.consumer, sizeof(t->conf.consumer), "%s-%ld", host, (long)getpid());
  }
  for (const struct tg_transport_ops *const *b = backends; *b; b++)
    if (strcmp((*b)->name, conf->backend) == 0)
      t->ops = *b;
  if (!t->ops) {
    snprintf(errstr, n, "transport: unknown backend '%s' (known: redis)", conf->backend);
    goto err;
  }
  if (t->ops->open(t, errstr, n) != TG_OK)
    goto err;
  return t;
err:
  free(t);
  return NULL;
}

void tg_transport_destroy(tg_transport_t *t) {
  if (!t)
    return;
  t->ops->close(t);
  free(t);
}

const char *tg_transport_consumer(const tg_transport_t *t) { return t->conf.consumer; }

tg_err_t tg_transport_put_req(tg_transport_t *t, const struct tg_put_req *req, uint64_t *index,
                              char *request_id, bool *repeated, char *errstr, size_t n) {
  *repeated = false;
  if (!req->request_id || !*req->request_id ||
      strlen(req->request_id) > TG_MAX_REQUEST_ID_CHARS ||
      !tg_charset_ok(req->request_id, TG_CS_REQUEST_ID)) {
    snprintf(errstr, n, "request_id: must be 1-%d of %s", TG_MAX_REQUEST_ID_CHARS,
             tg_charset_describe(TG_CS_REQUEST_ID));
    return TG_ERR_INVAL;
  }
  if (req->payload_len > TG_MAX_PAYLOAD_BYTES * 2 || req->data_len > TG_MAX_PAYLOAD_BYTES) {
    snprintf(errstr, n, "payload: exceeds the limit of %d bytes", TG_MAX_PAYLOAD_BYTES);
    return TG_ERR_TOO_LARGE;
  }
  return t->ops->put(t, req, index, request_id, repeated, errstr, n);
}

tg_err_t tg_transport_put(tg_transport_t *t, const tg_job_t *job, uint64_t *index, char *errstr,
                          size_t n) {
  if (strcmp(job->env, t->conf.env) != 0) {
    snprintf(errstr, n, "env: job is for '%s' but this queue serves '%s'", job->env,
             t->conf.env);
    return TG_ERR_INVAL;
  }
  char *json = tg_job_serialize(job);
  if (!json) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  tg_err_t err = TG_OK;
  if (strlen(json) > TG_MAX_PAYLOAD_BYTES) {
    snprintf(errstr, n, "payload: job of %zu bytes exceeds the limit of %d bytes", strlen(json),
             TG_MAX_PAYLOAD_BYTES);
    err = TG_ERR_TOO_LARGE;
  } else {
    struct tg_put_req req = {.request_id = job->request_id, .payload = json,
                             .payload_len = strlen(json), .priority = job->priority,
                             .enqueued_at_ms = job->enqueued_at_ms};
    char rid[TG_MAX_REQUEST_ID_CHARS + 1];
    bool repeated;
    err = t->ops->put(t, &req, index, rid, &repeated, errstr, n);
  }
  free(json);
  return err;
}

static tg_err_t publish(tg_transport_t *t, const tg_delivery_t *d, const tg_result_t *r,
                        bool dead, bool *published, char *errstr, size_t n) {
  char *json = tg_result_serialize(r);
  if (!json) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  struct tg_publish p = {
    .request_id = r->request_id,
    .generation = r->generation,
    .result_json = json,
    .last_code = r->succeeded ? 0 : tg_code_info(r->error.code)->eas_last_code,
  };
  bool pub = false;
  tg_err_t err = dead ? t->ops->dead_letter(t, d, &p, errstr, n)
                      : t->ops->complete(t, d, &p, &pub, errstr, n);
  if (published)
    *published = pub;
  free(json);
  return err;
}

static void delivery_clear(tg_delivery_t *d) {
  free(d->payload);
  tg_job_destroy(d->job);
  d->payload = NULL;
  d->job = NULL;
}

/* An entry delivered too often: fail it for good with the reason. */
static void bury_poison(tg_transport_t *t, tg_delivery_t *d) {
  char errstr[256];
  tg_result_t *r = d->job ? tg_result_for_job(d->job)
                          : tg_result_new(d->request_id, 0, t->conf.env);
  if (!r)
    return;
  r->attempt = d->job ? d->job->attempt : 1;
  tg_result_fail(r, TG_CODE_INTERNAL, "queue", false,
                 "delivered %lld times without completing (max_deliveries %d): the job "
                 "crashed or stalled its workers",
                 (long long)d->deliveries, t->conf.max_deliveries);
  tg_err_t err = publish(t, d, r, true, NULL, errstr, sizeof(errstr));
  if (err == TG_OK)
    tg_log(TG_WARN, "event=job_dead_lettered request_id=%s index=%llu deliveries=%lld "
                    "reason=max_deliveries",
           d->request_id, (unsigned long long)d->index, (long long)d->deliveries);
  else
    tg_log(TG_ERROR, "event=dead_letter_failed request_id=%s err=\"%s\"", d->request_id,
           errstr);
  tg_result_destroy(r);
}

/* Parse payloads, bury poison entries, compact the array. */
static int prepare_deliveries(tg_transport_t *t, tg_delivery_t *d, int count) {
  int kept = 0;
  for (int i = 0; i < count; i++) {
    tg_delivery_t *x = &d[i];
    if (!*x->parse_error) /* else the producer marked it invalid, with the reason */
      x->job = tg_job_parse(x->payload, x->payload_len, x->parse_error, sizeof(x->parse_error));
    if (!*x->request_id)
      snprintf(x->request_id, sizeof(x->request_id), "idx-%llu", (unsigned long long)x->index);
    if (x->deliveries > t->conf.max_deliveries) {
      bury_poison(t, x);
      delivery_clear(x);
      continue;
    }
    if (kept != i)
      d[kept] = *x;
    kept++;
  }
  return kept;
}

tg_err_t tg_transport_take(tg_transport_t *t, int max, int timeout_ms, tg_delivery_t **out,
                           int *n_out, char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  if (max < 1 || timeout_ms < 0) {
    snprintf(errstr, n, "take: max must be >= 1 and timeout >= 0");
    return TG_ERR_INVAL;
  }
  tg_delivery_t *d = NULL;
  int count = 0;
  tg_err_t err = t->ops->take(t, max, timeout_ms, &d, &count, errstr, n);
  if (err != TG_OK)
    return err;
  count = prepare_deliveries(t, d, count);
  if (count == 0) {
    free(d);
    d = NULL;
  }
  *out = d;
  *n_out = count;
  return TG_OK;
}

tg_err_t tg_transport_reclaim(tg_transport_t *t, int max, tg_delivery_t **out, int *n_out,
                              char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  tg_delivery_t *d = NULL;
  int count = 0;
  tg_err_t err = t->ops->reclaim(t, max < 1 ? 1 : max, &d, &count, errstr, n);
  if (err != TG_OK)
    return err;
  count = prepare_deliveries(t, d, count);
  if (count == 0) {
    free(d);
    d = NULL;
  }
  *out = d;
  *n_out = count;
  return TG_OK;
}

tg_err_t tg_transport_complete(tg_transport_t *t, const tg_delivery_t *d, const tg_result_t *r,
                               bool *published, char *errstr, size_t n) {
  return publish(t, d, r, false, published, errstr, n);
}

tg_err_t tg_transport_dead_letter(tg_transport_t *t, const tg_delivery_t *d,
                                  const tg_result_t *r, char *errstr, size_t n) {
  return publish(t, d, r, true, NULL, errstr, n);
}

tg_err_t tg_transport_retry_later(tg_transport_t *t, const tg_delivery_t *d,
                                  const tg_job_t *next, int64_t due_ms, char *errstr, size_t n) {
  char *json = tg_job_serialize(next);
  if (!json) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  tg_err_t err = t->ops->retry_later(t, d, next->request_id, json, next->priority,
                                     next->enqueued_at_ms, due_ms, errstr, n);
  free(json);
  return err;
}

tg_err_t tg_transport_ack_if_done(tg_transport_t *t, const tg_delivery_t *d, int64_t generation,
                                  bool *acked, char *errstr, size_t n) {
  *acked = false;
  return t->ops->ack_if_done(t, d, generation, acked, errstr, n);
}

tg_err_t tg_transport_extend_lease(tg_transport_t *t, const tg_delivery_t *d, char *errstr,
                                   size_t n) {
  return t->ops->extend_lease(t, d, errstr, n);
}

tg_err_t tg_transport_promote_due(tg_transport_t *t, int64_t now_ms, int max, int *promoted,
                                  char *errstr, size_t n) {
  return t->ops->promote_due(t, now_ms, max < 1 ? 1 : max, promoted, errstr, n);
}

tg_err_t tg_transport_depth(tg_transport_t *t, struct tg_depth *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  return t->ops->depth(t, out, errstr, n);
}

tg_err_t tg_transport_remove(tg_transport_t *t, uint64_t index, bool *removed, char *errstr,
                             size_t n) {
  *removed = false;
  return t->ops->remove(t, index, removed, errstr, n);
}

tg_err_t tg_transport_get_result(tg_transport_t *t, const char *request_id, char **json_out,
                                 char *errstr, size_t n) {
  *json_out = NULL;
  if (!request_id || !*request_id || strlen(request_id) > TG_MAX_REQUEST_ID_CHARS ||
      !tg_charset_ok(request_id, TG_CS_REQUEST_ID)) {
    snprintf(errstr, n, "request_id: must be 1-%d of %s", TG_MAX_REQUEST_ID_CHARS,
             tg_charset_describe(TG_CS_REQUEST_ID));
    return TG_ERR_INVAL;
  }
  return t->ops->get_result(t, request_id, json_out, errstr, n);
}

tg_err_t tg_transport_read_sink(tg_transport_t *t, uint64_t from_index, int max, int timeout_ms,
                                struct tg_sink_frame **out, int *n_out, char *errstr,
                                size_t n) {
  *out = NULL;
  *n_out = 0;
  return t->ops->read_sink(t, from_index, max < 1 ? 1 : max, timeout_ms < 0 ? 0 : timeout_ms,
                           out, n_out, errstr, n);
}

void tg_deliveries_free(tg_delivery_t *d, int n) {
  if (!d)
    return;
  for (int i = 0; i < n; i++)
    delivery_clear(&d[i]);
  free(d);
}

void tg_sink_frames_free(struct tg_sink_frame *f, int n) {
  if (!f)
    return;
  for (int i = 0; i < n; i++)
    free(f[i].result);
  free(f);
}
