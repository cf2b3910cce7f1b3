/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - logfmt line writer: timestamp, level and source location, then the
 * caller's key=value pairs, written with one fputs so lines from several
 * threads do not interleave.
 */
#include "tg_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

int tg_log_level = TG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

int tg_log_set_level_name(const char *name) {
  if (!name)
    return 0;
  for (int i = 0; i < 4; i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      tg_log_level = i;
      return 0;
    }
  }
  if (strcasecmp(name, "off") == 0) {
    tg_log_level = TG_LOG_OFF;
    return 0;
  }
  return -1;
}

void tg_log_emit(int level, const char *file, int line, const char *fmt, ...) {
  char buf[2048];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  const char *base = strrchr(file, '/');
  /* keep "dir/file.c" so the process is visible in src= */
  if (base && base != file) {
    const char *p = base - 1;
    while (p > file && *(p - 1) != '/')
      p--;
    base = p;
  } else {
    base = file;
  }
  int n = snprintf(buf, sizeof(buf),
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s src=%s:%d ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (long)(tv.tv_usec / 1000),
                   level_names[level < 0 ? 0 : level > 3 ? 3 : level], base, line);
  if (n < 0 || (size_t)n >= sizeof(buf))
    n = 0;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
  va_end(ap);
  size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
  if (len > sizeof(buf) - 2)
    len = sizeof(buf) - 2;
  buf[len] = '\n';
  buf[len + 1] = '\0';
  fputs(buf, stderr);
}

const char *tg_logq(char *buf, size_t size, const char *s) {
  if (!s)
    return "\"\"";
  int needs = (*s == '\0');
  for (const char *p = s; *p && !needs; p++)
    if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
      needs = 1;
  if (!needs)
    return s;
  size_t o = 0;
  if (size < 3)
    return "\"\"";
  buf[o++] = '"';
  for (const char *p = s; *p && o + 3 < size; p++) {
    unsigned char c = (unsigned char)*p;
    if (c == '"' || c == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)c;
    } else if (c == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (c < 0x20) {
      buf[o++] = ' ';
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}
