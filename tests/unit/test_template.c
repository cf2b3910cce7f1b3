/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_template.c - the built-in prompt composer (worker/prompt/template.c)
 * and its city table (landmarks.c): the sample trips get their landmark,
 * season, weather and mood; the route, season, weather, mood and style
 * rules on small in-memory trips; every prompt is deterministic, ASCII,
 * at most 600 characters and ends with "no cars"; every table row resolves
 * with and without its suffix; the ops table and the backend registry.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "prompt/landmarks.h"
#include "prompt/prompt.h"
#include "tg_job.h"
#include "tg_trip.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT 600
#define NO_CARS "no cars, no vehicles, no people in the foreground"

static const char *src_root = ".";

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  long size;
  if (!f)
    return NULL;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
      (buf = malloc((size_t)size + 1)) != NULL) {
    *len = fread(buf, 1, (size_t)size, f);
    buf[*len] = '\0';
  }
  fclose(f);
  return buf;
}

static tg_trip_t *load_sample(const char *name) {
  char path[1024], err[256] = "";
  size_t len = 0;
  char *s;
  tg_trip_t *t;
  snprintf(path, sizeof(path), "%s/tests/data/trips/%s.json", src_root, name);
  s = read_file(path, &len);
  CHECK_MSG(s != NULL, "cannot read %s", path);
  if (!s)
    return NULL;
  t = tg_trip_parse(s, len, err, sizeof(err));
  CHECK_MSG(t != NULL, "%s: %s", name, err);
  free(s);
  return t;
}

/* a small valid trip; @via is a JSON array text */
static tg_trip_t *make_trip(const char *origin, const char *dest, const char *via,
                            const char *w_origin, const char *w_dest, const char *date,
                            const char *tag, const char *text, const char *style) {
  char json[4096], style_kv[128] = "", err[256] = "";
  tg_trip_t *t;
  if (style)
    snprintf(style_kv, sizeof(style_kv), ", \"style\": \"%s\"", style);
  snprintf(json, sizeof(json),
           "{\"trip_id\": \"trip-test-0001\", \"user_id\": \"owner-1\", \"tag\": \"%s\","
           " \"text\": \"%s\", \"start_time\": \"%sT08:00:00+08:00\","
           " \"end_time\": \"%sT10:00:00+08:00\", \"driving_seconds\": 3600,"
           " \"distance_km\": 80.5,"
           " \"origin\": {\"address\": \"somewhere\", \"city\": \"%s\", \"weather\": \"%s\"},"
           " \"destination\": {\"address\": \"elsewhere\", \"city\": \"%s\", \"weather\": \"%s\"},"
           " \"via_cities\": %s,"
           " \"vehicle\": {\"model\": \"ES6\", \"color\": \"黑色\", \"generation\": \"一代\"}%s}",
           tag, text, date, date, origin, w_origin, dest, w_dest, via, style_kv);
  t = tg_trip_parse(json, strlen(json), err, sizeof(err));
  CHECK_MSG(t != NULL, "in-memory trip rejected: %s", err);
  return t;
}

static bool all_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
      return false;
  return true;
}

static bool ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && strcmp(s + a - b, tail) == 0;
}

/* the prompt of @t in @style, with the checks every prompt must pass; caller frees */
static char *prompt_checked(const tg_trip_t *t, const char *style, const char *what) {
  char *p = tg_template_prompt(t, style), *q = tg_template_prompt(t, style);
  CHECK_MSG(p && q, "%s: NULL prompt", what);
  if (!p || !q) {
    free(p);
    free(q);
    return NULL;
  }
  CHECK_MSG(strcmp(p, q) == 0, "%s: not deterministic:\n    %s\n    %s", what, p, q);
  CHECK_MSG(*p, "%s: empty prompt", what);
  CHECK_MSG(strlen(p) <= MAX_PROMPT, "%s: %zu chars: %s", what, strlen(p), p);
  CHECK_MSG(all_ascii(p), "%s: not plain ASCII: %s", what, p);
  CHECK_MSG(ends_with(p, NO_CARS), "%s: does not end with no cars: %s", what, p);
  CHECK_MSG(!strstr(p, ", ,") && !strstr(p, ",,") && p[0] != ',' && p[0] != ' ',
            "%s: empty phrase: %s", what, p);
  free(q);
  return p;
}

