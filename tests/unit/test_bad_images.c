/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_bad_images.c - hostile and odd scenes for the post-process decode
 * entry (tg_image_decode) and the whole "cpu" backend: truncated PNGs, 0x0
 * and 40000x40000 headers, PNG layouts that are legal but unusual (16-bit,
 * palette, grey+alpha: decoded) or illegal (refused), JPEGs whose header
 * claims a huge frame, garbage after SOI, 12-bit and CMYK JPEGs, empty and
 * random input. Each is refused with a specific message (or decoded when
 * legal), and through the backend becomes postproc_failed with "scene: "
 * and that message: retryable when undecodable, final when over a limit.
 * Memory is bounded: in a forked child under RLIMIT_AS set 16 MiB above
 * what it already uses, a 40000x40000 header is refused as too large
 * rather than failing to allocate 4.8 GB, while a legal 4096x4096 RGBA PNG
 * still decodes when the limit is the limits table's bound (image_pixels x
 * 4 bytes) above it. The RLIMIT part is skipped under ASan and valgrind,
 * whose own mappings make RLIMIT_AS meaningless.
 *
 *   test-bad_images SOURCE_ROOT     (for deploy/assets and tests/data/jobs)
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "config.h"
#include "postproc/image.h"
#include "postproc/postproc.h"
#include "tg_job.h"
#include "tg_limits.h"

#include <png.h>
#include <zlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jpeglib.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static const char *source_root = ".";

/* ---- making images ------------------------------------------------------ */

struct membuf {
  unsigned char *data;
  size_t len;
  size_t cap;
};

static void put(struct membuf *m, const void *p, size_t n) {
  if (m->len + n > m->cap) {
    m->cap = (m->len + n) * 2 + 64;
    m->data = realloc(m->data, m->cap);
    assert(m->data);
  }
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

static void put32(struct membuf *m, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  put(m, b, 4);
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

static void chunk(struct membuf *m, const char *type, const void *data, uint32_t n) {
  put32(m, n);
  size_t at = m->len;
  put(m, type, 4);
  if (n)
    put(m, data, n);
  put32(m, crc32_of(m->data + at, 4 + (size_t)n));
}

static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* a PNG whose IHDR says w x h, @depth, @ctype, then a tiny IDAT and IEND */
static struct tg_blob png_claiming(uint32_t w, uint32_t h, int depth, int ctype) {
  static const unsigned char idat[] = {0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01};
  struct membuf m = {0};
  unsigned char ihdr[13];
  for (int i = 0; i < 4; i++) {
    ihdr[i] = (unsigned char)(w >> (24 - 8 * i));
    ihdr[4 + i] = (unsigned char)(h >> (24 - 8 * i));
  }
  ihdr[8] = (unsigned char)depth;
  ihdr[9] = (unsigned char)ctype;
  ihdr[10] = ihdr[11] = ihdr[12] = 0;
  put(&m, png_sig, sizeof(png_sig));
  chunk(&m, "IHDR", ihdr, sizeof(ihdr));
  chunk(&m, "IDAT", idat, sizeof(idat));
  chunk(&m, "IEND", NULL, 0);
  return (struct tg_blob){m.data, m.len};
}

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
  put(png_get_io_ptr(png), p, n);
}

static void png_flush_mem(png_structp png) {
  (void)png;
}

/* value of sample @ch at (x, y), 8-bit scale */
static unsigned sample(int x, int y, int ch) {
  return (unsigned)(x * 29 + y * 13 + ch * 85) % 256u;
}

/* A w x h PNG of colour type @ctype and @depth with sample() values
 * (palette: index sample(x, y, 0) % 2^depth into a fixed palette). */
static struct tg_blob make_png(int w, int h, int depth, int ctype, int zlevel) {
  struct membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert(png && info);
  if (setjmp(png_jmpbuf(png)))
    assert(!"libpng write failed");
  png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
  png_set_compression_level(png, zlevel);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (ctype == PNG_COLOR_TYPE_PALETTE) {
    png_color pal[256];
    for (int i = 0; i < 256; i++)
      pal[i] = (png_color){(png_byte)i, (png_byte)(255 - i), (png_byte)(i / 2)};
    png_set_PLTE(png, info, pal, 1 << depth);
  }
  png_write_info(png, info);
  if (depth < 8)
    png_set_packing(png);
  int ch = ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4
         : ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : 1;
  size_t bps = depth == 16 ? 2 : 1;
  unsigned char *row = malloc((size_t)w * (size_t)ch * bps);
  assert(row);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++)
      for (int k = 0; k < ch; k++) {
        unsigned v = sample(x, y, k);
        if (ctype == PNG_COLOR_TYPE_PALETTE || depth < 8)
          v %= 1u << depth;
        unsigned char *p = row + ((size_t)x * (size_t)ch + (size_t)k) * bps;
        if (bps == 2) {
          p[0] = (unsigned char)v; /* v * 257: scales back to v */
          p[1] = (unsigned char)v;
        } else {
          p[0] = (unsigned char)v;
        }
      }
    png_write_row(png, row);
  }
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  free(row);
  return (struct tg_blob){m.data, m.len};
}

