/* SPDX-License-Identifier: Apache-2.0 */
/*
 * time.c - RFC 3339 parsing with calendar checks, UTC formatting and the
 * wall and monotonic clocks.
 */
#include "tg_time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 1;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap(y) ? 29 : days[m - 1];
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant) */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool tg_time_parse(const char *s, int64_t *ms_out, const char **why) {
  int y, mo, d, h, mi, se;
  const char *bad = "expected RFC 3339 date-time with offset, e.g. 2024-05-02T22:38:00+08:00";
  *why = bad;
  if (!s || strlen(s) < 20)
    return false;
  if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
      !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
      s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
    return false;
  const char *p = s + 19;
  int ms = 0;
  if (*p == '.') {
    p++;
    int nd = 0, scale = 100;
    while (*p >= '0' && *p <= '9') {
      if (nd < 3) {
        ms += (*p - '0') * scale;
        scale /= 10;
      }
      nd++;
      p++;
    }
    if (nd == 0 || nd > 9)
      return false;
  }
  int off_min = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int oh, om;
    if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om))
      return false;
    if (oh > 23 || om > 59) {
      *why = "offset out of range";
      return false;
    }
    off_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    *why = "missing UTC offset (Z or +hh:mm)";
    return false;
  }
  if (*p != '\0')
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo)) {
    *why = "no such calendar date";
    return false;
  }
  if (h > 23 || mi > 59 || se > 59) {
    *why = "time of day out of range";
    return false;
  }
  if (y < 1970) {
    *why = "year before 1970";
    return false;
  }
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off_min * 60;
  if (secs < 0) {
    *why = "before 1970-01-01T00:00:00Z";
    return false;
  }
  *ms_out = secs * 1000 + ms;
  *why = NULL;
  return true;
}

void tg_time_utc_date(int64_t ms, int *y, int *m, int *d) {
  time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  *y = tm.tm_year + 1900;
  *m = tm.tm_mon + 1;
  *d = tm.tm_mday;
}

char *tg_time_format_utc(int64_t ms, char *buf, size_t size) {
  time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int frac = (int)(ms - (int64_t)t * 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
           tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return buf;
}

int64_t tg_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tg_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tg_deadline_came(int64_t deadline_mono_ms) {
  return tg_mono_ms() + TG_DEADLINE_SLACK_MS >= deadline_mono_ms;
}

void tg_sleep_ms(int64_t ms) {
  if (ms <= 0)
    return;
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}
