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

static const struct tg_transport_ops *const backends[] = {&tg_transport_redis,
                                                          &tg_transport_kafka, NULL};

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
  conf->dlq_max_len = 100000;
  conf->result_ttl_ms = 7LL * 24 * 3600 * 1000;
  conf->worker_window_ms = 30000;
  conf->connect_timeout_ms = 2000;
  conf->command_timeout_ms = 5000;
  conf->reconnect_max_ms = 10000;
  struct tg_kafka_conf *k = &conf->kafka;
  snprintf(k->brokers, sizeof(k->brokers), "127.0.0.1:9092");
  snprintf(k->topic_in, sizeof(k->topic_in), "tripgen-{env}-in");
  snprintf(k->topic_out, sizeof(k->topic_out), "tripgen-{env}-out");
  snprintf(k->topic_dlq, sizeof(k->topic_dlq), "tripgen-{env}-dlq");
  k->max_in_flight = 16;
  k->session_timeout_ms = 10000;
  k->max_poll_interval_ms = 300000;
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
    {"dead-letter max length", c->dlq_max_len, 100, 100000000},
    {"result ttl (ms)", c->result_ttl_ms, 1000, 366LL * 86400000},
    {"worker window (ms)", c->worker_window_ms, 100, 86400000},
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
    snprintf(errstr, n, "transport: unknown backend '%s' (known: redis, kafka)", conf->backend);
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

/* The enqueue request of a job; *json (the payload) is the caller's to free. */
static tg_err_t job_request(tg_transport_t *t, const tg_job_t *job, char **json,
                            struct tg_put_req *req, char *errstr, size_t n) {
  *json = NULL;
  if (strcmp(job->env, t->conf.env) != 0) {
    snprintf(errstr, n, "env: job is for '%s' but this queue serves '%s'", job->env,
             t->conf.env);
    return TG_ERR_INVAL;
  }
  if (!(*json = tg_job_serialize(job))) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  size_t len = strlen(*json);
  if (len > TG_MAX_PAYLOAD_BYTES) {
    snprintf(errstr, n, "payload: job of %zu bytes exceeds the limit of %d bytes", len,
             TG_MAX_PAYLOAD_BYTES);
    return TG_ERR_TOO_LARGE;
  }
  *req = (struct tg_put_req){.request_id = job->request_id, .payload = *json,
                             .payload_len = len, .priority = job->priority,
                             .enqueued_at_ms = job->enqueued_at_ms};
  return TG_OK;
}

static bool batch_size_ok(const char *what, int count, char *errstr, size_t n) {
  if (count >= 1 && count <= TG_TRANSPORT_PUT_MANY_MAX)
    return true;
  snprintf(errstr, n, "%s: 1-%d at a time, not %d", what, TG_TRANSPORT_PUT_MANY_MAX, count);
  return false;
}

tg_err_t tg_transport_put(tg_transport_t *t, const tg_job_t *job, uint64_t *index, char *errstr,
                          size_t n) {
  char *json;
  struct tg_put_req req;
  tg_err_t err = job_request(t, job, &json, &req, errstr, n);
  if (err == TG_OK) {
    char rid[TG_MAX_REQUEST_ID_CHARS + 1];
    bool repeated;
    err = t->ops->put(t, &req, index, rid, &repeated, errstr, n);
  }
  free(json);
  return err;
}

