/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_caption.c - the caption band (worker/postproc/caption.c) and the
 * caption's lines (caption_text.c): the lines of the three sample trips and
 * of small in-memory trips, byte for byte; CJK and Latin text render inside
 * the band (pixels pushed towards white) and not one pixel outside it
 * changes; the band darkens the bottom by exactly its alpha; an over-long
 * line is cut at a character boundary, ends in "…" and stays inside the
 * right margin; lines beyond the band's height are dropped and reported; a
 * missing or unreadable font is a clear error naming postproc.font_file;
 * the output is deterministic (fresh and warm glyph cache, four threads
 * sharing one handle) and matches a sha256 golden.
 *
 * The golden depends on the font file and the FreeType and HarfBuzz
 * versions (Debian 12: fonts-noto-cjk 20220127, FreeType 2.12.1,
 * HarfBuzz 6.0.0); after an upgrade of any of them, check the picture
 * (TG_CAPTION_DUMP=file.ppm writes it) and update GOLDEN.
 *
 * Argument: the source root (for tests/data/trips/).
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "postproc/caption.h"
#include "tg_trip.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
#define FONT_PX 24
#define GOLDEN "cfc2a444170656634b0e78119f4d8462d294efa5450da636a3b0743c584446c7"

static const char *src_root = ".";
static tg_caption_t *cap; /* FONT at FONT_PX, shared by the tests */

/* ---------------------------------------------------------------- lines */

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

/* a small valid trip; @via is a JSON array text, @team_kv "" or `, "team": ...` */
static tg_trip_t *make_trip(const char *start, const char *end, long secs, const char *km,
                            const char *origin, const char *via, const char *dest,
                            const char *team_kv) {
  char json[4096], err[256] = "";
  tg_trip_t *t;
  snprintf(json, sizeof(json),
           "{\"trip_id\": \"trip-test-0001\", \"user_id\": \"owner-1\", \"tag\": \"t\","
           " \"text\": \"x\", \"start_time\": \"%s\", \"end_time\": \"%s\","
           " \"driving_seconds\": %ld, \"distance_km\": %s,"
           " \"origin\": {\"address\": \"a\", \"city\": \"%s\", \"weather\": \"sunny\"},"
           " \"destination\": {\"address\": \"b\", \"city\": \"%s\", \"weather\": \"rain\"},"
           " \"via_cities\": %s,"
           " \"vehicle\": {\"model\": \"ES6\", \"color\": \"black\", \"generation\": \"1\"}%s}",
           start, end, secs, km, origin, dest, via, team_kv);
  t = tg_trip_parse(json, strlen(json), err, sizeof(err));
  CHECK_MSG(t != NULL, "in-memory trip rejected: %s", err);
  return t;
}

/* checks that @t's caption lines are exactly @want (NULL-terminated) */
static void check_lines(const tg_trip_t *t, const char *const *want, const char *what) {
  struct tg_caption_text txt;
  char err[256] = "";
  size_t n_want = 0;
  if (!t)
    return;
  CHECK_MSG(tg_caption_lines(t, &txt, err, sizeof(err)) == TG_OK, "%s: %s", what, err);
  while (want[n_want])
    n_want++;
  CHECK_MSG(txt.n_lines == n_want, "%s: %zu lines, want %zu", what, txt.n_lines, n_want);
  for (size_t i = 0; i < n_want && i < txt.n_lines; i++)
    CHECK_STREQ(txt.lines[i], want[i]);
  tg_caption_text_free(&txt);
  CHECK(txt.n_lines == 0 && txt.lines[0] == NULL);
}

static void test_sample_lines(void) {
  static const char *const may_day[] = {
      "2024-05-02 → 2024-05-05 · 645.4 km · 14 h 28 min",
      "上海市 → 湖州市 → 无锡市 → 常州市 → 上海市", "欧阳开心的队伍", NULL};
  static const char *const national_day[] = {
      "2024-10-01 → 2024-10-07 · 1873.9 km · 27 h 35 min",
      "成都市 → 雅安市 → 康定市 → 理塘县 → 稻城县 → 成都市", NULL};
  static const char *const harbin[] = {"2025-01-01 · 122.6 km · 2 h 44 min", "哈尔滨市", NULL};
  tg_trip_t *t;
  check_lines(t = load_sample("may-day-shanghai"), may_day, "may-day-shanghai");
  tg_trip_destroy(t);
  check_lines(t = load_sample("national-day-chengdu"), national_day, "national-day-chengdu");
  tg_trip_destroy(t);
  check_lines(t = load_sample("winter-harbin-short"), harbin, "winter-harbin-short");
  tg_trip_destroy(t);
}

