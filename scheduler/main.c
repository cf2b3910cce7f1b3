/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - tripgen-scheduler's command line: load the config, serve the EAS
 * queue API of every service until SIGTERM, or check the config.
 */
#include "control.h"
#include "sch_config.h"
#include "server.h"
#include "tg_config.h"
#include "tg_log.h"
#include "tg_time.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tripgen-scheduler --config FILE [--check-config]\n"
    "\n"
    "Serves the PAI-EAS asynchronous queue API (put, get, watch, commit, ...) for each\n"
    "configured service on top of the env's Redis streams, so EAS SDK clients work\n"
    "unchanged (docs/eas-api.md). Runs the control loops (promote due retries, reclaim\n"
    "jobs of dead workers, dead-letter poison jobs, remove idle consumers) on the\n"
    "replica holding each env's lease, and serves GET /metrics and /v1/autoscale\n"
    "for autoscalers (docs/autoscaling.md). SIGTERM or SIGINT stops it.\n"
    "\n"
    "  --config FILE   JSON config (default: $TRIPGEN_SCHEDULER_CONFIG)\n"
    "  --check-config  validate and print the effective config (tokens masked)\n"
    "  --version\n"
    "\n"
    "Environment: TRIPGEN_REDIS_URL (overrides redis.url; the only place for a password),\n"
    "TRIPGEN_SCHEDULER_LISTEN (overrides listen), and each service's token_env.\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 bad arguments or config.\n";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

int main(int argc, char **argv) {
  const char *config = getenv("TRIPGEN_SCHEDULER_CONFIG");
  bool check = false;
  static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                       {"check-config", no_argument, 0, 'k'},
                                       {"help", no_argument, 0, 'h'},
                                       {"version", no_argument, 0, 'V'},
                                       {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:khV", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; break;
    case 'k': check = true; break;
    case 'h': fputs(usage, stdout); return 0;
    case 'V': printf("tripgen-scheduler %s\n", TG_VERSION); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (optind != argc || !config || !*config) {
    fputs(usage, stderr);
    return 2;
  }
  struct sch_conf conf;
  char errstr[1024];
  if (sch_conf_load(&conf, config, errstr, sizeof(errstr)) != TG_OK) {
    fprintf(stderr, "tripgen-scheduler: %s\n", errstr);
    return 2;
  }
  if (tg_log_set_level_name(conf.log_level) != 0) {
    fprintf(stderr, "tripgen-scheduler: log.level: unknown level \"%s\"\n", conf.log_level);
    return 2;
  }
  if (check) {
    sch_conf_print(&conf, stdout);
    fprintf(stderr, "tripgen-scheduler: config ok\n");
    return 0;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int port = 0;
  sch_control_t *control = sch_control_start(&conf, errstr, sizeof(errstr));
  sch_server_t *s = control ? sch_server_start(&conf, control, &port, errstr, sizeof(errstr))
                            : NULL;
  if (!s) {
    fprintf(stderr, "tripgen-scheduler: %s\n", errstr);
    sch_control_destroy(control);
    return 1;
  }
  tg_log(TG_INFO, "event=http_listening port=%d", port);
  for (size_t i = 0; i < conf.n_services; i++)
    tg_log(TG_INFO, "event=service name=%s env=%s strict_put=%s", conf.services[i].name,
           conf.services[i].env, conf.services[i].strict_put ? "true" : "false");
  while (!stop_requested)
    tg_sleep_ms(100);
  tg_log(TG_INFO, "event=stopping");
  sch_control_stop(control); /* leases first: another replica leads while we stop serving */
  sch_server_stop(s);
  sch_control_destroy(control);
  tg_log(TG_INFO, "event=stopped");
  return 0;
}
