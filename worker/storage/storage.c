/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.c - finding a storage backend by name, and the guard every key
 * passes before any backend sees it: a key must lie under its environment's
 * prefix and be exactly what tg_object_key() makes of valid parts, so no
 * hostile request_id, variant or trip field can move an object into another
 * environment's prefix or outside the store. The guard names what is wrong
 * but never echoes the key, which may be hostile.
 */
#include "storage.h"

#include "tg_json.h"
#include "tg_limits.h"
#include "tg_time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* every backend built in, NULL-terminated */
static const struct tg_storage_ops *const backends[] = {
  &tg_storage_file,
  &tg_storage_oss,
  &tg_storage_s3,
  NULL,
};

const struct tg_storage_ops *tg_storage_find(const char *name) {
  TG_BACKEND_FIND(backends, name);
}

/* ---- the key guard ----------------------------------------------------- */

/* the segments of a key: env, yyyy, mm, dd, request_id, leaf */
#define KEY_SEGMENTS 6

/* true when @s is exactly @len ASCII digits */
static bool digits(const char *s, size_t len) {
  if (strlen(s) != len)
    return false;
  for (size_t i = 0; i < len; i++)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

__attribute__((format(printf, 3, 4)))
static bool refuse(char *why, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, n, fmt, ap);
  va_end(ap);
  return false;
}

bool tg_storage_key_ok(const char *env, const char *key, char *why, size_t n) {
  char buf[TG_STORAGE_KEY_MAX + 1], again[TG_STORAGE_KEY_MAX + 1], inner[128];
  if (!env || !*env || strlen(env) > TG_MAX_ENV_CHARS || !tg_charset_ok(env, TG_CS_ENV))
    return refuse(why, n, "env: not a valid environment name");
  if (!key || !*key)
    return refuse(why, n, "empty");
  size_t len = strnlen(key, TG_STORAGE_KEY_MAX + 1);
  if (len > TG_STORAGE_KEY_MAX)
    return refuse(why, n, "longer than %d bytes", TG_STORAGE_KEY_MAX);
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    if (*p < 0x20 || *p == 0x7f)
      return refuse(why, n, "contains a control character");
    if (*p >= 0x80)
      return refuse(why, n, "contains a non-ASCII byte");
    if (*p == '\\')
      return refuse(why, n, "contains a backslash");
  }
  if (key[0] == '/')
    return refuse(why, n, "starts with \"/\"");
  if (strstr(key, ".."))
    return refuse(why, n, "contains \"..\"");
  if (strstr(key, "//"))
    return refuse(why, n, "contains \"//\"");
  if (strstr(key, "./"))
    return refuse(why, n, "contains \"./\"");
  size_t el = strlen(env);
  if (strncmp(key, env, el) != 0 || key[el] != '/')
    return refuse(why, n, "outside the prefix \"%s/\" of this environment", env);

  /* the shape: exactly what tg_object_key() makes of its own parts */
  memcpy(buf, key, len + 1);
  char *seg[KEY_SEGMENTS], *save = NULL, *s = strtok_r(buf, "/", &save);
  size_t k = 0;
  for (; s && k < KEY_SEGMENTS; s = strtok_r(NULL, "/", &save))
    seg[k++] = s;
  if (k != KEY_SEGMENTS || s)
    return refuse(why, n, "not of the form {env}/{yyyy}/{mm}/{dd}/{request_id}/{variant}.{ext}");
  if (!digits(seg[1], 4) || !digits(seg[2], 2) || !digits(seg[3], 2))
    return refuse(why, n, "the date is not {yyyy}/{mm}/{dd}");
  char day[32];
  int64_t ms = 0;
  const char *bad = NULL;
  snprintf(day, sizeof(day), "%s-%s-%sT00:00:00Z", seg[1], seg[2], seg[3]);
  if (!tg_time_parse(day, &ms, &bad))
    return refuse(why, n, "the date is not a calendar date");
  char *dot = strrchr(seg[5], '.');
  if (!dot)
    return refuse(why, n, "the last segment is not {variant}.{ext}");
  *dot = '\0';
  if (!tg_object_key(seg[0], ms, seg[4], seg[5], dot + 1, again, sizeof(again), inner,
                     sizeof(inner)))
    return refuse(why, n, "%s", inner);
  if (strcmp(again, key) != 0)
    return refuse(why, n, "not a key tg_object_key() would make");
  return true;
}

void tg_storage_key_request_id(const char *key, char *out, size_t n) {
  const char *p = key;
  for (int i = 0; i < 4 && p; i++) /* {env}/{yyyy}/{mm}/{dd}/ */
    p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL;
  size_t len = p ? strcspn(p, "/") : 0;
  if (!p || !len || !p[len] || len >= n) {
    snprintf(out, n, "-");
    return;
  }
  memcpy(out, p, len);
  out[len] = '\0';
}
