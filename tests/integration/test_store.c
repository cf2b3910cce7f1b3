/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_store.c - the scheduler's EAS store (scheduler/store.h) against a
 * real, private redis-server: puts (valid, invalid, strict, priority,
 * idempotent, sink), get in index order across both input streams with
 * filters and auto-delete, delete and truncate with depth kept exact,
 * commit and negative commit, search, count, attributes, end of stream,
 * and EAS consumer groups (own pending first after a reconnect, release,
 * visibility timeout, windows, two groups, workers unaffected).
 */
#undef NDEBUG
#include "check.h"
#include "redis_harness.h"
#include "store.h"
#include "tg_job.h"
#include "tg_result.h"
#include "tg_time.h"
#include "tg_transport.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static struct test_redis srv;
static char root[512];
static char errstr[512];

static void conf_for(struct tg_transport_conf *c, const char *env, int64_t vis_ms) {
  tg_transport_conf_init(c, env);
  snprintf(c->redis_url, sizeof(c->redis_url), "%s", srv.url);
  c->visibility_timeout_ms = vis_ms;
  c->reconnect_max_ms = 3000;
}

static sch_store_t *open_store(const char *env, int64_t vis_ms) {
  struct tg_transport_conf c;
  conf_for(&c, env, vis_ms);
  sch_store_t *s = sch_store_new(&c, errstr, sizeof(errstr));
  CHECK_MSG(s != NULL, "%s", errstr);
  if (!s)
    exit(1);
  return s;
}

static tg_transport_t *open_worker(const char *env, const char *consumer) {
  struct tg_transport_conf c;
  conf_for(&c, env, 300000);
  snprintf(c.consumer, sizeof(c.consumer), "%s", consumer);
  tg_transport_t *t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s", errstr);
  if (!t)
    exit(1);
  return t;
}

