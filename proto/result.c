/* SPDX-License-Identifier: Apache-2.0 */
/*
 * result.c - building, serialising and validating results (DESIGN.md,
 * "Messages"). The rules match proto/schema/result.schema.json.
 */
#include "tg_result.h"
#include "tg_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const result_keys[] = {
  "v", "request_id", "generation", "trip_id", "env", "status", "images", "prompt",
  "prompt_source", "prompt_usage", "negative_prompt", "seed", "seed_policy", "vehicle", "attempt",
  "worker", "timings_ms", "error", NULL};
static const char *const vehicle_keys[] = {"match", "asset", NULL};
static const char *const usage_keys[] = {"model", "request_id", "input_tokens", "output_tokens",
                                         NULL};
static const char *const image_keys[] = {"variant", "url", "key", "width", "height",
                                         "format", "bytes", "sha256", NULL};
static const char *const timing_keys[] = {"queued", "prompt", "diffusion", "postproc",
                                          "upload", "total", NULL};
static const char *const error_keys[] = {"code", "stage", "message", "retryable", NULL};

tg_result_t *tg_result_new(const char *request_id, int64_t generation, const char *env) {
  tg_result_t *r = calloc(1, sizeof(*r));
  if (!r)
    return NULL;
  snprintf(r->request_id, sizeof(r->request_id), "%s", request_id ? request_id : "");
  snprintf(r->env, sizeof(r->env), "%s", env ? env : "");
  r->generation = generation;
  r->succeeded = true;
  r->attempt = 1;
  return r;
}

tg_result_t *tg_result_for_job(const tg_job_t *job) {
  tg_result_t *r = tg_result_new(job->request_id, job->generation, job->env);
  if (!r)
    return NULL;
  r->attempt = job->attempt;
  if (job->trip && !(r->trip_id = strdup(job->trip->trip_id))) {
    tg_result_destroy(r);
    return NULL;
  }
  return r;
}

/* Cut a string at a character boundary so it has at most max code points. */
static void cut_utf8(char *s, size_t max_chars) {
  size_t chars = 0;
  for (char *p = s; *p; p++) {
    if (((unsigned char)*p & 0xC0) != 0x80 && chars++ == max_chars) {
      *p = '\0';
      return;
    }
  }
}

void tg_result_fail(tg_result_t *r, tg_code_t code, const char *stage, bool retryable,
                    const char *fmt, ...) {
  char msg[TG_MAX_ERROR_MESSAGE_CHARS * 4 + 1];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  /* the message may hold a cut multi-byte sequence or invalid UTF-8 from a
   * remote peer: keep the valid prefix only */
  json_t *probe = json_string(msg);
  while (!probe && *msg) {
    msg[strlen(msg) - 1] = '\0';
    probe = json_string(msg);
  }
  json_decref(probe);
  /* control characters from a remote peer would make the result unreadable */
  for (char *c = msg; *c; c++)
    if (((unsigned char)*c < 0x20 && *c != '\t' && *c != '\n' && *c != '\r') || *c == 0x7f)
      *c = '?';
  cut_utf8(msg, TG_MAX_ERROR_MESSAGE_CHARS);
  r->succeeded = false;
  r->error.code = code;
  r->error.retryable = retryable;
  free(r->error.stage);
  free(r->error.message);
  r->error.stage = strdup(stage ? stage : "queue");
  r->error.message = strdup(msg);
}

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

