/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dlq.c - dead letters against a private redis-server, through the
 * transport API and the `tripgen dlq` command: dead letters made for real
 * (put, take, dead_letter), list (text and --json), show by index and by
 * request_id, replay (same request_id, generation + 1, attempt 1, a passed
 * deadline dropped, a new sink frame, `tripgen get` returning the new
 * generation), a job that cannot be replayed staying put, purge, and the
 * argument errors.
 */
#undef NDEBUG
#include "check.h"
#include "cli_run.h"
#include "redis_harness.h"
#include "tg_time.h"
#include "tg_transport.h"

#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct test_redis srv;
static const char *tripgen, *root;
static char out[65536], err[8192], errstr[512];
static tg_transport_t *t;

static struct cli_run cli = {.out = out, .out_size = sizeof(out), .err = err,
                              .err_size = sizeof(err)};

/* Run "tripgen ARGS" (printf-formatted) through the shell; capture stdout and stderr. */
#define run(...) cli_run(&cli, __VA_ARGS__)

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

/* Line @i (0-based) of @s, without its newline. */
static const char *line_of(const char *s, int i, char *buf, size_t size) {
  for (; i > 0 && *s; i--) {
    const char *nl = strchr(s, '\n');
    s = nl ? nl + 1 : "";
  }
  size_t len = strcspn(s, "\n");
  snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), s);
  return buf;
}

static tg_job_t *sample_job(void) {
  char path[700], buf[8192];
  snprintf(path, sizeof(path), "%s/tests/data/trips/may-day-shanghai.json", root);
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(1);
  }
  size_t len = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  tg_trip_t *trip = tg_trip_parse(buf, len, errstr, sizeof(errstr));
  CHECK_MSG(trip != NULL, "%s", errstr);
  tg_job_t *job = tg_job_new(trip, "dev", NULL, tg_now_ms(), errstr, sizeof(errstr));
  CHECK(job != NULL);
  return job;
}

/* Take the one waiting job and dead-letter it with a diffusion failure. */
static void bury_next(const char *message) {
  tg_delivery_t *d;
  int n;
  tg_err_t e = tg_transport_take(t, 1, 0, &d, &n, errstr, sizeof(errstr));
  CHECK_MSG(e == TG_OK && n == 1, "take: %d %s", n, errstr);
  if (n != 1)
    return;
  tg_result_t *r = d[0].job ? tg_result_for_job(d[0].job)
                            : tg_result_new(d[0].request_id, 0, "dev");
  tg_result_fail(r, TG_CODE_DIFFUSION_FAILED, "diffusion", true, "%s", message);
  e = tg_transport_dead_letter(t, &d[0], r, errstr, sizeof(errstr));
  CHECK_MSG(e == TG_OK, "dead_letter: %s", errstr);
  tg_result_destroy(r);
  tg_deliveries_free(d, n);
}

/* Put @job and dead-letter it. */
static void put_and_bury(const tg_job_t *job, const char *message) {
  uint64_t idx;
  CHECK_MSG(tg_transport_put(t, job, &idx, errstr, sizeof(errstr)) == TG_OK, "put: %s", errstr);
  bury_next(message);
}

/* A sample job dead-lettered; its request id in @rid. */
static void make_dead(char *rid, const char *message) {
  tg_job_t *job = sample_job();
  strcpy(rid, job->request_id);
  put_and_bury(job, message);
  tg_job_destroy(job);
}

static int64_t dead_count(void) {
  struct tg_depth d;
  CHECK(tg_transport_depth(t, &d, errstr, sizeof(errstr)) == TG_OK);
  return d.dead;
}

/* Take the one waiting delivery (the caller frees it). */
static tg_delivery_t *take_one(void) {
  tg_delivery_t *d;
  int n;
  tg_err_t e = tg_transport_take(t, 4, 0, &d, &n, errstr, sizeof(errstr));
  CHECK_MSG(e == TG_OK && n == 1, "take: %d %s", n, errstr);
  if (n != 1) {
    tg_deliveries_free(d, n);
    return NULL;
  }
  return d;
}