/* A sample trip with its own trip_id (the idempotency key), as a string. */
static char *trip_body(const char *trip_id) {
  char path[700];
  snprintf(path, sizeof(path), "%s/tests/data/trips/may-day-shanghai.json", root);
  json_t *j = json_load_file(path, 0, NULL);
  if (!j) {
    fprintf(stderr, "cannot load %s\n", path);
    exit(1);
  }
  json_object_set_new(j, "trip_id", json_string(trip_id));
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

static uint64_t put_trip(sch_store_t *s, const char *trip_id, bool prio, json_t *tags,
                         char *rid) {
  char *body = trip_body(trip_id);
  uint64_t idx = 0;
  char r[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_err_t err = sch_store_put_input(s, body, strlen(body), tags, prio, false, 60000, &idx,
                                     rid ? rid : r, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "put: %s", errstr);
  free(body);
  return idx;
}

static uint64_t put_sink(sch_store_t *s, const char *data, json_t *tags) {
  uint64_t idx = 0;
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_err_t err = sch_store_put_sink(s, data, strlen(data), tags, &idx, rid, errstr,
                                    sizeof(errstr));
  CHECK_MSG(err == TG_OK, "put sink: %s", errstr);
  return idx;
}

static const char *tag(const struct sch_frame *f, const char *k) {
  return json_string_value(json_object_get(f->tags, k));
}

static int get_idx(sch_store_t *s, enum sch_queue q, uint64_t from, int len,
                   const struct sch_filter *f, bool del, uint64_t *idx) {
  struct sch_frame *fr = NULL;
  int n = -1;
  tg_err_t err = sch_store_get(s, q, from, len, f, del, &fr, &n, errstr, sizeof(errstr));
  CHECK_MSG(err == TG_OK, "get: %s", errstr);
  for (int i = 0; i < n; i++)
    idx[i] = fr[i].index;
  sch_frames_free(fr, n);
  return n;
}

static int64_t count_of(sch_store_t *s, enum sch_queue q, const struct sch_filter *f) {
  int64_t c = -1;
  CHECK_MSG(sch_store_count(s, q, f, &c, errstr, sizeof(errstr)) == TG_OK, "%s", errstr);
  return c;
}

static struct tg_depth depth_of(tg_transport_t *t) {
  struct tg_depth d = {0};
  CHECK_MSG(tg_transport_depth(t, &d, errstr, sizeof(errstr)) == TG_OK, "%s", errstr);
  return d;
}

/* group_read into an index list */
static int gread(sch_store_t *s, enum sch_queue q, const char *gid, const char *uid,
                 uint64_t from, int max, bool ac, struct sch_cursor *cur, uint64_t *idx) {
  struct sch_frame *fr = NULL;
  int n = -1;
  bool history = !cur->own_done;
  tg_err_t err = sch_store_group_read(s, q, gid, uid, from, max, ac, cur, &fr, &n, errstr,
                                      sizeof(errstr));
  CHECK_MSG(err == TG_OK, "group_read: %s", errstr);
  if (err == TG_OK && n == 0 && history && cur->own_done) /* the history just ended: read on */
    err = sch_store_group_read(s, q, gid, uid, from, max, ac, cur, &fr, &n, errstr,
                               sizeof(errstr));
  for (int i = 0; i < n; i++)
    idx[i] = fr[i].index;
  sch_frames_free(fr, n);
  return n;
}

static int64_t gpending(sch_store_t *s, enum sch_queue q, const char *gid, const char *uid) {
  int64_t c = -1;
  CHECK_MSG(sch_store_group_pending(s, q, gid, uid, &c, errstr, sizeof(errstr)) == TG_OK, "%s",
            errstr);
  return c;
}

/* ---- tests ------------------------------------------------------------ */

static void test_put_input(void) {
  sch_store_t *s = open_store("put", 300000);
  tg_transport_t *w = open_worker("put", "w1");
  char *body = trip_body("trip-put-1");
  json_t *tags = json_pack("{s:s}", "color", "red");
  uint64_t idx = 0;
  char rid[TG_MAX_REQUEST_ID_CHARS + 1] = "";
  CHECK(sch_store_put_input(s, body, strlen(body), tags, false, false, 60000, &idx, rid, errstr,
                            sizeof(errstr)) == TG_OK);
  CHECK(idx == 1 && *rid);

  /* a repeat of the same trip within the TTL: the first put's answer */
  uint64_t idx2 = 0;
  char rid2[TG_MAX_REQUEST_ID_CHARS + 1] = "";
  CHECK(sch_store_put_input(s, body, strlen(body), NULL, false, false, 60000, &idx2, rid2,
                            errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx2 == 1);
  CHECK_STREQ(rid2, rid);
  CHECK(count_of(s, SCH_QUEUE_INPUT, NULL) == 1);

  /* not a trip: enqueued as is; strict: refused with the reason */
  const char *junk = "not a trip";
  CHECK(sch_store_put_input(s, junk, strlen(junk), NULL, false, true, 60000, &idx2, rid2,
                            errstr, sizeof(errstr)) == TG_ERR_BAD_MSG);
  CHECK(*errstr);
  CHECK(count_of(s, SCH_QUEUE_INPUT, NULL) == 1);
  char rid3[TG_MAX_REQUEST_ID_CHARS + 1] = "";
  CHECK(sch_store_put_input(s, junk, strlen(junk), NULL, false, false, 60000, &idx2, rid3,
                            errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx2 == 2 && *rid3 && strcmp(rid3, rid) != 0);

  /* priority */
  char *body4 = trip_body("trip-put-4");
  uint64_t idx4 = 0;
  char rid4[TG_MAX_REQUEST_ID_CHARS + 1];
  CHECK(sch_store_put_input(s, body4, strlen(body4), NULL, true, true, 0, &idx4, rid4, errstr,
                            sizeof(errstr)) == TG_OK);
  CHECK(idx4 == 3);
  struct sch_filter prio = {.priority = 1}, normal = {.priority = 0};
  CHECK(count_of(s, SCH_QUEUE_INPUT, &prio) == 1);
  CHECK(count_of(s, SCH_QUEUE_INPUT, &normal) == 2);

  /* too large */
  size_t big = TG_MAX_PAYLOAD_BYTES + 1;
  char *huge = calloc(1, big);
  CHECK(sch_store_put_input(s, huge, big, NULL, false, false, 0, &idx2, rid2, errstr,
                            sizeof(errstr)) == TG_ERR_TOO_LARGE);
  free(huge);

  /* the frames: client bytes and tags, requestId */
  struct sch_frame *f = NULL;
  int n = 0;
  CHECK(sch_store_get(s, SCH_QUEUE_INPUT, 0, 10, NULL, false, &f, &n, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(n == 3);
  if (n == 3) {
    CHECK(f[0].index == 1 && f[0].len == strlen(body) && memcmp(f[0].data, body, f[0].len) == 0);
    CHECK_STREQ(tag(&f[0], "requestId"), rid);
    CHECK_STREQ(tag(&f[0], "color"), "red");
    CHECK(f[1].index == 2 && f[1].len == strlen(junk) && memcmp(f[1].data, junk, f[1].len) == 0);
    CHECK_STREQ(tag(&f[1], "requestId"), rid3);
    CHECK(json_object_size(f[1].tags) == 1);
    CHECK(f[2].index == 3);
    CHECK_STREQ(tag(&f[2], "requestId"), rid4);
  }
  sch_frames_free(f, n);

  /* what the workers get: the priority job first, a job, the junk as invalid */
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(w, 10, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK);
  CHECK(nd == 3);
  if (nd == 3) {
    CHECK(d[0].index == 3 && d[0].job && d[0].job->priority);
    CHECK_STREQ(d[0].request_id, rid4);
    CHECK(d[1].index == 1 && d[1].job);
    CHECK_STREQ(d[1].request_id, rid);
    if (d[1].job)
      CHECK_STREQ(d[1].job->trip->trip_id, "trip-put-1");
    CHECK(d[2].index == 2 && !d[2].job && *d[2].parse_error);
    CHECK_STREQ(d[2].request_id, rid3);
  }
  tg_deliveries_free(d, nd);
  json_decref(tags);
  free(body);
  free(body4);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_put_sink_and_worker_results(void) {
  sch_store_t *s = open_store("sink", 300000);
  tg_transport_t *w = open_worker("sink", "w1");
  json_t *tags = json_pack("{s:s,s:s}", "requestId", "client-rid-1", "k", "v");
  uint64_t idx = 0;
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  CHECK(sch_store_put_sink(s, "hello", 5, tags, &idx, rid, errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx == 1);
  CHECK_STREQ(rid, "client-rid-1");
  CHECK(sch_store_put_sink(s, "x", 1, NULL, &idx, rid, errstr, sizeof(errstr)) == TG_OK);
  CHECK(idx == 2 && *rid);
  json_t *bad = json_pack("{s:s}", "requestId", "bad id/");
  CHECK(sch_store_put_sink(s, "x", 1, bad, &idx, rid, errstr, sizeof(errstr)) == TG_ERR_BAD_MSG);
  json_decref(bad);

  /* a worker answers a junk put with a failed result: lastCode on the frame */
  const char *junk = "{\"no\":1}";
  char jrid[TG_MAX_REQUEST_ID_CHARS + 1];
  CHECK(sch_store_put_input(s, junk, strlen(junk), NULL, false, false, 0, &idx, jrid, errstr,
                            sizeof(errstr)) == TG_OK);
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(w, 1, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK && nd == 1);
  if (nd == 1) {
    tg_result_t *res = tg_result_new(d[0].request_id, 0, "sink");
    tg_result_fail(res, TG_CODE_INVALID_INPUT, "input", false, "%s", d[0].parse_error);
    bool published = false;
    CHECK(tg_transport_complete(w, &d[0], res, &published, errstr, sizeof(errstr)) == TG_OK &&
          published);
    tg_result_destroy(res);
  }
  tg_deliveries_free(d, nd);

  struct sch_frame *f = NULL;
  int n = 0;
  CHECK(sch_store_get(s, SCH_QUEUE_SINK, 0, 10, NULL, false, &f, &n, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(n == 3);
  if (n == 3) {
    CHECK(f[0].index == 1 && f[0].len == 5 && memcmp(f[0].data, "hello", 5) == 0);
    CHECK_STREQ(tag(&f[0], "requestId"), "client-rid-1");
    CHECK_STREQ(tag(&f[0], "k"), "v");
    CHECK(tag(&f[0], "lastCode") == NULL);
    CHECK(f[2].index == 3);
    CHECK_STREQ(tag(&f[2], "requestId"), jrid);
    CHECK_STREQ(tag(&f[2], "lastCode"), "400");
    CHECK(f[2].len > 0 && strstr((char *)f[2].data, "invalid_input") != NULL);
  }
  sch_frames_free(f, n);

  /* filters on the synthesized tags */
  json_t *lc = json_pack("{s:s}", "lastCode", "400");
  struct sch_filter fl = {.tags = lc, .priority = -1};
  CHECK(count_of(s, SCH_QUEUE_SINK, &fl) == 1);
  struct sch_filter fr = {.request_id = "client-rid-1", .priority = -1};
  uint64_t got[8];
  CHECK(get_idx(s, SCH_QUEUE_SINK, 0, 10, &fr, false, got) == 1 && got[0] == 1);
  json_decref(lc);
  json_decref(tags);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_get_order_filters_auto_delete(void) {
  sch_store_t *s = open_store("get", 300000);
  tg_transport_t *w = open_worker("get", "w1");
  json_t *red = json_pack("{s:s}", "color", "red"), *blue = json_pack("{s:s}", "color", "blue");
  char rid2[TG_MAX_REQUEST_ID_CHARS + 1];
  put_trip(s, "g1", false, red, NULL);   /* 1 */
  put_trip(s, "g2", true, blue, rid2);   /* 2 prio */
  put_trip(s, "g3", false, blue, NULL);  /* 3 */
  put_trip(s, "g4", true, red, NULL);    /* 4 prio */
  put_trip(s, "g5", false, NULL, NULL);  /* 5 */
  uint64_t got[16];
  int n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, NULL, false, got);
  CHECK(n == 5 && got[0] == 1 && got[1] == 2 && got[2] == 3 && got[3] == 4 && got[4] == 5);
  n = get_idx(s, SCH_QUEUE_INPUT, 3, 10, NULL, false, got);
  CHECK(n == 3 && got[0] == 3 && got[1] == 4 && got[2] == 5);
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 2, NULL, false, got);
  CHECK(n == 2 && got[0] == 1 && got[1] == 2);
  n = get_idx(s, SCH_QUEUE_INPUT, 6, 2, NULL, false, got);
  CHECK(n == 0);

  struct sch_filter fr = {.tags = red, .priority = -1};
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, &fr, false, got);
  CHECK(n == 2 && got[0] == 1 && got[1] == 4);
  n = get_idx(s, SCH_QUEUE_INPUT, 2, 10, &fr, false, got);
  CHECK(n == 1 && got[0] == 4);
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 1, &fr, false, got);
  CHECK(n == 1 && got[0] == 1);
  struct sch_filter fp = {.priority = 1};
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, &fp, false, got);
  CHECK(n == 2 && got[0] == 2 && got[1] == 4);
  struct sch_filter fb0 = {.tags = blue, .priority = 0};
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, &fb0, false, got);
  CHECK(n == 1 && got[0] == 3);
  struct sch_filter frid = {.request_id = rid2, .priority = -1};
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, &frid, false, got);
  CHECK(n == 1 && got[0] == 2);
  json_t *rt = json_pack("{s:s}", "requestId", rid2);
  struct sch_filter frt = {.tags = rt, .priority = -1};
  CHECK(count_of(s, SCH_QUEUE_INPUT, &frt) == 1);
  json_decref(rt);
  CHECK(count_of(s, SCH_QUEUE_INPUT, &fr) == 2);
  json_t *none = json_pack("{s:s}", "color", "green");
  struct sch_filter fn = {.tags = none, .priority = -1};
  CHECK(count_of(s, SCH_QUEUE_INPUT, &fn) == 0);
  json_decref(none);

  /* a worker holds 2 (prio) pending; auto-delete of the red ones keeps depth exact */
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(w, 1, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK && nd == 1 &&
        d[0].index == 2);
  tg_deliveries_free(d, nd);
  n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, &fr, true, got);
  CHECK(n == 2);
  CHECK(count_of(s, SCH_QUEUE_INPUT, NULL) == 3);
  struct tg_depth dp = depth_of(w);
  CHECK_MSG(dp.waiting == 2 && dp.pending == 1 && dp.waiting_priority == 0,
            "waiting %" PRId64 " pending %" PRId64, dp.waiting, dp.pending);
  /* auto-delete of a pending one */
  n = get_idx(s, SCH_QUEUE_INPUT, 2, 1, NULL, true, got);
  CHECK(n == 1 && got[0] == 2);
  dp = depth_of(w);
  CHECK(dp.waiting == 2 && dp.pending == 0);
  json_decref(red);
  json_decref(blue);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_delete_truncate_depth(void) {
  sch_store_t *s = open_store("del", 300000);
  tg_transport_t *w = open_worker("del", "w1");
  char id[32];
  for (int i = 1; i <= 8; i++) {
    snprintf(id, sizeof(id), "d%d", i);
    put_trip(s, id, i % 3 == 0, NULL, NULL); /* 3 and 6 priority */
  }
  tg_delivery_t *d = NULL;
  int nd = 0;
  /* the worker takes 3 and 6 (priority) and 1 */
  CHECK(tg_transport_take(w, 3, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK && nd == 3);
  tg_deliveries_free(d, nd);
  struct tg_depth dp = depth_of(w);
  CHECK(dp.waiting == 5 && dp.pending == 3);

  uint64_t del[] = {3, 2, 99};
  int64_t deleted = -1;
  CHECK(sch_store_delete(s, SCH_QUEUE_INPUT, del, 3, &deleted, errstr, sizeof(errstr)) == TG_OK);
  CHECK(deleted == 2);
  dp = depth_of(w);
  CHECK_MSG(dp.waiting == 4 && dp.pending == 2, "waiting %" PRId64 " pending %" PRId64,
            dp.waiting, dp.pending);

  /* truncate below 6: 1 (pending), 4, 5 go; 6 (pending), 7, 8 stay */
  CHECK(sch_store_truncate(s, SCH_QUEUE_INPUT, 6, &deleted, errstr, sizeof(errstr)) == TG_OK);
  CHECK(deleted == 3);
  dp = depth_of(w);
  CHECK_MSG(dp.waiting == 2 && dp.pending == 1, "waiting %" PRId64 " pending %" PRId64,
            dp.waiting, dp.pending);
  uint64_t got[16];
  int n = get_idx(s, SCH_QUEUE_INPUT, 0, 10, NULL, false, got);
  CHECK(n == 3 && got[0] == 6 && got[1] == 7 && got[2] == 8);
  CHECK(sch_store_truncate(s, SCH_QUEUE_INPUT, 1, &deleted, errstr, sizeof(errstr)) == TG_OK &&
        deleted == 0);
  /* truncate(lastEntry + 1) clears the queue */
  CHECK(sch_store_truncate(s, SCH_QUEUE_INPUT, 9, &deleted, errstr, sizeof(errstr)) == TG_OK &&
        deleted == 3);
  dp = depth_of(w);
  CHECK(dp.waiting == 0 && dp.pending == 0);
  /* puts go on with growing indexes */
  CHECK(put_trip(s, "d9", false, NULL, NULL) == 9);
  dp = depth_of(w);
  CHECK(dp.waiting == 1);

  /* the sink, with a pending frame in an EAS group */
  for (int i = 0; i < 4; i++)
    put_sink(s, "r", NULL);
  struct sch_cursor cur = {0};
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "u", 0, 1, false, &cur, got) == 1);
  CHECK(sch_store_truncate(s, SCH_QUEUE_SINK, 3, &deleted, errstr, sizeof(errstr)) == TG_OK &&
        deleted == 2);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "u") == 0);
  CHECK(count_of(s, SCH_QUEUE_SINK, NULL) == 2);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_commit_and_negative_commit(void) {
  sch_store_t *s = open_store("commit", 300000);
  for (int i = 0; i < 4; i++)
    put_sink(s, "r", NULL);
  struct sch_cursor ca = {0}, cb = {0};
  uint64_t got[16];
  int n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca, got);
  CHECK(n == 4 && got[0] == 1 && got[3] == 4);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "A") == 4);
  uint64_t c1[] = {1};
  CHECK(sch_store_commit(s, SCH_QUEUE_SINK, "g", c1, 1, errstr, sizeof(errstr)) == TG_OK);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "A") == 3);
  CHECK(count_of(s, SCH_QUEUE_SINK, NULL) == 3);

  /* negative commit of 2 and 3: not back to A, another consumer gets them at once */
  uint64_t nc[] = {2, 3};
  CHECK(sch_store_negative_commit(s, SCH_QUEUE_SINK, "g", "A", nc, 2, errstr, sizeof(errstr)) ==
        TG_OK);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca, got);
  CHECK_MSG(n == 0, "the refuser got %d frames back", n);
  n = gread(s, SCH_QUEUE_SINK, "g", "B", 0, 10, false, &cb, got);
  CHECK(n == 2 && got[0] == 2 && got[1] == 3);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "A") == 1);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "B") == 2);
  /* 4 is still A's, not idle: nobody else gets it */
  n = gread(s, SCH_QUEUE_SINK, "g", "B", 0, 10, false, &cb, got);
  CHECK(n == 0);
  /* an unknown group: nothing to do, no error */
  CHECK(sch_store_negative_commit(s, SCH_QUEUE_SINK, "nope", "A", nc, 2, errstr,
                                  sizeof(errstr)) == TG_OK);
  CHECK(gpending(s, SCH_QUEUE_SINK, "nope", "A") == 0);
  sch_store_destroy(s);
}

