/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_transport_control.c - the transport operations issue 5 added, against
 * a real, private redis-server: put_many (indexes, the cap, argument errors,
 * NOSCRIPT), complete_many and done_many, park_stale (the scheduler's
 * reclaim: parking, no re-counting, the next take claiming, dead-lettering
 * past max_deliveries, the scan cursor past 1000 parked entries),
 * prune_consumers, heartbeats and depth (active workers, the oldest waiting
 * job's age across takes and deletes), named leases, and a dead-letter
 * replay refused at the queue cap.
 */
#undef NDEBUG
#include "check.h"
#include "redis_harness.h"
#include "tg_time.h"
#include "tg_transport.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static struct test_redis srv;
static char root[512];
static char errstr[512];
static char trip_buf[8192];
static size_t trip_len;

static tg_transport_t *open_conf(struct tg_transport_conf *c) {
  snprintf(c->redis_url, sizeof(c->redis_url), "%s", srv.url);
  tg_transport_t *t = tg_transport_new(c, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s", errstr);
  if (!t)
    exit(1);
  return t;
}

static tg_transport_t *open_env(const char *env, const char *consumer, int64_t vis_ms,
                                int max_deliveries) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, env);
  snprintf(c.consumer, sizeof(c.consumer), "%s", consumer);
  c.visibility_timeout_ms = vis_ms;
  c.max_deliveries = max_deliveries;
  return open_conf(&c);
}

/* A fresh job of @env (a new request_id), enqueued now minus @age_ms. */
static tg_job_t *new_job(const char *env, int64_t age_ms) {
  if (!trip_len) {
    char path[700];
    snprintf(path, sizeof(path), "%s/tests/data/trips/may-day-shanghai.json", root);
    FILE *f = fopen(path, "rb");
    if (!f) {
      fprintf(stderr, "cannot open %s\n", path);
      exit(1);
    }
    trip_len = fread(trip_buf, 1, sizeof(trip_buf), f);
    fclose(f);
  }
  tg_trip_t *trip = tg_trip_parse(trip_buf, trip_len, errstr, sizeof(errstr));
  CHECK_MSG(trip != NULL, "%s", errstr);
  tg_job_t *job = tg_job_new(trip, env, NULL, tg_now_ms() - age_ms, errstr, sizeof(errstr));
  CHECK_MSG(job != NULL, "%s", errstr);
  if (!job)
    exit(1);
  return job;
}

static void free_jobs(tg_job_t **jobs, int n) {
  for (int i = 0; i < n; i++)
    tg_job_destroy(jobs[i]);
}

/* put_many that must succeed; the indexes in @idx (may be NULL). */
static void put_all(tg_transport_t *t, tg_job_t **jobs, int n, uint64_t *idx) {
  uint64_t local[16];
  uint64_t *ix = idx ? idx : local;
  CHECK(idx || n <= 16);
  tg_err_t err = tg_transport_put_many(t, (const tg_job_t *const *)jobs, n, ix, errstr,
                                       sizeof(errstr));
  CHECK_MSG(err == TG_OK, "put_many: %s", errstr);
}

static struct tg_depth depth(tg_transport_t *t) {
  struct tg_depth d;
  tg_err_t err = tg_transport_depth(t, &d, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "depth: %s", errstr);
  return d;
}

/* A raw command on a fresh connection; the reply is the caller's. */
static redisReply *raw(const char *fmt, ...) {
  redisContext *c = test_redis_connect(&srv);
  if (!c)
    return NULL;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  redisFree(c);
  return r;
}

static long long raw_int(const char *fmt, ...) {
  redisContext *c = test_redis_connect(&srv);
  if (!c)
    return -1;
  va_list ap;
  va_start(ap, fmt);
  redisReply *r = redisvCommand(c, fmt, ap);
  va_end(ap);
  redisFree(c);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  freeReplyObject(r);
  return v;
}

static void script_flush(void) {
  redisReply *r = raw("SCRIPT FLUSH");
  CHECK(r && r->type == REDIS_REPLY_STATUS);
  freeReplyObject(r);
}

/* Sink frames of @request_id (NULL: all); the last one's result in *last. */
static int sink_count(tg_transport_t *t, const char *request_id, tg_result_t **last) {
  struct tg_sink_frame *f;
  int n, hits = 0;
  if (last)
    *last = NULL;
  CHECK(tg_transport_read_sink(t, 0, 10000, 0, &f, &n, errstr, sizeof(errstr)) == TG_OK);
  for (int i = 0; i < n; i++)
    if (!request_id || strcmp(f[i].request_id, request_id) == 0) {
      hits++;
      if (last) {
        tg_result_destroy(*last);
        *last = tg_result_parse(f[i].result, strlen(f[i].result), errstr, sizeof(errstr));
      }
    }
  tg_sink_frames_free(f, n);
  return hits;
}

/*
 * XPENDING of one stream: the number of entries; each one's owner must be
 * @owner and its delivery count @count (NULL / -1: not checked).
 */
static int pending_of(const char *stream, const char *owner, long long count) {
  redisReply *r = raw("XPENDING %s workers - + 100000", stream);
  CHECK(r && r->type == REDIS_REPLY_ARRAY);
  int n = r && r->type == REDIS_REPLY_ARRAY ? (int)r->elements : 0;
  int bad_owner = 0, bad_count = 0;
  for (int i = 0; i < n; i++) {
    const redisReply *e = r->element[i];
    if (owner && strcmp(e->element[1]->str, owner) != 0)
      bad_owner++;
    if (count >= 0 && e->element[3]->integer != count)
      bad_count++;
  }
  CHECK_MSG(bad_owner == 0, "%s: %d of %d entries not owned by %s", stream, bad_owner, n,
            owner ? owner : "-");
  CHECK_MSG(bad_count == 0, "%s: %d of %d entries not delivered %lld times", stream,
            bad_count, n, count);
  freeReplyObject(r);
  return n;
}

