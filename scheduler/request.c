/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.c - parsing of EAS query strings, durations and index lists.
 */
#include "request.h"

#include <civetweb.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool sch_request_parse_query(struct sch_request *r, const char *query, char *errstr, size_t n) {
  r->tags = json_object();
  if (!query || !*query)
    return true;
  size_t qlen = strlen(query);
  if (qlen > 8192) {
    snprintf(errstr, n, "query string too long");
    return false;
  }
  char *copy = strdup(query);
  if (!copy) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  struct mg_header fields[SCH_MAX_PARAMS * 2];
  int nf = mg_split_form_urlencoded(copy, fields, SCH_MAX_PARAMS * 2);
  bool ok = true;
  if (nf < 0 || nf >= SCH_MAX_PARAMS * 2) {
    snprintf(errstr, n, "too many query parameters");
    ok = false;
  }
  for (int i = 0; ok && i < nf; i++) {
    const char *k = fields[i].name, *v = fields[i].value ? fields[i].value : "";
    if (!*k)
      continue;
    if (strlen(k) >= sizeof(r->keys[0]) || strlen(v) >= sizeof(r->values[0])) {
      snprintf(errstr, n, "query parameter too long");
      ok = false;
    } else if (k[0] == '_') {
      if (r->n_params == SCH_MAX_PARAMS) {
        snprintf(errstr, n, "too many query parameters");
        ok = false;
      } else {
        snprintf(r->keys[r->n_params], sizeof(r->keys[0]), "%s", k);
        snprintf(r->values[r->n_params], sizeof(r->values[0]), "%s", v);
        r->n_params++;
      }
    } else if (strcmp(k, "requestId") == 0) {
      snprintf(r->request_id, sizeof(r->request_id), "%.127s", v);
    } else {
      json_t *s = json_string(v);
      if (!s) { /* not UTF-8 */
        snprintf(errstr, n, "tag %s: not UTF-8", k);
        ok = false;
      } else {
        json_object_set_new(r->tags, k, s);
      }
    }
  }
  free(copy);
  return ok;
}

const char *sch_request_param(const struct sch_request *r, const char *key) {
  for (int i = 0; i < r->n_params; i++)
    if (strcmp(r->keys[i], key) == 0)
      return r->values[i];
  return NULL;
}

bool sch_request_flag(const struct sch_request *r, const char *key, bool def) {
  const char *v = sch_request_param(r, key);
  if (!v)
    return def;
  return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "True") == 0;
}

bool sch_request_u64(const struct sch_request *r, const char *key, uint64_t def, uint64_t *out) {
  const char *v = sch_request_param(r, key);
  *out = def;
  if (!v || !*v)
    return true;
  if (*v == '-' || !isdigit((unsigned char)*v))
    return false;
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (*end || errno)
    return false;
  *out = x;
  return true;
}

bool sch_parse_duration_ms(const char *s, int64_t *out) {
  if (!s || !*s)
    return false;
  char *end;
  errno = 0;
  double bare = strspn(s, "0123456789.") == strlen(s) ? strtod(s, &end) : -1;
  if (bare >= 0 && !*end && !errno && isfinite(bare)) { /* bare seconds */
    *out = (int64_t)(bare * 1000.0 + 0.5);
    return true;
  }
  double total = 0;
  const char *p = s;
  while (*p) {
    if (!isdigit((unsigned char)*p) && *p != '.')
      return false;
    double v = strtod(p, &end);
    if (end == p || errno)
      return false;
    p = end;
    double unit;
    if (strncmp(p, "ns", 2) == 0) {
      unit = 1e-6;
      p += 2;
    } else if (strncmp(p, "us", 2) == 0) {
      unit = 1e-3;
      p += 2;
    } else if (strncmp(p, "\xc2\xb5s", 3) == 0) {
      unit = 1e-3;
      p += 3;
    } else if (strncmp(p, "ms", 2) == 0) {
      unit = 1;
      p += 2;
    } else if (*p == 's') {
      unit = 1000;
      p++;
    } else if (*p == 'm') {
      unit = 60000;
      p++;
    } else if (*p == 'h') {
      unit = 3600000;
      p++;
    } else {
      return false;
    }
    total += v * unit;
  }
  if (!isfinite(total) || total > 1e12)
    return false;
  *out = (int64_t)(total + 0.5);
  return true;
}

bool sch_parse_indexes(const char *s, uint64_t *out, int max, int *count) {
  *count = 0;
  if (!s || !*s)
    return false;
  const char *p = s;
  while (*p) {
    if (!isdigit((unsigned char)*p) || *count == max)
      return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(p, &end, 10);
    if (errno)
      return false;
    out[(*count)++] = x;
    p = end;
    if (*p == ',')
      p++;
    else if (*p)
      return false;
  }
  return *count > 0;
}

void sch_request_filter(const struct sch_request *r, struct sch_filter *f) {
  f->request_id = *r->request_id ? r->request_id : NULL;
  f->tags = json_object_size(r->tags) ? r->tags : NULL;
  f->priority = -1;
}

void sch_request_clear(struct sch_request *r) {
  json_decref(r->tags);
  r->tags = NULL;
}