static void test_search(void) {
  sch_store_t *s = open_store("search", 300000);
  tg_transport_t *w = open_worker("search", "w1");
  put_trip(s, "s1", false, NULL, NULL); /* 1 */
  put_trip(s, "s2", false, NULL, NULL); /* 2 */
  put_trip(s, "s3", true, NULL, NULL);  /* 3 prio */
  put_trip(s, "s4", false, NULL, NULL); /* 4 */
  bool pending = true;
  int64_t wc = -2;
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 2, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(!pending && wc == 2, "wait %" PRId64, wc);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 3, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == 0);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 4, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == 3);
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(w, 2, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK && nd == 2);
  tg_deliveries_free(d, nd); /* 3 and 1 pending */
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 3, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(pending && wc == 0);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 1, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(pending && wc == 0);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 4, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(!pending && wc == 1, "wait %" PRId64, wc);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 99, &pending, &wc, errstr, sizeof(errstr)) ==
        TG_OK);
  CHECK(!pending && wc == -1);
  CHECK(sch_store_search(s, SCH_QUEUE_INPUT, 0, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == -1);

  /* sink */
  for (int i = 0; i < 3; i++)
    put_sink(s, "r", NULL);
  CHECK(sch_store_search(s, SCH_QUEUE_SINK, 3, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == 2);
  struct sch_cursor cur = {0};
  uint64_t got[4];
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "u", 0, 1, false, &cur, got) == 1);
  CHECK(sch_store_search(s, SCH_QUEUE_SINK, 1, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(pending && wc == 0);
  CHECK(sch_store_search(s, SCH_QUEUE_SINK, 3, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == 1);
  CHECK(sch_store_search(s, SCH_QUEUE_SINK, 4, &pending, &wc, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!pending && wc == -1);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_attributes_and_eos(void) {
  sch_store_t *s = open_store("attrs", 300000);
  tg_transport_t *w = open_worker("attrs", "w1");
  struct sch_attrs a;
  CHECK(sch_store_attributes(s, SCH_QUEUE_INPUT, &a, errstr, sizeof(errstr)) == TG_OK);
  CHECK(a.length == 0 && a.first_index == 0 && a.last_index == 0 && !a.eos);
  CHECK(a.max_length == 100000 && a.n_groups == 0 && a.n_consumers == 0);
  sch_attrs_free(&a);
  put_trip(s, "a1", false, NULL, NULL);
  put_trip(s, "a2", true, NULL, NULL);
  put_trip(s, "a3", false, NULL, NULL);
  uint64_t del[] = {1};
  CHECK(sch_store_delete(s, SCH_QUEUE_INPUT, del, 1, NULL, errstr, sizeof(errstr)) == TG_OK);
  struct sch_cursor c1 = {0}, c2 = {0}, c3 = {0};
  uint64_t got[4];
  CHECK(gread(s, SCH_QUEUE_INPUT, "g1", "u1", 0, 1, false, &c1, got) == 1 && got[0] == 2);
  CHECK(gread(s, SCH_QUEUE_INPUT, "g1", "u2", 0, 1, false, &c2, got) == 1 && got[0] == 3);
  CHECK(gread(s, SCH_QUEUE_INPUT, "g2", "u1", 0, 1, false, &c3, got) == 1 && got[0] == 2);
  CHECK(sch_store_attributes(s, SCH_QUEUE_INPUT, &a, errstr, sizeof(errstr)) == TG_OK);
  CHECK(a.length == 2 && a.first_index == 2 && a.last_index == 3 && !a.eos);
  CHECK_MSG(a.n_groups == 2, "groups %zu", a.n_groups);
  bool g1 = false, g2 = false;
  for (size_t i = 0; i < a.n_groups; i++) {
    g1 |= strcmp(a.groups[i], "g1") == 0;
    g2 |= strcmp(a.groups[i], "g2") == 0;
  }
  CHECK(g1 && g2);
  CHECK_MSG(a.n_consumers == 3, "consumers %zu", a.n_consumers);
  bool u = false;
  for (size_t i = 0; i < a.n_consumers; i++)
    u |= strcmp(a.consumers[i], "g1/u2") == 0;
  CHECK(u);
  sch_attrs_free(&a);
  CHECK(sch_store_eos(s, SCH_QUEUE_INPUT, errstr, sizeof(errstr)) == TG_OK);
  CHECK(sch_store_attributes(s, SCH_QUEUE_INPUT, &a, errstr, sizeof(errstr)) == TG_OK);
  CHECK(a.eos);
  sch_attrs_free(&a);
  CHECK(sch_store_attributes(s, SCH_QUEUE_SINK, &a, errstr, sizeof(errstr)) == TG_OK);
  CHECK(!a.eos && a.length == 0 && a.max_length == 100000);
  sch_attrs_free(&a);
  put_sink(s, "a", NULL);
  put_sink(s, "b", NULL);
  CHECK(sch_store_eos(s, SCH_QUEUE_SINK, errstr, sizeof(errstr)) == TG_OK);
  CHECK(sch_store_attributes(s, SCH_QUEUE_SINK, &a, errstr, sizeof(errstr)) == TG_OK);
  CHECK(a.eos && a.length == 2 && a.first_index == 1 && a.last_index == 2 && a.n_groups == 0);
  sch_attrs_free(&a);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_group_read_order_and_release(void) {
  sch_store_t *s = open_store("order", 300000);
  for (int i = 0; i < 5; i++)
    put_sink(s, "r", NULL);
  struct sch_cursor ca = {0};
  uint64_t got[16];
  int n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 2, false, &ca, got);
  CHECK(n == 2 && got[0] == 1 && got[1] == 2);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "A") == 2);

  /* A reconnects (fresh cursor): its own pending frames first, then new ones */
  struct sch_cursor ca2 = {0};
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca2, got);
  CHECK(n == 2 && got[0] == 1 && got[1] == 2);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 1, false, &ca2, got);
  CHECK(n == 1 && got[0] == 3);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca2, got);
  CHECK(n == 2 && got[0] == 4 && got[1] == 5);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca2, got);
  CHECK(n == 0);
  /* own history in small steps */
  struct sch_cursor ca3 = {0};
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 3, false, &ca3, got);
  CHECK(n == 3 && got[0] == 1 && got[2] == 3);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 3, false, &ca3, got);
  CHECK(n == 2 && got[0] == 4 && got[1] == 5);
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 3, false, &ca3, got);
  CHECK(n == 0 && ca3.own_done);

  /* a committed frame is not in the history any more */
  uint64_t c[] = {2};
  CHECK(sch_store_commit(s, SCH_QUEUE_SINK, "g", c, 1, errstr, sizeof(errstr)) == TG_OK);
  struct sch_cursor ca4 = {0};
  n = gread(s, SCH_QUEUE_SINK, "g", "A", 0, 10, false, &ca4, got);
  CHECK(n == 4 && got[0] == 1 && got[1] == 3);

  /* A's connection drops: B gets its frames at once */
  CHECK(sch_store_group_release(s, SCH_QUEUE_SINK, "g", "A", errstr, sizeof(errstr)) == TG_OK);
  struct sch_cursor cb = {0};
  n = gread(s, SCH_QUEUE_SINK, "g", "B", 0, 3, false, &cb, got);
  CHECK(n == 3 && got[0] == 1 && got[1] == 3 && got[2] == 4);
  n = gread(s, SCH_QUEUE_SINK, "g", "B", 0, 3, false, &cb, got);
  CHECK(n == 1 && got[0] == 5);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "A") == 0);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "B") == 4);

  /* a new frame, then auto-commit: handed out and gone */
  put_sink(s, "r", NULL); /* 6 */
  n = gread(s, SCH_QUEUE_SINK, "g", "B", 0, 3, true, &cb, got);
  CHECK(n == 1 && got[0] == 6);
  CHECK(count_of(s, SCH_QUEUE_SINK, NULL) == 4);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "B") == 4);

  /* a group created at an index starts there */
  n = gread(s, SCH_QUEUE_SINK, "late", "L", 4, 10, false, &(struct sch_cursor){0}, got);
  CHECK(n == 2 && got[0] == 4 && got[1] == 5);
  sch_store_destroy(s);
}

