/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resize.c - separable Lanczos-3 resampling (see resize.h): per axis, the
 * taps of every output index are computed once with tg_lanczos3()
 * (pixel_math.h), quantised to 14-bit integers that sum exactly to 16384,
 * then applied vertically (whole rows at a time, into a 32-bit
 * intermediate with 7 extra fraction bits) and horizontally, rounded half
 * up and clamped. Sums are 32-bit where their bound fits, else 64-bit. The
 * same code filters 8-bit RGB and 16-bit premultiplied RGBA.
 */
#include "resize.h"

#include "pixel_math.h"
#include "tg_limits.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_BITS 14
#define TAP_ONE (1 << TAP_BITS)
#define MID_BITS 7 /* extra fraction bits kept between the passes */

/* The taps of every output index along one axis. */
struct axis_taps {
  int *first;  /* first source index of output i */
  int *count;  /* how many taps */
  int32_t *w;  /* count[i] weights of output i start at w + i * stride */
  int stride;  /* most taps of one output */
  int64_t abs_sum; /* largest sum of |weights| of one output (>= TAP_ONE) */
};

static void axis_taps_free(struct axis_taps *t) {
  free(t->first);
  free(t->count);
  free(t->w);
}

/* floor(a / 2^bits) for any sign, without relying on >> of negatives */
static int64_t floor_shift(int64_t a, int bits) {
  int64_t d = (int64_t)1 << bits;
  return a >= 0 ? a / d : -((-a + d - 1) / d);
}

static bool axis_taps_make(int in, int out, struct axis_taps *t) {
  double scale = (double)in / (double)out;
  double fs = scale > 1.0 ? scale : 1.0; /* kernel stretch when shrinking */
  double support = 3.0 * fs;
  t->stride = (int)(2.0 * support) + 2;
  t->first = malloc(sizeof(int) * (size_t)out);
  t->count = malloc(sizeof(int) * (size_t)out);
  t->w = malloc(sizeof(int32_t) * (size_t)out * (size_t)t->stride);
  float *fw = malloc(sizeof(float) * (size_t)t->stride);
  if (!t->first || !t->count || !t->w || !fw) {
    free(fw);
    return false;
  }
  for (int i = 0; i < out; i++) {
    double centre = ((double)i + 0.5) * scale - 0.5; /* in source pixel indexes */
    int lo = (int)ceil(centre - support), hi = (int)floor(centre + support);
    if (lo < 0)
      lo = 0;
    if (hi > in - 1)
      hi = in - 1;
    if (hi - lo + 1 > t->stride)
      hi = lo + t->stride - 1;
    int n = hi - lo + 1;
    float sum = 0.0f;
    for (int k = 0; k < n; k++) {
      fw[k] = tg_lanczos3((float)(((double)(lo + k) - centre) / fs));
      sum += fw[k];
    }
    int32_t *w = t->w + (size_t)i * (size_t)t->stride;
    int32_t total = 0;
    int big = 0;
    for (int k = 0; k < n; k++) {
      w[k] = sum != 0.0f ? (int32_t)floorf(fw[k] / sum * (float)TAP_ONE + 0.5f) : 0;
      total += w[k];
      if (w[k] > w[big])
        big = k;
    }
    w[big] += TAP_ONE - total; /* exact partition of unity */
    int64_t abs_sum = 0;
    for (int k = 0; k < n; k++)
      abs_sum += w[k] < 0 ? -(int64_t)w[k] : w[k];
    if (abs_sum > t->abs_sum)
      t->abs_sum = abs_sum;
    t->first[i] = lo;
    t->count[i] = n;
  }
  free(fw);
  return true;
}

/* One channel-interleaved image: 8-bit RGB or 16-bit premultiplied RGBA. */
struct plane {
  const unsigned char *p8; /* 3 channels */
  const uint16_t *p16;     /* 4 channels */
  int w, h;
};

/* floor((v + half) / 2^MID_BITS) for the 32-bit sums of the 8-bit path;
 * the offset keeps the shifted value non-negative (|v| < 2^27 here) */
