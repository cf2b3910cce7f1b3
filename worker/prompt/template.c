/* SPDX-License-Identifier: Apache-2.0 */
/*
 * template.c - the built-in, offline prompt backend ("template"): a
 * deterministic English SDXL prompt from a trip, made of comma-separated
 * concrete phrases from const tables. In order: the style, a famous
 * landmark of one city on the route (landmarks.c), the season of the start
 * date, the weather as light and palette, the mood of the text and tag, an
 * empty road to composite the owner's car on, realistic high-definition
 * wording and an explicit "no cars". The same trip and style always give
 * the same bytes, at most TEMPLATE_MAX_CHARS of them; when the phrases
 * would be longer, the least important ones are left out in a fixed order.
 */
#include "landmarks.h"
#include "prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_MAX_CHARS 600
#define MAX_MOODS 2

/* A weather word of the trip's places: the light and palette it gives. */
struct weather {
  const char *key; /* matched anywhere in the weather text */
  const char *light;
  const char *palette;
  const char *trace; /* a short detail when it is the second weather */
};

/*
 * Of all rows whose key occurs in a weather text, the one that occurs first
 * wins (the weather at the start of "晴转多云"), and of those the longest
 * key ("雷阵雨" over "阵雨" over "雨"); row order does not matter.
 */
#define W_SUN                                                                                      \
  "warm golden sunlight", "vivid saturated colours under a clear blue sky",                        \
      "patches of clear blue sky"
#define W_CLOUD                                                                                    \
  "soft sunlight through scattered clouds", "gentle natural palette with white cumulus clouds",    \
      "drifting white clouds"
#define W_OVERCAST                                                                                 \
  "soft even overcast light", "muted grey-blue palette under a low cloud ceiling",                 \
      "a grey overcast sky"
#define W_RAIN                                                                                     \
  "moody rainy light", "deep teal and slate grey palette with fine rain streaks",                  \
      "rain-soaked road reflections"
#define W_HEAVY_RAIN                                                                               \
  "dramatic dim light through heavy rain", "dark slate palette with sheets of rain",               \
      "heavy rain clouds"
#define W_THUNDER                                                                                  \
  "dramatic thunderstorm light with distant lightning", "deep indigo and steel grey palette",      \
      "towering thunderclouds"
#define W_SNOW                                                                                     \
  "soft white light with falling snow", "clean white and icy blue palette",                        \
      "fresh snow on the ground"
#define W_HEAVY_SNOW                                                                               \
  "bright diffused light in heavy snowfall",                                                       \
      "pure white and cold blue palette with deep snowdrifts",                                     \
      "deep fresh snow covering the ground"
#define W_FOG                                                                                      \
  "ethereal soft light through thick fog", "pale misty pastel palette", "low mist in the valleys"
#define W_HAZE "hazy diffused sunlight", "warm muted sepia palette", "a soft hazy horizon"
#define W_DUST "dusty golden light", "ochre and sand palette", "fine dust in the air"
#define W_WIND                                                                                     \
  "clear crisp light on a windy day", "fresh bright palette with wind-swept grass",                \
      "wind-swept clouds"

static const struct weather weathers[] = {
    {"晴", W_SUN},
    {"多云", W_CLOUD},
    {"阴", W_OVERCAST},
    {"雨", W_RAIN},
    {"小雨", "soft diffused light after light rain", "cool fresh green and slate palette",
     "a glistening wet road surface"},
    {"中雨", W_RAIN},
    {"大雨", W_HEAVY_RAIN},
    {"暴雨", W_HEAVY_RAIN},
    {"阵雨", "shifting light between passing showers", "fresh rain-washed colours",
     "a passing rain shower"},
    {"雷阵雨", W_THUNDER},
    {"雷", W_THUNDER},
    {"冻雨", "cold grey light with freezing rain", "icy blue-grey palette", "ice-glazed branches"},
    {"雨夹雪", "cold grey light with falling sleet", "icy blue-grey palette",
     "wet sleet on the ground"},
    {"雪", W_SNOW},
    {"小雪", "soft white light with gently falling snow", "clean white and pale blue palette",
     "a light dusting of snow"},
    {"中雪", W_SNOW},
    {"大雪", W_HEAVY_SNOW},
    {"暴雪", W_HEAVY_SNOW},
    {"冰雹", "harsh stormy light", "steel grey palette with scattered hailstones",
     "hailstones on the grass"},
    {"霜", "cold morning light", "silver and pale blue palette", "frost on the grass"},
    {"雾", W_FOG},
    {"霾", W_HAZE},
    {"沙", W_DUST},
    {"尘", W_DUST},
    {"风", W_WIND},
    {"台风", "dramatic stormy light", "dark teal palette with wind-driven rain",
     "storm clouds racing overhead"},
    {"sun", W_SUN},
    {"clear", W_SUN},
    {"cloud", W_CLOUD},
    {"overcast", W_OVERCAST},
    {"rain", W_RAIN},
    {"storm", W_THUNDER},
    {"snow", W_SNOW},
    {"fog", W_FOG},
    {"mist", W_FOG},
    {"haze", W_HAZE},
    {"wind", W_WIND},
};

