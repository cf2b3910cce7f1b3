/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_transport_redis.c - the Redis Streams transport against a real,
 * private redis-server: round trip, index scheme and priority, idempotent
 * completion, reclaim after the visibility timeout, max_deliveries, retry
 * and promote, depth after deletes, the queue cap, leases, env isolation,
 * own-PEL recovery under a stable consumer name, invalid payloads, and a
 * Redis kill -9 + restart in the middle of a run.
 */
#undef NDEBUG
#include "check.h"
#include "redis_harness.h"
#include "tg_time.h"
#include "tg_transport.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct test_redis srv;
static char root[512];
static char errstr[512];

static tg_transport_t *open_env(const char *env, const char *consumer, int64_t vis_ms,
                                int max_deliveries) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, env);
  snprintf(c.redis_url, sizeof(c.redis_url), "%s", srv.url);
  snprintf(c.consumer, sizeof(c.consumer), "%s", consumer);
  c.visibility_timeout_ms = vis_ms;
  c.max_deliveries = max_deliveries;
  c.reconnect_max_ms = 10000;
  tg_transport_t *t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s", errstr);
  return t;
}

static tg_job_t *sample_job(const char *env, const char *file) {
  char path[700], buf[8192];
  snprintf(path, sizeof(path), "%s/tests/data/trips/%s", root, file);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(1);
  }
  size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  tg_trip_t *trip = tg_trip_parse(buf, len, errstr, sizeof(errstr));
  CHECK_MSG(trip != NULL, "%s", errstr);
  tg_job_t *job = tg_job_new(trip, env, NULL, tg_now_ms(), errstr, sizeof(errstr));
  CHECK(job != NULL);
  return job;
}

static uint64_t put_sample(tg_transport_t *t, const char *env, bool prio, char *rid_out) {
  tg_job_t *job = sample_job(env, "may-day-shanghai.json");
  job->priority = prio;
  uint64_t idx = 0;
  tg_err_t err = tg_transport_put(t, job, &idx, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "put: %s", errstr);
  if (rid_out)
    strcpy(rid_out, job->request_id);
  tg_job_destroy(job);
  return idx;
}

static tg_result_t *ok_result(const tg_delivery_t *d) {
  tg_result_t *r = tg_result_for_job(d->job);
  r->worker = strdup("test");
  return r;
}

static bool complete_ok(tg_transport_t *t, const tg_delivery_t *d) {
  tg_result_t *r = ok_result(d);
  bool published = false;
  tg_err_t err = tg_transport_complete(t, d, r, &published, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "complete: %s", errstr);
  tg_result_destroy(r);
  return published;
}

static struct tg_depth depth(tg_transport_t *t) {
  struct tg_depth d;
  tg_err_t err = tg_transport_depth(t, &d, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "depth: %s", errstr);
  return d;
}

static int sink_count(tg_transport_t *t, const char *request_id) {
  struct tg_sink_frame *f;
  int n, hits = 0;
  CHECK(tg_transport_read_sink(t, 0, 1000, 0, &f, &n, errstr, sizeof(errstr)) == TG_OK);
  for (int i = 0; i < n; i++)
    if (!request_id || strcmp(f[i].request_id, request_id) == 0)
      hits++;
  tg_sink_frames_free(f, n);
  return hits;
}

