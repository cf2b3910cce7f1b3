/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.c - the EAS queue operations on Redis Streams (store.h).
 *
 * Input puts go through proto's transport (tg_transport_put_req), so the
 * put script, the cap and idempotency are the workers' own. Everything else
 * talks to Redis over this store's own connection (proto/redis_conn.h:
 * backoff 50 ms doubling to 1 s, for up to reconnect_max_ms per operation,
 * one log line when it drops and one when it is back). Multi-step writes
 * are Lua scripts (store_scripts.h).
 *
 * Costs: put, commit, delete, negative commit, group reads, pending and
 * attributes are O(frames touched) (+ O(groups)). Filtered get and count
 * scan the streams in batches of SCAN_BATCH entries inside Redis (one script
 * call per batch), O(queue length) in the worst case; search counts the
 * undelivered entries ahead of the frame inside Redis, O(that count);
 * truncate is O(entries deleted + pending entries below the index).
 */
#include "store.h"

#include "redis_conn.h"
#include "store_scripts.h"
#include "tg_job.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"
#include "tg_trip.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum script_id {
  S_REMOVE, S_TRUNCATE, S_PUT_SINK, S_RELEASE, S_SCAN, S_COUNT_RANGE, S_FORGET, S__COUNT
};

static const char *const script_src[S__COUNT] = {
  [S_REMOVE] = SCH_LUA_REMOVE,     [S_TRUNCATE] = SCH_LUA_TRUNCATE,
  [S_PUT_SINK] = SCH_LUA_PUT_SINK, [S_RELEASE] = SCH_LUA_RELEASE, [S_FORGET] = SCH_LUA_FORGET,
  [S_SCAN] = SCH_LUA_SCAN,         [S_COUNT_RANGE] = SCH_LUA_COUNT_RANGE,
};

#define KEY_MAX 160
#define GROUP_MAX 160            /* "eas:" + gid */
#define MADE_MAX 64              /* groups known to exist, per store */
#define ID_BATCH 256             /* ids per remove/release script call */
#define SCAN_BATCH 1000          /* entries read per scan script call */
#define AUTOCLAIM_ROUNDS 64      /* XAUTOCLAIM calls per stream and read, at most */

struct sch_store_s {
  struct tg_transport_conf conf;
  tg_transport_t *t;             /* for puts on the input queue */
  tg_redis_conn_t *conn;         /* everything else */
  char k_in[KEY_MAX], k_prio[KEY_MAX], k_out[KEY_MAX], k_out_seq[KEY_MAX];
  char k_eos[2][KEY_MAX];
  char sha[S__COUNT][41];
  char made[MADE_MAX][GROUP_MAX + 4]; /* "<q>:<group>" created at least once */
  int n_made;
};

/* The streams of a queue, in read order: input = priority then normal. */
static int streams_of(const sch_store_t *s, enum sch_queue q, const char *k[2]) {
  if (q == SCH_QUEUE_SINK) {
    k[0] = s->k_out;
    return 1;
  }
  k[0] = s->k_prio;
  k[1] = s->k_in;
  return 2;
}

static uint64_t index_of(const char *id) {
  return strncmp(id, "0-", 2) == 0 ? strtoull(id + 2, NULL, 10) : 0;
}

/* ms and seq of a stream id, for comparisons */
static void id_parts(const char *id, uint64_t *ms, uint64_t *seq) {
  char *end = NULL;
  *ms = strtoull(id, &end, 10);
  *seq = end && *end == '-' ? strtoull(end + 1, NULL, 10) : 0;
}

static int id_cmp(const char *a, const char *b) {
  uint64_t am, as, bm, bs;
  id_parts(a, &am, &as);
  id_parts(b, &bm, &bs);
  if (am != bm)
    return am < bm ? -1 : 1;
  return as < bs ? -1 : as > bs;
}

static const char *queue_name(enum sch_queue q) { return q == SCH_QUEUE_SINK ? "sink" : "input"; }

/* ---- connection ------------------------------------------------------- */

#define MAX_ARGV 16

/* A command from NUL-terminated strings (redis_conn.h): NULL means
 * TG_ERR_TRANSPORT, reason in errstr. */
static redisReply *st_cmdv(sch_store_t *s, char *errstr, size_t n, int argc, const char **argv) {
  return tg_redis_conn_cmdv(s->conn, 0, argc, argv, errstr, n);
}

/* A reply that is an error: message, free, TG_ERR_TRANSPORT. */
static tg_err_t reply_error(sch_store_t *s, redisReply *r, const char *what, char *errstr,
                            size_t n) {
  snprintf(errstr, n, "redis %s: %s: %s", tg_redis_conn_url(s->conn), what, r->str);
  freeReplyObject(r);
  return TG_ERR_TRANSPORT;
}

/* A command whose error replies are all failures: TG_OK with the reply in
 * *out (freeReplyObject() it), else TG_ERR_TRANSPORT with the reason. */
static tg_err_t st_run(sch_store_t *s, int argc, const char **argv, redisReply **out,
                       char *errstr, size_t n) {
  redisReply *r = st_cmdv(s, errstr, n, argc, argv);
  *out = NULL;
  if (!r)
    return TG_ERR_TRANSPORT;
  if (r->type == REDIS_REPLY_ERROR)
    return reply_error(s, r, argv[0], errstr, n);
  *out = r;
  return TG_OK;
}