static inline int32_t mid_round32(int32_t v) {
  const int32_t off = (int32_t)1 << 28;
  return (int32_t)((uint32_t)(v + off + (1 << (TAP_BITS - MID_BITS - 1))) >>
                   (TAP_BITS - MID_BITS)) -
         (off >> (TAP_BITS - MID_BITS));
}

/*
 * Vertical pass: the source's rows into @mid (out_h rows of rowlen = w * ch
 * samples, MID_BITS fraction bits). Whole rows are summed tap by tap, so
 * the inner loop runs over contiguous memory and vectorises. @acc holds
 * rowlen sums: 32-bit for 8-bit samples (resample() checks they fit),
 * 64-bit for 16-bit ones.
 */
static void vpass(const struct plane *s, size_t rowlen, const struct axis_taps *ty, int out_h,
                  int32_t *mid, void *acc) {
  for (int y = 0; y < out_h; y++) {
    const int32_t *wy = ty->w + (size_t)y * (size_t)ty->stride;
    int32_t *dst = mid + (size_t)y * rowlen;
    if (s->p8) {
      int32_t *a = acc;
      memset(a, 0, sizeof(*a) * rowlen);
      const unsigned char *row = s->p8 + (size_t)ty->first[y] * rowlen;
      for (int k = 0; k < ty->count[y]; k++, row += rowlen) {
        const int32_t wk = wy[k];
        for (size_t i = 0; i < rowlen; i++)
          a[i] += wk * row[i];
      }
      for (size_t i = 0; i < rowlen; i++)
        dst[i] = mid_round32(a[i]);
    } else {
      int64_t *a = acc;
      memset(a, 0, sizeof(*a) * rowlen);
      const uint16_t *row = s->p16 + (size_t)ty->first[y] * rowlen;
      for (int k = 0; k < ty->count[y]; k++, row += rowlen) {
        const int64_t wk = wy[k];
        for (size_t i = 0; i < rowlen; i++)
          a[i] += wk * row[i];
      }
      for (size_t i = 0; i < rowlen; i++)
        dst[i] = (int32_t)floor_shift(a[i] + ((int64_t)1 << (TAP_BITS - MID_BITS - 1)),
                                      TAP_BITS - MID_BITS);
    }
  }
}

/* the final rounding: floor((v + half) / 2^(TAP_BITS + MID_BITS)) clamped to 0..vmax */
static inline int32_t out_round(int64_t v, int32_t vmax) {
  const int bits = TAP_BITS + MID_BITS;
  v = floor_shift(v + ((int64_t)1 << (bits - 1)), bits);
  return (int32_t)(v < 0 ? 0 : v > vmax ? vmax : v);
}

/* Horizontal pass, 3 channels: @mid (h rows of in_w * 3) into @out (h rows of out_w * 3);
 * 32-bit sums when !wide (resample() checks they fit). */
static void hpass3(const int32_t *mid, int in_w, int h, const struct axis_taps *tx, int out_w,
                   bool wide, int32_t vmax, int32_t *out) {
  for (int y = 0; y < h; y++) {
    const int32_t *row = mid + (size_t)y * (size_t)in_w * 3;
    int32_t *dst = out + (size_t)y * (size_t)out_w * 3;
    for (int x = 0; x < out_w; x++) {
      const int32_t *w = tx->w + (size_t)x * (size_t)tx->stride;
      const int32_t *p = row + (size_t)tx->first[x] * 3;
      int64_t r, g, b;
      if (wide) {
        r = g = b = 0;
        for (int k = 0; k < tx->count[x]; k++, p += 3) {
          r += (int64_t)w[k] * p[0];
          g += (int64_t)w[k] * p[1];
          b += (int64_t)w[k] * p[2];
        }
      } else {
        int32_t r32 = 0, g32 = 0, b32 = 0;
        for (int k = 0; k < tx->count[x]; k++, p += 3) {
          r32 += w[k] * p[0];
          g32 += w[k] * p[1];
          b32 += w[k] * p[2];
        }
        r = r32, g = g32, b = b32;
      }
      dst[3 * x] = out_round(r, vmax);
      dst[3 * x + 1] = out_round(g, vmax);
      dst[3 * x + 2] = out_round(b, vmax);
    }
  }
}