static void test_round_trip(void) {
  tg_transport_t *t = open_env("rt", "w1", 60000, 5);
  char rid[3][80];
  for (int i = 0; i < 3; i++)
    CHECK(put_sample(t, "rt", false, rid[i]) == (uint64_t)i + 1);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 10, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 3);
  for (int i = 0; i < n; i++) {
    CHECK(d[i].index == (uint64_t)i + 1);
    CHECK(d[i].deliveries == 1);
    CHECK(d[i].job != NULL);
    CHECK(strcmp(d[i].request_id, rid[i]) == 0);
    CHECK(d[i].job && strcmp(d[i].job->request_id, rid[i]) == 0);
    CHECK(d[i].job && d[i].job->enqueued_at_ms == d[i].enqueued_at_ms);
    CHECK(complete_ok(t, &d[i]));
  }
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == 0 && dp.pending == 0 && dp.delayed == 0 && dp.dead == 0);
  char *json = NULL;
  CHECK(tg_transport_get_result(t, rid[1], &json, errstr, sizeof(errstr)) == TG_OK);
  tg_result_t *r = json ? tg_result_parse(json, strlen(json), errstr, sizeof(errstr)) : NULL;
  CHECK_MSG(r != NULL, "%s", errstr);
  CHECK(r && r->succeeded && strcmp(r->request_id, rid[1]) == 0);
  tg_result_destroy(r);
  free(json);
  CHECK(tg_transport_get_result(t, "nope", &json, errstr, sizeof(errstr)) == TG_ERR_NOT_FOUND);
  CHECK(tg_transport_get_result(t, "../x", &json, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  /* sink frames carry growing indexes and the request ids, from any index on */
  struct tg_sink_frame *f;
  int nf;
  CHECK(tg_transport_read_sink(t, 2, 10, 0, &f, &nf, errstr, sizeof(errstr)) == TG_OK);
  CHECK(nf == 2);
  CHECK(nf == 2 && f[0].index == 2 && f[1].index == 3 && strcmp(f[1].request_id, rid[2]) == 0);
  tg_sink_frames_free(f, nf);
  /* a blocking take on an empty queue returns nothing after its timeout */
  tg_deliveries_free(d, n);
  int64_t t0 = tg_mono_ms();
  CHECK(tg_transport_take(t, 1, 200, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 0 && tg_mono_ms() - t0 >= 150);
  tg_transport_destroy(t);
}

static void test_priority_and_indexes(void) {
  tg_transport_t *t = open_env("prio", "w1", 60000, 5);
  char n1[80], n2[80], p1[80], n3[80];
  CHECK(put_sample(t, "prio", false, n1) == 1);
  CHECK(put_sample(t, "prio", false, n2) == 2);
  CHECK(put_sample(t, "prio", true, p1) == 3);
  CHECK(put_sample(t, "prio", false, n3) == 4);
  const char *order[] = {p1, n1, n2, n3};
  uint64_t idx[] = {3, 1, 2, 4};
  for (int i = 0; i < 4; i++) {
    tg_delivery_t *d;
    int n;
    CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
    CHECK(n == 1);
    if (n == 1) {
      CHECK_MSG(strcmp(d[0].request_id, order[i]) == 0, "position %d", i);
      CHECK(d[0].index == idx[i]);
      CHECK(d[0].priority == (i == 0));
      complete_ok(t, &d[0]);
    }
    tg_deliveries_free(d, n);
  }
  /* a priority job put while a consumer blocks is delivered to it */
  tg_transport_t *producer = open_env("prio", "p", 60000, 5);
  CHECK(put_sample(producer, "prio", true, p1) == 5);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 4, 500, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 1 && d[0].priority && d[0].index == 5);
  tg_deliveries_free(d, n);
  tg_transport_destroy(producer);
  tg_transport_destroy(t);
}

static void test_complete_is_idempotent(void) {
  tg_transport_t *t = open_env("idem", "w1", 60000, 5);
  char rid[80];
  put_sample(t, "idem", false, rid);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(complete_ok(t, &d[0]) == true);
  CHECK(complete_ok(t, &d[0]) == false); /* repeated after a lost reply */
  CHECK(sink_count(t, rid) == 1);
  /* the same job delivered again (a redelivery) completes without a second frame */
  tg_job_t *again = tg_job_parse(d[0].payload, d[0].payload_len, errstr, sizeof(errstr));
  uint64_t idx;
  CHECK(tg_transport_put(t, again, &idx, errstr, sizeof(errstr)) == TG_OK);
  tg_job_destroy(again);
  tg_deliveries_free(d, n);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(strcmp(d[0].request_id, rid) == 0);
  CHECK(complete_ok(t, &d[0]) == false);
  CHECK(sink_count(t, rid) == 1);
  CHECK(depth(t).pending == 0);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

static void test_reclaim_after_visibility_timeout(void) {
  tg_transport_t *a = open_env("recl", "dead-worker", 1000, 5);
  tg_transport_t *b = open_env("recl", "live-worker", 1000, 5);
  char rid[80];
  put_sample(a, "recl", false, rid);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(a, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  tg_deliveries_free(d, n);
  tg_transport_destroy(a); /* dies holding the entry */
  CHECK(tg_transport_reclaim(b, 10, NULL, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 0); /* not idle long enough yet */
  tg_deliveries_free(d, n);
  tg_sleep_ms(1100);
  CHECK(tg_transport_reclaim(b, 10, NULL, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 1);
  if (n == 1) {
    CHECK(strcmp(d[0].request_id, rid) == 0);
    CHECK(d[0].deliveries == 2);
    CHECK(d[0].job != NULL);
    CHECK(complete_ok(b, &d[0]));
  }
  tg_deliveries_free(d, n);
  CHECK(sink_count(b, rid) == 1);
  struct tg_depth dp = depth(b);
  CHECK(dp.pending == 0 && dp.waiting == 0);
  tg_transport_destroy(b);
}

static void test_poison_stops_at_max_deliveries(void) {
  char rid[80];
  tg_transport_t *p = open_env("poison", "producer", 300, 2);
  put_sample(p, "poison", false, rid);
  tg_delivery_t *d;
  int n;
  /* delivery 1: taken, the worker "crashes" */
  tg_transport_t *w1 = open_env("poison", "w1", 300, 2);
  CHECK(tg_transport_take(w1, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  tg_deliveries_free(d, n);
  tg_transport_destroy(w1);
  /* delivery 2: reclaimed, crashes again */
  tg_sleep_ms(350);
  tg_transport_t *w2 = open_env("poison", "w2", 300, 2);
  CHECK(tg_transport_reclaim(w2, 10, NULL, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(n == 1 && d[0].deliveries == 2);
  tg_deliveries_free(d, n);
  tg_transport_destroy(w2);
  /* delivery 3 would exceed max_deliveries: dead-lettered, not handed out */
  tg_sleep_ms(350);
  tg_transport_t *w3 = open_env("poison", "w3", 300, 2);
  CHECK(tg_transport_reclaim(w3, 10, NULL, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
  CHECK(n == 0);
  tg_deliveries_free(d, n);
  struct tg_depth dp = depth(w3);
  CHECK(dp.dead == 1 && dp.pending == 0 && dp.waiting == 0);
  char *json = NULL;
  CHECK(tg_transport_get_result(w3, rid, &json, errstr, sizeof(errstr)) == TG_OK);
  tg_result_t *r = json ? tg_result_parse(json, strlen(json), errstr, sizeof(errstr)) : NULL;
  CHECK(r && !r->succeeded && r->error.code == TG_CODE_INTERNAL && !r->error.retryable);
  CHECK(r && r->error.message && strstr(r->error.message, "max_deliveries"));
  tg_result_destroy(r);
  free(json);
  CHECK(sink_count(w3, rid) == 1);
  tg_transport_destroy(w3);
  tg_transport_destroy(p);
}

static void test_retry_later_and_promote_due(void) {
  tg_transport_t *t = open_env("retry", "w1", 60000, 5);
  char rid[80];
  put_sample(t, "retry", false, rid);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  tg_job_t *next = tg_job_parse(d[0].payload, d[0].payload_len, errstr, sizeof(errstr));
  next->attempt++;
  int64_t due = tg_now_ms() + 400;
  CHECK(tg_transport_retry_later(t, &d[0], next, due, errstr, sizeof(errstr)) == TG_OK);
  /* repeating it (a lost reply) adds nothing */
  CHECK(tg_transport_retry_later(t, &d[0], next, due, errstr, sizeof(errstr)) == TG_OK);
  struct tg_depth dp = depth(t);
  CHECK(dp.delayed == 1 && dp.waiting == 0 && dp.pending == 0);
  int promoted = -1; /* not due yet (judged just before @due, however slow this machine is) */
  CHECK(tg_transport_promote_due(t, due - 1, 100, &promoted, errstr, sizeof(errstr)) == TG_OK);
  CHECK(promoted == 0);
  tg_deliveries_free(d, n);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 0);
  tg_sleep_ms(450);
  CHECK(tg_transport_promote_due(t, tg_now_ms(), 100, &promoted, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(promoted == 1);
  dp = depth(t);
  CHECK(dp.delayed == 0 && dp.waiting == 1);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(n == 1 && d[0].job && d[0].job->attempt == 2);
  CHECK(n == 1 && strcmp(d[0].request_id, rid) == 0);
  CHECK(n == 1 && d[0].index == 2); /* a new index from the same counter */
  CHECK(n == 1 && d[0].job->enqueued_at_ms == next->enqueued_at_ms); /* same object keys */
  tg_job_destroy(next);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

static void test_depth_after_deletes(void) {
  tg_transport_t *t = open_env("depth", "w1", 60000, 5);
  uint64_t idx[5];
  for (int i = 0; i < 5; i++)
    idx[i] = put_sample(t, "depth", i < 2, NULL);
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == 5 && dp.waiting_priority == 2 && dp.pending == 0);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 2, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 2);
  dp = depth(t);
  CHECK(dp.waiting == 3 && dp.waiting_priority == 0 && dp.pending == 2);
  complete_ok(t, &d[0]);
  dp = depth(t);
  CHECK(dp.waiting == 3 && dp.pending == 1);
  bool removed = false;
  CHECK(tg_transport_remove(t, idx[4], &removed, errstr, sizeof(errstr)) == TG_OK && removed);
  dp = depth(t);
  CHECK(dp.waiting == 2 && dp.pending == 1);
  /* an operator's raw XDEL of an undelivered entry (XINFO lag turns nil) */
  redisContext *c = test_redis_connect(&srv);
  redisReply *r = redisCommand(c, "XDEL tripgen:{depth}:in 0-%llu", (unsigned long long)idx[3]);
  CHECK(r && r->integer == 1);
  freeReplyObject(r);
  redisFree(c);
  dp = depth(t);
  CHECK_MSG(dp.waiting == 1 && dp.pending == 1, "waiting %lld pending %lld",
            (long long)dp.waiting, (long long)dp.pending);
  /* removing the pending entry acks it too */
  CHECK(tg_transport_remove(t, d[1].index, &removed, errstr, sizeof(errstr)) == TG_OK && removed);
  dp = depth(t);
  CHECK(dp.waiting == 1 && dp.pending == 0);
  CHECK(tg_transport_remove(t, 999, &removed, errstr, sizeof(errstr)) == TG_OK && !removed);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

static void test_queue_cap(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "cap");
  snprintf(c.redis_url, sizeof(c.redis_url), "%s", srv.url);
  c.queue_cap = 3;
  tg_transport_t *t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK(t != NULL);
  for (int i = 0; i < 3; i++)
    put_sample(t, "cap", i == 0, NULL);
  tg_job_t *job = sample_job("cap", "winter-harbin-short.json");
  uint64_t idx;
  CHECK(tg_transport_put(t, job, &idx, errstr, sizeof(errstr)) == TG_ERR_QUEUE_FULL);
  CHECK(strstr(errstr, "queue full") != NULL);
  tg_job_destroy(job);
  CHECK(depth(t).waiting == 3);
  tg_transport_destroy(t);
}

static void test_extend_lease(void) {
  tg_transport_t *a = open_env("lease", "a", 800, 5);
  tg_transport_t *b = open_env("lease", "b", 800, 5);
  put_sample(a, "lease", false, NULL);
  tg_delivery_t *d, *db;
  int n, nb;
  CHECK(tg_transport_take(a, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  for (int i = 0; i < 3; i++) { /* a long job keeps its lease */
    tg_sleep_ms(500);
    CHECK(tg_transport_extend_lease(a, &d[0], errstr, sizeof(errstr)) == TG_OK);
    CHECK(tg_transport_reclaim(b, 10, NULL, 0, &db, &nb, errstr, sizeof(errstr)) == TG_OK && nb == 0);
    tg_deliveries_free(db, nb);
  }
  tg_sleep_ms(900); /* a stalls: b takes over, a learns it lost the entry */
  CHECK(tg_transport_reclaim(b, 10, NULL, 0, &db, &nb, errstr, sizeof(errstr)) == TG_OK && nb == 1);
  CHECK(tg_transport_extend_lease(a, &d[0], errstr, sizeof(errstr)) == TG_ERR_NOT_FOUND);
  tg_deliveries_free(db, nb);
  tg_deliveries_free(d, n);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
}

/* A reclaim renews the entries its own consumer runs (@held) in the same
 * step: after a stall they are stale too, but only the others are claimed;
 * a held id that another consumer owns is left with it. */
static void test_reclaim_keeps_held_entries(void) {
  tg_transport_t *a = open_env("held", "a", 1000, 5);
  tg_transport_t *b = open_env("held", "b", 1000, 5);
  put_sample(a, "held", false, NULL);
  put_sample(a, "held", true, NULL);
  put_sample(a, "held", false, NULL);
  tg_delivery_t *d, *db, *dr;
  int n, nb, nr;
  CHECK(tg_transport_take(a, 2, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 2);
  CHECK(tg_transport_take(b, 1, 0, &db, &nb, errstr, sizeof(errstr)) == TG_OK && nb == 1);
  tg_sleep_ms(1100); /* a stall: a's entries are stale now */
  if (n == 2 && nb == 1) {
    CHECK(d[0].priority); /* the priority entry is read first */
    CHECK(tg_transport_extend_lease(b, &db[0], errstr, sizeof(errstr)) == TG_OK);
    tg_delivery_t held[2] = {d[0], db[0]}; /* a runs d[0]; db[0] is b's, listed by mistake */
    CHECK(tg_transport_reclaim(a, 10, held, 2, &dr, &nr, errstr, sizeof(errstr)) == TG_OK);
    CHECK_MSG(nr == 1 && strcmp(dr[0].entry_id, d[1].entry_id) == 0 && dr[0].deliveries == 2,
              "reclaimed %d", nr);
    tg_deliveries_free(dr, nr);
    CHECK(tg_transport_extend_lease(a, &d[0], errstr, sizeof(errstr)) == TG_OK); /* still a's */
    CHECK(tg_transport_extend_lease(b, &db[0], errstr, sizeof(errstr)) == TG_OK); /* b's */
    /* without the renewal in the same step, the held entry is reclaimed like the others */
    tg_sleep_ms(1100);
    CHECK(tg_transport_reclaim(a, 10, NULL, 0, &dr, &nr, errstr, sizeof(errstr)) == TG_OK);
    CHECK_MSG(nr == 3, "reclaimed %d", nr); /* d[0], d[1] and b's */
    tg_deliveries_free(dr, nr);
  }
  tg_deliveries_free(d, n);
  tg_deliveries_free(db, nb);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
}

/* A worker whose lease went to another consumer (which runs the job now)
 * can neither schedule a retry nor dead-letter the entry: either would ack
 * the other's delivery and make a second copy or a second final result. */
static void test_lost_lease_retry_and_dead_letter_change_nothing(void) {
  tg_transport_t *a = open_env("lostl", "a", 300, 5);
  tg_transport_t *b = open_env("lostl", "b", 300, 5);
  char rid[80];
  put_sample(a, "lostl", false, rid);
  tg_delivery_t *d, *db;
  int n, nb;
  CHECK(tg_transport_take(a, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  tg_sleep_ms(400); /* a stalls: b takes over */
  CHECK(tg_transport_reclaim(b, 10, NULL, 0, &db, &nb, errstr, sizeof(errstr)) == TG_OK && nb == 1);
  if (n == 1 && nb == 1) {
    tg_err_t err = tg_transport_retry_later(a, &d[0], d[0].job, tg_now_ms(), errstr,
                                            sizeof(errstr));
    CHECK_MSG(err == TG_ERR_NOT_FOUND && strstr(errstr, "another consumer"), "retry: %d %s",
              err, errstr);
    tg_result_t *r = tg_result_for_job(d[0].job);
    tg_result_fail(r, TG_CODE_DIFFUSION_FAILED, "diffusion", false, "from the stalled worker");
    err = tg_transport_dead_letter(a, &d[0], r, errstr, sizeof(errstr));
    CHECK_MSG(err == TG_ERR_NOT_FOUND && strstr(errstr, "another consumer"), "dead letter: %d %s",
              err, errstr);
    tg_result_destroy(r);
    struct tg_depth dp = depth(b);
    CHECK_MSG(dp.pending == 1 && dp.delayed == 0 && dp.dead == 0 && dp.waiting == 0,
              "pending %lld delayed %lld dead %lld waiting %lld", (long long)dp.pending,
              (long long)dp.delayed, (long long)dp.dead, (long long)dp.waiting);
    CHECK(sink_count(b, rid) == 0);
    CHECK(tg_transport_extend_lease(b, &db[0], errstr, sizeof(errstr)) == TG_OK);
    CHECK(complete_ok(b, &db[0]));
    CHECK(sink_count(b, rid) == 1);
    /* the holder's own retry still works, and repeating it (a lost reply) is fine */
    char rid2[80];
    put_sample(b, "lostl", false, rid2);
    tg_delivery_t *d2;
    int n2;
    CHECK(tg_transport_take(b, 1, 0, &d2, &n2, errstr, sizeof(errstr)) == TG_OK && n2 == 1);
    for (int i = 0; n2 == 1 && i < 2; i++)
      CHECK(tg_transport_retry_later(b, &d2[0], d2[0].job, tg_now_ms() + 60000, errstr,
                                     sizeof(errstr)) == TG_OK);
    CHECK(depth(b).delayed == 1);
    tg_deliveries_free(d2, n2);
  }
  tg_deliveries_free(db, nb);
  tg_deliveries_free(d, n);
  tg_transport_destroy(a);
  tg_transport_destroy(b);
}

static void test_env_isolation(void) {
  tg_transport_t *dev = open_env("iso-dev", "w", 60000, 5);
  tg_transport_t *prod = open_env("iso-prod", "w", 60000, 5);
  put_sample(dev, "iso-dev", false, NULL);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(prod, 5, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 0);
  CHECK(depth(prod).waiting == 0 && depth(dev).waiting == 1);
  tg_job_t *job = sample_job("iso-prod", "winter-harbin-short.json");
  uint64_t idx;
  CHECK(tg_transport_put(dev, job, &idx, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(strstr(errstr, "iso-prod") != NULL);
  tg_job_destroy(job);
  tg_transport_destroy(dev);
  tg_transport_destroy(prod);
}

static void test_own_pending_first_after_restart(void) {
  tg_transport_t *w = open_env("pel", "stable-0", 60000, 5);
  put_sample(w, "pel", false, NULL);
  put_sample(w, "pel", false, NULL);
  put_sample(w, "pel", false, NULL);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(w, 2, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 2);
  tg_deliveries_free(d, n);
  tg_transport_destroy(w); /* the process dies */
  w = open_env("pel", "stable-0", 60000, 5); /* restarted under the same name */
  /* one at a time, without completing: each old entry comes back exactly once */
  for (uint64_t want = 1; want <= 3; want++) {
    CHECK(tg_transport_take(w, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK);
    CHECK_MSG(n == 1 && d[0].index == want, "take %llu: n %d", (unsigned long long)want, n);
    if (n == 1)
      CHECK(d[0].deliveries == (want < 3 ? 2 : 1));
    tg_deliveries_free(d, n);
  }
  CHECK(tg_transport_take(w, 5, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 0);
  struct tg_depth dp = depth(w);
  CHECK(dp.pending == 3 && dp.waiting == 0);
  tg_transport_destroy(w);
}

static void test_invalid_payload_is_delivered_for_a_failed_result(void) {
  tg_transport_t *t = open_env("junk", "w", 60000, 5);
  redisContext *c = test_redis_connect(&srv);
  redisReply *r = redisCommand(c, "INCR tripgen:{junk}:seq");
  long long idx = r->integer;
  freeReplyObject(r);
  r = redisCommand(c, "XADD tripgen:{junk}:in 0-%lld request_id junk-1 job %s", idx,
                   "{\"v\":1,\"trip\":42");
  CHECK(r && r->type == REDIS_REPLY_STRING);
  freeReplyObject(r);
  redisFree(c);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(n == 1 && d[0].job == NULL && strstr(d[0].parse_error, "invalid JSON"));
  CHECK(n == 1 && strcmp(d[0].request_id, "junk-1") == 0);
  tg_result_t *res = tg_result_new(d[0].request_id, 0, "junk");
  tg_result_fail(res, TG_CODE_INVALID_INPUT, "input", false, "%s", d[0].parse_error);
  bool published;
  CHECK(tg_transport_complete(t, &d[0], res, &published, errstr, sizeof(errstr)) == TG_OK);
  CHECK(published);
  tg_result_destroy(res);
  tg_deliveries_free(d, n);
  CHECK(depth(t).pending == 0);
  /* the sink frame of a failed result carries the EAS lastCode */
  c = test_redis_connect(&srv);
  r = redisCommand(c, "XRANGE tripgen:{junk}:out - +");
  CHECK(r && r->elements == 1);
  if (r && r->elements == 1) {
    const redisReply *f = r->element[0]->element[1];
    bool saw = false;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
      if (strcmp(f->element[i]->str, "last_code") == 0)
        saw = strcmp(f->element[i + 1]->str, "400") == 0;
    CHECK(saw);
  }
  freeReplyObject(r);
  redisFree(c);
  tg_transport_destroy(t);
}

static void test_bad_config_and_unreachable(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "Bad Env");
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL && strstr(errstr, "env"));
  tg_transport_conf_init(&c, "ok");
  snprintf(c.redis_url, sizeof(c.redis_url), "redis://:hunter2secret@127.0.0.1:1");
  c.connect_timeout_ms = 200;
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL);
  CHECK_MSG(strstr(errstr, "cannot connect") && !strstr(errstr, "hunter2secret"), "%s", errstr);
  tg_transport_conf_init(&c, "ok");
  snprintf(c.redis_url, sizeof(c.redis_url), "http://x");
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL && strstr(errstr, "redis://"));
  tg_transport_conf_init(&c, "ok");
  c.max_deliveries = 0;
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL &&
        strstr(errstr, "max deliveries"));
}

/* A script that fails half-way must leave nothing behind (Redis keeps the
 * writes made before the failing command): a foreign "*" id in the sink or
 * the input stream makes XADD fail; nothing may be acked or lost. */
static void test_failed_scripts_lose_nothing(void) {
  tg_transport_t *t = open_env("atom", "w1", 60000, 5);
  char rid[80];
  put_sample(t, "atom", false, rid);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  redisContext *c = test_redis_connect(&srv);
  freeReplyObject(redisCommand(c, "XADD tripgen:{atom}:out * foreign 1"));
  tg_result_t *r = ok_result(&d[0]);
  bool published = true;
  for (int i = 0; i < 2; i++) { /* the worker retries: the failure must repeat, not turn "ok" */
    CHECK(tg_transport_complete(t, &d[0], r, &published, errstr, sizeof(errstr)) ==
          TG_ERR_TRANSPORT);
    CHECK(strstr(errstr, "equal or smaller") != NULL);
  }
  CHECK(depth(t).pending == 1);
  char *json = NULL;
  CHECK(tg_transport_get_result(t, rid, &json, errstr, sizeof(errstr)) == TG_ERR_NOT_FOUND);
  freeReplyObject(redisCommand(c, "DEL tripgen:{atom}:out"));
  CHECK(tg_transport_complete(t, &d[0], r, &published, errstr, sizeof(errstr)) == TG_OK &&
        published);
  tg_result_destroy(r);
  tg_deliveries_free(d, n);
  /* promote_due: the job stays delayed until it is really back in a stream */
  put_sample(t, "atom", false, rid);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(tg_transport_retry_later(t, &d[0], d[0].job, tg_now_ms() - 1, errstr, sizeof(errstr)) ==
        TG_OK);
  freeReplyObject(redisCommand(c, "XADD tripgen:{atom}:in * foreign 1"));
  int promoted = -1;
  CHECK(tg_transport_promote_due(t, tg_now_ms(), 10, &promoted, errstr, sizeof(errstr)) ==
        TG_ERR_TRANSPORT);
  CHECK(depth(t).delayed == 1);
  freeReplyObject(redisCommand(c, "DEL tripgen:{atom}:in"));
  CHECK(tg_transport_promote_due(t, tg_now_ms(), 10, &promoted, errstr, sizeof(errstr)) ==
        TG_OK && promoted == 1);
  CHECK(depth(t).delayed == 0 && depth(t).waiting == 1);
  tg_deliveries_free(d, n);
  redisFree(c);
  tg_transport_destroy(t);
}

/* ack_if_done acks a redelivery only while its final result is stored. */
static void test_ack_if_done(void) {
  tg_transport_t *t = open_env("dup", "w1", 60000, 5);
  char rid[80];
  put_sample(t, "dup", false, rid);
  tg_delivery_t *d;
  int n;
  bool acked = true;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(tg_transport_ack_if_done(t, &d[0], 0, &acked, errstr, sizeof(errstr)) == TG_OK && !acked);
  CHECK(depth(t).pending == 1);
  tg_job_t *again = tg_job_parse(d[0].payload, d[0].payload_len, errstr, sizeof(errstr));
  complete_ok(t, &d[0]);
  tg_deliveries_free(d, n);
  uint64_t idx;
  CHECK(tg_transport_put(t, again, &idx, errstr, sizeof(errstr)) == TG_OK);
  tg_job_destroy(again);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(tg_transport_ack_if_done(t, &d[0], 0, &acked, errstr, sizeof(errstr)) == TG_OK && acked);
  CHECK(depth(t).pending == 0 && sink_count(t, rid) == 1);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

/* put_req: tags and original bytes travel in the entry; an idempotent
 * repeat returns the first put's index and request id. */
static void test_put_req_idempotent(void) {
  tg_transport_t *t = open_env("idput", "w1", 60000, 5);
  struct tg_put_req req = {.request_id = "first-1", .payload = "{\"x\":1}", .payload_len = 7,
                           .enqueued_at_ms = 1000, .tags_json = "{\"k\":\"v\"}",
                           .data = "raw-bytes", .data_len = 9,
                           .idempotency_key = "trip-42", .idempotency_ttl_ms = 60000};
  uint64_t idx = 0, idx2 = 0;
  char rid[80];
  bool repeated = true;
  CHECK(tg_transport_put_req(t, &req, &idx, rid, &repeated, errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx == 1 && !repeated && strcmp(rid, "first-1") == 0);
  req.request_id = "second-2";
  CHECK(tg_transport_put_req(t, &req, &idx2, rid, &repeated, errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx2 == 1 && repeated && strcmp(rid, "first-1") == 0);
  req.idempotency_key = "trip-43";
  CHECK(tg_transport_put_req(t, &req, &idx2, rid, &repeated, errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx2 == 2 && !repeated && strcmp(rid, "second-2") == 0);
  CHECK(depth(t).waiting == 2);
  redisContext *c = test_redis_connect(&srv);
  redisReply *r = redisCommand(c, "XRANGE tripgen:{idput}:in 0-1 0-1");
  bool tags = false, data = false;
  if (r && r->elements == 1) {
    const redisReply *f = r->element[0]->element[1];
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
      tags |= strcmp(f->element[i]->str, "tags") == 0 && strcmp(f->element[i + 1]->str, "{\"k\":\"v\"}") == 0;
      data |= strcmp(f->element[i]->str, "data") == 0 && strcmp(f->element[i + 1]->str, "raw-bytes") == 0;
    }
  }
  CHECK(tags && data);
  freeReplyObject(r);
  redisFree(c);
  /* the raw payload is delivered as an invalid job, for a failed result */
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(n == 1 && d[0].job == NULL && strcmp(d[0].request_id, "first-1") == 0);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

/* A demoted primary answers READONLY: take reports an error, never "empty". */
static void test_readonly_is_an_error(void) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "ro");
  snprintf(c.redis_url, sizeof(c.redis_url), "%s", srv.url);
  c.reconnect_max_ms = 300;
  tg_transport_t *t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK(t != NULL);
  put_sample(t, "ro", false, NULL);
  redisContext *rc = test_redis_connect(&srv);
  freeReplyObject(redisCommand(rc, "REPLICAOF 127.0.0.1 1"));
  tg_delivery_t *d;
  int n = -1;
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_ERR_TRANSPORT);
  CHECK_MSG(strstr(errstr, "READONLY") != NULL, "%s", errstr);
  freeReplyObject(redisCommand(rc, "REPLICAOF NO ONE"));
  redisFree(rc);
  CHECK(tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
}

/* Last: kill -9 Redis mid-run; the client reconnects and nothing acked is lost. */
static void test_redis_restart_mid_run(void) {
  enum { JOBS = 20 };
  tg_transport_t *t = open_env("crash", "w1", 60000, 5);
  char rid[JOBS][80];
  for (int i = 0; i < JOBS; i++)
    put_sample(t, "crash", i % 5 == 0, rid[i]);
  tg_delivery_t *d;
  int n, done = 0;
  CHECK(tg_transport_take(t, 5, 0, &d, &n, errstr, sizeof(errstr)) == TG_OK && n == 5);
  for (int i = 0; i < n; i++)
    done += complete_ok(t, &d[i]);
  tg_deliveries_free(d, n);
  CHECK(done == 5);
  /* Redis dies; a new one starts on the same files 700 ms later */
  CHECK(test_redis_restart_after(&srv, 700) == 0);
  int64_t t0 = tg_mono_ms();
  while (done < JOBS && tg_mono_ms() - t0 < 20000) {
    tg_err_t err = tg_transport_take(t, 4, 200, &d, &n, errstr, sizeof(errstr));
    CHECK_MSG(err == TG_OK, "take across the restart: %s", errstr);
    if (err != TG_OK)
      break;
    for (int i = 0; i < n; i++)
      done += complete_ok(t, &d[i]);
    tg_deliveries_free(d, n);
  }
  CHECK_MSG(done == JOBS, "completed %d of %d", done, JOBS);
  for (int i = 0; i < JOBS; i++)
    CHECK_MSG(sink_count(t, rid[i]) == 1, "job %d", i);
  struct tg_depth dp = depth(t);
  CHECK(dp.waiting == 0 && dp.pending == 0);
  tg_transport_destroy(t);
}

int main(int argc, char **argv) {
  snprintf(root, sizeof(root), "%s", argc > 1 ? argv[1] : ".");
  signal(SIGPIPE, SIG_IGN);
  if (test_redis_start(&srv) != 0)
    return 1;
  RUN(test_round_trip);
  RUN(test_priority_and_indexes);
  RUN(test_complete_is_idempotent);
  RUN(test_reclaim_after_visibility_timeout);
  RUN(test_poison_stops_at_max_deliveries);
  RUN(test_retry_later_and_promote_due);
  RUN(test_depth_after_deletes);
  RUN(test_queue_cap);
  RUN(test_extend_lease);
  RUN(test_reclaim_keeps_held_entries);
  RUN(test_lost_lease_retry_and_dead_letter_change_nothing);
  RUN(test_env_isolation);
  RUN(test_own_pending_first_after_restart);
  RUN(test_invalid_payload_is_delivered_for_a_failed_result);
  RUN(test_bad_config_and_unreachable);
  RUN(test_failed_scripts_lose_nothing);
  RUN(test_ack_if_done);
  RUN(test_readonly_is_an_error);
  RUN(test_put_req_idempotent);
  RUN(test_redis_restart_mid_run);
  test_redis_stop(&srv);
  return check_exit();
}