static void test_small_lines(void) {
  static const char *const latin[] = {"2025-05-01 → 2025-05-03 · 12.3 km · 45 min",
                                      "Munich → Salzburg → Vienna", "The Road Crew", NULL};
  static const char *const under_minute[] = {"2025-05-01 · 0.0 km · 0 min", "Oslo", NULL};
  static const char *const round_up[] = {"2025-05-01 · 100.0 km · 1 h 0 min",
                                         "Lyon → Paris", NULL};
  static const char *const dedup[] = {"2025-05-01 · 5.0 km · 1 min",
                                      "Bern → Thun → Bern", NULL};
  tg_trip_t *t;
  /* 12.25 km rounds half up; 2700 s is 45 min; a Latin team */
  t = make_trip("2025-05-01T08:00:00+02:00", "2025-05-03T10:00:00+02:00", 2700, "12.25",
                "Munich", "[\"Salzburg\"]", "Vienna", ", \"team\": \"The Road Crew\"");
  check_lines(t, latin, "latin");
  tg_trip_destroy(t);
  /* 29 s rounds to 0 min; origin = destination, no via; an empty team is not shown */
  t = make_trip("2025-05-01T08:00:00Z", "2025-05-01T09:00:00Z", 29, "0", "Oslo", "[]", "Oslo",
                ", \"team\": \"\"");
  check_lines(t, under_minute, "under a minute");
  tg_trip_destroy(t);
  /* 3570 s rounds to 60 min = 1 h 0 min; the dates are the trip's local ones */
  t = make_trip("2025-05-01T23:00:00+09:00", "2025-05-01T23:59:59+09:00", 3570, "99.96", "Lyon",
                "[]", "Paris", ", \"team\": null");
  check_lines(t, round_up, "round up");
  tg_trip_destroy(t);
  /* consecutive repeats collapse, a return to an earlier city does not */
  t = make_trip("2025-05-01T08:00:00Z", "2025-05-01T09:00:00Z", 60, "5", "Bern",
                "[\"Bern\", \"Thun\", \"Thun\"]", "Bern", "");
  check_lines(t, dedup, "dedup");
  tg_trip_destroy(t);

  {
    struct tg_caption_text txt;
    char err[128] = "";
    CHECK(tg_caption_lines(NULL, &txt, err, sizeof(err)) == TG_ERR_INVAL && *err);
    CHECK(txt.n_lines == 0);
  }
}

/* ---------------------------------------------------------------- pixels */

/* a deterministic mid-tone scene: neither black nor white anywhere */
static void make_scene(struct tg_rgb_image *img, int w, int h) {
  img->width = w;
  img->height = h;
  img->rgb = malloc((size_t)w * (size_t)h * 3);
  assert(img->rgb);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char *p = img->rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
      p[0] = (unsigned char)(60 + (x * 7 + y * 3) % 120);
      p[1] = (unsigned char)(50 + (x * 5 + y * 11) % 140);
      p[2] = (unsigned char)(70 + (x * 13 + y) % 100);
    }
}

static struct tg_rgb_image copy_image(const struct tg_rgb_image *a) {
  struct tg_rgb_image b = *a;
  size_t size = (size_t)a->width * (size_t)a->height * 3;
  b.rgb = malloc(size);
  assert(b.rgb);
  memcpy(b.rgb, a->rgb, size);
  return b;
}

/* what the band alone makes of a scene byte */
static unsigned char darken(unsigned char v, int alpha) {
  return (unsigned char)((v * (255u - (unsigned)alpha) + 127u) / 255u);
}

/* How the draw changed @after from @before. */
struct diff {
  long outside_band; /* bytes above the band that changed: must be 0 */
  long not_band;     /* band bytes that are neither darkened nor lighter: must be 0 */
  long text_px;      /* band pixels pushed towards white */
  int text_x0, text_x1, text_y0, text_y1; /* their bounding box, [x0, x1) x [y0, y1) */
  long rows_text[2]; /* text pixels in the top / bottom half of the band */
};

