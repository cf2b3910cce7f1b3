/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_messages.c - the message codecs of proto/: strict JSON loading
 * (json.c), trips (trip.c) against the sample files, jobs (job.c) and
 * results (result.c): round trips that keep every field, and rejections
 * that name the field.
 *
 * Usage: test_messages SOURCE_ROOT (the samples are in tests/data/).
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "tg_job.h"
#include "tg_json.h"
#include "tg_limits.h"
#include "tg_result.h"
#include "tg_time.h"
#include "tg_trip.h"

#include <dirent.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *src_root = ".";

/* ---- helpers ------------------------------------------------------------ */

/* the whole of a file, NUL-terminated; NULL when it cannot be read */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  assert(buf);
  for (;;) {
    if (n + 1 >= cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert(buf);
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

/* a sample trip by file name, from tests/data/trips/ */
static char *sample(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/data/trips/%s", src_root, name);
  char *s = read_file(path, len);
  CHECK_MSG(s != NULL, "cannot read %s (pass the source root as the first argument)", path);
  return s;
}

/* a sample trip, parsed; NULL (and a failed check) when it cannot be */
static tg_trip_t *sample_trip(const char *name) {
  size_t len;
  char err[256] = "";
  char *s = sample(name, &len);
  if (!s)
    return NULL;
  tg_trip_t *t = tg_trip_parse(s, len, err, sizeof(err));
  CHECK_MSG(t != NULL, "%s: %s", name, err);
  free(s);
  return t;
}

/* the child of @v named by @part: "key" or "key[N]" */
static json_t *step(json_t *v, const char *part) {
  char key[128];
  const char *br = strchr(part, '[');
  snprintf(key, sizeof(key), "%.*s", br ? (int)(br - part) : (int)strlen(part), part);
  json_t *c = json_object_get(v, key);
  if (br)
    c = json_array_get(c, strtoul(br + 1, NULL, 10));
  return c;
}

/*
 * A copy of the JSON text @text with the field at @path (dotted parts, each
 * "key" or "key[N]") set to the JSON text @value, or removed when @value is
 * NULL. malloc()ed, compact.
 */
static char *mutate(const char *text, const char *path, const char *value) {
  json_error_t je;
  json_t *root = json_loads(text, 0, &je);
  assert(root);
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", path);
  json_t *obj = root;
  char *part = buf, *dot;
  while ((dot = strchr(part, '.'))) {
    *dot = '\0';
    obj = step(obj, part);
    assert(obj);
    part = dot + 1;
  }
  json_t *v = NULL;
  if (value) {
    v = json_loads(value, JSON_DECODE_ANY, &je);
    assert(v);
  }
  char *br = strchr(part, '[');
  if (br) {
    *br = '\0';
    json_t *arr = json_object_get(obj, part);
    size_t i = strtoul(br + 1, NULL, 10);
    assert(json_is_array(arr));
    if (v)
      json_array_set_new(arr, i, v);
    else
      json_array_remove(arr, i);
  } else if (v) {
    json_object_set_new(obj, part, v);
  } else {
    json_object_del(obj, part);
  }
  char *out = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(15));
  assert(out);
  json_decref(root);
  return out;
}

enum kind { K_TRIP, K_JOB, K_RESULT };

/*
 * Parse @text mutated at @path with @value as a message of @kind and expect
 * a rejection whose reason starts with @want.
 */
static void rejects(enum kind k, const char *text, const char *path, const char *value,
                    const char *want, int line) {
  char *bad = mutate(text, path, value);
  char err[512] = "";
  void *got = NULL;
  switch (k) {
  case K_TRIP:
    got = tg_trip_parse(bad, strlen(bad), err, sizeof(err));
    tg_trip_destroy(got);
    break;
  case K_JOB:
    got = tg_job_parse(bad, strlen(bad), err, sizeof(err));
    tg_job_destroy(got);
    break;
  case K_RESULT:
    got = tg_result_parse(bad, strlen(bad), err, sizeof(err));
    tg_result_destroy(got);
    break;
  }
  CHECK_MSG(got == NULL, "line %d: %s = %s accepted", line, path, value ? value : "(removed)");
  CHECK_MSG(got != NULL || strncmp(err, want, strlen(want)) == 0,
            "line %d: %s = %s: reason \"%s\" does not start with \"%s\"", line, path,
            value ? value : "(removed)", err, want);
  free(bad);
}

#define TRIP_REJECTS(text, path, value, want) rejects(K_TRIP, text, path, value, want, __LINE__)
#define JOB_REJECTS(text, path, value, want) rejects(K_JOB, text, path, value, want, __LINE__)
#define RESULT_REJECTS(text, path, value, want) \
  rejects(K_RESULT, text, path, value, want, __LINE__)

/* whether @s is valid UTF-8 (jansson's check) */
static bool utf8_valid(const char *s) {
  json_t *j = json_string(s);
  json_decref(j);
  return j != NULL;
}

/* ---- strict loading ---------------------------------------------------- */

/* load @s (its strlen) with the payload limit; true when accepted */
static bool loads(const char *s, char *err, size_t n) {
  json_t *v = NULL;
  bool ok = tg_json_load(s, strlen(s), TG_MAX_PAYLOAD_BYTES, &v, err, n);
  CHECK(ok == (v != NULL));
  json_decref(v);
  return ok;
}

/* @depth nested arrays (or objects) around a 1 */
static char *nested(int depth, bool objects) {
  char *s = malloc((size_t)depth * 6 + 2);
  assert(s);
  size_t o = 0;
  for (int i = 0; i < depth; i++) {
    if (objects) {
      memcpy(s + o, "{\"a\":", 5);
      o += 5;
    } else {
      s[o++] = '[';
    }
  }
  s[o++] = '1';
  for (int i = 0; i < depth; i++)
    s[o++] = objects ? '}' : ']';
  s[o] = '\0';
  return s;
}

static void test_json_load(void) {
  char err[256];

  CHECK(loads("{\"a\":1,\"b\":[true,null,\"x\"]}", err, sizeof(err)));
  CHECK(loads("{} \n", err, sizeof(err)));

  /* duplicate keys, at the root and deeper */
  CHECK(!loads("{\"a\":1,\"a\":2}", err, sizeof(err)));
  CHECK(strncmp(err, "payload: ", 9) == 0);
  CHECK(!loads("{\"o\":{\"k\":1,\"k\":1}}", err, sizeof(err)));

  /* invalid UTF-8: a stray byte, a cut sequence, an overlong form, a surrogate */
  CHECK(!loads("{\"a\":\"\xff\"}", err, sizeof(err)));
  CHECK(!loads("{\"a\":\"x\xc3\"}", err, sizeof(err)));
  CHECK(!loads("{\"a\":\"\xc0\xaf\"}", err, sizeof(err)));
  CHECK(!loads("{\"a\":\"\xed\xa0\x80\"}", err, sizeof(err)));
  CHECK(!loads("{\"\xfe\":1}", err, sizeof(err)));
  CHECK(loads("{\"a\":\"\xe4\xb8\xad\xf0\x9f\x98\x80\"}", err, sizeof(err))); /* 中😀 */

  /* NUL characters, escaped or raw */
  CHECK(!loads("{\"a\":\"x\\u0000y\"}", err, sizeof(err)));
  {
    static const char raw[] = "{\"a\":\"x\0y\"}";
    json_t *v = NULL;
    CHECK(!tg_json_load(raw, sizeof(raw) - 1, TG_MAX_PAYLOAD_BYTES, &v, err, sizeof(err)));
    CHECK(v == NULL);
  }

  /* trailing data */
  CHECK(!loads("{} {}", err, sizeof(err)));
  CHECK(!loads("{}x", err, sizeof(err)));
  CHECK(!loads("", err, sizeof(err)));

  /* nesting: 8 levels pass, 9 do not, whether arrays or objects */
  for (int objects = 0; objects <= 1; objects++) {
    char *ok8 = nested(TG_MAX_JSON_DEPTH, objects), *bad9 = nested(TG_MAX_JSON_DEPTH + 1, objects);
    CHECK_MSG(loads(ok8, err, sizeof(err)), "%s: %s", ok8, err);
    CHECK_MSG(!loads(bad9, err, sizeof(err)), "%s accepted", bad9);
    CHECK(strstr(err, "nested deeper than 8") != NULL);
    free(ok8);
    free(bad9);
  }
  /* brackets inside strings do not count; escaped quotes do not end strings */
  CHECK(loads("[\"[[[[[[[[[[[[\"]", err, sizeof(err)));
  CHECK(loads("[\"\\\"[[[[[[[[[[[[\"]", err, sizeof(err)));
  /* very deep input is refused without recursing into it */
  {
    char *deep = nested(100000, false);
    CHECK(!loads(deep, err, sizeof(err)));
    free(deep);
  }

  /* the byte limit: at the limit is read, one byte more is refused unread */
  {
    json_t *v = NULL;
    CHECK(tg_json_load("[1,2]", 5, 5, &v, err, sizeof(err)));
    json_decref(v);
    CHECK(!tg_json_load("[1,2] ", 6, 5, &v, err, sizeof(err)));
    CHECK(v == NULL);
    CHECK(strstr(err, "exceeds the limit") != NULL);
    /* memory that faults on any read: the loader must not look at it */
    long page = sysconf(_SC_PAGESIZE);
    void *guard = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert(guard != MAP_FAILED);
    CHECK(!tg_json_load(guard, TG_MAX_PAYLOAD_BYTES + 1, TG_MAX_PAYLOAD_BYTES, &v, err,
                        sizeof(err)));
    CHECK_STREQ(err, "payload: 65537 bytes exceeds the limit of 65536 bytes");
    munmap(guard, (size_t)page);
    /* the same through the codecs */
    char *big = malloc(TG_MAX_PAYLOAD_BYTES + 2);
    assert(big);
    memset(big, ' ', TG_MAX_PAYLOAD_BYTES + 1);
    big[0] = '{';
    big[TG_MAX_PAYLOAD_BYTES] = '}';
    big[TG_MAX_PAYLOAD_BYTES + 1] = '\0';
    CHECK(tg_trip_parse(big, TG_MAX_PAYLOAD_BYTES + 1, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "exceeds the limit") != NULL);
    CHECK(tg_job_parse(big, TG_MAX_PAYLOAD_BYTES + 1, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "exceeds the limit") != NULL);
    free(big);
  }

  /* small helpers */
  json_t *vals[] = {json_object(), json_array(), json_string("s"), json_integer(1),
                    json_real(1.5), json_true(), json_null()};
  /* JSON has one number type: integers and reals are both "number" */
  const char *names[] = {"object", "array", "string", "number", "number", "boolean", "null"};
  for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
    CHECK_STREQ(tg_json_type_name(vals[i]), names[i]);
    json_decref(vals[i]);
  }
  CHECK_STREQ(tg_json_type_name(NULL), "nothing");
  CHECK(tg_utf8_chars("") == 0);
  CHECK(tg_utf8_chars("a\xe4\xb8\xad\xf0\x9f\x98\x80") == 3);
  char p[64];
  CHECK_STREQ(tg_path_join(p, sizeof(p), "", "trip_id"), "trip_id");
  CHECK_STREQ(tg_path_join(p, sizeof(p), "trip.origin", "city"), "trip.origin.city");
  CHECK(tg_charset_ok("trip-1.a:b_c", TG_CS_ID));
  CHECK(!tg_charset_ok("-trip", TG_CS_ID));
  CHECK(tg_charset_ok("abc_DEF-09", TG_CS_REQUEST_ID));
  CHECK(!tg_charset_ok("a/b", TG_CS_REQUEST_ID));
  CHECK(!tg_charset_ok("a.b", TG_CS_REQUEST_ID));
  CHECK(tg_charset_ok("prod-2", TG_CS_ENV));
  CHECK(!tg_charset_ok("Prod", TG_CS_ENV));
  CHECK(tg_charset_ok("zh-CN", TG_CS_LOCALE));
  CHECK(tg_charset_ok("zh-Hans-CN", TG_CS_LOCALE));
  CHECK(!tg_charset_ok("z", TG_CS_LOCALE));
  CHECK(!tg_charset_ok("zh-", TG_CS_LOCALE));
  CHECK(!tg_charset_ok("line\nbreak", TG_CS_LINE));
  CHECK(tg_charset_ok("line\nbreak\ttab", TG_CS_ANY));
  CHECK(!tg_charset_ok("esc\x1b", TG_CS_ANY));
}

