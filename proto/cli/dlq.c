/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dlq.c - `tripgen dlq`: the dead letters of an env. `list` and `show`
 * read them; `replay` re-queues one as a new generation under the same
 * request_id (DESIGN.md, "Dead-letter replay"); `purge` deletes them.
 */
#include "cli.h"
#include "tg_json.h"
#include "tg_time.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DLQ_PAGE 1000          /* dead letters read per round trip */
#define DLQ_LIST_DEFAULT 100
#define DLQ_LIST_MAX 10000

static const char dlq_usage[] =
    "usage: tripgen dlq SUBCOMMAND [--env E] [--redis URL] [ARGS]\n"
    "\n"
    "The env's dead letters: jobs that exhausted their attempts or deliveries.\n"
    "  list [--from DLQ_INDEX] [--limit N] [--json]   one line per dead letter\n"
    "  show DLQ_INDEX|REQUEST_ID                       one dead letter as JSON\n"
    "  replay DLQ_INDEX... | --all                     re-queue as a new generation\n"
    "  purge DLQ_INDEX... | --all --yes                delete\n"
    "Run 'tripgen dlq SUBCOMMAND --help' for a subcommand's own help.\n";

static const char list_usage[] =
    "usage: tripgen dlq list [--env E] [--redis URL] [--from DLQ_INDEX] [--limit N] [--json]\n"
    "\n"
    "Prints the env's dead letters, oldest first, one per line:\n"
    "  DLQ_INDEX REQUEST_ID GENERATION DELIVERIES DEAD_AT CODE MESSAGE\n"
    "DEAD_AT is UTC (ISO 8601); CODE and MESSAGE are the last error of the failed result\n"
    "('-' when the result cannot be read).\n"
    "  --from DLQ_INDEX  start at this dead-letter index (default: the oldest)\n"
    "  --limit N         print at most N (default 100, at most 10000)\n"
    "  --json            one JSON object per line with every field; job and result\n"
    "                    embedded as JSON (as strings when they are not valid JSON)\n";

static const char show_usage[] =
    "usage: tripgen dlq show [--env E] [--redis URL] DLQ_INDEX|REQUEST_ID\n"
    "\n"
    "Prints one dead letter as a JSON document: dlq_index, index (its input index),\n"
    "request_id, generation, deliveries, dead_at, dead_at_ms, job and result. A\n"
    "REQUEST_ID (anything that is not all digits) finds the newest dead letter of that\n"
    "request. Exit 1 when there is none.\n";

static const char replay_usage[] =
    "usage: tripgen dlq replay [--env E] [--redis URL] DLQ_INDEX... | --all\n"
    "\n"
    "Moves each dead letter back to the input queue as a new generation of the same\n"
    "request_id (attempt 1; a deadline already passed is dropped), so the sink gets a\n"
    "new result for the request and 'tripgen get' returns the latest generation. Prints\n"
    "'REQUEST_ID GENERATION INDEX' per replayed job (INDEX: its new input index).\n"
    "  --all   every dead letter present when the command starts\n"
    "Each dead letter is tried even when an earlier one failed; the exit code is the\n"
    "worst: 1 when one was not found, 2 when one's job cannot be replayed (not a valid\n"
    "job: it stays in the dead letters, 'tripgen dlq show' it and purge it), 3 on a\n"
    "queue error or a full input queue (the rest are not tried).\n";

static const char purge_usage[] =
    "usage: tripgen dlq purge [--env E] [--redis URL] DLQ_INDEX... | --all --yes\n"
    "\n"
    "Deletes the named dead letters, or with --all --yes every one of the env.\n"
    "Prints 'purged=N'. Exit 1 when a named one was not found (the others still go).\n"
    "  --all   every dead letter of the env (refused without --yes)\n"
    "  --yes   confirm --all\n";

/* A dead-letter index: all digits, > 0, no overflow. */
static bool parse_dlq_index(const char *s, uint64_t *out) {
  if (!*s || strspn(s, "0123456789") != strlen(s))
    return false;
  errno = 0;
  *out = strtoull(s, NULL, 10);
  return errno == 0 && *out > 0;
}