char *tg_result_serialize(const tg_result_t *r) {
  json_t *images = json_array();
  for (size_t i = 0; i < r->n_images; i++) {
    const struct tg_image *im = &r->images[i];
    json_array_append_new(
        images, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:I, s:s}", "variant", im->variant,
                          "url", im->url ? im->url : "", "key", im->key ? im->key : "",
                          "width", im->width, "height", im->height, "format", im->format,
                          "bytes", (json_int_t)im->bytes, "sha256", im->sha256));
  }
  const struct tg_timings *t = &r->timings_ms;
  json_t *timings = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "queued", (json_int_t)t->queued,
                              "prompt", (json_int_t)t->prompt, "diffusion",
                              (json_int_t)t->diffusion, "postproc", (json_int_t)t->postproc,
                              "upload", (json_int_t)t->upload, "total", (json_int_t)t->total);
  json_t *error = json_null();
  if (!r->succeeded)
    error = json_pack("{s:s, s:s, s:s, s:b}", "code", tg_code_info(r->error.code)->name,
                      "stage", r->error.stage ? r->error.stage : "queue", "message",
                      r->error.message ? r->error.message : "", "retryable", r->error.retryable);
  json_t *root = json_pack(
      "{s:i, s:s, s:I, s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o, s:o}", "v",
      TG_RESULT_VERSION, "request_id", r->request_id, "generation", (json_int_t)r->generation,
      "trip_id", str_or_null(r->trip_id), "env", r->env, "status",
      r->succeeded ? "succeeded" : "failed", "images", images, "prompt", str_or_null(r->prompt),
      "prompt_source", str_or_null(r->prompt_source), "negative_prompt",
      str_or_null(r->negative_prompt), "seed", r->has_seed ? json_integer(r->seed) : json_null(),
      "attempt", (json_int_t)r->attempt, "worker", str_or_null(r->worker), "timings_ms", timings,
      "error", error);
  if (!root)
    return NULL;
  /* optional fields (absent in results of older workers) */
  if (r->has_usage) {
    const struct tg_prompt_usage *u = &r->prompt_usage;
    json_object_set_new(root, "prompt_usage",
                        json_pack("{s:s, s:o, s:I, s:I}", "model", u->model, "request_id",
                                  str_or_null(*u->request_id ? u->request_id : NULL),
                                  "input_tokens", (json_int_t)u->input_tokens, "output_tokens",
                                  (json_int_t)u->output_tokens));
  }
  if (*r->seed_policy)
    json_object_set_new(root, "seed_policy", json_string(r->seed_policy));
  if (*r->vehicle_match)
    json_object_set_new(root, "vehicle",
                        json_pack("{s:s, s:o}", "match", r->vehicle_match, "asset",
                                  str_or_null(*r->vehicle_asset ? r->vehicle_asset : NULL)));
  char *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
  json_decref(root);
  return out;
}

static const struct tg_str_rule rule_rid = {true, false, 1, TG_MAX_REQUEST_ID_CHARS,
                                            TG_CS_REQUEST_ID};