static bool is_err(const redisReply *r, const char *prefix) {
  return r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

/* Run a script (redis_conn.h). Error replies become TG_ERR_TRANSPORT. */
static redisReply *st_eval(sch_store_t *s, enum script_id id, int nkeys, const char **keys,
                           int nargs, const char **args, const size_t *arglens, tg_err_t *err,
                           char *errstr, size_t n) {
  redisReply *r = tg_redis_conn_eval(s->conn, script_src[id], s->sha[id], nkeys, keys, nargs,
                                     args, arglens, err, errstr, n);
  if (r && r->type == REDIS_REPLY_ERROR) {
    *err = reply_error(s, r, "script", errstr, n);
    return NULL;
  }
  return r;
}

sch_store_t *sch_store_new(const struct tg_transport_conf *conf, char *errstr, size_t n) {
  sch_store_t *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  s->conf = *conf;
  const char *e = conf->env;
  snprintf(s->k_in, KEY_MAX, "tripgen:{%s}:in", e);
  snprintf(s->k_prio, KEY_MAX, "tripgen:{%s}:in:prio", e);
  snprintf(s->k_out, KEY_MAX, "tripgen:{%s}:out", e);
  snprintf(s->k_out_seq, KEY_MAX, "tripgen:{%s}:out:seq", e);
  snprintf(s->k_eos[SCH_QUEUE_INPUT], KEY_MAX, "tripgen:{%s}:eos:in", e);
  snprintf(s->k_eos[SCH_QUEUE_SINK], KEY_MAX, "tripgen:{%s}:eos:out", e);
  for (int i = 0; i < S__COUNT; i++)
    tg_redis_sha1_hex(script_src[i], s->sha[i]);
  if (!(s->t = tg_transport_new(conf, errstr, n)) ||
      !(s->conn = tg_redis_conn_new(conf, "store", NULL, NULL, errstr, n))) {
    sch_store_destroy(s);
    return NULL;
  }
  return s;
}

void sch_store_destroy(sch_store_t *s) {
  if (!s)
    return;
  tg_transport_destroy(s->t);
  tg_redis_conn_destroy(s->conn);
  free(s);
}

/* ---- frames ----------------------------------------------------------- */

void sch_frames_free(struct sch_frame *f, int n) {
  if (!f)
    return;
  for (int i = 0; i < n; i++) {
    json_decref(f[i].tags);
    free(f[i].data);
  }
  free(f);
}

struct fvec {
  struct sch_frame *a;
  int n, cap;
};

static void fvec_free(struct fvec *v) {
  sch_frames_free(v->a, v->n);
  v->a = NULL;
  v->n = v->cap = 0;
}

static const redisReply *field(const redisReply *fields, const char *name) {
  for (size_t i = 0; fields && fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements;
       i += 2) {
    const redisReply *k = fields->element[i], *v = fields->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
      return v;
  }
  return NULL;
}

/*
 * Append the frame of an entry [id, [field, value, ...]]. Returns 1, 0 for
 * an entry without fields (deleted while pending), -1 when out of memory.
 */
static int fvec_add(struct fvec *v, const redisReply *entry, enum sch_queue q) {
  if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements < 2 ||
      entry->element[0]->type != REDIS_REPLY_STRING)
    return 0;
  const redisReply *fields = entry->element[1];
  if (fields->type != REDIS_REPLY_ARRAY)
    return 0;
  if (v->n == v->cap) {
    int nc = v->cap ? v->cap * 2 : 8;
    struct sch_frame *na = realloc(v->a, sizeof(*na) * (size_t)nc);
    if (!na)
      return -1;
    v->a = na;
    v->cap = nc;
  }
  struct sch_frame *f = &v->a[v->n];
  memset(f, 0, sizeof(*f));
  f->index = index_of(entry->element[0]->str);
  const redisReply *tags = field(fields, "tags"), *rid = field(fields, "request_id"),
                   *lc = field(fields, "last_code"), *data = field(fields, "data");
  if (!data)
    data = field(fields, q == SCH_QUEUE_SINK ? "result" : "job");
  if (tags) {
    json_t *t = json_loadb(tags->str, tags->len, 0, NULL);
    if (json_is_object(t))
      f->tags = t;
    else
      json_decref(t);
  }
  if (!f->tags && !(f->tags = json_object()))
    return -1;
  if (json_object_set_new(f->tags, "requestId",
                          json_stringn(rid ? rid->str : "", rid ? rid->len : 0)) != 0)
    goto nomem;
  if (lc && json_object_set_new(f->tags, "lastCode", json_stringn(lc->str, lc->len)) != 0)
    goto nomem;
  f->len = data ? data->len : 0;
  if (!(f->data = malloc(f->len + 1)))
    goto nomem;
  if (f->len)
    memcpy(f->data, data->str, f->len);
  f->data[f->len] = '\0';
  v->n++;
  return 1;
nomem:
  json_decref(f->tags);
  f->tags = NULL;
  return -1;
}

/* Append every entry of an array of entries. */
static tg_err_t fvec_add_all(struct fvec *v, const redisReply *entries, enum sch_queue q,
                             char *errstr, size_t n) {
  for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++)
    if (fvec_add(v, entries->element[i], q) < 0) {
      snprintf(errstr, n, "out of memory");
      return TG_ERR_NOMEM;
    }
  return TG_OK;
}

/* ---- removal ---------------------------------------------------------- */

/* Ack in every group and delete the given indexes on the queue's streams. */
static tg_err_t remove_indexes(sch_store_t *s, enum sch_queue q, const uint64_t *idx, int count,
                               int64_t *deleted, char *errstr, size_t n) {
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  char ids[ID_BATCH][32];
  const char *args[ID_BATCH];
  if (deleted)
    *deleted = 0;
  for (int off = 0; off < count; off += ID_BATCH) {
    int m = count - off < ID_BATCH ? count - off : ID_BATCH;
    for (int i = 0; i < m; i++) {
      snprintf(ids[i], sizeof(ids[i]), "0-%" PRIu64, idx[off + i]);
      args[i] = ids[i];
    }
    tg_err_t err = TG_OK;
    redisReply *r = st_eval(s, S_REMOVE, nk, keys, m, args, NULL, &err, errstr, n);
    if (!r)
      return err;
    if (deleted && r->type == REDIS_REPLY_INTEGER)
      *deleted += r->integer;
    freeReplyObject(r);
  }
  return TG_OK;
}

static tg_err_t remove_frames(sch_store_t *s, enum sch_queue q, const struct sch_frame *f,
                              int count, char *errstr, size_t n) {
  if (count <= 0)
    return TG_OK;
  uint64_t *idx = malloc(sizeof(*idx) * (size_t)count);
  if (!idx) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  for (int i = 0; i < count; i++)
    idx[i] = f[i].index;
  tg_err_t err = remove_indexes(s, q, idx, count, NULL, errstr, n);
  free(idx);
  return err;
}

tg_err_t sch_store_delete(sch_store_t *s, enum sch_queue q, const uint64_t *idx, int count,
                          int64_t *deleted, char *errstr, size_t n) {
  return remove_indexes(s, q, idx, count, deleted, errstr, n);
}

