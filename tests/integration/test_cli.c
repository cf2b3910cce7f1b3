/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cli.c - the `tripgen` command against a private redis-server: put
 * (files, stdin, priority, refusal of a bad trip with nothing enqueued),
 * depth, get before and after a result, watch with --count and --timeout,
 * help and usage errors, exit codes, and no password in error output.
 */
#undef NDEBUG
#include "check.h"
#include "cli_run.h"
#include "redis_harness.h"
#include "tg_transport.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static struct test_redis srv;
static const char *tripgen, *root;
static char out[65536], err[8192];

static struct cli_run cli = {.out = out, .out_size = sizeof(out), .err = err,
                              .err_size = sizeof(err)};

/* Run "tripgen ARGS" through the shell; capture stdout and stderr. */
static int run(const char *args) { return cli_run(&cli, "%s", args); }

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static void test_help_and_usage(void) {
  CHECK(run("--help") == 0 && strstr(out, "put") && strstr(out, "watch"));
  CHECK(run("") == 2 && strstr(err, "usage"));
  CHECK(run("frobnicate") == 2 && strstr(err, "unknown command 'frobnicate'"));
  CHECK(run("put --help") == 0 && strstr(out, "--priority"));
  CHECK(run("put") == 2 && strstr(err, "TRIP.json"));
  CHECK(run("watch --count x") == 2 && strstr(err, "--count"));
  CHECK(run("get") == 2);
  CHECK(run("limits") == 0 && strstr(out, "payload_bytes"));
  CHECK(run("errors --markdown") == 0 && strstr(out, "| `upload_failed` | 503 | yes |"));
  CHECK(run("--version") == 0 && strstr(out, "tripgen "));
}

static void test_put_depth_get_watch(void) {
  CHECK(run("depth") == 0 && strstr(out, "\"waiting\":0") &&
        strstr(out, "\"oldest_waiting_age_ms\":0") && strstr(out, "\"active_workers\":0"));
  CHECK(run("put tests/data/trips/may-day-shanghai.json tests/data/trips/national-day-chengdu.json"
            " tests/data/trips/winter-harbin-short.json") == 0);
  CHECK_MSG(lines(out) == 3, "%s", out);
  char first[80] = "";
  sscanf(out, "%79s", first);
  CHECK(run("put --priority - < tests/data/trips/winter-harbin-short.json") == 0 &&
        lines(out) == 1);
  CHECK(run("depth") == 0);
  CHECK_MSG(strstr(out, "\"waiting\":4") && strstr(out, "\"waiting_priority\":1"), "%s", out);
  long long age = -1;
  const char *a = strstr(out, "\"oldest_waiting_age_ms\":");
  CHECK_MSG(a && sscanf(a + 24, "%lld", &age) == 1 && age >= 0 && age < 60000, "%s", out);
  /* a bad trip anywhere in the list: nothing is enqueued, the field is named */
  char bad[600];
  snprintf(bad, sizeof(bad), "%s/bad.json", srv.dir);
  FILE *f = fopen(bad, "w");
  fputs("{\"trip_id\":\"x\",\"user_id\":\"u\",\"tag\":\"\",\"text\":\"\","
        "\"start_time\":\"2024-05-02T22:38:00+08:00\",\"end_time\":\"2024-05-03T22:38:00+08:00\","
        "\"driving_seconds\":10,\"distance_km\":1,"
        "\"origin\":{\"address\":\"a\",\"city\":\"c\",\"weather\":7},"
        "\"destination\":{\"address\":\"a\",\"city\":\"c\",\"weather\":\"w\"},"
        "\"via_cities\":[],\"vehicle\":{\"model\":\"m\",\"color\":\"c\",\"generation\":\"g\"}}",
        f);
  fclose(f);
  char args[800];
  snprintf(args, sizeof(args), "put tests/data/trips/may-day-shanghai.json '%s'", bad);
  CHECK(run(args) == 2);
  CHECK_MSG(strstr(err, "origin.weather: expected string, got number"), "%s", err);
  CHECK(run("put no-such-file.json") == 2 && strstr(err, "cannot open"));
  CHECK(run("depth") == 0 && strstr(out, "\"waiting\":4"));
  /* no result yet */
  snprintf(args, sizeof(args), "get %s", first);
  CHECK(run(args) == 1 && strstr(err, "no result"));
  CHECK(run("get ../etc") == 2);
  /* a worker (here: the library) answers every job */
  struct tg_transport_conf c;
  char e[256];
  tg_transport_conf_init(&c, "dev");
  snprintf(c.redis_url, sizeof(c.redis_url), "%s", srv.url);
  tg_transport_t *t = tg_transport_new(&c, e, sizeof(e));
  CHECK(t != NULL);
  tg_delivery_t *d;
  int n;
  CHECK(tg_transport_take(t, 10, 0, &d, &n, e, sizeof(e)) == TG_OK && n == 4);
  for (int i = 0; i < n; i++) {
    tg_result_t *r = tg_result_for_job(d[i].job);
    bool pub;
    CHECK(tg_transport_complete(t, &d[i], r, &pub, e, sizeof(e)) == TG_OK && pub);
    tg_result_destroy(r);
  }
  tg_deliveries_free(d, n);
  tg_transport_destroy(t);
  CHECK(run(args) == 0 && strstr(out, first) && strstr(out, "\"status\":\"succeeded\""));
  CHECK(run("watch --count 4 --timeout 5") == 0 && lines(out) == 4);
  CHECK(run("watch --from 4 --count 1 --timeout 5") == 0 && lines(out) == 1);
  CHECK(run("watch --count 5 --timeout 1") == 1 && lines(out) == 4 && strstr(err, "4 of 5"));
  /* another env sees none of it */
  CHECK(run("depth --env test") == 0 && strstr(out, "\"env\":\"test\"") &&
        strstr(out, "\"waiting\":0"));
  CHECK(run("watch --env test --count 1 --timeout 1") == 1 && lines(out) == 0);
}

static void test_unreachable_redis_keeps_secrets(void) {
  CHECK(run("depth --redis redis://:TopSecretPw@127.0.0.1:1") == 3);
  CHECK_MSG(strstr(err, "cannot connect") && !strstr(err, "TopSecretPw"), "%s", err);
  CHECK(run("depth --redis ftp://x") == 3 && strstr(err, "redis://"));
  CHECK(run("depth --env 'Bad Env'") == 3 && strstr(err, "env"));
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test-cli TRIPGEN_BINARY SOURCE_ROOT\n");
    return 1;
  }
  static char exe[4096];
  if (!realpath(argv[1], exe)) {
    fprintf(stderr, "test-cli: no such binary %s\n", argv[1]);
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
  RUN(test_help_and_usage);
  RUN(test_put_depth_get_watch);
  RUN(test_unreachable_redis_keeps_secrets);
  test_redis_stop(&srv);
  return check_exit();
}