static void test_usage(void) {
  CHECK(run("--help") == 0 && strstr(out, "dlq list|show|replay|purge"));
  CHECK(run("dlq") == 2 && strstr(err, "subcommand"));
  CHECK(run("dlq --help") == 0 && strstr(out, "replay") && strstr(out, "purge"));
  CHECK(run("dlq frobnicate") == 2 && strstr(err, "unknown subcommand 'frobnicate'"));
  CHECK(run("dlq list --help") == 0 && strstr(out, "--limit") && strstr(out, "--json"));
  CHECK(run("dlq show --help") == 0 && strstr(out, "REQUEST_ID"));
  CHECK(run("dlq replay --help") == 0 && strstr(out, "--all") && strstr(out, "2 when"));
  CHECK(run("dlq purge --help") == 0 && strstr(out, "--yes"));
  CHECK(run("dlq list --bogus") == 2 && strstr(err, "usage: tripgen dlq list"));
  CHECK(run("dlq list --limit 0") == 2 && strstr(err, "--limit must be 1-10000"));
  CHECK(run("dlq list --limit 10001") == 2 && strstr(err, "--limit"));
  CHECK(run("dlq list --limit x") == 2 && strstr(err, "--limit"));
  CHECK(run("dlq list --from -1") == 2 && strstr(err, "--from"));
  CHECK(run("dlq list extra") == 2 && strstr(err, "unexpected argument 'extra'"));
  CHECK(run("dlq show") == 2 && strstr(err, "exactly one"));
  CHECK(run("dlq show 1 2") == 2);
  CHECK(run("dlq show 0") == 2 && strstr(err, "positive integer"));
  CHECK(run("dlq show 'bad id!'") == 2 && strstr(err, "neither"));
  CHECK(run("dlq replay") == 2 && strstr(err, "at least one DLQ_INDEX"));
  CHECK(run("dlq replay 0") == 2 && strstr(err, "'0': a DLQ_INDEX is a positive integer"));
  CHECK(run("dlq replay 1 x") == 2 && strstr(err, "'x'"));
  CHECK(run("dlq replay 18446744073709551616") == 2 && strstr(err, "positive integer"));
  CHECK(run("dlq replay --all 3") == 2 && strstr(err, "not both"));
  CHECK(run("dlq replay --yes") == 2);
  CHECK(run("dlq purge") == 2);
  CHECK(run("dlq purge -- -5") == 2 && strstr(err, "positive integer"));
  /* "purge 0" must not reach the transport, where 0 means every one */
  CHECK(run("dlq purge 0") == 2 && !strstr(out, "purged"));
}

/* Three dead letters: a deadline already passed, a priority job with a
 * deadline ahead, and a payload that is not a job. Plus a letter written
 * by hand whose result is not JSON. */
static char rid_a[80], rid_b[80];
static int64_t deadline_b, enq_a;

