/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_postproc_cpu.c - the "cpu" post-process backend and its image layer
 * (worker/postproc/): PNGs of every colour type and bit depth made here
 * with libpng decode to the expected RGB; full and thumb variants have the
 * right sizes, the right mean colour when decoded back with libjpeg, and a
 * sha256 that matches an independent digest; corrupt, truncated, empty,
 * oversized and non-image scenes fail with postproc_failed and a clear
 * message; unknown variants are invalid_input; the area downscale gives
 * exact averages.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "postproc/image.h"
#include "postproc/postproc.h"
#include "config.h"
#include "tg_trip.h"

#include <openssl/evp.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

/* ---- helpers: making PNGs and JPEGs, decoding JPEGs -------------------- */

struct membuf {
  unsigned char *data;
  size_t len;
  size_t cap;
};

static void membuf_put(struct membuf *m, const void *p, size_t n) {
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2 + 64;
    m->data = realloc(m->data, m->cap);
    assert(m->data);
  }
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
  membuf_put(png_get_io_ptr(png), p, n);
}

static void png_flush_mem(png_structp png) {
  (void)png;
}

/* One way of storing pixels in a PNG. */
struct png_case {
  const char *name;
  int ctype;
  int depth;
  bool interlace;
  bool trns;      /* palette only: a tRNS chunk with partial alpha */
};

static int case_channels(const struct png_case *c) {
  switch (c->ctype) {
  case PNG_COLOR_TYPE_GRAY: return 1;
  case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
  case PNG_COLOR_TYPE_RGB: return 3;
  case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
  default: return 1; /* palette index */
  }
}

/* raw 8-bit-scale value of channel @ch at (x, y): varied, hits 0 and 255 */
static unsigned sample8(int x, int y, int ch) {
  unsigned v = (unsigned)(x * 37 + y * 11 + ch * 71) % 256u;
  if (ch == 3 || ch == 9)   /* alpha: every tenth pixel opaque or clear */
    v = (x + y) % 10 == 0 ? 255 : (x + y) % 10 == 1 ? 0 : v;
  return v;
}

/* the stored value of a channel at @depth bits */
static unsigned stored(const struct png_case *c, int x, int y, int ch) {
  unsigned v8 = sample8(x, y, ch);
  if (c->depth == 16)
    return v8 * 257;          /* scales back to v8 exactly */
  if (c->depth == 8)
    return v8;
  return v8 % (1u << c->depth);
}

static unsigned to8(const struct png_case *c, unsigned v) {
  if (c->depth == 16)
    return v >> 8;
  if (c->depth == 8)
    return v;
  return v * 255 / ((1u << c->depth) - 1);
}

static void palette_entry(int i, png_color *e, unsigned char *alpha) {
  e->red = (png_byte)(i * 7);
  e->green = (png_byte)(255 - i);
  e->blue = (png_byte)(i * 3);
  *alpha = (unsigned char)(i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : i * 5);
}

/* the RGB the decoder must produce at (x, y): alpha composited over black */
static void expected_rgb(const struct png_case *c, int x, int y, unsigned char out[3]) {
  unsigned r, g, b, a = 255;
  int alpha_ch = c->ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 9 : 3;
  if (c->ctype == PNG_COLOR_TYPE_PALETTE) {
    png_color e;
    unsigned char pa;
    palette_entry((int)stored(c, x, y, 0), &e, &pa);
    r = e.red, g = e.green, b = e.blue;
    if (c->trns)
      a = pa;
  } else if (!(c->ctype & PNG_COLOR_MASK_COLOR)) {
    r = g = b = to8(c, stored(c, x, y, 0));
  } else {
    r = to8(c, stored(c, x, y, 0));
    g = to8(c, stored(c, x, y, 1));
    b = to8(c, stored(c, x, y, 2));
  }
  if (c->ctype & PNG_COLOR_MASK_ALPHA)
    a = to8(c, stored(c, x, y, alpha_ch));
  out[0] = (unsigned char)((r * a + 127) / 255);
  out[1] = (unsigned char)((g * a + 127) / 255);
  out[2] = (unsigned char)((b * a + 127) / 255);
}

/* Encode a w x h PNG of @c's layout with stored() samples. */
static struct tg_blob make_png(const struct png_case *c, int w, int h) {
  struct membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert(png && info);
  if (setjmp(png_jmpbuf(png)))
    assert(!"libpng write failed");
  png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, c->depth, c->ctype,
               c->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (c->ctype == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    unsigned char alpha[256];
    int n = 1 << c->depth;
    for (int i = 0; i < n; i++)
      palette_entry(i, &pal[i], &alpha[i]);
    png_set_PLTE(png, info, pal, n);
    if (c->trns)
      png_set_tRNS(png, info, alpha, n, NULL);
  }
  png_write_info(png, info);
  if (c->depth < 8)
    png_set_packing(png);
  int ch = case_channels(c);
  size_t bps = c->depth == 16 ? 2 : 1;
  unsigned char *rows = malloc((size_t)w * (size_t)h * (size_t)ch * bps);
  png_bytep *rp = malloc(sizeof(*rp) * (size_t)h);
  assert(rows && rp);
  for (int y = 0; y < h; y++) {
    rp[y] = rows + (size_t)y * (size_t)w * (size_t)ch * bps;
    for (int x = 0; x < w; x++) {
      for (int k = 0; k < ch; k++) {
        int which = (c->ctype == PNG_COLOR_TYPE_GRAY_ALPHA && k == 1) ? 9 : k;
        unsigned v = stored(c, x, y, which);
        unsigned char *p = rp[y] + ((size_t)x * (size_t)ch + (size_t)k) * bps;
        if (bps == 2) {
          p[0] = (unsigned char)(v >> 8);
          p[1] = (unsigned char)(v & 255);
        } else {
          p[0] = (unsigned char)v;
        }
      }
    }
  }
  png_write_image(png, rp);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(rows);
  free(rp);
  return (struct tg_blob){m.data, m.len};
}

