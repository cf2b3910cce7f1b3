/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_catalogue.c - the asset catalogue (worker/postproc/catalogue.c) and
 * the catalogue the project ships (deploy/assets, made by
 * scripts/make-assets): it loads, every sample trip's car resolves as
 * documented, the fallbacks come in order (exact, model_color,
 * default_color, none), names match without regard to case and surrounding
 * white space, the shipped cutouts are shaded (not flat) with transparent
 * backgrounds, the logo's opaque pixels are its few exact colours, and
 * broken catalogues (missing file, not a PNG, no alpha, path traversal,
 * unknown keys, no or two default colours, duplicates, wrong version) are
 * refused with messages naming the entry.
 *
 * Argument: the source root.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "postproc/catalogue.h"
#include "tg_trip.h"

#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_IMG (8 << 20)

static const char *src_root = ".";
static char assets[512];
static char tmpdir[256];

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

static void write_file(const char *dir, const char *name, const void *data, size_t len) {
  char path[2048];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "wb");
  assert(f);
  assert(fwrite(data, 1, len, f) == len);
  assert(fclose(f) == 0);
}

static void write_str(const char *dir, const char *name, const char *text) {
  write_file(dir, name, text, strlen(text));
}

static void copy_asset(const char *rel, const char *dir, const char *name) {
  char path[2048];
  size_t len = 0;
  char *data;
  snprintf(path, sizeof(path), "%s/%s", assets, rel);
  data = read_file(path, &len);
  assert(data);
  write_file(dir, name, data, len);
  free(data);
}

/* a fresh directory holding logo.png, car.png, car2.png (real cutouts) */
static const char *fresh_dir(void) {
  static int serial;
  static char dir[512];
  snprintf(dir, sizeof(dir), "%s/c%d", tmpdir, serial++);
  assert(mkdir(dir, 0700) == 0);
  copy_asset("logo.png", dir, "logo.png");
  copy_asset("vehicles/es6-black.png", dir, "car.png");
  copy_asset("vehicles/es6-white.png", dir, "car2.png");
  return dir;
}

/* a catalogue.json with @vehicles as the array text and @logo as the logo */
static void write_catalogue(const char *dir, const char *logo, const char *vehicles) {
  char json[4096];
  int len = snprintf(json, sizeof(json), "{\"version\": 1, \"logo\": \"%s\", \"vehicles\": %s}",
                     logo, vehicles);
  write_file(dir, "catalogue.json", json, (size_t)len);
}

/* load must fail and the message must contain every one of @want (NULL-terminated) */
static void expect_refused(const char *dir, const char *what, const char *const *want) {
  char err[1024] = "";
  tg_catalogue_t *cat = tg_catalogue_load(dir, MAX_IMG, err, sizeof(err));
  CHECK_MSG(cat == NULL, "%s: a broken catalogue was accepted", what);
  tg_catalogue_destroy(cat);
  if (getenv("TG_TEST_VERBOSE"))
    fprintf(stderr, "  %-22s -> %s\n", what, err);
  CHECK_MSG(strstr(err, "catalogue.json") != NULL, "%s: message names no catalogue: %s", what,
            err);
  for (; *want; want++)
    CHECK_MSG(strstr(err, *want) != NULL, "%s: '%s' not in: %s", what, *want, err);
}

static tg_catalogue_t *load_shipped(void) {
  char err[1024] = "";
  tg_catalogue_t *cat = tg_catalogue_load(assets, MAX_IMG, err, sizeof(err));
  CHECK_MSG(cat != NULL, "deploy/assets refused: %s", err);
  return cat;
}

/* the vehicle lookup gives @file by @how */
static void expect_choice(const tg_catalogue_t *cat, const char *model, const char *color,
                          const char *gen, const char *how, const char *file) {
  struct tg_vehicle_choice ch = {NULL, NULL};
  const struct tg_rgba_image *img = tg_catalogue_vehicle(cat, model, color, gen, &ch);
  CHECK_MSG(ch.how && strcmp(ch.how, how) == 0, "%s/%s/%s: how %s, want %s", model ? model : "-",
            color ? color : "-", gen ? gen : "-", ch.how ? ch.how : "(null)", how);
  CHECK_MSG(ch.file && strcmp(ch.file, file) == 0, "%s/%s/%s: file '%s', want '%s'",
            model ? model : "-", color ? color : "-", gen ? gen : "-",
            ch.file ? ch.file : "(null)", file);
  CHECK((img == NULL) == (strcmp(how, "none") == 0));
  if (img)
    CHECK(img->width > 0 && img->height > 0 && img->rgba != NULL);
}

