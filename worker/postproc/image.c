/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image.c - RGB8 images for the CPU post-processor: PNG and JPEG decoding
 * from memory, JPEG encoding to memory, and an exact area-averaging resize.
 *
 * Both codecs report errors by longjmp(). Every setjmp() sits in a small
 * "guarded" function whose state lives in a struct owned by its caller, so
 * nothing the error path needs can be clobbered, and the caller frees what
 * was allocated whichever way the guarded function returned. Sizes are
 * checked after the header is read and before any pixel buffer exists.
 */
#include "image.h"
#include "png_read.h"

#include "tg_limits.h"

#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

/* Bounds of what a decoder may allocate besides the pixels. */
#define JPEG_MAX_SCANS 500        /* progressive scans (libjpeg-turbo's advice) */

/* ---- common ------------------------------------------------------------ */

enum tg_image_format tg_image_sniff(const unsigned char *data, size_t len) {
  static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!data)
    return TG_IMAGE_UNKNOWN;
  if (len >= sizeof(png_sig) && memcmp(data, png_sig, sizeof(png_sig)) == 0)
    return TG_IMAGE_PNG;
  if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
    return TG_IMAGE_JPEG;
  return TG_IMAGE_UNKNOWN;
}

tg_err_t tg_image_check_size(uint64_t width, uint64_t height, char *errstr, size_t n) {
  if (width == 0 || height == 0) {
    snprintf(errstr, n, "%llux%llu has an empty side", (unsigned long long)width,
             (unsigned long long)height);
    return TG_ERR_BAD_MSG;
  }
  if (width > TG_MAX_IMAGE_SIDE || height > TG_MAX_IMAGE_SIDE) {
    snprintf(errstr, n, "%llux%llu exceeds %d px per side", (unsigned long long)width,
             (unsigned long long)height, TG_MAX_IMAGE_SIDE);
    return TG_ERR_TOO_LARGE;
  }
  if (width * height > (uint64_t)TG_MAX_IMAGE_PIXELS) {
    snprintf(errstr, n, "%llux%llu exceeds %d pixels", (unsigned long long)width,
             (unsigned long long)height, TG_MAX_IMAGE_PIXELS);
    return TG_ERR_TOO_LARGE;
  }
  return TG_OK;
}

void tg_image_free(struct tg_rgb_image *img) {
  if (!img)
    return;
  free(img->rgb);
  img->rgb = NULL;
  img->width = 0;
  img->height = 0;
}

/* ---- PNG decoding (libpng) --------------------------------------------- */

/* Composite RGBA over black, compacting 4-byte pixels to 3 in place. */
static void flatten_rgba(unsigned char *px, size_t count) {
  for (size_t i = 0; i < count; i++) {
    unsigned r = px[4 * i], g = px[4 * i + 1], b = px[4 * i + 2], a = px[4 * i + 3];
    px[3 * i] = (unsigned char)((r * a + 127) / 255);
    px[3 * i + 1] = (unsigned char)((g * a + 127) / 255);
    px[3 * i + 2] = (unsigned char)((b * a + 127) / 255);
  }
}

/* The part of PNG decoding that libpng may longjmp() out of. */
static tg_err_t png_decode_guarded(png_structp png, png_infop info, struct tg_png_read *d,
                                   char *errstr, size_t n) {
  if (setjmp(png_jmpbuf(png)))
    return tg_png_read_failed(d, errstr, n);
  png_read_info(png, info);

  int depth = 0, ctype = 0;
  png_get_IHDR(png, info, &d->width, &d->height, &depth, &ctype, NULL, NULL, NULL);
  tg_err_t rc = tg_image_check_size(d->width, d->height, errstr, n);
  if (rc != TG_OK)
    return rc;

  bool alpha = (ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS);
  if (ctype == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha(png);
  if (depth == 16)
    png_set_scale_16(png);
  if (!(ctype & PNG_COLOR_MASK_COLOR))
    png_set_gray_to_rgb(png);
  (void)png_set_interlace_handling(png);
  png_read_update_info(png, info);

  size_t channels = alpha ? 4 : 3;
  size_t stride = (size_t)d->width * channels;
  if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != channels ||
      png_get_rowbytes(png, info) != stride) {
    snprintf(errstr, n, "PNG: unsupported pixel layout after conversion");
    return TG_ERR_BAD_MSG;
  }
  d->pixels = malloc(stride * d->height);
  d->rows = malloc(sizeof(*d->rows) * d->height);
  if (!d->pixels || !d->rows) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  for (png_uint_32 y = 0; y < d->height; y++)
    d->rows[y] = d->pixels + (size_t)y * stride;
  png_read_image(png, d->rows);
  if (alpha)
    flatten_rgba(d->pixels, (size_t)d->width * d->height);
  return TG_OK;
}

