/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raster.c - RGBA8 images with straight alpha: PNG decoding (libpng) that
 * keeps the alpha channel, from memory or from a file, for the vehicle
 * cutouts and the logo. As in image.c, the setjmp() sits in a small guarded
 * function whose state lives in a struct owned by its caller, and sizes are
 * checked after the header and before any pixel buffer is allocated.
 */
#include "raster.h"
#include "png_read.h"

#include "tg_limits.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void tg_rgba_free(struct tg_rgba_image *img) {
  if (!img)
    return;
  free(img->rgba);
  img->rgba = NULL;
  img->width = 0;
  img->height = 0;
}

/* The part of decoding that libpng may longjmp() out of. */
static tg_err_t decode_guarded(png_structp png, png_infop info, struct tg_png_read *d,
                               char *errstr, size_t n) {
  if (setjmp(png_jmpbuf(png)))
    return tg_png_read_failed(d, errstr, n);
  png_read_info(png, info);

  int depth = 0, ctype = 0;
  png_get_IHDR(png, info, &d->width, &d->height, &depth, &ctype, NULL, NULL, NULL);
  tg_err_t rc = tg_image_check_size(d->width, d->height, errstr, n);
  if (rc != TG_OK)
    return rc;

  bool trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
  if (ctype == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (trns)
    png_set_tRNS_to_alpha(png);
  if (depth == 16)
    png_set_scale_16(png);
  if (!(ctype & PNG_COLOR_MASK_COLOR))
    png_set_gray_to_rgb(png);
  if (!(ctype & PNG_COLOR_MASK_ALPHA) && !trns)
    png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
  (void)png_set_interlace_handling(png);
  png_read_update_info(png, info);

  size_t stride = (size_t)d->width * 4;
  if (png_get_bit_depth(png, info) != 8 || png_get_channels(png, info) != 4 ||
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
  return TG_OK;
}

tg_err_t tg_rgba_decode_png(const unsigned char *data, size_t len, int64_t max_bytes,
                            struct tg_rgba_image *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  tg_err_t bound = tg_image_check_encoded(data, len, max_bytes, errstr, n);
  if (bound != TG_OK)
    return bound;
  if (tg_image_sniff(data, len) != TG_IMAGE_PNG) {
    snprintf(errstr, n, "not a PNG image");
    return TG_ERR_BAD_MSG;
  }
  struct tg_png_read d;
  png_structp png;
  png_infop info;
  tg_err_t rc = tg_png_read_open(&d, data, len, &png, &info, errstr, n);
  if (rc == TG_OK)
    rc = decode_guarded(png, info, &d, errstr, n);
  tg_png_read_close(&d, &png, &info);
  if (rc != TG_OK) {
    free(d.pixels);
    return rc;
  }
  out->rgba = d.pixels;
  out->width = (int)d.width;
  out->height = (int)d.height;
  return TG_OK;
}

tg_err_t tg_rgba_load_png(const char *path, int64_t max_bytes, struct tg_rgba_image *out,
                          char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  if (!path || !*path) {
    snprintf(errstr, n, "no PNG path given");
    return TG_ERR_INVAL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errstr, n, "%s: %s", path, strerror(errno));
    return TG_ERR_IO;
  }
  /* read at most one byte past the bound, so an oversized file is refused
   * without reading all of it */
  size_t cap = 1 << 16, len = 0;
  unsigned char *buf = malloc(cap);
  tg_err_t rc = TG_OK;
  if (!buf) {
    snprintf(errstr, n, "out of memory");
    rc = TG_ERR_NOMEM;
    goto done;
  }
  for (;;) {
    if (len == cap) {
      if (max_bytes > 0 && (uint64_t)len > (uint64_t)max_bytes)
        break;
      unsigned char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        snprintf(errstr, n, "out of memory");
        rc = TG_ERR_NOMEM;
        goto done;
      }
      buf = bigger;
      cap *= 2;
    }
    size_t got = fread(buf + len, 1, cap - len, f);
    len += got;
    if (got == 0)
      break;
  }
  if (ferror(f)) {
    snprintf(errstr, n, "%s: read error", path);
    rc = TG_ERR_IO;
    goto done;
  }
  if (max_bytes > 0 && (uint64_t)len > (uint64_t)max_bytes) {
    snprintf(errstr, n, "%s: larger than the limit of %lld bytes", path, (long long)max_bytes);
    rc = TG_ERR_TOO_LARGE;
    goto done;
  }
  char why[256];
  rc = tg_rgba_decode_png(buf, len, 0, out, why, sizeof(why));
  if (rc != TG_OK)
    snprintf(errstr, n, "%s: %s", path, why);
done:
  free(buf);
  fclose(f);
  return rc;
}