static void test_shipped_loads(void) {
  tg_catalogue_t *cat = load_shipped();
  const struct tg_rgba_image *logo;
  if (!cat)
    return;
  logo = tg_catalogue_logo(cat);
  CHECK(logo && logo->width == 160 && logo->height == 160);
  tg_catalogue_destroy(cat);
}

/* every fully opaque logo pixel is navy, white or orange; all three occur */
static void test_logo_colours(void) {
  static const unsigned char pal[3][3] = {{18, 52, 110}, {255, 255, 255}, {242, 140, 40}};
  tg_catalogue_t *cat = load_shipped();
  const struct tg_rgba_image *logo;
  size_t i, j, seen[3] = {0, 0, 0}, opaque = 0, partial = 0, bad = 0;
  if (!cat)
    return;
  logo = tg_catalogue_logo(cat);
  for (i = 0; i < (size_t)logo->width * (size_t)logo->height; i++) {
    const unsigned char *p = logo->rgba + 4 * i;
    if (p[3] != 255) {
      partial += p[3] != 0;
      continue;
    }
    opaque++;
    for (j = 0; j < 3; j++)
      if (memcmp(p, pal[j], 3) == 0)
        break;
    if (j == 3)
      bad++;
    else
      seen[j]++;
  }
  CHECK_MSG(bad == 0, "%zu opaque logo pixels are not one of the three logo colours", bad);
  CHECK(seen[0] > 1000 && seen[1] > 500 && seen[2] > 100);
  CHECK(opaque > 15000);
  CHECK_MSG(partial > 100, "the logo's rim is not anti-aliased (%zu partial pixels)", partial);
  CHECK(logo->rgba[3] == 0); /* a transparent corner */
  tg_catalogue_destroy(cat);
}

/* the shipped cutouts: transparent corners, an opaque middle, many shades */
static void test_cutouts_shaded(void) {
  static const char *const cars[][3] = {
      {"ES6", "黑色", NULL}, {"ES6", "云白", NULL}, {"ET7", "深海蓝", NULL},
      {"ES8", "银灰", NULL}, {"ES8", "深海蓝", "二代"}, {"ES6", "红色", NULL},
  };
  tg_catalogue_t *cat = load_shipped();
  size_t k;
  if (!cat)
    return;
  for (k = 0; k < sizeof(cars) / sizeof(cars[0]); k++) {
    const struct tg_rgba_image *img = tg_catalogue_vehicle(cat, cars[k][0], cars[k][1],
                                                           cars[k][2], NULL);
    static unsigned char seen[1 << 15];
    size_t i, distinct = 0, partial = 0, opaque = 0, npix;
    CHECK_MSG(img != NULL, "%s %s missing", cars[k][0], cars[k][1]);
    if (!img)
      continue;
    CHECK(img->width >= 900 && img->width <= 1100);
    CHECK(img->rgba[3] == 0 && img->rgba[4 * (size_t)img->width - 1] == 0);
    CHECK(img->rgba[4 * ((size_t)(img->height / 2) * (size_t)img->width +
                         (size_t)img->width / 2) + 3] == 255);
    memset(seen, 0, sizeof(seen));
    npix = (size_t)img->width * (size_t)img->height;
    for (i = 0; i < npix; i++) {
      const unsigned char *p = img->rgba + 4 * i;
      unsigned key = ((unsigned)(p[0] >> 3) << 10) | ((unsigned)(p[1] >> 3) << 5) |
                     (unsigned)(p[2] >> 3);
      if (p[3] == 255) {
        opaque++;
        if (!seen[key]++)
          distinct++;
      } else if (p[3] != 0) {
        partial++;
      }
    }
    CHECK_MSG(distinct >= 60, "%s %s: only %zu distinct shades (flat?)", cars[k][0], cars[k][1],
              distinct);
    CHECK_MSG(partial >= 1000, "%s %s: %zu anti-aliased edge pixels", cars[k][0], cars[k][1],
              partial);
    CHECK(opaque > npix / 3);
  }
  tg_catalogue_destroy(cat);
}