/* ---- trips --------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* every *.json in tests/data/@dir parses (@good) or is refused with a reason */
static void test_trip_dir(const char *dir, bool good) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/data/%s", src_root, dir);
  DIR *d = opendir(path);
  CHECK_MSG(d != NULL, "cannot open %s", path);
  if (!d)
    return;
  int count = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!ends_with(e->d_name, ".json"))
      continue;
    char file[1300], err[512] = "";
    size_t len;
    snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
    char *s = read_file(file, &len);
    CHECK_MSG(s != NULL, "cannot read %s", file);
    if (!s)
      continue;
    tg_trip_t *t = tg_trip_parse(s, len, err, sizeof(err));
    if (good)
      CHECK_MSG(t != NULL, "%s/%s: %s", dir, e->d_name, err);
    else
      CHECK_MSG(t == NULL && strchr(err, ':'), "%s/%s: accepted, or refused without a field",
                dir, e->d_name);
    tg_trip_destroy(t);
    free(s);
    count++;
  }
  closedir(d);
  if (good)
    CHECK_MSG(count >= 3, "only %d sample trips in %s", count, path);
}

static void test_trip_samples(void) {
  test_trip_dir("trips", true);
  test_trip_dir("bad-trips", false);

  tg_trip_t *t = sample_trip("may-day-shanghai.json");
  if (t) {
    CHECK_STREQ(t->trip_id, "trip-20240505-ouyang-0001");
    CHECK_STREQ(t->user_id, "owner-88231");
    CHECK_STREQ(t->tag, "出游");
    CHECK_STREQ(t->text, "新司机的五一出游!");
    CHECK_STREQ(t->start_time, "2024-05-02T22:38:00+08:00");
    CHECK_STREQ(t->end_time, "2024-05-05T18:57:00+08:00");
    CHECK(t->start_ms == INT64_C(1714660680000));
    CHECK(t->end_ms == INT64_C(1714906620000));
    CHECK(t->driving_seconds == 52080);
    CHECK(t->distance_km == 645.4);
    CHECK_STREQ(t->origin.address, "上海市黄浦区中山南路1891号-1893号");
    CHECK_STREQ(t->origin.city, "上海市");
    CHECK_STREQ(t->origin.weather, "晴天");
    CHECK_STREQ(t->destination.address, "上海市闵行区申长路688号");
    CHECK_STREQ(t->destination.city, "上海市");
    CHECK_STREQ(t->destination.weather, "多云");
    CHECK(t->n_via_cities == 3);
    if (t->n_via_cities == 3) {
      CHECK_STREQ(t->via_cities[0], "湖州市");
      CHECK_STREQ(t->via_cities[1], "无锡市");
      CHECK_STREQ(t->via_cities[2], "常州市");
    }
    CHECK_STREQ(t->team, "欧阳开心的队伍");
    CHECK_STREQ(t->vehicle.model, "ES6");
    CHECK_STREQ(t->vehicle.color, "黑色");
    CHECK_STREQ(t->vehicle.generation, "一代");
    CHECK(t->style == NULL);
    CHECK(t->locale == NULL);
    CHECK(json_is_object(t->json));
    tg_trip_destroy(t);
  }

  t = sample_trip("national-day-chengdu.json");
  if (t) {
    CHECK_STREQ(t->trip_id, "trip-20241007-lin-0042");
    CHECK(t->team == NULL); /* "team": null */
    CHECK(t->distance_km == 1873.9);
    CHECK(t->driving_seconds == 99300);
    CHECK(t->start_ms == INT64_C(1727737500000));
    CHECK(t->end_ms == INT64_C(1728304860000));
    CHECK(t->n_via_cities == 4);
    if (t->n_via_cities == 4)
      CHECK_STREQ(t->via_cities[3], "稻城县");
    CHECK_STREQ(t->destination.weather, "小雨");
    CHECK_STREQ(t->vehicle.model, "ET7");
    tg_trip_destroy(t);
  }

  t = sample_trip("winter-harbin-short.json");
  if (t) {
    CHECK_STREQ(t->trip_id, "trip-20250101-zhao-0003");
    CHECK(t->n_via_cities == 0);
    CHECK(t->team == NULL); /* no "team" at all */
    CHECK(t->distance_km == 122.6);
    CHECK(t->start_ms == INT64_C(1735693920000));
    CHECK(t->end_ms == INT64_C(1735720800000));
    CHECK_STREQ(t->vehicle.generation, "二代");
    tg_trip_destroy(t);
  }

  /* the trip keeps its JSON alive on its own */
  size_t len;
  char err[256];
  char *s = sample("may-day-shanghai.json", &len);
  if (s) {
    char *copy = strdup(s);
    assert(copy);
    t = tg_trip_parse(copy, len, err, sizeof(err));
    memset(copy, 'x', len);
    free(copy);
    CHECK(t && strcmp(t->origin.city, "上海市") == 0);
    tg_trip_destroy(t);
    /* not NUL-terminated input */
    char *exact = malloc(len);
    assert(exact);
    memcpy(exact, s, len);
    t = tg_trip_parse(exact, len, err, sizeof(err));
    CHECK_MSG(t != NULL, "unterminated input: %s", err);
    tg_trip_destroy(t);
    free(exact);
    free(s);
  }
  tg_trip_destroy(NULL);
}