/* A w x h JPEG with libjpeg: RGB (4:2:0) or CMYK, optionally progressive. */
static struct tg_blob make_jpeg(int w, int h, bool cmyk, bool progressive) {
  struct jpeg_compress_struct c;
  struct jpeg_error_mgr jerr;
  unsigned char *buf = NULL;
  unsigned long len = 0;
  c.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, &buf, &len);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  c.input_components = cmyk ? 4 : 3;
  c.in_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 85, TRUE);
  if (progressive)
    jpeg_simple_progression(&c);
  jpeg_start_compress(&c, TRUE);
  unsigned char *row = malloc((size_t)w * 4);
  assert(row);
  while (c.next_scanline < c.image_height) {
    for (int x = 0; x < w * c.input_components; x++)
      row[x] = (unsigned char)sample(x, (int)c.next_scanline, 0);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  free(row);
  return (struct tg_blob){buf, len};
}

/* offset of the SOF payload (precision byte) of a JPEG */
static size_t sof_at(const struct tg_blob *j) {
  size_t i = 2;
  while (i + 4 < j->len) {
    assert(j->data[i] == 0xff);
    unsigned code = j->data[i + 1];
    if (code == 0xc0 || code == 0xc1 || code == 0xc2)
      return i + 4;
    i += 2 + ((size_t)j->data[i + 2] << 8 | j->data[i + 3]);
  }
  assert(!"no SOF");
  return 0;
}

static struct tg_blob jpeg_claiming(int w, int h, bool progressive) {
  struct tg_blob j = make_jpeg(48, 32, false, progressive);
  size_t at = sof_at(&j);
  j.data[at + 1] = (unsigned char)(h >> 8), j.data[at + 2] = (unsigned char)h;
  j.data[at + 3] = (unsigned char)(w >> 8), j.data[at + 4] = (unsigned char)w;
  return j;
}

static struct tg_blob copy_of(const void *p, size_t n) {
  struct tg_blob b = {malloc(n ? n : 1), n};
  assert(b.data);
  if (n)
    memcpy(b.data, p, n);
  return b;
}

/* ---- the cases ---------------------------------------------------------- */

enum expect { DECODES, REFUSED, TOO_LARGE };

struct bad_case {
  char name[48];
  struct tg_blob data;
  enum expect expect;
  const char *needle; /* in the message (failures) */
  int width, height;  /* decoded size (DECODES) */
  bool legal_size;    /* the header's size is within the limits: pixels are allocated */
};

static struct bad_case cases[64];
static size_t n_cases;