static tg_err_t png_decode(const unsigned char *data, size_t len, struct tg_rgb_image *out,
                           char *errstr, size_t n) {
  struct tg_png_read d;
  png_structp png;
  png_infop info;
  tg_err_t rc = tg_png_read_open(&d, data, len, &png, &info, errstr, n);
  if (rc == TG_OK)
    rc = png_decode_guarded(png, info, &d, errstr, n);
  tg_png_read_close(&d, &png, &info);
  if (rc != TG_OK) {
    free(d.pixels);
    return rc;
  }
  size_t size = (size_t)d.width * d.height * 3;
  unsigned char *shrunk = realloc(d.pixels, size); /* RGBA was flattened in place */
  out->rgb = shrunk ? shrunk : d.pixels;
  out->width = (int)d.width;
  out->height = (int)d.height;
  return TG_OK;
}

/* ---- JPEG decoding and encoding (libjpeg-turbo) ------------------------ */

/* libjpeg error manager that longjmp()s back with the message. */
struct jpeg_err {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  bool oom;
  char msg[JMSG_LENGTH_MAX];
};

static void jpeg_on_error(j_common_ptr cinfo) {
  struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, e->msg);
  e->oom = cinfo->err->msg_code == JERR_OUT_OF_MEMORY;
  longjmp(e->jb, 1);
}

/* Warnings (level -1) mean corrupt or truncated data: fail; traces are dropped. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
  if (level < 0)
    jpeg_on_error(cinfo);
}

/* Stop pathological progressive files that loop over thousands of scans. */
static void jpeg_on_progress(j_common_ptr cinfo) {
  if (!cinfo->is_decompressor)
    return;
  j_decompress_ptr d = (j_decompress_ptr)cinfo;
  if (d->input_scan_number > JPEG_MAX_SCANS) {
    struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
    snprintf(e->msg, sizeof(e->msg), "more than %d progressive scans", JPEG_MAX_SCANS);
    e->oom = false;
    longjmp(e->jb, 1);
  }
}

static void jpeg_err_init(struct jpeg_err *e) {
  jpeg_std_error(&e->pub);
  e->pub.error_exit = jpeg_on_error;
  e->pub.emit_message = jpeg_on_message;
}

static tg_err_t jpeg_failed(const struct jpeg_err *e, char *errstr, size_t n) {
  if (e->oom) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  snprintf(errstr, n, "JPEG: %s", e->msg);
  return TG_ERR_BAD_MSG;
}

/* Everything the JPEG decoding error path needs; lives in jpeg_decode()'s frame. */
struct jpeg_dec {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_err err;
  struct jpeg_progress_mgr progress;
  unsigned char *pixels;
};

