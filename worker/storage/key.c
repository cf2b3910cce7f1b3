/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key.c - object keys: "{env}/{yyyy}/{mm}/{dd}/{request_id}/{variant}.{ext}",
 * a pure function of the job (the date is enqueued_at's UTC date, never the
 * processing time), so a redelivered job overwrites the same objects. Every
 * part is checked against a narrow character class before it is used, so a
 * key never holds a separator, a dot segment or a control character. A
 * refusal names the part but does not echo its value, which may be hostile.
 */
#include "storage.h"

#include "tg_json.h"
#include "tg_limits.h"
#include "tg_time.h"

#include <stdio.h>
#include <string.h>

/* 9999-12-31T23:59:59.999Z: the last instant with a four-digit year */
#define KEY_MAX_MS INT64_C(253402300799999)

/* extensions a stored object may have, NULL-terminated */
static const char *const exts[] = {"jpg", "png", "webp", NULL};

static bool part_ok(const char *what, const char *s, size_t min, size_t max,
                    enum tg_charset cs, char *errstr, size_t n) {
  if (!s) {
    snprintf(errstr, n, "%s: missing", what);
    return false;
  }
  size_t len = strnlen(s, max + 1);
  if (len < min) {
    snprintf(errstr, n, "%s: empty", what);
    return false;
  }
  if (len > max) {
    snprintf(errstr, n, "%s: longer than %zu characters", what, max);
    return false;
  }
  if (!tg_charset_ok(s, cs)) {
    snprintf(errstr, n, "%s: must be %s", what, tg_charset_describe(cs));
    return false;
  }
  return true;
}

static bool ext_ok(const char *ext, char *errstr, size_t n) {
  for (size_t i = 0; ext && exts[i]; i++)
    if (strcmp(ext, exts[i]) == 0)
      return true;
  snprintf(errstr, n, "ext: must be one of jpg, png, webp");
  return false;
}

bool tg_object_key(const char *env, int64_t enqueued_at_ms, const char *request_id,
                   const char *variant, const char *ext, char *buf, size_t size, char *errstr,
                   size_t n) {
  if (buf && size)
    buf[0] = '\0';
  if (!part_ok("env", env, 1, TG_MAX_ENV_CHARS, TG_CS_ENV, errstr, n) ||
      !part_ok("request_id", request_id, 1, TG_MAX_REQUEST_ID_CHARS, TG_CS_REQUEST_ID, errstr,
               n) ||
      !part_ok("variant", variant, 1, TG_MAX_VARIANT_CHARS, TG_CS_VARIANT, errstr, n) ||
      !ext_ok(ext, errstr, n))
    return false;
  if (enqueued_at_ms < 0 || enqueued_at_ms > KEY_MAX_MS) {
    snprintf(errstr, n, "enqueued_at: must be between 1970 and 9999");
    return false;
  }
  int y, m, d;
  tg_time_utc_date(enqueued_at_ms, &y, &m, &d);
  int len = buf ? snprintf(buf, size, "%s/%04d/%02d/%02d/%s/%s.%s", env, y, m, d, request_id,
                           variant, ext)
                : -1;
  if (len < 0 || (size_t)len >= size) {
    if (buf && size)
      buf[0] = '\0';
    snprintf(errstr, n, "key: does not fit in %zu bytes", size);
    return false;
  }
  return true;
}