/* when neither place has a weather the table knows */
static const struct weather weather_default = {"", "soft natural daylight",
                                               "balanced natural colours", ""};

/* Season by month of the start date (index 0 = January). */
static const char *const seasons[12] = {
    "winter, frost-touched trees and crisp cold air",
    "winter, frost-touched trees and crisp cold air",
    "spring, fresh green leaves and blossoming trees",
    "spring, fresh green leaves and blossoming trees",
    "spring, fresh green leaves and blossoming trees",
    "summer, lush deep-green foliage and long bright days",
    "summer, lush deep-green foliage and long bright days",
    "summer, lush deep-green foliage and long bright days",
    "autumn, golden and crimson foliage",
    "autumn, golden and crimson foliage",
    "autumn, golden and crimson foliage",
    "winter, frost-touched trees and crisp cold air",
};

/*
 * Mood keywords of the tag and text, in priority order: the first
 * MAX_MOODS distinct moods found are used. A matched keyword is blanked
 * out, so "雪山" does not also count as "雪".
 */
struct mood {
  const char *key;
  const char *phrase;
};

#define M_FIRST "adventurous excitement of a first road trip"
#define M_FAMILY "warm family togetherness"
#define M_ROMANCE "tender romantic atmosphere"
#define M_FRIENDS "cheerful companionship"
#define M_PEAKS "awe-inspiring mountain grandeur"
#define M_WINTRY "crisp wintry wonder"
#define M_SEA "breezy seaside calm"
#define M_SERENE "serene restful calm"
#define M_NOSTALGIA "gentle nostalgic mood"
#define M_JOY "joyful carefree atmosphere"
#define M_HOLIDAY "festive holiday cheer"

static const struct mood moods[] = {
    {"新司机", M_FIRST}, {"新手", M_FIRST},   {"第一次", M_FIRST},   {"首次", M_FIRST},
    {"爸妈", M_FAMILY},  {"父母", M_FAMILY},  {"家人", M_FAMILY},    {"全家", M_FAMILY},
    {"一家", M_FAMILY},  {"孩子", M_FAMILY},  {"带娃", M_FAMILY},    {"宝宝", M_FAMILY},
    {"回家", M_FAMILY},  {"老家", M_FAMILY},  {"家乡", M_FAMILY},    {"情侣", M_ROMANCE},
    {"约会", M_ROMANCE}, {"浪漫", M_ROMANCE}, {"蜜月", M_ROMANCE},   {"纪念日", M_ROMANCE},
    {"朋友", M_FRIENDS}, {"兄弟", M_FRIENDS}, {"闺蜜", M_FRIENDS},   {"伙伴", M_FRIENDS},
    {"雪山", M_PEAKS},   {"高原", M_PEAKS},   {"冰", M_WINTRY},      {"雪", M_WINTRY},
    {"海", M_SEA},       {"放松", M_SERENE},  {"安静", M_SERENE},    {"治愈", M_SERENE},
    {"休息", M_SERENE},  {"累", M_SERENE},    {"回忆", M_NOSTALGIA}, {"怀念", M_NOSTALGIA},
    {"开心", M_JOY},     {"快乐", M_JOY},     {"高兴", M_JOY},       {"出游", M_JOY},
    {"自驾", M_JOY},     {"旅行", M_JOY},     {"旅游", M_JOY},       {"兜风", M_JOY},
    {"五一", M_HOLIDAY}, {"国庆", M_HOLIDAY}, {"元旦", M_HOLIDAY},   {"春节", M_HOLIDAY},
    {"过年", M_HOLIDAY}, {"中秋", M_HOLIDAY}, {"假期", M_HOLIDAY},
};

static const char mood_default[] = "peaceful atmosphere";

/* Rendering styles; names compare ignoring ASCII case, '-' equal to '_'. */
struct style {
  const char *name;
  const char *lead;   /* first phrase of the prompt */
  const char *finish; /* realistic, high-definition wording at the end */
};

#define PHOTO_FINISH "photorealistic, sharp focus, highly detailed, high definition, 8k"
#define ART_FINISH "realistic proportions and lighting, finely detailed, high definition"

