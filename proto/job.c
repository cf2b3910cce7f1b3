/* SPDX-License-Identifier: Apache-2.0 */
/*
 * job.c - job construction, validation and serialisation (DESIGN.md,
 * "Messages"). The rules match proto/schema/job.schema.json.
 */
#include "tg_job.h"
#include "tg_json.h"
#include "tg_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char *const job_keys[] = {
  "v", "request_id", "generation", "env", "idempotency_key", "priority", "attempt",
  "enqueued_at", "deadline", "options", "trip", NULL};
static const char *const option_keys[] = {"size", "seed", "style", "variants", NULL};

static const struct tg_str_rule rule_request_id = {true, false, 1, TG_MAX_REQUEST_ID_CHARS,
                                                   TG_CS_REQUEST_ID};
static const struct tg_str_rule rule_env = {true, false, 1, TG_MAX_ENV_CHARS, TG_CS_ENV};
static const struct tg_str_rule rule_idem = {true, false, 1, TG_MAX_ID_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_time = {true, false, 1, 64, TG_CS_LINE};
static const struct tg_str_rule rule_deadline = {false, true, 1, 64, TG_CS_LINE};
static const struct tg_str_rule rule_size = {false, false, 1, 16, TG_CS_LINE};
static const struct tg_str_rule rule_style = {false, true, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
static const struct tg_str_rule rule_variant = {true, false, 1, TG_MAX_VARIANT_CHARS,
                                                TG_CS_VARIANT};

#define MAX_SEED 9007199254740991LL /* 2^53 - 1: exact in every JSON reader */

void tg_request_id_generate(char *buf) {
  uint64_t rnd = 0;
  if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
    /* no entropy source: fall back to time and address bits */
    rnd = (uint64_t)tg_mono_ms() * 0x9E3779B97F4A7C15ULL ^ (uint64_t)(uintptr_t)buf;
  }
  snprintf(buf, TG_MAX_REQUEST_ID_CHARS + 1, "%012llx-%016llx",
           (unsigned long long)tg_now_ms() & 0xFFFFFFFFFFFFULL, (unsigned long long)rnd);
}

static void default_options(struct tg_job_options *o) {
  memset(o, 0, sizeof(*o));
  o->width = TG_DEFAULT_WIDTH;
  o->height = TG_DEFAULT_HEIGHT;
  snprintf(o->variants[0], sizeof(o->variants[0]), "%s", TG_DEFAULT_VARIANT);
  o->n_variants = 1;
}

tg_job_t *tg_job_new(tg_trip_t *trip, const char *env, const char *request_id, int64_t now_ms,
                     char *errstr, size_t n) {
  if (!trip || !env || !tg_charset_ok(env, TG_CS_ENV) || strlen(env) > TG_MAX_ENV_CHARS ||
      !*env) {
    snprintf(errstr, n, "env: must be %s, at most %d characters",
             tg_charset_describe(TG_CS_ENV), TG_MAX_ENV_CHARS);
    return NULL;
  }
  if (request_id && (!*request_id || strlen(request_id) > TG_MAX_REQUEST_ID_CHARS ||
                     !tg_charset_ok(request_id, TG_CS_REQUEST_ID))) {
    snprintf(errstr, n, "request_id: must be 1-%d of %s", TG_MAX_REQUEST_ID_CHARS,
             tg_charset_describe(TG_CS_REQUEST_ID));
    return NULL;
  }
  tg_job_t *job = calloc(1, sizeof(*job));
  if (!job || !(job->idempotency_key = strdup(trip->trip_id))) {
    free(job);
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  if (request_id)
    snprintf(job->request_id, sizeof(job->request_id), "%s", request_id);
  else
    tg_request_id_generate(job->request_id);
  snprintf(job->env, sizeof(job->env), "%s", env);
  job->attempt = 1;
  job->enqueued_at_ms = now_ms;
  default_options(&job->options);
  job->trip = trip;
  return job;
}

/* 1-4 digits without a leading zero; advances *s. */
static int side_digits(const char **s) {
  const char *p = *s;
  int v = 0, nd = 0;
  if (*p < '1' || *p > '9')
    return -1;
  while (*p >= '0' && *p <= '9' && nd < 5) {
    v = v * 10 + (*p++ - '0');
    nd++;
  }
  *s = p;
  return nd <= 4 ? v : -1;
}

static bool parse_size(const char *s, int *w, int *h, char *errstr, size_t n) {
  const char *p = s;
  int a = side_digits(&p);
  int b = (a > 0 && *p == 'x') ? (p++, side_digits(&p)) : -1;
  if (a < 0 || b < 0 || *p != '\0') {
    snprintf(errstr, n, "options.size: expected WIDTHxHEIGHT such as \"768x960\"");
    return false;
  }
  if (a < TG_MIN_IMAGE_SIDE || a > TG_MAX_IMAGE_SIDE || b < TG_MIN_IMAGE_SIDE ||
      b > TG_MAX_IMAGE_SIDE) {
    snprintf(errstr, n, "options.size: each side must be %d-%d pixels", TG_MIN_IMAGE_SIDE,
             TG_MAX_IMAGE_SIDE);
    return false;
  }
  if ((int64_t)a * b > TG_MAX_IMAGE_PIXELS) {
    snprintf(errstr, n, "options.size: %d pixels exceeds the limit of %d", a * b,
             TG_MAX_IMAGE_PIXELS);
    return false;
  }
  *w = a;
  *h = b;
  return true;
}

static bool parse_options(json_t *root, tg_job_t *job, char *errstr, size_t n) {
  json_t *o, *arr, *v;
  const char *s;
  size_t i;
  struct tg_job_options *opt = &job->options;
  default_options(opt);
  if (!tg_v_child(root, "", "options", JSON_OBJECT, false, false, &o, errstr, n))
    return false;
  if (!o)
    return true;
  if (!tg_v_keys(o, "options", option_keys, errstr, n))
    return false;
  if (!tg_v_str(o, "options", "size", &rule_size, &s, errstr, n))
    return false;
  if (s && !parse_size(s, &opt->width, &opt->height, errstr, n))
    return false;
  if (json_object_get(o, "seed")) {
    if (!tg_v_int(o, "options", "seed", true, 0, MAX_SEED, &opt->seed, errstr, n))
      return false;
    opt->has_seed = true;
  }
  if (!tg_v_str(o, "options", "style", &rule_style, &s, errstr, n))
    return false;
  if (s && !(opt->style = strdup(s))) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  if (!tg_v_child(o, "options", "variants", JSON_ARRAY, false, false, &arr, errstr, n))
    return false;
  if (!arr)
    return true;
  if (json_array_size(arr) < 1 || json_array_size(arr) > TG_MAX_VARIANTS) {
    snprintf(errstr, n, "options.variants: must have 1-%d entries", TG_MAX_VARIANTS);
    return false;
  }
  json_array_foreach(arr, i, v) {
    json_t *probe = json_object();
    json_object_set(probe, "v", v);
    char inner[256];
    bool ok = tg_v_str(probe, "", "v", &rule_variant, &s, inner, sizeof(inner));
    if (ok)
      snprintf(opt->variants[i], sizeof(opt->variants[i]), "%s", s);
    json_decref(probe);
    if (!ok) {
      snprintf(errstr, n, "options.variants[%zu]%s", i, inner + 1);
      return false;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(opt->variants[j], opt->variants[i]) == 0) {
        snprintf(errstr, n, "options.variants[%zu]: duplicate variant \"%s\"", i,
                 opt->variants[i]);
        return false;
      }
  }
  opt->n_variants = json_array_size(arr);
  return true;
}

static bool parse_time(json_t *root, const char *key, const struct tg_str_rule *rule,
                       int64_t *ms, char *errstr, size_t n) {
  const char *s, *why;
  if (!tg_v_str(root, "", key, rule, &s, errstr, n))
    return false;
  if (s && !tg_time_parse(s, ms, &why)) {
    snprintf(errstr, n, "%s: %s", key, why);
    return false;
  }
  return true;
}

tg_job_t *tg_job_parse(const char *data, size_t len, char *errstr, size_t n) {
  json_t *root, *trip_json;
  const char *s;
  int64_t v = 0;
  if (!tg_json_load(data, len, TG_MAX_PAYLOAD_BYTES, &root, errstr, n))
    return NULL;
  tg_job_t *job = calloc(1, sizeof(*job));
  if (!job) {
    json_decref(root);
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  if (!json_is_object(root)) {
    snprintf(errstr, n, "payload: expected object, got %s", tg_json_type_name(root));
    goto err;
  }
  if (!tg_v_keys(root, "", job_keys, errstr, n) ||
      !tg_v_int(root, "", "v", true, TG_JOB_VERSION, TG_JOB_VERSION, &v, errstr, n) ||
      !tg_v_str(root, "", "request_id", &rule_request_id, &s, errstr, n))
    goto err;
  snprintf(job->request_id, sizeof(job->request_id), "%s", s);
  if (!tg_v_int(root, "", "generation", true, 0, TG_MAX_GENERATION, &job->generation, errstr, n) ||
      !tg_v_str(root, "", "env", &rule_env, &s, errstr, n))
    goto err;
  snprintf(job->env, sizeof(job->env), "%s", s);
  if (!tg_v_str(root, "", "idempotency_key", &rule_idem, &s, errstr, n))
    goto err;
  if (!(job->idempotency_key = strdup(s))) {
    snprintf(errstr, n, "out of memory");
    goto err;
  }
  if (!tg_v_bool(root, "", "priority", true, &job->priority, errstr, n) ||
      !tg_v_int(root, "", "attempt", true, 1, TG_MAX_ATTEMPT, &job->attempt, errstr, n) ||
      !parse_time(root, "enqueued_at", &rule_time, &job->enqueued_at_ms, errstr, n) ||
      !parse_time(root, "deadline", &rule_deadline, &job->deadline_ms, errstr, n) ||
      !parse_options(root, job, errstr, n) ||
      !tg_v_child(root, "", "trip", JSON_OBJECT, true, false, &trip_json, errstr, n))
    goto err;
  if (!(job->trip = tg_trip_from_json(trip_json, "trip", errstr, n)))
    goto err;
  json_decref(root);
  return job;
err:
  json_decref(root);
  tg_job_destroy(job);
  return NULL;
}

char *tg_job_serialize(const tg_job_t *job) {
  char enq[40], dl[40];
  json_t *variants = json_array();
  for (size_t i = 0; i < job->options.n_variants; i++)
    json_array_append_new(variants, json_string(job->options.variants[i]));
  char size[24];
  snprintf(size, sizeof(size), "%dx%d", job->options.width, job->options.height);
  json_t *opts = json_pack("{s:s, s:o}", "size", size, "variants", variants);
  if (job->options.has_seed)
    json_object_set_new(opts, "seed", json_integer(job->options.seed));
  if (job->options.style)
    json_object_set_new(opts, "style", json_string(job->options.style));
  json_t *root = json_pack(
      "{s:i, s:s, s:I, s:s, s:s, s:b, s:I, s:s, s:o, s:o, s:O}", "v", TG_JOB_VERSION,
      "request_id", job->request_id, "generation", (json_int_t)job->generation, "env", job->env,
      "idempotency_key", job->idempotency_key, "priority", job->priority, "attempt",
      (json_int_t)job->attempt, "enqueued_at",
      tg_time_format_utc(job->enqueued_at_ms, enq, sizeof(enq)), "deadline",
      job->deadline_ms ? json_string(tg_time_format_utc(job->deadline_ms, dl, sizeof(dl)))
                       : json_null(),
      "options", opts, "trip", job->trip->json);
  if (!root)
    return NULL;
  char *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
  json_decref(root);
  return out;
}

void tg_job_destroy(tg_job_t *job) {
  if (!job)
    return;
  tg_trip_destroy(job->trip);
  free(job->idempotency_key);
  free(job->options.style);
  free(job);
}