static void test_trip_errors(void) {
  size_t len;
  char *s = sample("may-day-shanghai.json", &len);
  if (!s)
    return;
  char *base = mutate(s, "trip_id", "\"trip-20240505-ouyang-0001\""); /* compact form */
  free(s);

  TRIP_REJECTS(base, "origin.weather", "5.5", "origin.weather: expected string, got number");
  TRIP_REJECTS(base, "origin.weather", "5", "origin.weather: expected string, got number");
  TRIP_REJECTS(base, "origin.weather", "true", "origin.weather: expected string, got boolean");
  TRIP_REJECTS(base, "destination.city", "\"\"", "destination.city: must not be empty");
  TRIP_REJECTS(base, "origin.extra", "1", "origin.extra: unknown field");
  TRIP_REJECTS(base, "colour", "\"red\"", "colour: unknown field");
  TRIP_REJECTS(base, "vehicle.model", NULL, "vehicle.model: required field is missing");
  TRIP_REJECTS(base, "vehicle", "[]", "vehicle: expected object, got array");
  TRIP_REJECTS(base, "via_cities[1]", "7", "via_cities[1]: expected string, got number");
  TRIP_REJECTS(base, "via_cities", "\"湖州市\"", "via_cities: expected array, got string");
  TRIP_REJECTS(base, "trip_id", "\"a b\"", "trip_id: must be");
  TRIP_REJECTS(base, "trip_id", NULL, "trip_id: required field is missing");
  TRIP_REJECTS(base, "distance_km", "-1", "distance_km: ");
  TRIP_REJECTS(base, "distance_km", "100000.5", "distance_km: ");
  TRIP_REJECTS(base, "distance_km", "\"645.4\"", "distance_km: expected number, got string");
  TRIP_REJECTS(base, "driving_seconds", "52080.5",
               "driving_seconds: expected integer, got number");
  TRIP_REJECTS(base, "driving_seconds", "999999", "driving_seconds: ");
  TRIP_REJECTS(base, "start_time", "\"2024-05-02T22:38:00\"", "start_time: expected RFC 3339 date-time with offset");
  TRIP_REJECTS(base, "start_time", "\"2024-05-02T22:38:00.5\"", "start_time: missing UTC offset");
  TRIP_REJECTS(base, "start_time", "\"2023-02-29T22:38:00Z\"", "start_time: no such calendar");
  TRIP_REJECTS(base, "end_time", "\"2024-05-02T22:38:00+08:00\"",
               "end_time: must be after start_time");
  TRIP_REJECTS(base, "team", "5", "team: expected string or null, got number");
  TRIP_REJECTS(base, "style", "\"ink wash\"", "style: must be");
  TRIP_REJECTS(base, "locale", "\"x\"", "locale: ");
  TRIP_REJECTS(base, "tag", "\"a\\nb\"", "tag: must be");

  char err[256];
  const char *arr = "[1]";
  CHECK(tg_trip_parse(arr, strlen(arr), err, sizeof(err)) == NULL);
  CHECK_STREQ(err, "payload: expected object, got array");

  /* optional fields that pass */
  char *ok = mutate(base, "locale", "\"zh-CN\"");
  char *ok2 = mutate(ok, "style", "\"ink_wash\"");
  tg_trip_t *t = tg_trip_parse(ok2, strlen(ok2), err, sizeof(err));
  CHECK_MSG(t != NULL, "%s", err);
  if (t) {
    CHECK_STREQ(t->locale, "zh-CN");
    CHECK_STREQ(t->style, "ink_wash");
  }
  tg_trip_destroy(t);
  free(ok);
  free(ok2);
  free(base);
}