/* A w x h gradient: red along x, green along y, blue 128. */
static void gradient(int w, int h, struct tg_rgb_image *img) {
  img->width = w;
  img->height = h;
  img->rgb = malloc((size_t)w * (size_t)h * 3);
  assert(img->rgb);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned char *p = img->rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
      p[0] = (unsigned char)(w > 1 ? x * 255 / (w - 1) : 0);
      p[1] = (unsigned char)(h > 1 ? y * 255 / (h - 1) : 0);
      p[2] = 128;
    }
}

static struct tg_blob png_of(const struct tg_rgb_image *img) {
  struct membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert(png && info);
  if (setjmp(png_jmpbuf(png)))
    assert(!"libpng write failed");
  png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int y = 0; y < img->height; y++)
    png_write_row(png, img->rgb + (size_t)y * (size_t)img->width * 3);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return (struct tg_blob){m.data, m.len};
}

/* JPEG of @img made directly with libjpeg (independent of the code under test) */
static struct tg_blob jpeg_of(const struct tg_rgb_image *img, int quality) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr jerr;
  unsigned char *buf = NULL;
  unsigned long len = 0;
  c.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = (JDIMENSION)img->width;
  c.image_height = (JDIMENSION)img->height;
  c.input_components = 3;
  c.in_color_space = JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = img->rgb + (size_t)c.next_scanline * (size_t)img->width * 3;
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  return (struct tg_blob){buf, len};
}

/* Decode a JPEG with libjpeg; returns its size and mean colour. */
static bool jpeg_mean(const struct tg_blob *b, int *w, int *h, double mean[3]) {
  struct jpeg_decompress_struct d;
  struct jpeg_error_mgr jerr;
  if (b->len < 3 || b->data[0] != 0xff || b->data[1] != 0xd8)
    return false;
  d.err = jpeg_std_error(&jerr);
  jpeg_create_decompress(&d);
  jpeg_mem_src(&d, b->data, (unsigned long)b->len);
  jpeg_read_header(&d, TRUE);
  d.out_color_space = JCS_RGB;
  jpeg_start_decompress(&d);
  *w = (int)d.output_width;
  *h = (int)d.output_height;
  unsigned char *row = malloc((size_t)*w * 3);
  double sum[3] = {0, 0, 0};
  while (d.output_scanline < d.output_height) {
    jpeg_read_scanlines(&d, &row, 1);
    for (int x = 0; x < *w; x++)
      for (int k = 0; k < 3; k++)
        sum[k] += row[x * 3 + k];
  }
  jpeg_finish_decompress(&d);
  jpeg_destroy_decompress(&d);
  free(row);
  for (int k = 0; k < 3; k++)
    mean[k] = sum[k] / ((double)*w * *h);
  return true;
}

static void image_mean(const struct tg_rgb_image *img, double mean[3]) {
  double sum[3] = {0, 0, 0};
  size_t n = (size_t)img->width * (size_t)img->height;
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++)
      sum[k] += img->rgb[i * 3 + (size_t)k];
  for (int k = 0; k < 3; k++)
    mean[k] = sum[k] / (double)n;
}

static void sha256_hex(const struct tg_blob *b, char hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  int ok = EVP_Digest(b->data, b->len, md, &len, EVP_sha256(), NULL);
  assert(ok == 1 && len == 32);
  for (unsigned i = 0; i < len; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
  }
  return c ^ 0xffffffffu;
}

static void put32(struct membuf *m, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  membuf_put(m, b, 4);
}

static void chunk(struct membuf *m, const char *type, const unsigned char *data, uint32_t n) {
  put32(m, n);
  size_t at = m->len;
  membuf_put(m, type, 4);
  if (n)
    membuf_put(m, data, n);
  put32(m, crc32_of(m->data + at, 4 + n));
}

/* A PNG whose IHDR claims w x h, followed by a tiny IDAT and IEND. */
static struct tg_blob png_header_claiming(uint32_t w, uint32_t h) {
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
  struct membuf m = {0}, ihdr = {0};
  membuf_put(&m, sig, sizeof(sig));
  put32(&ihdr, w);
  put32(&ihdr, h);
  membuf_put(&ihdr, "\x08\x02\x00\x00\x00", 5); /* 8-bit RGB */
  chunk(&m, "IHDR", ihdr.data, (uint32_t)ihdr.len);
  chunk(&m, "IDAT", idat, sizeof(idat));
  chunk(&m, "IEND", NULL, 0);
  free(ihdr.data);
  return (struct tg_blob){m.data, m.len};
}