static void test_input_priority_and_visibility(void) {
  sch_store_t *s = open_store("vis", 1000);
  put_trip(s, "v1", false, NULL, NULL);
  put_trip(s, "v2", true, NULL, NULL);
  put_trip(s, "v3", false, NULL, NULL);
  struct sch_cursor ca = {0}, cb = {0};
  uint64_t got[16];
  int n = gread(s, SCH_QUEUE_INPUT, "g", "A", 0, 2, false, &ca, got);
  CHECK(n == 2 && got[0] == 2 && got[1] == 1);
  n = gread(s, SCH_QUEUE_INPUT, "g", "B", 0, 10, false, &cb, got);
  CHECK(n == 1 && got[0] == 3);
  n = gread(s, SCH_QUEUE_INPUT, "g", "B", 0, 10, false, &cb, got);
  CHECK(n == 0);
  tg_sleep_ms(1150);
  /* B reads again: A's frames are idle past the visibility timeout (and B's own, 3) */
  n = gread(s, SCH_QUEUE_INPUT, "g", "B", 0, 10, false, &cb, got);
  CHECK_MSG(n == 3 && got[0] == 2 && got[1] == 1 && got[2] == 3, "n %d", n);
  CHECK(gpending(s, SCH_QUEUE_INPUT, "g", "A") == 0);
  CHECK(gpending(s, SCH_QUEUE_INPUT, "g", "B") == 3);
  sch_store_destroy(s);
}