/* the car of each sample trip, as the result records it */
static void test_sample_trips(void) {
  static const char *const want[][3] = {
      {"may-day-shanghai", "model_color", "vehicles/es6-black.png"},
      {"national-day-chengdu", "model_color", "vehicles/et7-white.png"},
      {"winter-harbin-short", "exact", "vehicles/es8-blue-gen2.png"},
  };
  tg_catalogue_t *cat = load_shipped();
  size_t k;
  if (!cat)
    return;
  for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
    char path[1024], err[256] = "";
    size_t len = 0;
    char *s;
    tg_trip_t *t;
    snprintf(path, sizeof(path), "%s/tests/data/trips/%s.json", src_root, want[k][0]);
    s = read_file(path, &len);
    CHECK_MSG(s != NULL, "cannot read %s", path);
    if (!s)
      continue;
    t = tg_trip_parse(s, len, err, sizeof(err));
    free(s);
    CHECK_MSG(t != NULL, "%s: %s", want[k][0], err);
    if (!t)
      continue;
    expect_choice(cat, t->vehicle.model, t->vehicle.color, t->vehicle.generation, want[k][1],
                  want[k][2]);
    tg_trip_destroy(t);
  }
  tg_catalogue_destroy(cat);
}

static void test_fallbacks(void) {
  tg_catalogue_t *cat = load_shipped();
  if (!cat)
    return;
  /* exact: with the generation, and without one on either side */
  expect_choice(cat, "ES8", "深海蓝", "二代", "exact", "vehicles/es8-blue-gen2.png");
  expect_choice(cat, "ES8", "深海蓝", NULL, "exact", "vehicles/es8-blue.png");
  expect_choice(cat, "ES6", "红色", NULL, "exact", "vehicles/es6-red.png");
  /* model_color: the generation-less entry is preferred over another generation */
  expect_choice(cat, "ES8", "深海蓝", "一代", "model_color", "vehicles/es8-blue.png");
  expect_choice(cat, "ES6", "银灰", "三代", "model_color", "vehicles/es6-silver.png");
  /* default_color: colour unknown for the model, or not given */
  expect_choice(cat, "ES6", "橙色", "一代", "default_color", "vehicles/es6-white.png");
  expect_choice(cat, "ET7", "红色", NULL, "default_color", "vehicles/et7-white.png");
  expect_choice(cat, "ES8", NULL, NULL, "default_color", "vehicles/es8-black.png");
  expect_choice(cat, "ES8", "", "二代", "default_color", "vehicles/es8-black.png");
  /* none: unknown or missing model */
  expect_choice(cat, "Model Y", "黑色", NULL, "none", "");
  expect_choice(cat, NULL, "黑色", NULL, "none", "");
  expect_choice(cat, "   ", "黑色", NULL, "none", "");
  /* choice may be NULL */
  CHECK(tg_catalogue_vehicle(cat, "ES6", "黑色", NULL, NULL) != NULL);
  CHECK(tg_catalogue_vehicle(cat, "nope", "黑色", NULL, NULL) == NULL);
  tg_catalogue_destroy(cat);
}

static void test_case_and_space(void) {
  tg_catalogue_t *cat = load_shipped();
  if (!cat)
    return;
  expect_choice(cat, " es6 ", "\t黑色 ", NULL, "exact", "vehicles/es6-black.png");
  expect_choice(cat, "eS8", "深海蓝", " 二代\n", "exact", "vehicles/es8-blue-gen2.png");
  expect_choice(cat, "\xE3\x80\x80" "Et7\xE3\x80\x80", "云白", NULL, "exact",
                "vehicles/et7-white.png");
  expect_choice(cat, "GENERIC", "银灰", NULL, "exact", "vehicles/generic-silver.png");
  /* non-ASCII is compared byte for byte; a near name is not the model */
  expect_choice(cat, "ES 6", "黑色", NULL, "none", "");
  expect_choice(cat, "ES6", "黑", NULL, "default_color", "vehicles/es6-white.png");
  tg_catalogue_destroy(cat);
}

