/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_kafka.c - the queue transport on Kafka topics (DESIGN.md,
 * "Kafka"): input (and an optional retry topic), output keyed by
 * request_id, dead letters. A received record is a job, or a plain trip
 * event that becomes a job whose request_id comes from its topic,
 * partition and offset. Completing a job produces its result, then lets
 * the commit watermark pass it (kafka_client.c); a retry is a new record
 * with attempt+1 and a not-before header. What Kafka has no place for
 * (result records, leases, reclaiming, dead-letter replay) is refused by
 * name or is a no-op: rebalancing does the reclaiming.
 */
#include "kafka_client.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"
#include "tg_trip.h"
#include "transport_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_kclient_t *KC(tg_transport_t *t) { return t->backend; }

static tg_err_t unsupported(const char *what, char *errstr, size_t n) {
  snprintf(errstr, n, "%s: not available on the kafka transport (%s)", what,
           strcmp(what, "get") == 0 ? "results are records on the output topic: tripgen watch"
           : strncmp(what, "dlq", 3) == 0 ? "dead letters are records on the dead-letter topic"
                                          : "Kafka has no such operation");
  return TG_ERR_INVAL;
}

static tg_err_t k_open(tg_transport_t *t, char *errstr, size_t n) {
  return (t->backend = tg_kclient_get(&t->conf, errstr, n)) ? TG_OK : TG_ERR_TRANSPORT;
}

static void k_close(tg_transport_t *t) { tg_kclient_put(KC(t)); }

/* ---- put ---------------------------------------------------------------- */