static const struct style styles[] = {
    {"default", "cinematic photograph", PHOTO_FINISH},
    {"cinematic", "cinematic photograph", PHOTO_FINISH},
    {"photo", "cinematic photograph", PHOTO_FINISH},
    {"watercolor", "delicate watercolor painting with soft washes on textured paper", ART_FINISH},
    {"watercolour", "delicate watercolor painting with soft washes on textured paper", ART_FINISH},
    {"oil-painting", "rich impressionist oil painting with visible brush strokes", ART_FINISH},
    {"anime", "anime background art with vibrant cel shading", ART_FINISH},
    {"ink-wash", "traditional Chinese ink-wash painting in shan shui style", ART_FINISH},
};

static const char composition[] = "wide-angle view with an empty road in the lower foreground";
static const char no_cars[] = "no cars, no vehicles, no people in the foreground";

/* ---- matching helpers ---- */

static char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* offset of @needle in @hay, ASCII letters compared without case; -1 if absent */
static long find_ci(const char *hay, const char *needle) {
  size_t nl = strlen(needle);
  for (const char *p = hay; *p; p++) {
    size_t i = 0;
    while (i < nl && p[i] && ascii_lower(p[i]) == ascii_lower(needle[i]))
      i++;
    if (i == nl)
      return (long)(p - hay);
  }
  return -1;
}

/* the weather row of a weather text, or NULL */
static const struct weather *weather_find(const char *text) {
  const struct weather *best = NULL;
  long best_at = -1;
  if (!text)
    return NULL;
  for (size_t i = 0; i < sizeof(weathers) / sizeof(weathers[0]); i++) {
    long at = find_ci(text, weathers[i].key);
    if (at < 0)
      continue;
    if (!best || at < best_at || (at == best_at && strlen(weathers[i].key) > strlen(best->key))) {
      best = &weathers[i];
      best_at = at;
    }
  }
  return best;
}

/* the season phrase of an RFC 3339 time ("2024-05-02T..."), or NULL */
static const char *season_of(const char *start_time) {
  int month;
  if (!start_time || strlen(start_time) < 7 || start_time[4] != '-' || start_time[5] < '0' ||
      start_time[5] > '9' || start_time[6] < '0' || start_time[6] > '9')
    return NULL;
  month = (start_time[5] - '0') * 10 + (start_time[6] - '0');
  return month >= 1 && month <= 12 ? seasons[month - 1] : NULL;
}

static bool style_name_eq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a == '_' ? '-' : ascii_lower(*a), y = *b == '_' ? '-' : ascii_lower(*b);
    if (x != y)
      return false;
  }
  return *a == *b;
}

static const struct style *style_find(const char *name) {
  if (name)
    for (size_t i = 0; i < sizeof(styles) / sizeof(styles[0]); i++)
      if (style_name_eq(name, styles[i].name))
        return &styles[i];
  return &styles[0];
}

/*
 * The landmark of the route: the destination's city when the table knows
 * it, else the first known via city, else the origin's, else the fallback
 * countryside scene.
 */
static const struct tg_landmark *route_landmark(const tg_trip_t *t) {
  const struct tg_landmark *l = tg_landmark_find(t->destination.city);
  for (size_t i = 0; !l && i < t->n_via_cities; i++)
    l = tg_landmark_find(t->via_cities[i]);
  if (!l)
    l = tg_landmark_find(t->origin.city);
  return l ? l : &tg_landmark_fallback;
}

/*
 * Up to MAX_MOODS distinct mood phrases of the tag and text into @out, their
 * number into @n; false when out of memory.
 */
static bool moods_of(const tg_trip_t *t, const char **out, size_t *n) {
  const char *tag = t->tag ? t->tag : "", *text = t->text ? t->text : "";
  size_t tl = strlen(tag), xl = strlen(text);
  char *buf = malloc(tl + xl + 2);
  *n = 0;
  if (!buf)
    return false;
  memcpy(buf, tag, tl);
  buf[tl] = '\n';
  memcpy(buf + tl + 1, text, xl + 1);
  for (size_t i = 0; i < sizeof(moods) / sizeof(moods[0]) && *n < MAX_MOODS; i++) {
    size_t kl = strlen(moods[i].key);
    bool hit = false, dup = false;
    for (char *p = strstr(buf, moods[i].key); p; p = strstr(p + kl, moods[i].key)) {
      memset(p, ' ', kl); /* whole UTF-8 characters become spaces */
      hit = true;
    }
    for (size_t j = 0; j < *n; j++)
      dup = dup || strcmp(out[j], moods[i].phrase) == 0;
    if (hit && !dup)
      out[(*n)++] = moods[i].phrase;
  }
  free(buf);
  return true;
}

/* ---- assembly ---- */