static void contains(const char *p, const char *needle, const char *what) {
  CHECK_MSG(p && strstr(p, needle), "%s: \"%s\" missing from: %s", what, needle, p ? p : "(null)");
}

static void lacks(const char *p, const char *needle, const char *what) {
  CHECK_MSG(p && !strstr(p, needle), "%s: \"%s\" unexpected in: %s", what, needle,
            p ? p : "(null)");
}

static const char *landmark_of(const char *city) {
  const struct tg_landmark *l = tg_landmark_find(city);
  CHECK_MSG(l != NULL, "%s not in the table", city);
  return l ? l->landmark : "(unknown city)";
}

/* ---- the sample trips ---- */

static const struct {
  const char *file;
  const char *city; /* whose landmark the prompt names */
  const char *city_en;
  const char *season;
  const char *weather; /* a word of the weather */
  const char *mood;
} samples[] = {
    {"may-day-shanghai", "上海市", "Shanghai", "spring", "cloud", "first road trip"},
    {"national-day-chengdu", "成都市", "Chengdu", "autumn", "rain", "family"},
    {"winter-harbin-short", "哈尔滨市", "Harbin", "winter", "snow", "wintry"},
};

static void test_samples(void) {
  for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
    tg_trip_t *t = load_sample(samples[i].file);
    char *p;
    if (!t)
      continue;
    p = prompt_checked(t, NULL, samples[i].file);
    if (p) {
      printf("%s:\n  %s\n", samples[i].file, p);
      contains(p, landmark_of(samples[i].city), samples[i].file);
      contains(p, samples[i].city_en, samples[i].file);
      contains(p, samples[i].season, samples[i].file);
      contains(p, samples[i].weather, samples[i].file);
      contains(p, samples[i].mood, samples[i].file);
      contains(p, "cinematic photograph", samples[i].file);
      contains(p, "high definition", samples[i].file);
      contains(p, "no cars", samples[i].file);
    }
    free(p);
    tg_trip_destroy(t);
  }
}

static void test_snow_mountains_not_wintry(void) {
  /* "雪山" in October is grandeur, not winter */
  tg_trip_t *t = load_sample("national-day-chengdu");
  char *p = t ? prompt_checked(t, NULL, "chengdu") : NULL;
  if (p) {
    contains(p, "mountain grandeur", "chengdu");
    lacks(p, "wintry", "chengdu");
    lacks(p, "winter", "chengdu");
  }
  free(p);
  tg_trip_destroy(t);
}

/* ---- the route rule ---- */

static void route_case(const char *origin, const char *dest, const char *via, const char *want,
                       const char *what) {
  tg_trip_t *t = make_trip(origin, dest, via, "晴", "晴", "2024-05-01", "出游", "好玩", NULL);
  char *p = t ? prompt_checked(t, NULL, what) : NULL;
  if (p)
    contains(p, want, what);
  free(p);
  tg_trip_destroy(t);
}

static void test_route(void) {
  route_case("北京市", "杭州市", "[\"稻城县\"]", landmark_of("杭州"), "destination first");
  route_case("北京市", "火星市", "[\"月球县\", \"稻城县\", \"理塘县\"]", landmark_of("稻城"),
             "first known via city");
  route_case("北京市", "火星市", "[]", landmark_of("北京"), "origin last");
  route_case("北京市", "火星市", "[\"月球县\"]", "Beijing", "origin after unknown vias");
  route_case("Xanadu", "火星市", "[\"月球县\"]", tg_landmark_fallback.landmark, "fallback");
  route_case("某某县", "某某市", "[]", "in China", "fallback names China");
  route_case("上海", "Hangzhou", "[]", landmark_of("杭州市"), "English city name");
}

