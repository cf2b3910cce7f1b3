/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_tables.c - the error tables (proto/err.c) and the limits table
 * (proto/limits.c): one row per code in order, unique snake_case names,
 * sane EAS lastCodes and retry defaults, and limits equal to their constants.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "tg_err.h"
#include "tg_limits.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>

/* [a-z][a-z0-9]*(_[a-z0-9]+)* */
static bool snake_case(const char *s) {
  if (!s || !(*s >= 'a' && *s <= 'z'))
    return false;
  for (const char *p = s; *p; p++) {
    bool lower = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
    if (lower)
      continue;
    if (*p == '_' && p[1] && p[1] != '_')
      continue;
    return false;
  }
  return true;
}

/* what DESIGN.md's error table says about each wire code */
static const struct {
  tg_code_t code;
  const char *name;
  int last_code;
  bool retryable;
} want_codes[] = {
  {TG_CODE_INVALID_INPUT, "invalid_input", 400, false},
  {TG_CODE_ENV_MISMATCH, "env_mismatch", 403, false},
  {TG_CODE_PROMPT_FAILED, "prompt_failed", 502, true},
  {TG_CODE_CONTENT_REJECTED, "content_rejected", 422, false},
  {TG_CODE_DIFFUSION_FAILED, "diffusion_failed", 502, true},
  {TG_CODE_POSTPROC_FAILED, "postproc_failed", 500, false},
  {TG_CODE_UPLOAD_FAILED, "upload_failed", 503, true},
  {TG_CODE_DEADLINE_EXCEEDED, "deadline_exceeded", 408, false},
  {TG_CODE_INTERNAL, "internal", 500, true},
};

static void test_code_table(void) {
  size_t n = 0;
  const struct tg_code_info *t = tg_code_table(&n);
  CHECK(t != NULL);
  CHECK(n == TG_CODE__COUNT);
  CHECK(sizeof(want_codes) / sizeof(want_codes[0]) == TG_CODE__COUNT);
  CHECK(tg_code_table(NULL) == t);
  for (size_t i = 0; i < n; i++) {
    CHECK_MSG((size_t)t[i].code == i, "row %zu holds code %d", i, (int)t[i].code);
    CHECK_MSG(snake_case(t[i].name), "row %zu: name \"%s\" is not lowercase_snake", i,
              t[i].name ? t[i].name : "(null)");
    CHECK_MSG(t[i].meaning && *t[i].meaning, "row %zu (%s): no meaning", i, t[i].name);
    CHECK_MSG(t[i].eas_last_code >= 400 && t[i].eas_last_code <= 599,
              "row %zu (%s): lastCode %d is not an HTTP error status", i, t[i].name,
              t[i].eas_last_code);
    for (size_t j = 0; j < i; j++)
      CHECK_MSG(strcmp(t[i].name, t[j].name) != 0, "rows %zu and %zu share the name \"%s\"", j,
                i, t[i].name);
    /* lookups by code and by name agree with the table */
    CHECK(tg_code_info(t[i].code) == &t[i]);
    tg_code_t c = TG_CODE__COUNT;
    CHECK_MSG(tg_code_from_name(t[i].name, &c) && c == t[i].code,
              "tg_code_from_name(\"%s\") does not give back code %zu", t[i].name, i);
  }
  for (size_t i = 0; i < sizeof(want_codes) / sizeof(want_codes[0]) && i < n; i++) {
    const struct tg_code_info *r = tg_code_info(want_codes[i].code);
    CHECK_STREQ(r->name, want_codes[i].name);
    CHECK_MSG(r->eas_last_code == want_codes[i].last_code, "%s: lastCode %d, want %d", r->name,
              r->eas_last_code, want_codes[i].last_code);
    CHECK_MSG(r->retryable == want_codes[i].retryable, "%s: retryable %d, want %d", r->name,
              r->retryable, want_codes[i].retryable);
  }
  /* spelled out, as the brief and DESIGN.md put them */
  CHECK(!tg_code_info(TG_CODE_INVALID_INPUT)->retryable);
  CHECK(!tg_code_info(TG_CODE_ENV_MISMATCH)->retryable);
  CHECK(!tg_code_info(TG_CODE_CONTENT_REJECTED)->retryable);
  CHECK(!tg_code_info(TG_CODE_DEADLINE_EXCEEDED)->retryable);
  CHECK(tg_code_info(TG_CODE_PROMPT_FAILED)->retryable);
  CHECK(tg_code_info(TG_CODE_DIFFUSION_FAILED)->retryable);
  CHECK(tg_code_info(TG_CODE_UPLOAD_FAILED)->retryable);

  /* unknown names and out-of-range codes */
  tg_code_t c = TG_CODE_ENV_MISMATCH;
  CHECK(!tg_code_from_name("no_such_code", &c));
  CHECK(!tg_code_from_name("", &c));
  CHECK(!tg_code_from_name("INVALID_INPUT", &c));
  CHECK(!tg_code_from_name("invalid_input ", &c));
  CHECK(!tg_code_from_name(NULL, &c));
  CHECK(c == TG_CODE_ENV_MISMATCH); /* untouched on failure */
  CHECK(tg_code_info(TG_CODE__COUNT) == tg_code_info(TG_CODE_INTERNAL));
  CHECK(tg_code_info((tg_code_t)-1) == tg_code_info(TG_CODE_INTERNAL));
  CHECK(tg_code_info((tg_code_t)1000) == tg_code_info(TG_CODE_INTERNAL));
}