static tg_err_t put_records(tg_transport_t *t, const struct tg_put_req *reqs, int count,
                            uint64_t *indexes, char *errstr, size_t n) {
  struct tg_krec *recs = calloc((size_t)count, sizeof(*recs));
  int64_t *offsets = calloc((size_t)count, sizeof(*offsets));
  for (int i = 0; offsets && i < count; i++)
    offsets[i] = -1; /* not produced */
  if (!recs || !offsets) {
    free(recs);
    free(offsets);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  tg_err_t err = TG_OK;
  for (int i = 0; i < count && err == TG_OK; i++) {
    if (reqs[i].priority) {
      snprintf(errstr, n, "priority: the kafka transport has no priority lane");
      err = TG_ERR_INVAL;
    }
    recs[i] = (struct tg_krec){.topic = TG_KT_IN, .key = reqs[i].request_id,
                               .value = reqs[i].payload, .len = reqs[i].payload_len};
  }
  if (err == TG_OK)
    err = tg_kclient_produce(KC(t), recs, count, offsets, NULL, errstr, n);
  for (int i = 0; i < count; i++) /* the index of a record: its offset + 1 (0: unknown) */
    indexes[i] = offsets[i] >= 0 ? (uint64_t)(offsets[i] + 1) : 0;
  free(recs);
  free(offsets);
  return err;
}

static tg_err_t k_put(tg_transport_t *t, const struct tg_put_req *req, uint64_t *index,
                      char *request_id, bool *repeated, char *errstr, size_t n) {
  *repeated = false; /* no store to remember keys in: a repeat is a new record */
  snprintf(request_id, TG_MAX_REQUEST_ID_CHARS + 1, "%s", req->request_id);
  return put_records(t, req, 1, index, errstr, n);
}

static tg_err_t k_put_many(tg_transport_t *t, const struct tg_put_req *reqs, int count,
                           uint64_t *indexes, char *errstr, size_t n) {
  return put_records(t, reqs, count, indexes, errstr, n);
}

/* ---- take --------------------------------------------------------------- */

static void entry_of(const struct tg_kpos *p, char *buf, size_t size) {
  snprintf(buf, size, "%d.%d.%lld.%llu", (int)p->topic, (int)p->partition, (long long)p->offset,
           (unsigned long long)p->epoch);
}

static bool pos_of(const tg_delivery_t *d, struct tg_kpos *p) {
  int topic, part;
  long long off;
  unsigned long long epoch;
  if (sscanf(d->entry_id, "%d.%d.%lld.%llu", &topic, &part, &off, &epoch) != 4 ||
      (topic != TG_KT_IN && topic != TG_KT_RETRY))
    return false;
  *p = (struct tg_kpos){(enum tg_ktopic)topic, part, off, epoch};
  return true;
}

/* A stable request_id for a plain trip event: where it sits in Kafka. */
static void derived_request_id(const tg_kclient_t *c, const struct tg_kpos *p, char *out,
                               size_t size) {
  uint32_t h = 2166136261u; /* FNV-1a of the topic name */
  for (const char *s = tg_kclient_topic(c, p->topic); *s; s++)
    h = (h ^ (uint8_t)*s) * 16777619u;
  snprintf(out, size, "k%08x-%d-%lld", h, (int)p->partition, (long long)p->offset);
}

/* A record as the delivery the worker runs: a job as it is, a trip event
 * wrapped in a new job (its request_id and enqueue time from the record). */
static void fill_delivery(tg_transport_t *t, struct tg_kmsg *m, tg_delivery_t *d) {
  memset(d, 0, sizeof(*d));
  d->index = (uint64_t)m->pos.offset + 1;
  d->deliveries = 1; /* Kafka does not count them */
  entry_of(&m->pos, d->entry_id, sizeof(d->entry_id));
  d->enqueued_at_ms = m->timestamp_ms > 0 ? m->timestamp_ms : tg_now_ms();
  d->payload = m->value;
  d->payload_len = m->len;
  m->value = NULL;
  if (d->payload_len > TG_MAX_PAYLOAD_BYTES) { /* only its length was kept */
    snprintf(d->parse_error, sizeof(d->parse_error),
             "payload: record of %zu bytes exceeds the limit of %d bytes", d->payload_len,
             TG_MAX_PAYLOAD_BYTES);
    d->payload_len = 0;
    derived_request_id(KC(t), &m->pos, d->request_id, sizeof(d->request_id));
    return;
  }
  json_error_t je;
  json_t *root = json_loadb(d->payload, d->payload_len, JSON_REJECT_DUPLICATES, &je);
  bool is_job = json_is_object(root) && json_object_get(root, "v") &&
                json_object_get(root, "request_id");
  json_t *rid = is_job ? json_object_get(root, "request_id") : NULL;
  if (is_job && json_is_string(rid) &&
      strlen(json_string_value(rid)) <= TG_MAX_REQUEST_ID_CHARS) {
    snprintf(d->request_id, sizeof(d->request_id), "%s", json_string_value(rid));
    json_decref(root);
    return; /* transport.c parses and validates it */
  }
  json_decref(root);
  derived_request_id(KC(t), &m->pos, d->request_id, sizeof(d->request_id));
  if (is_job)
    return; /* a job with a bad request_id: its parse error says why */
  char why[200];
  tg_trip_t *trip = tg_trip_parse(d->payload, d->payload_len, why, sizeof(why));
  if (!trip) {
    snprintf(d->parse_error, sizeof(d->parse_error), "trip event: %s", why);
    return;
  }
  tg_job_t *job = tg_job_new(trip, t->conf.env, d->request_id, d->enqueued_at_ms, why,
                             sizeof(why));
  char *json = job ? tg_job_serialize(job) : NULL;
  if (!job)
    tg_trip_destroy(trip);
  tg_job_destroy(job);
  if (!json) {
    snprintf(d->parse_error, sizeof(d->parse_error), "trip event: %s",
             job ? "out of memory" : why);
    return;
  }
  free(d->payload);
  d->payload = json;
  d->payload_len = strlen(json);
}

static tg_err_t k_take(tg_transport_t *t, int max, int timeout_ms, tg_delivery_t **out,
                       int *n_out, char *errstr, size_t n) {
  struct tg_kmsg *m = NULL;
  int nm = 0;
  *out = NULL;
  *n_out = 0;
  tg_err_t err = tg_kclient_take(KC(t), max, timeout_ms, &m, &nm, errstr, n);
  if (err != TG_OK || nm == 0)
    return err;
  tg_delivery_t *d = calloc((size_t)nm, sizeof(*d));
  if (!d) { /* their offsets would stay open: stop, a restart reads them again */
    tg_kmsgs_free(m, nm);
    tg_kclient_break(KC(t), "out of memory while taking records");
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  for (int i = 0; i < nm; i++)
    fill_delivery(t, &m[i], &d[i]);
  tg_kmsgs_free(m, nm);
  *out = d;
  *n_out = nm;
  return TG_OK;
}

/* ---- finishing ---------------------------------------------------------- */

static tg_err_t finish_one(tg_transport_t *t, const tg_delivery_t *d, const struct tg_krec *recs,
                           int n_recs, char *errstr, size_t n) {
  struct tg_kpos pos;
  if (!pos_of(d, &pos)) {
    snprintf(errstr, n, "kafka: delivery %s is not a kafka entry", d->entry_id);
    return TG_ERR_INVAL;
  }
  tg_err_t e;
  return tg_kclient_finish(KC(t), &pos, &recs, &n_recs, 1, &e, errstr, n);
}

static struct tg_krec result_rec(const struct tg_publish *p) {
  return (struct tg_krec){.topic = TG_KT_OUT, .key = p->request_id, .value = p->result_json,
                          .len = strlen(p->result_json), .last_code = p->last_code};
}

static tg_err_t k_complete(tg_transport_t *t, const tg_delivery_t *d, const struct tg_publish *p,
                           bool *published, char *errstr, size_t n) {
  struct tg_krec r = result_rec(p);
  tg_err_t err = finish_one(t, d, &r, 1, errstr, n);
  *published = err == TG_OK;
  return err;
}

static tg_err_t k_complete_many(tg_transport_t *t, const tg_delivery_t *const *ds,
                                const struct tg_publish *ps, int count, bool *published,
                                tg_err_t *errs, char *errstr, size_t n) {
  struct tg_kpos *pos = calloc((size_t)count, sizeof(*pos));
  struct tg_krec *recs = calloc((size_t)count, sizeof(*recs));
  const struct tg_krec **rp = calloc((size_t)count, sizeof(*rp));
  int *nr = calloc((size_t)count, sizeof(*nr));
  tg_err_t err = pos && recs && rp && nr ? TG_OK : TG_ERR_NOMEM;
  for (int i = 0; i < count && err == TG_OK; i++) {
    if (!pos_of(ds[i], &pos[i])) {
      snprintf(errstr, n, "kafka: delivery %s is not a kafka entry", ds[i]->entry_id);
      err = TG_ERR_INVAL;
    }
    recs[i] = result_rec(&ps[i]);
    rp[i] = &recs[i];
    nr[i] = 1;
  }
  if (err == TG_OK)
    err = tg_kclient_finish(KC(t), pos, rp, nr, count, errs, errstr, n);
  else
    for (int i = 0; i < count; i++)
      errs[i] = err;
  for (int i = 0; i < count; i++)
    published[i] = errs[i] == TG_OK;
  if (err == TG_ERR_NOMEM)
    snprintf(errstr, n, "out of memory");
  free(pos);
  free(recs);
  free(rp);
  free(nr);
  return err;
}

static tg_err_t k_done_many(tg_transport_t *t, const char *const *request_ids,
                            const int64_t *generations, int count, bool *done, char *errstr,
                            size_t n) {
  (void)t, (void)request_ids, (void)generations, (void)errstr, (void)n;
  for (int i = 0; i < count; i++)
    done[i] = false; /* no result store: a redelivered job runs again (same keys) */
  return TG_OK;
}

static tg_err_t k_retry_later(tg_transport_t *t, const tg_delivery_t *d, const char *request_id,
                              const char *job_json, bool priority, int64_t enqueued_at_ms,
                              int64_t due_ms, char *errstr, size_t n) {
  (void)priority, (void)enqueued_at_ms;
  struct tg_krec r = {.topic = TG_KT_RETRY, .key = request_id, .value = job_json,
                      .len = strlen(job_json), .not_before_ms = due_ms > 0 ? due_ms : 1};
  return finish_one(t, d, &r, 1, errstr, n);
}

static tg_err_t k_dead_letter(tg_transport_t *t, const tg_delivery_t *d,
                              const struct tg_publish *p, char *errstr, size_t n) {
  json_t *job = json_loadb(d->payload, d->payload_len, 0, NULL);
  json_t *result = json_loads(p->result_json, 0, NULL);
  json_t *rec = json_pack("{s:s, s:I, s:I, s:I, s:o, s:o}", "request_id", p->request_id,
                          "generation", (json_int_t)p->generation, "dead_at_ms",
                          (json_int_t)tg_now_ms(), "index", (json_int_t)d->index, "job",
                          job ? job : json_stringn(d->payload, d->payload_len), "result",
                          result ? result : json_null());
  char *text = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
  json_decref(rec);
  if (!text) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  struct tg_krec recs[2] = {
    result_rec(p),
    {.topic = TG_KT_DLQ, .key = p->request_id, .value = text, .len = strlen(text)},
  };
  tg_err_t err = finish_one(t, d, recs, 2, errstr, n);
  free(text);
  return err;
}

static tg_err_t k_extend_lease(tg_transport_t *t, const tg_delivery_t *d, char *errstr,
                               size_t n) {
  struct tg_kpos pos;
  if (pos_of(d, &pos) && tg_kclient_current(KC(t), &pos))
    return TG_OK;
  snprintf(errstr, n, "kafka: partition of %s revoked", d->entry_id);
  return TG_ERR_NOT_FOUND;
}

static void k_abandon(tg_transport_t *t, const tg_delivery_t *d, const char *why) {
  struct tg_kpos pos;
  char msg[600];
  if (!pos_of(d, &pos) || !tg_kclient_current(KC(t), &pos))
    return; /* its partition moved on: the next owner runs it */
  snprintf(msg, sizeof(msg), "job %s could not be finished (%s): its offset would hold the "
                             "partition; restart to read again from the last commit",
           d->request_id, why);
  tg_kclient_break(KC(t), msg);
}

static bool k_stats(tg_transport_t *t, struct tg_transport_stats *out) {
  return tg_kclient_stats(KC(t), out);
}

static bool k_broken(tg_transport_t *t, char *why, size_t n) {
  return !tg_kclient_healthy(KC(t), why, n);
}

static tg_err_t k_ack_if_done(tg_transport_t *t, const tg_delivery_t *d, int64_t generation,
                              bool *acked, char *errstr, size_t n) {
  (void)t, (void)d, (void)generation, (void)errstr, (void)n;
  *acked = false;
  return TG_OK;
}

/* ---- what rebalancing does instead -------------------------------------- */

static tg_err_t k_promote_due(tg_transport_t *t, int64_t now_ms, int max, int *promoted,
                              char *errstr, size_t n) {
  (void)t, (void)now_ms, (void)max, (void)errstr, (void)n;
  *promoted = 0; /* a retry is a record with a not-before time, honoured by the consumer */
  return TG_OK;
}

static tg_err_t k_reclaim(tg_transport_t *t, int max, const tg_delivery_t *held, int n_held,
                          tg_delivery_t **out, int *n_out, char *errstr, size_t n) {
  (void)t, (void)max, (void)held, (void)n_held, (void)errstr, (void)n;
  *out = NULL; /* a dead worker's partitions are reassigned by the group */
  *n_out = 0;
  return TG_OK;
}

static tg_err_t k_park_stale(tg_transport_t *t, int max, int *parked, tg_delivery_t **dead,
                             int *n_dead, char *errstr, size_t n) {
  (void)t, (void)max, (void)errstr, (void)n;
  *parked = 0;
  *dead = NULL;
  *n_dead = 0;
  return TG_OK;
}

static tg_err_t k_prune_consumers(tg_transport_t *t, int64_t idle_ms, int *removed,
                                  char *errstr, size_t n) {
  (void)t, (void)idle_ms, (void)errstr, (void)n;
  *removed = 0; /* the group coordinator drops members after session.timeout.ms */
  return TG_OK;
}

static tg_err_t k_heartbeat(tg_transport_t *t, int64_t now_ms, char *errstr, size_t n) {
  (void)now_ms;
  return tg_kclient_healthy(KC(t), errstr, n) ? TG_OK : TG_ERR_TRANSPORT;
}

static tg_err_t k_lease(tg_transport_t *t, const char *name, const char *holder,
                        int64_t lease_ms, bool release, bool *held, char *errstr, size_t n) {
  (void)t, (void)name, (void)holder, (void)lease_ms, (void)errstr, (void)n;
  *held = !release; /* nothing to share: each scheduler replica only reads lag */
  return TG_OK;
}

/* ---- reads ---------------------------------------------------------------- */

static tg_err_t k_dlq_list(tg_transport_t *t, uint64_t from, int max, struct tg_dlq_entry **out,
                           int *n_out, char *errstr, size_t n) {
  (void)t, (void)from, (void)max;
  *out = NULL;
  *n_out = 0;
  return unsupported("dlq list", errstr, n);
}

static tg_err_t k_dlq_requeue(tg_transport_t *t, uint64_t dlq_index, const char *request_id,
                              const char *job_json, bool priority, int64_t enqueued_at_ms,
                              uint64_t *index, char *errstr, size_t n) {
  (void)t, (void)dlq_index, (void)request_id, (void)job_json, (void)priority;
  (void)enqueued_at_ms, (void)index;
  return unsupported("dlq replay", errstr, n);
}

static tg_err_t k_dlq_purge(tg_transport_t *t, uint64_t dlq_index, int64_t *purged,
                            char *errstr, size_t n) {
  (void)t, (void)dlq_index;
  *purged = 0;
  return unsupported("dlq purge", errstr, n);
}

static bool k_history_done(const tg_transport_t *t) {
  (void)t;
  return true;
}

static tg_err_t k_depth(tg_transport_t *t, struct tg_depth *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  int64_t in = 0, retry = 0, dead = 0;
  tg_err_t err = tg_kclient_lag(KC(t), TG_KT_IN, true, &in, errstr, n);
  if (err == TG_OK)
    err = tg_kclient_lag(KC(t), TG_KT_RETRY, true, &retry, errstr, n);
  if (err == TG_OK)
    err = tg_kclient_lag(KC(t), TG_KT_DLQ, false, &dead, errstr, n);
  out->waiting = in + retry; /* the group's lag: not yet committed, running jobs included */
  out->dead = dead;
  return err;
}

static tg_err_t k_remove(tg_transport_t *t, uint64_t index, bool *removed, char *errstr,
                         size_t n) {
  (void)t, (void)index;
  *removed = false;
  return unsupported("delete", errstr, n);
}

static tg_err_t k_get_result(tg_transport_t *t, const char *request_id, char **json_out,
                             char *errstr, size_t n) {
  (void)t, (void)request_id;
  *json_out = NULL;
  return unsupported("get", errstr, n);
}

static tg_err_t k_read_sink(tg_transport_t *t, uint64_t from_index, int max, int timeout_ms,
                            struct tg_sink_frame **out, int *n_out, char *errstr, size_t n) {
  struct tg_kmsg *m = NULL;
  int nm = 0;
  *out = NULL;
  *n_out = 0;
  tg_err_t err = tg_kclient_read(KC(t), TG_KT_OUT, from_index == 0, max, timeout_ms, &m, &nm,
                                 errstr, n);
  if (err != TG_OK || nm == 0)
    return err;
  struct tg_sink_frame *f = calloc((size_t)nm, sizeof(*f));
  if (!f) {
    tg_kmsgs_free(m, nm);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  for (int i = 0; i < nm; i++) {
    f[i].index = (uint64_t)m[i].pos.offset + 1;
    snprintf(f[i].request_id, sizeof(f[i].request_id), "%s", m[i].key ? m[i].key : "");
    f[i].result = m[i].value;
    m[i].value = NULL;
  }
  tg_kmsgs_free(m, nm);
  *out = f;
  *n_out = nm;
  return TG_OK;
}

const struct tg_transport_ops tg_transport_kafka = {
  .name = "kafka",
  .open = k_open,
  .close = k_close,
  .put = k_put,
  .put_many = k_put_many,
  .take = k_take,
  .complete = k_complete,
  .complete_many = k_complete_many,
  .done_many = k_done_many,
  .retry_later = k_retry_later,
  .dead_letter = k_dead_letter,
  .extend_lease = k_extend_lease,
  .ack_if_done = k_ack_if_done,
  .promote_due = k_promote_due,
  .reclaim = k_reclaim,
  .park_stale = k_park_stale,
  .prune_consumers = k_prune_consumers,
  .heartbeat = k_heartbeat,
  .lease = k_lease,
  .dlq_list = k_dlq_list,
  .dlq_requeue = k_dlq_requeue,
  .dlq_purge = k_dlq_purge,
  .depth = k_depth,
  .history_done = k_history_done,
  .remove = k_remove,
  .get_result = k_get_result,
  .read_sink = k_read_sink,
  .abandon = k_abandon,
  .broken = k_broken,
  .stats = k_stats,
};