tg_err_t sch_store_commit(sch_store_t *s, enum sch_queue q, const char *gid, const uint64_t *idx,
                          int count, char *errstr, size_t n) {
  (void)gid; /* acked in every group: the frame is gone for all of them */
  return remove_indexes(s, q, idx, count, NULL, errstr, n);
}

tg_err_t sch_store_truncate(sch_store_t *s, enum sch_queue q, uint64_t below, int64_t *deleted,
                            char *errstr, size_t n) {
  *deleted = 0;
  if (below <= 1)
    return TG_OK;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  char minid[32];
  snprintf(minid, sizeof(minid), "0-%" PRIu64, below);
  const char *args[] = {minid};
  tg_err_t err = TG_OK;
  redisReply *r = st_eval(s, S_TRUNCATE, nk, keys, 1, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *deleted = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  freeReplyObject(r);
  return TG_OK;
}

/* ---- puts ------------------------------------------------------------- */

/* The tags as compact JSON, NULL when there are none; *bad on failure. */
static char *tags_dump(json_t *tags, bool *bad) {
  *bad = false;
  if (!tags || !json_is_object(tags) || json_object_size(tags) == 0)
    return NULL;
  char *j = json_dumps(tags, JSON_COMPACT);
  *bad = j == NULL;
  return j;
}

tg_err_t sch_store_put_input(sch_store_t *s, const char *body, size_t len, json_t *tags,
                             bool priority, bool strict, int64_t idem_ttl_ms, uint64_t *index,
                             char *request_id, char *errstr, size_t n) {
  if (len > TG_MAX_PAYLOAD_BYTES) {
    snprintf(errstr, n, "payload too large: %zu bytes, limit %d", len, TG_MAX_PAYLOAD_BYTES);
    return TG_ERR_TOO_LARGE;
  }
  char why[256];
  tg_trip_t *trip = tg_trip_parse(body, len, why, sizeof(why));
  if (!trip && strict) {
    snprintf(errstr, n, "%s", why);
    return TG_ERR_BAD_MSG;
  }
  bool bad;
  char *tj = tags_dump(tags, &bad);
  if (bad) {
    tg_trip_destroy(trip);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int64_t now = tg_now_ms();
  struct tg_put_req req = {.priority = priority, .enqueued_at_ms = now, .tags_json = tj};
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_job_t *job = NULL;
  char *json = NULL;
  tg_err_t err = TG_OK;
  if (trip) {
    if (!(job = tg_job_new(trip, s->conf.env, NULL, now, errstr, n))) {
      tg_trip_destroy(trip);
      free(tj);
      return TG_ERR_NOMEM;
    }
    job->priority = priority;
    if (!(json = tg_job_serialize(job))) {
      snprintf(errstr, n, "out of memory");
      err = TG_ERR_NOMEM;
      goto out;
    }
    req.request_id = job->request_id;
    req.payload = json;
    req.payload_len = strlen(json);
    req.data = body;
    req.data_len = len;
    req.idempotency_key = job->trip->trip_id;
    req.idempotency_ttl_ms = idem_ttl_ms;
  } else {
    /* not a trip: enqueued as it is, with the reason; the worker answers it
     * with invalid_input and that reason */
    tg_request_id_generate(rid);
    req.request_id = rid;
    req.payload = body;
    req.payload_len = len;
    req.invalid_reason = why;
  }
  bool repeated = false;
  err = tg_transport_put_req(s->t, &req, index, request_id, &repeated, errstr, n);
out:
  free(json);
  tg_job_destroy(job);
  free(tj);
  return err;
}

tg_err_t sch_store_put_sink(sch_store_t *s, const char *body, size_t len, json_t *tags,
                            uint64_t *index, char *request_id, char *errstr, size_t n) {
  if (len > TG_MAX_PAYLOAD_BYTES) {
    snprintf(errstr, n, "payload too large: %zu bytes, limit %d", len, TG_MAX_PAYLOAD_BYTES);
    return TG_ERR_TOO_LARGE;
  }
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  json_t *rest = tags && json_is_object(tags) ? json_copy(tags) : json_object();
  if (!rest) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  const char *given = json_string_value(json_object_get(rest, "requestId"));
  if (given) {
    if (!*given || strlen(given) > TG_MAX_REQUEST_ID_CHARS ||
        !tg_charset_ok(given, TG_CS_REQUEST_ID)) {
      snprintf(errstr, n, "requestId: must be 1-%d of %s", TG_MAX_REQUEST_ID_CHARS,
               tg_charset_describe(TG_CS_REQUEST_ID));
      json_decref(rest);
      return TG_ERR_BAD_MSG;
    }
    snprintf(rid, sizeof(rid), "%s", given);
  } else {
    tg_request_id_generate(rid);
  }
  json_object_del(rest, "requestId");
  bool bad;
  char *tj = tags_dump(rest, &bad);
  json_decref(rest);
  if (bad) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  char maxlen[24];
  snprintf(maxlen, sizeof(maxlen), "%" PRId64, s->conf.sink_max_len);
  const char *keys[] = {s->k_out, s->k_out_seq};
  const char *args[] = {maxlen, rid, body ? body : "", tj ? tj : ""};
  size_t lens[] = {strlen(maxlen), strlen(rid), body ? len : 0, tj ? strlen(tj) : 0};
  tg_err_t err = TG_OK;
  redisReply *r = st_eval(s, S_PUT_SINK, 2, keys, 4, args, lens, &err, errstr, n);
  free(tj);
  if (!r)
    return err;
  *index = r->type == REDIS_REPLY_INTEGER ? (uint64_t)r->integer : 0;
  freeReplyObject(r);
  snprintf(request_id, TG_MAX_REQUEST_ID_CHARS + 1, "%s", rid);
  return TG_OK;
}

/* ---- reads ------------------------------------------------------------ */

static bool filtered(const struct sch_filter *f) {
  return f && (f->request_id || (f->tags && json_object_size(f->tags) > 0));
}

/* Which streams a filter looks at: fills k, returns their number. */
static int filter_streams(const sch_store_t *s, enum sch_queue q, const struct sch_filter *f,
                          const char *k[2]) {
  int nk = streams_of(s, q, k);
  if (q == SCH_QUEUE_INPUT && f && f->priority == 1)
    return 1;
  if (q == SCH_QUEUE_INPUT && f && f->priority == 0) {
    k[0] = s->k_in;
    return 1;
  }
  return nk;
}

/*
 * Up to @limit matching entries of one stream from @start (inclusive), or
 * only their number (@limit 0, into *count), scanning in batches inside
 * Redis.
 */
static tg_err_t scan_stream(sch_store_t *s, const char *key, const char *start,
                            const struct sch_filter *f, int limit, enum sch_queue q,
                            struct fvec *v, int64_t *count, char *errstr, size_t n) {
  char *tj = NULL;
  if (f && f->tags && json_object_size(f->tags) > 0 &&
      !(tj = json_dumps(f->tags, JSON_COMPACT))) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  char cur[64], batch[16], lim[16];
  snprintf(cur, sizeof(cur), "%s", start);
  snprintf(batch, sizeof(batch), "%d", SCAN_BATCH);
  int64_t found = 0;
  tg_err_t err = TG_OK;
  while (*cur) {
    snprintf(lim, sizeof(lim), "%d", limit > 0 ? limit - (int)found : 0);
    const char *args[] = {cur, batch, lim, f && f->request_id ? f->request_id : "",
                          tj ? tj : ""};
    redisReply *r = st_eval(s, S_SCAN, 1, &key, 5, args, NULL, &err, errstr, n);
    if (!r)
      break;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
      freeReplyObject(r);
      snprintf(errstr, n, "redis: unexpected reply to a scan");
      err = TG_ERR_TRANSPORT;
      break;
    }
    found += r->element[1]->integer;
    if (limit > 0)
      err = fvec_add_all(v, r->element[2], q, errstr, n);
    snprintf(cur, sizeof(cur), "%s", r->element[0]->str ? r->element[0]->str : "");
    freeReplyObject(r);
    if (err != TG_OK || (limit > 0 && found >= limit))
      break;
  }
  free(tj);
  if (count)
    *count = found;
  return err;
}

static int frame_cmp(const void *a, const void *b) {
  const struct sch_frame *x = a, *y = b;
  return x->index < y->index ? -1 : x->index > y->index;
}

tg_err_t sch_store_get(sch_store_t *s, enum sch_queue q, uint64_t from_index, int length,
                       const struct sch_filter *f, bool auto_delete, struct sch_frame **out,
                       int *n_out, char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  if (length <= 0)
    return TG_OK;
  const char *keys[2];
  int nk = filter_streams(s, q, f, keys);
  char start[32], cnt[16];
  snprintf(start, sizeof(start), "0-%" PRIu64, from_index);
  snprintf(cnt, sizeof(cnt), "%d", length);
  struct fvec v = {0};
  tg_err_t err = TG_OK;
  /* the first @length of each stream, merged by index */
  for (int k = 0; k < nk && err == TG_OK; k++) {
    if (filtered(f)) {
      err = scan_stream(s, keys[k], start, f, length, q, &v, NULL, errstr, n);
      continue;
    }
    const char *argv[] = {"XRANGE", keys[k], start, "+", "COUNT", cnt};
    redisReply *r = st_cmdv(s, errstr, n, 6, argv);
    if (!r) {
      err = TG_ERR_TRANSPORT;
    } else if (r->type == REDIS_REPLY_ERROR) {
      err = reply_error(s, r, "XRANGE", errstr, n);
    } else {
      err = fvec_add_all(&v, r, q, errstr, n);
      freeReplyObject(r);
    }
  }
  if (err != TG_OK) {
    fvec_free(&v);
    return err;
  }
  if (v.n > 1)
    qsort(v.a, (size_t)v.n, sizeof(*v.a), frame_cmp);
  while (v.n > length) {
    v.n--;
    json_decref(v.a[v.n].tags);
    free(v.a[v.n].data);
  }
  if (auto_delete && (err = remove_frames(s, q, v.a, v.n, errstr, n)) != TG_OK) {
    fvec_free(&v);
    return err;
  }
  if (v.n == 0)
    fvec_free(&v);
  *out = v.a;
  *n_out = v.n;
  return TG_OK;
}

static tg_err_t xlen(sch_store_t *s, const char *key, int64_t *len, char *errstr, size_t n) {
  const char *argv[] = {"XLEN", key};
  redisReply *r;
  tg_err_t err = st_run(s, 2, argv, &r, errstr, n);
  if (err != TG_OK)
    return err;
  *len = r->integer;
  freeReplyObject(r);
  return TG_OK;
}

tg_err_t sch_store_count(sch_store_t *s, enum sch_queue q, const struct sch_filter *f,
                         int64_t *count, char *errstr, size_t n) {
  const char *keys[2];
  int nk = filter_streams(s, q, f, keys);
  *count = 0;
  for (int k = 0; k < nk; k++) {
    int64_t c = 0;
    tg_err_t err = filtered(f) ? scan_stream(s, keys[k], "-", f, 0, q, NULL, &c, errstr, n)
                               : xlen(s, keys[k], &c, errstr, n);
    if (err != TG_OK)
      return err;
    *count += c;
  }
  return TG_OK;
}

/* ---- groups ----------------------------------------------------------- */

/* The pairs of one XINFO GROUPS / CONSUMERS element: the value of @name. */
static const redisReply *info_get(const redisReply *g, const char *name) {
  for (size_t i = 0; g->type == REDIS_REPLY_ARRAY && i + 1 < g->elements; i += 2)
    if (g->element[i]->type == REDIS_REPLY_STRING && strcmp(g->element[i]->str, name) == 0)
      return g->element[i + 1];
  return NULL;
}

/* XINFO GROUPS of a stream; an empty array reply for a missing stream
 * becomes NULL with TG_OK. */
static tg_err_t xinfo_groups(sch_store_t *s, const char *key, redisReply **out, char *errstr,
                             size_t n) {
  *out = NULL;
  const char *argv[] = {"XINFO", "GROUPS", key};
  redisReply *r = st_cmdv(s, errstr, n, 3, argv);
  if (!r)
    return TG_ERR_TRANSPORT;
  if (r->type == REDIS_REPLY_ERROR) {
    if (strstr(r->str, "no such key")) {
      freeReplyObject(r);
      return TG_OK;
    }
    return reply_error(s, r, "XINFO GROUPS", errstr, n);
  }
  *out = r;
  return TG_OK;
}

static tg_err_t group_name(const char *gid, char *buf, size_t size, char *errstr, size_t n) {
  if (!gid || !*gid || (size_t)snprintf(buf, size, "eas:%s", gid) >= size) {
    snprintf(errstr, n, "group: must be 1-%zu characters", size - 5);
    return TG_ERR_INVAL;
  }
  return TG_OK;
}

/* Create the group on the queue's streams at from_index (once per store,
 * unless @force: the stream was deleted under us). */
static tg_err_t ensure_group(sch_store_t *s, enum sch_queue q, const char *g,
                             uint64_t from_index, bool force, char *errstr, size_t n) {
  char tag[GROUP_MAX + 4];
  snprintf(tag, sizeof(tag), "%d:%s", (int)q, g);
  for (int i = 0; i < s->n_made && !force; i++)
    if (strcmp(s->made[i], tag) == 0)
      return TG_OK;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  char start[32];
  snprintf(start, sizeof(start), "0-%" PRIu64, from_index ? from_index - 1 : 0);
  for (int k = 0; k < nk; k++) {
    const char *argv[] = {"XGROUP", "CREATE", keys[k], g, start, "MKSTREAM"};
    redisReply *r = st_cmdv(s, errstr, n, 6, argv);
    if (!r)
      return TG_ERR_TRANSPORT;
    if (r->type == REDIS_REPLY_ERROR && !is_err(r, "BUSYGROUP"))
      return reply_error(s, r, "XGROUP CREATE", errstr, n);
    freeReplyObject(r);
  }
  if (s->n_made == MADE_MAX)
    s->n_made = 0; /* forget them all: each is created (or found) again once */
  snprintf(s->made[s->n_made++], sizeof(s->made[0]), "%s", tag);
  return TG_OK;
}

/* A group command; a NOGROUP answer (stream deleted, say) recreates the
 * group once and repeats it. */
static redisReply *group_cmd(sch_store_t *s, enum sch_queue q, const char *g, uint64_t from,
                             int argc, const char **argv, tg_err_t *err, char *errstr,
                             size_t n) {
  for (int round = 0;; round++) {
    redisReply *r = st_cmdv(s, errstr, n, argc, argv);
    if (!r) {
      *err = TG_ERR_TRANSPORT;
      return NULL;
    }
    if (r->type != REDIS_REPLY_ERROR)
      return r;
    if (round == 0 && is_err(r, "NOGROUP")) {
      freeReplyObject(r);
      if ((*err = ensure_group(s, q, g, from, true, errstr, n)) != TG_OK)
        return NULL;
      continue;
    }
    *err = reply_error(s, r, argv[0], errstr, n);
    return NULL;
  }
}

struct fvec;
static void pass_on_refused(sch_store_t *s, enum sch_queue q, const char *g, const char *uid,
                            struct fvec *v, int from);
static tg_err_t release(sch_store_t *s, enum sch_queue q, const char *g, const char *uid,
                        const uint64_t *idx, int count, char *errstr, size_t n);

tg_err_t sch_store_group_read(sch_store_t *s, enum sch_queue q, const char *gid, const char *uid,
                              uint64_t from_index, int max, bool auto_commit,
                              struct sch_cursor *cur, struct sch_frame **out, int *n_out,
                              char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK)
    return err;
  if (!uid || !*uid) {
    snprintf(errstr, n, "consumer: must not be empty");
    return TG_ERR_INVAL;
  }
  if (max <= 0)
    return TG_OK;
  if ((err = ensure_group(s, q, g, from_index, false, errstr, n)) != TG_OK)
    return err;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  struct fvec v = {0};
  char cnt[16];

  /* 1. this consumer's own pending frames (an earlier connection's), read
   * forward from the cursor so that none is sent twice. A call that starts
   * here returns after it: the caller's window (counted from what is
   * pending) is only right again once the history is through. */
  bool history = !cur->own_done;
  while (!cur->own_done && v.n == 0 && err == TG_OK) {
    snprintf(cnt, sizeof(cnt), "%d", max);
    const char *argv[MAX_ARGV] = {"XREADGROUP", "GROUP", g, uid, "COUNT", cnt, "STREAMS"};
    int argc = 7;
    for (int k = 0; k < nk; k++)
      argv[argc++] = keys[k];
    for (int k = 0; k < nk; k++)
      argv[argc++] = *cur->own[k] ? cur->own[k] : "0";
    redisReply *r = group_cmd(s, q, g, from_index, argc, argv, &err, errstr, n);
    if (!r)
      break;
    int seen = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
      const redisReply *sr = r->element[i], *entries = sr->element[1];
      int k = nk == 2 && strcmp(sr->element[0]->str, keys[1]) == 0 ? 1 : 0;
      for (size_t e = 0; e < entries->elements && err == TG_OK; e++) {
        const redisReply *entry = entries->element[e];
        seen++;
        snprintf(cur->own[k], sizeof(cur->own[k]), "%s", entry->element[0]->str);
        int added = fvec_add(&v, entry, q);
        if (added < 0) {
          snprintf(errstr, n, "out of memory");
          err = TG_ERR_NOMEM;
        } else if (added == 0) { /* deleted while pending: nothing to send */
          char e2[128];
          const char *ack[] = {"XACK", keys[k], g, entry->element[0]->str};
          freeReplyObject(st_cmdv(s, e2, sizeof(e2), 4, ack));
        }
      }
    }
    freeReplyObject(r);
    if (seen == 0)
      cur->own_done = true;
  }

  /* 2. frames of the group idle past the visibility timeout (their
   * consumer went away, or released them; not the ones this uid refused) */
  int claimed_from = v.n;
  char idle[24];
  snprintf(idle, sizeof(idle), "%" PRId64, s->conf.visibility_timeout_ms);
  for (int k = 0; k < nk && err == TG_OK && !history && v.n < max; k++) {
    char start[48] = "0-0";
    for (int round = 0; round < AUTOCLAIM_ROUNDS && v.n < max; round++) {
      snprintf(cnt, sizeof(cnt), "%d", max - v.n);
      const char *argv[] = {"XAUTOCLAIM", keys[k], g, uid, idle, start, "COUNT", cnt};
      redisReply *r = group_cmd(s, q, g, from_index, 8, argv, &err, errstr, n);
      if (!r)
        break;
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        freeReplyObject(r);
        break;
      }
      err = fvec_add_all(&v, r->element[1], q, errstr, n);
      snprintf(start, sizeof(start), "%s", r->element[0]->str ? r->element[0]->str : "0-0");
      freeReplyObject(r);
      if (err != TG_OK || strcmp(start, "0-0") == 0)
        break;
    }
  }

  if (!history && v.n > claimed_from)
    pass_on_refused(s, q, g, uid, &v, claimed_from);

  /* 3. new frames, priority first */
  for (int k = 0; k < nk && err == TG_OK && !history && v.n < max; k++) {
    snprintf(cnt, sizeof(cnt), "%d", max - v.n);
    const char *argv[] = {"XREADGROUP", "GROUP", g, uid, "COUNT", cnt, "STREAMS", keys[k], ">"};
    redisReply *r = group_cmd(s, q, g, from_index, 9, argv, &err, errstr, n);
    if (!r)
      break;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && err == TG_OK; i++)
      err = fvec_add_all(&v, r->element[i]->element[1], q, errstr, n);
    freeReplyObject(r);
  }

  if (err == TG_OK && auto_commit)
    err = remove_frames(s, q, v.a, v.n, errstr, n);
  if (err != TG_OK && (v.n == 0 || auto_commit)) {
    fvec_free(&v);
    return err;
  }
  /* frames read are this consumer's now: hand them out even after an error */
  if (v.n == 0)
    fvec_free(&v);
  *out = v.a;
  *n_out = v.n;
  return TG_OK;
}