/* model_color without a generation-less entry: the first in catalogue order */
static void test_other_generation(void) {
  const char *dir = fresh_dir();
  char err[1024] = "";
  tg_catalogue_t *cat;
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"M\", \"color\": \"Red\", \"generation\": \"A\", \"file\": "
                  "\"car.png\", \"default_color\": false},"
                  " {\"model\": \"M\", \"color\": \"red\", \"generation\": \"B\", \"file\": "
                  "\"car2.png\", \"default_color\": false},"
                  " {\"model\": \"m\", \"color\": \"White\", \"file\": \"car2.png\","
                  " \"default_color\": true}]");
  cat = tg_catalogue_load(dir, MAX_IMG, err, sizeof(err));
  CHECK_MSG(cat != NULL, "%s", err);
  if (!cat)
    return;
  expect_choice(cat, "m", "RED", "c", "model_color", "car.png");
  expect_choice(cat, "m", "RED", "b", "exact", "car2.png");
  expect_choice(cat, "m", "red", NULL, "model_color", "car.png");
  expect_choice(cat, "m", "white", "a", "model_color", "car2.png");
  /* a file named twice is decoded once and shared */
  CHECK(tg_catalogue_vehicle(cat, "M", "red", "B", NULL) ==
        tg_catalogue_vehicle(cat, "M", "white", NULL, NULL));
  tg_catalogue_destroy(cat);
}

/* an opaque 8x8 RGB PNG (no alpha channel) */
static void write_opaque_png(const char *dir, const char *name) {
  char path[2048];
  unsigned char px[8 * 8 * 3];
  png_image im;
  memset(&im, 0, sizeof(im));
  memset(px, 128, sizeof(px));
  im.version = PNG_IMAGE_VERSION;
  im.width = 8;
  im.height = 8;
  im.format = PNG_FORMAT_RGB;
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  assert(png_image_write_to_file(&im, path, 0, px, 0, NULL));
}

#define ONE(file) \
  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"" file "\", \"default_color\": true}]"