/* ---- running the backend ---------------------------------------------- */

static struct tg_worker_conf conf;

static void job_with(tg_job_t *job, const char *const *variants, size_t n) {
  memset(job, 0, sizeof(*job));
  snprintf(job->request_id, sizeof(job->request_id), "req-1");
  snprintf(job->env, sizeof(job->env), "dev");
  for (size_t i = 0; i < n; i++)
    snprintf(job->options.variants[i], sizeof(job->options.variants[i]), "%s", variants[i]);
  job->options.n_variants = n;
}

/* run the backend on @scene expecting failure; returns the error */
static struct tg_stage_error run_fail(const struct tg_blob *scene, const char *const *variants,
                                      size_t nv) {
  void *st = NULL;
  char errstr[256];
  struct tg_stage_error err;
  struct tg_postproc_report rep;
  memset(&err, 0, sizeof(err));
  tg_job_t job;
  job_with(&job, variants, nv);
  struct tg_variant_image out[TG_MAX_VARIANTS];
  size_t n_out = 99;
  assert(tg_postproc_cpu.create(&conf, &st, errstr, sizeof(errstr)) == TG_OK);
  bool ok = tg_postproc_cpu.run(st, &job, scene, out, &n_out, &rep, &err);
  CHECK(!ok);
  CHECK(n_out == 0);
  if (ok)
    tg_variant_images_free(out, n_out);
  tg_postproc_cpu.destroy(st);
  return err;
}

static const char *const full_only[] = {"full"};
static const char *const full_thumb[] = {"full", "thumb"};
static const char *const thumb_full[] = {"thumb", "full"};

/* expect postproc_failed and a message containing @needle; an undecodable
 * scene is retryable (the next attempt paints it again), one beyond the
 * limits ("exceeds") is not */
static void expect_bad_scene(const struct tg_blob *scene, const char *needle, int line) {
  struct tg_stage_error e = run_fail(scene, full_thumb, 2);
  bool want_retry = strstr(needle, "exceeds") == NULL;
  CHECK_MSG(e.code == TG_CODE_POSTPROC_FAILED, "line %d: code %d", line, (int)e.code);
  CHECK_MSG(e.retryable == want_retry, "line %d: retryable %d", line, e.retryable);
  CHECK_MSG(strncmp(e.message, "scene: ", 7) == 0, "line %d: message \"%s\"", line, e.message);
  CHECK_MSG(strstr(e.message, needle), "line %d: message \"%s\" lacks \"%s\"", line, e.message,
            needle);
}

/* ---- tests ------------------------------------------------------------- */

static void test_registry(void) {
  CHECK(tg_postproc_find("cpu") == &tg_postproc_cpu);
  CHECK(tg_postproc_find("cuda") == NULL);
  CHECK(tg_postproc_find("") == NULL);
  CHECK(tg_postproc_find(NULL) == NULL);
  CHECK_STREQ(tg_postproc_cpu.name, "cpu");
  CHECK(tg_postproc_variant_known("full"));
  CHECK(tg_postproc_variant_known("thumb"));
  CHECK(!tg_postproc_variant_known("Full"));
  CHECK(!tg_postproc_variant_known("webp"));
  CHECK(!tg_postproc_variant_known(""));
  CHECK(!tg_postproc_variant_known(NULL));
  tg_variant_images_free(NULL, 3);
}

