/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_redis.c - the Redis Streams queue backend (the default, like
 * EAS). One connection per handle (redis_conn.h: reconnects with backoff
 * for up to reconnect_max_ms per operation, the workers' groups recreated
 * on every reconnect and on NOGROUP); every multi-step operation is one Lua
 * script (redis_scripts.h), so a worker may die between any two
 * instructions without losing or doubling an effect.
 */
#include "redis_conn.h"
#include "redis_scripts.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"
#include "transport_int.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum script_id {
  S_PUT, S_COMPLETE, S_DEAD, S_RETRY, S_PROMOTE, S_RECLAIM, S_DEPTH, S_REMOVE, S_EXTEND,
  S_ACK_DONE, S_PARK, S_CLAIM_PARKED, S_PRUNE, S_LEASE, S_LEASE_RELEASE, S_DLQ_REQUEUE, S__COUNT
};

static const char *const script_src[S__COUNT] = {
  [S_PUT] = TG_LUA_PUT,           [S_COMPLETE] = TG_LUA_COMPLETE,
  [S_DEAD] = TG_LUA_DEAD_LETTER,  [S_RETRY] = TG_LUA_RETRY_LATER,
  [S_PROMOTE] = TG_LUA_PROMOTE_DUE, [S_RECLAIM] = TG_LUA_RECLAIM,
  [S_DEPTH] = TG_LUA_DEPTH,       [S_REMOVE] = TG_LUA_REMOVE,
  [S_EXTEND] = TG_LUA_EXTEND_LEASE, [S_ACK_DONE] = TG_LUA_ACK_IF_DONE,
  [S_PARK] = TG_LUA_PARK_STALE,   [S_CLAIM_PARKED] = TG_LUA_CLAIM_PARKED,
  [S_PRUNE] = TG_LUA_PRUNE_CONSUMERS, [S_LEASE] = TG_LUA_LEASE,
  [S_LEASE_RELEASE] = TG_LUA_LEASE_RELEASE, [S_DLQ_REQUEUE] = TG_LUA_DLQ_REQUEUE,
};

#define KEY_MAX 128

struct redis_be {
  tg_redis_conn_t *conn;
  char k_in[KEY_MAX], k_prio[KEY_MAX], k_seq[KEY_MAX], k_out[KEY_MAX], k_out_seq[KEY_MAX];
  char k_dlq[KEY_MAX], k_dlq_seq[KEY_MAX], k_delayed[KEY_MAX], k_workers[KEY_MAX];
  char sha[S__COUNT][41];
  bool own_pel_done;         /* this consumer's old entries have all been read once */
  char pel_cursor[2][48];    /* history read position: [0] priority, [1] normal stream */
  char park_cursor[2][48];   /* park_stale's scan position, same order */
  int64_t next_parked_check; /* monotonic ms of take()'s next look at parked entries */
};

static struct redis_be *BE(tg_transport_t *t) { return t->backend; }

/* ---- connection ------------------------------------------------------- */

static tg_err_t check_simple(redisReply *r, const char *what, char *errstr, size_t n) {
  if (r && r->type == REDIS_REPLY_ERROR) {
    snprintf(errstr, n, "redis %s: %s", what, r->str);
    freeReplyObject(r);
    return TG_ERR_TRANSPORT;
  }
  freeReplyObject(r);
  return TG_OK;
}

/* After every (re)connect, and once on NOGROUP: the workers' group on both
 * input streams (tg_redis_on_connect_fn). */
static tg_err_t ensure_groups(redisContext *c, void *arg, char *errstr, size_t n) {
  tg_transport_t *t = arg;
  struct redis_be *b = BE(t);
  const char *streams[] = {b->k_in, b->k_prio};
  for (int i = 0; i < 2; i++) {
    redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", streams[i],
                                 t->conf.group);
    if (!r) {
      snprintf(errstr, n, "%s", c->errstr);
      return TG_ERR_TRANSPORT;
    }
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
      snprintf(errstr, n, "creating group %s on %s: %s", t->conf.group, streams[i], r->str);
      freeReplyObject(r);
      return TG_ERR_TRANSPORT;
    }
    freeReplyObject(r);
  }
  return TG_OK;
}

/* A command from NUL-terminated strings (redis_conn.h); NULL sets *err. */
static redisReply *be_cmdv(tg_transport_t *t, int64_t block_ms, tg_err_t *err, char *errstr,
                           size_t n, int argc, const char **argv) {
  redisReply *r = tg_redis_conn_cmdv(BE(t)->conn, block_ms, argc, argv, errstr, n);
  if (!r)
    *err = TG_ERR_TRANSPORT;
  return r;
}

/*
 * Run a script (redis_conn.h). Server errors become TG_ERR_TRANSPORT, or
 * TG_ERR_QUEUE_FULL for the put script's cap.
 */
