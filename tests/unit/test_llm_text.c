/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_llm_text.c - the LLM prompt backends' text: the user message of a
 * trip (every field there, readable) and the cleaning of model answers
 * (fences, labels, quotes, whitespace, the bound, empty answers).
 */
#include "check.h"
#include "prompt/llm_text.h"
#include "tg_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *root;

static tg_trip_t *sample(const char *name) {
  char path[600], buf[8192], errstr[256];
  snprintf(path, sizeof(path), "%s/tests/data/trips/%s", root, name);
  FILE *f = fopen(path, "rb");
  size_t len = f ? fread(buf, 1, sizeof(buf), f) : 0;
  if (f)
    fclose(f);
  tg_trip_t *t = tg_trip_parse(buf, len, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s: %s", name, errstr);
  return t;
}

static void test_user_message(void) {
  tg_trip_t *t = sample("may-day-shanghai.json");
  if (!t)
    return;
  char *m = tg_llm_user_message(t);
  CHECK(m != NULL);
  if (m) {
    CHECK(strstr(m, t->origin.address) && strstr(m, t->origin.city) &&
          strstr(m, t->origin.weather));
    CHECK(strstr(m, t->destination.address) && strstr(m, t->destination.city) &&
          strstr(m, t->destination.weather));
    CHECK(strstr(m, t->start_time) && strstr(m, t->end_time));
    CHECK(strstr(m, t->vehicle.model) && strstr(m, t->vehicle.color));
    CHECK(strstr(m, t->text) && strstr(m, t->tag));
    for (size_t i = 0; i < t->n_via_cities; i++)
      CHECK(strstr(m, t->via_cities[i]) != NULL);
    char dist[32];
    snprintf(dist, sizeof(dist), "%.1f km", t->distance_km);
    CHECK_MSG(strstr(m, dist) != NULL, "%s", m);
    CHECK_MSG(strstr(m, t->trip_id) == NULL && strstr(m, t->user_id) == NULL,
              "ids stay out: %s", m);
    CHECK(tg_utf8_chars(m) > 0);
  }
  free(m);
  tg_trip_destroy(t);
}

/* clean(raw, max) == want ("" for a refusal) */
static void expect(const char *raw, size_t max, const char *want) {
  char *out = NULL, why[128] = "";
  bool ok = tg_llm_clean_prompt(raw, max, &out, why, sizeof(why));
  if (!*want)
    CHECK_MSG(!ok && out == NULL && strstr(why, "empty"), "[%s] -> [%s]", raw, out ? out : "");
  else
    CHECK_MSG(ok && out && strcmp(out, want) == 0, "[%s] -> [%s], want [%s] (%s)", raw,
              out ? out : "(null)", want, why);
  free(out);
}

static void test_clean(void) {
  expect("the Bund at dusk, soft light", 200, "the Bund at dusk, soft light");
  expect("  \n the Bund,\n\n  soft   light \t", 200, "the Bund, soft light");
  expect("```\nthe Bund, soft light\n```", 200, "the Bund, soft light");
  expect("```text\nthe Bund, soft light\n```\n", 200, "the Bund, soft light");
  expect("Prompt: the Bund", 200, "the Bund");
  expect("PROMPT:the Bund", 200, "the Bund");
  expect("**Prompt:** the Bund", 200, "the Bund");
  expect("Positive prompt: the Bund", 200, "the Bund");
  expect("提示词：外滩的黄昏", 200, "外滩的黄昏");
  expect("\"the Bund, soft light\"", 200, "the Bund, soft light");
  expect("“the Bund”", 200, "the Bund");
  expect("Prompt: \"the Bund\"", 200, "the Bund");
  expect("\"the Bund\" at dusk", 200, "\"the Bund\" at dusk"); /* not a wrapping pair */
  expect("a ```b``` c", 200, "a b c");                       /* inline fences: text stays */
  /* the bound: at a comma or space in the last fifth, else at a character */
  expect("alpha, beta, gamma, delta", 20, "alpha, beta, gamma");
  expect("abcdefghijklmnopqrstuvwxyz", 10, "abcdefghij");
  expect("长城长城长城长城长城", 4, "长城长城");
  expect("短", 1, "短");
  /* nothing left */
  expect("", 200, "");
  expect("   \n\t ", 200, "");
  expect("```\n```", 200, "");
  expect("Prompt:", 200, "");
  expect("\"\"", 200, "");
  expect("abc", 0, "");
  char *out = NULL, why[64];
  CHECK(!tg_llm_clean_prompt(NULL, 10, &out, why, sizeof(why)) && out == NULL);
}

int main(int argc, char **argv) {
  root = argc > 1 ? argv[1] : ".";
  RUN(test_user_message);
  RUN(test_clean);
  return check_done("test_llm_text");
}