static void add(const char *name, struct tg_blob data, enum expect e, const char *needle, int w,
                int h) {
  assert(n_cases < sizeof(cases) / sizeof(cases[0]));
  struct bad_case *c = &cases[n_cases++];
  snprintf(c->name, sizeof(c->name), "%s", name);
  c->data = data;
  c->expect = e;
  c->needle = needle;
  c->width = w;
  c->height = h;
}

static void make_cases(void) {
  /* truncated PNGs: inside the signature, the IHDR, the IDAT, before IEND */
  struct tg_blob good = make_png(40, 30, 8, PNG_COLOR_TYPE_RGB, 6);
  size_t cuts[] = {5, 20, 40, good.len / 2, good.len - 13};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    char name[48];
    snprintf(name, sizeof(name), "png truncated at %zu of %zu", cuts[i], good.len);
    /* under 8 bytes it is not even a PNG signature */
    add(name, copy_of(good.data, cuts[i]), REFUSED, cuts[i] < 8 ? "not a PNG or JPEG" : "PNG: ",
        0, 0);
  }
  add("png 40x30 (control)", good, DECODES, NULL, 40, 30);

  add("png 0x0", png_claiming(0, 0, 8, PNG_COLOR_TYPE_RGB), REFUSED, "PNG: Invalid IHDR data", 0,
      0);
  add("png 0x16", png_claiming(0, 16, 8, PNG_COLOR_TYPE_RGB), REFUSED, "PNG: Invalid IHDR data",
      0, 0);
  add("png 16x0", png_claiming(16, 0, 8, PNG_COLOR_TYPE_RGB), REFUSED, "PNG: Invalid IHDR data",
      0, 0);
  add("png 40000x40000", png_claiming(40000, 40000, 8, PNG_COLOR_TYPE_RGB), TOO_LARGE,
      "40000x40000 exceeds 4096 px per side", 0, 0);
  add("png 40000x40000 rgba16", png_claiming(40000, 40000, 16, PNG_COLOR_TYPE_RGB_ALPHA),
      TOO_LARGE, "40000x40000 exceeds 4096 px per side", 0, 0);
  add("png 4097x1", png_claiming(4097, 1, 8, PNG_COLOR_TYPE_RGB), TOO_LARGE,
      "4097x1 exceeds 4096 px per side", 0, 0);
  /* PNG's own bound is 2^31 - 1: beyond it libpng refuses first */
  add("png 2^31x1", png_claiming(0x80000000u, 1, 8, PNG_COLOR_TYPE_RGB), REFUSED,
      "PNG: PNG unsigned integer out of range", 0, 0);
  add("png 4096x4096 short idat", png_claiming(4096, 4096, 8, PNG_COLOR_TYPE_RGB), REFUSED,
      "PNG: ", 0, 0);
  cases[n_cases - 1].legal_size = true;

  /* a text chunk whose length claims 2 GiB, with 32 bytes present: refused as
   * truncated without allocating the claim */
  struct tg_blob text = png_claiming(4, 4, 8, PNG_COLOR_TYPE_RGB);
  struct membuf t = {0};
  put(&t, text.data, 33); /* signature + IHDR */
  put32(&t, 0x7ffffff0u);
  put(&t, "tEXtcomment\0xxxxxxxxxxxxxxxxxxxxxxxx", 36);
  add("png tEXt claiming 2 GiB", (struct tg_blob){t.data, t.len}, REFUSED, "PNG: truncated", 0, 0);
  tg_blob_free(&text);

  /* legal but unusual layouts decode */
  add("png rgb16", make_png(17, 9, 16, PNG_COLOR_TYPE_RGB, 6), DECODES, NULL, 17, 9);
  add("png rgba16", make_png(17, 9, 16, PNG_COLOR_TYPE_RGB_ALPHA, 6), DECODES, NULL, 17, 9);
  add("png grey16", make_png(17, 9, 16, PNG_COLOR_TYPE_GRAY, 6), DECODES, NULL, 17, 9);
  add("png grey+alpha8", make_png(17, 9, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 6), DECODES, NULL, 17, 9);
  add("png grey+alpha16", make_png(17, 9, 16, PNG_COLOR_TYPE_GRAY_ALPHA, 6), DECODES, NULL, 17,
      9);
  add("png palette8", make_png(17, 9, 8, PNG_COLOR_TYPE_PALETTE, 6), DECODES, NULL, 17, 9);
  add("png palette2", make_png(17, 9, 2, PNG_COLOR_TYPE_PALETTE, 6), DECODES, NULL, 17, 9);
  add("png grey1", make_png(17, 9, 1, PNG_COLOR_TYPE_GRAY, 6), DECODES, NULL, 17, 9);
  /* illegal depth / colour type combinations: libpng's "Invalid IHDR data" */
  add("png rgb depth 4", png_claiming(8, 8, 4, PNG_COLOR_TYPE_RGB), REFUSED,
      "PNG: Invalid IHDR data", 0, 0);
  add("png palette depth 16", png_claiming(8, 8, 16, PNG_COLOR_TYPE_PALETTE), REFUSED,
      "PNG: Invalid IHDR data", 0, 0);
  add("png colour type 5", png_claiming(8, 8, 8, 5), REFUSED, "PNG: Invalid IHDR data", 0, 0);
  add("png palette without PLTE", png_claiming(1, 1, 8, PNG_COLOR_TYPE_PALETTE), REFUSED,
      "PNG: ", 0, 0);

  /* JPEGs whose frame header claims too much, baseline and progressive */
  add("jpeg 40000x40000", jpeg_claiming(40000, 40000, false), TOO_LARGE,
      "40000x40000 exceeds 4096 px per side", 0, 0);
  add("jpeg 65535x65535", jpeg_claiming(65535, 65535, false), REFUSED,
      "JPEG: Maximum supported image dimension is 65500 pixels", 0, 0);
  add("jpeg 4096x4097 progressive", jpeg_claiming(4096, 4097, true), TOO_LARGE,
      "4096x4097 exceeds 4096 px per side", 0, 0);
  add("jpeg 0 lines", jpeg_claiming(48, 0, false), REFUSED, "JPEG: ", 0, 0);
  /* garbage: after a full SOI marker, and after FF D8 alone */
  unsigned char junk[400];
  uint32_t r = 12345;
  for (size_t i = 0; i < sizeof(junk); i++) {
    r = r * 1103515245u + 12345u;
    junk[i] = (unsigned char)(r >> 16);
  }
  junk[0] = 0xff, junk[1] = 0xd8, junk[2] = 0xff;
  add("jpeg soi + garbage", copy_of(junk, sizeof(junk)), REFUSED, "JPEG: ", 0, 0);
  junk[2] = 0x00;
  add("ff d8 + garbage", copy_of(junk, sizeof(junk)), REFUSED, "not a PNG or JPEG image", 0, 0);
  struct tg_blob jpg = make_jpeg(64, 48, false, false);
  add("jpeg truncated in the scan", copy_of(jpg.data, jpg.len * 2 / 3), REFUSED,
      "JPEG: Premature end of JPEG file", 0, 0);
  add("jpeg soi only", copy_of(jpg.data, 2), REFUSED, "not a PNG or JPEG image", 0, 0);
  struct tg_blob j12 = copy_of(jpg.data, jpg.len);
  j12.data[sof_at(&j12)] = 12;
  add("jpeg 12-bit", j12, REFUSED, "JPEG: Unsupported JPEG data precision 12", 0, 0);
  add("jpeg 64x48 (control)", jpg, DECODES, NULL, 64, 48);
  /* CMYK (print files) cannot be converted to RGB by libjpeg: refused by name */
  add("jpeg cmyk", make_jpeg(20, 10, true, false), REFUSED,
      "JPEG: Unsupported color conversion request", 0, 0);

  /* nothing, or not an image at all */
  add("zero bytes", (struct tg_blob){NULL, 0}, REFUSED, "empty image (0 bytes)", 0, 0);
  unsigned char rnd[1000];
  for (size_t i = 0; i < sizeof(rnd); i++) {
    r = r * 1103515245u + 12345u;
    rnd[i] = (unsigned char)(r >> 16);
  }
  add("random bytes", copy_of(rnd, sizeof(rnd)), REFUSED, "not a PNG or JPEG image", 0, 0);
  add("gif", copy_of("GIF89a\1\0\1\0\0\0\0;", 14), REFUSED, "not a PNG or JPEG image", 0, 0);
}