static redisReply *be_eval(tg_transport_t *t, enum script_id id, int nkeys, const char **keys,
                           int nargs, const char **args, const size_t *arglens, tg_err_t *err,
                           char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  redisReply *r = tg_redis_conn_eval(b->conn, script_src[id], b->sha[id], nkeys, keys, nargs,
                                     args, arglens, err, errstr, n);
  if (r && r->type == REDIS_REPLY_ERROR) {
    if (strncmp(r->str, "QUEUEFULL ", 10) == 0) {
      snprintf(errstr, n, "queue full: %s", r->str + 10);
      *err = TG_ERR_QUEUE_FULL;
    } else {
      snprintf(errstr, n, "redis %s: %s", tg_redis_conn_url(b->conn), r->str);
      *err = TG_ERR_TRANSPORT;
    }
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

static tg_err_t r_open(tg_transport_t *t, char *errstr, size_t n) {
  struct redis_be *b = calloc(1, sizeof(*b));
  if (!b) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  const char *e = t->conf.env;
  snprintf(b->k_in, KEY_MAX, "tripgen:{%s}:in", e);
  snprintf(b->k_prio, KEY_MAX, "tripgen:{%s}:in:prio", e);
  snprintf(b->k_seq, KEY_MAX, "tripgen:{%s}:seq", e);
  snprintf(b->k_out, KEY_MAX, "tripgen:{%s}:out", e);
  snprintf(b->k_out_seq, KEY_MAX, "tripgen:{%s}:out:seq", e);
  snprintf(b->k_dlq, KEY_MAX, "tripgen:{%s}:dlq", e);
  snprintf(b->k_dlq_seq, KEY_MAX, "tripgen:{%s}:dlq:seq", e);
  snprintf(b->k_delayed, KEY_MAX, "tripgen:{%s}:delayed", e);
  snprintf(b->k_workers, KEY_MAX, "tripgen:{%s}:workers", e);
  for (int i = 0; i < S__COUNT; i++)
    tg_redis_sha1_hex(script_src[i], b->sha[i]);
  snprintf(b->pel_cursor[0], sizeof(b->pel_cursor[0]), "0");
  snprintf(b->pel_cursor[1], sizeof(b->pel_cursor[1]), "0");
  b->own_pel_done = t->conf.skip_own_pending; /* another handle reads them */
  snprintf(b->park_cursor[0], sizeof(b->park_cursor[0]), "-");
  snprintf(b->park_cursor[1], sizeof(b->park_cursor[1]), "-");
  t->backend = b;
  if (!(b->conn = tg_redis_conn_new(&t->conf, "transport", ensure_groups, t, errstr, n))) {
    free(b);
    t->backend = NULL;
    return TG_ERR_TRANSPORT;
  }
  return TG_OK;
}

static void r_close(tg_transport_t *t) {
  struct redis_be *b = BE(t);
  if (!b)
    return;
  tg_redis_conn_destroy(b->conn);
  free(b);
}

/* ---- helpers ---------------------------------------------------------- */

static uint64_t index_of(const char *id) {
  /* 0-<n> ids carry the EAS index; anything else has none */
  return strncmp(id, "0-", 2) == 0 ? strtoull(id + 2, NULL, 10) : 0;
}

static const char *result_key(const tg_transport_t *t, const char *request_id, char *buf,
                              size_t size) {
  snprintf(buf, size, "tripgen:{%s}:result:%s", t->conf.env, request_id);
  return buf;
}

static const char *stream_of(struct redis_be *b, const tg_delivery_t *d) {
  return d->priority ? b->k_prio : b->k_in;
}

/* Fill a delivery from an entry [id, [field, value, ...]]. Returns 1, 0 for
 * a deleted entry (nil fields), -1 when out of memory. */
static int fill_delivery(tg_delivery_t *d, const redisReply *entry, bool priority,
                          int64_t deliveries) {
  memset(d, 0, sizeof(*d));
  const redisReply *id = entry->element[0], *fields = entry->element[1];
  snprintf(d->entry_id, sizeof(d->entry_id), "%s", id->str);
  d->index = index_of(id->str);
  d->priority = priority;
  d->deliveries = deliveries;
  if (!fields || fields->type != REDIS_REPLY_ARRAY)
    return 0;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply *k = fields->element[i], *v = fields->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      continue;
    if (strcmp(k->str, "job") == 0 && !d->payload) {
      if (!(d->payload = malloc(v->len + 1)))
        return -1;
      memcpy(d->payload, v->str, v->len);
      d->payload[v->len] = '\0';
      d->payload_len = v->len;
    } else if (strcmp(k->str, "request_id") == 0) {
      snprintf(d->request_id, sizeof(d->request_id), "%.*s", (int)v->len, v->str);
      if (!tg_charset_ok(d->request_id, TG_CS_REQUEST_ID))
        d->request_id[0] = '\0';
    } else if (strcmp(k->str, "enqueued_at") == 0) {
      d->enqueued_at_ms = strtoll(v->str, NULL, 10);
    } else if (strcmp(k->str, "invalid") == 0) { /* the producer already knows why */
      snprintf(d->parse_error, sizeof(d->parse_error), "%.*s", (int)v->len, v->str);
    }
  }
  if (!d->payload) { /* an entry without a job: deliver it as invalid input */
    if (!(d->payload = strdup("")))
      return -1;
    d->payload_len = 0;
  }
  return 1;
}

static void ack_deleted(tg_transport_t *t, const char *stream, const char *id) {
  tg_err_t err;
  char e[128];
  const char *argv[] = {"XACK", stream, t->conf.group, id};
  freeReplyObject(be_cmdv(t, 0, &err, e, sizeof(e), 4, argv));
}

/* Append deliveries from an XREADGROUP reply. deliveries == 0 means: look
 * up each entry's delivery count (history reads). */
static tg_err_t collect(tg_transport_t *t, const redisReply *r, int64_t deliveries,
                        tg_delivery_t **arr, int *count, int *cap, int *seen, char *errstr,
                        size_t n) {
  struct redis_be *b = BE(t);
  if (r && r->type == REDIS_REPLY_ERROR) { /* READONLY, NOGROUP, WRONGTYPE...: not "empty" */
    snprintf(errstr, n, "redis %s: %s", tg_redis_conn_url(b->conn), r->str);
    return TG_ERR_TRANSPORT;
  }
  if (!r || r->type != REDIS_REPLY_ARRAY)
    return TG_OK; /* nil: nothing */
  for (size_t s = 0; s < r->elements; s++) {
    const redisReply *sr = r->element[s];
    bool prio = strcmp(sr->element[0]->str, b->k_prio) == 0;
    const redisReply *entries = sr->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
      if (seen)
        (*seen)++;
      if (*count == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        tg_delivery_t *na = realloc(*arr, sizeof(**arr) * (size_t)nc);
        if (!na)
          return TG_ERR_NOMEM; /* the rest stays pending: reclaimed later */
        *arr = na;
        *cap = nc;
      }
      tg_delivery_t *d = &(*arr)[*count];
      int filled = fill_delivery(d, entries->element[i], prio, deliveries);
      if (filled < 0) {
        snprintf(errstr, n, "out of memory reading entry %s", d->entry_id);
        return TG_ERR_NOMEM;
      }
      if (filled == 0) {
        ack_deleted(t, sr->element[0]->str, d->entry_id);
        continue;
      }
      (*count)++;
    }
  }
  return TG_OK;
}

/* Delivery counts of this consumer's pending entries, for history reads. */
static void lookup_counts(tg_transport_t *t, tg_delivery_t *d, int count) {
  for (int i = 0; i < count; i++) {
    tg_err_t err;
    char e[128];
    const char *argv[] = {"XPENDING", d[i].priority ? BE(t)->k_prio : BE(t)->k_in,
                          t->conf.group, d[i].entry_id, d[i].entry_id, "1"};
    redisReply *r = be_cmdv(t, 0, &err, e, sizeof(e), 6, argv);
    d[i].deliveries = 1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->elements == 4)
      d[i].deliveries = r->element[0]->element[3]->integer;
    freeReplyObject(r);
  }
}

/* Deliveries from a script reply of {k, id, count, fields} entries (k: 1
 * priority, 2 normal), appended to *arr. Entries deleted meanwhile are
 * acked away. */