static tg_err_t jpeg_decode_guarded(struct jpeg_dec *d, const unsigned char *data, size_t len,
                                    char *errstr, size_t n) {
  if (setjmp(d->err.jb))
    return jpeg_failed(&d->err, errstr, n);
  jpeg_create_decompress(&d->cinfo);
  d->progress.progress_monitor = jpeg_on_progress;
  d->cinfo.progress = &d->progress;
  jpeg_mem_src(&d->cinfo, data, (unsigned long)len);
  (void)jpeg_read_header(&d->cinfo, TRUE);
  tg_err_t rc = tg_image_check_size(d->cinfo.image_width, d->cinfo.image_height, errstr, n);
  if (rc != TG_OK)
    return rc;
  d->cinfo.out_color_space = JCS_RGB;
  (void)jpeg_start_decompress(&d->cinfo);
  if (d->cinfo.output_components != 3 ||
      d->cinfo.output_width != d->cinfo.image_width ||
      d->cinfo.output_height != d->cinfo.image_height) {
    snprintf(errstr, n, "JPEG: unsupported output layout");
    return TG_ERR_BAD_MSG;
  }
  size_t stride = (size_t)d->cinfo.output_width * 3;
  d->pixels = malloc(stride * d->cinfo.output_height);
  if (!d->pixels) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  while (d->cinfo.output_scanline < d->cinfo.output_height) {
    JSAMPROW row = d->pixels + (size_t)d->cinfo.output_scanline * stride;
    (void)jpeg_read_scanlines(&d->cinfo, &row, 1);
  }
  (void)jpeg_finish_decompress(&d->cinfo);
  return TG_OK;
}

static tg_err_t jpeg_decode(const unsigned char *data, size_t len, struct tg_rgb_image *out,
                            char *errstr, size_t n) {
  if (len > ULONG_MAX) {
    snprintf(errstr, n, "JPEG: too large");
    return TG_ERR_TOO_LARGE;
  }
  struct jpeg_dec d;
  memset(&d, 0, sizeof(d));
  jpeg_err_init(&d.err);
  d.cinfo.err = &d.err.pub;
  tg_err_t rc = jpeg_decode_guarded(&d, data, len, errstr, n);
  if (rc == TG_OK) {
    out->rgb = d.pixels;
    out->width = (int)d.cinfo.output_width;
    out->height = (int)d.cinfo.output_height;
  } else {
    free(d.pixels);
  }
  jpeg_destroy_decompress(&d.cinfo); /* no-op when create itself failed */
  return rc;
}

/*
 * A growable in-memory destination. jpeg_mem_dest() would do, but after it
 * has grown its buffer it leaves the caller a stale pointer and keeps the
 * live one to itself, so an error mid-encode leaks it. This one keeps the
 * buffer where the error path can free it.
 */
struct jpeg_sink {
  struct jpeg_destination_mgr pub;
  unsigned char *buf;
  size_t cap;
  size_t len;
};

static void sink_init(j_compress_ptr cinfo) {
  struct jpeg_sink *s = (struct jpeg_sink *)cinfo->dest;
  s->pub.next_output_byte = s->buf;
  s->pub.free_in_buffer = s->cap;
}

/* called when the buffer is full: double it */
static boolean sink_grow(j_compress_ptr cinfo) {
  struct jpeg_sink *s = (struct jpeg_sink *)cinfo->dest;
  size_t cap = s->cap * 2;
  unsigned char *p = cap > s->cap ? realloc(s->buf, cap) : NULL;
  if (!p)
    ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 99);
  s->pub.next_output_byte = p + s->cap;
  s->pub.free_in_buffer = cap - s->cap;
  s->buf = p;
  s->cap = cap;
  return TRUE;
}

static void sink_term(j_compress_ptr cinfo) {
  struct jpeg_sink *s = (struct jpeg_sink *)cinfo->dest;
  s->len = s->cap - s->pub.free_in_buffer;
}

/* Everything the JPEG encoding error path needs; lives in the caller's frame. */
struct jpeg_enc {
  struct jpeg_compress_struct cinfo;
  struct jpeg_err err;
  struct jpeg_sink sink;
};