static void make_letters(void) {
  int64_t before = tg_now_ms();
  tg_job_t *a = sample_job();
  a->deadline_ms = a->enqueued_at_ms - 1000; /* passed */
  enq_a = a->enqueued_at_ms;
  strcpy(rid_a, a->request_id);
  put_and_bury(a, "ComfyUI: out of memory\n(attempt 3 of 3)");
  tg_job_destroy(a);

  tg_job_t *b = sample_job();
  b->priority = true;
  b->deadline_ms = deadline_b = b->enqueued_at_ms + 3600 * 1000;
  strcpy(rid_b, b->request_id);
  put_and_bury(b, "second failure");
  tg_job_destroy(b);

  struct tg_put_req req = {.request_id = "notajob-1", .payload = "{not json",
                           .payload_len = 9, .enqueued_at_ms = tg_now_ms(),
                           .invalid_reason = "payload: not JSON"};
  uint64_t idx;
  char rid[80];
  bool repeated;
  CHECK_MSG(tg_transport_put_req(t, &req, &idx, rid, &repeated, errstr, sizeof(errstr)) == TG_OK,
            "%s", errstr);
  bury_next("invalid");

  /* dlq 4: a result that is not JSON (the index scheme: INCR the counter) */
  redisContext *c = test_redis_connect(&srv);
  CHECK(c != NULL);
  redisReply *r = redisCommand(c, "INCR tripgen:{dev}:dlq:seq");
  CHECK(r && r->type == REDIS_REPLY_INTEGER && r->integer == 4);
  freeReplyObject(r);
  r = redisCommand(c, "XADD tripgen:{dev}:dlq 0-4 request_id handmade-1 generation 0 job %s "
                      "result %s dead_at 0 deliveries 2 index 77", "{\"x\":1}", "garbage");
  CHECK(r && r->type == REDIS_REPLY_STRING);
  freeReplyObject(r);
  redisFree(c);

  /* the transport reads them back, fields right */
  struct tg_dlq_entry *e;
  int n;
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &n, errstr, sizeof(errstr)) == TG_OK && n == 4);
  if (n == 4) {
    CHECK(e[0].dlq_index == 1 && e[1].dlq_index == 2 && e[2].dlq_index == 3);
    CHECK_STREQ(e[0].request_id, rid_a);
    CHECK(e[0].generation == 0 && e[0].deliveries == 1 && e[0].index == 1);
    CHECK(e[0].dead_at_ms >= before && e[0].dead_at_ms <= tg_now_ms());
    CHECK(strstr(e[0].job, rid_a) && strstr(e[0].result, "\"status\":\"failed\""));
    CHECK(strstr(e[0].result, "diffusion_failed"));
    CHECK_STREQ(e[2].request_id, "notajob-1");
    CHECK_STREQ(e[2].job, "{not json");
    CHECK(e[3].index == 77 && e[3].deliveries == 2);
  }
  tg_dlq_entries_free(e, n);
  CHECK(tg_transport_dlq_list(t, 2, 1, &e, &n, errstr, sizeof(errstr)) == TG_OK && n == 1 &&
        e[0].dlq_index == 2);
  tg_dlq_entries_free(e, n);
  CHECK(dead_count() == 4);
}