/* ---- tests -------------------------------------------------------------- */

static void test_decode(void) {
  for (size_t i = 0; i < n_cases; i++) {
    const struct bad_case *c = &cases[i];
    struct tg_rgb_image img;
    char why[256] = "";
    tg_err_t rc = tg_image_decode(c->data.data, c->data.len, 64 << 20, &img, why, sizeof(why));
    if (c->expect == DECODES) {
      CHECK_MSG(rc == TG_OK, "%s: %s", c->name, why);
      CHECK_MSG(img.width == c->width && img.height == c->height, "%s: %dx%d", c->name,
                img.width, img.height);
      tg_image_free(&img);
      continue;
    }
    tg_err_t want = c->expect == TOO_LARGE ? TG_ERR_TOO_LARGE : TG_ERR_BAD_MSG;
    CHECK_MSG(rc == want, "%s: rc %s, want %s (\"%s\")", c->name, tg_err2str(rc),
              tg_err2str(want), why);
    CHECK_MSG(strstr(why, c->needle), "%s: message \"%s\" lacks \"%s\"", c->name, why,
              c->needle);
    CHECK_MSG(img.rgb == NULL && img.width == 0 && img.height == 0, "%s: image left", c->name);
  }
}

/* the decoded 16-bit, palette and grey+alpha pixels are the expected ones */
static void test_layout_pixels(void) {
  char why[256];
  struct tg_rgb_image img;
  struct tg_blob p;

  p = make_png(5, 3, 16, PNG_COLOR_TYPE_RGB, 6); /* v*257 -> v */
  CHECK(tg_image_decode(p.data, p.len, 0, &img, why, sizeof(why)) == TG_OK);
  for (int k = 0; img.rgb && k < 3; k++)
    CHECK(img.rgb[(1 * 5 + 2) * 3 + k] == sample(2, 1, k));
  tg_image_free(&img);
  tg_blob_free(&p);

  p = make_png(5, 3, 8, PNG_COLOR_TYPE_PALETTE, 6); /* entry i = (i, 255-i, i/2) */
  CHECK(tg_image_decode(p.data, p.len, 0, &img, why, sizeof(why)) == TG_OK);
  unsigned i = sample(4, 2, 0);
  if (img.rgb) {
    const unsigned char *px = img.rgb + (2 * 5 + 4) * 3;
    CHECK(px[0] == i && px[1] == 255 - i && px[2] == i / 2);
  }
  tg_image_free(&img);
  tg_blob_free(&p);

  p = make_png(5, 3, 8, PNG_COLOR_TYPE_GRAY_ALPHA, 6); /* grey over black: g * a / 255 */
  CHECK(tg_image_decode(p.data, p.len, 0, &img, why, sizeof(why)) == TG_OK);
  unsigned g = sample(3, 1, 0), a = sample(3, 1, 1);
  for (int k = 0; img.rgb && k < 3; k++)
    CHECK_MSG(img.rgb[(1 * 5 + 3) * 3 + k] == (g * a + 127) / 255, "%u", img.rgb[(5 + 3) * 3]);
  tg_image_free(&img);
  tg_blob_free(&p);
}