static tg_err_t parse_claimed(tg_transport_t *t, const redisReply *r, tg_delivery_t **arr,
                              int *count, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
    return TG_OK;
  tg_delivery_t *na = realloc(*arr, sizeof(**arr) * ((size_t)*count + r->elements));
  if (!na) {
    snprintf(errstr, n, "out of memory"); /* they stay pending: reclaimed later */
    return TG_ERR_NOMEM;
  }
  *arr = na;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
      continue;
    /* reshape {k, id, count, fields} into the [id, fields] form of a read */
    redisReply *pair[2] = {e->element[1], e->elements > 3 ? e->element[3] : NULL};
    redisReply entry = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = pair};
    bool prio = e->element[0]->integer == 1;
    tg_delivery_t *d = &(*arr)[*count];
    int filled = fill_delivery(d, &entry, prio, e->element[2]->integer);
    if (filled > 0)
      (*count)++;
    else if (filled == 0)
      ack_deleted(t, prio ? b->k_prio : b->k_in, d->entry_id);
    else
      free(d->payload); /* out of memory: stays pending, reclaimed again later */
  }
  return TG_OK;
}

/* Parked entries (reclaimed by the scheduler) for this consumer, at most
 * every 200 ms per handle: a look costs a round trip. */
static tg_err_t claim_parked(tg_transport_t *t, int max, tg_delivery_t **arr, int *count,
                             char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  int64_t now = tg_mono_ms();
  if (now < b->next_parked_check)
    return TG_OK;
  char mx[16];
  snprintf(mx, sizeof(mx), "%d", max);
  const char *keys[] = {b->k_prio, b->k_in};
  const char *args[] = {t->conf.group, TG_TRANSPORT_PARKED_CONSUMER, t->conf.consumer, mx};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_CLAIM_PARKED, 2, keys, 4, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  int before = *count;
  err = parse_claimed(t, r, arr, count, errstr, n);
  freeReplyObject(r);
  /* found some: look again at once; none: not for a while */
  b->next_parked_check = *count > before ? 0 : now + 200;
  if (*count > before)
    tg_log(TG_INFO, "event=parked_claimed count=%d consumer=%s", *count - before,
           t->conf.consumer);
  return err;
}

/* ---- operations ------------------------------------------------------- */

/* A pipelined batch: each command's arguments, and the replies. */
struct batch {
  int count;
  int *argcs;
  const char *const **argvs;
  const size_t **lens;
  redisReply **replies;
};

static bool batch_init(struct batch *b, int count, char *errstr, size_t n) {
  b->count = count;
  b->argcs = calloc((size_t)count, sizeof(*b->argcs));
  b->argvs = calloc((size_t)count, sizeof(*b->argvs));
  b->lens = calloc((size_t)count, sizeof(*b->lens));
  b->replies = calloc((size_t)count, sizeof(*b->replies));
  if (b->argcs && b->argvs && b->lens && b->replies)
    return true;
  snprintf(errstr, n, "out of memory");
  return false;
}

/* Sends the batch; returns the replies read (fewer: the connection failed). */
static int batch_run(tg_transport_t *t, struct batch *b, char *errstr, size_t n) {
  return tg_redis_conn_pipeline(BE(t)->conn, b->count, b->argcs, b->argvs, b->lens, b->replies,
                                errstr, n);
}

static void batch_free(struct batch *b) {
  for (int i = 0; b->replies && i < b->count; i++)
    freeReplyObject(b->replies[i]);
  free(b->argcs);
  free(b->argvs);
  free(b->lens);
  free(b->replies);
}

/* The keys and arguments of the put script for one request. */
struct put_call {
  char cap[24], enq[24], ttl[24], idem[KEY_MAX + 72];
  const char *argv[3 + 5 + 8];
  size_t lens[3 + 5 + 8];
};

static void put_call_fill(tg_transport_t *t, const struct tg_put_req *req, struct put_call *pc) {
  struct redis_be *b = BE(t);
  snprintf(pc->cap, sizeof(pc->cap), "%" PRId64, t->conf.queue_cap);
  snprintf(pc->enq, sizeof(pc->enq), "%" PRId64, req->enqueued_at_ms);
  bool use_idem = req->idempotency_key && *req->idempotency_key && req->idempotency_ttl_ms > 0;
  snprintf(pc->ttl, sizeof(pc->ttl), "%" PRId64, use_idem ? req->idempotency_ttl_ms : 0);
  if (use_idem) { /* hashed: the key is the client's text */
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)req->idempotency_key, strlen(req->idempotency_key), d);
    int o = snprintf(pc->idem, sizeof(pc->idem), "tripgen:{%s}:idem:", t->conf.env);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
      o += snprintf(pc->idem + o, sizeof(pc->idem) - (size_t)o, "%02x", d[i]);
  } else {
    snprintf(pc->idem, sizeof(pc->idem), "tripgen:{%s}:idem:-", t->conf.env);
  }
  const char *inv = req->invalid_reason ? req->invalid_reason : "";
  const char *argv[] = {"EVALSHA", b->sha[S_PUT], "5",
                        b->k_seq, req->priority ? b->k_prio : b->k_in, b->k_in, b->k_prio,
                        pc->idem, pc->cap, req->request_id, req->payload, pc->enq,
                        req->tags_json ? req->tags_json : "", req->data ? req->data : "",
                        pc->ttl, inv};
  memcpy(pc->argv, argv, sizeof(argv));
  for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]); i++) /* the bytes: their own lengths */
    pc->lens[i] = i == 10 ? req->payload_len : i == 13 ? (req->data ? req->data_len : 0)
                                                       : strlen(argv[i]);
}

/* The put script's reply {index, request_id, repeated}, or its error. */
static tg_err_t put_reply(tg_transport_t *t, const redisReply *r, uint64_t *index,
                          char *request_id, bool *repeated, char *errstr, size_t n) {
  if (r->type == REDIS_REPLY_ERROR) {
    if (strncmp(r->str, "QUEUEFULL ", 10) == 0) {
      snprintf(errstr, n, "queue full: %s", r->str + 10);
      return TG_ERR_QUEUE_FULL;
    }
    snprintf(errstr, n, "redis %s: %s", tg_redis_conn_url(BE(t)->conn), r->str);
    return TG_ERR_TRANSPORT;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
    snprintf(errstr, n, "redis: unexpected reply to put");
    return TG_ERR_TRANSPORT;
  }
  *index = (uint64_t)r->element[0]->integer;
  if (request_id)
    snprintf(request_id, TG_MAX_REQUEST_ID_CHARS + 1, "%.*s", (int)r->element[1]->len,
             r->element[1]->str);
  if (repeated)
    *repeated = r->element[2]->integer == 1;
  return TG_OK;
}