static void test_list(void) {
  static char l[16384];
  char want[256], at[40];
  CHECK(run("dlq list") == 0);
  CHECK_MSG(lines(out) == 4, "%s", out);
  struct tg_dlq_entry *e;
  int n;
  CHECK(tg_transport_dlq_list(t, 1, 1, &e, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  snprintf(want, sizeof(want), "1 %s 0 1 %s diffusion_failed ComfyUI: out of memory (attempt "
           "3 of 3)", rid_a, n == 1 ? tg_time_format_utc(e[0].dead_at_ms, at, sizeof(at)) : "");
  tg_dlq_entries_free(e, n);
  CHECK_STREQ(line_of(out, 0, l, sizeof(l)), want);
  CHECK(strncmp(line_of(out, 1, l, sizeof(l)), "2 ", 2) == 0 && strstr(l, rid_b) &&
        strstr(l, "diffusion_failed second failure"));
  CHECK(strncmp(line_of(out, 2, l, sizeof(l)), "3 notajob-1 0 1 ", 16) == 0 &&
        strstr(l, "diffusion_failed invalid"));
  CHECK_STREQ(line_of(out, 3, l, sizeof(l)), "4 handmade-1 0 2 - - -");

  CHECK(run("dlq list --from 2 --limit 2") == 0 && lines(out) == 2 &&
        strncmp(out, "2 ", 2) == 0 && strstr(out, "\n3 notajob-1 "));
  CHECK(run("dlq list --from 5") == 0 && lines(out) == 0);
  CHECK(run("dlq list --env test") == 0 && lines(out) == 0);

  CHECK(run("dlq list --json") == 0 && lines(out) == 4);
  json_t *o = json_loads(line_of(out, 0, l, sizeof(l)), 0, NULL);
  CHECK_MSG(json_is_object(o), "%s", l);
  CHECK(json_integer_value(json_object_get(o, "dlq_index")) == 1);
  CHECK(json_integer_value(json_object_get(o, "index")) == 1);
  CHECK_STREQ(json_string_value(json_object_get(o, "request_id")), rid_a);
  CHECK(json_integer_value(json_object_get(o, "generation")) == 0);
  CHECK(json_integer_value(json_object_get(o, "deliveries")) == 1);
  CHECK(json_integer_value(json_object_get(o, "dead_at_ms")) > 0);
  const char *dead_at = json_string_value(json_object_get(o, "dead_at"));
  CHECK(dead_at && strlen(dead_at) == 24 && dead_at[23] == 'Z');
  json_t *job = json_object_get(o, "job"), *res = json_object_get(o, "result");
  CHECK(json_is_object(job) && json_is_object(res));
  CHECK_STREQ(json_string_value(json_object_get(job, "request_id")), rid_a);
  CHECK_STREQ(json_string_value(json_object_get(res, "status")), "failed");
  CHECK_STREQ(json_string_value(json_object_get(json_object_get(res, "error"), "code")),
              "diffusion_failed");
  json_decref(o);
  /* a job that is not JSON is kept as the string it is */
  o = json_loads(line_of(out, 2, l, sizeof(l)), 0, NULL);
  CHECK_MSG(json_is_object(o), "%s", l);
  CHECK_STREQ(json_string_value(json_object_get(o, "job")), "{not json");
  json_decref(o);
  o = json_loads(line_of(out, 3, l, sizeof(l)), 0, NULL);
  CHECK_MSG(json_is_object(o), "%s", l);
  CHECK_STREQ(json_string_value(json_object_get(o, "result")), "garbage");
  CHECK(json_is_null(json_object_get(o, "dead_at")));
  json_decref(o);
}

static void test_show(void) {
  CHECK(run("dlq show 2") == 0);
  CHECK(lines(out) > 10); /* pretty */
  json_t *o = json_loads(out, 0, NULL);
  CHECK_MSG(json_is_object(o), "%s", out);
  CHECK(json_integer_value(json_object_get(o, "dlq_index")) == 2);
  CHECK_STREQ(json_string_value(json_object_get(o, "request_id")), rid_b);
  CHECK(json_is_true(json_object_get(json_object_get(o, "job"), "priority")));
  CHECK(json_is_object(json_object_get(o, "result")));
  json_decref(o);
  CHECK(run("dlq show %s", rid_a) == 0);
  o = json_loads(out, 0, NULL);
  CHECK(json_integer_value(json_object_get(o, "dlq_index")) == 1);
  json_decref(o);
  CHECK(run("dlq show 99") == 1 && strstr(err, "no dead letter 99"));
  CHECK(run("dlq show 0190abcd0000-ffffffffffffffff") == 1 &&
        strstr(err, "no dead letter of request 0190abcd0000-ffffffffffffffff"));
  CHECK(run("dlq show --env test 1") == 1);
}

/* Two dead letters of one request (generations 0 and 1): show picks the newest. */
static void test_show_newest(void) {
  tg_job_t *job = sample_job();
  put_and_bury(job, "generation 0 failed");
  job->generation = 1;
  put_and_bury(job, "generation 1 failed");
  CHECK(run("dlq show %s", job->request_id) == 0);
  json_t *o = json_loads(out, 0, NULL);
  CHECK(json_integer_value(json_object_get(o, "dlq_index")) == 6);
  CHECK(json_integer_value(json_object_get(o, "generation")) == 1);
  json_decref(o);
  tg_job_destroy(job);
  CHECK(run("dlq purge 5 6") == 0 && strstr(out, "purged=2"));
}

static void test_replay(void) {
  uint64_t sink_from = 0;
  {
    struct tg_sink_frame *f;
    int nf;
    CHECK(tg_transport_read_sink(t, 0, 100, 0, &f, &nf, errstr, sizeof(errstr)) == TG_OK);
    if (nf)
      sink_from = f[nf - 1].index + 1;
    tg_sink_frames_free(f, nf);
  }
  /* A: deadline passed; replayed as generation 1 without one */
  CHECK(run("dlq replay 1") == 0);
  char rid[80];
  int64_t gen = -1;
  uint64_t idx = 0;
  CHECK_MSG(sscanf(out, "%79s %" SCNd64 " %" SCNu64, rid, &gen, &idx) == 3, "%s", out);
  CHECK_STREQ(rid, rid_a);
  CHECK(gen == 1 && idx > 0 && lines(out) == 1);
  CHECK(run("dlq replay 1") == 1 && strstr(err, "no dead letter 1"));
  CHECK(run("dlq show 1") == 1);
  tg_delivery_t *d = take_one();
  if (d) {
    CHECK_STREQ(d->request_id, rid_a);
    CHECK(d->index == idx && d->job && d->job->generation == 1 && d->job->attempt == 1);
    CHECK(d->job->deadline_ms == 0 && d->job->enqueued_at_ms == enq_a && !d->priority);
    tg_result_t *r = tg_result_for_job(d->job);
    bool pub = false;
    CHECK(tg_transport_complete(t, d, r, &pub, errstr, sizeof(errstr)) == TG_OK && pub);
    tg_result_destroy(r);
    tg_deliveries_free(d, 1);
  }
  CHECK(run("get %s", rid_a) == 0 && strstr(out, "\"generation\":1") &&
        strstr(out, "\"status\":\"succeeded\""));
  struct tg_sink_frame *f;
  int nf;
  CHECK(tg_transport_read_sink(t, sink_from, 100, 0, &f, &nf, errstr, sizeof(errstr)) == TG_OK);
  CHECK(nf == 1);
  if (nf == 1) {
    CHECK_STREQ(f[0].request_id, rid_a);
    CHECK(strstr(f[0].result, "\"generation\":1") && strstr(f[0].result, "succeeded"));
  }
  tg_sink_frames_free(f, nf);

  /* B: priority and a deadline ahead are kept; 3 cannot be replayed, 99 is
   * missing: each is reported, B still goes, the exit code is the worst */
  CHECK(run("dlq replay 3 99 2") == 2);
  CHECK_MSG(strstr(out, rid_b) && strstr(out, " 1 ") && lines(out) == 1, "%s", out);
  CHECK(strstr(err, "dead letter 3: its job cannot be replayed") &&
        strstr(err, "no dead letter 99"));
  d = take_one();
  if (d) {
    CHECK_STREQ(d->request_id, rid_b);
    CHECK(d->priority && d->job && d->job->priority && d->job->deadline_ms == deadline_b);
    CHECK(d->job->generation == 1 && d->job->attempt == 1);
    tg_deliveries_free(d, 1);
  }
  CHECK(run("dlq replay 99") == 1);
  /* the letter that cannot be replayed stays */
  CHECK(run("dlq replay 3") == 2 && strstr(err, "cannot be replayed"));
  CHECK(run("dlq show 3") == 0 && strstr(out, "{not json"));
  CHECK(dead_count() == 2); /* 3 and the hand-made 4 */

  /* the API directly */
  char r_id[80];
  CHECK(tg_transport_dlq_replay(t, 3, &idx, &gen, r_id, errstr, sizeof(errstr)) ==
        TG_ERR_BAD_MSG);
  CHECK(tg_transport_dlq_replay(t, 0, &idx, &gen, r_id, errstr, sizeof(errstr)) ==
        TG_ERR_NOT_FOUND);
  CHECK(tg_transport_dlq_replay(t, 12345, &idx, &gen, r_id, errstr, sizeof(errstr)) ==
        TG_ERR_NOT_FOUND);

  /* --all: every dead letter present at the start; one that cannot go
   * leaves the exit code 2 */
  char rid_c[80], rid_d[80];
  make_dead(rid_c, "c failed");
  make_dead(rid_d, "d failed");
  CHECK(run("dlq replay --all") == 2);
  CHECK_MSG(lines(out) == 2 && strstr(out, rid_c) && strstr(out, rid_d) &&
            strstr(out, "handmade") == NULL, "%s", out);
  CHECK(strstr(err, "dead letter 3") && strstr(err, "dead letter 4"));
  tg_delivery_t *all;
  int n;
  CHECK(tg_transport_take(t, 10, 0, &all, &n, errstr, sizeof(errstr)) == TG_OK && n == 2);
  for (int i = 0; i < n; i++)
    CHECK(all[i].job && all[i].job->generation == 1 && all[i].job->attempt == 1);
  tg_deliveries_free(all, n);
  CHECK(run("dlq purge 3 4") == 0 && strstr(out, "purged=2"));
  make_dead(rid_c, "c failed again");
  CHECK(run("dlq replay --all") == 0 && lines(out) == 1 && strstr(out, rid_c));
  CHECK(run("dlq list") == 0 && lines(out) == 0);
  CHECK(dead_count() == 0);
  CHECK(run("dlq replay --all") == 0 && lines(out) == 0);
  d = take_one();
  tg_deliveries_free(d, d ? 1 : 0);
}

static void test_purge(void) {
  char rid[3][80];
  for (int i = 0; i < 3; i++)
    make_dead(rid[i], "to purge");
  struct tg_dlq_entry *e;
  int n;
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &n, errstr, sizeof(errstr)) == TG_OK && n == 3);
  uint64_t first = n ? e[0].dlq_index : 0;
  tg_dlq_entries_free(e, n);
  CHECK(run("dlq purge %" PRIu64, first) == 0 && strcmp(out, "purged=1\n") == 0);
  CHECK(run("dlq list") == 0 && lines(out) == 2 && !strstr(out, rid[0]));
  CHECK(run("dlq purge %" PRIu64, first) == 1 && strcmp(out, "purged=0\n") == 0 &&
        strstr(err, "no dead letter"));
  CHECK(run("dlq purge --all") == 2 && strstr(err, "--yes"));
  CHECK(dead_count() == 2);
  CHECK(run("dlq purge --env test --all --yes") == 0 && strcmp(out, "purged=0\n") == 0);
  CHECK(dead_count() == 2);
  CHECK(run("dlq purge --all --yes") == 0 && strcmp(out, "purged=2\n") == 0);
  CHECK(dead_count() == 0);
  CHECK(run("dlq list") == 0 && lines(out) == 0);
  /* indexes never repeat after a purge of all */
  char r4[80];
  make_dead(r4, "after purge");
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &n, errstr, sizeof(errstr)) == TG_OK && n == 1);
  CHECK(n == 1 && e[0].dlq_index > first + 2);
  tg_dlq_entries_free(e, n);
  int64_t purged = -1;
  CHECK(tg_transport_dlq_purge(t, 999, &purged, errstr, sizeof(errstr)) == TG_OK && purged == 0);
  CHECK(tg_transport_dlq_purge(t, 0, &purged, errstr, sizeof(errstr)) == TG_OK && purged == 1);
}

