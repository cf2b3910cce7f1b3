/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c - commands that need no queue: `validate` (check trip, job or
 * result files), `limits` and `errors` (print the tables the README
 * documents).
 */
#include "cli.h"
#include "tg_limits.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char validate_usage[] =
    "usage: tripgen validate [--kind trip|job|result] FILE...\n"
    "\n"
    "Checks each file (\"-\" = stdin) against the message contract (default kind: trip).\n"
    "Prints 'ok FILE' per valid file; on the first invalid one prints 'FILE: <field>: <reason>'\n"
    "on stderr and exits 2.\n";

int cli_validate(int argc, char **argv) {
  const char *kind = "trip";
  static const struct option opts[] = {{"kind", required_argument, 0, 'k'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  int c;
  optind = 0;
  while ((c = getopt_long(argc, argv, "+k:h", opts, NULL)) != -1) {
    switch (c) {
    case 'k': kind = optarg; break;
    case 'h': fputs(validate_usage, stdout); return CLI_OK;
    default: fputs(validate_usage, stderr); return CLI_USAGE;
    }
  }
  if (strcmp(kind, "trip") && strcmp(kind, "job") && strcmp(kind, "result")) {
    fprintf(stderr, "tripgen validate: --kind must be trip, job or result\n");
    return CLI_USAGE;
  }
  if (optind >= argc) {
    fprintf(stderr, "tripgen validate: name at least one FILE\n\n%s", validate_usage);
    return CLI_USAGE;
  }
  size_t max = strcmp(kind, "result") == 0 ? TG_MAX_RESULT_BYTES : TG_MAX_PAYLOAD_BYTES;
  for (int i = optind; i < argc; i++) {
    char errstr[512];
    size_t len;
    bool ok = false;
    char *data = cli_read_file(argv[i], max, &len, errstr, sizeof(errstr));
    if (data && kind[0] == 't') {
      tg_trip_t *t = tg_trip_parse(data, len, errstr, sizeof(errstr));
      ok = t != NULL;
      tg_trip_destroy(t);
    } else if (data && kind[0] == 'j') {
      tg_job_t *j = tg_job_parse(data, len, errstr, sizeof(errstr));
      ok = j != NULL;
      tg_job_destroy(j);
    } else if (data) {
      tg_result_t *r = tg_result_parse(data, len, errstr, sizeof(errstr));
      ok = r != NULL;
      tg_result_destroy(r);
    }
    free(data);
    if (!ok) {
      fprintf(stderr, "%s: %s\n", argv[i], errstr);
      return CLI_USAGE;
    }
    printf("ok %s\n", argv[i]);
  }
  return CLI_OK;
}

static bool want_markdown(int argc, char **argv, const char *name, int *rc) {
  *rc = -1;
  if (argc == 1)
    return false;
  if (argc == 2 && strcmp(argv[1], "--markdown") == 0)
    return true;
  if (argc == 2 && strcmp(argv[1], "--help") == 0) {
    printf("usage: tripgen %s [--markdown]\n", name);
    *rc = CLI_OK;
    return false;
  }
  fprintf(stderr, "usage: tripgen %s [--markdown]\n", name);
  *rc = CLI_USAGE;
  return false;
}

int cli_limits(int argc, char **argv) {
  int rc;
  bool md = want_markdown(argc, argv, "limits", &rc);
  if (rc >= 0)
    return rc;
  size_t n;
  const struct tg_limit *l = tg_limits_table(&n);
  if (md)
    printf("| limit | value | unit | bounds |\n|---|---|---|---|\n");
  for (size_t i = 0; i < n; i++) {
    if (md)
      printf("| `%s` | %" PRId64 " | %s | %s |\n", l[i].name, l[i].value, l[i].unit,
             l[i].applies);
    else
      printf("%-22s %10" PRId64 " %-8s %s\n", l[i].name, l[i].value, l[i].unit, l[i].applies);
  }
  return CLI_OK;
}

int cli_errors(int argc, char **argv) {
  int rc;
  bool md = want_markdown(argc, argv, "errors", &rc);
  if (rc >= 0)
    return rc;
  size_t n;
  const struct tg_code_info *e = tg_code_table(&n);
  if (md)
    printf("| code | EAS lastCode | retryable by default | meaning |\n|---|---|---|---|\n");
  for (size_t i = 0; i < n; i++) {
    if (md)
      printf("| `%s` | %d | %s | %s |\n", e[i].name, e[i].eas_last_code,
             e[i].retryable ? "yes" : "no", e[i].meaning);
    else
      printf("%-18s %3d %-3s %s\n", e[i].name, e[i].eas_last_code, e[i].retryable ? "yes" : "no",
             e[i].meaning);
  }
  return CLI_OK;
}