static struct diff compare(const struct tg_rgb_image *before, const struct tg_rgb_image *after,
                           const struct tg_caption_report *rep, int alpha) {
  struct diff d = {0};
  int w = before->width;
  d.text_x0 = w;
  d.text_y0 = before->height;
  for (int y = 0; y < before->height; y++)
    for (int x = 0; x < w; x++) {
      size_t o = ((size_t)y * (size_t)w + (size_t)x) * 3;
      bool lighter = false;
      for (int k = 0; k < 3; k++) {
        unsigned char b = before->rgb[o + k], a = after->rgb[o + k];
        if (y < rep->band_y) {
          d.outside_band += a != b;
        } else {
          unsigned char dk = darken(b, alpha);
          d.not_band += a < dk;
          lighter |= a > dk;
        }
      }
      if (lighter) {
        d.text_px++;
        d.rows_text[y >= rep->band_y + rep->band_h / 2]++;
        if (x < d.text_x0)
          d.text_x0 = x;
        if (x + 1 > d.text_x1)
          d.text_x1 = x + 1;
        if (y < d.text_y0)
          d.text_y0 = y;
        if (y + 1 > d.text_y1)
          d.text_y1 = y + 1;
      }
    }
  return d;
}

static void draw_ok(tg_caption_t *c, struct tg_rgb_image *img, const char *const *lines,
                    size_t n, int permille, int alpha, struct tg_caption_report *rep) {
  char err[256] = "";
  tg_err_t e = tg_caption_draw(c, img, lines, n, permille, alpha, rep, err, sizeof(err));
  CHECK_MSG(e == TG_OK, "draw: %s: %s", tg_err2str(e), err);
}

/* one line renders inside the band, nowhere else, without being shortened */
static void check_renders(const char *line, const char *what) {
  enum { W = 720 };
  struct tg_rgb_image before, after;
  struct tg_caption_report rep;
  struct diff d;
  int margin = FONT_PX / 2;
  make_scene(&before, W, 320);
  after = copy_image(&before);
  draw_ok(cap, &after, &line, 1, 150, 160, &rep);
  d = compare(&before, &after, &rep, 160);
  CHECK(rep.band_x == 0 && rep.band_w == W && rep.band_h == 48 && rep.band_y == 272);
  CHECK_MSG(rep.lines_drawn == 1 && rep.lines_dropped == 0 && rep.lines_shortened == 0,
            "%s: drawn %d dropped %d shortened %d", what, rep.lines_drawn, rep.lines_dropped,
            rep.lines_shortened);
  CHECK_MSG(rep.glyphs_missing == 0, "%s: %d glyphs missing", what, rep.glyphs_missing);
  CHECK_MSG(d.outside_band == 0, "%s: %ld bytes changed outside the band", what, d.outside_band);
  CHECK_MSG(d.not_band == 0, "%s: %ld band bytes not darkened as the band", what, d.not_band);
  CHECK_MSG(d.text_px > 300, "%s: only %ld text pixels", what, d.text_px);
  CHECK_MSG(d.text_x0 >= margin && d.text_x0 <= margin + 3, "%s: text starts at x=%d", what,
            d.text_x0);
  CHECK_MSG(d.text_x1 <= W - margin, "%s: text ends at x=%d", what, d.text_x1);
  CHECK_MSG(d.text_y0 >= rep.band_y && d.text_y1 <= 320, "%s: text rows %d..%d", what, d.text_y0,
            d.text_y1);
  /* something near white was drawn: a glyph's full coverage */
  {
    int whitest = 0;
    for (size_t i = (size_t)rep.band_y * W * 3; i < (size_t)W * 320 * 3; i++)
      if (after.rgb[i] > whitest)
        whitest = after.rgb[i];
    CHECK_MSG(whitest >= 250, "%s: whitest text byte %d", what, whitest);
  }
  tg_image_free(&before);
  tg_image_free(&after);
}

static void test_cjk_renders(void) { check_renders("上海市 → 湖州市 → 无锡市 欧阳开心的队伍", "cjk"); }

static void test_latin_renders(void) {
  check_renders("2024-05-02 → 2024-05-05 · 645.4 km · 14 h 28 min", "latin");
}