static void test_two_groups_and_windows(void) {
  sch_store_t *s = open_store("two", 300000);
  for (int i = 0; i < 6; i++)
    put_sink(s, "r", NULL);
  struct sch_cursor c1 = {0}, c2 = {0}, c3 = {0};
  uint64_t got[16];
  /* window 4 for g1/A: 4 now, the rest once A commits */
  int n = gread(s, SCH_QUEUE_SINK, "g1", "A", 0, 4, false, &c1, got);
  CHECK(n == 4 && got[0] == 1 && got[3] == 4);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g1", "A") == 4);
  n = gread(s, SCH_QUEUE_SINK, "g2", "A", 0, 10, false, &c2, got);
  CHECK(n == 6 && got[0] == 1 && got[5] == 6);
  n = gread(s, SCH_QUEUE_SINK, "g1", "B", 0, 10, false, &c3, got);
  CHECK(n == 2 && got[0] == 5 && got[1] == 6);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g1", "A") == 4);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g1", "B") == 2);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g2", "A") == 6);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g2", "B") == 0);
  /* a commit by one group removes the frame: acked in the other too */
  uint64_t c[] = {1, 2};
  CHECK(sch_store_commit(s, SCH_QUEUE_SINK, "g1", c, 2, errstr, sizeof(errstr)) == TG_OK);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g1", "A") == 2);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g2", "A") == 4);
  sch_store_destroy(s);
}

