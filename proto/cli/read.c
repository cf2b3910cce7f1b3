/* SPDX-License-Identifier: Apache-2.0 */
/*
 * read.c - the commands that read the queues: `watch` (output frames as
 * they arrive), `get` (the latest result of one request) and `depth`.
 */
#include "cli.h"
#include "tg_time.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char watch_usage[] =
    "usage: tripgen watch [--env E] [--redis URL | --transport kafka --brokers LIST]\n"
    "                     [--count N] [--from INDEX] [--timeout SECONDS]\n"
    "\n"
    "Prints results from the env's output queue, one JSON object per line, from INDEX on\n"
    "(default: the oldest frame still kept). Stops after N results (default: never) or\n"
    "when SECONDS pass without reaching N (exit 1). On kafka, --from 0 (the default) reads\n"
    "the output topic from its oldest record and any other INDEX only new ones, committed\n"
    "records only (read_committed).\n";

static const char get_usage[] =
    "usage: tripgen get [--env E] [--redis URL] REQUEST_ID\n"
    "\n"
    "Prints the final result of a request (its latest generation). Exit 1 when there is\n"
    "none yet.\n";

static const char depth_usage[] =
    "usage: tripgen depth [--env E] [--redis URL | --transport kafka --brokers LIST]\n"
    "\n"
    "Prints the env's queue depth as JSON: waiting (not yet delivered; waiting_priority of\n"
    "them on the priority stream), pending (delivered, not acked), delayed (retries not\n"
    "yet due), dead (dead letters), oldest_waiting_age_ms (0: none waits) and\n"
    "active_workers (heartbeat within the last 30 s).\n";

static bool parse_u64(const char *s, uint64_t *out) {
  char *end;
  if (!*s || *s == '-')
    return false;
  *out = strtoull(s, &end, 10);
  return *end == '\0';
}

/* Common options; returns -1 to continue, else an exit code. */
static int parse_common(int argc, char **argv, struct cli_common *common, const char *usage,
                        const char *shortopts, const struct option *longopts, int *opt_out,
                        const char **arg_out) {
  int c = getopt_long(argc, argv, shortopts, longopts, NULL);
  *opt_out = c;
  *arg_out = optarg;
  switch (c) {
  case -1: return 0;
  case 'e': common->env = optarg; return -1;
  case 'r': common->redis_url = optarg; return -1;
  case 'T': common->transport = optarg; return -1;
  case 'B': common->brokers = optarg; return -1;
  case 'h': fputs(usage, stdout); return CLI_OK + 100;
  case '?': fputs(usage, stderr); return CLI_USAGE + 100;
  default: return -2; /* the command's own option */
  }
}

