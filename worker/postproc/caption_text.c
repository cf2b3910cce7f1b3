/* SPDX-License-Identifier: Apache-2.0 */
/*
 * caption_text.c - the trip's facts as the caption's lines of UTF-8 text:
 * dates, distance and driving time on the first line, the cities on the
 * route on the second, the team on the third. A pure function of the trip:
 * no locale, no clock, no time zone database (the dates are the ones
 * written in the trip's own start and end times), so the same trip always
 * gives the same bytes. Numbers are formatted with integer arithmetic, so
 * LC_NUMERIC cannot turn "645.4" into "645,4".
 */
#include "caption.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARROW " \xe2\x86\x92 " /* " → " */
#define DOT " \xc2\xb7 "       /* " · " */

/* A growing string; on allocation failure it stays failed. */
struct sbuf {
  char *s;
  size_t len, cap;
  bool failed;
};

static void sb_append(struct sbuf *b, const char *text, size_t len) {
  if (b->failed)
    return;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    char *s;
    while (cap < b->len + len + 1)
      cap *= 2;
    s = realloc(b->s, cap);
    if (!s) {
      b->failed = true;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  memcpy(b->s + b->len, text, len);
  b->len += len;
  b->s[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *text) { sb_append(b, text, strlen(text)); }

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  int len;
  va_start(ap, fmt);
  len = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (len < 0 || (size_t)len >= sizeof(tmp)) {
    b->failed = true;
    return;
  }
  sb_append(b, tmp, (size_t)len);
}

/* Whether @t begins with a YYYY-MM-DD date. */
static bool has_date(const char *t) {
  if (!t || strlen(t) < 10 || t[4] != '-' || t[7] != '-')
    return false;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (t[i] < '0' || t[i] > '9'))
      return false;
  return true;
}

/* "2025-05-01", "2025-05-01 → 2025-05-03" */
static void put_dates(struct sbuf *b, const char *start, const char *end) {
  sb_append(b, start, 10);
  if (memcmp(start, end, 10) != 0) {
    sb_puts(b, ARROW);
    sb_append(b, end, 10);
  }
}

/* one decimal, rounded half up: "645.4 km" */
static void put_distance(struct sbuf *b, double km) {
  long long tenths = km > 0 ? (long long)(km * 10.0 + 0.5) : 0; /* validated: 0..1e5 */
  sb_printf(b, "%lld.%lld km", tenths / 10, tenths % 10);
}

/* nearest minute: "14 h 28 min", "2 h 0 min", "45 min" */
static void put_duration(struct sbuf *b, long long seconds) {
  long long minutes = seconds > 0 ? (seconds + 30) / 60 : 0;
  if (minutes >= 60)
    sb_printf(b, "%lld h %lld min", minutes / 60, minutes % 60);
  else
    sb_printf(b, "%lld min", minutes);
}

/* Adds @city after " → " unless it is empty or equal to the last one. */
static void put_city(struct sbuf *b, const char *city, const char **last) {
  if (!city || !*city || (*last && strcmp(*last, city) == 0))
    return;
  if (*last)
    sb_puts(b, ARROW);
  sb_puts(b, city);
  *last = city;
}

static char *take(struct sbuf *b) {
  char *s = b->s;
  if (b->failed) {
    free(s);
    s = NULL;
  } else if (!s) {
    s = calloc(1, 1);
  }
  memset(b, 0, sizeof(*b));
  return s;
}

tg_err_t tg_caption_lines(const tg_trip_t *trip, struct tg_caption_text *out, char *errstr,
                          size_t n) {
  struct sbuf b = {0};
  const char *last = NULL;
  memset(out, 0, sizeof(*out));
  if (!trip) {
    snprintf(errstr, n, "caption: no trip");
    return TG_ERR_INVAL;
  }
  if (!has_date(trip->start_time) || !has_date(trip->end_time)) {
    snprintf(errstr, n, "caption: start_time and end_time must begin with YYYY-MM-DD");
    return TG_ERR_INVAL;
  }

  put_dates(&b, trip->start_time, trip->end_time);
  sb_puts(&b, DOT);
  put_distance(&b, trip->distance_km);
  sb_puts(&b, DOT);
  put_duration(&b, (long long)trip->driving_seconds);
  if (!(out->lines[out->n_lines++] = take(&b)))
    goto nomem;

  put_city(&b, trip->origin.city, &last);
  for (size_t i = 0; i < trip->n_via_cities; i++)
    put_city(&b, trip->via_cities[i], &last);
  put_city(&b, trip->destination.city, &last);
  if (last && !(out->lines[out->n_lines++] = take(&b)))
    goto nomem;

  if (trip->team && *trip->team) {
    sb_puts(&b, trip->team);
    if (!(out->lines[out->n_lines++] = take(&b)))
      goto nomem;
  }
  return TG_OK;

nomem:
  free(b.s);
  tg_caption_text_free(out);
  snprintf(errstr, n, "caption: out of memory");
  return TG_ERR_NOMEM;
}

void tg_caption_text_free(struct tg_caption_text *text) {
  if (!text)
    return;
  for (size_t i = 0; i < TG_CAPTION_MAX_LINES; i++)
    free(text->lines[i]);
  memset(text, 0, sizeof(*text));
}