/* Horizontal pass, 4 channels, 64-bit sums. */
static void hpass4(const int32_t *mid, int in_w, int h, const struct axis_taps *tx, int out_w,
                   int32_t vmax, int32_t *out) {
  for (int y = 0; y < h; y++) {
    const int32_t *row = mid + (size_t)y * (size_t)in_w * 4;
    int32_t *dst = out + (size_t)y * (size_t)out_w * 4;
    for (int x = 0; x < out_w; x++) {
      const int32_t *w = tx->w + (size_t)x * (size_t)tx->stride;
      const int32_t *p = row + (size_t)tx->first[x] * 4;
      int64_t acc[4] = {0, 0, 0, 0};
      for (int k = 0; k < tx->count[x]; k++, p += 4)
        for (int c = 0; c < 4; c++)
          acc[c] += (int64_t)w[k] * p[c];
      for (int c = 0; c < 4; c++)
        dst[4 * x + c] = out_round(acc[c], vmax);
    }
  }
}

/* Check a source and a target size; TG_OK or the error with errstr set. */
static tg_err_t check_sizes(const void *px, int sw, int sh, int w, int h, char *errstr,
                            size_t n) {
  if (!px || sw < 1 || sh < 1) {
    snprintf(errstr, n, "resize: empty or missing source image");
    return TG_ERR_INVAL;
  }
  if (w < 1 || h < 1) {
    snprintf(errstr, n, "resize: target %dx%d has an empty side", w, h);
    return TG_ERR_INVAL;
  }
  char why[128];
  if (tg_image_check_size((uint64_t)sw, (uint64_t)sh, why, sizeof(why)) != TG_OK) {
    snprintf(errstr, n, "resize: source %s", why);
    return TG_ERR_TOO_LARGE;
  }
  if (tg_image_check_size((uint64_t)w, (uint64_t)h, why, sizeof(why)) != TG_OK) {
    snprintf(errstr, n, "resize: target %s", why);
    return TG_ERR_TOO_LARGE;
  }
  return TG_OK;
}

/* Resample @s to w x h into @out (w * h * channels int32 samples in 0..vmax):
 * vertically first (vectorised, over whole rows), then horizontally. */
static tg_err_t resample(const struct plane *s, int w, int h, int32_t vmax, int32_t *out,
                         char *errstr, size_t n) {
  struct axis_taps tx = {0}, ty = {0};
  const size_t ch = s->p16 ? 4 : 3, in_rowlen = (size_t)s->w * ch;
  bool wide = s->p16 != NULL;
  int32_t *mid = NULL;
  void *acc = NULL;
  tg_err_t rc = TG_ERR_NOMEM;
  if (!axis_taps_make(s->w, w, &tx) || !axis_taps_make(s->h, h, &ty))
    goto done;
  /* what mid_round32() and the 32-bit sums assume; Lanczos-3 stays below 4 * TAP_ONE */
  if (255 * ty.abs_sum >= ((int64_t)1 << 27)) {
    snprintf(errstr, n, "resize: filter taps out of range");
    rc = TG_ERR_INVAL;
    goto done;
  }
  if (!wide) {
    /* bound of |mid| and of the horizontal sums: 64 bits if 32 could overflow */
    int64_t mid_max = 255 * ty.abs_sum / (TAP_ONE >> MID_BITS) + 1;
    wide = mid_max * tx.abs_sum > INT32_MAX;
  }
  mid = malloc(sizeof(*mid) * in_rowlen * (size_t)h);
  acc = malloc((s->p16 ? sizeof(int64_t) : sizeof(int32_t)) * in_rowlen);
  if (!mid || !acc)
    goto done;
  vpass(s, in_rowlen, &ty, h, mid, acc);
  if (s->p16)
    hpass4(mid, s->w, h, &tx, w, vmax, out);
  else
    hpass3(mid, s->w, h, &tx, w, wide, vmax, out);
  rc = TG_OK;
done:
  if (rc == TG_ERR_NOMEM)
    snprintf(errstr, n, "out of memory");
  axis_taps_free(&tx);
  axis_taps_free(&ty);
  free(mid);
  free(acc);
  return rc;
}