/* ---- jobs ---------------------------------------------------------------- */

static bool request_id_ok(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > 64)
    return false;
  return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static void test_request_ids(void) {
  enum { N = 10000 };
  char (*ids)[TG_MAX_REQUEST_ID_CHARS + 1] = calloc(N, sizeof(*ids));
  assert(ids);
  int bad = 0;
  for (int i = 0; i < N; i++) {
    memset(ids[i], 0x7f, sizeof(ids[i]));
    tg_request_id_generate(ids[i]);
    if (!request_id_ok(ids[i]) && bad++ < 5)
      CHECK_MSG(0, "request id \"%.*s\" is not [A-Za-z0-9_-]{1,64}", TG_MAX_REQUEST_ID_CHARS,
                ids[i]);
  }
  CHECK(bad == 0);
  qsort(ids, N, sizeof(*ids), cmp_str);
  int dups = 0;
  for (int i = 1; i < N; i++)
    dups += strcmp(ids[i - 1], ids[i]) == 0;
  CHECK_MSG(dups == 0, "%d duplicate request ids in %d", dups, N);
  free(ids);
}

/* a job of the may-day trip with every field set away from its default */
static tg_job_t *full_job(void) {
  char err[256] = "";
  tg_trip_t *trip = sample_trip("may-day-shanghai.json");
  if (!trip)
    return NULL;
  tg_job_t *job = tg_job_new(trip, "prod", "req_0001-A", INT64_C(1714660680123), err,
                             sizeof(err));
  CHECK_MSG(job != NULL, "tg_job_new: %s", err);
  if (!job) {
    tg_trip_destroy(trip);
    return NULL;
  }
  job->generation = 3;
  free(job->idempotency_key);
  job->idempotency_key = strdup("client-key 7/β");
  job->priority = true;
  job->attempt = 2;
  job->deadline_ms = INT64_C(1714664280456);
  job->options.width = 1024;
  job->options.height = 1536;
  job->options.has_seed = true;
  job->options.seed = INT64_C(9007199254740991);
  job->options.style = strdup("ink_wash");
  snprintf(job->options.variants[0], sizeof(job->options.variants[0]), "full");
  snprintf(job->options.variants[1], sizeof(job->options.variants[1]), "thumb");
  snprintf(job->options.variants[2], sizeof(job->options.variants[2]), "square_2");
  job->options.n_variants = 3;
  return job;
}