static void test_unreachable(void) {
  CHECK(run("dlq list --redis redis://:TopSecretPw@127.0.0.1:1") == 3);
  CHECK_MSG(!strstr(err, "TopSecretPw"), "%s", err);
  CHECK(run("dlq replay --redis redis://127.0.0.1:1 1") == 3);
  CHECK(run("dlq purge --redis redis://127.0.0.1:1 --all --yes") == 3);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test-dlq TRIPGEN_BINARY SOURCE_ROOT\n");
    return 1;
  }
  static char exe[4096];
  if (!realpath(argv[1], exe)) {
    fprintf(stderr, "test-dlq: no such binary %s\n", argv[1]);
    return 1;
  }
  tripgen = exe;
  root = argv[2];
  cli.root = root;
  cli.program = tripgen;
  cli.tmp_dir = srv.dir;
  if (test_redis_start(&srv) != 0)
    return 1;
  setenv("TRIPGEN_REDIS_URL", srv.url, 1);
  unsetenv("TRIPGEN_ENV");
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "dev");
  snprintf(c.redis_url, sizeof(c.redis_url), "%s", srv.url);
  snprintf(c.consumer, sizeof(c.consumer), "test");
  t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s", errstr);
  if (t) {
    RUN(test_usage);
    RUN(make_letters);
    RUN(test_list);
    RUN(test_show);
    RUN(test_show_newest);
    RUN(test_replay);
    RUN(test_purge);
    RUN(test_unreachable);
  }
  tg_transport_destroy(t);
  test_redis_stop(&srv);
  return check_done("test_dlq");
}