int cli_watch(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  uint64_t count = 0, from = 0, timeout_s = 0;
  static const struct option opts[] = {
    {"env", required_argument, 0, 'e'}, {"transport", required_argument, 0, 'T'},
    {"brokers", required_argument, 0, 'B'},   {"redis", required_argument, 0, 'r'},
    {"count", required_argument, 0, 'c'}, {"from", required_argument, 0, 'f'},
    {"timeout", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};
  optind = 0;
  for (;;) {
    int opt;
    const char *arg;
    int r = parse_common(argc, argv, &common, watch_usage, "+e:r:T:B:hc:f:t:", opts, &opt, &arg);
    if (r == 0)
      break;
    if (r >= 100)
      return r - 100;
    if (r == -2) {
      uint64_t *dst = opt == 'c' ? &count : opt == 'f' ? &from : &timeout_s;
      if (!parse_u64(arg, dst)) {
        fprintf(stderr, "tripgen watch: --%s needs a non-negative integer\n",
                opt == 'c' ? "count" : opt == 'f' ? "from" : "timeout");
        return CLI_USAGE;
      }
    }
  }
  if (optind != argc) {
    fprintf(stderr, "tripgen watch: unexpected argument '%s'\n\n%s", argv[optind], watch_usage);
    return CLI_USAGE;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t)
    return CLI_FAILED;
  int64_t deadline = timeout_s ? tg_mono_ms() + (int64_t)timeout_s * 1000 : 0;
  uint64_t seen = 0;
  int rc = CLI_OK;
  char errstr[512];
  while (!count || seen < count) {
    int64_t wait = 1000;
    if (deadline) {
      wait = deadline - tg_mono_ms();
      if (wait <= 0) {
        rc = CLI_NOT_FOUND;
        fprintf(stderr, "tripgen watch: %" PRIu64 " of %" PRIu64 " results within %" PRIu64
                        " s\n", seen, count, timeout_s);
        break;
      }
      if (wait > 1000)
        wait = 1000;
    }
    struct tg_sink_frame *f;
    int nf;
    int want = count ? (int)(count - seen < 100 ? count - seen : 100) : 100;
    tg_err_t err = tg_transport_read_sink(t, from, want, (int)wait, &f, &nf, errstr,
                                          sizeof(errstr));
    if (err != TG_OK) {
      fprintf(stderr, "tripgen watch: %s\n", errstr);
      rc = CLI_FAILED;
      break;
    }
    for (int i = 0; i < nf; i++) {
      printf("%s\n", f[i].result);
      from = f[i].index + 1;
      seen++;
    }
    fflush(stdout);
    tg_sink_frames_free(f, nf);
  }
  tg_transport_destroy(t);
  return rc;
}

int cli_get(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  static const struct option opts[] = {{"env", required_argument, 0, 'e'}, {"transport", required_argument, 0, 'T'},
    {"brokers", required_argument, 0, 'B'},
                                       {"redis", required_argument, 0, 'r'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 0;
  for (;;) {
    int opt;
    const char *arg;
    int r = parse_common(argc, argv, &common, get_usage, "+e:r:T:B:h", opts, &opt, &arg);
    if (r == 0)
      break;
    if (r >= 100)
      return r - 100;
    if (r == -2) {
      fputs(get_usage, stderr);
      return CLI_USAGE;
    }
  }
  if (argc - optind != 1) {
    fprintf(stderr, "tripgen get: name exactly one REQUEST_ID\n\n%s", get_usage);
    return CLI_USAGE;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t)
    return CLI_FAILED;
  char *json = NULL, errstr[512];
  tg_err_t err = tg_transport_get_result(t, argv[optind], &json, errstr, sizeof(errstr));
  tg_transport_destroy(t);
  if (err == TG_OK) {
    printf("%s\n", json);
    free(json);
    return CLI_OK;
  }
  fprintf(stderr, "tripgen get: %s\n", errstr);
  return err == TG_ERR_NOT_FOUND ? CLI_NOT_FOUND : err == TG_ERR_INVAL ? CLI_USAGE : CLI_FAILED;
}

int cli_depth(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  static const struct option opts[] = {{"env", required_argument, 0, 'e'}, {"transport", required_argument, 0, 'T'},
    {"brokers", required_argument, 0, 'B'},
                                       {"redis", required_argument, 0, 'r'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 0;
  for (;;) {
    int opt;
    const char *arg;
    int r = parse_common(argc, argv, &common, depth_usage, "+e:r:T:B:h", opts, &opt, &arg);
    if (r == 0)
      break;
    if (r >= 100)
      return r - 100;
    if (r == -2) {
      fputs(depth_usage, stderr);
      return CLI_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "tripgen depth: unexpected argument '%s'\n\n%s", argv[optind], depth_usage);
    return CLI_USAGE;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t)
    return CLI_FAILED;
  struct tg_depth d;
  char errstr[512];
  tg_err_t err = tg_transport_depth(t, &d, errstr, sizeof(errstr));
  tg_transport_destroy(t);
  if (err != TG_OK) {
    fprintf(stderr, "tripgen depth: %s\n", errstr);
    return CLI_FAILED;
  }
  printf("{\"env\":\"%s\",\"waiting\":%" PRId64 ",\"waiting_priority\":%" PRId64
         ",\"pending\":%" PRId64 ",\"delayed\":%" PRId64 ",\"dead\":%" PRId64
         ",\"oldest_waiting_age_ms\":%" PRId64 ",\"active_workers\":%" PRId64 "}\n",
         common.env, d.waiting, d.waiting_priority, d.pending, d.delayed, d.dead,
         d.oldest_waiting_age_ms, d.active_workers);
  return CLI_OK;
}