tg_err_t sch_store_group_ack(sch_store_t *s, enum sch_queue q, const char *gid,
                             const uint64_t *idx, int count, char *errstr, size_t n) {
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK)
    return err;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  for (int i = 0; i < count; i++) {
    char id[32];
    snprintf(id, sizeof(id), "0-%" PRIu64, idx[i]);
    for (int k = 0; k < nk; k++) { /* the frame is in one of them; XACK elsewhere is a no-op */
      const char *argv[] = {"XACK", keys[k], g, id};
      redisReply *r = st_cmdv(s, errstr, n, 4, argv);
      if (!r)
        return TG_ERR_TRANSPORT;
      if (r->type == REDIS_REPLY_ERROR && !is_err(r, "NOGROUP"))
        return reply_error(s, r, "XACK", errstr, n);
      freeReplyObject(r);
    }
  }
  return TG_OK;
}

tg_err_t sch_store_group_pending(sch_store_t *s, enum sch_queue q, const char *gid,
                                 const char *uid, int64_t *count, char *errstr, size_t n) {
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK)
    return err;
  *count = 0;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  for (int k = 0; k < nk; k++) {
    const char *argv[] = {"XPENDING", keys[k], g};
    redisReply *r = st_cmdv(s, errstr, n, 3, argv);
    if (!r)
      return TG_ERR_TRANSPORT;
    if (r->type == REDIS_REPLY_ERROR) {
      if (is_err(r, "NOGROUP")) { /* no such group (yet): nothing pending */
        freeReplyObject(r);
        continue;
      }
      return reply_error(s, r, "XPENDING", errstr, n);
    }
    const redisReply *cons = r->type == REDIS_REPLY_ARRAY && r->elements == 4 ? r->element[3]
                                                                               : NULL;
    for (size_t i = 0; cons && cons->type == REDIS_REPLY_ARRAY && i < cons->elements; i++) {
      const redisReply *c = cons->element[i];
      if (c->elements == 2 && strcmp(c->element[0]->str, uid) == 0)
        *count += strtoll(c->element[1]->str, NULL, 10);
    }
    freeReplyObject(r);
  }
  return TG_OK;
}