static void check_same_job(const tg_job_t *a, const tg_job_t *b) {
  CHECK_STREQ(a->request_id, b->request_id);
  CHECK(a->generation == b->generation);
  CHECK_STREQ(a->env, b->env);
  CHECK_STREQ(a->idempotency_key, b->idempotency_key);
  CHECK(a->priority == b->priority);
  CHECK(a->attempt == b->attempt);
  CHECK_MSG(a->enqueued_at_ms == b->enqueued_at_ms, "enqueued_at %" PRId64 " != %" PRId64,
            a->enqueued_at_ms, b->enqueued_at_ms);
  CHECK_MSG(a->deadline_ms == b->deadline_ms, "deadline %" PRId64 " != %" PRId64, a->deadline_ms,
            b->deadline_ms);
  CHECK(a->options.width == b->options.width);
  CHECK(a->options.height == b->options.height);
  CHECK(a->options.has_seed == b->options.has_seed);
  CHECK(a->options.seed == b->options.seed);
  CHECK_STREQ(a->options.style, b->options.style);
  CHECK(a->options.n_variants == b->options.n_variants);
  for (size_t i = 0; i < a->options.n_variants && i < b->options.n_variants; i++)
    CHECK_STREQ(a->options.variants[i], b->options.variants[i]);
  CHECK(a->trip && b->trip);
  if (a->trip && b->trip) {
    CHECK_STREQ(a->trip->trip_id, b->trip->trip_id);
    CHECK_STREQ(a->trip->text, b->trip->text);
    CHECK(a->trip->distance_km == b->trip->distance_km);
    CHECK(a->trip->start_ms == b->trip->start_ms);
    CHECK(a->trip->n_via_cities == b->trip->n_via_cities);
    CHECK_STREQ(a->trip->team, b->trip->team);
    CHECK(json_equal(a->trip->json, b->trip->json));
  }
}

static void test_job_new(void) {
  char err[256] = "";
  tg_trip_t *trip = sample_trip("may-day-shanghai.json");
  if (!trip)
    return;
  /* refusals leave the trip with the caller */
  static const char *const bad_env[] = {"Prod", "", "1prod", "pr od", "prod_1",
                                        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}; /* 33 */
  for (size_t i = 0; i < sizeof(bad_env) / sizeof(bad_env[0]); i++) {
    err[0] = '\0';
    tg_job_t *job = tg_job_new(trip, bad_env[i], NULL, 0, err, sizeof(err));
    CHECK_MSG(job == NULL, "env \"%s\" accepted", bad_env[i]);
    CHECK_MSG(strncmp(err, "env: ", 5) == 0, "env \"%s\": reason \"%s\"", bad_env[i], err);
    if (job) {
      job->trip = NULL; /* still ours */
      tg_job_destroy(job);
    }
  }
  CHECK(tg_job_new(trip, NULL, NULL, 0, err, sizeof(err)) == NULL);
  CHECK(tg_job_new(trip, "prod", "a/b", 0, err, sizeof(err)) == NULL);
  CHECK(strncmp(err, "request_id: ", 12) == 0);
  CHECK(tg_job_new(trip, "prod", "", 0, err, sizeof(err)) == NULL);

  /* defaults */
  tg_job_t *job = tg_job_new(trip, "staging-2", NULL, INT64_C(1714660680123), err, sizeof(err));
  CHECK_MSG(job != NULL, "%s", err);
  if (!job) {
    tg_trip_destroy(trip);
    return;
  }
  CHECK(request_id_ok(job->request_id));
  CHECK(job->generation == 0);
  CHECK_STREQ(job->env, "staging-2");
  CHECK_STREQ(job->idempotency_key, trip->trip_id);
  CHECK(!job->priority);
  CHECK(job->attempt == 1);
  CHECK(job->enqueued_at_ms == INT64_C(1714660680123));
  CHECK(job->deadline_ms == 0);
  CHECK(job->options.width == TG_DEFAULT_WIDTH && job->options.height == TG_DEFAULT_HEIGHT);
  CHECK(!job->options.has_seed);
  CHECK(job->options.style == NULL);
  CHECK(job->options.n_variants == 1);
  CHECK_STREQ(job->options.variants[0], TG_DEFAULT_VARIANT);
  CHECK(job->trip == trip);

  /* default job round trip: deadline null, no seed, no style */
  char *text = tg_job_serialize(job);
  CHECK(text != NULL);
  if (text) {
    CHECK(strstr(text, "\"deadline\":null") != NULL);
    CHECK(strstr(text, "\"enqueued_at\":\"2024-05-02T14:38:00.123Z\"") != NULL);
    CHECK(strstr(text, "\"size\":\"768x960\"") != NULL);
    CHECK(strstr(text, "\"seed\"") == NULL);
    CHECK(strstr(text, "\"v\":1") != NULL);
    tg_job_t *back = tg_job_parse(text, strlen(text), err, sizeof(err));
    CHECK_MSG(back != NULL, "%s\n    %s", err, text);
    if (back)
      check_same_job(job, back);
    tg_job_destroy(back);
    free(text);
  }
  tg_job_destroy(job);
  tg_job_destroy(NULL);
}

static void test_job_round_trip(void) {
  char err[512] = "";
  tg_job_t *job = full_job();
  if (!job)
    return;
  char *text = tg_job_serialize(job);
  CHECK(text != NULL);
  if (!text) {
    tg_job_destroy(job);
    return;
  }
  CHECK_MSG(strstr(text, "\"distance_km\":645.4,") != NULL, "distance_km not 645.4 in %s", text);
  CHECK(strstr(text, "645.39999") == NULL);
  CHECK(strstr(text, "\"deadline\":\"2024-05-02T15:38:00.456Z\"") != NULL);
  CHECK(strstr(text, "\"seed\":9007199254740991") != NULL);

  tg_job_t *back = tg_job_parse(text, strlen(text), err, sizeof(err));
  CHECK_MSG(back != NULL, "%s\n    %s", err, text);
  if (back) {
    check_same_job(job, back);
    CHECK_STREQ(back->request_id, "req_0001-A");
    CHECK(back->generation == 3);
    CHECK_STREQ(back->idempotency_key, "client-key 7/β");
    CHECK(back->priority);
    CHECK(back->attempt == 2);
    CHECK(back->options.width == 1024 && back->options.height == 1536);
    CHECK_STREQ(back->options.variants[2], "square_2");
    CHECK(back->trip->distance_km == 645.4);
    /* serialising again gives the same bytes */
    char *again = tg_job_serialize(back);
    CHECK(again && strcmp(again, text) == 0);
    free(again);
  }
  tg_job_destroy(back);
  tg_job_destroy(job);
  free(text);
}

