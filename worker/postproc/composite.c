/* SPDX-License-Identifier: Apache-2.0 */
/*
 * composite.c - the owner's car and the brand logo into the scene (see
 * composite.h). The car: its opaque box is found, the cutout scaled by
 * Lanczos-3 (resize.c) and placed at the anchor; its colours are moved
 * toward the scene's Lab statistics behind it; its alpha is feathered
 * inward; a blurred ellipse darkens the ground under it; then it is blended
 * over. Every buffer is allocated before the scene is touched, so a failure
 * leaves the scene as it was. All per-pixel arithmetic is pixel_math.h's.
 */
#include "composite.h"

#include "pixel_math.h"
#include "resize.h"
#include "tg_limits.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* alpha at or above which a scaled cutout pixel counts as the car's body */
#define OPAQUE_ALPHA 128

/* the contact shadow's ellipse, in units of the car's opaque width */
#define SHADOW_RX 0.47f
#define SHADOW_RY 0.07f
#define SHADOW_LIFT 0.3f /* centre above the car's bottom, in units of its ry */
#define SHADOW_SAMPLES 4 /* per axis, for the ellipse's coverage */

static int imin(int a, int b) {
  return a < b ? a : b;
}

static int imax(int a, int b) {
  return a > b ? a : b;
}

static tg_err_t check_image(const void *px, int w, int h, const char *what, char *errstr,
                            size_t n) {
  if (!px || w < 1 || h < 1) {
    snprintf(errstr, n, "composite: %s is empty or missing", what);
    return TG_ERR_INVAL;
  }
  char why[128];
  if (tg_image_check_size((uint64_t)w, (uint64_t)h, why, sizeof(why)) != TG_OK) {
    snprintf(errstr, n, "composite: %s %s", what, why);
    return TG_ERR_TOO_LARGE;
  }
  return TG_OK;
}

#define CHECK_RANGE(field, lo, hi)                                                          \
  do {                                                                                      \
    if (p->field < (lo) || p->field > (hi)) {                                               \
      snprintf(errstr, n, "composite: " #field " %d is out of range [%d, %d]", p->field,   \
               (lo), (hi));                                                                 \
      return TG_ERR_INVAL;                                                                  \
    }                                                                                       \
  } while (0)

static tg_err_t check_params(const struct tg_composite_params *p, char *errstr, size_t n) {
  if (!p) {
    snprintf(errstr, n, "composite: no parameters");
    return TG_ERR_INVAL;
  }
  CHECK_RANGE(anchor_x_permille, 0, 1000);
  CHECK_RANGE(anchor_y_permille, 0, 1000);
  CHECK_RANGE(car_width_permille, 1, 1000);
  CHECK_RANGE(harmonise_permille, 0, 1000);
  CHECK_RANGE(max_lightness_shift, 0, 100);
  CHECK_RANGE(feather_px, 0, 64);
  CHECK_RANGE(shadow_permille, 0, 1000);
  CHECK_RANGE(shadow_blur_px, 0, 128);
  return TG_OK;
}

/* Bounding box [x0, x1) x [y0, y1) of the pixels with alpha >= min_alpha. */
static bool alpha_box(const struct tg_rgba_image *img, int min_alpha, int box[4]) {
  int x0 = img->width, y0 = img->height, x1 = 0, y1 = 0;
  for (int y = 0; y < img->height; y++) {
    const unsigned char *row = img->rgba + (size_t)y * (size_t)img->width * 4;
    for (int x = 0; x < img->width; x++) {
      if (row[4 * x + 3] >= min_alpha) {
        x0 = imin(x0, x);
        x1 = imax(x1, x + 1);
        y0 = imin(y0, y);
        y1 = imax(y1, y + 1);
      }
    }
  }
  box[0] = x0, box[1] = y0, box[2] = x1, box[3] = y1;
  return x1 > x0;
}

/*
 * Separable blur of a w x h plane with normalised taps of @radius; samples
 * outside the plane count as 0. @tmp holds w * h floats.
 */