/* XCLAIM to their holders with the idle time at the visibility timeout. */
static tg_err_t release(sch_store_t *s, enum sch_queue q, const char *g, const char *uid,
                        const uint64_t *idx, int count, char *errstr, size_t n) {
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  char idle[24];
  snprintf(idle, sizeof(idle), "%" PRId64, s->conf.visibility_timeout_ms);
  char ids[ID_BATCH][32];
  const char *args[3 + ID_BATCH] = {g, idle, uid ? uid : ""};
  int off = 0;
  do {
    int m = count - off < ID_BATCH ? count - off : ID_BATCH;
    for (int i = 0; i < m; i++) {
      snprintf(ids[i], sizeof(ids[i]), "0-%" PRIu64, idx[off + i]);
      args[3 + i] = ids[i];
    }
    tg_err_t err = TG_OK;
    redisReply *r = st_eval(s, S_RELEASE, nk, keys, 3 + m, args, NULL, &err, errstr, n);
    if (!r)
      return err;
    freeReplyObject(r);
    off += m;
  } while (off < count);
  return TG_OK;
}

tg_err_t sch_store_group_release(sch_store_t *s, enum sch_queue q, const char *gid,
                                 const char *uid, char *errstr, size_t n) {
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK)
    return err;
  if (!uid || !*uid) {
    snprintf(errstr, n, "consumer: must not be empty");
    return TG_ERR_INVAL;
  }
  return release(s, q, g, uid, NULL, 0, errstr, n);
}