static void test_fallback(void) {
  tg_trip_t *t = make_trip("某地", "别处", "[]", "", "", "2024-07-15", "随便", "", NULL);
  char *p = t ? prompt_checked(t, NULL, "unknown everything") : NULL;
  if (p) {
    contains(p, tg_landmark_fallback.landmark, "fallback");
    contains(p, "summer", "fallback");
    contains(p, "natural daylight", "fallback weather");
    contains(p, "peaceful", "fallback mood");
    lacks(p, "car,", "fallback");
  }
  free(p);
  tg_trip_destroy(t);
  CHECK(*tg_landmark_fallback.landmark);
  CHECK(!strstr(tg_landmark_fallback.landmark, "car"));
}

/* ---- seasons, weather, mood ---- */

static void test_seasons(void) {
  static const struct {
    const char *date, *season;
  } cases[] = {
      {"2024-01-01", "winter"}, {"2024-02-29", "winter"}, {"2024-03-01", "spring"},
      {"2024-05-31", "spring"}, {"2024-06-01", "summer"}, {"2024-08-31", "summer"},
      {"2024-09-01", "autumn"}, {"2024-11-30", "autumn"}, {"2024-12-01", "winter"},
  };
  static const char *const all[] = {"spring", "summer", "autumn", "winter"};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tg_trip_t *t = make_trip("上海市", "杭州市", "[]", "阴", "阴", cases[i].date, "出游", "", NULL);
    char *p = t ? prompt_checked(t, NULL, cases[i].date) : NULL;
    if (p) {
      contains(p, cases[i].season, cases[i].date);
      for (size_t j = 0; j < 4; j++)
        if (strcmp(all[j], cases[i].season) != 0)
          lacks(p, all[j], cases[i].date);
    }
    free(p);
    tg_trip_destroy(t);
  }
}