/* with no text the whole band is the scene darkened by alpha, to the byte */
static void test_band_darkens(void) {
  struct tg_rgb_image before, after;
  struct tg_caption_report rep;
  struct diff d;
  long sum_before = 0, sum_after = 0;
  make_scene(&before, 300, 200);
  after = copy_image(&before);
  draw_ok(cap, &after, NULL, 0, 110, 150, &rep);
  CHECK(rep.band_y == 178 && rep.band_h == 22 && rep.lines_drawn == 0);
  d = compare(&before, &after, &rep, 150);
  CHECK(d.outside_band == 0 && d.not_band == 0 && d.text_px == 0);
  for (size_t i = (size_t)rep.band_y * 300 * 3; i < (size_t)300 * 200 * 3; i++) {
    sum_before += before.rgb[i];
    sum_after += after.rgb[i];
  }
  CHECK_MSG(sum_after * 255 <= sum_before * 106 && sum_after * 255 >= sum_before * 104,
            "band mean %ld -> %ld, want x105/255", sum_before, sum_after);
  /* alpha 0: the band is invisible; a band of the whole height darkens everything */
  tg_image_free(&after);
  after = copy_image(&before);
  draw_ok(cap, &after, NULL, 0, 110, 0, &rep);
  CHECK(memcmp(after.rgb, before.rgb, (size_t)300 * 200 * 3) == 0);
  draw_ok(cap, &after, NULL, 0, 1000, 255, &rep);
  CHECK(rep.band_y == 0 && rep.band_h == 200);
  {
    bool all_black = true;
    for (size_t i = 0; i < (size_t)300 * 200 * 3; i++)
      all_black &= after.rgb[i] == 0;
    CHECK(all_black);
  }
  tg_image_free(&before);
  tg_image_free(&after);
}

/* the longest prefix + "…" that the draw would not shorten: the reference */
static void test_ellipsis(void) {
  static const char *line =
      "上海市 → 湖州市 → 无锡市 → 常州市 → 苏州市 → 南京市 → 合肥市 → 武汉市 → 长沙市 → "
      "Long Latin tail that cannot possibly fit";
  struct tg_rgb_image before, after, ref;
  struct tg_caption_report rep, rrep;
  struct diff d;
  int margin = FONT_PX / 2, w = 360, matches = 0;
  size_t len = strlen(line), best = 0;
  char *buf = malloc(len + 8);
  assert(buf);
  make_scene(&before, w, 240);
  after = copy_image(&before);
  draw_ok(cap, &after, &line, 1, 200, 150, &rep);
  d = compare(&before, &after, &rep, 150);
  CHECK(rep.lines_drawn == 1 && rep.lines_shortened == 1 && rep.lines_dropped == 0);
  CHECK_MSG(d.outside_band == 0 && d.not_band == 0, "%ld outside, %ld not band",
            d.outside_band, d.not_band);
  CHECK_MSG(d.text_x0 >= margin && d.text_x1 <= w - margin, "text spans x %d..%d in %d..%d",
            d.text_x0, d.text_x1, margin, w - margin);
  CHECK_MSG(d.text_x1 >= w - margin - 2 * FONT_PX, "text ends at %d: too short", d.text_x1);

  /*
   * the reference: of every "prefix…" cut at a character boundary (trailing
   * spaces dropped), the longest one that fits unshortened must be exactly
   * what was drawn
   */
  for (size_t cut = 1; cut < len; cut++) {
    size_t keep = cut;
    const char *l = buf;
    if (((unsigned char)line[cut] & 0xC0) == 0x80)
      continue; /* inside a UTF-8 sequence */
    while (keep > 0 && line[keep - 1] == ' ')
      keep--;
    memcpy(buf, line, keep);
    memcpy(buf + keep, "…", sizeof("…"));
    ref = copy_image(&before);
    draw_ok(cap, &ref, &l, 1, 200, 150, &rrep);
    if (rrep.lines_shortened == 0 && keep > best) {
      best = keep;
      matches = memcmp(ref.rgb, after.rgb, (size_t)w * 240 * 3) == 0;
    }
    tg_image_free(&ref);
  }
  CHECK_MSG(best > 0 && best < len, "no prefix fits (%zu)", best);
  CHECK_MSG(matches, "the shortened line is not the longest fitting prefix (%zu bytes) + \"…\"",
            best);
  /* and "prefix…" drawn on a scene twice as wide is not clipped: all its ink is inside */
  if (best > 0 && best < len) {
    struct tg_rgb_image wide0, wide;
    const char *l = buf;
    memcpy(buf, line, best);
    memcpy(buf + best, "…", sizeof("…"));
    make_scene(&wide0, 2 * w, 240);
    wide = copy_image(&wide0);
    draw_ok(cap, &wide, &l, 1, 200, 150, &rrep);
    d = compare(&wide0, &wide, &rrep, 150);
    CHECK_MSG(rrep.lines_shortened == 0 && d.text_x1 <= w - margin,
              "unclipped, the shortened line ends at x=%d, past %d", d.text_x1, w - margin);
    tg_image_free(&wide0);
    tg_image_free(&wide);
  }

  /* an image narrower than two margins draws no text at all */
  {
    struct tg_rgb_image tiny, tiny0;
    make_scene(&tiny0, 20, 100);
    tiny = copy_image(&tiny0);
    draw_ok(cap, &tiny, &line, 1, 300, 100, &rep);
    d = compare(&tiny0, &tiny, &rep, 100);
    CHECK(rep.lines_drawn == 0 && rep.lines_dropped == 1 && d.text_px == 0 &&
          d.outside_band == 0 && d.not_band == 0);
    tg_image_free(&tiny);
    tg_image_free(&tiny0);
  }
  free(buf);
  tg_image_free(&before);
  tg_image_free(&after);
}