static struct tg_worker_conf conf;
static tg_job_t *job;

static void load_job(void) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/data/jobs/good-minimal.json", source_root);
  FILE *f = fopen(path, "rb");
  assert(f);
  char buf[65536];
  size_t n = fread(buf, 1, sizeof(buf), f);
  fclose(f);
  char why[256];
  job = tg_job_parse(buf, n, why, sizeof(why));
  if (!job)
    fprintf(stderr, "%s: %s\n", path, why);
  assert(job);
  job->options.n_variants = 2;
  snprintf(job->options.variants[0], sizeof(job->options.variants[0]), "full");
  snprintf(job->options.variants[1], sizeof(job->options.variants[1]), "thumb");
}

/* every case through the whole backend: postproc_failed with "scene: <why>" */
static void test_backend(void) {
  const struct tg_postproc_ops *ops = tg_postproc_find("cpu");
  void *st = NULL;
  char why[512] = "";
  CHECK(ops != NULL);
  tg_err_t rc = ops ? ops->create(&conf, &st, why, sizeof(why)) : TG_ERR_INVAL;
  CHECK_MSG(rc == TG_OK, "create: %s", why);
  if (rc != TG_OK)
    return;
  for (size_t i = 0; i < n_cases; i++) {
    const struct bad_case *c = &cases[i];
    struct tg_variant_image out[TG_MAX_VARIANTS];
    struct tg_postproc_report rep;
    struct tg_stage_error err;
    memset(&err, 0, sizeof(err));
    size_t n_out = 99;
    bool ok = ops->run(st, job, &c->data, out, &n_out, &rep, &err);
    if (c->expect == DECODES) {
      CHECK_MSG(ok && n_out == 2, "%s: %s", c->name, err.message);
      if (ok) {
        CHECK(out[0].width == c->width && out[0].height == c->height);
        tg_variant_images_free(out, n_out);
      }
      continue;
    }
    CHECK_MSG(!ok && n_out == 0, "%s: ran", c->name);
    if (ok)
      tg_variant_images_free(out, n_out);
    CHECK_MSG(err.code == TG_CODE_POSTPROC_FAILED, "%s: code %d", c->name, (int)err.code);
    /* undecodable: the diffusion stage may paint it again; over a limit: final */
    CHECK_MSG(err.retryable == (c->expect == REFUSED), "%s: retryable %d", c->name,
              err.retryable);
    CHECK_MSG(strncmp(err.message, "scene: ", 7) == 0 && strstr(err.message, c->needle),
              "%s: message \"%s\" lacks \"scene: ...%s\"", c->name, err.message, c->needle);
  }
  ops->destroy(st);
}