static void test_workers_unaffected(void) {
  sch_store_t *s = open_store("workers", 300000);
  tg_transport_t *w = open_worker("workers", "w1");
  for (int i = 1; i <= 4; i++) {
    char id[16];
    snprintf(id, sizeof(id), "wk%d", i);
    put_trip(s, id, i == 4, NULL, NULL);
  }
  struct sch_cursor c = {0};
  uint64_t got[16];
  int n = gread(s, SCH_QUEUE_INPUT, "eas", "u", 0, 10, false, &c, got);
  CHECK(n == 4 && got[0] == 4);
  struct tg_depth dp = depth_of(w);
  CHECK_MSG(dp.waiting == 4 && dp.pending == 0, "waiting %" PRId64 " pending %" PRId64,
            dp.waiting, dp.pending);
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(w, 10, 0, &d, &nd, errstr, sizeof(errstr)) == TG_OK);
  CHECK(nd == 4 && d[0].index == 4 && d[1].index == 1);
  dp = depth_of(w);
  CHECK(dp.waiting == 0 && dp.pending == 4);
  /* an EAS commit acks for the workers too */
  uint64_t ci[] = {1};
  CHECK(sch_store_commit(s, SCH_QUEUE_INPUT, "eas", ci, 1, errstr, sizeof(errstr)) == TG_OK);
  dp = depth_of(w);
  CHECK(dp.waiting == 0 && dp.pending == 3);
  /* a worker completes one: gone from the queue */
  if (nd == 4) {
    tg_result_t *r = tg_result_for_job(d[2].job);
    r->worker = strdup("test");
    bool pub = false;
    CHECK(tg_transport_complete(w, &d[2], r, &pub, errstr, sizeof(errstr)) == TG_OK && pub);
    tg_result_destroy(r);
  }
  tg_deliveries_free(d, nd);
  dp = depth_of(w);
  CHECK(dp.waiting == 0 && dp.pending == 2);
  CHECK(count_of(s, SCH_QUEUE_INPUT, NULL) == 2);
  /* the EAS consumer's history skips the completed (deleted) entry */
  struct sch_cursor c2 = {0};
  n = gread(s, SCH_QUEUE_INPUT, "eas", "u", 0, 10, false, &c2, got);
  CHECK_MSG(n == 2 && got[0] == 4 && got[1] == 3, "n %d", n);
  CHECK(gpending(s, SCH_QUEUE_INPUT, "eas", "u") == 2);
  /* the result reached the sink, visible to EAS readers */
  CHECK(count_of(s, SCH_QUEUE_SINK, NULL) == 1);
  /* a new put: workers and EAS group both get it; auto-commit removes it for the workers */
  put_trip(s, "wk5", false, NULL, NULL);
  n = gread(s, SCH_QUEUE_INPUT, "eas", "u", 0, 10, true, &c2, got);
  CHECK(n == 1 && got[0] == 5);
  dp = depth_of(w);
  CHECK(dp.waiting == 0 && dp.pending == 2);
  tg_transport_destroy(w);
  sch_store_destroy(s);
}