tg_err_t tg_image_resize_lanczos(const struct tg_rgb_image *src, int w, int h,
                                 struct tg_rgb_image *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  tg_err_t rc = check_sizes(src ? src->rgb : NULL, src ? src->width : 0, src ? src->height : 0,
                            w, h, errstr, n);
  if (rc != TG_OK)
    return rc;
  size_t count = (size_t)w * (size_t)h * 3;
  int32_t *tmp = malloc(sizeof(*tmp) * count);
  unsigned char *px = malloc(count);
  if (!tmp || !px) {
    free(tmp);
    free(px);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  struct plane s = {.p8 = src->rgb, .w = src->width, .h = src->height};
  rc = resample(&s, w, h, 255, tmp, errstr, n);
  if (rc != TG_OK) {
    free(tmp);
    free(px);
    return rc;
  }
  for (size_t i = 0; i < count; i++)
    px[i] = (unsigned char)tmp[i];
  free(tmp);
  out->rgb = px;
  out->width = w;
  out->height = h;
  return TG_OK;
}

tg_err_t tg_rgba_resize_lanczos(const struct tg_rgba_image *src, int w, int h,
                                struct tg_rgba_image *out, char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  tg_err_t rc = check_sizes(src ? src->rgba : NULL, src ? src->width : 0,
                            src ? src->height : 0, w, h, errstr, n);
  if (rc != TG_OK)
    return rc;
  size_t in_px = (size_t)src->width * (size_t)src->height;
  size_t out_px = (size_t)w * (size_t)h;
  uint16_t *pre = malloc(sizeof(*pre) * in_px * 4);
  int32_t *tmp = malloc(sizeof(*tmp) * out_px * 4);
  unsigned char *px = malloc(out_px * 4);
  if (!pre || !tmp || !px) {
    snprintf(errstr, n, "out of memory");
    rc = TG_ERR_NOMEM;
    goto done;
  }
  /* premultiply: colour * alpha and alpha * 255, both 0..65025 */
  for (size_t i = 0; i < in_px; i++) {
    const unsigned char *p = src->rgba + 4 * i;
    unsigned a = p[3];
    pre[4 * i] = (uint16_t)(p[0] * a);
    pre[4 * i + 1] = (uint16_t)(p[1] * a);
    pre[4 * i + 2] = (uint16_t)(p[2] * a);
    pre[4 * i + 3] = (uint16_t)(a * 255u);
  }
  struct plane s = {.p16 = pre, .w = src->width, .h = src->height};
  /* no upper clamp here: where the kernel overshoots an opaque edge, the
   * colour is the ratio of the unclamped sums, and only alpha is clamped */
  rc = resample(&s, w, h, INT32_MAX, tmp, errstr, n);
  if (rc != TG_OK)
    goto done;
  for (size_t i = 0; i < out_px; i++) {
    const int32_t *t = tmp + 4 * i;
    int64_t a = t[3];
    unsigned char *d = px + 4 * i;
    d[3] = (unsigned char)(a >= 65025 ? 255 : (a + 127) / 255);
    for (int c = 0; c < 3; c++) {
      int64_t v = t[c] < a ? t[c] : a; /* colour cannot exceed its alpha */
      d[c] = a > 0 ? (unsigned char)((v * 255 + a / 2) / a) : 0;
    }
    if (d[3] == 0)
      d[0] = d[1] = d[2] = 0;
  }
  out->rgba = px;
  out->width = w;
  out->height = h;
  px = NULL;
done:
  free(pre);
  free(tmp);
  free(px);
  return rc;
}