/* ---- memory bound --------------------------------------------------------- */

/* this process's address space in bytes, from /proc/self/status VmSize */
static uint64_t vm_size(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  unsigned long long kb = 0;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return (uint64_t)kb * 1024;
}

#define HEADROOM (16u << 20)

/* in the child: cap the address space at what is mapped now + @extra */
static void cap_address_space(uint64_t extra) {
  struct rlimit rl;
  rl.rlim_cur = rl.rlim_max = (rlim_t)(vm_size() + extra);
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    perror("setrlimit");
    _exit(3);
  }
}

/* Run @fn in a child whose address space is capped; its exit status. */
static int in_capped_child(uint64_t extra, int (*fn)(void *), void *arg) {
  fflush(NULL);
  pid_t pid = fork();
  assert(pid >= 0);
  if (pid == 0) {
    cap_address_space(extra);
    _exit(fn(arg));
  }
  int status = 0;
  assert(waitpid(pid, &status, 0) == pid);
  if (!WIFEXITED(status)) {
    fprintf(stderr, "  child killed by signal %d\n", WTERMSIG(status));
    return -1;
  }
  return WEXITSTATUS(status);
}

/* the cap bites: 64 MiB cannot be had under a 16 MiB headroom */
static int child_cap_bites(void *arg) {
  (void)arg;
  void *p = malloc(64u << 20);
  int bit = p == NULL;
  free(p);
  return bit ? 0 : 1;
}