static void test_create(void) {
  struct tg_worker_conf c = conf;
  void *st = NULL;
  char errstr[128] = "";
  c.jpeg_quality = 0;
  CHECK(tg_postproc_cpu.create(&c, &st, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(strstr(errstr, "jpeg_quality"));
  c.jpeg_quality = 101;
  CHECK(tg_postproc_cpu.create(&c, &st, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(st == NULL);
}

static void test_sniff(void) {
  struct tg_blob png = png_header_claiming(1, 1);
  const unsigned char jpg[] = {0xff, 0xd8, 0xff, 0xe0};
  CHECK(tg_image_sniff(png.data, png.len) == TG_IMAGE_PNG);
  CHECK(tg_image_sniff(png.data, 7) == TG_IMAGE_UNKNOWN);
  CHECK(tg_image_sniff(jpg, sizeof(jpg)) == TG_IMAGE_JPEG);
  CHECK(tg_image_sniff(jpg, 2) == TG_IMAGE_UNKNOWN);
  CHECK(tg_image_sniff((const unsigned char *)"GIF89a", 6) == TG_IMAGE_UNKNOWN);
  CHECK(tg_image_sniff(NULL, 0) == TG_IMAGE_UNKNOWN);
  tg_blob_free(&png);
}

static void test_check_size(void) {
  char e[128];
  CHECK(tg_image_check_size(1, 1, e, sizeof(e)) == TG_OK);
  CHECK(tg_image_check_size(4096, 4096, e, sizeof(e)) == TG_OK);
  CHECK(tg_image_check_size(4097, 1, e, sizeof(e)) == TG_ERR_TOO_LARGE);
  CHECK(tg_image_check_size(1, 4097, e, sizeof(e)) == TG_ERR_TOO_LARGE);
  CHECK(tg_image_check_size(5000, 5000, e, sizeof(e)) == TG_ERR_TOO_LARGE);
  CHECK_STREQ(e, "5000x5000 exceeds 4096 px per side");
  CHECK(tg_image_check_size(0, 5, e, sizeof(e)) == TG_ERR_BAD_MSG);
}

static const struct png_case png_cases[] = {
  {"rgb8", PNG_COLOR_TYPE_RGB, 8, false, false},
  {"rgb8-interlaced", PNG_COLOR_TYPE_RGB, 8, true, false},
  {"rgb16", PNG_COLOR_TYPE_RGB, 16, false, false},
  {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false},
  {"rgba8-interlaced", PNG_COLOR_TYPE_RGB_ALPHA, 8, true, false},
  {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, false, false},
  {"gray1", PNG_COLOR_TYPE_GRAY, 1, false, false},
  {"gray2", PNG_COLOR_TYPE_GRAY, 2, false, false},
  {"gray4", PNG_COLOR_TYPE_GRAY, 4, false, false},
  {"gray8", PNG_COLOR_TYPE_GRAY, 8, false, false},
  {"gray16", PNG_COLOR_TYPE_GRAY, 16, false, false},
  {"gray-alpha8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false},
  {"gray-alpha16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, false, false},
  {"palette1", PNG_COLOR_TYPE_PALETTE, 1, false, false},
  {"palette4", PNG_COLOR_TYPE_PALETTE, 4, false, false},
  {"palette8", PNG_COLOR_TYPE_PALETTE, 8, false, false},
  {"palette8-trns", PNG_COLOR_TYPE_PALETTE, 8, false, true},
  {"palette2-trns-interlaced", PNG_COLOR_TYPE_PALETTE, 2, true, true},
};

static void test_png_layouts(void) {
  const int w = 37, h = 23;
  for (size_t i = 0; i < sizeof(png_cases) / sizeof(png_cases[0]); i++) {
    const struct png_case *c = &png_cases[i];
    struct tg_blob png = make_png(c, w, h);
    struct tg_rgb_image img;
    char e[256] = "";
    tg_err_t rc = tg_image_decode(png.data, png.len, 0, &img, e, sizeof(e));
    CHECK_MSG(rc == TG_OK, "%s: %s", c->name, e);
    if (rc == TG_OK) {
      CHECK_MSG(img.width == w && img.height == h, "%s: %dx%d", c->name, img.width, img.height);
      int bad = 0;
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          unsigned char want[3];
          expected_rgb(c, x, y, want);
          const unsigned char *got = img.rgb + ((size_t)y * (size_t)w + (size_t)x) * 3;
          if (memcmp(got, want, 3) != 0 && bad++ == 0)
            fprintf(stderr, "  %s (%d,%d): got %u,%u,%u want %u,%u,%u\n", c->name, x, y,
                    got[0], got[1], got[2], want[0], want[1], want[2]);
        }
      CHECK_MSG(bad == 0, "%s: %d pixels differ", c->name, bad);
    }
    tg_image_free(&img);
    tg_blob_free(&png);
  }
}

/* run the backend on a gradient scene of w x h in the encoding @as ("png" or "jpeg") */
static void check_variants(int w, int h, const char *as, const char *const *variants,
                           size_t nv) {
  struct tg_rgb_image src;
  gradient(w, h, &src);
  struct tg_blob scene = strcmp(as, "png") == 0 ? png_of(&src) : jpeg_of(&src, 95);
  double want[3];
  image_mean(&src, want);

  void *st = NULL;
  char errstr[256];
  struct tg_stage_error err = {0};
  struct tg_postproc_report rep;
  tg_job_t job;
  job_with(&job, variants, nv);
  struct tg_variant_image out[TG_MAX_VARIANTS];
  size_t n_out = 0;
  CHECK(tg_postproc_cpu.create(&conf, &st, errstr, sizeof(errstr)) == TG_OK);
  bool ok = tg_postproc_cpu.run(st, &job, &scene, out, &n_out, &rep, &err);
  CHECK_MSG(ok, "%dx%d %s: %s", w, h, as, err.message);
  CHECK(!ok || n_out == nv);
  for (size_t i = 0; ok && i < n_out; i++) {
    const struct tg_variant_image *v = &out[i];
    bool thumb = strcmp(variants[i], "thumb") == 0;
    int ew = thumb ? (w / 2 ? w / 2 : 1) : w, eh = thumb ? (h / 2 ? h / 2 : 1) : h;
    CHECK_STREQ(v->variant, variants[i]);
    CHECK_MSG(v->width == ew && v->height == eh, "%s of %dx%d: %dx%d, want %dx%d", v->variant,
              w, h, v->width, v->height, ew, eh);
    CHECK_STREQ(v->format, "jpeg");
    CHECK_STREQ(v->ext, "jpg");
    CHECK_STREQ(v->content_type, "image/jpeg");
    char hex[65] = "";
    sha256_hex(&v->data, hex);
    CHECK_STREQ(v->sha256, hex);
    int jw = 0, jh = 0;
    double got[3];
    CHECK(jpeg_mean(&v->data, &jw, &jh, got));
    CHECK(jw == ew && jh == eh);
    /* 4:2:0 chroma of a few pixels is coarse: a wider margin for tiny images */
    double tol = (double)ew * eh < 64 ? 12 : 3;
    for (int k = 0; k < 3; k++)
      CHECK_MSG(got[k] > want[k] - tol && got[k] < want[k] + tol,
                "%s of %dx%d %s: mean[%d] %.2f, want %.2f", v->variant, w, h, as, k, got[k],
                want[k]);
  }
  if (ok)
    tg_variant_images_free(out, n_out);
  tg_postproc_cpu.destroy(st);
  tg_blob_free(&scene);
  tg_image_free(&src);
}

static void test_variants(void) {
  check_variants(64, 48, "png", full_thumb, 2);
  check_variants(33, 17, "png", thumb_full, 2);
  check_variants(1, 1, "png", full_thumb, 2);
  check_variants(3, 1, "png", thumb_full, 2);
  check_variants(256, 128, "png", full_only, 1);
  check_variants(96, 80, "jpeg", full_thumb, 2);
}

static void test_same_input_same_output(void) {
  struct tg_rgb_image src;
  gradient(40, 30, &src);
  struct tg_blob scene = png_of(&src);
  void *st = NULL;
  char errstr[256];
  struct tg_stage_error err = {0};
  struct tg_postproc_report rep;
  tg_job_t job;
  job_with(&job, full_thumb, 2);
  struct tg_variant_image a[TG_MAX_VARIANTS], b[TG_MAX_VARIANTS];
  size_t na = 0, nb = 0;
  CHECK(tg_postproc_cpu.create(&conf, &st, errstr, sizeof(errstr)) == TG_OK);
  CHECK(tg_postproc_cpu.run(st, &job, &scene, a, &na, &rep, &err));
  CHECK(tg_postproc_cpu.run(st, &job, &scene, b, &nb, &rep, &err));
  CHECK(na == 2 && nb == 2);
  for (size_t i = 0; i < na && i < nb; i++) {
    CHECK_STREQ(a[i].sha256, b[i].sha256);
    CHECK(a[i].data.len == b[i].data.len);
  }
  tg_variant_images_free(a, na);
  tg_variant_images_free(b, nb);
  tg_postproc_cpu.destroy(st);
  tg_blob_free(&scene);
  tg_image_free(&src);
}

static void test_bad_scenes(void) {
  struct tg_rgb_image src;
  gradient(200, 150, &src);
  struct tg_blob good = png_of(&src);
  struct tg_blob b;

  /* empty */
  b = (struct tg_blob){NULL, 0};
  expect_bad_scene(&b, "empty image", __LINE__);
  expect_bad_scene(NULL, "empty image", __LINE__);
  b = (struct tg_blob){good.data, 0};
  expect_bad_scene(&b, "empty image", __LINE__);

  /* random bytes */
  unsigned char noise[1000];
  uint32_t r = 12345;
  for (size_t i = 0; i < sizeof(noise); i++) {
    r = r * 1103515245u + 12345u;
    noise[i] = (unsigned char)(r >> 16);
  }
  noise[0] = 'x';
  b = (struct tg_blob){noise, sizeof(noise)};
  expect_bad_scene(&b, "not a PNG or JPEG image", __LINE__);

  /* a PNG signature followed by noise, a JPEG SOI followed by noise */
  memcpy(noise, good.data, 8);
  expect_bad_scene(&b, "PNG: ", __LINE__);
  noise[0] = 0xff, noise[1] = 0xd8, noise[2] = 0xff;
  expect_bad_scene(&b, "JPEG: ", __LINE__);

  /* truncated */
  b = (struct tg_blob){good.data, good.len / 2};
  expect_bad_scene(&b, "PNG: truncated", __LINE__);
  b = (struct tg_blob){good.data, 20};
  expect_bad_scene(&b, "PNG: truncated", __LINE__);

  /* corrupt: flip bytes in the middle of the image data */
  struct tg_blob bad = {malloc(good.len), good.len};
  memcpy(bad.data, good.data, good.len);
  for (size_t i = bad.len / 2; i < bad.len / 2 + 16; i++)
    bad.data[i] ^= 0x5a;
  expect_bad_scene(&bad, "PNG: ", __LINE__);
  tg_blob_free(&bad);

  /* oversized headers: refused before allocating */
  b = png_header_claiming(100000, 100000);
  expect_bad_scene(&b, "100000x100000 exceeds 4096 px per side", __LINE__);
  tg_blob_free(&b);
  b = png_header_claiming(5000, 5000);
  expect_bad_scene(&b, "scene: 5000x5000 exceeds 4096 px per side", __LINE__);
  tg_blob_free(&b);
  b = png_header_claiming(4097, 1);
  expect_bad_scene(&b, "4097x1 exceeds", __LINE__);
  tg_blob_free(&b);
  b = png_header_claiming(0x7fffffff, 0x7fffffff);
  expect_bad_scene(&b, "exceeds 4096 px per side", __LINE__);
  tg_blob_free(&b);

  /* JPEG: truncated, corrupt, and a SOF patched to claim 5000x5000 */
  struct tg_blob jpg = jpeg_of(&src, 90);
  b = (struct tg_blob){jpg.data, jpg.len / 2};
  expect_bad_scene(&b, "JPEG: ", __LINE__);
  bad = (struct tg_blob){malloc(jpg.len), jpg.len};
  memcpy(bad.data, jpg.data, jpg.len);
  for (size_t i = 0; i + 9 < bad.len; i++)
    if (bad.data[i] == 0xff && bad.data[i + 1] == 0xc0) {
      bad.data[i + 5] = 5000 >> 8, bad.data[i + 6] = 5000 & 255;
      bad.data[i + 7] = 5000 >> 8, bad.data[i + 8] = 5000 & 255;
      break;
    }
  expect_bad_scene(&bad, "scene: 5000x5000 exceeds 4096 px per side", __LINE__);
  memcpy(bad.data, jpg.data, jpg.len);
  for (size_t i = bad.len / 2; i < bad.len / 2 + 64; i++)
    bad.data[i] = 0xff;
  expect_bad_scene(&bad, "JPEG: ", __LINE__);
  tg_blob_free(&bad);
  tg_blob_free(&jpg);

  /* more bytes than max_image_bytes */
  int64_t saved = conf.max_image_bytes;
  conf.max_image_bytes = (int64_t)good.len - 1;
  expect_bad_scene(&good, "exceeds the limit", __LINE__);
  conf.max_image_bytes = saved;

  tg_blob_free(&good);
  tg_image_free(&src);
}

static void test_unknown_variant(void) {
  struct tg_rgb_image src;
  gradient(8, 8, &src);
  struct tg_blob scene = png_of(&src);
  static const char *const v1[] = {"full", "poster"};
  struct tg_stage_error e = run_fail(&scene, v1, 2);
  CHECK(e.code == TG_CODE_INVALID_INPUT);
  CHECK(!e.retryable);
  CHECK_MSG(strstr(e.message, "poster"), "message \"%s\"", e.message);
  /* unknown variant wins over a bad scene: checked first */
  static const char *const v2[] = {"FULL"};
  struct tg_blob empty = {NULL, 0};
  e = run_fail(&empty, v2, 1);
  CHECK(e.code == TG_CODE_INVALID_INPUT);
  e = run_fail(&scene, v2, 0);
  CHECK(e.code == TG_CODE_INVALID_INPUT);
  tg_blob_free(&scene);
  tg_image_free(&src);
}

/* expect @img to hold exactly the bytes of @want */
static void expect_pixels(const struct tg_rgb_image *img, const unsigned char *want, int line) {
  size_t n = (size_t)img->width * (size_t)img->height * 3;
  for (size_t i = 0; i < n; i++)
    CHECK_MSG(img->rgb[i] == want[i], "line %d: byte %zu is %u, want %u", line, i, img->rgb[i],
              want[i]);
}

static void test_area_resize(void) {
  char e[128];
  struct tg_rgb_image src = {4, 4, malloc(48)}, out;

  /* 1-px checker of 0 and 255: every 2x2 block averages 127.5, rounded half up */
  for (int i = 0; i < 16; i++)
    memset(src.rgb + i * 3, ((i % 4) + (i / 4)) % 2 ? 255 : 0, 3);
  CHECK(tg_image_resize_area(&src, 2, 2, &out, e, sizeof(e)) == TG_OK);
  CHECK(out.width == 2 && out.height == 2);
  unsigned char mid[12];
  memset(mid, 128, sizeof(mid));
  expect_pixels(&out, mid, __LINE__);
  tg_image_free(&out);

  /* 2-px checker: each target pixel sees one cell */
  for (int i = 0; i < 16; i++)
    memset(src.rgb + i * 3, ((i % 4) / 2 + (i / 4) / 2) % 2 ? 255 : 0, 3);
  CHECK(tg_image_resize_area(&src, 2, 2, &out, e, sizeof(e)) == TG_OK);
  const unsigned char cells[12] = {0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 0, 0};
  expect_pixels(&out, cells, __LINE__);
  tg_image_free(&out);

  /* distinct values per channel: exact means of each 2x2 block */
  for (int i = 0; i < 16; i++) {
    src.rgb[i * 3] = (unsigned char)(i * 16);       /* 0..240 */
    src.rgb[i * 3 + 1] = (unsigned char)(i * 4);    /* 0..60 */
    src.rgb[i * 3 + 2] = (unsigned char)(i % 2 ? 100 : 20);
  }
  CHECK(tg_image_resize_area(&src, 2, 2, &out, e, sizeof(e)) == TG_OK);
  /* block (bx, by) = pixels i = by*8 + bx*2 + {0, 1, 4, 5}: mean i = by*8 + bx*2 + 2.5 */
  const unsigned char blocks[12] = {40, 10, 60, 72, 18, 60, 168, 42, 60, 200, 50, 60};
  expect_pixels(&out, blocks, __LINE__);
  tg_image_free(&out);
  tg_image_free(&src);

  /* fractional coverage: 3 -> 2 means (p0 + p1/2) / 1.5 and (p1/2 + p2) / 1.5 */
  struct tg_rgb_image row = {3, 1, malloc(9)};
  const unsigned char px[9] = {0, 30, 255, 90, 60, 255, 180, 90, 255};
  memcpy(row.rgb, px, 9);
  CHECK(tg_image_resize_area(&row, 2, 1, &out, e, sizeof(e)) == TG_OK);
  const unsigned char frac[6] = {30, 40, 255, 150, 80, 255};
  expect_pixels(&out, frac, __LINE__);
  tg_image_free(&out);
  /* and 3 -> 1 is the plain mean */
  CHECK(tg_image_resize_area(&row, 1, 1, &out, e, sizeof(e)) == TG_OK);
  const unsigned char all[3] = {90, 60, 255};
  expect_pixels(&out, all, __LINE__);
  tg_image_free(&out);
  tg_image_free(&row);

  /* the mean of a large gradient is kept */
  struct tg_rgb_image g;
  gradient(301, 199, &g);
  double a[3], b[3];
  image_mean(&g, a);
  CHECK(tg_image_resize_area(&g, 150, 99, &out, e, sizeof(e)) == TG_OK);
  image_mean(&out, b);
  for (int k = 0; k < 3; k++)
    CHECK_MSG(b[k] > a[k] - 1 && b[k] < a[k] + 1, "mean[%d] %.2f vs %.2f", k, b[k], a[k]);
  tg_image_free(&out);
  tg_image_free(&g);

  /* bad arguments */
  struct tg_rgb_image none = {0, 0, NULL};
  CHECK(tg_image_resize_area(&none, 1, 1, &out, e, sizeof(e)) == TG_ERR_INVAL);
  CHECK(out.rgb == NULL);
}

static void test_encode_jpeg(void) {
  char e[128];
  struct tg_rgb_image img;
  struct tg_blob jpg;
  gradient(1000, 700, &img); /* large enough to grow the output buffer at quality 100 */
  CHECK(tg_image_encode_jpeg(&img, 100, &jpg, e, sizeof(e)) == TG_OK);
  int w = 0, h = 0;
  double got[3], want[3];
  image_mean(&img, want);
  CHECK(jpeg_mean(&jpg, &w, &h, got));
  CHECK(w == 1000 && h == 700);
  for (int k = 0; k < 3; k++)
    CHECK(got[k] > want[k] - 2 && got[k] < want[k] + 2);
  struct tg_blob low;
  CHECK(tg_image_encode_jpeg(&img, 10, &low, e, sizeof(e)) == TG_OK);
  CHECK(low.len < jpg.len);
  tg_blob_free(&low);
  tg_blob_free(&jpg);
  tg_image_free(&img);
  struct tg_rgb_image none = {0, 0, NULL};
  CHECK(tg_image_encode_jpeg(&none, 90, &jpg, e, sizeof(e)) == TG_ERR_INVAL);
  CHECK(jpg.data == NULL && jpg.len == 0);
}

/*
 * The whole stage with the default configuration: a sunset scene and the
 * sample trip's ES6 → the catalogue's cutout composited (the result records
 * how it matched), the logo, the caption band; the car changes the middle,
 * the band darkens the bottom, the logo's corner differs from the scene, and
 * the same input gives the same bytes. A missing catalogue or font stops the
 * start with a message naming the key.
 */
static void test_decorated_stage(const char *root) {
  struct tg_worker_conf c;
  char errstr[400], path[1024];
  tg_worker_conf_defaults(&c);
  snprintf(c.assets_dir, sizeof(c.assets_dir), "%s/deploy/assets", root);
  snprintf(path, sizeof(path), "%s/tests/data/trips/may-day-shanghai.json", root);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f)
    return;
  static char text[1 << 16];
  size_t len = fread(text, 1, sizeof(text) - 1, f);
  fclose(f);
  tg_trip_t *trip = tg_trip_parse(text, len, errstr, sizeof(errstr));
  CHECK_MSG(trip != NULL, "%s", errstr);
  if (!trip)
    return;
  /* a sunset: orange above, darker below */
  struct tg_rgb_image scene = {768, 960, malloc(768 * 960 * 3)};
  for (int y = 0; y < scene.height; y++)
    for (int x = 0; x < scene.width; x++) {
      unsigned char *p = scene.rgb + 3 * (y * scene.width + x);
      p[0] = (unsigned char)(250 - y / 8);
      p[1] = (unsigned char)(150 - y / 10);
      p[2] = (unsigned char)(60 + x / 16);
    }
  struct tg_blob png = png_of(&scene);
  void *st = NULL;
  CHECK_MSG(tg_postproc_cpu.create(&c, &st, errstr, sizeof(errstr)) == TG_OK, "%s", errstr);
  tg_job_t job;
  job_with(&job, full_thumb, 2);
  job.trip = trip;
  struct tg_variant_image out[TG_MAX_VARIANTS], again[TG_MAX_VARIANTS];
  size_t n_out = 0, n_again = 0;
  struct tg_postproc_report rep;
  struct tg_stage_error err = {0};
  bool ok = st && tg_postproc_cpu.run(st, &job, &png, out, &n_out, &rep, &err);
  CHECK_MSG(ok, "%s", err.message);
  if (ok) {
    CHECK_STREQ(rep.vehicle_match, "model_color");
    CHECK_STREQ(rep.vehicle_asset, "vehicles/es6-black.png");
    CHECK(rep.logo && rep.caption_lines >= 2);
    CHECK(n_out == 2 && out[0].width == 768 && out[1].width == 384 && out[1].height == 480);
    struct tg_rgb_image got = {0};
    CHECK(tg_image_decode(out[0].data.data, out[0].data.len, 64 << 20, &got, errstr,
                          sizeof(errstr)) == TG_OK);
    /* mean absolute difference from the plain scene, per region */
    double mid = 0, band = 0, corner = 0, calm = 0;
    int nm = 0, nb = 0, nc = 0, nq = 0;
    for (int y = 0; got.rgb && y < got.height; y++)
      for (int x = 0; x < got.width; x++) {
        const unsigned char *a = got.rgb + 3 * (y * got.width + x),
                            *b = scene.rgb + 3 * (y * scene.width + x);
        double d = (abs(a[0] - b[0]) + abs(a[1] - b[1]) + abs(a[2] - b[2])) / 3.0;
        if (y > 700 && y < 800 && x > 300 && x < 460)
          mid += d, nm++; /* the car's body, above its anchor */
        else if (y > 900)
          band += d, nb++; /* inside the caption band */
        else if (y > 30 && y < 150 && x > 620 && x < 740)
          corner += d, nc++; /* the logo, top right */
        else if (y < 300 && x < 300)
          calm += d, nq++; /* sky, away from everything */
      }
    CHECK_MSG(mid / nm > 20, "the car changed the middle: %.1f", mid / nm);
    CHECK_MSG(band / nb > 20, "the band changed the bottom: %.1f", band / nb);
    CHECK_MSG(corner / nc > 20, "the logo is in the corner: %.1f", corner / nc);
    CHECK_MSG(calm / nq < 3, "the sky is left alone (JPEG noise only): %.1f", calm / nq);
    tg_image_free(&got);
    ok = tg_postproc_cpu.run(st, &job, &png, again, &n_again, &rep, &err);
    CHECK(ok && n_again == 2 && strcmp(again[0].sha256, out[0].sha256) == 0 &&
          strcmp(again[1].sha256, out[1].sha256) == 0);
    if (ok)
      tg_variant_images_free(again, n_again);
    tg_variant_images_free(out, n_out);
  }
  tg_postproc_cpu.destroy(st);
  /* an unknown model: no car, recorded as such; the rest still drawn */
  tg_trip_t unknown = *trip;
  unknown.vehicle.model = "Model Nobody";
  job.trip = &unknown;
  CHECK(tg_postproc_cpu.create(&c, &st, errstr, sizeof(errstr)) == TG_OK);
  ok = tg_postproc_cpu.run(st, &job, &png, out, &n_out, &rep, &err);
  CHECK(ok && strcmp(rep.vehicle_match, "none") == 0 && !*rep.vehicle_asset && rep.logo);
  if (ok)
    tg_variant_images_free(out, n_out);
  tg_postproc_cpu.destroy(st);
  /* broken set-ups stop the start */
  struct tg_worker_conf bad = c;
  snprintf(bad.assets_dir, sizeof(bad.assets_dir), "%s/no-such-assets", root);
  CHECK(tg_postproc_cpu.create(&bad, &st, errstr, sizeof(errstr)) == TG_ERR_INVAL &&
        strstr(errstr, "postproc.assets_dir"));
  bad = c;
  snprintf(bad.font_file, sizeof(bad.font_file), "/no/such/font.ttc");
  CHECK(tg_postproc_cpu.create(&bad, &st, errstr, sizeof(errstr)) == TG_ERR_INVAL &&
        strstr(errstr, "postproc.font_file"));
  tg_blob_free(&png);
  tg_image_free(&scene);
  tg_trip_destroy(trip);
}

int main(int argc, char **argv) {
  conf.jpeg_quality = 90;
  conf.max_image_bytes = 64 << 20;
  if (argc > 1) {
    int before = check_failures;
    test_decorated_stage(argv[1]);
    fprintf(stderr, "%s test_decorated_stage\n", check_failures == before ? "ok  " : "FAIL");
  } else {
    fprintf(stderr, "test_postproc_cpu: no source root given: the decorated stage is untested\n");
    check_failures++;
  }
  RUN(test_registry);
  RUN(test_create);
  RUN(test_sniff);
  RUN(test_check_size);
  RUN(test_png_layouts);
  RUN(test_variants);
  RUN(test_same_input_same_output);
  RUN(test_bad_scenes);
  RUN(test_unknown_variant);
  RUN(test_area_resize);
  RUN(test_encode_jpeg);
  return check_done("test_postproc_cpu");
}