/* The key that remembers, briefly, who refused a frame. */
static void refused_key(const sch_store_t *s, enum sch_queue q, const char *g, uint64_t index,
                        char *buf, size_t size) {
  snprintf(buf, size, "tripgen:{%s}:refused:%s:%s:%" PRIu64, s->conf.env,
           q == SCH_QUEUE_SINK ? "out" : "in", g, index);
}

static int64_t refusal_ttl(const sch_store_t *s) {
  return s->conf.visibility_timeout_ms < 30000 ? s->conf.visibility_timeout_ms : 30000;
}

tg_err_t sch_store_group_forget(sch_store_t *s, enum sch_queue q, const char *gid,
                                const char *uid, char *errstr, size_t n) {
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK)
    return err;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  const char *args[] = {g, uid};
  redisReply *r = st_eval(s, S_FORGET, nk, keys, 2, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  freeReplyObject(r);
  return TG_OK;
}

tg_err_t sch_store_negative_commit(sch_store_t *s, enum sch_queue q, const char *gid,
                                   const char *uid, const uint64_t *idx, int count,
                                   char *errstr, size_t n) {
  char g[GROUP_MAX];
  tg_err_t err = group_name(gid, g, sizeof(g), errstr, n);
  if (err != TG_OK || count <= 0)
    return err;
  /* remember the refuser for a while: its group_read passes these frames on */
  char ttl[24];
  snprintf(ttl, sizeof(ttl), "%" PRId64, refusal_ttl(s));
  for (int i = 0; uid && *uid && i < count; i++) {
    char key[KEY_MAX + GROUP_MAX + 48];
    refused_key(s, q, g, idx[i], key, sizeof(key));
    const char *argv[] = {"SET", key, uid, "PX", ttl};
    redisReply *r = st_cmdv(s, errstr, n, 5, argv);
    if (!r)
      return TG_ERR_TRANSPORT;
    freeReplyObject(r);
  }
  return release(s, q, g, NULL, idx, count, errstr, n);
}