static void test_err2str(void) {
  static const tg_err_t all[] = {TG_OK,           TG_ERR_INVAL,      TG_ERR_NOMEM,
                                 TG_ERR_TRANSPORT, TG_ERR_TIMEOUT,    TG_ERR_BAD_MSG,
                                 TG_ERR_QUEUE_FULL, TG_ERR_NOT_FOUND, TG_ERR_IO,
                                 TG_ERR_TOO_LARGE};
  const size_t n = sizeof(all) / sizeof(all[0]);
  for (size_t i = 0; i < n; i++) {
    const char *s = tg_err2str(all[i]);
    CHECK_MSG(s != NULL && *s, "tg_err2str(%d) is NULL or empty", (int)all[i]);
    for (size_t j = 0; s && j < i; j++)
      CHECK_MSG(strcmp(s, tg_err2str(all[j])) != 0, "tg_err2str(%d) == tg_err2str(%d) == \"%s\"",
                (int)all[i], (int)all[j], s);
  }
  /* every value from the last one up to OK is named (catches a new code left out) */
  for (int e = TG_ERR_TOO_LARGE; e <= TG_OK; e++)
    CHECK_MSG(strcmp(tg_err2str((tg_err_t)e), tg_err2str((tg_err_t)-999)) != 0,
              "tg_err2str(%d) falls back to the unknown text", e);
  CHECK(tg_err2str((tg_err_t)-999) != NULL);
  CHECK(tg_err2str((tg_err_t)42) != NULL);

  CHECK(!tg_err_retryable(TG_OK));
  CHECK(!tg_err_retryable(TG_ERR_INVAL));
  CHECK(!tg_err_retryable(TG_ERR_BAD_MSG));
  CHECK(!tg_err_retryable(TG_ERR_TOO_LARGE));
  CHECK(!tg_err_retryable(TG_ERR_NOT_FOUND));
  CHECK(tg_err_retryable(TG_ERR_TRANSPORT));
  CHECK(tg_err_retryable(TG_ERR_TIMEOUT));
  CHECK(tg_err_retryable(TG_ERR_QUEUE_FULL));
  CHECK(tg_err_retryable(TG_ERR_IO));
  CHECK(!tg_err_retryable((tg_err_t)-999));
}

