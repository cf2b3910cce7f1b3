/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ops.c - the EAS queue operations other than watch: put, get (with long
 * poll), attributes, commit and negative commit, delete and truncate,
 * search, count and end-of-stream (docs/eas-api.md).
 */
#include "frames.h"
#include "server_int.h"
#include "tg_limits.h"
#include "tg_log.h"
#include "tg_time.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_GET_LENGTH 1000
#define MAX_INDEXES 1000

static const char *queue_name(enum sch_queue q) { return q == SCH_QUEUE_SINK ? "sink" : "input"; }

static sch_store_t *store_or_503(sch_server_t *s, struct mg_connection *c,
                                 const struct sch_request *r) {
  char errstr[256];
  sch_store_t *st = sch_thread_store(s, r->service, errstr, sizeof(errstr));
  if (!st && s->conf.services[r->service].on_kafka) { /* not a failure: no such API */
    sch_reply_text(c, 404, errstr);
  } else if (!st) {
    tg_log(TG_WARN, "event=queue_error status=503 err=\"%s\"", errstr);
    sch_reply_text(c, 503, "queue unavailable");
  }
  return st;
}

/* Read the request body, refusing more than @max bytes. NULL after replying. */
static char *read_body(struct mg_connection *c, size_t max, size_t *len) {
  const struct mg_request_info *ri = mg_get_request_info(c);
  if (ri->content_length > (long long)max) {
    char msg[96];
    snprintf(msg, sizeof(msg), "payload too large: %lld bytes, limit %zu", ri->content_length,
             max);
    sch_reply_text(c, 413, msg);
    return NULL;
  }
  char *buf = malloc(max + 2);
  size_t got = 0;
  int r;
  while (buf && got <= max && (r = mg_read(c, buf + got, max + 1 - got)) > 0)
    got += (size_t)r;
  if (!buf) {
    sch_reply_text(c, 500, "out of memory");
    return NULL;
  }
  if (got > max) {
    free(buf);
    char msg[96];
    snprintf(msg, sizeof(msg), "payload too large: more than %zu bytes, limit %zu", max, max);
    sch_reply_text(c, 413, msg);
    return NULL;
  }
  buf[got] = '\0';
  *len = got;
  return buf;
}

int sch_op_put(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  const struct sch_service_conf *sc = &s->conf.services[r->service];
  size_t len;
  char *body = read_body(c, TG_MAX_PAYLOAD_BYTES, &len);
  if (!body)
    return 413;
  sch_store_t *st = store_or_503(s, c, r);
  if (!st) {
    free(body);
    return 503;
  }
  const char *ph = mg_get_header(c, "X-EAS-QueueService-Priority");
  bool priority = sch_request_flag(r, "_priority_", false) ||
                  (ph && (strcmp(ph, "1") == 0 || strcmp(ph, "true") == 0));
  if (*r->subpath)
    json_object_set_new(r->tags, "_path_", json_string(r->subpath));
  uint64_t index = 0;
  char rid[TG_MAX_REQUEST_ID_CHARS + 1] = "", errstr[512];
  tg_err_t err;
  if (r->queue == SCH_QUEUE_INPUT) {
    err = sch_store_put_input(st, body, len, r->tags, priority, sc->strict_put,
                              sc->idempotency_ttl_ms, &index, rid, errstr, sizeof(errstr));
  } else {
    if (*r->request_id)
      json_object_set_new(r->tags, "requestId", json_string(r->request_id));
    err = sch_store_put_sink(st, body, len, r->tags, &index, rid, errstr, sizeof(errstr));
  }
  free(body);
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  char digits[24], hdr[128];
  int dl = snprintf(digits, sizeof(digits), "%" PRIu64, index);
  snprintf(hdr, sizeof(hdr), "X-Eas-Queueservice-Request-Id: %s\r\n", rid);
  sch_reply_bytes(c, 200, "text/plain; charset=utf-8", (const unsigned char *)digits,
                  (size_t)dl, hdr);
  tg_log(TG_DEBUG, "event=put service=%s queue=%s index=%" PRIu64 " request_id=%s", sc->name,
         queue_name(r->queue), index, rid);
  return 200;
}

static int reply_frames(struct mg_connection *c, const struct sch_request *r,
                        const struct sch_frame *f, int nf) {
  unsigned char *out = NULL;
  size_t len = 0;
  if (sch_frames_encode_list(f, nf, r->protobuf, false, &out, &len) != TG_OK) {
    sch_reply_text(c, 500, "internal error");
    return 500;
  }
  sch_reply_bytes(c, 200, r->protobuf ? "application/vnd.google.protobuf" : "application/json",
                  out, len, NULL);
  free(out);
  return 200;
}

