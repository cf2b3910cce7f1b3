/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the `tripgen` command: dispatch to the subcommands, and the
 * options and helpers they share.
 */
#include "cli.h"
#include "tg_config.h"
#include "tg_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: tripgen COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Commands:\n"
    "  put [--env E] [--priority] [--deadline SECONDS] TRIP.json...\n"
    "                      validate trips and enqueue them; prints one request_id per line\n"
    "  watch [--env E] [--count N] [--from INDEX] [--timeout SECONDS]\n"
    "                      print results from the output queue, one JSON per line\n"
    "  get [--env E] REQUEST_ID\n"
    "                      print the latest result of a request (exit 1: none yet)\n"
    "  depth [--env E]     queue depth as JSON: waiting, pending, delayed, dead, oldest age\n"
    "  dlq list|show|replay|purge [--env E] [ARGS]\n"
    "                      dead letters: list them, show one, re-queue them as a new\n"
    "                      generation, or delete them ('tripgen dlq --help')\n"
    "  validate [--kind trip|job|result] FILE...\n"
    "                      check messages without a queue (exit 2 on the first bad one)\n"
    "  limits [--markdown] the size bounds tripgen enforces\n"
    "  errors [--markdown] the wire error codes, EAS lastCode and retryability\n"
    "\n"
    "Queue options (put, watch, get, depth, dlq):\n"
    "  --env E        environment (default: $TRIPGEN_ENV or dev)\n"
    "  --redis URL    redis://[[user]:password@]host[:port][/db] or unix:///path\n"
    "                 (default: $TRIPGEN_REDIS_URL or redis://127.0.0.1:6379)\n"
    "  --transport T  redis or kafka (default: $TRIPGEN_TRANSPORT or redis); kafka\n"
    "                 serves put, watch and depth (topics tripgen-ENV-in/-out/-dlq)\n"
    "  --brokers LIST Kafka bootstrap servers (default: $TRIPGEN_KAFKA_BROKERS or\n"
    "                 127.0.0.1:9092)\n"
    "\n"
    "Exit codes: 0 ok, 1 not found / timed out, 2 bad arguments or input, 3 queue error.\n"
    "Run 'tripgen COMMAND --help' for a command's own help.\n";

void cli_common_init(struct cli_common *c) {
  c->env = getenv("TRIPGEN_ENV");
  if (!c->env || !*c->env)
    c->env = "dev";
  c->redis_url = getenv("TRIPGEN_REDIS_URL");
  if (!c->redis_url || !*c->redis_url)
    c->redis_url = "redis://127.0.0.1:6379";
  c->transport = getenv("TRIPGEN_TRANSPORT");
  if (!c->transport || !*c->transport)
    c->transport = "redis";
  c->brokers = getenv("TRIPGEN_KAFKA_BROKERS");
  if (!c->brokers || !*c->brokers)
    c->brokers = "127.0.0.1:9092";
}

tg_transport_t *cli_open(const struct cli_common *c) {
  struct tg_transport_conf conf;
  char errstr[512];
  tg_transport_conf_init(&conf, c->env);
  if (strlen(c->env) >= sizeof(conf.env) || strlen(c->redis_url) >= sizeof(conf.redis_url) ||
      strlen(c->brokers) >= sizeof(conf.kafka.brokers)) {
    fprintf(stderr, "tripgen: --env, --redis or --brokers value is too long\n");
    return NULL;
  }
  if (strcmp(c->transport, "redis") != 0 && strcmp(c->transport, "kafka") != 0) {
    fprintf(stderr, "tripgen: --transport must be redis or kafka, not '%s'\n", c->transport);
    return NULL;
  }
  snprintf(conf.backend, sizeof(conf.backend), "%s", c->transport);
  snprintf(conf.kafka.brokers, sizeof(conf.kafka.brokers), "%s", c->brokers);
  snprintf(conf.env, sizeof(conf.env), "%s", c->env);
  snprintf(conf.redis_url, sizeof(conf.redis_url), "%s", c->redis_url);
  conf.reconnect_max_ms = 2000; /* a command line tool fails fast */
  snprintf(conf.consumer, sizeof(conf.consumer), "cli");
  tg_transport_t *t = tg_transport_new(&conf, errstr, sizeof(errstr));
  if (!t)
    fprintf(stderr, "tripgen: %s\n", errstr);
  return t;
}

char *cli_read_file(const char *path, size_t max, size_t *len, char *errstr, size_t n) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) {
    snprintf(errstr, n, "cannot open: %s", strerror(errno));
    return NULL;
  }
  char *buf = malloc(max + 2);
  size_t got = buf ? fread(buf, 1, max + 1, f) : 0;
  bool failed = !buf || ferror(f);
  if (f != stdin)
    fclose(f);
  if (failed) {
    free(buf);
    snprintf(errstr, n, "cannot read: %s", buf ? strerror(errno) : "out of memory");
    return NULL;
  }
  if (got > max) {
    free(buf);
    snprintf(errstr, n, "payload: larger than the limit of %zu bytes", max);
    return NULL;
  }
  buf[got] = '\0';
  *len = got;
  return buf;
}

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
  {"put", cli_put},         {"watch", cli_watch},   {"get", cli_get},
  {"depth", cli_depth},     {"validate", cli_validate}, {"limits", cli_limits},
  {"errors", cli_errors},   {"dlq", cli_dlq},
};

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN); /* a dropped Redis socket is an error, not a death */
  if (tg_log_set_level_name(getenv("TRIPGEN_LOG_LEVEL")) != 0)
    tg_log_level = TG_WARN;
  else if (!getenv("TRIPGEN_LOG_LEVEL"))
    tg_log_level = TG_WARN;
  if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_USAGE : CLI_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("tripgen %s\n", TG_VERSION);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "tripgen: unknown command '%s'\n\n%s", argv[1], usage);
  return CLI_USAGE;
}