static void test_job_rejections(void) {
  tg_job_t *job = full_job();
  if (!job)
    return;
  char *base = tg_job_serialize(job);
  tg_job_destroy(job);
  assert(base);

  JOB_REJECTS(base, "v", "2", "v: 2 is out of range");
  JOB_REJECTS(base, "v", "0", "v: ");
  JOB_REJECTS(base, "v", NULL, "v: required field is missing");
  JOB_REJECTS(base, "v", "\"1\"", "v: expected integer, got string");
  JOB_REJECTS(base, "request_id", "\"a/b\"", "request_id: must be letters, digits, _ and -");
  JOB_REJECTS(base, "request_id", "\"\"", "request_id: must not be empty");
  JOB_REJECTS(base, "request_id",
              "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", /* 65 */
              "request_id: 65 characters exceeds the limit of 64");
  JOB_REJECTS(base, "generation", "-1", "generation: ");
  JOB_REJECTS(base, "env", "\"Prod\"", "env: must be lowercase");
  JOB_REJECTS(base, "env", NULL, "env: required field is missing");
  JOB_REJECTS(base, "idempotency_key", "\"\"", "idempotency_key: must not be empty");
  JOB_REJECTS(base, "priority", "\"yes\"", "priority: expected boolean, got string");
  JOB_REJECTS(base, "attempt", "0", "attempt: 0 is out of range");
  JOB_REJECTS(base, "attempt", "101", "attempt: 101 is out of range");
  JOB_REJECTS(base, "enqueued_at", "\"2024-05-02T22:38:00\"", "enqueued_at: expected RFC 3339 date-time with offset");
  JOB_REJECTS(base, "enqueued_at", NULL, "enqueued_at: required field is missing");
  JOB_REJECTS(base, "deadline", "\"tomorrow\"", "deadline: ");
  JOB_REJECTS(base, "options.size", "\"10x10\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"5000x5000\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"abc\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"768x\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"0768x960\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"768x960 \"", "options.size: ");
  JOB_REJECTS(base, "options.size", "\"-768x960\"", "options.size: ");
  JOB_REJECTS(base, "options.size", "768", "options.size: expected string, got number");
  JOB_REJECTS(base, "options.seed", "-1", "options.seed: ");
  JOB_REJECTS(base, "options.seed", "9007199254740992", "options.seed: ");
  JOB_REJECTS(base, "options.style", "\"ink wash\"", "options.style: ");
  JOB_REJECTS(base, "options.variants", "[\"full\",\"full\"]",
              "options.variants[1]: duplicate variant");
  JOB_REJECTS(base, "options.variants", "[\"a\",\"b\",\"c\",\"d\",\"e\"]",
              "options.variants: must have 1-4 entries");
  JOB_REJECTS(base, "options.variants", "[]", "options.variants: must have 1-4 entries");
  JOB_REJECTS(base, "options.variants", "[\"Full\"]", "options.variants[0]: must be");
  JOB_REJECTS(base, "options.variants", "[\"full\",3]",
              "options.variants[1]: expected string, got number");
  JOB_REJECTS(base, "options.colour", "1", "options.colour: unknown field");
  JOB_REJECTS(base, "options", "[]", "options: expected object, got array");
  JOB_REJECTS(base, "extra", "1", "extra: unknown field");
  JOB_REJECTS(base, "trip", NULL, "trip: required field is missing");
  JOB_REJECTS(base, "trip", "\"x\"", "trip: expected object, got string");
  JOB_REJECTS(base, "trip.origin.weather", "5.5",
              "trip.origin.weather: expected string, got number");
  JOB_REJECTS(base, "trip.via_cities[0]", "null", "trip.via_cities[0]: expected string, got null");
  JOB_REJECTS(base, "trip.trip_id", NULL, "trip.trip_id: required field is missing");
  JOB_REJECTS(base, "trip.end_time", "\"2024-05-02T22:38:00+08:00\"", "trip.end_time: ");

  /* "WIDTHxHEIGHT" is exactly that: one x, digits only (job.schema.json's pattern) */
  static const char *const sloppy[] = {"\"768xx960\"", "\"768x 960\"", "\"768x+960\"",
                                       "\"768x0960\"", "\"768X960\"", "\" 768x960\"",
                                       "\"76800x960\"", "\"768x960x2\"", "\"63x960\""};
  for (size_t i = 0; i < sizeof(sloppy) / sizeof(sloppy[0]); i++)
    JOB_REJECTS(base, "options.size", sloppy[i], "options.size: ");
  static const char *const sizes[] = {"\"64x64\"", "\"4096x4096\"", "\"1000x64\""};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    char *good = mutate(base, "options.size", sizes[i]);
    char err[256] = "";
    tg_job_t *j = tg_job_parse(good, strlen(good), err, sizeof(err));
    CHECK_MSG(j != NULL, "options.size %s: %s", sizes[i], err);
    tg_job_destroy(j);
    free(good);
  }

  char err[256];
  CHECK(tg_job_parse("[]", 2, err, sizeof(err)) == NULL);
  CHECK_STREQ(err, "payload: expected object, got array");
  CHECK(tg_job_parse("{", 1, err, sizeof(err)) == NULL);
  CHECK(strncmp(err, "payload: invalid JSON", 21) == 0);
  free(base);
}

/* ---- results ------------------------------------------------------------- */

static void check_same_result(const tg_result_t *a, const tg_result_t *b) {
  CHECK_STREQ(a->request_id, b->request_id);
  CHECK(a->generation == b->generation);
  CHECK_STREQ(a->trip_id, b->trip_id);
  CHECK_STREQ(a->env, b->env);
  CHECK(a->succeeded == b->succeeded);
  CHECK(a->n_images == b->n_images);
  for (size_t i = 0; i < a->n_images && i < b->n_images; i++) {
    const struct tg_image *x = &a->images[i], *y = &b->images[i];
    CHECK_STREQ(x->variant, y->variant);
    CHECK_STREQ(x->url, y->url);
    CHECK_STREQ(x->key, y->key);
    CHECK(x->width == y->width && x->height == y->height);
    CHECK_STREQ(x->format, y->format);
    CHECK(x->bytes == y->bytes);
    CHECK_STREQ(x->sha256, y->sha256);
  }
  CHECK_STREQ(a->prompt, b->prompt);
  CHECK_STREQ(a->prompt_source, b->prompt_source);
  CHECK_STREQ(a->negative_prompt, b->negative_prompt);
  CHECK(a->has_seed == b->has_seed);
  CHECK(!a->has_seed || a->seed == b->seed);
  CHECK(a->attempt == b->attempt);
  CHECK_STREQ(a->worker, b->worker);
  CHECK(memcmp(&a->timings_ms, &b->timings_ms, sizeof(a->timings_ms)) == 0);
  if (!a->succeeded && !b->succeeded) {
    CHECK(a->error.code == b->error.code);
    CHECK_STREQ(a->error.stage, b->error.stage);
    CHECK_STREQ(a->error.message, b->error.message);
    CHECK(a->error.retryable == b->error.retryable);
  }
}