int sch_op_get(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  uint64_t index, length;
  int64_t timeout_ms = 0;
  const char *t = sch_request_param(r, "_timeout_");
  if (!sch_request_u64(r, "_index_", 0, &index) || !sch_request_u64(r, "_length_", 1, &length) ||
      (t && !sch_parse_duration_ms(t, &timeout_ms))) {
    sch_reply_text(c, 400, "bad _index_, _length_ or _timeout_ (a duration such as 5s or 1m0s)");
    return 400;
  }
  if (length < 1)
    length = 1;
  if (length > MAX_GET_LENGTH)
    length = MAX_GET_LENGTH;
  if (timeout_ms > s->conf.long_poll_max_ms)
    timeout_ms = s->conf.long_poll_max_ms;
  /* answer a little before the client's own socket gives up */
  int64_t margin = timeout_ms / 10 < 500 ? timeout_ms / 10 : 500;
  int64_t deadline = tg_mono_ms() + timeout_ms - margin;
  bool auto_delete = sch_request_flag(r, "_auto_delete_", false);
  struct sch_filter f;
  sch_request_filter(r, &f);
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  /* a waiting get holds a server thread: bound how many may wait at once */
  atomic_int *polls = &s->long_polls[r->service][r->queue];
  bool waits = timeout_ms > 0;
  if (waits && atomic_fetch_add(polls, 1) >= s->conf.services[r->service].max_long_polls) {
    atomic_fetch_sub(polls, 1);
    sch_reply_text(c, 429, "too many waiting requests");
    return 429;
  }
  int status;
  int64_t nap = 50;
  for (;;) {
    struct sch_frame *frames = NULL;
    int nf = 0;
    char errstr[512];
    tg_err_t err = sch_store_get(st, r->queue, index, (int)length, &f, auto_delete, &frames, &nf,
                                 errstr, sizeof(errstr));
    if (err != TG_OK) {
      status = sch_reply_error(c, err, errstr);
      break;
    }
    if (nf > 0) {
      status = reply_frames(c, r, frames, nf);
      sch_frames_free(frames, nf);
      break;
    }
    int64_t left = deadline - tg_mono_ms();
    if (left <= 0 || atomic_load(&s->stopping)) {
      sch_reply_bytes(c, 204, "text/plain", NULL, 0, NULL);
      status = 204;
      break;
    }
    tg_sleep_ms(nap < left ? nap : left); /* 50 ms, growing to 250 ms while nothing comes */
    nap = nap * 3 / 2 > 250 ? 250 : nap * 3 / 2;
  }
  if (waits)
    atomic_fetch_sub(polls, 1);
  return status;
}