/* Whether consumer @name exists in the workers' group of @stream. */
static bool has_consumer(const char *stream, const char *name) {
  redisReply *r = raw("XINFO CONSUMERS %s workers", stream);
  bool found = false;
  for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *c = r->element[i];
    for (size_t k = 0; k + 1 < c->elements; k += 2)
      if (strcmp(c->element[k]->str, "name") == 0 && strcmp(c->element[k + 1]->str, name) == 0)
        found = true;
  }
  freeReplyObject(r);
  return found;
}

static tg_result_t *ok_result(const tg_delivery_t *d) {
  tg_result_t *r = tg_result_for_job(d->job);
  CHECK(r != NULL);
  if (!r)
    exit(1);
  r->worker = strdup("test");
  return r;
}

static bool complete_one(tg_transport_t *t, const tg_delivery_t *d) {
  tg_result_t *r = ok_result(d);
  bool published = false;
  tg_err_t err = tg_transport_complete(t, d, r, &published, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "complete: %s", errstr);
  tg_result_destroy(r);
  return published;
}

/* Take exactly @want deliveries (asking for @max). */
static tg_delivery_t *take_n(tg_transport_t *t, int max, int want, int *n) {
  tg_delivery_t *d = NULL;
  *n = 0;
  tg_err_t err = tg_transport_take(t, max, 0, &d, n, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK && *n == want, "take: err %d n %d want %d: %s", err, *n, want,
            err == TG_OK ? "" : errstr);
  return d;
}

static bool near(int64_t got, int64_t want, int64_t slack) {
  return got >= want && got <= want + slack;
}

#define AGE_SLACK_MS 1500 /* valgrind and a loaded machine */

/* ---- put_many --------------------------------------------------------- */

