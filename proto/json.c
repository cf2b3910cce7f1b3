/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.c - strict JSON loading (size, duplicates, UTF-8, depth) and the
 * field checks every message codec uses, each naming the field it rejects.
 */
#include "tg_json.h"
#include "tg_file.h"
#include "tg_limits.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int json_depth(const json_t *v) {
  int max = 0;
  if (json_is_object(v)) {
    const char *k;
    json_t *c;
    json_object_foreach((json_t *)v, k, c) {
      int d = json_depth(c);
      if (d > max)
        max = d;
    }
    return max + 1;
  }
  if (json_is_array(v)) {
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c) {
      int d = json_depth(c);
      if (d > max)
        max = d;
    }
    return max + 1;
  }
  return 0;
}

/* Depth of the raw text, so a deeply nested document is refused before
 * jansson recurses into it. Counts brackets outside strings. */
static int text_depth(const char *data, size_t len) {
  int depth = 0, max = 0;
  bool in_str = false;
  for (size_t i = 0; i < len; i++) {
    char c = data[i];
    if (in_str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_str = false;
      continue;
    }
    if (c == '"')
      in_str = true;
    else if (c == '{' || c == '[') {
      if (++depth > max)
        max = depth;
    } else if (c == '}' || c == ']')
      depth--;
  }
  return max;
}

bool tg_json_load(const char *data, size_t len, size_t max_bytes, json_t **out,
                  char *errstr, size_t n) {
  *out = NULL;
  if (len > max_bytes) {
    snprintf(errstr, n, "payload: %zu bytes exceeds the limit of %zu bytes", len, max_bytes);
    return false;
  }
  if (text_depth(data, len) > TG_MAX_JSON_DEPTH) {
    snprintf(errstr, n, "payload: JSON nested deeper than %d levels", TG_MAX_JSON_DEPTH);
    return false;
  }
  json_error_t je;
  json_t *v = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
  if (!v) {
    snprintf(errstr, n, "payload: invalid JSON at line %d column %d: %s", je.line, je.column,
             je.text);
    return false;
  }
  if (json_depth(v) > TG_MAX_JSON_DEPTH) { /* belt and braces */
    json_decref(v);
    snprintf(errstr, n, "payload: JSON nested deeper than %d levels", TG_MAX_JSON_DEPTH);
    return false;
  }
  *out = v;
  return true;
}

bool tg_json_load_file(const char *path, size_t max_bytes, json_t **out, char *errstr,
                       size_t n) {
  *out = NULL;
  size_t len;
  char *buf = tg_read_file(path, max_bytes, &len, errstr, n);
  bool ok = buf && tg_json_load(buf, len, max_bytes, out, errstr, n);
  free(buf);
  return ok;
}

const char *tg_json_type_name(const json_t *v) {
  if (!v)
    return "nothing";
  switch (json_typeof(v)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "number";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "unknown";
}

size_t tg_utf8_chars(const char *s) {
  size_t count = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p & 0xC0) != 0x80)
      count++;
  return count;
}

char *tg_path_join(char *buf, size_t size, const char *parent, const char *key) {
  if (parent && *parent)
    snprintf(buf, size, "%s.%s", parent, key);
  else
    snprintf(buf, size, "%s", key);
  return buf;
}

static bool all_chars(const char *s, const char *extra, bool allow_upper, bool allow_digit) {
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (c >= 'a' && c <= 'z')
      continue;
    if (allow_upper && c >= 'A' && c <= 'Z')
      continue;
    if (allow_digit && c >= '0' && c <= '9')
      continue;
    if (strchr(extra, c) && c != '\0')
      continue;
    return false;
  }
  return true;
}

static bool locale_ok(const char *s) {
  /* [A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})* */
  size_t i = 0;
  while (isalpha((unsigned char)s[i]) && s[i] < 0x7f)
    i++;
  if (i < 2 || i > 3)
    return false;
  while (s[i] == '-') {
    size_t j = ++i;
    while (s[i] && isalnum((unsigned char)s[i]) && s[i] < 0x7f)
      i++;
    if (i - j < 2 || i - j > 8)
      return false;
  }
  return s[i] == '\0';
}

bool tg_charset_ok(const char *s, enum tg_charset cs) {
  switch (cs) {
  case TG_CS_ANY:
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
      if ((*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') || *p == 0x7f)
        return false;
    return true;
  case TG_CS_LINE:
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
      if (*p < 0x20 || *p == 0x7f)
        return false;
    return true;
  case TG_CS_ID:
    if (!isalnum((unsigned char)s[0]) || (unsigned char)s[0] >= 0x7f)
      return false;
    return all_chars(s, "._:-", true, true);
  case TG_CS_REQUEST_ID:
  case TG_CS_TOKEN:
    return all_chars(s, "_-", true, true);
  case TG_CS_ENV:
    return s[0] >= 'a' && s[0] <= 'z' && all_chars(s, "-", false, true);
  case TG_CS_VARIANT:
    return s[0] >= 'a' && s[0] <= 'z' && all_chars(s, "_-", false, true);
  case TG_CS_LOCALE:
    return locale_ok(s);
  case TG_CS_HEX64:
    if (strlen(s) != 64)
      return false;
    return all_chars(s, "", false, true) &&
           strspn(s, "0123456789abcdef") == 64;
  }
  return false;
}

const char *tg_charset_describe(enum tg_charset cs) {
  switch (cs) {
  case TG_CS_ANY: return "text without control characters other than tab, newline and carriage return";
  case TG_CS_LINE: return "one line of text without control characters";
  case TG_CS_ID: return "letters, digits and . _ : - (starting with a letter or digit)";
  case TG_CS_REQUEST_ID: return "letters, digits, _ and -";
  case TG_CS_ENV: return "lowercase letters, digits and - (starting with a letter)";
  case TG_CS_TOKEN: return "letters, digits, _ and -";
  case TG_CS_VARIANT: return "lowercase letters, digits, _ and - (starting with a letter)";
  case TG_CS_LOCALE: return "a BCP 47 tag such as zh-CN";
  case TG_CS_HEX64: return "64 lowercase hex digits";
  }
  return "?";
}

bool tg_v_keys(const json_t *obj, const char *path, const char *const *allowed,
               char *errstr, size_t n) {
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)obj, k, v) {
    bool known = false;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(*a, k) == 0) {
        known = true;
        break;
      }
    if (!known) {
      char p[256];
      /* the key may be hostile: cut it and keep it printable */
      char shown[48];
      size_t o = 0;
      for (const char *c = k; *c && o + 1 < sizeof(shown); c++)
        shown[o++] = ((unsigned char)*c < 0x20) ? '?' : *c;
      shown[o] = '\0';
      snprintf(errstr, n, "%s: unknown field", tg_path_join(p, sizeof(p), path, shown));
      return false;
    }
  }
  return true;
}