static const struct tg_str_rule rule_trip_id = {true, true, 1, TG_MAX_ID_CHARS, TG_CS_ID};
static const struct tg_str_rule rule_env = {true, false, 1, TG_MAX_ENV_CHARS, TG_CS_ENV};
static const struct tg_str_rule rule_status = {true, false, 1, 16, TG_CS_LINE};
static const struct tg_str_rule rule_prompt = {true, true, 0, TG_MAX_PROMPT_CHARS, TG_CS_ANY};
static const struct tg_str_rule rule_source = {true, true, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
static const struct tg_str_rule rule_worker = {true, true, 1, TG_MAX_ID_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_variant = {true, false, 1, TG_MAX_VARIANT_CHARS,
                                                TG_CS_VARIANT};
static const struct tg_str_rule rule_url = {true, false, 1, 2048, TG_CS_LINE};
static const struct tg_str_rule rule_format = {true, false, 1, 7, TG_CS_LINE};
static const struct tg_str_rule rule_sha = {true, false, 64, 64, TG_CS_HEX64};
static const struct tg_str_rule rule_code = {true, false, 1, 32, TG_CS_LINE};
static const struct tg_str_rule rule_stage = {true, false, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
static const struct tg_str_rule rule_msg = {true, false, 0, TG_MAX_ERROR_MESSAGE_CHARS,
                                            TG_CS_ANY};

static bool dup_str(char **dst, const char *s, char *errstr, size_t n) {
  if (!s)
    return true;
  if (!(*dst = strdup(s))) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  return true;
}

static bool parse_image(json_t *im, size_t i, struct tg_image *out, char *errstr, size_t n) {
  char p[32];
  const char *s;
  int64_t w, h, b;
  snprintf(p, sizeof(p), "images[%zu]", i);
  if (!json_is_object(im)) {
    snprintf(errstr, n, "%s: expected object, got %s", p, tg_json_type_name(im));
    return false;
  }
  if (!tg_v_keys(im, p, image_keys, errstr, n) ||
      !tg_v_str(im, p, "variant", &rule_variant, &s, errstr, n))
    return false;
  snprintf(out->variant, sizeof(out->variant), "%s", s);
  if (!tg_v_str(im, p, "url", &rule_url, &s, errstr, n) || !dup_str(&out->url, s, errstr, n) ||
      !tg_v_str(im, p, "key", &rule_url, &s, errstr, n) || !dup_str(&out->key, s, errstr, n) ||
      !tg_v_int(im, p, "width", true, 1, TG_MAX_IMAGE_SIDE, &w, errstr, n) ||
      !tg_v_int(im, p, "height", true, 1, TG_MAX_IMAGE_SIDE, &h, errstr, n) ||
      !tg_v_str(im, p, "format", &rule_format, &s, errstr, n))
    return false;
  if (strcmp(s, "jpeg") && strcmp(s, "webp") && strcmp(s, "png")) {
    snprintf(errstr, n, "%s.format: must be jpeg, webp or png", p);
    return false;
  }
  snprintf(out->format, sizeof(out->format), "%s", s);
  if (!tg_v_int(im, p, "bytes", true, 0, INT64_MAX, &b, errstr, n) ||
      !tg_v_str(im, p, "sha256", &rule_sha, &s, errstr, n))
    return false;
  snprintf(out->sha256, sizeof(out->sha256), "%s", s);
  out->width = (int)w;
  out->height = (int)h;
  out->bytes = b;
  return true;
}

static bool parse_error(json_t *e, tg_result_t *r, char *errstr, size_t n) {
  const char *s;
  if (!tg_v_keys(e, "error", error_keys, errstr, n) ||
      !tg_v_str(e, "error", "code", &rule_code, &s, errstr, n))
    return false;
  if (!tg_code_from_name(s, &r->error.code)) {
    snprintf(errstr, n, "error.code: unknown code \"%s\"", s);
    return false;
  }
  if (!tg_v_str(e, "error", "stage", &rule_stage, &s, errstr, n) ||
      !dup_str(&r->error.stage, s, errstr, n) ||
      !tg_v_str(e, "error", "message", &rule_msg, &s, errstr, n) ||
      !dup_str(&r->error.message, s, errstr, n) ||
      !tg_v_bool(e, "error", "retryable", true, &r->error.retryable, errstr, n))
    return false;
  return true;
}

/* prompt_usage, seed_policy and vehicle: optional, null allowed. */
static bool parse_optional(json_t *root, tg_result_t *r, char *errstr, size_t n) {
  static const struct tg_str_rule rule_model = {true, false, 1, TG_MAX_ID_CHARS, TG_CS_LINE};
  static const struct tg_str_rule rule_prid = {true, true, 1, TG_MAX_ID_CHARS, TG_CS_LINE};
  static const struct tg_str_rule rule_policy = {false, true, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
  json_t *usage;
  const char *s;
  if (!tg_v_child(root, "", "prompt_usage", JSON_OBJECT, false, true, &usage, errstr, n))
    return false;
  if (usage) {
    struct tg_prompt_usage *u = &r->prompt_usage;
    if (!tg_v_keys(usage, "prompt_usage", usage_keys, errstr, n) ||
        !tg_v_str(usage, "prompt_usage", "model", &rule_model, &s, errstr, n))
      return false;
    snprintf(u->model, sizeof(u->model), "%s", s);
    if (!tg_v_str(usage, "prompt_usage", "request_id", &rule_prid, &s, errstr, n))
      return false;
    snprintf(u->request_id, sizeof(u->request_id), "%s", s ? s : "");
    if (!tg_v_int(usage, "prompt_usage", "input_tokens", true, 0, INT32_MAX, &u->input_tokens,
                  errstr, n) ||
        !tg_v_int(usage, "prompt_usage", "output_tokens", true, 0, INT32_MAX, &u->output_tokens,
                  errstr, n))
      return false;
    r->has_usage = true;
  }
  if (!tg_v_str(root, "", "seed_policy", &rule_policy, &s, errstr, n))
    return false;
  snprintf(r->seed_policy, sizeof(r->seed_policy), "%s", s ? s : "");
  static const struct tg_str_rule rule_match = {true, false, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
  static const struct tg_str_rule rule_asset = {true, true, 1, TG_MAX_ID_CHARS, TG_CS_LINE};
  json_t *vehicle;
  if (!tg_v_child(root, "", "vehicle", JSON_OBJECT, false, true, &vehicle, errstr, n))
    return false;
  if (vehicle) {
    if (!tg_v_keys(vehicle, "vehicle", vehicle_keys, errstr, n) ||
        !tg_v_str(vehicle, "vehicle", "match", &rule_match, &s, errstr, n))
      return false;
    snprintf(r->vehicle_match, sizeof(r->vehicle_match), "%s", s);
    if (!tg_v_str(vehicle, "vehicle", "asset", &rule_asset, &s, errstr, n))
      return false;
    snprintf(r->vehicle_asset, sizeof(r->vehicle_asset), "%s", s ? s : "");
  }
  return true;
}

static bool parse_root(json_t *root, tg_result_t *r, char *errstr, size_t n) {
  const char *s;
  int64_t v;
  json_t *images, *timings, *error, *im;
  size_t i;
  if (!json_is_object(root)) {
    snprintf(errstr, n, "payload: expected object, got %s", tg_json_type_name(root));
    return false;
  }
  if (!tg_v_keys(root, "", result_keys, errstr, n) ||
      !tg_v_int(root, "", "v", true, TG_RESULT_VERSION, TG_RESULT_VERSION, &v, errstr, n) ||
      !tg_v_str(root, "", "request_id", &rule_rid, &s, errstr, n))
    return false;
  snprintf(r->request_id, sizeof(r->request_id), "%s", s);
  if (!tg_v_int(root, "", "generation", true, 0, TG_MAX_GENERATION, &r->generation, errstr, n) ||
      !tg_v_str(root, "", "trip_id", &rule_trip_id, &s, errstr, n) ||
      !dup_str(&r->trip_id, s, errstr, n) ||
      !tg_v_str(root, "", "env", &rule_env, &s, errstr, n))
    return false;
  snprintf(r->env, sizeof(r->env), "%s", s);
  if (!tg_v_str(root, "", "status", &rule_status, &s, errstr, n))
    return false;
  if (strcmp(s, "succeeded") && strcmp(s, "failed")) {
    snprintf(errstr, n, "status: must be succeeded or failed");
    return false;
  }
  r->succeeded = strcmp(s, "succeeded") == 0;
  if (!tg_v_child(root, "", "images", JSON_ARRAY, true, false, &images, errstr, n))
    return false;
  if (json_array_size(images) > TG_MAX_VARIANTS) {
    snprintf(errstr, n, "images: more than %d entries", TG_MAX_VARIANTS);
    return false;
  }
  json_array_foreach(images, i, im) {
    if (!parse_image(im, i, &r->images[i], errstr, n))
      return false;
    r->n_images = i + 1;
  }
  if (!tg_v_str(root, "", "prompt", &rule_prompt, &s, errstr, n) ||
      !dup_str(&r->prompt, s, errstr, n) ||
      !tg_v_str(root, "", "prompt_source", &rule_source, &s, errstr, n) ||
      !dup_str(&r->prompt_source, s, errstr, n) ||
      !tg_v_str(root, "", "negative_prompt", &rule_prompt, &s, errstr, n) ||
      !dup_str(&r->negative_prompt, s, errstr, n))
    return false;
  if (!parse_optional(root, r, errstr, n))
    return false;
  json_t *seed = json_object_get(root, "seed");
  if (!seed) {
    snprintf(errstr, n, "seed: required field is missing");
    return false;
  }
  if (!json_is_null(seed)) {
    if (!tg_v_int(root, "", "seed", true, 0, 9007199254740991LL, &r->seed, errstr, n))
      return false;
    r->has_seed = true;
  }
  if (!tg_v_int(root, "", "attempt", true, 1, TG_MAX_ATTEMPT, &r->attempt, errstr, n) ||
      !tg_v_str(root, "", "worker", &rule_worker, &s, errstr, n) ||
      !dup_str(&r->worker, s, errstr, n) ||
      !tg_v_child(root, "", "timings_ms", JSON_OBJECT, true, false, &timings, errstr, n) ||
      !tg_v_keys(timings, "timings_ms", timing_keys, errstr, n))
    return false;
  int64_t *tv[] = {&r->timings_ms.queued, &r->timings_ms.prompt, &r->timings_ms.diffusion,
                   &r->timings_ms.postproc, &r->timings_ms.upload, &r->timings_ms.total};
  for (int k = 0; k < 6; k++)
    if (!tg_v_int(timings, "timings_ms", timing_keys[k], true, 0, INT64_MAX, tv[k], errstr, n))
      return false;
  if (!tg_v_child(root, "", "error", JSON_OBJECT, true, true, &error, errstr, n))
    return false;
  if (r->succeeded && error) {
    snprintf(errstr, n, "error: must be null when status is succeeded");
    return false;
  }
  if (!r->succeeded && !error) {
    snprintf(errstr, n, "error: required when status is failed");
    return false;
  }
  return !error || parse_error(error, r, errstr, n);
}

tg_result_t *tg_result_parse(const char *data, size_t len, char *errstr, size_t n) {
  json_t *root;
  if (!tg_json_load(data, len, TG_MAX_RESULT_BYTES, &root, errstr, n))
    return NULL;
  tg_result_t *r = tg_result_new("", 0, "");
  if (!r) {
    json_decref(root);
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  bool ok = parse_root(root, r, errstr, n);
  json_decref(root);
  if (!ok) {
    tg_result_destroy(r);
    return NULL;
  }
  return r;
}

void tg_result_destroy(tg_result_t *r) {
  if (!r)
    return;
  for (size_t i = 0; i < TG_MAX_VARIANTS; i++) {
    free(r->images[i].url);
    free(r->images[i].key);
  }
  free(r->trip_id);
  free(r->prompt);
  free(r->prompt_source);
  free(r->negative_prompt);
  free(r->worker);
  free(r->error.stage);
  free(r->error.message);
  free(r);
}