static void test_put_many(void) {
  enum { N = 500 };
  tg_transport_t *t = open_env("pm", "w1", 60000, 5);
  tg_job_t *jobs[N];
  static uint64_t idx[N];
  for (int i = 0; i < N; i++)
    jobs[i] = new_job("pm", 0);
  jobs[7]->priority = true;
  put_all(t, jobs, N, idx);
  bool increasing = idx[0] == 1;
  for (int i = 1; i < N; i++)
    increasing &= idx[i] == idx[i - 1] + 1;
  CHECK_MSG(increasing, "indexes %llu..%llu", (unsigned long long)idx[0],
            (unsigned long long)idx[N - 1]);
  CHECK(raw_int("XLEN tripgen:{pm}:in") == N - 1);
  CHECK(raw_int("XLEN tripgen:{pm}:in:prio") == 1);
  /* each entry is the job put at that position */
  redisReply *r = raw("XRANGE tripgen:{pm}:in 0-500 0-500");
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
  if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
    const redisReply *f = r->element[0]->element[1];
    CHECK(f->elements >= 2 && strcmp(f->element[0]->str, "request_id") == 0 &&
          strcmp(f->element[1]->str, jobs[N - 1]->request_id) == 0);
  }
  freeReplyObject(r);
  r = raw("XRANGE tripgen:{pm}:in:prio - +");
  CHECK(r && r->elements == 1 && strcmp(r->element[0]->element[0]->str, "0-8") == 0);
  freeReplyObject(r);
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == N && dp.waiting_priority == 1);

  /* argument errors: nothing enqueued */
  CHECK(tg_transport_put_many(t, (const tg_job_t *const *)jobs, 0, idx, errstr,
                              sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(tg_transport_put_many(t, (const tg_job_t *const *)jobs, TG_TRANSPORT_PUT_MANY_MAX + 1,
                              idx, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(strstr(errstr, "put_many") != NULL);
  tg_job_t *mixed[3] = {new_job("pm", 0), new_job("pm-other", 0), new_job("pm", 0)};
  uint64_t mix_idx[3] = {7, 7, 7};
  CHECK(tg_transport_put_many(t, (const tg_job_t *const *)mixed, 3, mix_idx, errstr,
                              sizeof(errstr)) == TG_ERR_INVAL);
  CHECK_MSG(strstr(errstr, "pm-other") != NULL, "%s", errstr);
  CHECK(mix_idx[0] == 0 && mix_idx[1] == 0);
  CHECK(raw_int("XLEN tripgen:{pm}:in") == N - 1);
  free_jobs(mixed, 3);

  /* NOSCRIPT: the server forgot the scripts (a restart, SCRIPT FLUSH) */
  script_flush();
  tg_job_t *more[3] = {new_job("pm", 0), new_job("pm", 0), new_job("pm", 0)};
  uint64_t more_idx[3] = {0, 0, 0};
  put_all(t, more, 3, more_idx);
  CHECK_MSG(more_idx[0] == N + 1 && more_idx[1] == N + 2 && more_idx[2] == N + 3,
            "after SCRIPT FLUSH: %llu %llu %llu", (unsigned long long)more_idx[0],
            (unsigned long long)more_idx[1], (unsigned long long)more_idx[2]);
  CHECK(raw_int("XLEN tripgen:{pm}:in") == N + 2);
  free_jobs(more, 3);
  free_jobs(jobs, N);
  tg_transport_destroy(t);
}

static void test_put_many_at_the_cap(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "pmcap");
  c.queue_cap = 3;
  tg_transport_t *t = open_conf(&c);
  tg_job_t *jobs[5];
  for (int i = 0; i < 5; i++)
    jobs[i] = new_job("pmcap", 0);
  jobs[1]->priority = true; /* the cap counts both streams */
  uint64_t idx[5] = {9, 9, 9, 9, 9};
  tg_err_t err = tg_transport_put_many(t, (const tg_job_t *const *)jobs, 5, idx, errstr,
                                       sizeof(errstr));
  CHECK(err == TG_ERR_QUEUE_FULL);
  CHECK_MSG(strstr(errstr, "queue full") != NULL, "%s", errstr);
  CHECK_MSG(idx[0] == 1 && idx[1] == 2 && idx[2] == 3 && idx[3] == 0 && idx[4] == 0,
            "indexes %llu %llu %llu %llu %llu", (unsigned long long)idx[0],
            (unsigned long long)idx[1], (unsigned long long)idx[2], (unsigned long long)idx[3],
            (unsigned long long)idx[4]);
  CHECK(raw_int("XLEN tripgen:{pmcap}:in") == 2 && raw_int("XLEN tripgen:{pmcap}:in:prio") == 1);
  /* the refused ones go once there is room */
  tg_delivery_t *d;
  int n;
  d = take_n(t, 2, 2, &n);
  for (int i = 0; i < n; i++)
    complete_one(t, &d[i]);
  tg_deliveries_free(d, n);
  CHECK(tg_transport_put_many(t, (const tg_job_t *const *)jobs + 3, 2, idx + 3, errstr,
                              sizeof(errstr)) == TG_OK);
  CHECK(idx[3] == 4 && idx[4] == 5);
  free_jobs(jobs, 5);
  tg_transport_destroy(t);
}

/* ---- complete_many, done_many ----------------------------------------- */

static void test_complete_many_and_done_many(void) {
  enum { N = 4 };
  tg_transport_t *t = open_env("cm", "w1", 60000, 5);
  tg_job_t *jobs[N];
  for (int i = 0; i < N; i++) {
    jobs[i] = new_job("cm", 0);
    jobs[i]->generation = 1;
  }
  jobs[2]->priority = true;
  put_all(t, jobs, N, NULL);
  int n;
  tg_delivery_t *d = take_n(t, N, N, &n);
  if (n != N) {
    tg_deliveries_free(d, n);
    free_jobs(jobs, N);
    tg_transport_destroy(t);
    return;
  }
  const tg_delivery_t *ds[N];
  tg_result_t *rs[N];
  bool published[N];
  tg_err_t errs[N];
  for (int i = 0; i < N; i++) {
    ds[i] = &d[i];
    rs[i] = ok_result(&d[i]);
  }
  tg_err_t err = tg_transport_complete_many(t, ds, (const tg_result_t *const *)rs, N, published,
                                            errs, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "complete_many: %s", errstr);
  for (int i = 0; i < N; i++) {
    CHECK_MSG(published[i] && errs[i] == TG_OK, "result %d: published %d err %d", i,
              published[i], errs[i]);
    tg_result_t *last = NULL;
    CHECK_MSG(sink_count(t, d[i].request_id, &last) == 1, "result %d", i);
    CHECK(last && last->succeeded && last->generation == 1);
    tg_result_destroy(last);
  }
  CHECK(sink_count(t, NULL, NULL) == N);
  struct tg_depth dp = depth(t);
  CHECK(dp.pending == 0 && dp.waiting == 0);
  CHECK(raw_int("XLEN tripgen:{cm}:in") == 0 && raw_int("XLEN tripgen:{cm}:in:prio") == 0);

  /* a repeat (a lost reply) publishes nothing new */
  for (int i = 0; i < N; i++) {
    published[i] = true;
    errs[i] = TG_ERR_TRANSPORT;
  }
  err = tg_transport_complete_many(t, ds, (const tg_result_t *const *)rs, N, published, errs,
                                   errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "complete_many again: %s", errstr);
  for (int i = 0; i < N; i++)
    CHECK_MSG(!published[i] && errs[i] == TG_OK, "repeat %d: published %d err %d", i,
              published[i], errs[i]);
  CHECK(sink_count(t, NULL, NULL) == N);

  /* done_many: this generation and older ones are done, a newer one not, an unknown not */
  tg_job_t *stranger = new_job("cm", 0);
  const tg_job_t *ask[N + 1] = {jobs[0], jobs[1], jobs[2], jobs[3], stranger};
  bool done[N + 1];
  memset(done, 0, sizeof(done));
  CHECK(tg_transport_done_many(t, ask, N + 1, done, errstr, sizeof(errstr)) == TG_OK);
  CHECK(done[0] && done[1] && done[2] && done[3] && !done[4]);
  jobs[1]->generation = 0; /* an older generation asks */
  jobs[2]->generation = 2; /* a newer one */
  memset(done, 1, sizeof(done));
  CHECK(tg_transport_done_many(t, ask, N + 1, done, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(done[0] && done[1] && !done[2] && done[3] && !done[4],
            "done %d %d %d %d %d", done[0], done[1], done[2], done[3], done[4]);
  CHECK(tg_transport_done_many(t, ask, 0, done, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(tg_transport_done_many(t, ask, TG_TRANSPORT_PUT_MANY_MAX + 1, done, errstr,
                               sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(tg_transport_complete_many(t, ds, (const tg_result_t *const *)rs, 0, published, errs,
                                   errstr, sizeof(errstr)) == TG_ERR_INVAL);
  tg_job_destroy(stranger);
  for (int i = 0; i < N; i++)
    tg_result_destroy(rs[i]);
  tg_deliveries_free(d, n);

  /* after SCRIPT FLUSH, new deliveries still complete (EVAL fallback) */
  tg_job_t *more[2] = {new_job("cm", 0), new_job("cm", 0)};
  put_all(t, more, 2, NULL);
  d = take_n(t, 2, 2, &n);
  if (n == 2) {
    const tg_delivery_t *ds2[2] = {&d[0], &d[1]};
    tg_result_t *rs2[2] = {ok_result(&d[0]), ok_result(&d[1])};
    script_flush();
    err = tg_transport_complete_many(t, ds2, (const tg_result_t *const *)rs2, 2, published,
                                     errs, errstr, sizeof(errstr));
    CHECK_MSG(err == TG_OK, "complete_many after SCRIPT FLUSH: %s", errstr);
    CHECK(published[0] && published[1] && errs[0] == TG_OK && errs[1] == TG_OK);
    CHECK(sink_count(t, NULL, NULL) == N + 2);
    CHECK(depth(t).pending == 0);
    tg_result_destroy(rs2[0]);
    tg_result_destroy(rs2[1]);
  }
  tg_deliveries_free(d, n);
  free_jobs(more, 2);
  free_jobs(jobs, N);
  tg_transport_destroy(t);
}

/* ---- park_stale ------------------------------------------------------- */

static void test_park_stale(void) {
  tg_transport_t *a = open_env("park", "wa", 200, 5);
  tg_transport_t *b = open_env("park", "wb", 200, 5);
  tg_transport_t *p = open_env("park", TG_TRANSPORT_PARKED_CONSUMER, 200, 5);
  tg_job_t *jobs[3] = {new_job("park", 0), new_job("park", 0), new_job("park", 0)};
  jobs[1]->priority = true;
  put_all(a, jobs, 3, NULL);
  int na;
  tg_delivery_t *da = take_n(a, 3, 3, &na);
  int parked = -1, dead = -1;
  /* not idle yet: left alone (judged by a handle with a long visibility timeout, so a slow
   * machine cannot make them stale before it looks) */
  tg_transport_t *p_long = open_env("park", TG_TRANSPORT_PARKED_CONSUMER, 60000, 5);
  CHECK(tg_transport_park_stale(p_long, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 0 && dead == 0);
  tg_transport_destroy(p_long);
  CHECK(pending_of("tripgen:{park}:in", "wa", 1) == 2);
  CHECK(pending_of("tripgen:{park}:in:prio", "wa", 1) == 1);
  /* wa dies; past the visibility timeout its entries are parked, counts unchanged */
  tg_sleep_ms(300);
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(parked == 3 && dead == 0, "parked %d dead %d", parked, dead);
  CHECK(pending_of("tripgen:{park}:in", TG_TRANSPORT_PARKED_CONSUMER, 1) == 2);
  CHECK(pending_of("tripgen:{park}:in:prio", TG_TRANSPORT_PARKED_CONSUMER, 1) == 1);
  CHECK(na == 3 && tg_transport_extend_lease(a, &da[0], errstr, sizeof(errstr)) ==
                       TG_ERR_NOT_FOUND);
  /* while no worker takes, parked entries stay as they are */
  tg_sleep_ms(300);
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 0 && dead == 0);
  CHECK(pending_of("tripgen:{park}:in", TG_TRANSPORT_PARKED_CONSUMER, 1) == 2);
  CHECK(pending_of("tripgen:{park}:in:prio", TG_TRANSPORT_PARKED_CONSUMER, 1) == 1);
  struct tg_depth dp = depth(p);
  CHECK(dp.pending == 3 && dp.waiting == 0);
  /* the next take of any worker gets them before new entries */
  tg_job_t *fresh = new_job("park", 0);
  uint64_t fresh_idx = 0;
  CHECK(tg_transport_put(a, fresh, &fresh_idx, errstr, sizeof(errstr)) == TG_OK);
  int nb;
  tg_delivery_t *db = take_n(b, 3, 3, &nb);
  bool seen[4] = {false};
  for (int i = 0; i < nb; i++) {
    CHECK_MSG(db[i].deliveries == 2, "delivery %d: %lld", i, (long long)db[i].deliveries);
    CHECK(db[i].job != NULL);
    CHECK(db[i].index >= 1 && db[i].index <= 3);
    if (db[i].index >= 1 && db[i].index <= 3)
      seen[db[i].index] = true;
    CHECK(db[i].priority == (db[i].index == 2));
  }
  CHECK(seen[1] && seen[2] && seen[3]);
  CHECK(pending_of("tripgen:{park}:in", "wb", 2) == 2);
  CHECK(pending_of("tripgen:{park}:in:prio", "wb", 2) == 1);
  for (int i = 0; i < na; i++)
    CHECK(tg_transport_extend_lease(a, &da[i], errstr, sizeof(errstr)) == TG_ERR_NOT_FOUND);
  CHECK(nb >= 1 && tg_transport_extend_lease(b, &db[0], errstr, sizeof(errstr)) == TG_OK);
  int nf;
  tg_delivery_t *df = take_n(b, 3, 1, &nf);
  CHECK(nf == 1 && df[0].index == fresh_idx && df[0].deliveries == 1);
  for (int i = 0; i < nb; i++)
    CHECK(complete_one(b, &db[i]));
  for (int i = 0; i < nf; i++)
    CHECK(complete_one(b, &df[i]));
  dp = depth(p);
  CHECK(dp.pending == 0 && dp.waiting == 0 && dp.dead == 0);
  tg_deliveries_free(df, nf);
  tg_deliveries_free(db, nb);
  tg_deliveries_free(da, na);
  tg_job_destroy(fresh);
  free_jobs(jobs, 3);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
  tg_transport_destroy(p);
}

/* An entry already delivered max_deliveries times is dead-lettered by
 * park_stale instead of parked. */
static void test_park_stale_dead_letters(void) {
  tg_transport_t *a = open_env("parkdead", "wa", 200, 2);
  tg_transport_t *b = open_env("parkdead", "wb", 200, 2);
  tg_transport_t *p = open_env("parkdead", TG_TRANSPORT_PARKED_CONSUMER, 200, 2);
  tg_job_t *job = new_job("parkdead", 0);
  char rid[80];
  snprintf(rid, sizeof(rid), "%s", job->request_id);
  uint64_t idx = 0;
  CHECK(tg_transport_put(a, job, &idx, errstr, sizeof(errstr)) == TG_OK);
  int na, nb, parked = -1, dead = -1;
  tg_delivery_t *da = take_n(a, 1, 1, &na); /* delivery 1; wa dies */
  tg_sleep_ms(300);
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 1 && dead == 0);
  tg_delivery_t *db = take_n(b, 1, 1, &nb); /* delivery 2; wb dies too */
  CHECK(nb == 1 && db[0].deliveries == 2);
  tg_sleep_ms(300);
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(parked == 0 && dead == 1, "parked %d dead %d", parked, dead);
  CHECK(raw_int("XLEN tripgen:{parkdead}:dlq") == 1);
  CHECK(raw_int("XLEN tripgen:{parkdead}:in") == 0);
  CHECK(pending_of("tripgen:{parkdead}:in", NULL, -1) == 0);
  struct tg_depth dp = depth(p);
  CHECK(dp.dead == 1 && dp.pending == 0 && dp.waiting == 0);
  tg_result_t *last = NULL;
  CHECK(sink_count(p, rid, &last) == 1);
  CHECK(last && !last->succeeded && last->error.code == TG_CODE_INTERNAL);
  tg_result_destroy(last);
  char *json = NULL;
  CHECK(tg_transport_get_result(p, rid, &json, errstr, sizeof(errstr)) == TG_OK);
  CHECK(json && strstr(json, "\"internal\"") != NULL);
  tg_result_t *r = json ? tg_result_parse(json, strlen(json), errstr, sizeof(errstr)) : NULL;
  CHECK(r && !r->succeeded && r->error.code == TG_CODE_INTERNAL && !r->error.retryable);
  CHECK(r && r->error.message && strstr(r->error.message, "max_deliveries") &&
        strstr(r->error.message, "delivered 2 times"));
  tg_result_destroy(r);
  free(json);
  struct tg_dlq_entry *e = NULL;
  int ne = 0;
  CHECK(tg_transport_dlq_list(p, 0, 10, &e, &ne, errstr, sizeof(errstr)) == TG_OK && ne == 1);
  /* the deliveries that ran, not counting the scheduler's own claim */
  CHECK(ne == 1 && strcmp(e[0].request_id, rid) == 0 && e[0].index == idx &&
        e[0].deliveries == 2);
  tg_dlq_entries_free(e, ne);
  CHECK(nb == 1 && tg_transport_extend_lease(b, &db[0], errstr, sizeof(errstr)) ==
                       TG_ERR_NOT_FOUND);
  /* a repeat finds nothing */
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 0 && dead == 0);
  tg_deliveries_free(da, na);
  tg_deliveries_free(db, nb);
  tg_job_destroy(job);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
  tg_transport_destroy(p);
}

/* More than one scan slice (1000) of parked entries before the stale ones:
 * the cursor moves on over calls and reaches them. */
static void test_park_stale_scan_cursor(void) {
  enum { PARKED = 1000, STALE = 5, N = PARKED + STALE };
  tg_transport_t *p = open_env("scan", TG_TRANSPORT_PARKED_CONSUMER, 1000, 5);
  static tg_job_t *jobs[N];
  static uint64_t idx[N];
  for (int i = 0; i < N; i++)
    jobs[i] = new_job("scan", 0);
  put_all(p, jobs, N, idx);
  free_jobs(jobs, N);
  /* a worker reads them all and dies */
  redisReply *r = raw("XREADGROUP GROUP workers wa COUNT %d STREAMS tripgen:{scan}:in >", N);
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->element[0]->element[1]->elements == N);
  freeReplyObject(r);
  tg_sleep_ms(1100);
  /* the last few look alive (their lease was extended); the rest is parked */
  r = raw("XCLAIM tripgen:{scan}:in workers wa 0 0-%d 0-%d 0-%d 0-%d 0-%d JUSTID", N - 4,
          N - 3, N - 2, N - 1, N);
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == STALE);
  freeReplyObject(r);
  int total = 0, dead_total = 0;
  for (int i = 0; i < 5 && total < PARKED; i++) {
    int parked = 0, dead = 0;
    CHECK(tg_transport_park_stale(p, PARKED, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
    total += parked;
    dead_total += dead;
  }
  CHECK_MSG(total == PARKED && dead_total == 0, "parked %d dead %d", total, dead_total);
  /* now the last ones stall too; a fresh handle scans from the start: the
   * first slice is all parked entries */
  tg_sleep_ms(1100);
  tg_transport_t *p2 = open_env("scan", TG_TRANSPORT_PARKED_CONSUMER, 1000, 5);
  total = 0;
  int calls = 0;
  for (; calls < 20 && total < STALE; calls++) {
    int parked = 0, dead = 0;
    CHECK(tg_transport_park_stale(p2, 3, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
    CHECK(parked <= 3);
    total += parked;
    dead_total += dead;
  }
  CHECK_MSG(total == STALE && dead_total == 0, "parked %d dead %d in %d calls", total,
            dead_total, calls);
  CHECK(pending_of("tripgen:{scan}:in", TG_TRANSPORT_PARKED_CONSUMER, 1) == N);
  tg_transport_destroy(p2);
  tg_transport_destroy(p);
}

/* ---- prune_consumers -------------------------------------------------- */

static void test_prune_consumers(void) {
  tg_transport_t *p = open_env("prune", TG_TRANSPORT_PARKED_CONSUMER, 200, 5);
  tg_transport_t *ew = open_env("prune", "empty-w", 200, 5);
  tg_transport_t *dw = open_env("prune", "dead-w", 200, 5);
  tg_transport_t *cl = open_env("prune", "claimer", 200, 5);
  tg_transport_t *hw = open_env("prune", "holder", 200, 5);
  tg_job_t *jobs[3] = {new_job("prune", 0), new_job("prune", 0), new_job("prune", 0)};
  put_all(p, jobs, 3, NULL);
  int n;
  tg_delivery_t *d = take_n(ew, 1, 1, &n); /* done with its job: an empty PEL */
  for (int i = 0; i < n; i++)
    complete_one(ew, &d[i]);
  tg_deliveries_free(d, n);
  d = take_n(dw, 1, 1, &n); /* dies holding one */
  tg_deliveries_free(d, n);
  tg_sleep_ms(300);
  int parked = 0, dead = 0, removed = -1;
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 1);
  d = take_n(cl, 1, 1, &n); /* claims the parked one and finishes it */
  CHECK(n == 1 && d[0].deliveries == 2);
  for (int i = 0; i < n; i++)
    complete_one(cl, &d[i]);
  tg_deliveries_free(d, n);
  int nh;
  tg_delivery_t *dh = take_n(hw, 1, 1, &nh); /* holds the last one */
  int64_t now = tg_now_ms();
  CHECK(tg_transport_heartbeat(ew, now - 100000, errstr, sizeof(errstr)) == TG_OK);
  CHECK(tg_transport_heartbeat(dw, now - 100000, errstr, sizeof(errstr)) == TG_OK);
  CHECK(tg_transport_heartbeat(cl, now, errstr, sizeof(errstr)) == TG_OK);
  tg_sleep_ms(400);
  CHECK(tg_transport_heartbeat(hw, tg_now_ms(), errstr, sizeof(errstr)) == TG_OK);
  CHECK(raw_int("ZCARD tripgen:{prune}:workers") == 4);
  /* idle for 10 s: nobody yet */
  CHECK(tg_transport_prune_consumers(p, 10000, &removed, errstr, sizeof(errstr)) == TG_OK);
  CHECK(removed == 0);
  CHECK(raw_int("ZCARD tripgen:{prune}:workers") == 2); /* the two 100 s old ones went */
  CHECK(tg_transport_prune_consumers(p, 300, &removed, errstr, sizeof(errstr)) == TG_OK);
  /* the holder owns an entry (in :in, none in :in:prio): it stays, in both
   * streams, and is not counted */
  CHECK_MSG(removed == 3, "removed %d", removed);
  const char *in = "tripgen:{prune}:in", *prio = "tripgen:{prune}:in:prio";
  CHECK(!has_consumer(in, "empty-w") && !has_consumer(prio, "empty-w"));
  CHECK(!has_consumer(in, "dead-w") && !has_consumer(prio, "dead-w"));
  CHECK(!has_consumer(in, "claimer") && !has_consumer(prio, "claimer"));
  CHECK(has_consumer(in, "holder"));
  CHECK(has_consumer(prio, "holder"));
  CHECK(has_consumer(in, TG_TRANSPORT_PARKED_CONSUMER));
  CHECK(pending_of(in, "holder", 1) == 1);
  /* heartbeats older than idle_ms went; the holder's stays */
  redisReply *r = raw("ZRANGE tripgen:{prune}:workers 0 -1");
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        strcmp(r->element[0]->str, "holder") == 0);
  freeReplyObject(r);
  /* the holder still owns its entry and can finish it */
  CHECK(nh == 1 && tg_transport_extend_lease(hw, &dh[0], errstr, sizeof(errstr)) == TG_OK);
  CHECK(nh == 1 && complete_one(hw, &dh[0]));
  tg_deliveries_free(dh, nh);
  free_jobs(jobs, 3);
  tg_transport_destroy(hw);
  tg_transport_destroy(cl);
  tg_transport_destroy(dw);
  tg_transport_destroy(ew);
  tg_transport_destroy(p);
}

/* ---- heartbeat, depth ------------------------------------------------- */

static void test_heartbeat_and_active_workers(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "hb");
  c.worker_window_ms = 5000;
  snprintf(c.consumer, sizeof(c.consumer), "w1");
  tg_transport_t *w1 = open_conf(&c);
  snprintf(c.consumer, sizeof(c.consumer), "w2");
  tg_transport_t *w2 = open_conf(&c);
  snprintf(c.consumer, sizeof(c.consumer), "w3");
  tg_transport_t *w3 = open_conf(&c);
  CHECK(depth(w1).active_workers == 0);
  int64_t now = tg_now_ms();
  CHECK(tg_transport_heartbeat(w1, now, errstr, sizeof(errstr)) == TG_OK);
  CHECK(tg_transport_heartbeat(w2, now, errstr, sizeof(errstr)) == TG_OK);
  CHECK(depth(w1).active_workers == 2);
  CHECK(tg_transport_heartbeat(w3, now - 6000, errstr, sizeof(errstr)) == TG_OK);
  CHECK(depth(w1).active_workers == 2);
  /* a heartbeat replaces the last one of the same worker */
  CHECK(tg_transport_heartbeat(w1, now + 1, errstr, sizeof(errstr)) == TG_OK);
  CHECK(depth(w1).active_workers == 2);
  CHECK(tg_transport_heartbeat(w2, now - 6000, errstr, sizeof(errstr)) == TG_OK);
  CHECK(depth(w1).active_workers == 1);
  CHECK(raw_int("ZCARD tripgen:{hb}:workers") == 3);
  tg_transport_destroy(w3);
  tg_transport_destroy(w2);
  tg_transport_destroy(w1);
}

static void test_oldest_waiting_age(void) {
  tg_transport_t *t = open_env("age", "w1", 60000, 5);
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == 0 && dp.oldest_waiting_age_ms == 0);
  tg_job_t *jobs[4] = {new_job("age", 5000), new_job("age", 3000), new_job("age", 1000),
                       new_job("age", 2000)};
  uint64_t idx[4];
  put_all(t, jobs, 4, idx);
  dp = depth(t);
  CHECK(dp.waiting == 4);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 5000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  /* the oldest is delivered: the next undelivered one counts */
  int n;
  tg_delivery_t *d = take_n(t, 1, 1, &n);
  CHECK(n == 1 && d[0].index == idx[0]);
  dp = depth(t);
  CHECK(dp.waiting == 3 && dp.pending == 1);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 3000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  /* EAS delete of the next undelivered one */
  bool removed = false;
  CHECK(tg_transport_remove(t, idx[1], &removed, errstr, sizeof(errstr)) == TG_OK && removed);
  dp = depth(t);
  CHECK_MSG(dp.waiting == 2 && dp.pending == 1, "waiting %lld pending %lld",
            (long long)dp.waiting, (long long)dp.pending);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 1000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  /* a raw XDEL of an undelivered entry (Redis' XINFO lag turns nil) */
  CHECK(raw_int("XDEL tripgen:{age}:in 0-%llu", (unsigned long long)idx[2]) == 1);
  dp = depth(t);
  CHECK_MSG(dp.waiting == 1 && dp.pending == 1, "waiting %lld pending %lld",
            (long long)dp.waiting, (long long)dp.pending);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 2000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  tg_deliveries_free(d, n);
  d = take_n(t, 5, 1, &n);
  dp = depth(t);
  CHECK(dp.waiting == 0 && dp.pending == 2 && dp.oldest_waiting_age_ms == 0);
  tg_deliveries_free(d, n);
  free_jobs(jobs, 4);
  /* both streams: the older of the two oldest */
  tg_job_t *two[2] = {new_job("age", 4000), new_job("age", 2000)};
  two[1]->priority = true;
  put_all(t, two, 2, NULL);
  dp = depth(t);
  CHECK(dp.waiting == 2 && dp.waiting_priority == 1);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 4000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  d = take_n(t, 1, 1, &n); /* the priority one */
  CHECK(n == 1 && d[0].priority);
  dp = depth(t);
  CHECK(dp.waiting == 1 && dp.waiting_priority == 0);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 4000, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  tg_deliveries_free(d, n);
  d = take_n(t, 1, 1, &n);
  CHECK(depth(t).oldest_waiting_age_ms == 0);
  /* a priority job alone */
  tg_job_t *solo = new_job("age", 2500);
  solo->priority = true;
  uint64_t solo_idx;
  CHECK(tg_transport_put(t, solo, &solo_idx, errstr, sizeof(errstr)) == TG_OK);
  dp = depth(t);
  CHECK_MSG(near(dp.oldest_waiting_age_ms, 2500, AGE_SLACK_MS), "age %lld",
            (long long)dp.oldest_waiting_age_ms);
  tg_job_destroy(solo);
  tg_deliveries_free(d, n);
  free_jobs(two, 2);
  tg_transport_destroy(t);
}

/* ---- leases ----------------------------------------------------------- */

static void test_lease(void) {
  tg_transport_t *t = open_env("lease", "w1", 60000, 5);
  const char *key = "tripgen:{lease}:lease:control";
  bool held = false;
  CHECK(tg_transport_lease(t, "control", "holder-a", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  held = true;
  CHECK(tg_transport_lease(t, "control", "holder-b", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(!held);
  tg_sleep_ms(500);
  CHECK(tg_transport_lease(t, "control", "holder-a", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  long long pttl = raw_int("PTTL %s", key);
  CHECK_MSG(pttl > 700 && pttl <= 1000, "PTTL %lld after renewal", pttl);
  /* a release by someone else does nothing */
  CHECK(tg_transport_lease_release(t, "control", "holder-b", errstr, sizeof(errstr)) == TG_OK);
  CHECK(raw_int("EXISTS %s", key) == 1);
  /* another lease name is independent */
  CHECK(tg_transport_lease(t, "other", "holder-b", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  tg_sleep_ms(1100); /* holder-a stops renewing */
  CHECK(tg_transport_lease(t, "control", "holder-b", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  CHECK(tg_transport_lease(t, "control", "holder-a", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(!held);
  CHECK(tg_transport_lease_release(t, "control", "holder-a", errstr, sizeof(errstr)) == TG_OK);
  redisReply *r = raw("GET %s", key);
  CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "holder-b") == 0);
  freeReplyObject(r);
  CHECK(tg_transport_lease_release(t, "control", "holder-b", errstr, sizeof(errstr)) == TG_OK);
  CHECK(raw_int("EXISTS %s", key) == 0);
  /* free again: anyone takes it */
  CHECK(tg_transport_lease(t, "control", "holder-a", 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  /* bad names and holders */
  char long_name[80], long_holder[140];
  memset(long_name, 'n', 65);
  long_name[65] = '\0';
  memset(long_holder, 'h', 129);
  long_holder[129] = '\0';
  const char *bad[][2] = {{"", "h"}, {NULL, "h"}, {"bad name", "h"}, {"a/b", "h"},
                          {long_name, "h"}, {"control", ""}, {"control", NULL},
                          {"control", long_holder}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    held = true;
    CHECK_MSG(tg_transport_lease(t, bad[i][0], bad[i][1], 1000, &held, errstr,
                                 sizeof(errstr)) == TG_ERR_INVAL && !held,
              "lease case %zu", i);
    CHECK_MSG(tg_transport_lease_release(t, bad[i][0], bad[i][1], errstr, sizeof(errstr)) ==
                  TG_ERR_INVAL,
              "release case %zu", i);
  }
  /* the longest allowed ones work */
  long_name[64] = '\0';
  long_holder[128] = '\0';
  CHECK(tg_transport_lease(t, long_name, long_holder, 1000, &held, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(held);
  tg_transport_destroy(t);
}

/* ---- dead-letter replay at the cap ------------------------------------ */

/* The dead letters are bounded: trimmed to about dlq_max_len, oldest first,
 * while every failed result stays on the sink. */
static void test_dlq_is_bounded(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "dlqbound");
  snprintf(c.consumer, sizeof(c.consumer), "w");
  c.dlq_max_len = 100;
  tg_transport_t *t = open_conf(&c);
  enum { N = 450 };
  for (int done = 0; done < N;) {
    tg_job_t *jobs[50];
    for (int i = 0; i < 50; i++)
      jobs[i] = new_job("dlqbound", 0);
    uint64_t idx[50];
    put_all(t, jobs, 50, idx);
    free_jobs(jobs, 50);
    int nd;
    tg_delivery_t *d = take_n(t, 50, 50, &nd);
    for (int i = 0; i < nd; i++) {
      tg_result_t *r = tg_result_for_job(d[i].job);
      tg_result_fail(r, TG_CODE_DIFFUSION_FAILED, "diffusion", true, "gave up");
      CHECK(tg_transport_dead_letter(t, &d[i], r, errstr, sizeof(errstr)) == TG_OK);
      tg_result_destroy(r);
    }
    tg_deliveries_free(d, nd);
    done += 50;
  }
  long long kept = raw_int("XLEN tripgen:{dlqbound}:dlq");
  CHECK_MSG(kept >= 100 && kept < N, "kept %lld", kept);
  CHECK(raw_int("XLEN tripgen:{dlqbound}:out") == N);
  struct tg_dlq_entry *e = NULL;
  int ne = 0;
  CHECK(tg_transport_dlq_list(t, 0, 1, &e, &ne, errstr, sizeof(errstr)) == TG_OK && ne == 1);
  CHECK_MSG(ne == 1 && e[0].dlq_index > 1, "the oldest went first: %llu",
            ne ? (unsigned long long)e[0].dlq_index : 0ULL);
  tg_dlq_entries_free(e, ne);
  tg_transport_destroy(t);
}

static void test_dlq_replay_at_the_cap(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "dlqcap");
  c.queue_cap = 1;
  tg_transport_t *t = open_conf(&c);
  tg_job_t *job = new_job("dlqcap", 0);
  uint64_t idx;
  CHECK(tg_transport_put(t, job, &idx, errstr, sizeof(errstr)) == TG_OK);
  int n;
  tg_delivery_t *d = take_n(t, 1, 1, &n);
  if (n == 1) {
    tg_result_t *r = tg_result_for_job(d[0].job);
    tg_result_fail(r, TG_CODE_DIFFUSION_FAILED, "diffusion", true, "boom");
    CHECK(tg_transport_dead_letter(t, &d[0], r, errstr, sizeof(errstr)) == TG_OK);
    tg_result_destroy(r);
  }
  tg_deliveries_free(d, n);
  tg_job_t *filler = new_job("dlqcap", 0);
  CHECK(tg_transport_put(t, filler, &idx, errstr, sizeof(errstr)) == TG_OK);
  struct tg_dlq_entry *e = NULL;
  int ne = 0;
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &ne, errstr, sizeof(errstr)) == TG_OK && ne == 1);
  uint64_t dlq_index = ne == 1 ? e[0].dlq_index : 0;
  tg_dlq_entries_free(e, ne);
  uint64_t new_idx = 0;
  int64_t gen = -1;
  char rid[80] = "";
  CHECK(tg_transport_dlq_replay(t, dlq_index, &new_idx, &gen, rid, errstr, sizeof(errstr)) ==
        TG_ERR_QUEUE_FULL);
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &ne, errstr, sizeof(errstr)) == TG_OK);
  CHECK(ne == 1 && e[0].dlq_index == dlq_index);
  tg_dlq_entries_free(e, ne);
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == 1 && dp.dead == 1);
  /* with room again it goes */
  d = take_n(t, 1, 1, &n);
  for (int i = 0; i < n; i++)
    complete_one(t, &d[i]);
  tg_deliveries_free(d, n);
  CHECK(tg_transport_dlq_replay(t, dlq_index, &new_idx, &gen, rid, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(new_idx == 3 && gen == 1 && strcmp(rid, job->request_id) == 0);
  dp = depth(t);
  CHECK(dp.waiting == 1 && dp.dead == 0);
  tg_job_destroy(filler);
  tg_job_destroy(job);
  tg_transport_destroy(t);
}

/* One take that gets parked entries and new ones: the array grows past
 * what the parked claim sized (a heap overflow once; ASan watches). */
static void test_parked_and_new_in_one_take(void) {
  tg_transport_t *a = open_env("mixed", "wa", 200, 5);
  tg_transport_t *b = open_env("mixed", "wb", 200, 5);
  tg_transport_t *p = open_env("mixed", TG_TRANSPORT_PARKED_CONSUMER, 200, 5);
  tg_job_t *first[1] = {new_job("mixed", 0)};
  put_all(a, first, 1, NULL);
  int na, nb, parked = -1, dead = -1;
  tg_delivery_t *da = take_n(a, 1, 1, &na); /* wa dies with it */
  tg_sleep_ms(300);
  CHECK(tg_transport_park_stale(p, 100, &parked, &dead, errstr, sizeof(errstr)) == TG_OK);
  CHECK(parked == 1 && dead == 0);
  tg_job_t *more[12];
  for (int i = 0; i < 12; i++)
    more[i] = new_job("mixed", 0);
  put_all(a, more, 12, NULL);
  tg_delivery_t *db = take_n(b, 10, 10, &nb);
  CHECK(nb == 10 && strcmp(db[0].request_id, first[0]->request_id) == 0 &&
        db[0].deliveries == 2);
  for (int i = 1; i < nb; i++)
    CHECK(db[i].deliveries == 1 && strcmp(db[i].request_id, more[i - 1]->request_id) == 0);
  tg_deliveries_free(da, na);
  tg_deliveries_free(db, nb);
  free_jobs(first, 1);
  free_jobs(more, 12);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
  tg_transport_destroy(p);
}

/* Two handles of one consumer: only the one without skip_own_pending reads
 * the consumer's old entries, so none is delivered (and counted) twice. */
static void test_skip_own_pending(void) {
  tg_transport_t *old = open_env("skip", "same", 60000, 3);
  tg_job_t *jobs[3] = {new_job("skip", 0), new_job("skip", 0), new_job("skip", 0)};
  put_all(old, jobs, 3, NULL);
  int n0, n1, n2;
  tg_delivery_t *d0 = take_n(old, 3, 3, &n0); /* the previous run, then a restart: */
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "skip");
  snprintf(c.consumer, sizeof(c.consumer), "same");
  c.max_deliveries = 3;
  c.skip_own_pending = true;
  tg_transport_t *second = open_conf(&c);
  CHECK(tg_transport_history_done(second));
  tg_delivery_t *d1 = NULL;
  n1 = -1;
  CHECK(tg_transport_take(second, 10, 0, &d1, &n1, errstr, sizeof(errstr)) == TG_OK && n1 == 0);
  tg_transport_t *first = open_env("skip", "same", 60000, 3);
  CHECK(!tg_transport_history_done(first));
  tg_delivery_t *d2 = take_n(first, 10, 3, &n2);
  CHECK(n2 == 3 && d2[0].deliveries == 2 && d2[2].deliveries == 2);
  tg_deliveries_free(d2, n2);
  d2 = take_n(first, 10, 0, &n2);
  CHECK(tg_transport_history_done(first));
  CHECK(pending_of("tripgen:{skip}:in", "same", 2) == 3);
  tg_deliveries_free(d0, n0);
  tg_deliveries_free(d1, n1);
  tg_deliveries_free(d2, n2);
  free_jobs(jobs, 3);
  tg_transport_destroy(old);
  tg_transport_destroy(second);
  tg_transport_destroy(first);
}

int main(int argc, char **argv) {
  snprintf(root, sizeof(root), "%s", argc > 1 ? argv[1] : ".");
  signal(SIGPIPE, SIG_IGN);
  if (test_redis_start(&srv) != 0)
    return 1;
  RUN(test_put_many);
  RUN(test_put_many_at_the_cap);
  RUN(test_complete_many_and_done_many);
  RUN(test_park_stale);
  RUN(test_park_stale_dead_letters);
  RUN(test_park_stale_scan_cursor);
  RUN(test_prune_consumers);
  RUN(test_heartbeat_and_active_workers);
  RUN(test_oldest_waiting_age);
  RUN(test_lease);
  RUN(test_dlq_replay_at_the_cap);
  RUN(test_dlq_is_bounded);
  RUN(test_parked_and_new_in_one_take);
  RUN(test_skip_own_pending);
  test_redis_stop(&srv);
  return check_done("transport_control");
}