static bool absent(const json_t *obj, const char *path, const char *key, bool required,
                   const json_t *v, char *errstr, size_t n) {
  char p[256];
  if (!v && required) {
    snprintf(errstr, n, "%s: required field is missing", tg_path_join(p, sizeof(p), path, key));
    return true;
  }
  (void)obj;
  return false;
}

static bool type_error(const char *path, const char *key, const char *want, const json_t *v,
                       char *errstr, size_t n) {
  char p[256];
  snprintf(errstr, n, "%s: expected %s, got %s", tg_path_join(p, sizeof(p), path, key), want,
           tg_json_type_name(v));
  return false;
}

bool tg_v_str(const json_t *obj, const char *path, const char *key,
              const struct tg_str_rule *rule, const char **out, char *errstr, size_t n) {
  char p[256];
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (absent(obj, path, key, rule->required, v, errstr, n))
    return false;
  if (!v)
    return true;
  if (json_is_null(v) && rule->nullable)
    return true;
  if (!json_is_string(v))
    return type_error(path, key, rule->nullable ? "string or null" : "string", v, errstr, n);
  const char *s = json_string_value(v);
  size_t chars = tg_utf8_chars(s);
  if (chars < rule->min_chars) {
    if (rule->min_chars == 1)
      snprintf(errstr, n, "%s: must not be empty", tg_path_join(p, sizeof(p), path, key));
    else
      snprintf(errstr, n, "%s: shorter than %zu characters",
               tg_path_join(p, sizeof(p), path, key), rule->min_chars);
    return false;
  }
  if (chars > rule->max_chars) {
    snprintf(errstr, n, "%s: %zu characters exceeds the limit of %zu",
             tg_path_join(p, sizeof(p), path, key), chars, rule->max_chars);
    return false;
  }
  if (*s && !tg_charset_ok(s, rule->charset)) {
    snprintf(errstr, n, "%s: must be %s", tg_path_join(p, sizeof(p), path, key),
             tg_charset_describe(rule->charset));
    return false;
  }
  *out = s;
  return true;
}

bool tg_v_int(const json_t *obj, const char *path, const char *key, bool required,
              int64_t min, int64_t max, int64_t *out, char *errstr, size_t n) {
  char p[256];
  json_t *v = json_object_get(obj, key);
  if (absent(obj, path, key, required, v, errstr, n))
    return false;
  if (!v)
    return true;
  if (!json_is_integer(v))
    return type_error(path, key, "integer", v, errstr, n);
  json_int_t i = json_integer_value(v);
  if (i < min || i > max) {
    snprintf(errstr, n, "%s: %lld is out of range [%lld, %lld]",
             tg_path_join(p, sizeof(p), path, key), (long long)i, (long long)min,
             (long long)max);
    return false;
  }
  *out = i;
  return true;
}

bool tg_v_num(const json_t *obj, const char *path, const char *key, bool required,
              double min, double max, double *out, char *errstr, size_t n) {
  char p[256];
  json_t *v = json_object_get(obj, key);
  if (absent(obj, path, key, required, v, errstr, n))
    return false;
  if (!v)
    return true;
  if (!json_is_number(v))
    return type_error(path, key, "number", v, errstr, n);
  double d = json_number_value(v);
  if (!isfinite(d) || d < min || d > max) {
    snprintf(errstr, n, "%s: %.15g is out of range [%g, %g]", tg_path_join(p, sizeof(p), path, key),
             d, min, max);
    return false;
  }
  *out = d;
  return true;
}

bool tg_v_bool(const json_t *obj, const char *path, const char *key, bool required,
               bool *out, char *errstr, size_t n) {
  json_t *v = json_object_get(obj, key);
  if (absent(obj, path, key, required, v, errstr, n))
    return false;
  if (!v)
    return true;
  if (!json_is_boolean(v))
    return type_error(path, key, "boolean", v, errstr, n);
  *out = json_is_true(v);
  return true;
}

bool tg_v_child(const json_t *obj, const char *path, const char *key, json_type type,
                bool required, bool nullable, json_t **out, char *errstr, size_t n) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (absent(obj, path, key, required, v, errstr, n))
    return false;
  if (!v || (nullable && json_is_null(v)))
    return true;
  if (json_typeof(v) != type) {
    const char *want = type == JSON_OBJECT ? "object" : "array";
    char buf[32];
    if (nullable) {
      snprintf(buf, sizeof(buf), "%s or null", want);
      want = buf;
    }
    return type_error(path, key, want, v, errstr, n);
  }
  *out = v;
  return true;
}