static void test_bad_args_and_unreachable(void) {
  sch_store_t *s = open_store("bad", 300000);
  struct sch_cursor c = {0};
  struct sch_frame *f = NULL;
  int n = -1;
  CHECK(sch_store_group_read(s, SCH_QUEUE_SINK, "", "u", 0, 1, false, &c, &f, &n, errstr,
                             sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(sch_store_group_read(s, SCH_QUEUE_SINK, "g", "", 0, 1, false, &c, &f, &n, errstr,
                             sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(sch_store_group_read(s, SCH_QUEUE_SINK, "g", "u", 0, 0, false, &c, &f, &n, errstr,
                             sizeof(errstr)) == TG_OK && n == 0);
  sch_store_destroy(s);
  struct tg_transport_conf conf;
  conf_for(&conf, "bad", 1000);
  snprintf(conf.redis_url, sizeof(conf.redis_url), "unix:///nonexistent/redis.sock");
  conf.reconnect_max_ms = 100;
  CHECK(sch_store_new(&conf, errstr, sizeof(errstr)) == NULL && *errstr);
}

static void test_redis_restart(void) {
  sch_store_t *s = open_store("restart", 300000);
  put_sink(s, "a", NULL);
  struct sch_cursor c = {0};
  uint64_t got[4];
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "u", 0, 10, false, &c, got) == 1);
  test_redis_kill(&srv, SIGKILL);
  CHECK(test_redis_restart_after(&srv, 300) == 0);
  /* the store reconnects; scripts are sent again (NOSCRIPT); AOF kept the group */
  CHECK(put_sink(s, "b", NULL) == 2);
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "u", 0, 10, false, &c, got) == 1 && got[0] == 2);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "u") == 2);
  uint64_t ci[] = {1, 2};
  CHECK(sch_store_commit(s, SCH_QUEUE_SINK, "g", ci, 2, errstr, sizeof(errstr)) == TG_OK);
  CHECK(count_of(s, SCH_QUEUE_SINK, NULL) == 0);
  sch_store_destroy(s);
}