/* a band of 50 px holds one 24 px line (pitch 30, 6 px above and below) */
static void test_drop(void) {
  static const char *const lines[] = {"2025-01-01 · 122.6 km · 2 h 44 min", "哈尔滨市",
                                      "欧阳开心的队伍"};
  struct tg_rgb_image before, after;
  struct tg_caption_report rep;
  struct diff d;
  make_scene(&before, 400, 200);
  after = copy_image(&before);
  draw_ok(cap, &after, lines, 3, 250, 150, &rep);
  d = compare(&before, &after, &rep, 150);
  CHECK(rep.band_h == 50 && rep.band_y == 150);
  CHECK_MSG(rep.lines_drawn == 1 && rep.lines_dropped == 2, "drawn %d dropped %d",
            rep.lines_drawn, rep.lines_dropped);
  CHECK(d.outside_band == 0 && d.not_band == 0 && d.text_px > 100);
  /* 104 px hold three (90 + 6 + 6); they fill both halves of the band */
  tg_image_free(&after);
  after = copy_image(&before);
  draw_ok(cap, &after, lines, 3, 520, 150, &rep);
  d = compare(&before, &after, &rep, 150);
  CHECK(rep.lines_drawn == 3 && rep.lines_dropped == 0 && rep.glyphs_missing == 0);
  CHECK(d.outside_band == 0 && d.not_band == 0 && d.rows_text[0] > 100 && d.rows_text[1] > 100);
  /* a band too thin for any line still darkens */
  tg_image_free(&after);
  after = copy_image(&before);
  draw_ok(cap, &after, lines, 3, 50, 150, &rep);
  d = compare(&before, &after, &rep, 150);
  CHECK(rep.band_h == 10 && rep.lines_drawn == 0 && rep.lines_dropped == 3 && d.text_px == 0);
  tg_image_free(&before);
  tg_image_free(&after);
}