static tg_err_t r_put(tg_transport_t *t, const struct tg_put_req *req, uint64_t *index,
                      char *request_id, bool *repeated, char *errstr, size_t n) {
  struct put_call pc;
  put_call_fill(t, req, &pc);
  tg_err_t err = TG_OK;
  redisReply *r = tg_redis_conn_eval(BE(t)->conn, script_src[S_PUT], BE(t)->sha[S_PUT], 5,
                                     pc.argv + 3, 8, pc.argv + 8, pc.lens + 8, &err, errstr, n);
  if (!r)
    return err;
  err = put_reply(t, r, index, request_id, repeated, errstr, n);
  freeReplyObject(r);
  return err;
}

static tg_err_t r_put_many(tg_transport_t *t, const struct tg_put_req *reqs, int count,
                           uint64_t *indexes, char *errstr, size_t n) {
  struct put_call *pc = calloc((size_t)count, sizeof(*pc));
  struct batch b;
  tg_err_t err = TG_OK;
  if (!batch_init(&b, count, errstr, n) || !pc) {
    snprintf(errstr, n, "out of memory");
    err = TG_ERR_NOMEM;
    goto out;
  }
  for (int i = 0; i < count; i++) {
    put_call_fill(t, &reqs[i], &pc[i]);
    b.argcs[i] = (int)(sizeof(pc[i].argv) / sizeof(pc[i].argv[0]));
    b.argvs[i] = pc[i].argv;
    b.lens[i] = pc[i].lens;
  }
  int got = batch_run(t, &b, errstr, n);
  redisReply **replies = b.replies;
  if (got < count)
    err = TG_ERR_TRANSPORT;
  for (int i = 0; i < got; i++) {
    char e[256];
    tg_err_t one;
    if (replies[i]->type == REDIS_REPLY_ERROR && strncmp(replies[i]->str, "NOSCRIPT", 8) == 0)
      one = r_put(t, &reqs[i], &indexes[i], NULL, NULL, e, sizeof(e)); /* loads it */
    else
      one = put_reply(t, replies[i], &indexes[i], NULL, NULL, e, sizeof(e));
    if (one != TG_OK && err == TG_OK) {
      err = one;
      snprintf(errstr, n, "%s", e);
    }
  }
out:
  batch_free(&b);
  free(pc);
  return err;
}

static tg_err_t r_take(tg_transport_t *t, int max, int timeout_ms, tg_delivery_t **out,
                       int *n_out, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  tg_delivery_t *arr = NULL;
  int count = 0, cap = 0;
  tg_err_t err = TG_OK;
  char cnt[16], blk[16];
  const char *c = t->conf.consumer, *g = t->conf.group;

  /* 1. once per handle: this consumer's own pending entries, from a run that
   * died, read forward from a cursor so none is delivered twice */
  if (!b->own_pel_done) {
    snprintf(cnt, sizeof(cnt), "%d", max);
    const char *argv[] = {"XREADGROUP", "GROUP", g, c, "COUNT", cnt, "STREAMS",
                          b->k_prio, b->k_in, b->pel_cursor[0], b->pel_cursor[1]};
    redisReply *r = be_cmdv(t, 0, &err, errstr, n, 11, argv);
    if (!r)
      return err;
    int seen = 0;
    err = collect(t, r, 0, &arr, &count, &cap, &seen, errstr, n);
    for (size_t s = 0; r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
      const redisReply *sr = r->element[s], *entries = sr->element[1];
      if (entries->elements > 0) /* entry ids are "ms-seq": move past the last one */
        snprintf(b->pel_cursor[strcmp(sr->element[0]->str, b->k_prio) == 0 ? 0 : 1],
                 sizeof(b->pel_cursor[0]), "%s",
                 entries->element[entries->elements - 1]->element[0]->str);
    }
    freeReplyObject(r);
    if (err != TG_OK || count > 0) {
      lookup_counts(t, arr, count);
      goto done;
    }
    if (seen == 0) /* only deleted entries in this batch: read on next time */
      b->own_pel_done = true;
    else
      goto done;
  }

  /* 2. entries the scheduler reclaimed from dead workers and parked */
  err = claim_parked(t, max, &arr, &count, errstr, n);
  cap = count; /* parse_claimed sized the array exactly: collect() must grow it */
  if (err != TG_OK || count >= max)
    goto done;

  /* 3. new entries, priority first, without blocking */
  const char *streams[2] = {b->k_prio, b->k_in};
  for (int s = 0; s < 2 && count < max && err == TG_OK; s++) {
    snprintf(cnt, sizeof(cnt), "%d", max - count);
    const char *argv[] = {"XREADGROUP", "GROUP", g, c, "COUNT", cnt, "STREAMS", streams[s], ">"};
    redisReply *r = be_cmdv(t, 0, &err, errstr, n, 9, argv);
    if (!r)
      break;
    err = collect(t, r, 1, &arr, &count, &cap, NULL, errstr, n);
    freeReplyObject(r);
  }
  if (err != TG_OK || count > 0 || timeout_ms == 0)
    goto done;

  /* 4. nothing waiting: block on both until something arrives */
  snprintf(cnt, sizeof(cnt), "%d", max);
  snprintf(blk, sizeof(blk), "%d", timeout_ms);
  {
    const char *argv[] = {"XREADGROUP", "GROUP", g, c, "COUNT", cnt, "BLOCK", blk,
                          "STREAMS", b->k_prio, b->k_in, ">", ">"};
    redisReply *r = be_cmdv(t, timeout_ms, &err, errstr, n, 13, argv);
    if (r) {
      err = collect(t, r, 1, &arr, &count, &cap, NULL, errstr, n);
      freeReplyObject(r);
    }
  }
done:
  if (err != TG_OK && count == 0) {
    free(arr);
    return err;
  }
  /* deliveries already read are ours: hand them out even after an error */
  *out = arr;
  *n_out = count;
  return TG_OK;
}