static void blur_plane(float *buf, int w, int h, const float *taps, int radius, float *tmp) {
  if (radius <= 0)
    return;
  for (int y = 0; y < h; y++) {
    const float *row = buf + (size_t)y * (size_t)w;
    float *out = tmp + (size_t)y * (size_t)w;
    for (int x = 0; x < w; x++) {
      float s = 0.0f;
      int k0 = imax(-radius, -x), k1 = imin(radius, w - 1 - x);
      for (int k = k0; k <= k1; k++)
        s += taps[k + radius] * row[x + k];
      out[x] = s;
    }
  }
  for (int y = 0; y < h; y++) {
    float *out = buf + (size_t)y * (size_t)w;
    int k0 = imax(-radius, -y), k1 = imin(radius, h - 1 - y);
    for (int x = 0; x < w; x++) {
      float s = 0.0f;
      for (int k = k0; k <= k1; k++)
        s += taps[k + radius] * tmp[(size_t)(y + k) * (size_t)w + (size_t)x];
      out[x] = s;
    }
  }
}

/* Sums for alpha-weighted Lab statistics. */
struct lab_acc {
  double w, sum[3], sq[3];
};

static void lab_acc_add(struct lab_acc *a, const float lab[3], unsigned weight) {
  a->w += weight;
  for (int c = 0; c < 3; c++) {
    a->sum[c] += (double)weight * lab[c];
    a->sq[c] += (double)weight * lab[c] * lab[c];
  }
}

static void lab_acc_stats(const struct lab_acc *a, struct tg_lab_stats *s) {
  for (int c = 0; c < 3; c++) {
    double m = a->w > 0 ? a->sum[c] / a->w : 0.0;
    double v = a->w > 0 ? a->sq[c] / a->w - m * m : 0.0;
    s->mean[c] = (float)m;
    s->sd[c] = (float)(v > 0 ? sqrt(v) : 0.0);
  }
}

/* tg_srgb_to_linear() of every byte value: the same numbers, computed once */
static void linear_table(float lut[256]) {
  for (int i = 0; i < 256; i++)
    lut[i] = tg_srgb_to_linear((float)i / 255.0f);
}

/* Everything one car composite works on; freed by vehicle_free(). */
struct vehicle {
  struct tg_rgba_image sc; /* the scaled cutout */
  unsigned char *colour;   /* its colours after harmonisation, 3 per pixel */
  float *lab;              /* its colours in Lab, 3 per pixel (inside the scene only) */
  float *feather;          /* its feathered alpha, 0..255 */
  float *tmp;
  float *taps;
  float *shadow;           /* the shadow mask, 0..1 */
  float *shadow_tmp;
  float *shadow_taps;
};

static void vehicle_free(struct vehicle *v) {
  tg_rgba_free(&v->sc);
  free(v->colour);
  free(v->lab);
  free(v->feather);
  free(v->tmp);
  free(v->taps);
  free(v->shadow);
  free(v->shadow_tmp);
  free(v->shadow_taps);
}

/*
 * Harmonise the colours of the cutout's part @clip (x0, y0, x1, y1 in
 * cutout coordinates; its scene pixel is at +ox, +oy) into v->colour, and
 * report the mean L* before and after. When rounding and gamut clipping
 * carry the mean past the bound, the shift is reduced by the excess and the
 * transfer redone (at most twice).
 */
static void harmonise(struct vehicle *v, const struct tg_rgb_image *scene, int ox, int oy,
                      const int clip[4], const struct tg_composite_params *p,
                      struct tg_composite_report *rep) {
  const int sw = v->sc.width;
  float lut[256];
  linear_table(lut);
  struct lab_acc car = {0}, bg = {0};
  for (int y = clip[1]; y < clip[3]; y++) {
    for (int x = clip[0]; x < clip[2]; x++) {
      size_t i = (size_t)y * (size_t)sw + (size_t)x;
      const unsigned char *c = v->sc.rgba + 4 * i;
      if (!c[3])
        continue;
      const unsigned char *s =
          scene->rgb + 3 * ((size_t)(y + oy) * (size_t)scene->width + (size_t)(x + ox));
      float *lab = v->lab + 3 * i, slab[3];
      tg_linear_to_lab(lut[c[0]], lut[c[1]], lut[c[2]], lab);
      tg_linear_to_lab(lut[s[0]], lut[s[1]], lut[s[2]], slab);
      lab_acc_add(&car, lab, c[3]);
      lab_acc_add(&bg, slab, c[3]);
    }
  }
  struct tg_lab_stats cs, ss;
  lab_acc_stats(&car, &cs);
  lab_acc_stats(&bg, &ss);
  rep->scene_l_mean = ss.mean[0];
  rep->car_l_before = cs.mean[0];
  rep->car_l_after = cs.mean[0];

  float strength = (float)p->harmonise_permille / 1000.0f;
  float bound = (float)p->max_lightness_shift;
  if (strength <= 0.0f || car.w <= 0)
    return;
  float max_dl = bound;
  for (int pass = 0; pass < 3; pass++) {
    struct tg_lab_xfer x;
    tg_lab_xfer_plan(&cs, &ss, strength, max_dl, &x);
    double lw = 0, lsum = 0;
    for (int y = clip[1]; y < clip[3]; y++) {
      for (int xx = clip[0]; xx < clip[2]; xx++) {
        size_t i = (size_t)y * (size_t)sw + (size_t)xx;
        unsigned a = v->sc.rgba[4 * i + 3];
        if (!a)
          continue;
        float lab[3] = {v->lab[3 * i], v->lab[3 * i + 1], v->lab[3 * i + 2]};
        unsigned char *out = v->colour + 3 * i;
        tg_lab_xfer_apply(&x, lab);
        tg_lab_to_srgb8(lab, out);
        lw += a;
        lsum += (double)a * tg_linear_to_lstar(lut[out[0]], lut[out[1]], lut[out[2]]);
      }
    }
    float l_after = (float)(lsum / lw);
    rep->car_l_after = l_after;
    rep->harmonised = 1;
    float moved = fabsf(l_after - cs.mean[0]);
    if (moved <= bound)
      break;
    max_dl -= moved - bound + 0.01f;
    if (max_dl < 0.0f)
      max_dl = 0.0f;
  }
}