static void test_refused(void) {
  const char *dir;
  char link[2048], json[2048];
  size_t len = 0;
  char *data;

  dir = fresh_dir();
  write_catalogue(dir, "logo.png", ONE("vehicles/gone.png"));
  expect_refused(dir, "missing file",
                 (const char *const[]){"vehicles[0].file", "vehicles/gone.png", "no such file",
                                       NULL});

  dir = fresh_dir();
  write_str(dir, "text.png", "hello, not a png\n");
  write_catalogue(dir, "logo.png", ONE("text.png"));
  expect_refused(dir, "not a PNG", (const char *const[]){"vehicles[0].file", "text.png", NULL});

  dir = fresh_dir();
  copy_asset("logo.png", dir, "trunc.png");
  snprintf(link, sizeof(link), "%s/trunc.png", dir);
  assert(truncate(link, 300) == 0);
  write_catalogue(dir, "logo.png", ONE("trunc.png"));
  expect_refused(dir, "truncated PNG",
                 (const char *const[]){"vehicles[0].file", "trunc.png", NULL});

  dir = fresh_dir();
  write_opaque_png(dir, "opaque.png");
  write_catalogue(dir, "logo.png", ONE("opaque.png"));
  expect_refused(dir, "no alpha",
                 (const char *const[]){"vehicles[0].file", "no transparent pixels", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png", ONE("../c0/car.png"));
  expect_refused(dir, "path traversal",
                 (const char *const[]){"vehicles[0].file", "leaves the catalogue", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "../c0/logo.png", ONE("car.png"));
  expect_refused(dir, "logo traversal", (const char *const[]){"logo:", "..", NULL});

  dir = fresh_dir();
  snprintf(json, sizeof(json), ONE("%s/car.png"), dir);
  write_catalogue(dir, "logo.png", json);
  expect_refused(dir, "absolute path", (const char *const[]){"vehicles[0].file", "absolute",
                                                             NULL});

  dir = fresh_dir();
  snprintf(link, sizeof(link), "%s/out.png", dir);
  snprintf(json, sizeof(json), "%s/logo.png", assets);
  assert(symlink(json, link) == 0);
  write_catalogue(dir, "logo.png", ONE("out.png"));
  expect_refused(dir, "symlink out", (const char *const[]){"vehicles[0].file",
                                                           "outside the catalogue", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png", ONE("./car.png"));
  expect_refused(dir, "dot component", (const char *const[]){"vehicles[0].file", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"car.png\", "
                  "\"default_color\": true, \"colour\": \"x\"}]");
  expect_refused(dir, "unknown vehicle key",
                 (const char *const[]){"vehicles[0].colour", "unknown field", NULL});

  dir = fresh_dir();
  write_str(dir, "catalogue.json",
            "{\"version\": 1, \"logo\": \"logo.png\", \"vehicles\": [], \"extra\": 1}");
  expect_refused(dir, "unknown root key", (const char *const[]){"extra", "unknown field", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"car.png\", "
                  "\"default_color\": false},"
                  " {\"model\": \"ES8\", \"color\": \"黑色\", \"file\": \"car.png\", "
                  "\"default_color\": true}]");
  expect_refused(dir, "no default colour",
                 (const char *const[]){"model 'ES6' has no default colour", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"car.png\", "
                  "\"default_color\": true},"
                  " {\"model\": \"es6\", \"color\": \"云白\", \"file\": \"car2.png\", "
                  "\"default_color\": true}]");
  expect_refused(dir, "two default colours", (const char *const[]){"2 default colours", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"car.png\", "
                  "\"default_color\": true},"
                  " {\"model\": \" es6\", \"color\": \"黑色 \", \"file\": \"car2.png\", "
                  "\"default_color\": false}]");
  expect_refused(dir, "duplicate entry",
                 (const char *const[]){"vehicles[1] repeats vehicles[0]", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"ES6\", \"color\": \"黑色\", \"file\": \"car.png\"}]");
  expect_refused(dir, "default_color missing",
                 (const char *const[]){"vehicles[0].default_color", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png",
                  "[{\"model\": \"  \", \"color\": \"黑色\", \"file\": \"car.png\","
                  " \"default_color\": true}]");
  expect_refused(dir, "blank model", (const char *const[]){"vehicles[0].model", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "logo.png", "[]");
  expect_refused(dir, "no vehicles", (const char *const[]){"vehicles: empty", NULL});

  dir = fresh_dir();
  write_catalogue(dir, "nologo.png", ONE("car.png"));
  expect_refused(dir, "missing logo", (const char *const[]){"logo:", "nologo.png", NULL});

  dir = fresh_dir();
  write_str(dir, "catalogue.json", "{\"version\": 2, \"logo\": \"logo.png\", \"vehicles\": []}");
  expect_refused(dir, "version 2", (const char *const[]){"version", "not supported", NULL});

  dir = fresh_dir();
  write_str(dir, "catalogue.json", "{\"version\": 1, \"version\": 1}");
  expect_refused(dir, "duplicate JSON key", (const char *const[]){"version", NULL});

  dir = fresh_dir();
  write_str(dir, "catalogue.json", "[1, 2");
  expect_refused(dir, "bad JSON", (const char *const[]){"invalid JSON", NULL});

  dir = fresh_dir();
  expect_refused(dir, "no catalogue.json", (const char *const[]){dir, NULL});

  /* the image size bound applies */
  {
    char err[1024] = "";
    tg_catalogue_t *cat = tg_catalogue_load(assets, 1000, err, sizeof(err));
    CHECK(cat == NULL);
    CHECK_MSG(strstr(err, "logo") != NULL, "%s", err);
    tg_catalogue_destroy(cat);
  }
  /* the shipped catalogue.json is what scripts/make-assets writes: its keys are known */
  snprintf(link, sizeof(link), "%s/catalogue.json", assets);
  data = read_file(link, &len);
  CHECK(data && strstr(data, "\"default_color\": true") != NULL);
  free(data);
}

int main(int argc, char **argv) {
  int rc;
  if (argc > 1)
    src_root = argv[1];
  snprintf(assets, sizeof(assets), "%s/deploy/assets", src_root);
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/tg-catalogue-XXXXXX");
  assert(mkdtemp(tmpdir));
  RUN(test_shipped_loads);
  RUN(test_logo_colours);
  RUN(test_cutouts_shaded);
  RUN(test_sample_trips);
  RUN(test_fallbacks);
  RUN(test_case_and_space);
  RUN(test_other_generation);
  RUN(test_refused);
  {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    rc = system(cmd);
    (void)rc;
  }
  return check_done("catalogue");
}