/* Frames claimed from the group that this uid refused a moment ago: give
 * them back to the group (others take them) and drop them from @v. */
static void pass_on_refused(sch_store_t *s, enum sch_queue q, const char *g, const char *uid,
                            struct fvec *v, int from) {
  int kept = from;
  for (int i = from; i < v->n; i++) {
    char key[KEY_MAX + GROUP_MAX + 48], e[128];
    refused_key(s, q, g, v->a[i].index, key, sizeof(key));
    const char *argv[] = {"GET", key};
    redisReply *r = st_cmdv(s, e, sizeof(e), 2, argv);
    bool mine = r && r->type == REDIS_REPLY_STRING && strcmp(r->str, uid) == 0;
    freeReplyObject(r);
    if (mine && release(s, q, g, NULL, &v->a[i].index, 1, e, sizeof(e)) == TG_OK) {
      json_decref(v->a[i].tags);
      free(v->a[i].data);
      continue;
    }
    v->a[kept++] = v->a[i];
  }
  v->n = kept;
}

/* ---- search, attributes, eos ------------------------------------------ */

/* Whether entry @id is pending in group @g of @key. */
static tg_err_t is_pending(sch_store_t *s, const char *key, const char *g, const char *id,
                           bool *pending, char *errstr, size_t n) {
  const char *argv[] = {"XPENDING", key, g, id, id, "1"};
  redisReply *r = st_cmdv(s, errstr, n, 6, argv);
  if (!r)
    return TG_ERR_TRANSPORT;
  if (r->type == REDIS_REPLY_ERROR) {
    if (!is_err(r, "NOGROUP"))
      return reply_error(s, r, "XPENDING", errstr, n);
    *pending = false;
  } else {
    *pending = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
  }
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t count_range(sch_store_t *s, const char *key, const char *start, const char *end,
                            int64_t *count, char *errstr, size_t n) {
  const char *args[] = {start, end};
  tg_err_t err = TG_OK;
  redisReply *r = st_eval(s, S_COUNT_RANGE, 1, &key, 2, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *count = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  freeReplyObject(r);
  return TG_OK;
}

/* The workers' group on an input stream: last delivered id and pending count. */
static tg_err_t workers_state(sch_store_t *s, const char *key, char *ld, size_t ldsize,
                              int64_t *pending, char *errstr, size_t n) {
  snprintf(ld, ldsize, "0-0");
  *pending = 0;
  redisReply *r = NULL;
  tg_err_t err = xinfo_groups(s, key, &r, errstr, n);
  for (size_t i = 0; err == TG_OK && r && i < r->elements; i++) {
    const redisReply *name = info_get(r->element[i], "name");
    if (!name || strcmp(name->str, s->conf.group) != 0)
      continue;
    const redisReply *l = info_get(r->element[i], "last-delivered-id");
    const redisReply *p = info_get(r->element[i], "pending");
    if (l && l->type == REDIS_REPLY_STRING)
      snprintf(ld, ldsize, "%s", l->str);
    if (p && p->type == REDIS_REPLY_INTEGER)
      *pending = p->integer;
  }
  freeReplyObject(r);
  return err;
}

tg_err_t sch_store_search(sch_store_t *s, enum sch_queue q, uint64_t index, bool *pending,
                          int64_t *wait_count, char *errstr, size_t n) {
  *pending = false;
  *wait_count = -1;
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  char id[32], before[34];
  snprintf(id, sizeof(id), "0-%" PRIu64, index);
  snprintf(before, sizeof(before), "(%s", id);
  int where = -1;
  for (int k = 0; k < nk && where < 0 && index > 0; k++) {
    const char *argv[] = {"XRANGE", keys[k], id, id};
    redisReply *r = st_cmdv(s, errstr, n, 4, argv);
    if (!r)
      return TG_ERR_TRANSPORT;
    if (r->type == REDIS_REPLY_ERROR)
      return reply_error(s, r, "XRANGE", errstr, n);
    if (r->elements > 0)
      where = k;
    freeReplyObject(r);
  }
  if (where < 0)
    return TG_OK;
  tg_err_t err = TG_OK;
  char ld[48];
  int64_t ahead = 0, c = 0;
  if (q == SCH_QUEUE_INPUT) {
    /* the workers read priority first: all waiting priority entries are
     * ahead of a normal one; the waiting ones lie after last-delivered-id */
    if ((err = is_pending(s, keys[where], s->conf.group, id, pending, errstr, n)) != TG_OK)
      return err;
    if (*pending) {
      *wait_count = 0;
      return TG_OK;
    }
    int64_t pend = 0;
    if ((err = workers_state(s, keys[where], ld, sizeof(ld), &pend, errstr, n)) != TG_OK)
      return err;
    char after[50];
    snprintf(after, sizeof(after), "(%s", ld);
    if (id_cmp(ld, id) < 0 &&
        (err = count_range(s, keys[where], after, before, &ahead, errstr, n)) != TG_OK)
      return err;
    if (where == 1) {
      int64_t len = 0;
      if ((err = xlen(s, keys[0], &len, errstr, n)) != TG_OK ||
          (err = workers_state(s, keys[0], ld, sizeof(ld), &pend, errstr, n)) != TG_OK)
        return err;
      ahead += len - pend > 0 ? len - pend : 0;
    }
    *wait_count = ahead;
    return TG_OK;
  }
  /* sink: pending in any EAS group; waiting = frames ahead that no EAS
   * group has had yet (all frames ahead when there is no group) */
  redisReply *r = NULL;
  if ((err = xinfo_groups(s, keys[0], &r, errstr, n)) != TG_OK)
    return err;
  snprintf(ld, sizeof(ld), "0-0");
  for (size_t i = 0; r && i < r->elements && err == TG_OK && !*pending; i++) {
    const redisReply *name = info_get(r->element[i], "name");
    const redisReply *l = info_get(r->element[i], "last-delivered-id");
    if (!name || strncmp(name->str, "eas:", 4) != 0)
      continue;
    err = is_pending(s, keys[0], name->str, id, pending, errstr, n);
    if (l && l->type == REDIS_REPLY_STRING && id_cmp(l->str, ld) > 0)
      snprintf(ld, sizeof(ld), "%s", l->str);
  }
  freeReplyObject(r);
  if (err != TG_OK)
    return err;
  if (*pending) {
    *wait_count = 0;
    return TG_OK;
  }
  char after[50];
  snprintf(after, sizeof(after), "(%s", ld);
  if (id_cmp(ld, id) < 0 && (err = count_range(s, keys[0], after, before, &c, errstr, n)) != TG_OK)
    return err;
  *wait_count = c;
  return TG_OK;
}

/* The first (@rev false) or last entry's index of a stream, 0 when empty. */
static tg_err_t edge_index(sch_store_t *s, const char *key, bool rev, uint64_t *idx,
                           char *errstr, size_t n) {
  const char *argv[] = {rev ? "XREVRANGE" : "XRANGE", key, rev ? "+" : "-", rev ? "-" : "+",
                        "COUNT", "1"};
  redisReply *r;
  tg_err_t err = st_run(s, 6, argv, &r, errstr, n);
  if (err != TG_OK)
    return err;
  *idx = r->elements > 0 ? index_of(r->element[0]->element[0]->str) : 0;
  freeReplyObject(r);
  return TG_OK;
}

static bool in_list(char **list, size_t count, const char *str) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(list[i], str) == 0)
      return true;
  return false;
}