static tg_err_t finish(tg_transport_t *t, enum script_id id, const tg_delivery_t *d,
                       const struct tg_publish *p, int64_t *ret, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char rk[KEY_MAX + TG_MAX_REQUEST_ID_CHARS], gen[24], ttl[24], maxlen[24], lc[16], now[24],
      dels[24], idx[24], dlqmax[24];
  snprintf(gen, sizeof(gen), "%" PRId64, p->generation);
  snprintf(ttl, sizeof(ttl), "%" PRId64, t->conf.result_ttl_ms);
  snprintf(maxlen, sizeof(maxlen), "%" PRId64, t->conf.sink_max_len);
  snprintf(lc, sizeof(lc), "%d", p->last_code);
  snprintf(now, sizeof(now), "%" PRId64, tg_now_ms());
  snprintf(dels, sizeof(dels), "%" PRId64, d ? d->deliveries : 0);
  snprintf(idx, sizeof(idx), "%" PRIu64, d ? d->index : 0);
  snprintf(dlqmax, sizeof(dlqmax), "%" PRId64, t->conf.dlq_max_len);
  const char *keys[] = {result_key(t, p->request_id, rk, sizeof(rk)), b->k_out, b->k_out_seq,
                        d && d->priority ? b->k_prio : b->k_in, b->k_dlq, b->k_dlq_seq};
  const char *args[] = {t->conf.group, d ? d->entry_id : "", gen, p->result_json,
                        p->request_id, ttl, maxlen, lc,
                        d && d->payload ? d->payload : "", now, dels, idx, dlqmax,
                        t->conf.consumer};
  size_t lens[14];
  for (int i = 0; i < 14; i++)
    lens[i] = strlen(args[i]);
  if (d && d->payload)
    lens[8] = d->payload_len;
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, id, id == S_DEAD ? 6 : 4, keys, id == S_DEAD ? 14 : 8, args, lens,
                          &err, errstr, n);
  if (!r)
    return err;
  *ret = r->integer;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_complete(tg_transport_t *t, const tg_delivery_t *d, const struct tg_publish *p,
                           bool *published, char *errstr, size_t n) {
  int64_t idx = 0;
  tg_err_t err = finish(t, S_COMPLETE, d, p, &idx, errstr, n);
  *published = err == TG_OK && idx > 0;
  return err;
}

/* The keys and arguments of the complete script for one result. */
struct complete_call {
  char rk[KEY_MAX + TG_MAX_REQUEST_ID_CHARS], gen[24], ttl[24], maxlen[24], lc[16];
  const char *argv[3 + 4 + 8];
  size_t lens[3 + 4 + 8];
};

static void complete_call_fill(tg_transport_t *t, const tg_delivery_t *d,
                               const struct tg_publish *p, struct complete_call *cc) {
  struct redis_be *b = BE(t);
  snprintf(cc->gen, sizeof(cc->gen), "%" PRId64, p->generation);
  snprintf(cc->ttl, sizeof(cc->ttl), "%" PRId64, t->conf.result_ttl_ms);
  snprintf(cc->maxlen, sizeof(cc->maxlen), "%" PRId64, t->conf.sink_max_len);
  snprintf(cc->lc, sizeof(cc->lc), "%d", p->last_code);
  const char *argv[] = {"EVALSHA", b->sha[S_COMPLETE], "4",
                        result_key(t, p->request_id, cc->rk, sizeof(cc->rk)), b->k_out,
                        b->k_out_seq, stream_of(b, d),
                        t->conf.group, d->entry_id, cc->gen, p->result_json, p->request_id,
                        cc->ttl, cc->maxlen, cc->lc};
  memcpy(cc->argv, argv, sizeof(argv));
  for (size_t i = 0; i < sizeof(argv) / sizeof(argv[0]); i++)
    cc->lens[i] = strlen(argv[i]);
}

static tg_err_t r_complete_many(tg_transport_t *t, const tg_delivery_t *const *ds,
                                const struct tg_publish *ps, int count, bool *published,
                                tg_err_t *errs, char *errstr, size_t n) {
  struct complete_call *cc = calloc((size_t)count, sizeof(*cc));
  struct batch b;
  tg_err_t err = TG_OK;
  for (int i = 0; i < count; i++)
    errs[i] = TG_ERR_TRANSPORT;
  if (!batch_init(&b, count, errstr, n) || !cc) {
    snprintf(errstr, n, "out of memory");
    err = TG_ERR_NOMEM;
    goto out;
  }
  for (int i = 0; i < count; i++) {
    complete_call_fill(t, ds[i], &ps[i], &cc[i]);
    b.argcs[i] = (int)(sizeof(cc[i].argv) / sizeof(cc[i].argv[0]));
    b.argvs[i] = cc[i].argv;
    b.lens[i] = cc[i].lens;
  }
  int got = batch_run(t, &b, errstr, n);
  redisReply **replies = b.replies;
  if (got < count)
    err = TG_ERR_TRANSPORT;
  for (int i = 0; i < got; i++) {
    const redisReply *r = replies[i];
    char e[256];
    if (r->type == REDIS_REPLY_INTEGER) {
      errs[i] = TG_OK;
      published[i] = r->integer > 0;
    } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
      errs[i] = r_complete(t, ds[i], &ps[i], &published[i], e, sizeof(e)); /* loads it */
    } else {
      snprintf(e, sizeof(e), "redis %s: %s", tg_redis_conn_url(BE(t)->conn),
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to complete");
    }
    if (errs[i] != TG_OK && err == TG_OK) {
      err = errs[i];
      snprintf(errstr, n, "%s", e);
    }
  }
out:
  batch_free(&b);
  free(cc);
  return err;
}