tg_err_t tg_transport_put_many(tg_transport_t *t, const tg_job_t *const *jobs, int count,
                               uint64_t *indexes, char *errstr, size_t n) {
  if (!batch_size_ok("put_many", count, errstr, n))
    return TG_ERR_INVAL;
  char **json = calloc((size_t)count, sizeof(*json));
  struct tg_put_req *reqs = calloc((size_t)count, sizeof(*reqs));
  tg_err_t err = json && reqs ? TG_OK : TG_ERR_NOMEM;
  if (err != TG_OK)
    snprintf(errstr, n, "out of memory");
  for (int i = 0; i < count && err == TG_OK; i++) {
    indexes[i] = 0;
    err = job_request(t, jobs[i], &json[i], &reqs[i], errstr, n);
  }
  if (err == TG_OK)
    err = t->ops->put_many(t, reqs, count, indexes, errstr, n);
  for (int i = 0; json && i < count; i++)
    free(json[i]);
  free(json);
  free(reqs);
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

tg_err_t tg_transport_complete_many(tg_transport_t *t, const tg_delivery_t *const *ds,
                                    const tg_result_t *const *rs, int count, bool *published,
                                    tg_err_t *errs, char *errstr, size_t n) {
  if (!batch_size_ok("complete_many", count, errstr, n))
    return TG_ERR_INVAL;
  struct tg_publish *ps = calloc((size_t)count, sizeof(*ps));
  char **json = calloc((size_t)count, sizeof(*json));
  tg_err_t err = ps && json ? TG_OK : TG_ERR_NOMEM;
  for (int i = 0; i < count; i++) {
    published[i] = false;
    errs[i] = TG_ERR_NOMEM;
  }
  for (int i = 0; i < count && err == TG_OK; i++) {
    if (!(json[i] = tg_result_serialize(rs[i]))) {
      err = TG_ERR_NOMEM;
      break;
    }
    ps[i] = (struct tg_publish){
      .request_id = rs[i]->request_id,
      .generation = rs[i]->generation,
      .result_json = json[i],
      .last_code = rs[i]->succeeded ? 0 : tg_code_info(rs[i]->error.code)->eas_last_code,
    };
  }
  if (err == TG_OK)
    err = t->ops->complete_many(t, ds, ps, count, published, errs, errstr, n);
  else
    snprintf(errstr, n, "out of memory");
  for (int i = 0; json && i < count; i++)
    free(json[i]);
  free(json);
  free(ps);
  return err;
}

tg_err_t tg_transport_done_many(tg_transport_t *t, const tg_job_t *const *jobs, int count,
                                bool *done, char *errstr, size_t n) {
  if (!batch_size_ok("done_many", count, errstr, n))
    return TG_ERR_INVAL;
  const char **ids = calloc((size_t)count, sizeof(*ids));
  int64_t *gens = calloc((size_t)count, sizeof(*gens));
  tg_err_t err = ids && gens ? TG_OK : TG_ERR_NOMEM;
  for (int i = 0; i < count; i++) {
    done[i] = false;
    if (ids && gens) {
      ids[i] = jobs[i]->request_id;
      gens[i] = jobs[i]->generation;
    }
  }
  if (err == TG_OK)
    err = t->ops->done_many(t, ids, gens, count, done, errstr, n);
  else
    snprintf(errstr, n, "out of memory");
  free(ids);
  free(gens);
  return err;
}

static void delivery_clear(tg_delivery_t *d) {
  free(d->payload);
  tg_job_destroy(d->job);
  d->payload = NULL;
  d->job = NULL;
}

/* An entry delivered too often: fail it for good with the reason. @ran:
 * the deliveries that ran (and crashed or stalled their worker). */
static bool bury_poison(tg_transport_t *t, tg_delivery_t *d, int64_t ran) {
  char errstr[256];
  tg_result_t *r = d->job ? tg_result_for_job(d->job)
                          : tg_result_new(d->request_id, 0, t->conf.env);
  if (!r)
    return false;
  d->deliveries = ran; /* what the dead letter records */
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
  else if (err == TG_ERR_NOT_FOUND) /* a worker claimed it meanwhile: it buries it */
    tg_log(TG_INFO, "event=dead_letter_skipped request_id=%s err=\"%s\"", d->request_id,
           errstr);
  else
    tg_log(TG_ERROR, "event=dead_letter_failed request_id=%s err=\"%s\"", d->request_id,
           errstr);
  tg_result_destroy(r);
  return err == TG_OK;
}

/* Parse a delivery's payload (unless the producer marked it invalid). */
static void parse_delivery(tg_delivery_t *x) {
  if (!*x->parse_error) /* else the producer marked it invalid, with the reason */
    x->job = tg_job_parse(x->payload, x->payload_len, x->parse_error, sizeof(x->parse_error));
  if (!*x->request_id)
    snprintf(x->request_id, sizeof(x->request_id), "idx-%llu", (unsigned long long)x->index);
}

/* Parse payloads, bury poison entries, compact the array. */
static int prepare_deliveries(tg_transport_t *t, tg_delivery_t *d, int count) {
  int kept = 0;
  for (int i = 0; i < count; i++) {
    tg_delivery_t *x = &d[i];
    parse_delivery(x);
    if (x->deliveries > t->conf.max_deliveries) { /* this delivery is refused: it never ran */
      bury_poison(t, x, x->deliveries - 1);
      delivery_clear(x);
      continue;
    }
    if (kept != i)
      d[kept] = *x;
    kept++;
  }
  return kept;
}

bool tg_transport_history_done(const tg_transport_t *t) { return t->ops->history_done(t); }

bool tg_transport_stats(tg_transport_t *t, struct tg_transport_stats *out) {
  memset(out, 0, sizeof(*out));
  return t->ops->stats && t->ops->stats(t, out);
}

bool tg_transport_broken(tg_transport_t *t, char *why, size_t n) {
  return t->ops->broken && t->ops->broken(t, why, n);
}

void tg_transport_abandon(tg_transport_t *t, const tg_delivery_t *d, const char *why) {
  if (t->ops->abandon)
    t->ops->abandon(t, d, why);
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

tg_err_t tg_transport_reclaim(tg_transport_t *t, int max, const tg_delivery_t *held, int n_held,
                              tg_delivery_t **out, int *n_out, char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  tg_delivery_t *d = NULL;
  int count = 0;
  tg_err_t err =
      t->ops->reclaim(t, max < 1 ? 1 : max, held, n_held > 0 ? n_held : 0, &d, &count, errstr, n);
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

tg_err_t tg_transport_park_stale(tg_transport_t *t, int max, int *parked, int *dead_lettered,
                                 char *errstr, size_t n) {
  *parked = 0;
  *dead_lettered = 0;
  tg_delivery_t *d = NULL;
  int count = 0;
  tg_err_t err = t->ops->park_stale(t, max < 1 ? 1 : max, parked, &d, &count, errstr, n);
  for (int i = 0; i < count; i++) { /* each one ran max_deliveries times already */
    parse_delivery(&d[i]);
    *dead_lettered += bury_poison(t, &d[i], d[i].deliveries);
  }
  tg_deliveries_free(d, count);
  if (*parked)
    tg_log(TG_INFO, "event=entries_parked count=%d env=%s", *parked, t->conf.env);
  return err;
}

tg_err_t tg_transport_prune_consumers(tg_transport_t *t, int64_t idle_ms, int *removed,
                                      char *errstr, size_t n) {
  *removed = 0;
  return t->ops->prune_consumers(t, idle_ms < 1 ? 1 : idle_ms, removed, errstr, n);
}

tg_err_t tg_transport_heartbeat(tg_transport_t *t, int64_t now_ms, char *errstr, size_t n) {
  return t->ops->heartbeat(t, now_ms, errstr, n);
}

static bool lease_args_ok(const char *name, const char *holder, char *errstr, size_t n) {
  if (!name || !*name || strlen(name) > 64 || !tg_charset_ok(name, TG_CS_ID) || !holder ||
      !*holder || strlen(holder) > 128) {
    snprintf(errstr, n, "lease: name must be 1-64 of %s, holder 1-128 characters",
             tg_charset_describe(TG_CS_ID));
    return false;
  }
  return true;
}

tg_err_t tg_transport_lease(tg_transport_t *t, const char *name, const char *holder,
                            int64_t lease_ms, bool *held, char *errstr, size_t n) {
  *held = false;
  if (!lease_args_ok(name, holder, errstr, n))
    return TG_ERR_INVAL;
  return t->ops->lease(t, name, holder, lease_ms < 1 ? 1 : lease_ms, false, held, errstr, n);
}

tg_err_t tg_transport_lease_release(tg_transport_t *t, const char *name, const char *holder,
                                    char *errstr, size_t n) {
  bool held;
  if (!lease_args_ok(name, holder, errstr, n))
    return TG_ERR_INVAL;
  return t->ops->lease(t, name, holder, 0, true, &held, errstr, n);
}

tg_err_t tg_transport_dlq_list(tg_transport_t *t, uint64_t from, int max,
                               struct tg_dlq_entry **out, int *n_out, char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  return t->ops->dlq_list(t, from, max < 1 ? 1 : max, out, n_out, errstr, n);
}

tg_err_t tg_transport_dlq_replay(tg_transport_t *t, uint64_t dlq_index, uint64_t *index,
                                 int64_t *generation, char *request_id, char *errstr,
                                 size_t n) {
  struct tg_dlq_entry *e = NULL;
  int ne = 0;
  tg_err_t err = dlq_index ? tg_transport_dlq_list(t, dlq_index, 1, &e, &ne, errstr, n)
                           : TG_ERR_NOT_FOUND;
  if (err != TG_OK && err != TG_ERR_NOT_FOUND)
    return err;
  if (ne == 0 || e[0].dlq_index != dlq_index) {
    tg_dlq_entries_free(e, ne);
    snprintf(errstr, n, "no dead letter %llu", (unsigned long long)dlq_index);
    return TG_ERR_NOT_FOUND;
  }
  char why[256];
  tg_job_t *job = tg_job_parse(e[0].job, strlen(e[0].job), why, sizeof(why));
  tg_dlq_entries_free(e, ne);
  if (!job) {
    snprintf(errstr, n, "dead letter %llu: its job cannot be replayed: %s",
             (unsigned long long)dlq_index, why);
    return TG_ERR_BAD_MSG;
  }
  job->generation++;
  job->attempt = 1;
  if (job->deadline_ms && job->deadline_ms <= tg_now_ms())
    job->deadline_ms = 0; /* it would fail at once otherwise */
  char *json = tg_job_serialize(job);
  if (!json) {
    tg_job_destroy(job);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  err = t->ops->dlq_requeue(t, dlq_index, job->request_id, json, job->priority,
                            job->enqueued_at_ms, index, errstr, n);
  if (err == TG_OK) {
    *generation = job->generation;
    snprintf(request_id, TG_MAX_REQUEST_ID_CHARS + 1, "%s", job->request_id);
    tg_log(TG_INFO, "event=dead_letter_replayed request_id=%s generation=%lld index=%llu",
           job->request_id, (long long)job->generation, (unsigned long long)*index);
  }
  free(json);
  tg_job_destroy(job);
  return err;
}

tg_err_t tg_transport_dlq_purge(tg_transport_t *t, uint64_t dlq_index, int64_t *purged,
                                char *errstr, size_t n) {
  *purged = 0;
  return t->ops->dlq_purge(t, dlq_index, purged, errstr, n);
}

void tg_dlq_entries_free(struct tg_dlq_entry *e, int n) {
  if (!e)
    return;
  for (int i = 0; i < n; i++) {
    free(e[i].job);
    free(e[i].result);
  }
  free(e);
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