static tg_err_t jpeg_encode_guarded(struct jpeg_enc *e, const struct tg_rgb_image *img,
                                    int quality, char *errstr, size_t n) {
  if (setjmp(e->err.jb))
    return jpeg_failed(&e->err, errstr, n);
  jpeg_create_compress(&e->cinfo);
  /* a first guess of the compressed size; grown by doubling */
  e->sink.cap = (size_t)img->width * (size_t)img->height / 4 + 16384;
  e->sink.buf = malloc(e->sink.cap);
  if (!e->sink.buf) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  e->sink.pub.init_destination = sink_init;
  e->sink.pub.empty_output_buffer = sink_grow;
  e->sink.pub.term_destination = sink_term;
  e->cinfo.dest = &e->sink.pub;
  e->cinfo.image_width = (JDIMENSION)img->width;
  e->cinfo.image_height = (JDIMENSION)img->height;
  e->cinfo.input_components = 3;
  e->cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&e->cinfo);
  jpeg_set_quality(&e->cinfo, quality, TRUE);
  jpeg_start_compress(&e->cinfo, TRUE);
  size_t stride = (size_t)img->width * 3;
  while (e->cinfo.next_scanline < e->cinfo.image_height) {
    JSAMPROW row = img->rgb + (size_t)e->cinfo.next_scanline * stride;
    (void)jpeg_write_scanlines(&e->cinfo, &row, 1);
  }
  jpeg_finish_compress(&e->cinfo);
  return TG_OK;
}

tg_err_t tg_image_encode_jpeg(const struct tg_rgb_image *img, int quality, struct tg_blob *out,
                              char *errstr, size_t n) {
  out->data = NULL;
  out->len = 0;
  if (!img || !img->rgb || img->width < 1 || img->height < 1) {
    snprintf(errstr, n, "JPEG: nothing to encode");
    return TG_ERR_INVAL;
  }
  if (img->width > JPEG_MAX_DIMENSION || img->height > JPEG_MAX_DIMENSION) {
    snprintf(errstr, n, "JPEG: %dx%d is too large for JPEG", img->width, img->height);
    return TG_ERR_INVAL;
  }
  quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;
  struct jpeg_enc e;
  memset(&e, 0, sizeof(e));
  jpeg_err_init(&e.err);
  e.cinfo.err = &e.err.pub;
  tg_err_t rc = jpeg_encode_guarded(&e, img, quality, errstr, n);
  jpeg_destroy_compress(&e.cinfo);
  if (rc != TG_OK) {
    free(e.sink.buf);
    return rc;
  }
  unsigned char *shrunk = realloc(e.sink.buf, e.sink.len ? e.sink.len : 1);
  out->data = shrunk ? shrunk : e.sink.buf;
  out->len = e.sink.len;
  return TG_OK;
}

/* ---- decoding entry point ---------------------------------------------- */

tg_err_t tg_image_check_encoded(const unsigned char *data, size_t len, int64_t max_bytes,
                                char *errstr, size_t n) {
  if (!data || len == 0) {
    snprintf(errstr, n, "empty image (0 bytes)");
    return TG_ERR_BAD_MSG;
  }
  if (max_bytes > 0 && (uint64_t)len > (uint64_t)max_bytes) {
    snprintf(errstr, n, "%zu bytes exceeds the limit of %lld bytes", len, (long long)max_bytes);
    return TG_ERR_TOO_LARGE;
  }
  return TG_OK;
}

tg_err_t tg_image_decode(const unsigned char *data, size_t len, int64_t max_bytes,
                         struct tg_rgb_image *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  tg_err_t rc = tg_image_check_encoded(data, len, max_bytes, errstr, n);
  if (rc != TG_OK)
    return rc;
  switch (tg_image_sniff(data, len)) {
  case TG_IMAGE_PNG:
    return png_decode(data, len, out, errstr, n);
  case TG_IMAGE_JPEG:
    return jpeg_decode(data, len, out, errstr, n);
  case TG_IMAGE_UNKNOWN:
    break;
  }
  snprintf(errstr, n, "not a PNG or JPEG image");
  return TG_ERR_BAD_MSG;
}

/* ---- area-averaging resize --------------------------------------------- */

/* Source range and integer weights of each target index along one axis. */
struct axis_span {
  int first;      /* first source index */
  int count;      /* how many source indexes */
  size_t off;     /* where their weights start */
};