static void test_bad_args(void) {
  struct tg_rgb_image img;
  struct tg_caption_report rep;
  const char *line = "x", *null_line = NULL;
  char err[256] = "";
  make_scene(&img, 64, 64);
  CHECK(tg_caption_draw(cap, &img, &line, 1, 0, 150, &rep, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(tg_caption_draw(cap, &img, &line, 1, 1001, 150, &rep, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(tg_caption_draw(cap, &img, &line, 1, 100, 256, &rep, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(tg_caption_draw(cap, &img, &null_line, 1, 100, 1, &rep, err, sizeof(err)) ==
        TG_ERR_INVAL);
  CHECK(tg_caption_draw(NULL, &img, &line, 1, 100, 1, &rep, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(*err);
  tg_image_free(&img);
}

static void test_missing_font(void) {
  char err[512] = "", path[1024];
  tg_caption_t *c = tg_caption_create("/nonexistent/fonts/NoSuchFont.ttc", 24, err, sizeof(err));
  CHECK(c == NULL);
  CHECK_MSG(strstr(err, "postproc.font_file") && strstr(err, "/nonexistent/fonts/NoSuchFont.ttc") &&
                strstr(err, "No such file"),
            "unclear error: %s", err);
  /* a file that is not a font */
  snprintf(path, sizeof(path), "%s/tests/data/trips/may-day-shanghai.json", src_root);
  c = tg_caption_create(path, 24, err, sizeof(err));
  CHECK(c == NULL);
  CHECK_MSG(strstr(err, "postproc.font_file") && strstr(err, path) && strstr(err, "not a font"),
            "unclear error: %s", err);
  c = tg_caption_create(NULL, 24, err, sizeof(err));
  CHECK(c == NULL && strstr(err, "postproc.font_file"));
  c = tg_caption_create(FONT, 0, err, sizeof(err));
  CHECK(c == NULL && strstr(err, "postproc.caption_font_px"));
  tg_caption_destroy(NULL);
}

/* ---------------------------------------------------------- determinism */

static const char *const golden_lines[] = {
    "2024-05-02 → 2024-05-05 · 645.4 km · 14 h 28 min",
    "上海市 → 湖州市 → 无锡市 → 常州市 → 上海市", "欧阳开心的队伍"};

/* the fixed draw of the golden: 768x960 scene, default band 110 permille, alpha 150 */
static void golden_draw(tg_caption_t *c, struct tg_rgb_image *img) {
  struct tg_caption_report rep;
  make_scene(img, 768, 960);
  draw_ok(c, img, golden_lines, 3, 110, 150, &rep);
  CHECK_MSG(rep.lines_drawn == 3 && rep.lines_dropped == 0 && rep.lines_shortened == 0 &&
                rep.glyphs_missing == 0,
            "golden: drawn %d dropped %d shortened %d missing %d", rep.lines_drawn,
            rep.lines_dropped, rep.lines_shortened, rep.glyphs_missing);
}

static void sha256_hex(const struct tg_rgb_image *img, char hex[65]) {
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(img->rgb, (size_t)img->width * (size_t)img->height * 3, md, &len, EVP_sha256(),
             NULL);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

struct worker_arg {
  struct tg_rgb_image img;
};

static void *draw_thread(void *p) {
  struct worker_arg *a = p;
  for (int i = 0; i < 5; i++) {
    tg_image_free(&a->img);
    golden_draw(cap, &a->img);
  }
  return NULL;
}

static void test_deterministic(void) {
  struct tg_rgb_image a = {0}, b = {0};
  struct worker_arg args[4];
  pthread_t th[4];
  char hex[65], err[256] = "";
  const char *dump = getenv("TG_CAPTION_DUMP");
  tg_caption_t *fresh = tg_caption_create(FONT, FONT_PX, err, sizeof(err));
  CHECK_MSG(fresh != NULL, "%s", err);
  if (!fresh)
    return;
  golden_draw(cap, &a); /* warm cache (earlier tests) */
  golden_draw(fresh, &b); /* empty cache */
  CHECK(memcmp(a.rgb, b.rgb, (size_t)768 * 960 * 3) == 0);
  sha256_hex(&a, hex);
  CHECK_MSG(strcmp(hex, GOLDEN) == 0, "golden sha256 %s, want %s", hex, GOLDEN);
  if (dump) {
    FILE *f = fopen(dump, "wb");
    if (f) {
      fprintf(f, "P6\n%d %d\n255\n", a.width, a.height);
      fwrite(a.rgb, 1, (size_t)a.width * (size_t)a.height * 3, f);
      fclose(f);
    }
  }
  /* four threads sharing one handle get the same pixels */
  memset(args, 0, sizeof(args));
  for (int i = 0; i < 4; i++)
    CHECK(pthread_create(&th[i], NULL, draw_thread, &args[i]) == 0);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_MSG(args[i].img.rgb && memcmp(args[i].img.rgb, a.rgb, (size_t)768 * 960 * 3) == 0,
              "thread %d drew different pixels", i);
    tg_image_free(&args[i].img);
  }
  tg_caption_destroy(fresh);
  tg_image_free(&a);
  tg_image_free(&b);
}

int main(int argc, char **argv) {
  char err[512] = "";
  if (argc > 1)
    src_root = argv[1];
  cap = tg_caption_create(FONT, FONT_PX, err, sizeof(err));
  if (!cap) {
    fprintf(stderr, "cannot load the caption font: %s\n", err);
    return 1;
  }
  RUN(test_sample_lines);
  RUN(test_small_lines);
  RUN(test_cjk_renders);
  RUN(test_latin_renders);
  RUN(test_band_darkens);
  RUN(test_ellipsis);
  RUN(test_drop);
  RUN(test_bad_args);
  RUN(test_missing_font);
  RUN(test_deterministic);
  tg_caption_destroy(cap);
  return check_done("caption");
}