/* One phrase of the prompt; drop > 0: left out (highest first) when too long. */
struct part {
  const char *text;
  int drop;
};

/* join the kept parts with ", " into @buf (at least TEMPLATE_MAX_CHARS + 1) */
static void join_parts(const struct part *p, size_t np, char *buf) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < np; i++) {
    size_t tl;
    if (!p[i].text || !*p[i].text)
      continue;
    tl = strlen(p[i].text);
    if (len + (len ? 2 : 0) + tl > TEMPLATE_MAX_CHARS)
      continue; /* only reachable if the required parts alone were too long */
    if (len) {
      memcpy(buf + len, ", ", 2);
      len += 2;
    }
    memcpy(buf + len, p[i].text, tl + 1);
    len += tl;
  }
}

static size_t joined_len(const struct part *p, size_t np) {
  size_t len = 0;
  for (size_t i = 0; i < np; i++)
    if (p[i].text && *p[i].text)
      len += (len ? 2 : 0) + strlen(p[i].text);
  return len;
}

char *tg_template_prompt(const tg_trip_t *trip, const char *style) {
  const struct style *st = style_find(style);
  const struct tg_landmark *lm = route_landmark(trip);
  const struct weather *dst = weather_find(trip->destination.weather);
  const struct weather *org = weather_find(trip->origin.weather);
  const struct weather *main_w = dst ? dst : org ? org : &weather_default;
  const char *trace = dst && org && strcmp(dst->trace, org->trace) != 0 ? org->trace : NULL;
  const char *mood[MAX_MOODS] = {NULL, NULL};
  size_t n_moods = 0;
  char place[256], buf[TEMPLATE_MAX_CHARS + 1];

  if (!moods_of(trip, mood, &n_moods))
    return NULL;
  if (*lm->city_en)
    snprintf(place, sizeof(place), "%s in %s, China", lm->landmark, lm->city_en);
  else
    snprintf(place, sizeof(place), "%s in China", lm->landmark);

  struct part parts[] = {
      {st->lead, 0},
      {place, 0},
      {season_of(trip->start_time), 3},
      {main_w->light, 0},
      {main_w->palette, 4},
      {trace, 6},
      {n_moods ? mood[0] : mood_default, 2},
      {n_moods > 1 ? mood[1] : NULL, 7},
      {composition, 5},
      {st->finish, 1},
      {no_cars, 0},
  };
  size_t np = sizeof(parts) / sizeof(parts[0]);

  while (joined_len(parts, np) > TEMPLATE_MAX_CHARS) {
    size_t worst = np;
    for (size_t i = 0; i < np; i++)
      if (parts[i].text && parts[i].drop > 0 && (worst == np || parts[i].drop > parts[worst].drop))
        worst = i;
    if (worst == np)
      break;
    parts[worst].text = NULL;
  }
  join_parts(parts, np, buf);
  return strdup(buf);
}

/* ---- the ops table ---- */

struct template_state {
  char *negative;
};

static tg_err_t template_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                                size_t n) {
  struct template_state *s;
  if (!conf || !state) {
    if (errstr && n)
      snprintf(errstr, n, "template prompt: no configuration");
    return TG_ERR_INVAL;
  }
  s = calloc(1, sizeof(*s));
  if (!s || !(s->negative = strdup(conf->negative_prompt))) {
    free(s);
    if (errstr && n)
      snprintf(errstr, n, "template prompt: out of memory");
    return TG_ERR_NOMEM;
  }
  *state = s;
  return TG_OK;
}

static void template_destroy(void *state) {
  struct template_state *s = state;
  if (!s)
    return;
  free(s->negative);
  free(s);
}

static bool template_compose(void *state, const tg_job_t *job, struct tg_prompt_out *out,
                             struct tg_stage_error *err) {
  const struct template_state *s = state;
  const char *style;
  memset(out, 0, sizeof(*out));
  if (!s || !job || !job->trip) {
    tg_stage_fail(err, TG_CODE_INTERNAL, false, "template prompt: no job or trip");
    return false;
  }
  style = job->options.style ? job->options.style : job->trip->style;
  out->prompt = tg_template_prompt(job->trip, style ? style : "default");
  out->negative_prompt = strdup(s->negative);
  if (!out->prompt || !out->negative_prompt) {
    tg_prompt_out_free(out);
    tg_stage_fail(err, TG_CODE_PROMPT_FAILED, true, "template prompt: out of memory");
    return false;
  }
  snprintf(out->source, sizeof(out->source), "template");
  return true;
}

const struct tg_prompt_ops tg_prompt_template = {
    .name = "template",
    .create = template_create,
    .destroy = template_destroy,
    .compose = template_compose,
};
