/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pixel_math.h - the post-processor's per-pixel math, in one header that
 * both the C compiler (the CPU path) and nvcc (the CUDA twin) compile, so
 * CPU tests exercise the GPU's arithmetic: sRGB <-> linear light, linear
 * RGB <-> CIELAB (D65), the Lab statistics transfer of colour
 * harmonisation (with a strength and a bound on the lightness shift),
 * straight-alpha "over" blending, the Lanczos-3 kernel, Gaussian taps, and
 * CIEDE2000 colour difference. Every function is static inline and TG_HD;
 * only math.h functions that exist on the device are used. Colour math is
 * float; CIEDE2000 is double (it is a measure for tests and reports, and
 * Sharma's published pairs sit on hue discontinuities that float blurs).
 */
#ifndef TG_POSTPROC_PIXEL_MATH_H
#define TG_POSTPROC_PIXEL_MATH_H

#include <math.h>

#ifdef __CUDACC__
#define TG_HD __host__ __device__
#else
#define TG_HD
#endif

#define TG_PI_F 3.14159265358979323846f
#define TG_PI_D 3.14159265358979323846

/* D65 reference white (CIE 1931 2 degree), Y = 1 */
#define TG_D65_XN 0.95047f
#define TG_D65_YN 1.00000f
#define TG_D65_ZN 1.08883f

/* how far the Lab transfer may stretch or squeeze the spread of a*, b* */
#define TG_LAB_SD_RATIO_MIN 0.75f
#define TG_LAB_SD_RATIO_MAX 1.33f
/* most the mean a*b* of the car may move (length of the shift, CIELAB
 * units): the car takes on the scene's colour cast, not its colour */
#define TG_LAB_AB_SHIFT_MAX 10.0f

/* ---- scalar helpers ----------------------------------------------------- */

/** tg_clampf() - @v limited to [@lo, @hi] */
static inline TG_HD float tg_clampf(float v, float lo, float hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * tg_u8_from_float() - round a 0..255 value half up to a byte, clamped
 * @v: the value
 *
 * Return: 0..255.
 */
static inline TG_HD unsigned char tg_u8_from_float(float v) {
  if (!(v > 0.0f)) /* also NaN */
    return 0;
  if (v >= 255.0f)
    return 255;
  return (unsigned char)(int)floorf(v + 0.5f);
}

/* ---- sRGB transfer function (IEC 61966-2-1) ----------------------------- */

/**
 * tg_srgb_to_linear() - decode an sRGB-encoded value to linear light
 * @v: 0..1
 *
 * Return: linear light, 0..1.
 */
static inline TG_HD float tg_srgb_to_linear(float v) {
  return v <= 0.04045f ? v / 12.92f : powf((v + 0.055f) / 1.055f, 2.4f);
}

/**
 * tg_linear_to_srgb() - encode linear light as sRGB
 * @l: linear light (clamped to 0..1 first; NaN gives 0)
 *
 * Return: the sRGB-encoded value, 0..1.
 */
static inline TG_HD float tg_linear_to_srgb(float l) {
  if (!(l > 0.0f)) /* also NaN */
    return 0.0f;
  if (l >= 1.0f)
    return 1.0f;
  return l <= 0.0031308f ? 12.92f * l : 1.055f * powf(l, 1.0f / 2.4f) - 0.055f;
}

/* ---- CIELAB (D65) --------------------------------------------------------- */

/* CIELAB's companding function f(t) and its inverse */
static inline TG_HD float tg_lab_f(float t) {
  const float d = 6.0f / 29.0f;
  return t > d * d * d ? cbrtf(t) : t / (3.0f * d * d) + 4.0f / 29.0f;
}

static inline TG_HD float tg_lab_finv(float f) {
  const float d = 6.0f / 29.0f;
  return f > d ? f * f * f : 3.0f * d * d * (f - 4.0f / 29.0f);
}

/**
 * tg_linear_to_lab() - linear sRGB primaries (D65) to CIELAB
 * @r:   linear red, 0..1
 * @g:   linear green
 * @b:   linear blue
 * @lab: L* (0..100), a*, b*
 */
static inline TG_HD void tg_linear_to_lab(float r, float g, float b, float lab[3]) {
  float x = 0.4124564f * r + 0.3575761f * g + 0.1804375f * b;
  float y = 0.2126729f * r + 0.7151522f * g + 0.0721750f * b;
  float z = 0.0193339f * r + 0.1191920f * g + 0.9503041f * b;
  float fx = tg_lab_f(x / TG_D65_XN), fy = tg_lab_f(y / TG_D65_YN), fz = tg_lab_f(z / TG_D65_ZN);
  lab[0] = 116.0f * fy - 16.0f;
  lab[1] = 500.0f * (fx - fy);
  lab[2] = 200.0f * (fy - fz);
}

/**
 * tg_linear_to_lstar() - only the L* of tg_linear_to_lab(), the same number
 * @r: linear red, 0..1
 * @g: linear green
 * @b: linear blue
 *
 * Return: L*, 0..100.
 */
static inline TG_HD float tg_linear_to_lstar(float r, float g, float b) {
  float y = 0.2126729f * r + 0.7151522f * g + 0.0721750f * b;
  return 116.0f * tg_lab_f(y / TG_D65_YN) - 16.0f;
}

/**
 * tg_lab_to_linear() - CIELAB (D65) to linear sRGB primaries
 * @lab: L*, a*, b*
 * @rgb: linear red, green, blue; not clamped (out-of-gamut colours leave 0..1)
 */
static inline TG_HD void tg_lab_to_linear(const float lab[3], float rgb[3]) {
  float fy = (lab[0] + 16.0f) / 116.0f;
  float fx = fy + lab[1] / 500.0f;
  float fz = fy - lab[2] / 200.0f;
  float x = TG_D65_XN * tg_lab_finv(fx), y = TG_D65_YN * tg_lab_finv(fy);
  float z = TG_D65_ZN * tg_lab_finv(fz);
  rgb[0] = 3.2404542f * x - 1.5371385f * y - 0.4985314f * z;
  rgb[1] = -0.9692660f * x + 1.8760108f * y + 0.0415560f * z;
  rgb[2] = 0.0556434f * x - 0.2040259f * y + 1.0572252f * z;
}

/**
 * tg_srgb8_to_lab() - an 8-bit sRGB pixel to CIELAB
 * @px:  R, G, B bytes
 * @lab: L*, a*, b*
 */
static inline TG_HD void tg_srgb8_to_lab(const unsigned char px[3], float lab[3]) {
  tg_linear_to_lab(tg_srgb_to_linear(px[0] / 255.0f), tg_srgb_to_linear(px[1] / 255.0f),
                   tg_srgb_to_linear(px[2] / 255.0f), lab);
}

/**
 * tg_lab_to_srgb8() - CIELAB to an 8-bit sRGB pixel, clipped to the gamut
 * @lab: L*, a*, b*
 * @px:  R, G, B bytes (each channel clamped to 0..1 in linear light, then
 *       encoded and rounded half up)
 */
static inline TG_HD void tg_lab_to_srgb8(const float lab[3], unsigned char px[3]) {
  float rgb[3];
  tg_lab_to_linear(lab, rgb);
  for (int c = 0; c < 3; c++)
    px[c] = tg_u8_from_float(255.0f * tg_linear_to_srgb(rgb[c]));
}

/* ---- Lab statistics transfer (colour harmonisation) ----------------------- */

/* Mean and standard deviation of L*, a*, b* over a weighted pixel set. */
struct tg_lab_stats {
  float mean[3];
  float sd[3];
};

/* A transfer ready to apply: out_c = dst_mean_c + (in_c - src_mean_c) * scale_c. */
struct tg_lab_xfer {
  float src_mean[3];
  float dst_mean[3];
  float scale[3];
};

/* Slack kept below the lightness bound for 8-bit rounding and gamut clipping. */
#define TG_LAB_L_SLACK 0.25f

/**
 * tg_lab_xfer_plan() - plan moving one colour distribution toward another
 * @car:       statistics of the pixels that will move (the car)
 * @scene:     statistics they move toward (the scene behind the car)
 * @strength:  0..1: 0 leaves the pixels, 1 matches the means (and the
 *             spread of a*, b*) fully
 * @max_dl:    most the mean L* may move, >= 0
 * @x:         the plan
 *
 * L*: every pixel moves by the same shift, strength * (scene mean - car
 * mean) clamped to +-(@max_dl - TG_LAB_L_SLACK), so the car keeps its own
 * shading and highlights and no part of it (a black car's body, its
 * windows) moves by more than the bound: a black car stays black.
 * a*, b*: the mean moves by strength * (scene mean - car mean), a shift
 * whose length in the a*b* plane is limited to TG_LAB_AB_SHIFT_MAX (a red
 * car stays red), and the spread around it is scaled by
 * 1 + strength * (ratio - 1), where ratio = scene sd / car sd limited to
 * [TG_LAB_SD_RATIO_MIN, TG_LAB_SD_RATIO_MAX] (1 when the car is grey). The
 * transfer keeps the weighted mean: the car's mean moves by exactly the
 * planned shift, before gamut clipping and rounding.
 */
static inline TG_HD void tg_lab_xfer_plan(const struct tg_lab_stats *car,
                                          const struct tg_lab_stats *scene, float strength,
                                          float max_dl, struct tg_lab_xfer *x) {
  strength = tg_clampf(strength, 0.0f, 1.0f);
  float lim = max_dl > TG_LAB_L_SLACK ? max_dl - TG_LAB_L_SLACK : 0.0f;
  float shift[3];
  for (int c = 0; c < 3; c++)
    shift[c] = strength * (scene->mean[c] - car->mean[c]);
  shift[0] = tg_clampf(shift[0], -lim, lim);
  float ab = sqrtf(shift[1] * shift[1] + shift[2] * shift[2]);
  if (ab > TG_LAB_AB_SHIFT_MAX) {
    shift[1] *= TG_LAB_AB_SHIFT_MAX / ab;
    shift[2] *= TG_LAB_AB_SHIFT_MAX / ab;
  }
  for (int c = 0; c < 3; c++) {
    float ratio = car->sd[c] > 1e-3f ? scene->sd[c] / car->sd[c] : 1.0f;
    ratio = tg_clampf(ratio, TG_LAB_SD_RATIO_MIN, TG_LAB_SD_RATIO_MAX);
    x->src_mean[c] = car->mean[c];
    x->dst_mean[c] = car->mean[c] + shift[c];
    x->scale[c] = c == 0 ? 1.0f : 1.0f + strength * (ratio - 1.0f);
  }
}

/**
 * tg_lab_xfer_apply() - move one Lab colour by a planned transfer
 * @x:   the plan
 * @lab: L*, a*, b*, changed in place; L* is kept within 0..100
 */
static inline TG_HD void tg_lab_xfer_apply(const struct tg_lab_xfer *x, float lab[3]) {
  for (int c = 0; c < 3; c++)
    lab[c] = x->dst_mean[c] + (lab[c] - x->src_mean[c]) * x->scale[c];
  lab[0] = tg_clampf(lab[0], 0.0f, 100.0f);
}

/**
 * tg_lab_xfer_srgb8() - harmonise one 8-bit sRGB pixel
 * @x:  the plan
 * @in: R, G, B
 * @out: R, G, B after the transfer (may be @in)
 */
static inline TG_HD void tg_lab_xfer_srgb8(const struct tg_lab_xfer *x, const unsigned char in[3],
                                           unsigned char out[3]) {
  float lab[3];
  tg_srgb8_to_lab(in, lab);
  tg_lab_xfer_apply(x, lab);
  tg_lab_to_srgb8(lab, out);
}

/* ---- blending -------------------------------------------------------------- */

/**
 * tg_blend_over_u8() - straight-alpha "over" of one 8-bit channel, exact
 * @dst: the background value
 * @src: the foreground value
 * @a:   the foreground's alpha, 0..255
 *
 * Integer arithmetic rounded half up: alpha 255 gives @src and alpha 0
 * gives @dst bit-exactly.
 *
 * Return: (src * a + dst * (255 - a) + 127) / 255.
 */
static inline TG_HD unsigned char tg_blend_over_u8(unsigned dst, unsigned src, unsigned a) {
  return (unsigned char)((src * a + dst * (255u - a) + 127u) / 255u);
}

/**
 * tg_blend_over_f() - straight-alpha "over" of one channel with a fractional alpha
 * @dst: the background value, 0..255
 * @src: the foreground value, 0..255
 * @a:   the foreground's alpha, 0..1
 *
 * Return: the blended value, rounded half up to a byte.
 */
static inline TG_HD unsigned char tg_blend_over_f(float dst, float src, float a) {
  return tg_u8_from_float(dst + (src - dst) * tg_clampf(a, 0.0f, 1.0f));
}

/**
 * tg_darken_u8() - darken one 8-bit channel by a shadow
 * @v: the value
 * @k: the shadow's strength at this pixel, 0..1 (0: unchanged, 1: black)
 *
 * Return: v * (1 - k), rounded half up.
 */
static inline TG_HD unsigned char tg_darken_u8(unsigned v, float k) {
  return tg_u8_from_float((float)v * (1.0f - tg_clampf(k, 0.0f, 1.0f)));
}

/* ---- filter kernels -------------------------------------------------------- */

/**
 * tg_lanczos3() - the Lanczos-3 kernel
 * @x: distance in (possibly stretched) source pixels
 *
 * Return: sinc(x) * sinc(x / 3) for |x| < 3, else 0; 1 at 0.
 */
static inline TG_HD float tg_lanczos3(float x) {
  x = fabsf(x);
  if (x < 1e-6f)
    return 1.0f;
  if (x >= 3.0f)
    return 0.0f;
  float px = TG_PI_F * x;
  return 3.0f * sinf(px) * sinf(px / 3.0f) / (px * px);
}

/**
 * tg_gauss_sigma() - the standard deviation of a Gaussian blur of a radius
 * @radius: the radius in pixels, >= 1
 *
 * Return: radius / 2: the taps reach two standard deviations.
 */
static inline TG_HD float tg_gauss_sigma(int radius) {
  return (float)radius / 2.0f;
}

/**
 * tg_gauss_taps() - normalised taps of a Gaussian blur
 * @radius: the radius in pixels, >= 0 (0: the identity)
 * @taps:   2 * radius + 1 weights, centre at taps[radius], summing to 1
 */
static inline TG_HD void tg_gauss_taps(int radius, float *taps) {
  if (radius <= 0) {
    taps[0] = 1.0f;
    return;
  }
  float s = tg_gauss_sigma(radius), sum = 0.0f;
  for (int i = -radius; i <= radius; i++) {
    float w = expf(-(float)(i * i) / (2.0f * s * s));
    taps[i + radius] = w;
    sum += w;
  }
  for (int i = 0; i <= 2 * radius; i++)
    taps[i] /= sum;
}

/* ---- CIEDE2000 ------------------------------------------------------------- */

/**
 * tg_ciede2000() - the CIEDE2000 colour difference of two CIELAB colours
 * @l1: L* of the first
 * @a1: a* of the first
 * @b1: b* of the first
 * @l2: L* of the second
 * @a2: a* of the second
 * @b2: b* of the second
 *
 * The full formula of CIE 142-2001 with kL = kC = kH = 1, as written out by
 * Sharma, Wu and Dalal (2005), including their notes on the hue mean and
 * difference when a chroma is zero.
 *
 * Return: delta E 00.
 */
static inline TG_HD double tg_ciede2000(double l1, double a1, double b1, double l2, double a2,
                                        double b2) {
  const double deg = TG_PI_D / 180.0;
  double c1 = sqrt(a1 * a1 + b1 * b1), c2 = sqrt(a2 * a2 + b2 * b2);
  double cm = (c1 + c2) / 2.0;
  double cm7 = pow(cm, 7.0);
  double g = 0.5 * (1.0 - sqrt(cm7 / (cm7 + 6103515625.0))); /* 25^7 */
  double ap1 = (1.0 + g) * a1, ap2 = (1.0 + g) * a2;
  double cp1 = sqrt(ap1 * ap1 + b1 * b1), cp2 = sqrt(ap2 * ap2 + b2 * b2);
  double hp1 = (ap1 == 0.0 && b1 == 0.0) ? 0.0 : atan2(b1, ap1) / deg;
  double hp2 = (ap2 == 0.0 && b2 == 0.0) ? 0.0 : atan2(b2, ap2) / deg;
  if (hp1 < 0.0)
    hp1 += 360.0;
  if (hp2 < 0.0)
    hp2 += 360.0;

  double dl = l2 - l1, dc = cp2 - cp1, dh = 0.0;
  double cprod = cp1 * cp2;
  if (cprod != 0.0) {
    dh = hp2 - hp1;
    if (dh > 180.0)
      dh -= 360.0;
    else if (dh < -180.0)
      dh += 360.0;
  }
  double dH = 2.0 * sqrt(cprod) * sin(dh * deg / 2.0);

  double lm = (l1 + l2) / 2.0, cpm = (cp1 + cp2) / 2.0, hm;
  if (cprod == 0.0)
    hm = hp1 + hp2;
  else if (fabs(hp1 - hp2) <= 180.0)
    hm = (hp1 + hp2) / 2.0;
  else if (hp1 + hp2 < 360.0)
    hm = (hp1 + hp2 + 360.0) / 2.0;
  else
    hm = (hp1 + hp2 - 360.0) / 2.0;

  double t = 1.0 - 0.17 * cos((hm - 30.0) * deg) + 0.24 * cos(2.0 * hm * deg) +
             0.32 * cos((3.0 * hm + 6.0) * deg) - 0.20 * cos((4.0 * hm - 63.0) * deg);
  double dtheta = 30.0 * exp(-((hm - 275.0) / 25.0) * ((hm - 275.0) / 25.0));
  double cpm7 = pow(cpm, 7.0);
  double rc = 2.0 * sqrt(cpm7 / (cpm7 + 6103515625.0));
  double lm50 = (lm - 50.0) * (lm - 50.0);
  double sl = 1.0 + 0.015 * lm50 / sqrt(20.0 + lm50);
  double sc = 1.0 + 0.045 * cpm;
  double sh = 1.0 + 0.015 * cpm * t;
  double rt = -sin(2.0 * dtheta * deg) * rc;
  double tl = dl / sl, tc = dc / sc, th = dH / sh;
  return sqrt(tl * tl + tc * tc + th * th + rt * tc * th);
}

#endif