/* every limit constant, under the name its row must carry */
static const struct {
  const char *name;
  int64_t value;
} want_limits[] = {
  {"payload_bytes", TG_MAX_PAYLOAD_BYTES},
  {"result_bytes", TG_MAX_RESULT_BYTES},
  {"json_depth", TG_MAX_JSON_DEPTH},
  {"id_chars", TG_MAX_ID_CHARS},
  {"request_id_chars", TG_MAX_REQUEST_ID_CHARS},
  {"env_chars", TG_MAX_ENV_CHARS},
  {"tag_chars", TG_MAX_TAG_CHARS},
  {"text_chars", TG_MAX_TEXT_CHARS},
  {"address_chars", TG_MAX_ADDRESS_CHARS},
  {"name_chars", TG_MAX_NAME_CHARS},
  {"short_chars", TG_MAX_SHORT_CHARS},
  {"locale_chars", TG_MAX_LOCALE_CHARS},
  {"via_cities", TG_MAX_VIA_CITIES},
  {"variants", TG_MAX_VARIANTS},
  {"variant_chars", TG_MAX_VARIANT_CHARS},
  {"image_side_min", TG_MIN_IMAGE_SIDE},
  {"image_side_max", TG_MAX_IMAGE_SIDE},
  {"image_pixels", TG_MAX_IMAGE_PIXELS},
  {"distance_km", TG_MAX_DISTANCE_KM},
  {"driving_seconds", TG_MAX_DRIVING_SECONDS},
  {"attempt", TG_MAX_ATTEMPT},
  {"generation", TG_MAX_GENERATION},
  {"queue_length_max", TG_MAX_QUEUE_LENGTH},
  {"queue_length_default", TG_DEFAULT_QUEUE_LENGTH},
  {"error_message_chars", TG_MAX_ERROR_MESSAGE_CHARS},
  {"prompt_chars", TG_MAX_PROMPT_CHARS},
};

static void test_limits(void) {
  size_t n = 0;
  const struct tg_limit *t = tg_limits_table(&n);
  const size_t nwant = sizeof(want_limits) / sizeof(want_limits[0]);
  CHECK(t != NULL);
  CHECK_MSG(n == nwant, "the table has %zu rows, the constants are %zu", n, nwant);
  for (size_t i = 0; i < n; i++) {
    CHECK_MSG(snake_case(t[i].name), "row %zu: name \"%s\" is not lowercase_snake", i,
              t[i].name ? t[i].name : "(null)");
    CHECK_MSG(t[i].value > 0, "%s: value %" PRId64 " is not positive", t[i].name, t[i].value);
    CHECK_MSG(t[i].unit && *t[i].unit, "%s: no unit", t[i].name);
    CHECK_MSG(t[i].applies && *t[i].applies, "%s: no description", t[i].name);
    for (size_t j = 0; j < i; j++)
      CHECK_MSG(strcmp(t[i].name, t[j].name) != 0, "rows %zu and %zu share the name \"%s\"", j,
                i, t[i].name);
    bool found = false;
    for (size_t k = 0; k < nwant; k++)
      if (strcmp(t[i].name, want_limits[k].name) == 0) {
        found = true;
        CHECK_MSG(t[i].value == want_limits[k].value, "%s: table says %" PRId64
                  ", the constant is %" PRId64, t[i].name, t[i].value, want_limits[k].value);
      }
    CHECK_MSG(found, "row \"%s\" matches no constant this test knows", t[i].name);
  }
  for (size_t k = 0; k < nwant; k++) {
    bool found = false;
    for (size_t i = 0; i < n; i++)
      found |= strcmp(t[i].name, want_limits[k].name) == 0;
    CHECK_MSG(found, "constant \"%s\" has no row in the table", want_limits[k].name);
  }
  /* the bounds agree with each other */
  CHECK(TG_MIN_IMAGE_SIDE < TG_MAX_IMAGE_SIDE);
  CHECK((int64_t)TG_MAX_IMAGE_SIDE * TG_MAX_IMAGE_SIDE <= TG_MAX_IMAGE_PIXELS);
  CHECK(TG_DEFAULT_QUEUE_LENGTH <= TG_MAX_QUEUE_LENGTH);
  CHECK(TG_MAX_REQUEST_ID_CHARS <= TG_MAX_ID_CHARS);
  CHECK(TG_MAX_PAYLOAD_BYTES <= TG_MAX_RESULT_BYTES);
  CHECK(TG_MAX_VARIANTS >= 1);
}

/**
 * main() - run the table tests
 *
 * Return: 0 when every check passed, 1 otherwise.
 */
int main(void) {
  test_code_table();
  test_err2str();
  test_limits();
  assert(check_count > 0);
  return check_done("test_tables");
}