static tg_err_t r_done_many(tg_transport_t *t, const char *const *request_ids,
                            const int64_t *generations, int count, bool *done, char *errstr,
                            size_t n) {
  char (*rk)[KEY_MAX + TG_MAX_REQUEST_ID_CHARS] = calloc((size_t)count, sizeof(*rk));
  const char *(*argv)[2] = calloc((size_t)count, sizeof(*argv));
  size_t (*alens)[2] = calloc((size_t)count, sizeof(*alens));
  struct batch b;
  tg_err_t err = TG_OK;
  if (!batch_init(&b, count, errstr, n) || !rk || !argv || !alens) {
    snprintf(errstr, n, "out of memory");
    err = TG_ERR_NOMEM;
    goto out;
  }
  for (int i = 0; i < count; i++) {
    argv[i][0] = "HKEYS";
    argv[i][1] = result_key(t, request_ids[i], rk[i], sizeof(rk[i]));
    alens[i][0] = 5;
    alens[i][1] = strlen(argv[i][1]);
    b.argcs[i] = 2;
    b.argvs[i] = argv[i];
    b.lens[i] = alens[i];
  }
  int got = batch_run(t, &b, errstr, n);
  redisReply **replies = b.replies;
  if (got < count)
    err = TG_ERR_TRANSPORT;
  for (int i = 0; i < got && err == TG_OK; i++) {
    const redisReply *r = replies[i];
    if (r->type != REDIS_REPLY_ARRAY) {
      snprintf(errstr, n, "redis %s: %s", tg_redis_conn_url(BE(t)->conn),
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to HKEYS");
      err = TG_ERR_TRANSPORT;
      break;
    }
    for (size_t k = 0; k < r->elements; k++) /* a stored newer generation counts too */
      if (strtoll(r->element[k]->str, NULL, 10) >= generations[i])
        done[i] = true;
  }
out:
  batch_free(&b);
  free(rk);
  free(argv);
  free(alens);
  return err;
}

/* The error of a call for an entry another consumer holds now (its lease
 * went there, and the job runs there). */
static tg_err_t held_elsewhere(const char *entry_id, char *errstr, size_t n) {
  snprintf(errstr, n, "entry %s is held by another consumer now (its lease was lost)", entry_id);
  return TG_ERR_NOT_FOUND;
}

static tg_err_t r_dead_letter(tg_transport_t *t, const tg_delivery_t *d,
                              const struct tg_publish *p, char *errstr, size_t n) {
  int64_t idx = 0;
  tg_err_t err = finish(t, S_DEAD, d, p, &idx, errstr, n);
  return err == TG_OK && idx == -2 ? held_elsewhere(d ? d->entry_id : "", errstr, n) : err;
}

static tg_err_t r_retry_later(tg_transport_t *t, const tg_delivery_t *d, const char *request_id,
                              const char *job_json, bool priority, int64_t enqueued_at_ms,
                              int64_t due_ms, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  size_t jl = strlen(job_json);
  char *member = malloc(jl + 128);
  if (!member) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int ml = snprintf(member, jl + 128, "%c\t%s\t%" PRId64 "\t%s", priority ? 'p' : 'n',
                    request_id, enqueued_at_ms, job_json);
  char due[24];
  snprintf(due, sizeof(due), "%" PRId64, due_ms);
  const char *keys[] = {stream_of(b, d), b->k_delayed};
  const char *args[] = {t->conf.group, d->entry_id, due, member, t->conf.consumer};
  size_t lens[] = {strlen(t->conf.group), strlen(d->entry_id), strlen(due), (size_t)ml,
                   strlen(t->conf.consumer)};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_RETRY, 2, keys, 5, args, lens, &err, errstr, n);
  free(member);
  if (!r)
    return err;
  bool elsewhere = r->type == REDIS_REPLY_INTEGER && r->integer < 0;
  freeReplyObject(r);
  return elsewhere ? held_elsewhere(d->entry_id, errstr, n) : TG_OK;
}

static tg_err_t r_ack_if_done(tg_transport_t *t, const tg_delivery_t *d, int64_t generation,
                              bool *acked, char *errstr, size_t n) {
  char rk[KEY_MAX + TG_MAX_REQUEST_ID_CHARS], gen[24];
  snprintf(gen, sizeof(gen), "%" PRId64, generation);
  const char *keys[] = {result_key(t, d->request_id, rk, sizeof(rk)), stream_of(BE(t), d)};
  const char *args[] = {t->conf.group, d->entry_id, gen};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_ACK_DONE, 2, keys, 3, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *acked = r->integer == 1;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_extend_lease(tg_transport_t *t, const tg_delivery_t *d, char *errstr,
                               size_t n) {
  const char *keys[] = {stream_of(BE(t), d)};
  const char *args[] = {t->conf.group, t->conf.consumer, d->entry_id};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_EXTEND, 1, keys, 3, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  bool held = r->integer == 1;
  freeReplyObject(r);
  if (!held) {
    snprintf(errstr, n, "entry %s is no longer pending for this consumer", d->entry_id);
    return TG_ERR_NOT_FOUND;
  }
  return TG_OK;
}

static tg_err_t r_promote_due(tg_transport_t *t, int64_t now_ms, int max, int *promoted,
                              char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char now[24], mx[16];
  snprintf(now, sizeof(now), "%" PRId64, now_ms);
  snprintf(mx, sizeof(mx), "%d", max);
  const char *keys[] = {b->k_delayed, b->k_seq, b->k_in, b->k_prio};
  const char *args[] = {now, mx};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_PROMOTE, 4, keys, 2, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *promoted = (int)r->integer;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_reclaim(tg_transport_t *t, int max, const tg_delivery_t *held, int n_held,
                          tg_delivery_t **out, int *n_out, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char idle[24], mx[16], np[16];
  snprintf(idle, sizeof(idle), "%" PRId64, t->conf.visibility_timeout_ms);
  snprintf(mx, sizeof(mx), "%d", max);
  const char **args = malloc(sizeof(*args) * (size_t)(5 + n_held));
  if (!args) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int nargs = 0, n_prio = 0;
  args[nargs++] = t->conf.group;
  args[nargs++] = t->conf.consumer;
  args[nargs++] = idle;
  args[nargs++] = mx;
  args[nargs++] = np;
  for (int pass = 0; pass < 2; pass++) /* the priority stream's entries first */
    for (int i = 0; i < n_held; i++)
      if (held[i].priority == (pass == 0)) {
        args[nargs++] = held[i].entry_id;
        n_prio += pass == 0;
      }
  snprintf(np, sizeof(np), "%d", n_prio);
  const char *keys[] = {b->k_prio, b->k_in};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_RECLAIM, 2, keys, nargs, args, NULL, &err, errstr, n);
  free(args);
  if (!r)
    return err;
  tg_delivery_t *arr = NULL;
  int count = 0;
  err = parse_claimed(t, r, &arr, &count, errstr, n);
  freeReplyObject(r);
  if (count)
    tg_log(TG_INFO, "event=entries_reclaimed count=%d consumer=%s", count, t->conf.consumer);
  *out = arr;
  *n_out = count;
  return count ? TG_OK : err;
}

static tg_err_t r_park_stale(tg_transport_t *t, int max, int *parked, tg_delivery_t **dead,
                             int *n_dead, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char idle[24], mx[16], md[16];
  snprintf(idle, sizeof(idle), "%" PRId64, t->conf.visibility_timeout_ms);
  snprintf(mx, sizeof(mx), "%d", max);
  snprintf(md, sizeof(md), "%d", t->conf.max_deliveries);
  const char *keys[] = {b->k_prio, b->k_in};
  const char *args[] = {t->conf.group, TG_TRANSPORT_PARKED_CONSUMER, idle, mx, md,
                        b->park_cursor[0], b->park_cursor[1], "1000"};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_PARK, 2, keys, 8, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
    freeReplyObject(r);
    snprintf(errstr, n, "redis: unexpected reply to park_stale");
    return TG_ERR_TRANSPORT;
  }
  *parked = (int)r->element[0]->integer;
  for (int k = 0; k < 2; k++)
    snprintf(b->park_cursor[k], sizeof(b->park_cursor[k]), "%s", r->element[2 + k]->str);
  err = parse_claimed(t, r->element[1], dead, n_dead, errstr, n);
  freeReplyObject(r);
  return err;
}