/*
 * Target index i covers [i*src, (i+1)*src) and source index j covers
 * [j*dst, (j+1)*dst), both in units of 1/dst of a source pixel; a weight is
 * their overlap, and the weights of one target index sum to src. The
 * weights take at most src + dst entries in all.
 */
static void axis_weights(int src, int dst, struct axis_span *span, uint32_t *w) {
  size_t off = 0;
  for (int i = 0; i < dst; i++) {
    int64_t lo = (int64_t)i * src, hi = lo + src;
    int first = (int)(lo / dst), last = (int)((hi - 1) / dst);
    span[i].first = first;
    span[i].count = last - first + 1;
    span[i].off = off;
    for (int j = first; j <= last; j++) {
      int64_t a = (int64_t)j * dst, b = a + dst;
      w[off++] = (uint32_t)((hi < b ? hi : b) - (lo > a ? lo : a));
    }
  }
}

tg_err_t tg_image_resize_area(const struct tg_rgb_image *src, int width, int height,
                              struct tg_rgb_image *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  if (!src || !src->rgb || src->width < 1 || src->height < 1 || width < 1 || height < 1) {
    snprintf(errstr, n, "resize: empty source or target");
    return TG_ERR_INVAL;
  }
  tg_err_t rc = tg_image_check_size((uint64_t)width, (uint64_t)height, errstr, n);
  if (rc != TG_OK)
    return rc == TG_ERR_TOO_LARGE ? TG_ERR_INVAL : rc;

  int sw = src->width, sh = src->height;
  struct axis_span *xs = malloc(sizeof(*xs) * (size_t)width);
  struct axis_span *ys = malloc(sizeof(*ys) * (size_t)height);
  uint32_t *xw = malloc(sizeof(*xw) * ((size_t)sw + (size_t)width));
  uint32_t *yw = malloc(sizeof(*yw) * ((size_t)sh + (size_t)height));
  uint64_t *acc = malloc(sizeof(*acc) * (size_t)width * 3);
  unsigned char *px = malloc((size_t)width * (size_t)height * 3);
  if (!xs || !ys || !xw || !yw || !acc || !px) {
    snprintf(errstr, n, "out of memory");
    rc = TG_ERR_NOMEM;
    goto done;
  }
  axis_weights(sw, width, xs, xw);
  axis_weights(sh, height, ys, yw);

  const uint64_t den = (uint64_t)sw * (uint64_t)sh; /* all weights of one pixel */
  const size_t sstride = (size_t)sw * 3;
  for (int y = 0; y < height; y++) {
    memset(acc, 0, sizeof(*acc) * (size_t)width * 3);
    for (int k = 0; k < ys[y].count; k++) {
      const unsigned char *row = src->rgb + (size_t)(ys[y].first + k) * sstride;
      uint64_t wy = yw[ys[y].off + (size_t)k];
      for (int x = 0; x < width; x++) {
        uint64_t r = 0, g = 0, b = 0;
        const unsigned char *p = row + (size_t)xs[x].first * 3;
        const uint32_t *wx = xw + xs[x].off;
        for (int c = 0; c < xs[x].count; c++, p += 3) {
          r += (uint64_t)wx[c] * p[0];
          g += (uint64_t)wx[c] * p[1];
          b += (uint64_t)wx[c] * p[2];
        }
        acc[3 * (size_t)x] += wy * r;
        acc[3 * (size_t)x + 1] += wy * g;
        acc[3 * (size_t)x + 2] += wy * b;
      }
    }
    unsigned char *dst = px + (size_t)y * (size_t)width * 3;
    for (size_t i = 0; i < (size_t)width * 3; i++)
      dst[i] = (unsigned char)((acc[i] + den / 2) / den);
  }
  out->rgb = px;
  out->width = width;
  out->height = height;
  px = NULL;
  rc = TG_OK;
done:
  free(xs);
  free(ys);
  free(xw);
  free(yw);
  free(acc);
  free(px);
  return rc;
}