/* The shadow mask: a rectangle of the scene holding a blurred ellipse. */
struct shadow_geom {
  int x0, y0, w, h;      /* the mask's rectangle in scene coordinates (may leave it) */
  float ex, ey, rx, ry;  /* the ellipse, in scene coordinates */
  int radius;
};

static void shadow_geom(float cx, float bottom, float width, int radius,
                        struct shadow_geom *g) {
  g->rx = SHADOW_RX * width;
  g->ry = SHADOW_RY * width;
  if (g->rx < 1.0f)
    g->rx = 1.0f;
  if (g->ry < 1.0f)
    g->ry = 1.0f;
  g->ex = cx;
  g->ey = bottom - SHADOW_LIFT * g->ry;
  g->radius = radius;
  g->x0 = (int)floorf(g->ex - g->rx) - radius - 1;
  g->y0 = (int)floorf(g->ey - g->ry) - radius - 1;
  g->w = (int)ceilf(g->ex + g->rx) + radius + 2 - g->x0;
  g->h = (int)ceilf(g->ey + g->ry) + radius + 2 - g->y0;
}

/* Coverage of each mask pixel by the ellipse, then its blur. */
static void shadow_render(const struct shadow_geom *g, float *mask, float *tmp,
                          const float *taps) {
  const float step = 1.0f / SHADOW_SAMPLES;
  /* a pixel spans at most this much of the ellipse's normalised radius,
   * so pixels far from the rim are wholly inside or outside (with margin) */
  const float span = 1.01f * sqrtf(0.25f / (g->rx * g->rx) + 0.25f / (g->ry * g->ry)) + 1e-4f;
  for (int y = 0; y < g->h; y++) {
    for (int x = 0; x < g->w; x++) {
      float cx = ((float)(g->x0 + x) + 0.5f - g->ex) / g->rx;
      float cy = ((float)(g->y0 + y) + 0.5f - g->ey) / g->ry;
      float d = sqrtf(cx * cx + cy * cy);
      if (d + span <= 1.0f || d - span > 1.0f) {
        mask[(size_t)y * (size_t)g->w + (size_t)x] = d < 1.0f ? 1.0f : 0.0f;
        continue;
      }
      int inside = 0;
      for (int j = 0; j < SHADOW_SAMPLES; j++) {
        float dy = ((float)(g->y0 + y) + (j + 0.5f) * step - g->ey) / g->ry;
        for (int i = 0; i < SHADOW_SAMPLES; i++) {
          float dx = ((float)(g->x0 + x) + (i + 0.5f) * step - g->ex) / g->rx;
          inside += dx * dx + dy * dy <= 1.0f;
        }
      }
      mask[(size_t)y * (size_t)g->w + (size_t)x] =
          (float)inside / (float)(SHADOW_SAMPLES * SHADOW_SAMPLES);
    }
  }
  blur_plane(mask, g->w, g->h, taps, g->radius, tmp);
}

