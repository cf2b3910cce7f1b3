/* SPDX-License-Identifier: Apache-2.0 */
/*
 * put.c - `tripgen put`: validate every trip first, then enqueue them all;
 * a bad trip stops the command before anything is enqueued.
 */
#include "cli.h"
#include "tg_time.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char put_usage[] =
    "usage: tripgen put [--env E] [--redis URL | --transport kafka --brokers LIST]\n"
    "                   [--priority] [--deadline SECONDS] TRIP.json...\n"
    "\n"
    "Validates each trip event (\"-\" reads one from stdin), wraps it in a job with a new\n"
    "request_id and enqueues it on the env's input queue. Prints one request_id per line.\n"
    "Nothing is enqueued when any trip is invalid (exit 2, the reason on stderr).\n"
    "  --priority          enqueue on the priority stream (taken before normal jobs)\n"
    "  --deadline SECONDS  the job fails with deadline_exceeded if not done in time\n";

int cli_put(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  bool priority = false;
  long deadline_s = 0;
  static const struct option opts[] = {
    {"env", required_argument, 0, 'e'}, {"transport", required_argument, 0, 'T'},
    {"brokers", required_argument, 0, 'B'},      {"redis", required_argument, 0, 'r'},
    {"priority", no_argument, 0, 'p'},       {"deadline", required_argument, 0, 'd'},
    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
  int c;
  optind = 0;
  while ((c = getopt_long(argc, argv, "+e:r:T:B:pd:h", opts, NULL)) != -1) {
    switch (c) {
    case 'e': common.env = optarg; break;
    case 'r': common.redis_url = optarg; break;
    case 'T': common.transport = optarg; break;
    case 'B': common.brokers = optarg; break;
    case 'p': priority = true; break;
    case 'd': {
      char *end;
      deadline_s = strtol(optarg, &end, 10);
      if (*end || deadline_s <= 0 || deadline_s > 7 * 86400) {
        fprintf(stderr, "tripgen put: --deadline must be 1-604800 seconds\n");
        return CLI_USAGE;
      }
      break;
    }
    case 'h': fputs(put_usage, stdout); return CLI_OK;
    default: fputs(put_usage, stderr); return CLI_USAGE;
    }
  }
  int nfiles = argc - optind;
  if (nfiles < 1) {
    fprintf(stderr, "tripgen put: name at least one TRIP.json (or - for stdin)\n\n%s", put_usage);
    return CLI_USAGE;
  }
  tg_job_t **jobs = calloc((size_t)nfiles, sizeof(*jobs));
  int rc = CLI_OK;
  char errstr[512];
  int64_t now = tg_now_ms();
  for (int i = 0; i < nfiles && rc == CLI_OK; i++) {
    const char *path = argv[optind + i];
    size_t len;
    char *data = cli_read_file(path, TG_MAX_PAYLOAD_BYTES, &len, errstr, sizeof(errstr));
    tg_trip_t *trip = data ? tg_trip_parse(data, len, errstr, sizeof(errstr)) : NULL;
    free(data);
    if (trip && !(jobs[i] = tg_job_new(trip, common.env, NULL, now, errstr, sizeof(errstr))))
      tg_trip_destroy(trip);
    if (!jobs[i]) {
      fprintf(stderr, "tripgen put: %s: %s\n", path, errstr);
      rc = CLI_USAGE;
      break;
    }
    jobs[i]->priority = priority;
    if (deadline_s)
      jobs[i]->deadline_ms = now + deadline_s * 1000;
  }
  tg_transport_t *t = rc == CLI_OK ? cli_open(&common) : NULL;
  if (rc == CLI_OK && !t)
    rc = CLI_FAILED;
  for (int i = 0; i < nfiles && rc == CLI_OK; i++) {
    uint64_t index;
    tg_err_t err = tg_transport_put(t, jobs[i], &index, errstr, sizeof(errstr));
    if (err != TG_OK) {
      fprintf(stderr, "tripgen put: %s: %s\n", argv[optind + i], errstr);
      rc = err == TG_ERR_INVAL || err == TG_ERR_TOO_LARGE ? CLI_USAGE : CLI_FAILED;
      break;
    }
    printf("%s\n", jobs[i]->request_id);
    fflush(stdout);
  }
  tg_transport_destroy(t);
  for (int i = 0; i < nfiles; i++)
    tg_job_destroy(jobs[i]);
  free(jobs);
  return rc;
}