static tg_err_t r_prune_consumers(tg_transport_t *t, int64_t idle_ms, int *removed, char *errstr,
                                  size_t n) {
  struct redis_be *b = BE(t);
  char idle[24], before[24];
  snprintf(idle, sizeof(idle), "%" PRId64, idle_ms);
  snprintf(before, sizeof(before), "%" PRId64, tg_now_ms() - idle_ms);
  const char *keys[] = {b->k_prio, b->k_in, b->k_workers};
  const char *args[] = {t->conf.group, idle, TG_TRANSPORT_PARKED_CONSUMER, before};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_PRUNE, 3, keys, 4, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *removed = (int)r->integer;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_heartbeat(tg_transport_t *t, int64_t now_ms, char *errstr, size_t n) {
  char now[24];
  snprintf(now, sizeof(now), "%" PRId64, now_ms);
  tg_err_t err = TG_OK;
  const char *argv[] = {"ZADD", BE(t)->k_workers, now, t->conf.consumer};
  redisReply *r = be_cmdv(t, 0, &err, errstr, n, 4, argv);
  return r ? check_simple(r, "ZADD", errstr, n) : err;
}

static tg_err_t r_lease(tg_transport_t *t, const char *name, const char *holder,
                        int64_t lease_ms, bool release, bool *held, char *errstr, size_t n) {
  char key[KEY_MAX + 64], ms[24];
  snprintf(key, sizeof(key), "tripgen:{%s}:lease:%s", t->conf.env, name);
  snprintf(ms, sizeof(ms), "%" PRId64, lease_ms);
  const char *keys[] = {key};
  const char *args[] = {holder, ms};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, release ? S_LEASE_RELEASE : S_LEASE, 1, keys, release ? 1 : 2,
                          args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *held = !release && r->integer == 1;
  freeReplyObject(r);
  return TG_OK;
}

/* One dead letter from an XRANGE entry [id, fields]. */
static bool fill_dlq_entry(struct tg_dlq_entry *d, const redisReply *e) {
  memset(d, 0, sizeof(*d));
  d->dlq_index = index_of(e->element[0]->str);
  const redisReply *f = e->element[1];
  for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2) {
    const char *k = f->element[i]->str;
    const redisReply *v = f->element[i + 1];
    if (strcmp(k, "request_id") == 0)
      snprintf(d->request_id, sizeof(d->request_id), "%.*s", (int)v->len, v->str);
    else if (strcmp(k, "generation") == 0)
      d->generation = strtoll(v->str, NULL, 10);
    else if (strcmp(k, "dead_at") == 0)
      d->dead_at_ms = strtoll(v->str, NULL, 10);
    else if (strcmp(k, "deliveries") == 0)
      d->deliveries = strtoll(v->str, NULL, 10);
    else if (strcmp(k, "index") == 0)
      d->index = strtoull(v->str, NULL, 10);
    else if (strcmp(k, "job") == 0 && !d->job && !(d->job = strndup(v->str, v->len)))
      return false;
    else if (strcmp(k, "result") == 0 && !d->result && !(d->result = strndup(v->str, v->len)))
      return false;
  }
  if (!d->job && !(d->job = strdup("")))
    return false;
  return d->result || (d->result = strdup(""));
}

