/* SPDX-License-Identifier: Apache-2.0 */
/*
 * enqueue.c - tripgen-bench-enqueue, a benchmark tool: put N jobs of one
 * trip (fresh request_ids) through tripgen's transport library and print
 * how long it took as name=value lines. Not installed.
 */
#include "tg_job.h"
#include "tg_time.h"
#include "tg_transport.h"
#include "tg_trip.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tripgen-bench-enqueue --redis URL --env ENV --count N --trip FILE [--batch B]\n"
    "Puts N jobs of the trip in FILE, B per pipelined batch (default 1000).\n";

int main(int argc, char **argv) {
  const char *redis = NULL, *env = NULL, *trip_path = NULL;
  long count = 0, batch = 1000;
  static const struct option opts[] = {
    {"redis", required_argument, 0, 'r'}, {"env", required_argument, 0, 'e'},
    {"count", required_argument, 0, 'n'}, {"trip", required_argument, 0, 't'},
    {"batch", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "r:e:n:t:b:h", opts, NULL)) != -1) {
    switch (ch) {
    case 'r': redis = optarg; break;
    case 'e': env = optarg; break;
    case 'n': count = strtol(optarg, NULL, 10); break;
    case 't': trip_path = optarg; break;
    case 'b': batch = strtol(optarg, NULL, 10); break;
    case 'h': fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (!redis || !env || !trip_path || count < 1 || batch < 1 || batch > 100000) {
    fputs(usage, stderr);
    return 2;
  }
  char errstr[512] = "cannot read";
  static char text[TG_MAX_PAYLOAD_BYTES + 1];
  FILE *f = fopen(trip_path, "rb");
  size_t len = f ? fread(text, 1, TG_MAX_PAYLOAD_BYTES, f) : 0;
  if (f)
    fclose(f);
  tg_trip_t *trip = len ? tg_trip_parse(text, len, errstr, sizeof(errstr)) : NULL;
  if (!trip) {
    fprintf(stderr, "tripgen-bench-enqueue: %s: %s\n", trip_path, errstr);
    return 2;
  }
  struct tg_transport_conf conf;
  tg_transport_conf_init(&conf, env);
  snprintf(conf.redis_url, sizeof(conf.redis_url), "%s", redis);
  conf.queue_cap = TG_MAX_QUEUE_LENGTH;
  tg_transport_t *t = tg_transport_new(&conf, errstr, sizeof(errstr));
  if (!t) {
    fprintf(stderr, "tripgen-bench-enqueue: %s\n", errstr);
    return 1;
  }
  tg_job_t **jobs = calloc((size_t)batch, sizeof(*jobs));
  uint64_t *idx = calloc((size_t)batch, sizeof(*idx));
  int rc = jobs && idx ? 0 : 1;
  int64_t t0 = tg_mono_ms();
  for (long done = 0; rc == 0 && done < count;) {
    int b = (int)(count - done < batch ? count - done : batch);
    for (int i = 0; i < b && rc == 0; i++) {
      tg_trip_t *copy = tg_trip_parse(text, len, errstr, sizeof(errstr));
      jobs[i] = copy ? tg_job_new(copy, env, NULL, tg_now_ms(), errstr, sizeof(errstr)) : NULL;
      if (!jobs[i])
        rc = 1;
    }
    if (rc == 0 && tg_transport_put_many(t, (const tg_job_t *const *)jobs, b, idx, errstr,
                                         sizeof(errstr)) != TG_OK)
      rc = 1;
    for (int i = 0; i < b; i++) {
      tg_job_destroy(jobs[i]);
      jobs[i] = NULL;
    }
    done += b;
  }
  double secs = (double)(tg_mono_ms() - t0) / 1000.0;
  if (rc != 0) {
    fprintf(stderr, "tripgen-bench-enqueue: %s\n", errstr);
  } else {
    printf("enqueue_jobs=%ld\nenqueue_seconds=%.3f\nenqueue_jobs_per_s=%.0f\n", count, secs,
           secs > 0 ? (double)count / secs : 0.0);
  }
  free(jobs);
  free(idx);
  tg_trip_destroy(trip);
  tg_transport_destroy(t);
  return rc;
}
