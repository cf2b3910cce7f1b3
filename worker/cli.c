/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c - tripgen-worker's command line: load and validate the config,
 * then serve the queue, check the config, or run one trip (--once); or
 * check several environments' configs at once, each alone and then pairwise
 * for shared queues or storage (--check-config FILE FILE...). The
 * shipped binary (main.c) runs it with the stage backends its config names;
 * a benchmark binary may hand in a stage set of its own.
 */
#include "config.h"
#include "config_overlap.h"
#include "tg_config.h"
#include "tg_log.h"
#include "worker.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: tripgen-worker [--config FILE] [--check-config | --once TRIP.json]\n"
    "       tripgen-worker --check-config FILE FILE...\n"
    "\n"
    "Consumes the jobs of one environment, runs each through prompt → diffusion →\n"
    "post-process → upload, publishes the result and acks. SIGTERM or SIGINT drains:\n"
    "stop taking, finish in-flight jobs within shutdown.grace_ms, hand back the rest.\n"
    "\n"
    "  --config FILE     JSON config (deploy/config/<env>.json); default: $TRIPGEN_CONFIG,\n"
    "                    else built-in defaults. Every key can be overridden by TRIPGEN_<KEY>\n"
    "                    (dots as underscores): TRIPGEN_ENV, TRIPGEN_REDIS_URL,\n"
    "                    TRIPGEN_COMFYUI_URL, TRIPGEN_DIFFUSION_SLOTS, ...\n"
    "  --check-config    validate the config and the stage set-up (workflow, bindings,\n"
    "                    storage root), print the effective config with secrets masked\n"
    "  --check-config FILE FILE...\n"
    "                    check several environments' configs (deploy/config/*.json): each\n"
    "                    as above, then every pair; refused when two serve the same env on\n"
    "                    the same Redis (shared queues), or store in the same place (file:\n"
    "                    the absolute root; oss, s3: endpoint host and bucket) with one's\n"
    "                    prefix (root/{env}/, prefix{env}/) inside the other's. TRIPGEN_*\n"
    "                    variables apply to every file. One line per file on stdout.\n"
    "  --once TRIP.json  one trip through the pipeline, no queue; result JSON on stdout\n"
    "                    (exit 1 when it failed)\n"
    "  --help-config [--markdown]\n"
    "                    every key with its type, default, variable and meaning\n"
    "  --version\n"
    "\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 bad arguments or config.\n";

static volatile sig_atomic_t stop_requested;

/* any TRIPGEN_* variable that would override a key of every file checked */
static bool overrides_set(void) {
  extern char **environ;
  for (char **e = environ; e && *e; e++)
    if (strncmp(*e, "TRIPGEN_", 8) == 0 && strncmp(*e, "TRIPGEN_CONFIG=", 15) != 0)
      return true;
  return false;
}

/* Load, validate and set up the stages of @path alone; its places in @pl. */
static bool check_one(const char *path, const struct tg_stage_set *stages,
                      struct tg_conf_places *pl) {
  struct tg_worker_conf *conf = malloc(sizeof(*conf));
  char errstr[1024];
  bool ok = false;
  if (!conf) {
    fprintf(stderr, "tripgen-worker: %s: out of memory\n", path);
    return false;
  }
  if (tg_worker_conf_load(conf, path, errstr, sizeof(errstr)) != TG_OK) {
    if (strncmp(errstr, "config ", 7) == 0) /* already names the file */
      fprintf(stderr, "tripgen-worker: %s\n", errstr);
    else
      fprintf(stderr, "tripgen-worker: config %s: %s\n", path, errstr);
    goto out;
  }
  tg_worker_t *w = tg_worker_new(conf, stages, false, errstr, sizeof(errstr));
  if (!w) {
    fprintf(stderr, "tripgen-worker: config %s: %s\n", path, errstr);
    goto out;
  }
  tg_worker_destroy(w);
  if (tg_worker_conf_places(conf, pl, errstr, sizeof(errstr)) != TG_OK) {
    fprintf(stderr, "tripgen-worker: config %s: %s\n", path, errstr);
    goto out;
  }
  ok = true;
out:
  free(conf);
  return ok;
}

/*
 * --check-config FILE FILE...: each alone, then every pair of those that
 * passed for shared queues or storage. Exit 0, or 2 when any failed.
 */