/* serialise @r, parse it back and compare; returns the text (caller frees) */
static char *result_round_trip(const tg_result_t *r) {
  char err[512] = "";
  char *text = tg_result_serialize(r);
  CHECK(text != NULL);
  if (!text)
    return NULL;
  tg_result_t *back = tg_result_parse(text, strlen(text), err, sizeof(err));
  CHECK_MSG(back != NULL, "%s\n    %.300s", err, text);
  if (back)
    check_same_result(r, back);
  tg_result_destroy(back);
  return text;
}

static void set_image(struct tg_image *im, const char *variant, int w, int h, char fill) {
  snprintf(im->variant, sizeof(im->variant), "%s", variant);
  char buf[256];
  snprintf(buf, sizeof(buf), "https://img.example.com/prod/2024/05/02/req_0001-A/%s.jpg",
           variant);
  im->url = strdup(buf);
  snprintf(buf, sizeof(buf), "prod/2024/05/02/req_0001-A/%s.jpg", variant);
  im->key = strdup(buf);
  im->width = w;
  im->height = h;
  snprintf(im->format, sizeof(im->format), "jpeg");
  im->bytes = 123456 + w;
  memset(im->sha256, fill, 64);
  im->sha256[64] = '\0';
}

static void test_result_round_trip(void) {
  tg_job_t *job = full_job();
  if (!job)
    return;
  tg_result_t *r = tg_result_for_job(job);
  CHECK(r != NULL);
  if (!r) {
    tg_job_destroy(job);
    return;
  }
  CHECK_STREQ(r->request_id, job->request_id);
  CHECK(r->generation == job->generation);
  CHECK_STREQ(r->trip_id, job->trip->trip_id);
  CHECK_STREQ(r->env, job->env);
  CHECK(r->attempt == job->attempt);
  CHECK(r->succeeded);
  CHECK(r->n_images == 0);

  set_image(&r->images[0], "full", 1024, 1536, 'a');
  set_image(&r->images[1], "thumb", 256, 384, '7');
  r->n_images = 2;
  r->prompt = strdup("A night drive from 上海市 through 湖州市,\nink wash style");
  r->prompt_source = strdup("template");
  r->negative_prompt = strdup("");
  r->has_seed = true;
  r->seed = INT64_C(9007199254740991);
  r->worker = strdup("gpu-worker-3/pid 4711");
  r->timings_ms = (struct tg_timings){.queued = 12, .prompt = 340, .diffusion = 5120,
                                      .postproc = 88, .upload = 210, .total = 5770};
  char *text = result_round_trip(r);
  if (text) {
    CHECK(strstr(text, "\"status\":\"succeeded\"") != NULL);
    CHECK(strstr(text, "\"error\":null") != NULL);
    CHECK(strstr(text, "\"v\":1") != NULL);
  }
  free(text);
  tg_result_destroy(r);

  /* a failed result with the minimum: no images, nulls */
  r = tg_result_for_job(job);
  assert(r);
  tg_result_fail(r, TG_CODE_UPLOAD_FAILED, "upload", true, "object storage answered %d after %s",
                 503, "3 tries");
  CHECK(!r->succeeded);
  CHECK(r->error.code == TG_CODE_UPLOAD_FAILED);
  CHECK_STREQ(r->error.stage, "upload");
  CHECK_STREQ(r->error.message, "object storage answered 503 after 3 tries");
  CHECK(r->error.retryable);
  text = result_round_trip(r);
  if (text) {
    CHECK(strstr(text, "\"status\":\"failed\"") != NULL);
    CHECK(strstr(text, "\"code\":\"upload_failed\"") != NULL);
    CHECK(strstr(text, "\"prompt\":null") != NULL);
    CHECK(strstr(text, "\"seed\":null") != NULL);
  }
  free(text);
  /* failing again replaces the error */
  tg_result_fail(r, TG_CODE_DEADLINE_EXCEEDED, NULL, false, "deadline passed");
  CHECK(r->error.code == TG_CODE_DEADLINE_EXCEEDED);
  CHECK_STREQ(r->error.stage, "queue");
  CHECK(!r->error.retryable);
  free(result_round_trip(r));
  tg_result_destroy(r);

  /* each wire code survives the trip */
  for (int c = 0; c < TG_CODE__COUNT; c++) {
    r = tg_result_new("req-x", 0, "dev");
    assert(r);
    tg_result_fail(r, (tg_code_t)c, "input", c % 2, "code %d", c);
    free(result_round_trip(r));
    tg_result_destroy(r);
  }
  tg_job_destroy(job);
  tg_result_destroy(NULL);
}

/* tg_result_fail with @msg; checks the stored message and a round trip */
static void fail_with(const char *msg, size_t want_chars, size_t want_bytes, int line) {
  tg_result_t *r = tg_result_new("req-1", 0, "prod");
  assert(r);
  tg_result_fail(r, TG_CODE_INTERNAL, "prompt", false, "%s", msg);
  const char *m = r->error.message;
  CHECK_MSG(m != NULL, "line %d: no message", line);
  if (m) {
    CHECK_MSG(utf8_valid(m), "line %d: message is not valid UTF-8", line);
    CHECK_MSG(tg_utf8_chars(m) == want_chars, "line %d: %zu chars, want %zu", line,
              tg_utf8_chars(m), want_chars);
    CHECK_MSG(strlen(m) == want_bytes, "line %d: %zu bytes, want %zu", line, strlen(m),
              want_bytes);
    CHECK_MSG(strncmp(m, msg, strlen(m)) == 0, "line %d: message is not a prefix of the input",
              line);
  }
  free(result_round_trip(r));
  tg_result_destroy(r);
}