/* every hostile case refused under the cap, none as "out of memory"; with
 * @arg NULL (no room for pixels) only those whose header is over the limits */
static int child_hostile(void *arg) {
  int bad = 0;
  for (size_t i = 0; i < n_cases; i++) {
    const struct bad_case *c = &cases[i];
    if (c->expect == DECODES || (c->legal_size && !arg))
      continue;
    struct tg_rgb_image img;
    char why[256] = "";
    tg_err_t rc = tg_image_decode(c->data.data, c->data.len, 0, &img, why, sizeof(why));
    tg_err_t want = c->expect == TOO_LARGE ? TG_ERR_TOO_LARGE : TG_ERR_BAD_MSG;
    if (rc != want) {
      fprintf(stderr, "  capped: %s: %s (%s)\n", c->name, tg_err2str(rc), why);
      bad++;
    }
  }
  return bad ? 1 : 0;
}

struct backend_arg {
  const struct tg_blob *scene;
  bool want_ok;
};

static int child_backend(void *arg) {
  const struct backend_arg *a = arg;
  void *st = NULL;
  char why[512];
  if (tg_postproc_cpu.create(&conf, &st, why, sizeof(why)) != TG_OK) {
    fprintf(stderr, "  capped create: %s\n", why);
    return 2;
  }
  struct tg_variant_image out[TG_MAX_VARIANTS];
  struct tg_postproc_report rep;
  struct tg_stage_error err = {0};
  size_t n_out = 0;
  bool ok = tg_postproc_cpu.run(st, job, a->scene, out, &n_out, &rep, &err);
  if (ok)
    tg_variant_images_free(out, n_out);
  tg_postproc_cpu.destroy(st);
  if (ok != a->want_ok || (!ok && !strstr(err.message, "exceeds"))) {
    fprintf(stderr, "  capped run: ok %d: %s\n", ok, err.message);
    return 1;
  }
  return 0;
}

static int child_decode_ok(void *arg) {
  const struct tg_blob *b = arg;
  struct tg_rgb_image img;
  char why[256] = "";
  tg_err_t rc = tg_image_decode(b->data, b->len, 0, &img, why, sizeof(why));
  if (rc != TG_OK) {
    if (rc != TG_ERR_NOMEM)
      fprintf(stderr, "  capped decode of the largest legal PNG: %s\n", why);
    return rc == TG_ERR_NOMEM ? 1 : 2;
  }
  int right = img.width == TG_MAX_IMAGE_SIDE && img.height == TG_MAX_IMAGE_SIDE;
  tg_image_free(&img);
  return right ? 0 : 3;
}

/* An 8x8 PNG carrying 64 zTXt chunks that each inflate to 8 MiB (libpng's per-chunk cap):
 * half a gigabyte of text in a 500 KB file. The decoder must not read them. */
static struct tg_blob text_bomb(void) {
  struct tg_blob small = make_png(8, 8, 8, PNG_COLOR_TYPE_RGB, 6);
  const size_t plain_len = 8u << 20;
  unsigned char *plain = calloc(1, plain_len);
  uLongf zlen = compressBound(plain_len);
  unsigned char *z = malloc(12 + zlen);
  memcpy(z, "Comment\0\0", 9); /* keyword, NUL, compression method 0 */
  assert(plain && z && compress2(z + 9, &zlen, plain, plain_len, 9) == Z_OK);
  struct membuf m = {0};
  put(&m, small.data, small.len - 12); /* everything but IEND */
  for (int i = 0; i < 64; i++)
    chunk(&m, "zTXt", z, (uint32_t)(9 + zlen));
  chunk(&m, "IEND", NULL, 0);
  free(plain);
  free(z);
  tg_blob_free(&small);
  return (struct tg_blob){m.data, m.len};
}