static int check_many(char **files, int n, const struct tg_stage_set *stages) {
  struct tg_conf_places *pl = calloc((size_t)n, sizeof(*pl));
  bool *ok = calloc((size_t)n, sizeof(*ok));
  int bad = 0;
  if (!pl || !ok) {
    fprintf(stderr, "tripgen-worker: out of memory\n");
    free(pl);
    free(ok);
    return 1;
  }
  if (overrides_set())
    fprintf(stderr, "tripgen-worker: note: TRIPGEN_* variables are set; they apply to every "
                    "file checked\n");
  for (int i = 0; i < n; i++) {
    ok[i] = check_one(files[i], stages, &pl[i]);
    bad += !ok[i];
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) {
      char why[3 * PATH_MAX];
      if (ok[i] && ok[j] && tg_worker_conf_overlap(&pl[i], &pl[j], why, sizeof(why))) {
        fprintf(stderr, "tripgen-worker: %s and %s overlap: %s\n", files[i], files[j], why);
        bad++;
      }
    }
  for (int i = 0; i < n && !bad; i++)
    printf("%s env=%s queues=\"%s\" storage=\"%s%s%s\"\n", files[i], pl[i].env,
           *pl[i].redis ? pl[i].redis : pl[i].kafka[0], /* kafka: the input topic */
           strcmp(pl[i].store, "file") ? pl[i].store : "",
           strcmp(pl[i].store, "file") ? " " : "", pl[i].prefix);
  if (!bad)
    fprintf(stderr, "tripgen-worker: %d configs ok, no shared queues or storage\n", n);
  free(pl);
  free(ok);
  return bad ? 2 : 0;
}

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

int tg_worker_main(int argc, char **argv, const struct tg_stage_set *stages) {
  const char *config = getenv("TRIPGEN_CONFIG"), *once = NULL;
  bool check = false, config_opt = false;
  static const struct option opts[] = {
    {"config", required_argument, 0, 'c'}, {"check-config", no_argument, 0, 'k'},
    {"once", required_argument, 0, 'o'},   {"help-config", no_argument, 0, 'H'},
    {"help", no_argument, 0, 'h'},         {"version", no_argument, 0, 'V'},
    {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "c:ko:hV", opts, NULL)) != -1) {
    switch (ch) {
    case 'c': config = optarg; config_opt = true; break;
    case 'k': check = true; break;
    case 'o': once = optarg; break;
    case 'H': tg_worker_conf_help(stdout, optind < argc && strcmp(argv[optind], "--markdown") == 0);
      return 0;
    case 'h': fputs(usage, stdout); return 0;
    case 'V': printf("tripgen-worker %s\n", TG_VERSION); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  /* files after --check-config: one is --config FILE, several are compared */
  if ((optind != argc && (!check || config_opt)) || (check && once)) {
    fputs(usage, stderr);
    return 2;
  }
  if (argc - optind > 1)
    return check_many(argv + optind, argc - optind, stages);
  if (optind < argc)
    config = argv[optind];
  if (config && !*config)
    config = NULL;
  struct tg_worker_conf conf;
  char errstr[1024];
  if (tg_worker_conf_load(&conf, config, errstr, sizeof(errstr)) != TG_OK) {
    fprintf(stderr, "tripgen-worker: %s\n", errstr);
    return 2;
  }
  tg_log_set_level_name(conf.log_level);
  signal(SIGPIPE, SIG_IGN);

  tg_worker_t *w = tg_worker_new(&conf, stages, !check && !once, errstr, sizeof(errstr));
  if (!w) {
    fprintf(stderr, "tripgen-worker: %s\n", errstr);
    return check ? 2 : 1;
  }
  int rc = 0;
  if (check) {
    tg_worker_conf_print(&conf, stdout);
    fprintf(stderr, "tripgen-worker: config ok\n");
  } else if (once) {
    FILE *f = strcmp(once, "-") ? fopen(once, "rb") : stdin;
    char *buf = malloc(TG_MAX_PAYLOAD_BYTES + 1);
    size_t len = f && buf ? fread(buf, 1, TG_MAX_PAYLOAD_BYTES + 1, f) : 0;
    if (f && f != stdin)
      fclose(f);
    tg_trip_t *trip = f && buf ? tg_trip_parse(buf, len, errstr, sizeof(errstr)) : NULL;
    free(buf);
    if (!trip) {
      fprintf(stderr, "tripgen-worker: %s: %s\n", once, f ? errstr : "cannot open");
      tg_worker_destroy(w);
      return 2;
    }
    char *json = NULL;
    rc = tg_worker_once(w, trip, &json);
    if (json)
      printf("%s\n", json);
    free(json);
  } else {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    rc = tg_worker_run(w, &stop_requested);
    if (rc == TG_WORKER_HANDED_BACK) { /* threads are still inside remote calls */
      fflush(NULL);
      _exit(tg_worker_broken(w) ? 1 : 0);
    }
    if (rc == 0 && tg_worker_broken(w))
      rc = 1; /* the orchestrator restarts it */
  }
  tg_worker_destroy(w);
  return rc;
}