tg_err_t tg_composite_vehicle(struct tg_rgb_image *scene, const struct tg_rgba_image *car,
                              const struct tg_composite_params *p,
                              struct tg_composite_report *rep, char *errstr, size_t n) {
  struct tg_composite_report local;
  if (!rep)
    rep = &local;
  memset(rep, 0, sizeof(*rep));
  tg_err_t rc = check_image(scene ? scene->rgb : NULL, scene ? scene->width : 0,
                            scene ? scene->height : 0, "scene", errstr, n);
  if (rc == TG_OK)
    rc = check_image(car ? car->rgba : NULL, car ? car->width : 0, car ? car->height : 0,
                     "vehicle cutout", errstr, n);
  if (rc == TG_OK)
    rc = check_params(p, errstr, n);
  if (rc != TG_OK)
    return rc;

  int box[4];
  if (!alpha_box(car, 1, box)) {
    snprintf(errstr, n, "composite: the vehicle cutout is fully transparent");
    return TG_ERR_INVAL;
  }

  /* scale so the car's box gets car_width_permille of the scene's width */
  const int W = scene->width, H = scene->height;
  int target_w = imax(1, (int)(((int64_t)W * p->car_width_permille + 500) / 1000));
  double s = (double)target_w / (double)(box[2] - box[0]);
  /* a wide car on a large scene, with the cutout's own padding, may ask for more than the
   * image limits allow: the car is then drawn as large as they allow, not refused */
  double longest = car->width > car->height ? car->width : car->height;
  if (longest * s > TG_MAX_IMAGE_SIDE)
    s = (double)TG_MAX_IMAGE_SIDE / longest;
  double sw_d = floor(car->width * s + 0.5), sh_d = floor(car->height * s + 0.5);
  if (sw_d > TG_MAX_IMAGE_SIDE)
    sw_d = TG_MAX_IMAGE_SIDE;
  if (sh_d > TG_MAX_IMAGE_SIDE)
    sh_d = TG_MAX_IMAGE_SIDE;
  int sw = imax(1, (int)sw_d), sh = imax(1, (int)sh_d);

  struct vehicle v = {0};
  rc = tg_rgba_resize_lanczos(car, sw, sh, &v.sc, errstr, n);
  if (rc != TG_OK)
    return rc;
  int ob[4];
  if (!alpha_box(&v.sc, OPAQUE_ALPHA, ob) && !alpha_box(&v.sc, 1, ob)) {
    snprintf(errstr, n, "composite: the vehicle cutout vanishes at %dx%d", sw, sh);
    vehicle_free(&v);
    return TG_ERR_INVAL;
  }

  /* bottom centre of the opaque box at the anchor */
  int ax = (int)(((int64_t)W * p->anchor_x_permille + 500) / 1000);
  int ay = (int)(((int64_t)H * p->anchor_y_permille + 500) / 1000);
  int ox = ax - (ob[0] + ob[2]) / 2, oy = ay - ob[3];
  int clip[4] = {imax(0, -ox), imax(0, -oy), imin(sw, W - ox), imin(sh, H - oy)};
  rep->x = ox, rep->y = oy, rep->width = sw, rep->height = sh;
  if (clip[2] <= clip[0] || clip[3] <= clip[1]) {
    vehicle_free(&v); /* nothing of the car is in the scene */
    return TG_OK;
  }

  int fr = p->feather_px, sr = p->shadow_blur_px;
  struct shadow_geom g = {0};
  bool shadow = p->shadow_permille > 0;
  size_t npx = (size_t)sw * (size_t)sh;
  v.colour = malloc(npx * 3);
  v.lab = malloc(sizeof(float) * npx * 3);
  v.feather = malloc(sizeof(float) * npx);
  v.tmp = malloc(sizeof(float) * npx);
  v.taps = malloc(sizeof(float) * (size_t)(2 * fr + 1));
  bool ok = v.colour && v.lab && v.feather && v.tmp && v.taps;
  if (ok && shadow) {
    shadow_geom((float)ox + (float)(ob[0] + ob[2]) / 2.0f, (float)ay, (float)(ob[2] - ob[0]),
                sr, &g);
    size_t mpx = (size_t)g.w * (size_t)g.h;
    v.shadow = malloc(sizeof(float) * mpx);
    v.shadow_tmp = malloc(sizeof(float) * mpx);
    v.shadow_taps = malloc(sizeof(float) * (size_t)(2 * sr + 1));
    ok = v.shadow && v.shadow_tmp && v.shadow_taps;
  }
  if (!ok) {
    vehicle_free(&v);
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }

  /* colours: harmonised, or the cutout's own */
  for (size_t i = 0; i < npx; i++)
    memcpy(v.colour + 3 * i, v.sc.rgba + 4 * i, 3);
  harmonise(&v, scene, ox, oy, clip, p, rep);

  /* feathered alpha: min(alpha, blur(alpha)), so the edge softens inward */
  for (size_t i = 0; i < npx; i++)
    v.feather[i] = v.sc.rgba[4 * i + 3];
  if (fr > 0) {
    tg_gauss_taps(fr, v.taps);
    blur_plane(v.feather, sw, sh, v.taps, fr, v.tmp);
    for (size_t i = 0; i < npx; i++) {
      float a = v.sc.rgba[4 * i + 3];
      if (v.feather[i] > a)
        v.feather[i] = a;
    }
  }

  /* the contact shadow darkens the ground, then the car goes over it */
  if (shadow) {
    tg_gauss_taps(sr, v.shadow_taps);
    shadow_render(&g, v.shadow, v.shadow_tmp, v.shadow_taps);
    float opacity = (float)p->shadow_permille / 1000.0f;
    for (int y = imax(0, g.y0); y < imin(H, g.y0 + g.h); y++) {
      for (int x = imax(0, g.x0); x < imin(W, g.x0 + g.w); x++) {
        float k = opacity * v.shadow[(size_t)(y - g.y0) * (size_t)g.w + (size_t)(x - g.x0)];
        unsigned char *d = scene->rgb + 3 * ((size_t)y * (size_t)W + (size_t)x);
        for (int c = 0; c < 3; c++)
          d[c] = tg_darken_u8(d[c], k);
      }
    }
    rep->shadow = 1;
  }
  for (int y = clip[1]; y < clip[3]; y++) {
    for (int x = clip[0]; x < clip[2]; x++) {
      size_t i = (size_t)y * (size_t)sw + (size_t)x;
      float a = v.feather[i] / 255.0f;
      if (a <= 0.0f)
        continue;
      unsigned char *d = scene->rgb + 3 * ((size_t)(y + oy) * (size_t)W + (size_t)(x + ox));
      const unsigned char *c = v.colour + 3 * i;
      for (int k = 0; k < 3; k++)
        d[k] = tg_blend_over_f(d[k], c[k], a);
    }
  }

  int vb[4] = {imax(0, ox + ob[0]), imax(0, oy + ob[1]), imin(W, ox + ob[2]),
               imin(H, oy + ob[3])};
  if (vb[2] > vb[0] && vb[3] > vb[1]) {
    rep->box_x0 = vb[0], rep->box_y0 = vb[1], rep->box_x1 = vb[2], rep->box_y1 = vb[3];
  }
  vehicle_free(&v);
  return TG_OK;
}