static bool all_digits(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

/* Options every subcommand takes, then its own. Return: the letter of one
 * of the command's own options, -1 at the end, or 0 when the command ends
 * here (--help, a usage error) with *rc. */
static int next_opt(int argc, char **argv, struct cli_common *common, const char *usage,
                    const char *shortopts, const struct option *longopts, int *rc) {
  for (;;) {
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    switch (c) {
    case 'e': common->env = optarg; break;
    case 'r': common->redis_url = optarg; break;
    case 'h': fputs(usage, stdout); *rc = CLI_OK; return 0;
    case '?': fputs(usage, stderr); *rc = CLI_USAGE; return 0;
    default: return c;
    }
  }
}

/* A JSON string of arbitrary bytes: invalid UTF-8 bytes become '?'. */
static json_t *bytes_string(const char *s) {
  json_t *v = json_string(s);
  if (v)
    return v;
  char *copy = strdup(s);
  if (!copy)
    return NULL;
  for (char *c = copy; *c; c++)
    if ((unsigned char)*c >= 0x80)
      *c = '?';
  v = json_string(copy);
  free(copy);
  return v;
}

/* The stored JSON text as a value: parsed when it is JSON, else a string. */
static json_t *embedded(const char *text) {
  json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
  return v ? v : bytes_string(text);
}

static json_t *entry_json(const struct tg_dlq_entry *e) {
  char at[40];
  json_t *o = json_object();
  if (!o)
    return NULL;
  json_object_set_new(o, "dlq_index", json_integer((json_int_t)e->dlq_index));
  json_object_set_new(o, "index", json_integer((json_int_t)e->index));
  json_object_set_new(o, "request_id", bytes_string(e->request_id));
  json_object_set_new(o, "generation", json_integer(e->generation));
  json_object_set_new(o, "deliveries", json_integer(e->deliveries));
  json_object_set_new(o, "dead_at",
                      e->dead_at_ms > 0 ? json_string(tg_time_format_utc(e->dead_at_ms, at,
                                                                         sizeof(at)))
                                        : json_null());
  json_object_set_new(o, "dead_at_ms", json_integer(e->dead_at_ms));
  json_object_set_new(o, "job", embedded(e->job));
  json_object_set_new(o, "result", embedded(e->result));
  return o;
}

/* Print an entry as JSON (pretty: indented); false when out of memory. */
static bool print_json(const struct tg_dlq_entry *e, bool pretty) {
  json_t *o = entry_json(e);
  char *s = o ? json_dumps(o, pretty ? JSON_INDENT(2) : JSON_COMPACT) : NULL;
  json_decref(o);
  if (!s)
    return false;
  printf("%s\n", s);
  free(s);
  return true;
}

/* One line of the text listing; code and message from the result's error. */
static void print_line(const struct tg_dlq_entry *e) {
  char at[40] = "-";
  if (e->dead_at_ms > 0)
    tg_time_format_utc(e->dead_at_ms, at, sizeof(at));
  json_t *r = json_loads(e->result, 0, NULL);
  json_t *err = json_is_object(r) ? json_object_get(r, "error") : NULL;
  const char *code = json_string_value(json_object_get(err, "code"));
  const char *msg = json_string_value(json_object_get(err, "message"));
  printf("%" PRIu64 " %s %" PRId64 " %" PRId64 " %s %s ", e->dlq_index,
         *e->request_id ? e->request_id : "-", e->generation, e->deliveries, at,
         code && *code ? code : "-");
  if (!msg || !*msg)
    msg = "-";
  for (const char *c = msg; *c; c++) /* one line per dead letter */
    putchar((unsigned char)*c < 0x20 || *c == 0x7f ? ' ' : *c);
  putchar('\n');
  json_decref(r);
}

static int list_failed(const char *sub, const char *errstr) {
  fprintf(stderr, "tripgen dlq %s: %s\n", sub, errstr);
  return CLI_FAILED;
}

static int dlq_list(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  uint64_t from = 0, limit = DLQ_LIST_DEFAULT;
  bool as_json = false;
  static const struct option opts[] = {
    {"env", required_argument, 0, 'e'},   {"redis", required_argument, 0, 'r'},
    {"from", required_argument, 0, 'f'},  {"limit", required_argument, 0, 'l'},
    {"json", no_argument, 0, 'j'},        {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};
  optind = 0;
  int c, rc = CLI_OK;
  while ((c = next_opt(argc, argv, &common, list_usage, "+e:r:hf:l:j", opts, &rc)) != -1) {
    if (c == 0)
      return rc;
    switch (c) {
    case 'j': as_json = true; break;
    case 'f':
      errno = 0;
      from = strtoull(optarg, NULL, 10);
      if (!all_digits(optarg) || errno) {
        fprintf(stderr, "tripgen dlq list: --from needs a non-negative integer\n");
        return CLI_USAGE;
      }
      break;
    case 'l':
      errno = 0;
      limit = strtoull(optarg, NULL, 10);
      if (!all_digits(optarg) || errno || limit < 1 || limit > DLQ_LIST_MAX) {
        fprintf(stderr, "tripgen dlq list: --limit must be 1-%d\n", DLQ_LIST_MAX);
        return CLI_USAGE;
      }
      break;
    default: fputs(list_usage, stderr); return CLI_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "tripgen dlq list: unexpected argument '%s'\n\n%s", argv[optind],
            list_usage);
    return CLI_USAGE;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t)
    return CLI_FAILED;
  char errstr[512];
  for (uint64_t left = limit; left > 0 && rc == CLI_OK;) {
    struct tg_dlq_entry *e;
    int ne;
    int want = left < DLQ_PAGE ? (int)left : DLQ_PAGE;
    if (tg_transport_dlq_list(t, from, want, &e, &ne, errstr, sizeof(errstr)) != TG_OK) {
      rc = list_failed("list", errstr);
      break;
    }
    for (int i = 0; i < ne && rc == CLI_OK; i++) {
      if (!as_json)
        print_line(&e[i]);
      else if (!print_json(&e[i], false))
        rc = list_failed("list", "out of memory");
      from = e[i].dlq_index + 1;
    }
    tg_dlq_entries_free(e, ne);
    left -= (uint64_t)ne;
    if (ne < want)
      break;
  }
  tg_transport_destroy(t);
  return rc;
}

/* Find the dead letter with this index, or the newest of this request id.
 * Return: CLI_OK (*found filled, its strings owned), CLI_NOT_FOUND or
 * CLI_FAILED (printed). */
static int find_entry(tg_transport_t *t, uint64_t index, const char *request_id,
                      struct tg_dlq_entry *found) {
  char errstr[512];
  bool have = false;
  uint64_t from = index;
  for (;;) {
    struct tg_dlq_entry *e;
    int ne;
    int want = request_id ? DLQ_PAGE : 1;
    if (tg_transport_dlq_list(t, from, want, &e, &ne, errstr, sizeof(errstr)) != TG_OK) {
      if (have) {
        free(found->job);
        free(found->result);
      }
      return list_failed("show", errstr);
    }
    for (int i = 0; i < ne; i++) {
      bool match = request_id ? strcmp(e[i].request_id, request_id) == 0
                              : e[i].dlq_index == index;
      if (match) { /* later ones are newer: keep the last */
        if (have) {
          free(found->job);
          free(found->result);
        }
        *found = e[i];
        e[i].job = e[i].result = NULL;
        have = true;
      }
      from = e[i].dlq_index + 1;
    }
    tg_dlq_entries_free(e, ne);
    if (!request_id || ne < want)
      break;
  }
  return have ? CLI_OK : CLI_NOT_FOUND;
}

static int dlq_show(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  static const struct option opts[] = {{"env", required_argument, 0, 'e'},
                                       {"redis", required_argument, 0, 'r'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 0;
  int c, rc = CLI_OK;
  while ((c = next_opt(argc, argv, &common, show_usage, "+e:r:h", opts, &rc)) != -1) {
    if (c == 0)
      return rc;
    fputs(show_usage, stderr);
    return CLI_USAGE;
  }
  if (argc - optind != 1) {
    fprintf(stderr, "tripgen dlq show: name exactly one DLQ_INDEX or REQUEST_ID\n\n%s",
            show_usage);
    return CLI_USAGE;
  }
  const char *arg = argv[optind];
  uint64_t index = 0;
  const char *request_id = NULL;
  if (all_digits(arg)) {
    if (!parse_dlq_index(arg, &index)) {
      fprintf(stderr, "tripgen dlq show: '%s': a DLQ_INDEX is a positive integer\n", arg);
      return CLI_USAGE;
    }
  } else if (strlen(arg) > TG_MAX_REQUEST_ID_CHARS || !tg_charset_ok(arg, TG_CS_REQUEST_ID)) {
    fprintf(stderr, "tripgen dlq show: '%s' is neither a DLQ_INDEX nor a REQUEST_ID (1-%d of "
                    "%s)\n", arg, TG_MAX_REQUEST_ID_CHARS,
            tg_charset_describe(TG_CS_REQUEST_ID));
    return CLI_USAGE;
  } else {
    request_id = arg;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t)
    return CLI_FAILED;
  struct tg_dlq_entry e;
  rc = find_entry(t, index, request_id, &e);
  tg_transport_destroy(t);
  if (rc == CLI_NOT_FOUND) {
    if (request_id)
      fprintf(stderr, "tripgen dlq show: no dead letter of request %s in env %s\n", request_id,
              common.env);
    else
      fprintf(stderr, "tripgen dlq show: no dead letter %" PRIu64 " in env %s\n", index,
              common.env);
  }
  if (rc != CLI_OK)
    return rc;
  if (!print_json(&e, true))
    rc = list_failed("show", "out of memory");
  free(e.job);
  free(e.result);
  return rc;
}

/* The indexes named on the command line (already checked), or with --all
 * those of every dead letter present now. */
struct index_list {
  uint64_t *v;
  size_t n, cap;
};

static bool index_push(struct index_list *l, uint64_t x) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    uint64_t *nv = realloc(l->v, cap * sizeof(*nv));
    if (!nv)
      return false;
    l->v = nv;
    l->cap = cap;
  }
  l->v[l->n++] = x;
  return true;
}

/* Every dead letter's index, paging through the stream. */
static int collect_all(tg_transport_t *t, const char *sub, struct index_list *l) {
  char errstr[512];
  uint64_t from = 0;
  for (;;) {
    struct tg_dlq_entry *e;
    int ne;
    if (tg_transport_dlq_list(t, from, DLQ_PAGE, &e, &ne, errstr, sizeof(errstr)) != TG_OK)
      return list_failed(sub, errstr);
    bool ok = true;
    for (int i = 0; i < ne && ok; i++) {
      ok = index_push(l, e[i].dlq_index);
      from = e[i].dlq_index + 1;
    }
    tg_dlq_entries_free(e, ne);
    if (!ok)
      return list_failed(sub, "out of memory");
    if (ne < DLQ_PAGE)
      return CLI_OK;
  }
}

/* Parse "DLQ_INDEX... | --all" (and --yes for purge) into @l.
 * Return: -1 to go on, else the exit code (help, usage error). */
static int parse_targets(int argc, char **argv, const char *sub, const char *usage,
                         struct cli_common *common, bool *all, bool *yes,
                         struct index_list *l) {
  static const struct option opts[] = {
    {"env", required_argument, 0, 'e'}, {"redis", required_argument, 0, 'r'},
    {"all", no_argument, 0, 'a'},       {"yes", no_argument, 0, 'y'},
    {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
  bool purge = strcmp(sub, "purge") == 0;
  optind = 0;
  int c, rc = CLI_OK;
  while ((c = next_opt(argc, argv, common, usage, purge ? "+e:r:hay" : "+e:r:ha", opts, &rc)) !=
         -1) {
    if (c == 0)
      return rc;
    if (c == 'a')
      *all = true;
    else if (c == 'y' && purge)
      *yes = true;
    else {
      fputs(usage, stderr);
      return CLI_USAGE;
    }
  }
  if (*all && optind != argc) {
    fprintf(stderr, "tripgen dlq %s: name DLQ_INDEXes or --all, not both\n\n%s", sub, usage);
    return CLI_USAGE;
  }
  if (!*all && optind == argc) {
    fprintf(stderr, "tripgen dlq %s: name at least one DLQ_INDEX, or --all\n\n%s", sub, usage);
    return CLI_USAGE;
  }
  for (int i = optind; i < argc; i++) {
    uint64_t x;
    if (!parse_dlq_index(argv[i], &x)) {
      fprintf(stderr, "tripgen dlq %s: '%s': a DLQ_INDEX is a positive integer\n", sub, argv[i]);
      return CLI_USAGE;
    }
    if (!index_push(l, x)) {
      fprintf(stderr, "tripgen dlq %s: out of memory\n", sub);
      return CLI_FAILED;
    }
  }
  return -1;
}

/* The worse of two exit codes. */
static int worse(int a, int b) { return a > b ? a : b; }

static int dlq_replay(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  bool all = false, yes = false;
  struct index_list l = {0};
  int rc = parse_targets(argc, argv, "replay", replay_usage, &common, &all, &yes, &l);
  if (rc >= 0) {
    free(l.v);
    return rc;
  }
  rc = CLI_OK;
  tg_transport_t *t = cli_open(&common);
  if (!t)
    rc = CLI_FAILED;
  else if (all)
    rc = collect_all(t, "replay", &l);
  for (size_t i = 0; i < l.n && rc != CLI_FAILED; i++) {
    uint64_t index = 0;
    int64_t generation = 0;
    char request_id[TG_MAX_REQUEST_ID_CHARS + 1], errstr[512];
    tg_err_t err = tg_transport_dlq_replay(t, l.v[i], &index, &generation, request_id, errstr,
                                           sizeof(errstr));
    if (err == TG_OK) {
      printf("%s %" PRId64 " %" PRIu64 "\n", request_id, generation, index);
      fflush(stdout);
      continue;
    }
    fprintf(stderr, "tripgen dlq replay: %s\n", errstr);
    rc = worse(rc, err == TG_ERR_NOT_FOUND ? CLI_NOT_FOUND
                   : err == TG_ERR_BAD_MSG ? CLI_USAGE
                                           : CLI_FAILED);
  }
  tg_transport_destroy(t);
  free(l.v);
  return rc;
}

static int dlq_purge(int argc, char **argv) {
  struct cli_common common;
  cli_common_init(&common);
  bool all = false, yes = false;
  struct index_list l = {0};
  int rc = parse_targets(argc, argv, "purge", purge_usage, &common, &all, &yes, &l);
  if (rc >= 0) {
    free(l.v);
    return rc;
  }
  if (all && !yes) {
    fprintf(stderr, "tripgen dlq purge: --all deletes every dead letter of env %s: add --yes "
                    "to confirm\n", common.env);
    return CLI_USAGE;
  }
  tg_transport_t *t = cli_open(&common);
  if (!t) {
    free(l.v);
    return CLI_FAILED;
  }
  rc = CLI_OK;
  int64_t total = 0;
  char errstr[512];
  if (all) { /* index 0: every one */
    if (tg_transport_dlq_purge(t, 0, &total, errstr, sizeof(errstr)) != TG_OK)
      rc = list_failed("purge", errstr);
  }
  for (size_t i = 0; i < l.n && rc != CLI_FAILED; i++) {
    int64_t purged = 0;
    if (tg_transport_dlq_purge(t, l.v[i], &purged, errstr, sizeof(errstr)) != TG_OK) {
      rc = list_failed("purge", errstr);
    } else if (purged == 0) {
      fprintf(stderr, "tripgen dlq purge: no dead letter %" PRIu64 " in env %s\n", l.v[i],
              common.env);
      rc = CLI_NOT_FOUND;
    }
    total += purged;
  }
  tg_transport_destroy(t);
  free(l.v);
  printf("purged=%" PRId64 "\n", total);
  return rc;
}

int cli_dlq(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
  } subs[] = {
    {"list", dlq_list}, {"show", dlq_show}, {"replay", dlq_replay}, {"purge", dlq_purge}};
  if (argc < 2) {
    fprintf(stderr, "tripgen dlq: name a subcommand\n\n%s", dlq_usage);
    return CLI_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    fputs(dlq_usage, stdout);
    return CLI_OK;
  }
  for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
    if (strcmp(argv[1], subs[i].name) == 0)
      return subs[i].run(argc - 1, argv + 1);
  fprintf(stderr, "tripgen dlq: unknown subcommand '%s'\n\n%s", argv[1], dlq_usage);
  return CLI_USAGE;
}