/* A consumer that left with nothing pending is deleted; one holding frames stays. */
static void test_group_forget(void) {
  sch_store_t *s = open_store("forget", 300000);
  for (int i = 0; i < 2; i++)
    put_sink(s, "f", NULL);
  struct sch_cursor ca = {0}, cb = {0};
  uint64_t got[16];
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "keeps", 0, 1, false, &ca, got) == 1);
  CHECK(gread(s, SCH_QUEUE_SINK, "g", "done", 0, 1, false, &cb, got) == 1);
  CHECK(sch_store_commit(s, SCH_QUEUE_SINK, "g", got, 1, errstr, sizeof(errstr)) == TG_OK);
  CHECK(sch_store_group_forget(s, SCH_QUEUE_SINK, "g", "done", errstr, sizeof(errstr)) == TG_OK);
  CHECK(sch_store_group_forget(s, SCH_QUEUE_SINK, "g", "keeps", errstr, sizeof(errstr)) == TG_OK);
  struct sch_attrs at;
  memset(&at, 0, sizeof(at));
  CHECK(sch_store_attributes(s, SCH_QUEUE_SINK, &at, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(at.n_consumers == 1 && strcmp(at.consumers[0], "g/keeps") == 0, "%zu consumers",
            at.n_consumers);
  sch_attrs_free(&at);
  CHECK(gpending(s, SCH_QUEUE_SINK, "g", "keeps") == 1);
  sch_store_destroy(s);
}

int main(int argc, char **argv) {
  snprintf(root, sizeof(root), "%s", argc > 1 ? argv[1] : ".");
  signal(SIGPIPE, SIG_IGN);
  if (test_redis_start(&srv) != 0)
    return 1;
  RUN(test_put_input);
  RUN(test_put_sink_and_worker_results);
  RUN(test_get_order_filters_auto_delete);
  RUN(test_delete_truncate_depth);
  RUN(test_commit_and_negative_commit);
  RUN(test_search);
  RUN(test_attributes_and_eos);
  RUN(test_group_read_order_and_release);
  RUN(test_input_priority_and_visibility);
  RUN(test_two_groups_and_windows);
  RUN(test_workers_unaffected);
  RUN(test_bad_args_and_unreachable);
  RUN(test_group_forget);
  RUN(test_redis_restart);
  test_redis_stop(&srv);
  return check_done("test_store");
}