tg_err_t tg_composite_logo(struct tg_rgb_image *scene, const struct tg_rgba_image *logo, int x,
                           int y, char *errstr, size_t n) {
  tg_err_t rc = check_image(scene ? scene->rgb : NULL, scene ? scene->width : 0,
                            scene ? scene->height : 0, "scene", errstr, n);
  if (rc == TG_OK)
    rc = check_image(logo ? logo->rgba : NULL, logo ? logo->width : 0,
                     logo ? logo->height : 0, "logo", errstr, n);
  if (rc != TG_OK)
    return rc;
  /* in 64 bits: x and y may be anything an int holds */
  int64_t x0 = x < 0 ? -(int64_t)x : 0, y0 = y < 0 ? -(int64_t)y : 0;
  int64_t x1 = logo->width, y1 = logo->height;
  if ((int64_t)scene->width - x < x1)
    x1 = (int64_t)scene->width - x;
  if ((int64_t)scene->height - y < y1)
    y1 = (int64_t)scene->height - y;
  for (int64_t ly = y0; ly < y1; ly++) {
    const unsigned char *src = logo->rgba + (size_t)ly * (size_t)logo->width * 4;
    unsigned char *dst = scene->rgb + ((size_t)(ly + y) * (size_t)scene->width) * 3;
    for (int64_t lx = x0; lx < x1; lx++) {
      const unsigned char *s = src + 4 * lx;
      unsigned char *d = dst + 3 * (lx + x);
      if (s[3] == 255) {
        d[0] = s[0], d[1] = s[1], d[2] = s[2];
      } else if (s[3] != 0) {
        for (int c = 0; c < 3; c++)
          d[c] = tg_blend_over_u8(d[c], s[c], s[3]);
      }
    }
  }
  return TG_OK;
}