static void test_weather(void) {
  static const struct {
    const char *weather, *word;
  } cases[] = {
      {"晴", "sunlight"},
      {"晴天", "clear blue sky"},
      {"多云", "cloud"},
      {"阴天", "overcast"},
      {"小雨", "light rain"},
      {"中雨", "rain"},
      {"大雨", "heavy rain"},
      {"雨", "rain"},
      {"雷阵雨", "thunderstorm"},
      {"小雪", "snow"},
      {"中雪", "snow"},
      {"大雪", "heavy snowfall"},
      {"雪", "snow"},
      {"雾", "fog"},
      {"霾", "hazy"},
      {"大风", "windy"},
      {"雨夹雪", "sleet"},
      {"晴转多云", "sunlight"},
      {"多云转小雨", "cloud"},
      {"Sunny", "sunlight"},
      {"light rain", "rain"},
      {"沙尘暴", "dust"},
      {"台风", "storm"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tg_trip_t *t =
        make_trip("上海市", "杭州市", "[]", "", cases[i].weather, "2024-05-01", "出游", "", NULL);
    char *p = t ? prompt_checked(t, NULL, cases[i].weather) : NULL;
    if (p)
      contains(p, cases[i].word, cases[i].weather);
    free(p);
    tg_trip_destroy(t);
  }
  /* the origin's weather, when it differs, adds a detail; unknown destination uses it */
  {
    tg_trip_t *t = make_trip("上海市", "杭州市", "[]", "大雪", "阴天", "2024-01-05", "", "", NULL);
    char *p = t ? prompt_checked(t, NULL, "two weathers") : NULL;
    if (p) {
      contains(p, "overcast light", "two weathers");
      contains(p, "snow covering the ground", "two weathers");
    }
    free(p);
    tg_trip_destroy(t);
    t = make_trip("上海市", "杭州市", "[]", "大雾", "未知", "2024-01-05", "", "", NULL);
    p = t ? prompt_checked(t, NULL, "origin weather only") : NULL;
    if (p)
      contains(p, "fog", "origin weather only");
    free(p);
    tg_trip_destroy(t);
  }
}

static void test_mood(void) {
  static const struct {
    const char *tag, *text, *word;
  } cases[] = {
      {"出游", "", "joyful"},
      {"自驾", "", "joyful"},
      {"随便", "今天很开心", "joyful"},
      {"冰雪", "", "wintry"},
      {"", "带爸妈回老家", "family"},
      {"", "新司机上路", "first road trip"},
      {"", "和朋友去海边", "companionship"},
      {"", "", "peaceful"},
      {"通勤", "上班", "peaceful"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    tg_trip_t *t = make_trip("上海市", "杭州市", "[]", "晴", "晴", "2024-05-01", cases[i].tag,
                             cases[i].text, NULL);
    char *p = t ? prompt_checked(t, NULL, cases[i].text) : NULL;
    if (p)
      contains(p, cases[i].word, cases[i].text);
    free(p);
    tg_trip_destroy(t);
  }
}

/* ---- styles ---- */

static void test_styles(void) {
  static const struct {
    const char *style, *word;
  } cases[] = {
      {"default", "cinematic photograph"},
      {"watercolor", "watercolor"},
      {"oil-painting", "oil painting"},
      {"oil_painting", "oil painting"},
      {"anime", "anime"},
      {"ink-wash", "ink-wash"},
      {"Ink_Wash", "ink-wash"},
  };
  tg_trip_t *t = load_sample("may-day-shanghai");
  char *def, *unknown;
  if (!t)
    return;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *p = prompt_checked(t, cases[i].style, cases[i].style);
    if (p) {
      contains(p, cases[i].word, cases[i].style);
      contains(p, "high definition", cases[i].style);
      contains(p, landmark_of("上海"), cases[i].style);
    }
    free(p);
  }
  def = prompt_checked(t, NULL, "NULL style");
  unknown = prompt_checked(t, "cubist-nonsense", "unknown style");
  {
    char *named = prompt_checked(t, "default", "default style");
    CHECK(def && named && strcmp(def, named) == 0);
    free(named);
  }
  CHECK(def && unknown && strcmp(def, unknown) == 0);
  free(def);
  free(unknown);
  tg_trip_destroy(t);
}

/* every city, every style, the longest weather pair and many moods: still fits */
static void test_bounds(void) {
  static const char *const styles[] = {"default", "watercolor", "oil-painting",
                                       "anime",   "ink-wash",   NULL};
  static const char long_text[] =
      "新司机第一次带爸妈和朋友去看雪山和海, 冰雪, 很开心, 放松, 回忆, 国庆, 浪漫";
  size_t n = 0;
  const struct tg_landmark *rows = tg_landmark_table(&n);
  for (size_t i = 0; i < n; i++) {
    char city[64];
    tg_trip_t *t;
    snprintf(city, sizeof(city), "%s%s", rows[i].city, rows[i].suffix);
    t = make_trip("某地", city, "[]", "雷阵雨", "大雪", "2024-12-24", "自驾", long_text, NULL);
    if (!t)
      continue;
    for (size_t s = 0; s < sizeof(styles) / sizeof(styles[0]); s++) {
      char *p = prompt_checked(t, styles[s], city);
      if (p) {
        contains(p, rows[i].landmark, city);
        contains(p, "high definition", city);
      }
      free(p);
    }
    tg_trip_destroy(t);
  }
}

/* ---- the table ---- */

static void test_table(void) {
  size_t n = 0;
  const struct tg_landmark *rows = tg_landmark_table(&n);
  static const char *const wanted[] = {
      "上海",   "湖州", "无锡",     "常州",     "成都", "雅安", "康定", "理塘", "稻城", "哈尔滨",
      "北京",   "广州", "深圳",     "杭州",     "南京", "苏州", "西安", "重庆", "武汉", "长沙",
      "厦门",   "青岛", "大连",     "拉萨",     "桂林", "昆明", "大理", "丽江", "三亚", "黄山",
      "张家界", "敦煌", "乌鲁木齐", "天津",     "合肥", "福州", "南昌", "济南", "郑州", "太原",
      "兰州",   "西宁", "银川",     "呼和浩特", "贵阳", "南宁", "海口", "沈阳", "长春"};
  CHECK_MSG(n >= 40, "only %zu cities", n);
  for (size_t i = 0; i < n; i++) {
    const struct tg_landmark *r = &rows[i];
    char name[64];
    CHECK_MSG(r->city && *r->city && r->suffix && *r->suffix, "row %zu: no city/suffix", i);
    CHECK_MSG(r->city_en && *r->city_en && all_ascii(r->city_en), "row %zu (%s): city_en", i,
              r->city);
    CHECK_MSG(r->landmark && *r->landmark && all_ascii(r->landmark), "row %zu (%s): landmark", i,
              r->city);
    CHECK_MSG(strlen(r->landmark) <= 120, "row %zu (%s): landmark too long", i, r->city);
    CHECK_MSG(tg_landmark_find(r->city) == r, "%s: bare name does not resolve", r->city);
    snprintf(name, sizeof(name), "%s%s", r->city, r->suffix);
    CHECK_MSG(tg_landmark_find(name) == r, "%s: suffixed name does not resolve", name);
    CHECK_MSG(tg_landmark_find(r->city_en) == r, "%s: English name does not resolve", r->city_en);
    for (size_t j = 0; j < i; j++)
      CHECK_MSG(strcmp(rows[j].city, r->city) != 0 && strcmp(rows[j].city_en, r->city_en) != 0,
                "duplicate city %s", r->city);
  }
  for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
    CHECK_MSG(tg_landmark_find(wanted[i]) != NULL, "%s missing", wanted[i]);
  CHECK(tg_landmark_find("上海市") == tg_landmark_find("上海"));
  CHECK(tg_landmark_find(" 上海市 ") == tg_landmark_find("上海"));
  CHECK(tg_landmark_find("稻城县") == tg_landmark_find("Daocheng"));
  CHECK(tg_landmark_find("SHANGHAI") == tg_landmark_find("上海"));
  CHECK(strstr(landmark_of("上海市"), "Bund") != NULL);
  CHECK(strstr(landmark_of("杭州"), "West Lake") != NULL);
  CHECK(strstr(landmark_of("稻城县"), "Yading") != NULL);
  CHECK(strstr(landmark_of("哈尔滨市"), "Ice and Snow World") != NULL);
  CHECK(tg_landmark_find(NULL) == NULL);
  CHECK(tg_landmark_find("") == NULL);
  CHECK(tg_landmark_find("市") == NULL);
  CHECK(tg_landmark_find("火星市") == NULL);
  CHECK(tg_landmark_find("上海市市") == NULL);
  CHECK(tg_landmark_find("上") == NULL);
}

/* ---- the ops table and the registry ---- */

static void test_ops(void) {
  static struct tg_worker_conf conf;
  char err[256] = "", errstr[256] = "";
  void *state = NULL;
  struct tg_prompt_out out;
  struct tg_stage_error serr;
  tg_trip_t *t;
  tg_job_t *job;
  char *want;

  CHECK(tg_prompt_find("template") == &tg_prompt_template);
  CHECK(tg_prompt_find("nonesuch") == NULL);
  CHECK(tg_prompt_find(NULL) == NULL);
  CHECK(strcmp(tg_prompt_template.name, "template") == 0);

  memset(&conf, 0, sizeof(conf));
  snprintf(conf.negative_prompt, sizeof(conf.negative_prompt), "(car:1.4), blurry, watermark");
  CHECK(tg_prompt_template.create(NULL, &state, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(*errstr);
  CHECK(tg_prompt_template.create(&conf, &state, errstr, sizeof(errstr)) == TG_OK);
  CHECK(state != NULL);
  /* captured at create */
  snprintf(conf.negative_prompt, sizeof(conf.negative_prompt), "changed later");

  t = load_sample("winter-harbin-short");
  job = t ? tg_job_new(t, "dev", NULL, INT64_C(1735693920000), err, sizeof(err)) : NULL;
  CHECK_MSG(!t || job, "tg_job_new: %s", err);
  if (!job) {
    tg_trip_destroy(t);
    tg_prompt_template.destroy(state);
    return;
  }

  memset(&out, 0x5a, sizeof(out));
  CHECK(tg_prompt_template.compose(state, job, &out, &serr));
  want = tg_template_prompt(job->trip, "default");
  CHECK(out.prompt && want && strcmp(out.prompt, want) == 0);
  CHECK(out.negative_prompt && strcmp(out.negative_prompt, "(car:1.4), blurry, watermark") == 0);
  CHECK(strcmp(out.source, "template") == 0);
  tg_prompt_out_free(&out);
  CHECK(out.prompt == NULL && out.negative_prompt == NULL);
  tg_prompt_out_free(&out);
  tg_prompt_out_free(NULL);
  free(want);

  /* the job's style wins over the default */
  job->options.style = strdup("watercolor");
  CHECK(tg_prompt_template.compose(state, job, &out, &serr));
  CHECK(out.prompt && strstr(out.prompt, "watercolor"));
  want = tg_template_prompt(job->trip, "watercolor");
  CHECK(out.prompt && want && strcmp(out.prompt, want) == 0);
  free(want);
  tg_prompt_out_free(&out);

  /* no trip: a failure, nothing to free */
  {
    tg_trip_t *saved = job->trip;
    job->trip = NULL;
    CHECK(!tg_prompt_template.compose(state, job, &out, &serr));
    CHECK(out.prompt == NULL && out.negative_prompt == NULL);
    CHECK(*serr.message);
    CHECK(!serr.retryable);
    job->trip = saved;
  }

  tg_job_destroy(job);
  tg_prompt_template.destroy(state);
  tg_prompt_template.destroy(NULL);
}

static void test_trip_style(void) {
  /* the trip's own style, when the job has none */
  static struct tg_worker_conf conf;
  char err[256] = "";
  void *state = NULL;
  struct tg_prompt_out out;
  struct tg_stage_error serr;
  tg_trip_t *t = make_trip("上海市", "杭州市", "[]", "晴", "晴", "2024-05-01", "出游", "", "anime");
  tg_job_t *job = t ? tg_job_new(t, "dev", NULL, INT64_C(1714660680123), err, sizeof(err)) : NULL;
  CHECK_MSG(!t || job, "tg_job_new: %s", err);
  if (!job) {
    tg_trip_destroy(t);
    return;
  }
  memset(&conf, 0, sizeof(conf));
  CHECK(tg_prompt_template.create(&conf, &state, err, sizeof(err)) == TG_OK);
  if (state && tg_prompt_template.compose(state, job, &out, &serr)) {
    CHECK(out.prompt && strstr(out.prompt, "anime"));
    CHECK(out.negative_prompt && *out.negative_prompt == '\0');
    tg_prompt_out_free(&out);
  } else {
    CHECK_MSG(false, "compose failed: %s", serr.message);
  }
  tg_prompt_template.destroy(state);
  tg_job_destroy(job);
}

/**
 * main() - run the template prompt tests
 * @argc: argument count
 * @argv: argv[1] is the source root holding tests/data/
 *
 * Return: 0 when every check passed, 1 otherwise.
 */
int main(int argc, char **argv) {
  if (argc > 1)
    src_root = argv[1];
  RUN(test_samples);
  RUN(test_snow_mountains_not_wintry);
  RUN(test_route);
  RUN(test_fallback);
  RUN(test_seasons);
  RUN(test_weather);
  RUN(test_mood);
  RUN(test_styles);
  RUN(test_bounds);
  RUN(test_table);
  RUN(test_ops);
  RUN(test_trip_style);
  return check_done("test_template");
}