static void put_attr(json_t *a, const char *k, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put_attr(json_t *a, const char *k, const char *fmt, ...) {
  char v[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v, sizeof(v), fmt, ap);
  va_end(ap);
  json_object_set_new(a, k, json_string(v));
}

int sch_op_attributes(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  const struct sch_service_conf *sc = &s->conf.services[r->service];
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  struct sch_attrs at;
  char errstr[512];
  memset(&at, 0, sizeof(at));
  tg_err_t err = sch_store_attributes(st, r->queue, &at, errstr, sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  json_t *a = json_object();
  put_attr(a, "meta.name", "%s%s", sc->name, r->queue == SCH_QUEUE_SINK ? "/sink" : "");
  put_attr(a, "meta.backend", "redis");
  put_attr(a, "meta.state", "%s", at.eos ? "EOS" : "Running");
  put_attr(a, "meta.maxPayloadBytes", "%d", TG_MAX_PAYLOAD_BYTES);
  put_attr(a, "meta.header.user", "X-EAS-QueueService-Redis-Uid");
  put_attr(a, "meta.header.group", "X-EAS-QueueService-Redis-Gid");
  put_attr(a, "meta.header.priority", "X-EAS-QueueService-Priority");
  put_attr(a, "meta.header.userIdentifyHeader", "X-EAS-QueueService-Redis-Uid");
  put_attr(a, "meta.header.groupIdentifyHeader", "X-EAS-QueueService-Redis-Gid");
  put_attr(a, "stream.length", "%" PRId64, at.length);
  put_attr(a, "stream.approxMaxLength", "%" PRId64, at.max_length);
  put_attr(a, "stream.firstEntry", "%" PRIu64, at.first_index);
  put_attr(a, "stream.lastEntry", "%" PRIu64, at.last_index);
  put_attr(a, "consumers.status.total", "%zu", at.n_consumers);
  put_attr(a, "consumers.stats.total", "%zu", at.n_consumers);
  for (size_t i = 0; i < at.n_consumers; i++) {
    char k[48];
    snprintf(k, sizeof(k), "consumers.list.[%zu]", i);
    put_attr(a, k, "%s", at.consumers[i]);
  }
  for (size_t i = 0; i < at.n_groups; i++) {
    char k[48];
    snprintf(k, sizeof(k), "groups.list.[%zu]", i);
    put_attr(a, k, "%s", at.groups[i]);
  }
  sch_attrs_free(&at);
  unsigned char *out = NULL;
  size_t len = 0;
  err = sch_attrs_encode(a, r->protobuf, &out, &len);
  json_decref(a);
  if (err != TG_OK) {
    sch_reply_text(c, 500, "internal error");
    return 500;
  }
  sch_reply_bytes(c, 200, r->protobuf ? "application/vnd.google.protobuf" : "application/json",
                  out, len, NULL);
  free(out);
  return 200;
}

static bool indexes(struct mg_connection *c, const struct sch_request *r, uint64_t *idx,
                    int *count) {
  if (!sch_parse_indexes(sch_request_param(r, "_indexes_"), idx, MAX_INDEXES, count)) {
    sch_reply_text(c, 400, "_indexes_: expected a comma-separated list of up to 1000 indexes");
    return false;
  }
  return true;
}

int sch_op_commit(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  uint64_t idx[MAX_INDEXES];
  int count;
  if (!indexes(c, r, idx, &count))
    return 400;
  bool negative = sch_request_flag(r, "_negative_", false);
  char code[64] = "", reason[256] = "";
  if (negative) { /* form body: _code_=...&_reason_=... */
    size_t len = 0;
    char *body = read_body(c, 4096, &len);
    if (!body)
      return 413;
    mg_get_var(body, len, "_code_", code, sizeof(code));
    mg_get_var(body, len, "_reason_", reason, sizeof(reason));
    free(body);
  }
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  char errstr[512];
  tg_err_t err = negative ? sch_store_negative_commit(st, r->queue, r->gid, r->uid, idx, count,
                                                      errstr, sizeof(errstr))
                          : sch_store_commit(st, r->queue, r->gid, idx, count, errstr,
                                             sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  if (negative) {
    char q[300], qc[160];
    tg_log(TG_INFO, "event=negative_commit service=%s queue=%s caller=%s count=%d code=%s "
                    "reason=%s", s->conf.services[r->service].name, queue_name(r->queue),
           r->caller, count, tg_logq(qc, sizeof(qc), *code ? code : "-"),
           tg_logq(q, sizeof(q), reason));
  }
  sch_reply_text(c, 200, "OK");
  return 200;
}

int sch_op_delete(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  bool trunc = sch_request_flag(r, "_trunc_", false);
  uint64_t idx[MAX_INDEXES], below = 0;
  int count = 0;
  if (trunc) {
    if (!sch_request_param(r, "_index_") || !sch_request_u64(r, "_index_", 0, &below)) {
      sch_reply_text(c, 400, "_index_: expected the first index to keep");
      return 400;
    }
  } else if (!indexes(c, r, idx, &count)) {
    return 400;
  }
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  char errstr[512];
  int64_t deleted = 0;
  tg_err_t err = trunc ? sch_store_truncate(st, r->queue, below, &deleted, errstr, sizeof(errstr))
                       : sch_store_delete(st, r->queue, idx, count, &deleted, errstr,
                                          sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  /* destructive: always say who did it */
  tg_log(TG_WARN, "event=queue_%s service=%s queue=%s caller=%s below=%" PRIu64
                  " requested=%d deleted=%" PRId64, trunc ? "truncate" : "delete",
         s->conf.services[r->service].name, queue_name(r->queue), r->caller, below, count,
         deleted);
  sch_reply_text(c, 200, "OK");
  return 200;
}

int sch_op_search(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  uint64_t index;
  if (!sch_request_param(r, "_index_") || !sch_request_u64(r, "_index_", 0, &index)) {
    sch_reply_text(c, 400, "_index_: expected the index to search");
    return 400;
  }
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  bool pending = false;
  int64_t wait = -1;
  char errstr[512], body[96];
  tg_err_t err = sch_store_search(st, r->queue, index, &pending, &wait, errstr, sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  int len = snprintf(body, sizeof(body), "{\"IsPending\":%s,\"WaitCount\":%" PRId64 "}",
                     pending ? "true" : "false", wait);
  sch_reply_bytes(c, 200, "application/json", (const unsigned char *)body, (size_t)len, NULL);
  return 200;
}

int sch_op_count(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  struct sch_filter f;
  sch_request_filter(r, &f);
  const char *p = sch_request_param(r, "_priority_");
  if (p)
    f.priority = (strcmp(p, "1") == 0 || strcmp(p, "true") == 0) ? 1 : 0;
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  int64_t count = 0;
  char errstr[512], body[32];
  tg_err_t err = sch_store_count(st, r->queue, &f, &count, errstr, sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  int len = snprintf(body, sizeof(body), "%" PRId64, count);
  sch_reply_bytes(c, 200, "text/plain; charset=utf-8", (const unsigned char *)body, (size_t)len,
                  NULL);
  return 200;
}

int sch_op_eos(sch_server_t *s, struct mg_connection *c, struct sch_request *r) {
  sch_store_t *st = store_or_503(s, c, r);
  if (!st)
    return 503;
  char errstr[512];
  tg_err_t err = sch_store_eos(st, r->queue, errstr, sizeof(errstr));
  if (err != TG_OK)
    return sch_reply_error(c, err, errstr);
  tg_log(TG_INFO, "event=end_of_stream service=%s queue=%s caller=%s force=%s",
         s->conf.services[r->service].name, queue_name(r->queue), r->caller,
         sch_request_flag(r, "_force_", false) ? "true" : "false");
  sch_reply_text(c, 200, "OK");
  return 200;
}