static tg_err_t r_dlq_list(tg_transport_t *t, uint64_t from, int max, struct tg_dlq_entry **out,
                           int *n_out, char *errstr, size_t n) {
  char start[32], cnt[16];
  snprintf(start, sizeof(start), from ? "0-%" PRIu64 : "-", from);
  snprintf(cnt, sizeof(cnt), "%d", max);
  tg_err_t err = TG_OK;
  const char *argv[] = {"XRANGE", BE(t)->k_dlq, start, "+", "COUNT", cnt};
  redisReply *r = be_cmdv(t, 0, &err, errstr, n, 6, argv);
  if (!r)
    return err;
  if (r->type != REDIS_REPLY_ARRAY)
    return check_simple(r, "XRANGE", errstr, n);
  size_t want = r->elements;
  struct tg_dlq_entry *arr = want ? calloc(want, sizeof(*arr)) : NULL;
  int count = 0;
  for (size_t i = 0; arr && i < r->elements; i++)
    if (fill_dlq_entry(&arr[count], r->element[i]))
      count++;
    else
      err = TG_ERR_NOMEM;
  freeReplyObject(r);
  if (err != TG_OK || (!arr && want)) {
    tg_dlq_entries_free(arr, count);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  *out = arr;
  *n_out = count;
  return TG_OK;
}

static tg_err_t r_dlq_requeue(tg_transport_t *t, uint64_t dlq_index, const char *request_id,
                              const char *job_json, bool priority, int64_t enqueued_at_ms,
                              uint64_t *index, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char id[32], cap[24], enq[24];
  snprintf(id, sizeof(id), "0-%" PRIu64, dlq_index);
  snprintf(cap, sizeof(cap), "%" PRId64, t->conf.queue_cap);
  snprintf(enq, sizeof(enq), "%" PRId64, enqueued_at_ms);
  const char *keys[] = {b->k_dlq, b->k_seq, priority ? b->k_prio : b->k_in, b->k_in, b->k_prio};
  const char *args[] = {id, cap, request_id, job_json, enq};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_DLQ_REQUEUE, 5, keys, 5, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  long long idx = r->integer;
  freeReplyObject(r);
  if (idx < 0) {
    snprintf(errstr, n, "no dead letter %" PRIu64 " (replayed or purged meanwhile?)", dlq_index);
    return TG_ERR_NOT_FOUND;
  }
  *index = (uint64_t)idx;
  return TG_OK;
}

static tg_err_t r_dlq_purge(tg_transport_t *t, uint64_t dlq_index, int64_t *purged,
                            char *errstr, size_t n) {
  char id[32];
  snprintf(id, sizeof(id), "0-%" PRIu64, dlq_index);
  tg_err_t err = TG_OK;
  /* all: the stream goes (its counter stays, so indexes never repeat) */
  const char *one[] = {"XDEL", BE(t)->k_dlq, id};
  const char *all[] = {"EVAL", "local n = redis.call('XLEN', KEYS[1]) "
                               "redis.call('DEL', KEYS[1]) return n", "1", BE(t)->k_dlq};
  redisReply *r = dlq_index ? be_cmdv(t, 0, &err, errstr, n, 3, one)
                            : be_cmdv(t, 0, &err, errstr, n, 4, all);
  if (!r)
    return err;
  if (r->type != REDIS_REPLY_INTEGER)
    return check_simple(r, "dlq purge", errstr, n);
  *purged = r->integer;
  freeReplyObject(r);
  return TG_OK;
}

static bool r_history_done(const tg_transport_t *t) {
  return ((const struct redis_be *)t->backend)->own_pel_done;
}

static tg_err_t r_depth(tg_transport_t *t, struct tg_depth *out, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char since[24];
  int64_t now = tg_now_ms();
  snprintf(since, sizeof(since), "%" PRId64, now - t->conf.worker_window_ms);
  const char *keys[] = {b->k_in, b->k_prio, b->k_delayed, b->k_dlq, b->k_workers};
  const char *args[] = {t->conf.group, since};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_DEPTH, 5, keys, 2, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 7) {
    freeReplyObject(r);
    snprintf(errstr, n, "redis: unexpected reply to depth");
    return TG_ERR_TRANSPORT;
  }
  int64_t oldest = r->element[5]->integer;
  out->oldest_waiting_age_ms = oldest > 0 && now > oldest ? now - oldest : 0;
  out->active_workers = r->element[6]->integer;
  out->waiting = r->element[0]->integer;
  out->waiting_priority = r->element[1]->integer;
  out->pending = r->element[2]->integer;
  out->delayed = r->element[3]->integer;
  out->dead = r->element[4]->integer;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_remove(tg_transport_t *t, uint64_t index, bool *removed, char *errstr,
                         size_t n) {
  struct redis_be *b = BE(t);
  char id[32];
  snprintf(id, sizeof(id), "0-%" PRIu64, index);
  const char *keys[] = {b->k_in, b->k_prio};
  const char *args[] = {t->conf.group, id};
  tg_err_t err = TG_OK;
  redisReply *r = be_eval(t, S_REMOVE, 2, keys, 2, args, NULL, &err, errstr, n);
  if (!r)
    return err;
  *removed = r->integer > 0;
  freeReplyObject(r);
  return TG_OK;
}

static tg_err_t r_get_result(tg_transport_t *t, const char *request_id, char **json_out,
                             char *errstr, size_t n) {
  char rk[KEY_MAX + TG_MAX_REQUEST_ID_CHARS];
  tg_err_t err = TG_OK;
  const char *argv[] = {"HGETALL", result_key(t, request_id, rk, sizeof(rk))};
  redisReply *r = be_cmdv(t, 0, &err, errstr, n, 2, argv);
  if (!r)
    return err;
  if (r->type == REDIS_REPLY_ERROR)
    return check_simple(r, "HGETALL", errstr, n);
  long long best = -1;
  const redisReply *best_v = NULL;
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    long long g = strtoll(r->element[i]->str, NULL, 10);
    if (g > best) {
      best = g;
      best_v = r->element[i + 1];
    }
  }
  if (!best_v) {
    freeReplyObject(r);
    snprintf(errstr, n, "no result for request %s yet", request_id);
    return TG_ERR_NOT_FOUND;
  }
  *json_out = strndup(best_v->str, best_v->len);
  freeReplyObject(r);
  return *json_out ? TG_OK : TG_ERR_NOMEM;
}

static tg_err_t r_read_sink(tg_transport_t *t, uint64_t from_index, int max, int timeout_ms,
                            struct tg_sink_frame **out, int *n_out, char *errstr, size_t n) {
  struct redis_be *b = BE(t);
  char after[32], cnt[16], blk[16];
  snprintf(after, sizeof(after), "0-%" PRIu64, from_index ? from_index - 1 : 0);
  snprintf(cnt, sizeof(cnt), "%d", max);
  snprintf(blk, sizeof(blk), "%d", timeout_ms);
  tg_err_t err = TG_OK;
  /* BLOCK 0 would wait forever: leave it out for a plain read */
  const char *argv[8] = {"XREAD", "COUNT", cnt, "STREAMS", b->k_out, after};
  int argc = 6;
  if (timeout_ms) {
    const char *blocking[] = {"XREAD", "COUNT", cnt, "BLOCK", blk, "STREAMS", b->k_out, after};
    memcpy(argv, blocking, sizeof(blocking));
    argc = 8;
  }
  redisReply *r = be_cmdv(t, timeout_ms, &err, errstr, n, argc, argv);
  if (!r)
    return err;
  if (r->type == REDIS_REPLY_ERROR)
    return check_simple(r, "XREAD", errstr, n);
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
    freeReplyObject(r);
    return TG_OK;
  }
  const redisReply *entries = r->element[0]->element[1];
  struct tg_sink_frame *f = calloc(entries->elements ? entries->elements : 1, sizeof(*f));
  int count = 0;
  for (size_t i = 0; f && i < entries->elements; i++) {
    const redisReply *e = entries->element[i], *fields = e->element[1];
    f[count].index = index_of(e->element[0]->str);
    for (size_t k = 0; fields && k + 1 < fields->elements; k += 2) {
      const redisReply *key = fields->element[k], *v = fields->element[k + 1];
      if (strcmp(key->str, "result") == 0)
        f[count].result = strndup(v->str, v->len);
      else if (strcmp(key->str, "request_id") == 0)
        snprintf(f[count].request_id, sizeof(f[count].request_id), "%.*s", (int)v->len, v->str);
    }
    if (f[count].result)
      count++;
  }
  freeReplyObject(r);
  *out = f;
  *n_out = count;
  return f ? TG_OK : TG_ERR_NOMEM;
}

const struct tg_transport_ops tg_transport_redis = {
  .name = "redis",
  .open = r_open,
  .close = r_close,
  .put = r_put,
  .put_many = r_put_many,
  .take = r_take,
  .complete = r_complete,
  .complete_many = r_complete_many,
  .done_many = r_done_many,
  .retry_later = r_retry_later,
  .dead_letter = r_dead_letter,
  .extend_lease = r_extend_lease,
  .ack_if_done = r_ack_if_done,
  .promote_due = r_promote_due,
  .reclaim = r_reclaim,
  .park_stale = r_park_stale,
  .prune_consumers = r_prune_consumers,
  .heartbeat = r_heartbeat,
  .lease = r_lease,
  .dlq_list = r_dlq_list,
  .dlq_requeue = r_dlq_requeue,
  .dlq_purge = r_dlq_purge,
  .depth = r_depth,
  .history_done = r_history_done,
  .remove = r_remove,
  .get_result = r_get_result,
  .read_sink = r_read_sink,
};