/* @n copies of @unit after @prefix */
static char *repeat(const char *prefix, const char *unit, size_t n) {
  size_t p = strlen(prefix), u = strlen(unit);
  char *s = malloc(p + u * n + 1);
  assert(s);
  memcpy(s, prefix, p);
  for (size_t i = 0; i < n; i++)
    memcpy(s + p + i * u, unit, u);
  s[p + u * n] = '\0';
  return s;
}

static void test_result_messages(void) {
  const size_t max = TG_MAX_ERROR_MESSAGE_CHARS;
  char *s;

  s = repeat("", "a", max);
  fail_with(s, max, max, __LINE__);
  free(s);
  s = repeat("", "a", max + 1);
  fail_with(s, max, max, __LINE__);
  free(s);
  s = repeat("", "\xc3\xa9", 2000); /* é: 2 bytes */
  fail_with(s, max, 2 * max, __LINE__);
  free(s);
  s = repeat("ab", "\xe4\xb8\xad", 2000); /* 中: 3 bytes, the byte cut falls inside one */
  fail_with(s, max, 2 + 3 * (max - 2), __LINE__);
  free(s);
  s = repeat("", "\xf0\x9f\x98\x80", 1100); /* 😀: 4 bytes */
  fail_with(s, max, 4 * max, __LINE__);
  free(s);
  s = repeat("x", "\xf0\x9f\x98\x80", 1100);
  fail_with(s, max, 1 + 4 * (max - 1), __LINE__);
  free(s);

  /* invalid UTF-8 from a peer: the valid prefix is kept */
  fail_with("abc\xff\xfe" "def", 3, 3, __LINE__);
  fail_with("abc\xe4\xb8", 3, 3, __LINE__);
  fail_with("\xff", 0, 0, __LINE__);
  fail_with("\x80" "abc", 0, 0, __LINE__);
  fail_with("", 0, 0, __LINE__);

  /* control characters from a peer must not make the result unreadable */
  tg_result_t *r = tg_result_new("req-1", 0, "prod");
  assert(r);
  tg_result_fail(r, TG_CODE_PROMPT_FAILED, "prompt", true, "peer said: \x1b[31mboom\x01%s",
                 "\x7f");
  char *text = tg_result_serialize(r);
  assert(text);
  char err[256] = "";
  tg_result_t *back = tg_result_parse(text, strlen(text), err, sizeof(err));
  CHECK_MSG(back != NULL,
            "a failed result built from a peer's message with control characters must read back");
  if (!back)
    fprintf(stderr, "    tg_result_parse: %s\n", err);
  tg_result_destroy(back);
  free(text);
  tg_result_destroy(r);
}

static void test_result_rejections(void) {
  tg_result_t *r = tg_result_new("req-1", 2, "prod");
  assert(r);
  r->trip_id = strdup("trip-1");
  set_image(&r->images[0], "full", 768, 960, 'f');
  r->n_images = 1;
  char *ok = tg_result_serialize(r);
  tg_result_fail(r, TG_CODE_DIFFUSION_FAILED, "diffusion", true, "backend down");
  char *failed = tg_result_serialize(r);
  tg_result_destroy(r);
  assert(ok && failed);

  RESULT_REJECTS(ok, "error",
                 "{\"code\":\"internal\",\"stage\":\"queue\",\"message\":\"x\",\"retryable\":true}",
                 "error: must be null when status is succeeded");
  RESULT_REJECTS(failed, "error", "null", "error: required when status is failed");
  RESULT_REJECTS(failed, "error", NULL, "error: required field is missing");
  RESULT_REJECTS(failed, "error.code", "\"oops\"", "error.code: unknown code \"oops\"");
  RESULT_REJECTS(failed, "error.retryable", NULL, "error.retryable: required field is missing");
  RESULT_REJECTS(failed, "error.extra", "1", "error.extra: unknown field");
  RESULT_REJECTS(ok, "status", "\"done\"", "status: must be succeeded or failed");
  RESULT_REJECTS(ok, "v", "2", "v: ");
  RESULT_REJECTS(ok, "request_id", "\"a/b\"", "request_id: ");
  RESULT_REJECTS(ok, "env", "\"PROD\"", "env: ");
  RESULT_REJECTS(ok, "seed", NULL, "seed: required field is missing");
  RESULT_REJECTS(ok, "seed", "-5", "seed: ");
  RESULT_REJECTS(ok, "attempt", "0", "attempt: ");
  RESULT_REJECTS(ok, "timings_ms.total", "-1", "timings_ms.total: ");
  RESULT_REJECTS(ok, "timings_ms.total", NULL, "timings_ms.total: required field is missing");
  RESULT_REJECTS(ok, "images[0]", "7", "images[0]: expected object, got number");
  RESULT_REJECTS(ok, "images[0].sha256", "\"ABC\"", "images[0].sha256: ");
  RESULT_REJECTS(ok, "images[0].format", "\"gif\"", "images[0].format: must be jpeg, webp or png");
  RESULT_REJECTS(ok, "images[0].width", "0", "images[0].width: ");
  RESULT_REJECTS(ok, "images",
                 "[{},{},{},{},{}]", "images: more than 4 entries");
  free(ok);
  free(failed);
}

/**
 * main() - run the message codec tests
 * @argc: argument count
 * @argv: argv[1] is the source root holding tests/data/
 *
 * Return: 0 when every check passed, 1 otherwise.
 */
int main(int argc, char **argv) {
  if (argc > 1)
    src_root = argv[1];
  test_json_load();
  test_trip_samples();
  test_trip_errors();
  test_request_ids();
  test_job_new();
  test_job_round_trip();
  test_job_rejections();
  test_result_round_trip();
  test_result_messages();
  test_result_rejections();
  assert(check_count > 0);
  return check_done("test_messages");
}
