/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llm_text.c - the user message an LLM prompt backend sends for a trip,
 * and the cleaning of the model's answer into a bounded painting prompt.
 */
#include "prompt/llm_text.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; failed is set once memory runs out. */
struct text {
  char *s;
  size_t len, cap;
  bool failed;
};

__attribute__((format(printf, 2, 3))) static void add(struct text *t, const char *fmt, ...) {
  for (int tries = 0; tries < 2 && !t->failed; tries++) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
      t->failed = true;
      return;
    }
    if (t->s && t->len + (size_t)w < t->cap) {
      t->len += (size_t)w;
      return;
    }
    size_t nc = t->cap * 2 + (size_t)w + 256;
    char *ns = realloc(t->s, nc);
    if (!ns) {
      t->failed = true;
      return;
    }
    t->s = ns;
    t->cap = nc;
  }
}

static void place(struct text *t, const char *label, const struct tg_place *p) {
  add(t, "- %s: %s (%s), weather: %s\n", label, p->address, p->city, p->weather);
}

char *tg_llm_user_message(const tg_trip_t *trip) {
  struct text t = {0};
  add(&t, "A car owner just finished this drive. Write the painting prompt for it.\n");
  place(&t, "From", &trip->origin);
  place(&t, "To", &trip->destination);
  if (trip->n_via_cities) {
    add(&t, "- Via:");
    for (size_t i = 0; i < trip->n_via_cities; i++)
      add(&t, "%s %s", i ? "," : "", trip->via_cities[i]);
    add(&t, "\n");
  }
  add(&t, "- Start: %s; end: %s\n", trip->start_time, trip->end_time);
  add(&t, "- Driving time: %lld h %02lld min; distance: %.1f km\n",
      (long long)(trip->driving_seconds / 3600), (long long)(trip->driving_seconds % 3600 / 60),
      trip->distance_km);
  add(&t, "- Vehicle (composited later, do not paint it): %s, %s, %s\n", trip->vehicle.model,
      trip->vehicle.color, trip->vehicle.generation);
  add(&t, "- Mood, in the owner's words: \"%s\" (tag: %s)\n", trip->text, trip->tag);
  if (trip->team)
    add(&t, "- Travelling with: %s\n", trip->team);
  if (trip->style)
    add(&t, "- Style asked for: %s\n", trip->style);
  if (trip->locale)
    add(&t, "- Locale: %s\n", trip->locale);
  if (t.failed) {
    free(t.s);
    return NULL;
  }
  return t.s;
}

/* ---- cleaning -------------------------------------------------------- */

static bool starts_ci(const char *s, const char *prefix) {
  for (; *prefix; s++, prefix++)
    if (tolower((unsigned char)*s) != tolower((unsigned char)*prefix))
      return false;
  return true;
}

/* Skip leading ASCII whitespace. */
static const char *skip_space(const char *s) {
  while (*s && isspace((unsigned char)*s))
    s++;
  return s;
}

/* Labels a model puts before the prompt; the longest match goes. */
static const char *const labels[] = {
  "**positive prompt:**", "**prompt:**", "positive prompt:", "painting prompt:",
  "image prompt:", "prompt:", "提示词：", "提示词:", NULL};

/* Quote pairs a model wraps the prompt in. */
static const struct {
  const char *open, *close;
} quotes[] = {{"\"", "\""}, {"'", "'"}, {"“", "”"}, {"「", "」"}, {"`", "`"}};

static bool utf8_lead(unsigned char c) { return (c & 0xC0) != 0x80; }

bool tg_llm_clean_prompt(const char *raw, size_t max_chars, char **out, char *why, size_t n) {
  *out = NULL;
  const char *in = raw ? raw : "";
  char *s = malloc(strlen(in) + 1);
  if (!s) {
    snprintf(why, n, "out of memory");
    return false;
  }
  /* 1. fold whitespace (newlines too) into single spaces; code fences go,
   * with the language tag after a fence that opens a line */
  size_t w = 0;
  bool space = true; /* drops leading spaces */
  for (const char *p = in; *p;) {
    if (strncmp(p, "```", 3) == 0) {
      bool line_start = p == in || p[-1] == '\n';
      p += 3;
      while (line_start && *p && !isspace((unsigned char)*p))
        p++;
      if (!space) {
        s[w++] = ' ';
        space = true;
      }
      continue;
    }
    if (isspace((unsigned char)*p)) {
      if (!space)
        s[w++] = ' ';
      space = true;
      p++;
      continue;
    }
    s[w++] = *p++;
    space = false;
  }
  while (w > 0 && s[w - 1] == ' ')
    w--;
  s[w] = '\0';
  /* 2. a leading label */
  char *start = s;
  for (int i = 0; labels[i]; i++)
    if (starts_ci(start, labels[i])) {
      start = (char *)skip_space(start + strlen(labels[i]));
      break;
    }
  /* 3. matching quotes around all of it */
  size_t len = strlen(start);
  for (size_t q = 0; q < sizeof(quotes) / sizeof(quotes[0]); q++) {
    size_t lo = strlen(quotes[q].open), lc = strlen(quotes[q].close);
    if (len >= lo + lc && strncmp(start, quotes[q].open, lo) == 0 &&
        strcmp(start + len - lc, quotes[q].close) == 0) {
      start[len - lc] = '\0';
      start = (char *)skip_space(start + lo);
      len = strlen(start);
      while (len > 0 && start[len - 1] == ' ')
        start[--len] = '\0';
      break;
    }
  }
  /* 4. the bound, in characters, cut at a comma or space near the end */
  size_t chars = 0, cut = len;
  for (size_t i = 0; i < len; i++)
    if (utf8_lead((unsigned char)start[i]) && chars++ == max_chars) {
      cut = i;
      break;
    }
  if (cut < len) {
    size_t soft = cut;
    while (soft > cut - cut / 5 && start[soft - 1] != ',' && start[soft - 1] != ' ')
      soft--;
    if (soft > cut - cut / 5)
      cut = soft;
    while (cut > 0 && (start[cut - 1] == ',' || start[cut - 1] == ' '))
      cut--;
    start[cut] = '\0';
    len = cut;
  }
  if (len == 0) {
    free(s);
    snprintf(why, n, "the model answered with an empty prompt");
    return false;
  }
  memmove(s, start, len + 1);
  *out = s;
  return true;
}
