/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_url.c - Redis URL parsing with the password kept out of messages.
 */
#include "redis_url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool parse_int(const char *s, size_t len, int min, int max, int *out) {
  if (len == 0 || len > 9)
    return false;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (s[i] - '0');
  }
  if (v < min || v > max)
    return false;
  *out = v;
  return true;
}

/* %XX decoding for user and password */
static bool pct_decode(const char *s, size_t len, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c == '%') {
      int v = 0;
      for (int k = 1; k <= 2; k++) {
        char h = i + (size_t)k < len ? s[i + (size_t)k] : '\0';
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0)
          return false;
        v = v * 16 + d;
      }
      if (v == 0)
        return false;
      c = (char)v;
      i += 2;
    }
    if (o + 1 >= size)
      return false;
    out[o++] = c;
  }
  out[o] = '\0';
  return true;
}

bool tg_redis_url_parse(const char *url, struct tg_redis_url *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  out->port = 6379;
  if (!url || !*url) {
    snprintf(errstr, n, "redis url: empty (expected redis://host:port or unix:///path)");
    return false;
  }
  if (strncmp(url, "unix://", 7) == 0) {
    const char *path = url + 7;
    const char *q = strchr(path, '?');
    size_t plen = q ? (size_t)(q - path) : strlen(path);
    if (plen == 0 || path[0] != '/' || plen >= sizeof(out->host)) {
      snprintf(errstr, n, "redis url: unix:// needs an absolute socket path");
      return false;
    }
    out->is_unix = true;
    memcpy(out->host, path, plen);
    if (q) {
      if (strncmp(q, "?db=", 4) != 0 || !parse_int(q + 4, strlen(q + 4), 0, 65535, &out->db)) {
        snprintf(errstr, n, "redis url: the only query parameter is db=N");
        return false;
      }
    }
    return true;
  }
  if (strncmp(url, "redis://", 8) != 0) {
    snprintf(errstr, n, "redis url: must start with redis:// or unix://");
    return false;
  }
  const char *p = url + 8;
  const char *at = strrchr(p, '@');
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) {
      snprintf(errstr, n, "redis url: credentials must be [user]:password@");
      return false;
    }
    if (!pct_decode(p, (size_t)(colon - p), out->user, sizeof(out->user)) ||
        !pct_decode(colon + 1, (size_t)(at - colon - 1), out->password, sizeof(out->password))) {
      snprintf(errstr, n, "redis url: malformed or too long credentials");
      return false;
    }
    p = at + 1;
  }
  const char *slash = strchr(p, '/');
  size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
  const char *colon = NULL;
  if (p[0] == '[') { /* [ipv6]:port */
    const char *close = memchr(p, ']', hostport);
    if (!close) {
      snprintf(errstr, n, "redis url: unterminated [ipv6] host");
      return false;
    }
    if ((size_t)(close - p - 1) >= sizeof(out->host)) {
      snprintf(errstr, n, "redis url: host too long");
      return false;
    }
    memcpy(out->host, p + 1, (size_t)(close - p - 1));
    if (close + 1 < p + hostport && close[1] != ':') {
      snprintf(errstr, n, "redis url: unexpected text after the [ipv6] host");
      return false;
    }
    colon = close + 1 < p + hostport ? close + 1 : NULL;
  } else {
    colon = memchr(p, ':', hostport);
    size_t hlen = colon ? (size_t)(colon - p) : hostport;
    if (hlen == 0 || hlen >= sizeof(out->host)) {
      snprintf(errstr, n, "redis url: missing or too long host");
      return false;
    }
    memcpy(out->host, p, hlen);
  }
  if (colon && !parse_int(colon + 1, (size_t)(p + hostport - colon - 1), 1, 65535, &out->port)) {
    snprintf(errstr, n, "redis url: port must be 1-65535");
    return false;
  }
  if (slash && slash[1] && !parse_int(slash + 1, strlen(slash + 1), 0, 65535, &out->db)) {
    snprintf(errstr, n, "redis url: database must be a number after the /");
    return false;
  }
  return true;
}

char *tg_redis_url_redact(const struct tg_redis_url *u, char *buf, size_t size) {
  char cred[160] = "", host[300], db[16] = "";
  if (*u->password)
    snprintf(cred, sizeof(cred), "%s:***@", u->user);
  if (u->is_unix) {
    if (u->db)
      snprintf(db, sizeof(db), "?db=%d", u->db);
    snprintf(buf, size, "unix://%s%s", u->host, db);
    return buf;
  }
  snprintf(host, sizeof(host), strchr(u->host, ':') ? "[%s]" : "%s", u->host);
  if (u->db)
    snprintf(db, sizeof(db), "/%d", u->db);
  snprintf(buf, size, "redis://%s%s:%d%s", cred, host, u->port, db);
  return buf;
}