static tg_err_t list_add(char ***list, size_t *count, const char *str, char *errstr, size_t n) {
  if (in_list(*list, *count, str))
    return TG_OK;
  char **nl = realloc(*list, sizeof(*nl) * (*count + 1));
  if (!nl || !(nl[*count] = strdup(str))) {
    if (nl)
      *list = nl;
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  *list = nl;
  (*count)++;
  return TG_OK;
}

void sch_attrs_free(struct sch_attrs *a) {
  if (!a)
    return;
  for (size_t i = 0; i < a->n_groups; i++)
    free(a->groups[i]);
  for (size_t i = 0; i < a->n_consumers; i++)
    free(a->consumers[i]);
  free(a->groups);
  free(a->consumers);
  a->groups = a->consumers = NULL;
  a->n_groups = a->n_consumers = 0;
}

static tg_err_t attrs_fill(sch_store_t *s, enum sch_queue q, struct sch_attrs *a, char *errstr,
                           size_t n) {
  const char *keys[2];
  int nk = streams_of(s, q, keys);
  tg_err_t err = TG_OK;
  a->max_length = q == SCH_QUEUE_SINK ? s->conf.sink_max_len : s->conf.queue_cap;
  for (int k = 0; k < nk; k++) {
    int64_t len = 0;
    uint64_t first = 0, last = 0;
    if ((err = xlen(s, keys[k], &len, errstr, n)) != TG_OK ||
        (err = edge_index(s, keys[k], false, &first, errstr, n)) != TG_OK ||
        (err = edge_index(s, keys[k], true, &last, errstr, n)) != TG_OK)
      return err;
    a->length += len;
    if (first && (!a->first_index || first < a->first_index))
      a->first_index = first;
    if (last > a->last_index)
      a->last_index = last;
    redisReply *r = NULL;
    if ((err = xinfo_groups(s, keys[k], &r, errstr, n)) != TG_OK)
      return err;
    for (size_t i = 0; r && i < r->elements && err == TG_OK; i++) {
      const redisReply *name = info_get(r->element[i], "name");
      if (!name || strncmp(name->str, "eas:", 4) != 0)
        continue;
      const char *gid = name->str + 4;
      if ((err = list_add(&a->groups, &a->n_groups, gid, errstr, n)) != TG_OK)
        break;
      const char *argv[] = {"XINFO", "CONSUMERS", keys[k], name->str};
      redisReply *c = st_cmdv(s, errstr, n, 4, argv);
      if (!c) {
        err = TG_ERR_TRANSPORT;
        break;
      }
      if (c->type == REDIS_REPLY_ERROR) {
        err = reply_error(s, c, "XINFO CONSUMERS", errstr, n);
        break;
      }
      for (size_t j = 0; j < c->elements && err == TG_OK; j++) {
        const redisReply *cn = info_get(c->element[j], "name");
        if (!cn)
          continue;
        size_t sz = strlen(gid) + strlen(cn->str) + 2;
        char *both = malloc(sz);
        if (!both) {
          snprintf(errstr, n, "out of memory");
          err = TG_ERR_NOMEM;
          break;
        }
        snprintf(both, sz, "%s/%s", gid, cn->str);
        err = list_add(&a->consumers, &a->n_consumers, both, errstr, n);
        free(both);
      }
      freeReplyObject(c);
    }
    freeReplyObject(r);
    if (err != TG_OK)
      return err;
  }
  const char *argv[] = {"GET", s->k_eos[q]};
  redisReply *r;
  if ((err = st_run(s, 2, argv, &r, errstr, n)) != TG_OK)
    return err;
  a->eos = r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0;
  freeReplyObject(r);
  return TG_OK;
}

tg_err_t sch_store_attributes(sch_store_t *s, enum sch_queue q, struct sch_attrs *a,
                              char *errstr, size_t n) {
  memset(a, 0, sizeof(*a));
  tg_err_t err = attrs_fill(s, q, a, errstr, n);
  if (err != TG_OK)
    sch_attrs_free(a);
  return err;
}

tg_err_t sch_store_eos(sch_store_t *s, enum sch_queue q, char *errstr, size_t n) {
  const char *argv[] = {"SET", s->k_eos[q], "1"};
  redisReply *r;
  tg_err_t err = st_run(s, 3, argv, &r, errstr, n);
  if (err != TG_OK)
    return err;
  freeReplyObject(r);
  tg_log(TG_INFO, "event=queue_eos env=%s queue=%s", s->conf.env, queue_name(q));
  return TG_OK;
}