static int child_text_bomb(void *arg) {
  const struct tg_blob *b = arg;
  struct tg_rgb_image img;
  char why[256] = "";
  tg_err_t rc = tg_image_decode(b->data, b->len, 0, &img, why, sizeof(why));
  if (rc != TG_OK) {
    fprintf(stderr, "  capped decode of the zTXt bomb: %s (%s)\n", tg_err2str(rc), why);
    return 1;
  }
  tg_image_free(&img);
  return 0;
}

static void test_memory_bound(void) {
  struct tg_blob bomb = text_bomb();
  if (UNDER_ASAN || RUNNING_ON_VALGRIND) {
    fprintf(stderr, "  (RLIMIT_AS checks skipped: ASan or valgrind maps its own memory)\n");
    CHECK(child_text_bomb(&bomb) == 0); /* still decodes */
    tg_blob_free(&bomb);
    return;
  }
  CHECK_MSG(in_capped_child(HEADROOM, child_cap_bites, NULL) == 0,
            "a 64 MiB malloc succeeded under a 16 MiB headroom: the cap does not bite");
  CHECK_MSG(in_capped_child(HEADROOM, child_text_bomb, &bomb) == 0,
            "64 zTXt chunks of 8 MiB each were inflated (the scene needs a few KiB)");
  tg_blob_free(&bomb);
  CHECK_MSG(in_capped_child(HEADROOM, child_hostile, NULL) == 0,
            "a hostile input was not refused as expected under a 16 MiB headroom");
  uint64_t bound = (uint64_t)TG_MAX_IMAGE_PIXELS * 4;
  CHECK_MSG(in_capped_child(bound + HEADROOM, child_hostile, &bound) == 0,
            "a hostile input was not refused as expected within the limits bound");

  /* the 40000x40000 header through the backend: 4.8 GB of pixels never asked for.
   * The backend's create() loads the catalogue and font first, so its cap is
   * taken with room for those; the scene alone would need 300 times more. */
  struct tg_blob huge = png_claiming(40000, 40000, 8, PNG_COLOR_TYPE_RGB);
  struct backend_arg a = {&huge, false};
  CHECK_MSG(in_capped_child(HEADROOM * 4, child_backend, &a) == 0,
            "the backend did not refuse 40000x40000 within 64 MiB");
  tg_blob_free(&huge);

  /* the largest legal scene decodes within the limits table's bound:
   * image_pixels x 4 bytes (RGBA rows before flattening) + headroom */
  struct tg_blob big = make_png(TG_MAX_IMAGE_SIDE, TG_MAX_IMAGE_SIDE, 8,
                                PNG_COLOR_TYPE_RGB_ALPHA, 1);
  CHECK_MSG(in_capped_child(bound + HEADROOM, child_decode_ok, &big) == 0,
            "4096x4096 RGBA did not decode within %llu MiB",
            (unsigned long long)((bound + HEADROOM) >> 20));
  /* and it needs that bound: with only the headroom it is out of memory (1), not a crash */
  CHECK_MSG(in_capped_child(HEADROOM, child_decode_ok, &big) == 1,
            "4096x4096 RGBA decoded within 16 MiB: the cap is not measuring anything");
  tg_blob_free(&big);
}

int main(int argc, char **argv) {
  if (argc > 1)
    source_root = argv[1];
  tg_worker_conf_defaults(&conf);
  snprintf(conf.assets_dir, sizeof(conf.assets_dir), "%s/deploy/assets", source_root);
  load_job();
  make_cases();
  RUN(test_decode);
  RUN(test_layout_pixels);
  RUN(test_backend);
  RUN(test_memory_bound);
  for (size_t i = 0; i < n_cases; i++)
    tg_blob_free(&cases[i].data);
  tg_job_destroy(job);
  return check_done("test_bad_images");
}
