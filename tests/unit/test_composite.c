/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_composite.c - the post-processor's pixel math (pixel_math.h), RGBA
 * PNG decoding (raster.c), Lanczos-3 resizing (resize.c) and compositing
 * (composite.c). CIEDE2000 reproduces Sharma, Wu and Dalal's 34 published
 * pairs; sRGB/Lab conversions round-trip every byte; Lanczos keeps a
 * constant image constant and a ramp monotonic; logo pixels land
 * bit-exactly; golden hashes pin the output of fixed synthetic inputs; and
 * seams are measured: on sunset, snow and night scenes, the mean CIEDE2000
 * between a red or black car's edge band and the background band next to
 * it is lower with harmonisation than without, while the black car's mean
 * L* moves no more than max_lightness_shift. Bad inputs are refused.
 *
 * argv[1]: the source root (for tests/data/postproc/). Golden hashes are
 * regenerated only on purpose: a mismatch prints the new value, and
 * TG_COMPOSITE_DUMP=dir writes the composites as PPM files to look at.
 * Resize hashes depend on integer arithmetic and 14-bit taps only; the
 * composite hashes also on the float results of libm's powf, cbrtf and
 * expf (pinned with glibc on x86-64, -O0 to -O3 and under ASan/UBSan).
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "postproc/composite.h"
#include "postproc/image.h"
#include "postproc/pixel_math.h"
#include "postproc/raster.h"
#include "postproc/resize.h"
#include "tg_limits.h"

#include <math.h>
#include <openssl/evp.h>
#include <png.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *src_root = ".";

/* ---- helpers ----------------------------------------------------------- */

static void sha256_hex(const unsigned char *p, size_t n, char hex[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  assert(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) == 1 && len == 32);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

#define CHECK_SHA(pixels, len, want)                                                 \
  do {                                                                               \
    char got_[65];                                                                   \
    sha256_hex((pixels), (len), got_);                                               \
    CHECK_MSG(strcmp(got_, (want)) == 0, "sha256 %s, pinned %s", got_, (want));      \
  } while (0)

static uint32_t lcg_state;
static unsigned lcg(void) {
  lcg_state = lcg_state * 1664525u + 1013904223u;
  return lcg_state >> 16;
}

static struct tg_rgb_image rgb_new(int w, int h) {
  struct tg_rgb_image im = {w, h, calloc((size_t)w * (size_t)h, 3)};
  assert(im.rgb);
  return im;
}

static struct tg_rgba_image rgba_new(int w, int h) {
  struct tg_rgba_image im = {w, h, calloc((size_t)w * (size_t)h, 4)};
  assert(im.rgba);
  return im;
}

static struct tg_rgb_image rgb_copy(const struct tg_rgb_image *s) {
  struct tg_rgb_image im = rgb_new(s->width, s->height);
  memcpy(im.rgb, s->rgb, (size_t)s->width * (size_t)s->height * 3);
  return im;
}

/* ---- synthetic scenes and cars ------------------------------------------- */

enum palette { SUNSET, SNOW, NIGHT, N_PALETTES };
static const char *palette_name[] = {"sunset", "snow", "night"};

/* sky top, sky horizon, ground near horizon, ground bottom */
static const int palette_rgb[N_PALETTES][4][3] = {
  [SUNSET] = {{255, 170, 70}, {245, 95, 85}, {150, 75, 60}, {90, 45, 50}},
  [SNOW] = {{185, 210, 240}, {232, 238, 248}, {242, 245, 250}, {205, 218, 238}},
  [NIGHT] = {{8, 12, 40}, {30, 40, 90}, {22, 26, 55}, {10, 12, 28}},
};

static float lerpf(float a, float b, float t) {
  return a + (b - a) * t;
}

/* A sky over ground, horizon at 60 %, with a little deterministic grain. */
static struct tg_rgb_image make_scene(enum palette pal, int w, int h) {
  struct tg_rgb_image im = rgb_new(w, h);
  const int(*c)[3] = palette_rgb[pal];
  int horizon = h * 6 / 10;
  lcg_state = 1234u + (uint32_t)pal;
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      unsigned char *p = im.rgb + 3 * ((size_t)y * (size_t)w + (size_t)x);
      int grain = (int)(lcg() % 7) - 3;
      for (int k = 0; k < 3; k++) {
        float v = y < horizon ? lerpf((float)c[0][k], (float)c[1][k], (float)y / horizon)
                              : lerpf((float)c[2][k], (float)c[3][k],
                                      (float)(y - horizon) / (h - horizon));
        int iv = (int)(v + 0.5f) + grain;
        p[k] = (unsigned char)(iv < 0 ? 0 : iv > 255 ? 255 : iv);
      }
    }
  }
  return im;
}

/*
 * A car cutout: a lower body with vertical shading and a highlight line, a
 * cabin with windows (glass with a reflection), two wheels (tyre and rim),
 * antialiased by 4x4 coverage, on transparent padding.
 */
static struct tg_rgba_image make_car(const int body[3], int w, int h) {
  struct tg_rgba_image im = rgba_new(w, h);
  float bx0 = 0.06f * w, bx1 = 0.94f * w, by0 = 0.45f * h, by1 = 0.82f * h;
  float cy0 = 0.14f * h, wy = 0.82f * h, wr = 0.14f * h + 0.02f * w;
  float wx[2] = {0.25f * w, 0.75f * w};
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++) {
      int n_body = 0, n_glass = 0, n_frame = 0, n_tyre = 0, n_rim = 0;
      for (int j = 0; j < 4; j++) {
        for (int i = 0; i < 4; i++) {
          float px = x + (i + 0.5f) / 4, py = y + (j + 0.5f) / 4;
          float d2 = 1e9f;
          for (int k = 0; k < 2; k++) {
            float dd = (px - wx[k]) * (px - wx[k]) + (py - wy) * (py - wy);
            d2 = dd < d2 ? dd : d2;
          }
          if (d2 <= wr * wr * 0.3f) {
            n_rim++;
          } else if (d2 <= wr * wr) {
            n_tyre++;
          } else if (px >= bx0 && px <= bx1 && py >= by0 && py <= by1) {
            n_body++;
          } else if (py >= cy0 && py < by0) {
            float t = (py - cy0) / (by0 - cy0); /* 0 at the roof */
            float l = lerpf(0.30f * w, 0.18f * w, t), r = lerpf(0.66f * w, 0.80f * w, t);
            if (px >= l && px <= r) {
              bool glass = py > cy0 + 0.05f * h && px > l + 0.02f * w && px < r - 0.02f * w &&
                           fabsf(px - 0.5f * w) > 0.01f * w;
              if (glass)
                n_glass++;
              else
                n_frame++;
            }
          }
        }
      }
      int cov = n_body + n_glass + n_frame + n_tyre + n_rim;
      if (!cov)
        continue;
      float col[3];
      int most = n_body;
      float shade = 1.2f - 0.55f * (((float)y - by0) / (by1 - by0));
      for (int k = 0; k < 3; k++)
        col[k] = body[k] * (y < by0 ? 1.1f : shade) + (y < by0 ? 0 : 6);
      if (y >= by0 + 0.06f * h && y <= by0 + 0.09f * h) /* highlight line */
        for (int k = 0; k < 3; k++)
          col[k] = lerpf(col[k], 255.0f, 0.6f);
      if (n_frame > most)
        most = n_frame; /* the frame is body-coloured */
      if (n_glass > most) {
        most = n_glass;
        float t = (float)(x + y) / (w + h);
        col[0] = 40 + 60 * t, col[1] = 52 + 60 * t, col[2] = 70 + 70 * t;
      }
      if (n_tyre > most) {
        most = n_tyre;
        col[0] = 22, col[1] = 22, col[2] = 24;
      }
      if (n_rim > most) {
        col[0] = 150, col[1] = 152, col[2] = 160;
      }
      unsigned char *p = im.rgba + 4 * ((size_t)y * (size_t)w + (size_t)x);
      for (int k = 0; k < 3; k++)
        p[k] = (unsigned char)(col[k] < 0 ? 0 : col[k] > 255 ? 255 : col[k] + 0.5f);
      p[3] = (unsigned char)((cov * 255 + 8) / 16);
    }
  }
  return im;
}

static const int red_body[3] = {190, 18, 26};
static const int black_body[3] = {16, 16, 18};

static struct tg_composite_params default_params(void) {
  /* the defaults of worker/config.c */
  struct tg_composite_params p = {
    .anchor_x_permille = 500, .anchor_y_permille = 860, .car_width_permille = 560,
    .harmonise_permille = 600, .max_lightness_shift = 12, .feather_px = 3,
    .shadow_permille = 450, .shadow_blur_px = 18,
  };
  return p;
}

/* ---- pixel math ------------------------------------------------------------ */

/* Sharma, Wu, Dalal (2005), "The CIEDE2000 color-difference formula:
 * implementation notes, supplementary test data, and mathematical
 * observations", Table 1: L1 a1 b1 L2 a2 b2 dE00. */
static const double sharma[34][7] = {
  {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
  {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
  {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
  {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
  {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
  {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
  {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
  {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
  {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
  {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
  {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
  {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
  {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
  {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
  {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
  {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
  {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
  {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
  {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
  {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
  {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
  {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
  {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
  {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
  {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
  {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
  {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
  {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
  {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
  {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
  {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
  {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
  {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
  {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
};

static void test_ciede2000_sharma(void) {
  for (int i = 0; i < 34; i++) {
    const double *r = sharma[i];
    double d = tg_ciede2000(r[0], r[1], r[2], r[3], r[4], r[5]);
    double e = tg_ciede2000(r[3], r[4], r[5], r[0], r[1], r[2]);
    CHECK_MSG(fabs(d - r[6]) < 0.5e-4, "pair %d: %.6f, published %.4f", i + 1, d, r[6]);
    CHECK_MSG(fabs(e - r[6]) < 0.5e-4, "pair %d swapped: %.6f, published %.4f", i + 1, e, r[6]);
  }
  CHECK(tg_ciede2000(50, 10, -10, 50, 10, -10) == 0.0);
}

static void test_lab_conversions(void) {
  float lab[3];
  unsigned char white[3] = {255, 255, 255}, black[3] = {0, 0, 0}, red[3] = {255, 0, 0};
  tg_srgb8_to_lab(white, lab);
  CHECK_MSG(fabsf(lab[0] - 100.0f) < 0.01f && fabsf(lab[1]) < 0.01f && fabsf(lab[2]) < 0.01f,
            "white: %f %f %f", lab[0], lab[1], lab[2]);
  tg_srgb8_to_lab(black, lab);
  CHECK(fabsf(lab[0]) < 1e-4f && fabsf(lab[1]) < 1e-4f && fabsf(lab[2]) < 1e-4f);
  tg_srgb8_to_lab(red, lab); /* sRGB red in CIELAB D65: 53.2408 80.0925 67.2032 */
  CHECK_MSG(fabsf(lab[0] - 53.2408f) < 0.02f && fabsf(lab[1] - 80.0925f) < 0.05f &&
                fabsf(lab[2] - 67.2032f) < 0.05f,
            "red: %f %f %f", lab[0], lab[1], lab[2]);
  /* sRGB transfer: the published breakpoints and a mid value */
  CHECK(fabsf(tg_srgb_to_linear(0.5f) - 0.214041f) < 1e-5f);
  CHECK(fabsf(tg_linear_to_srgb(0.214041f) - 0.5f) < 1e-5f);
  CHECK(tg_linear_to_srgb(-1.0f) == 0.0f && tg_linear_to_srgb(2.0f) == 1.0f);
  /* every 8-bit value of a channel, and a grid of colours, round-trips */
  int bad = 0;
  for (int r = 0; r < 256; r += 5)
    for (int g = 0; g < 256; g += 3)
      for (int b = 0; b < 256; b += 7) {
        unsigned char px[3] = {(unsigned char)r, (unsigned char)g, (unsigned char)b}, back[3];
        tg_srgb8_to_lab(px, lab);
        tg_lab_to_srgb8(lab, back);
        bad += memcmp(px, back, 3) != 0;
      }
  for (int v = 0; v < 256; v++) {
    unsigned char px[3] = {(unsigned char)v, (unsigned char)(255 - v), (unsigned char)v}, back[3];
    tg_srgb8_to_lab(px, lab);
    tg_lab_to_srgb8(lab, back);
    bad += memcmp(px, back, 3) != 0;
  }
  CHECK_MSG(bad == 0, "%d colours changed in an sRGB -> Lab -> sRGB round trip", bad);
}

static void test_lab_transfer(void) {
  struct tg_lab_stats car = {{10, 0, 0}, {4, 1, 1}}, scene = {{90, 5, -20}, {2, 4, 8}};
  struct tg_lab_xfer x;
  tg_lab_xfer_plan(&car, &scene, 0.0f, 12.0f, &x);
  float lab[3] = {13, 1, -1};
  tg_lab_xfer_apply(&x, lab);
  CHECK(lab[0] == 13 && lab[1] == 1 && lab[2] == -1); /* strength 0: unchanged */
  tg_lab_xfer_plan(&car, &scene, 1.0f, 12.0f, &x);
  CHECK(x.dst_mean[0] == 10.0f + 12.0f - TG_LAB_L_SLACK); /* +80 clamped to the bound */
  /* a*b* shift (5, -20) is longer than the limit: shortened, same direction */
  float k = TG_LAB_AB_SHIFT_MAX / sqrtf(5.0f * 5.0f + 20.0f * 20.0f);
  CHECK(fabsf(x.dst_mean[1] - 5.0f * k) < 1e-5f && fabsf(x.dst_mean[2] + 20.0f * k) < 1e-5f);
  CHECK(x.scale[0] == 1.0f && x.scale[1] == TG_LAB_SD_RATIO_MAX &&
        x.scale[2] == TG_LAB_SD_RATIO_MAX); /* ratios 4 and 8, limited */
  lab[0] = 0, lab[1] = 0, lab[2] = 0;
  tg_lab_xfer_apply(&x, lab); /* every L* moves by the same clamped shift */
  CHECK(lab[0] == 12.0f - TG_LAB_L_SLACK && lab[1] == x.dst_mean[1] && lab[2] == x.dst_mean[2]);
  struct tg_lab_stats scene2 = {{30, 2, -3}, {4, 0.1f, 1}};
  tg_lab_xfer_plan(&car, &scene2, 0.5f, 100.0f, &x);
  CHECK(x.dst_mean[0] == 20.0f && x.dst_mean[1] == 1.0f && x.dst_mean[2] == -1.5f);
  CHECK(x.scale[0] == 1.0f && x.scale[1] == 1.0f + 0.5f * (TG_LAB_SD_RATIO_MIN - 1.0f) &&
        x.scale[2] == 1.0f);
  lab[0] = 14, lab[1] = 2, lab[2] = 0;
  tg_lab_xfer_apply(&x, lab);
  CHECK(lab[0] == 24.0f && lab[1] == 1.0f + 2.0f * x.scale[1] && lab[2] == -1.5f);
}

static void test_kernels_and_blend(void) {
  CHECK(tg_lanczos3(0.0f) == 1.0f);
  for (int i = 1; i <= 4; i++)
    CHECK_MSG(fabsf(tg_lanczos3((float)i)) < 1e-6f, "L3(%d) = %g", i, tg_lanczos3((float)i));
  CHECK(tg_lanczos3(0.7f) == tg_lanczos3(-0.7f) && tg_lanczos3(1.5f) < 0.0f);
  CHECK(tg_lanczos3(3.2f) == 0.0f);
  for (int r = 0; r <= 128; r += 7) {
    float taps[257], sum = 0;
    tg_gauss_taps(r, taps);
    for (int i = 0; i <= 2 * r; i++)
      sum += taps[i];
    CHECK_MSG(fabsf(sum - 1.0f) < 1e-4f, "radius %d: taps sum to %f", r, sum);
    CHECK(r == 0 || (taps[r] > taps[0] && taps[0] == taps[2 * r]));
  }
  int bad = 0;
  for (unsigned d = 0; d < 256; d += 3)
    for (unsigned s = 0; s < 256; s += 5) {
      bad += tg_blend_over_u8(d, s, 255) != s || tg_blend_over_u8(d, s, 0) != d;
      bad += tg_blend_over_f((float)d, (float)s, 1.0f) != s;
      bad += tg_blend_over_f((float)d, (float)s, 0.0f) != d;
    }
  CHECK(bad == 0);
  CHECK(tg_blend_over_u8(0, 255, 128) == 128 && tg_blend_over_u8(100, 200, 51) == 120);
  CHECK(tg_darken_u8(200, 0.0f) == 200 && tg_darken_u8(200, 1.0f) == 0 &&
        tg_darken_u8(200, 0.25f) == 150);
  CHECK(tg_u8_from_float(-3) == 0 && tg_u8_from_float(300) == 255 &&
        tg_u8_from_float(2.5f) == 3 && tg_u8_from_float(NAN) == 0);
}

/* ---- resize -------------------------------------------------------------- */

static void test_resize_constant_and_ramp(void) {
  char err[256];
  static const int sizes[][4] = {{97, 61, 40, 25}, {40, 25, 97, 61}, {768, 960, 384, 480},
                                 {33, 17, 33, 17}, {5, 3, 200, 1},    {1, 1, 7, 9}};
  for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
    const int *z = sizes[s];
    struct tg_rgb_image src = rgb_new(z[0], z[1]), out;
    for (size_t i = 0; i < (size_t)z[0] * (size_t)z[1]; i++)
      src.rgb[3 * i] = 7, src.rgb[3 * i + 1] = 128, src.rgb[3 * i + 2] = 255;
    CHECK(tg_image_resize_lanczos(&src, z[2], z[3], &out, err, sizeof(err)) == TG_OK);
    int bad = 0;
    for (size_t i = 0; i < (size_t)z[2] * (size_t)z[3]; i++)
      bad += out.rgb[3 * i] != 7 || out.rgb[3 * i + 1] != 128 || out.rgb[3 * i + 2] != 255;
    CHECK_MSG(bad == 0, "%dx%d -> %dx%d: %d pixels not constant", z[0], z[1], z[2], z[3], bad);
    tg_image_free(&out);

    /* a horizontal ramp in R, a vertical one in G: monotonic after resizing */
    for (int y = 0; y < z[1]; y++)
      for (int x = 0; x < z[0]; x++) {
        unsigned char *p = src.rgb + 3 * ((size_t)y * (size_t)z[0] + (size_t)x);
        p[0] = (unsigned char)(z[0] > 1 ? x * 255 / (z[0] - 1) : 0);
        p[1] = (unsigned char)(z[1] > 1 ? y * 255 / (z[1] - 1) : 0);
        p[2] = 90;
      }
    CHECK(tg_image_resize_lanczos(&src, z[2], z[3], &out, err, sizeof(err)) == TG_OK);
    bad = 0;
    for (int y = 0; y < z[3]; y++)
      for (int x = 0; x < z[2]; x++) {
        const unsigned char *p = out.rgb + 3 * ((size_t)y * (size_t)z[2] + (size_t)x);
        if (x > 0)
          bad += p[0] < p[-3];
        if (y > 0)
          bad += p[1] < p[-3 * z[2] + 1];
        bad += p[2] != 90;
      }
    CHECK_MSG(bad == 0, "%dx%d -> %dx%d: %d ramp steps go backwards", z[0], z[1], z[2], z[3],
              bad);
    CHECK(out.rgb[0] <= 2 && out.rgb[3 * ((size_t)z[2] - 1)] >= (z[0] > 1 ? 253 : 0));
    tg_image_free(&out);
    tg_image_free(&src);
  }
}

static void test_resize_golden(void) {
  char err[256];
  struct tg_rgb_image src = rgb_new(123, 77), out;
  lcg_state = 42;
  for (size_t i = 0; i < (size_t)123 * 77 * 3; i++)
    src.rgb[i] = (unsigned char)((i % 3 == 0 ? (i / 3) % 123 * 2 : lcg() & 255));
  CHECK(tg_image_resize_lanczos(&src, 50, 31, &out, err, sizeof(err)) == TG_OK);
  CHECK_SHA(out.rgb, (size_t)50 * 31 * 3,
            "88938346d4575c1ca800becd62316446e6c0ac330e18d3433401f66c51e2b0bc");
  tg_image_free(&out);
  CHECK(tg_image_resize_lanczos(&src, 301, 190, &out, err, sizeof(err)) == TG_OK);
  CHECK_SHA(out.rgb, (size_t)301 * 190 * 3,
            "0a2f89e3b3415a7845a0cc4a2bbe24a469beea7d503a73abc1d1940530754157");
  tg_image_free(&out);
  tg_image_free(&src);
}

static void test_rgba_resize(void) {
  char err[256];
  /* opaque red on the left, transparent green on the right: no green bleeds */
  struct tg_rgba_image src = rgba_new(40, 20), out;
  for (int y = 0; y < 20; y++)
    for (int x = 0; x < 40; x++) {
      unsigned char *p = src.rgba + 4 * ((size_t)y * 40 + (size_t)x);
      if (x < 20)
        p[0] = 200, p[1] = 10, p[2] = 20, p[3] = 255;
      else
        p[0] = 0, p[1] = 255, p[2] = 0, p[3] = 0;
    }
  CHECK(tg_rgba_resize_lanczos(&src, 17, 9, &out, err, sizeof(err)) == TG_OK);
  int bad = 0, partial = 0;
  for (int i = 0; i < 17 * 9; i++) {
    const unsigned char *p = out.rgba + 4 * i;
    if (p[3] == 0)
      bad += p[0] || p[1] || p[2];
    else
      bad += abs(p[0] - 200) > 1 || abs(p[1] - 10) > 1 || abs(p[2] - 20) > 1;
    partial += p[3] > 0 && p[3] < 255;
  }
  CHECK_MSG(bad == 0, "%d pixels took colour from transparent ones", bad);
  CHECK(partial > 0);
  CHECK(out.rgba[3] == 255 && out.rgba[4 * 16 + 3] == 0);
  tg_rgba_free(&out);
  tg_rgba_free(&src);
}

static void test_resize_refuses(void) {
  char err[256] = "";
  struct tg_rgb_image src = rgb_new(8, 8), out;
  CHECK(tg_image_resize_lanczos(NULL, 4, 4, &out, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(out.rgb == NULL && strstr(err, "empty or missing"));
  CHECK(tg_image_resize_lanczos(&src, 0, 4, &out, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(strstr(err, "0x4 has an empty side") != NULL);
  CHECK(tg_image_resize_lanczos(&src, 4, -1, &out, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(tg_image_resize_lanczos(&src, TG_MAX_IMAGE_SIDE + 1, 4, &out, err, sizeof(err)) ==
        TG_ERR_TOO_LARGE);
  CHECK_MSG(strstr(err, "target 4097x4 exceeds 4096 px per side") != NULL, "%s", err);
  CHECK(tg_image_resize_lanczos(&src, 4096, 4096 + 0, &out, err, sizeof(err)) == TG_OK);
  tg_image_free(&out);
  struct tg_rgb_image empty = {0, 8, src.rgb};
  CHECK(tg_image_resize_lanczos(&empty, 4, 4, &out, err, sizeof(err)) == TG_ERR_INVAL);
  struct tg_rgb_image huge = {40000, 40000, src.rgb}; /* never read: refused first */
  CHECK(tg_image_resize_lanczos(&huge, 4, 4, &out, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  CHECK_MSG(strstr(err, "source 40000x40000 exceeds") != NULL, "%s", err);
  struct tg_rgba_image rsrc = {8, 8, NULL}, rout;
  CHECK(tg_rgba_resize_lanczos(&rsrc, 4, 4, &rout, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(rout.rgba == NULL);
  tg_image_free(&src);
}

/* ---- raster: RGBA PNG decoding ------------------------------------------- */

struct membuf {
  unsigned char *data;
  size_t len;
};

static void png_write_mem(png_structp png, png_bytep p, size_t n) {
  struct membuf *m = png_get_io_ptr(png);
  m->data = realloc(m->data, m->len + n);
  assert(m->data);
  memcpy(m->data + m->len, p, n);
  m->len += n;
}

static void png_flush_mem(png_structp png) {
  (void)png;
}

/* An 8-bit PNG of @ctype whose bytes per row are @rows; palette/tRNS optional. */
static struct membuf make_png(int w, int h, int ctype, int depth, unsigned char **rows,
                              const png_color *pal, int npal, const unsigned char *trns,
                              int ntrns) {
  struct membuf m = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png_create_info_struct(png);
  assert(png && info && !setjmp(png_jmpbuf(png)));
  png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
  png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, ctype, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (pal)
    png_set_PLTE(png, info, pal, npal);
  if (trns)
    png_set_tRNS(png, info, trns, ntrns, NULL);
  png_write_info(png, info);
  png_write_image(png, rows);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  return m;
}

/* the CRC-32 of PNG chunks (ISO 3309), bitwise */
static uint32_t png_crc(const unsigned char *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xffffffffu;
}

static void test_rgba_decode(void) {
  char err[256];
  struct tg_rgba_image im;
  /* RGBA stays as it is */
  unsigned char rgba[3][4 * 5], *rows[3];
  for (int y = 0; y < 3; y++) {
    rows[y] = rgba[y];
    for (int i = 0; i < 20; i++)
      rgba[y][i] = (unsigned char)(y * 50 + i * 11);
  }
  struct membuf m = make_png(5, 3, PNG_COLOR_TYPE_RGB_ALPHA, 8, rows, NULL, 0, NULL, 0);
  CHECK(tg_rgba_decode_png(m.data, m.len, 0, &im, err, sizeof(err)) == TG_OK);
  CHECK(im.width == 5 && im.height == 3 && memcmp(im.rgba, rgba, sizeof(rgba)) == 0);
  tg_rgba_free(&im);

  /* truncated, too many bytes, not a PNG, empty */
  CHECK(tg_rgba_decode_png(m.data, m.len - 20, 0, &im, err, sizeof(err)) == TG_ERR_BAD_MSG);
  CHECK_MSG(strncmp(err, "PNG: ", 5) == 0, "%s", err);
  CHECK(im.rgba == NULL && im.width == 0);
  CHECK(tg_rgba_decode_png(m.data, m.len, 10, &im, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  CHECK(strstr(err, "exceeds the limit of 10 bytes") != NULL);
  CHECK(tg_rgba_decode_png((const unsigned char *)"\xff\xd8\xff\xe0", 4, 0, &im, err,
                           sizeof(err)) == TG_ERR_BAD_MSG);
  CHECK_STREQ(err, "not a PNG image");
  CHECK(tg_rgba_decode_png(NULL, 0, 0, &im, err, sizeof(err)) == TG_ERR_BAD_MSG);
  /* a 40000x40000 header is refused before any pixel buffer exists */
  unsigned char *hdr = malloc(m.len);
  memcpy(hdr, m.data, m.len);
  static const unsigned char big[8] = {0, 0, 0x9c, 0x40, 0, 0, 0x9c, 0x40};
  memcpy(hdr + 16, big, 8); /* IHDR width, height; its CRC is now wrong */
  uint32_t crc = png_crc(hdr + 12, 17);
  unsigned char crcb[4] = {(unsigned char)(crc >> 24), (unsigned char)(crc >> 16),
                           (unsigned char)(crc >> 8), (unsigned char)crc};
  memcpy(hdr + 29, crcb, 4);
  CHECK(tg_rgba_decode_png(hdr, m.len, 0, &im, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  CHECK_MSG(strstr(err, "40000x40000 exceeds 4096 px per side") != NULL, "%s", err);
  free(hdr);
  free(m.data);

  /* palette with tRNS: alpha from the table; RGB without alpha: 255 */
  png_color pal[2] = {{10, 20, 30}, {200, 100, 50}};
  unsigned char trns[2] = {0, 77}, prow[4] = {0, 1, 1, 0}, *prows[1] = {prow};
  m = make_png(4, 1, PNG_COLOR_TYPE_PALETTE, 8, prows, pal, 2, trns, 2);
  CHECK(tg_rgba_decode_png(m.data, m.len, 0, &im, err, sizeof(err)) == TG_OK);
  static const unsigned char want_pal[16] = {10, 20, 30, 0,   200, 100, 50, 77,
                                             200, 100, 50, 77, 10, 20, 30, 0};
  CHECK(im.rgba && memcmp(im.rgba, want_pal, 16) == 0);
  tg_rgba_free(&im);
  free(m.data);
  unsigned char grey[2] = {0, 255}, *grows[1] = {grey};
  m = make_png(2, 1, PNG_COLOR_TYPE_GRAY, 8, grows, NULL, 0, NULL, 0);
  CHECK(tg_rgba_decode_png(m.data, m.len, 0, &im, err, sizeof(err)) == TG_OK);
  static const unsigned char want_grey[8] = {0, 0, 0, 255, 255, 255, 255, 255};
  CHECK(im.rgba && memcmp(im.rgba, want_grey, 8) == 0);
  tg_rgba_free(&im);
  free(m.data);
}

/* the fixtures of tests/data/postproc/, written by make_fixtures.py */
static void test_rgba_load_fixtures(void) {
  static const struct {
    const char *name;
    int w, h;
    const char *sha;
  } fx[] = {
    {"cutout_small.png", 96, 48, "35eb3a2bc41b472ebee998b74c77379cc72e93a69d27fc97b6dcf14e70d9c25a"},
    {"logo_small.png", 24, 12, "74a8c4c7adf7aec2598bd3216f2be696d40ebfbaebd2bc3576fe3e8771013c3f"},
    {"rgb_small.png", 16, 8, "79cc46e33df8c6b95dd10625db8bb62f8e716a5f27d7a977a4bd61016db1b24c"},
  };
  char path[1024], err[512];
  struct tg_rgba_image im;
  for (size_t i = 0; i < sizeof(fx) / sizeof(fx[0]); i++) {
    snprintf(path, sizeof(path), "%s/tests/data/postproc/%s", src_root, fx[i].name);
    tg_err_t rc = tg_rgba_load_png(path, 1 << 20, &im, err, sizeof(err));
    CHECK_MSG(rc == TG_OK, "%s", err);
    if (rc != TG_OK)
      continue;
    CHECK(im.width == fx[i].w && im.height == fx[i].h);
    CHECK_SHA(im.rgba, (size_t)im.width * (size_t)im.height * 4, fx[i].sha);
    tg_rgba_free(&im);
  }
  snprintf(path, sizeof(path), "%s/tests/data/postproc/cutout_small.png", src_root);
  CHECK(tg_rgba_load_png(path, 100, &im, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  CHECK_MSG(strstr(err, "larger than the limit of 100 bytes") != NULL, "%s", err);
  snprintf(path, sizeof(path), "%s/tests/data/postproc/no-such.png", src_root);
  CHECK(tg_rgba_load_png(path, 0, &im, err, sizeof(err)) == TG_ERR_IO);
  CHECK(strstr(err, "no-such.png: No such file") != NULL && im.rgba == NULL);
  snprintf(path, sizeof(path), "%s/tests/data/postproc/make_fixtures.py", src_root);
  CHECK(tg_rgba_load_png(path, 0, &im, err, sizeof(err)) == TG_ERR_BAD_MSG);
  CHECK(strstr(err, "make_fixtures.py: not a PNG image") != NULL);
}

/* ---- logo ------------------------------------------------------------------ */

static void test_logo_exact(void) {
  char err[256];
  struct tg_rgb_image scene = make_scene(SUNSET, 64, 48);
  struct tg_rgba_image logo = rgba_new(20, 10);
  lcg_state = 7;
  for (int i = 0; i < 200; i++) {
    unsigned char *p = logo.rgba + 4 * i;
    p[0] = (unsigned char)lcg(), p[1] = (unsigned char)lcg(), p[2] = (unsigned char)lcg();
    int k = (int)(lcg() % 3);
    p[3] = k == 0 ? 255 : k == 1 ? 0 : (unsigned char)(1 + lcg() % 254);
  }
  static const int at[][2] = {{5, 7}, {-6, -3}, {50, 42}, {0, 0}, {44, 38}, {64, 0}, {-20, 5}};
  for (size_t t = 0; t < sizeof(at) / sizeof(at[0]); t++) {
    int lx = at[t][0], ly = at[t][1];
    struct tg_rgb_image s = rgb_copy(&scene);
    CHECK(tg_composite_logo(&s, &logo, lx, ly, err, sizeof(err)) == TG_OK);
    int bad = 0, exact = 0;
    for (int y = 0; y < 48; y++)
      for (int x = 0; x < 64; x++) {
        const unsigned char *o = scene.rgb + 3 * (y * 64 + x), *d = s.rgb + 3 * (y * 64 + x);
        int u = x - lx, v = y - ly;
        if (u < 0 || v < 0 || u >= 20 || v >= 10) {
          bad += memcmp(o, d, 3) != 0;
          continue;
        }
        const unsigned char *p = logo.rgba + 4 * (v * 20 + u);
        if (p[3] == 255) {
          bad += memcmp(p, d, 3) != 0;
          exact++;
        } else if (p[3] == 0) {
          bad += memcmp(o, d, 3) != 0;
        } else {
          for (int c = 0; c < 3; c++)
            bad += d[c] != (p[c] * p[3] + o[c] * (255 - p[3]) + 127) / 255;
        }
      }
    CHECK_MSG(bad == 0, "logo at %d,%d: %d wrong pixels", lx, ly, bad);
    CHECK(t >= 5 || exact > 0);
    tg_image_free(&s);
  }
  CHECK(tg_composite_logo(&scene, NULL, 0, 0, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(strstr(err, "logo is empty or missing") != NULL);
  CHECK(tg_composite_logo(NULL, &logo, 0, 0, err, sizeof(err)) == TG_ERR_INVAL);
  struct tg_rgba_image huge = {5000, 2, logo.rgba};
  CHECK(tg_composite_logo(&scene, &huge, 0, 0, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  tg_rgba_free(&logo);
  tg_image_free(&scene);
}

/* ---- vehicle ----------------------------------------------------------------- */

/* With TG_COMPOSITE_DUMP=dir set, the golden composites are also written
 * there as PPM files, to look at when a hash is regenerated. */
static void dump_ppm(const struct tg_rgb_image *im, const char *name) {
  const char *dir = getenv("TG_COMPOSITE_DUMP");
  if (!dir || !*dir)
    return;
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s.ppm", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f)
    return;
  fprintf(f, "P6\n%d %d\n255\n", im->width, im->height);
  fwrite(im->rgb, 3, (size_t)im->width * (size_t)im->height, f);
  fclose(f);
}

static void test_vehicle_golden(void) {
  char err[256], path[1024];
  struct tg_rgba_image car = make_car(red_body, 400, 200);
  struct tg_composite_params p = default_params();
  struct tg_composite_report rep;
  static const char *want[N_PALETTES] = {
    "96ca58f07e49524e798b2959af2db22a8e4ba855cd576fd7a3ae4857484b0628",
    "8c4cfaf91fe0a1f41af56fc8ae133195b86b2c62ccaa8554b8715791e8607e61",
    "c92a44aa68590e7fa92fa79d989f1e1db0f0fa550d9fa228427994b3784c6755",
  };
  for (int pal = 0; pal < N_PALETTES; pal++) {
    struct tg_rgb_image s = make_scene((enum palette)pal, 384, 480);
    CHECK(tg_composite_vehicle(&s, &car, &p, &rep, err, sizeof(err)) == TG_OK);
    CHECK_SHA(s.rgb, (size_t)384 * 480 * 3, want[pal]);
    dump_ppm(&s, palette_name[pal]);
    tg_image_free(&s);
  }
  tg_rgba_free(&car);

  /* the cutout fixture, decoded from its PNG, on a small scene */
  snprintf(path, sizeof(path), "%s/tests/data/postproc/cutout_small.png", src_root);
  CHECK(tg_rgba_load_png(path, 0, &car, err, sizeof(err)) == TG_OK);
  struct tg_rgb_image s = make_scene(SNOW, 160, 120);
  CHECK(tg_composite_vehicle(&s, &car, &p, &rep, err, sizeof(err)) == TG_OK);
  CHECK_SHA(s.rgb, (size_t)160 * 120 * 3,
            "670bc75f4ba46b5ce5df00cdc7b0b0cb453fea27b3e46d9f8ab998b1adcc6015");
  dump_ppm(&s, "fixture");
  tg_image_free(&s);
  tg_rgba_free(&car);
}

static void test_vehicle_placement(void) {
  char err[256];
  struct tg_rgba_image car = make_car(red_body, 400, 200);
  struct tg_composite_params p = default_params();
  struct tg_composite_report rep;
  struct tg_rgb_image s = make_scene(NIGHT, 384, 480);
  CHECK(tg_composite_vehicle(&s, &car, &p, &rep, err, sizeof(err)) == TG_OK);
  int ax = 192, ay = 413; /* 384 * 0.5, 480 * 0.86 rounded */
  CHECK_MSG(rep.box_y1 == ay, "box bottom %d, anchor %d", rep.box_y1, ay);
  CHECK_MSG(abs((rep.box_x0 + rep.box_x1) / 2 - ax) <= 1, "box %d..%d", rep.box_x0,
            rep.box_x1);
  int bw = rep.box_x1 - rep.box_x0, want_w = (384 * 560 + 500) / 1000;
  CHECK_MSG(abs(bw - want_w) <= 2, "car %d px wide, want %d", bw, want_w);
  CHECK(rep.harmonised == 1 && rep.shadow == 1);
  CHECK(rep.scene_l_mean < 30.0f);
  tg_image_free(&s);

  /* pushed off the left and bottom edges: clipped, still fine */
  p.anchor_x_permille = 0;
  p.anchor_y_permille = 1000;
  s = make_scene(SNOW, 384, 480);
  CHECK(tg_composite_vehicle(&s, &car, &p, &rep, err, sizeof(err)) == TG_OK);
  CHECK(rep.box_x0 == 0 && rep.box_y1 == 480 && rep.box_x1 < 130 && rep.x < 0);
  tg_image_free(&s);

  /* entirely above the scene: nothing drawn, scene unchanged */
  p.anchor_y_permille = 0;
  s = make_scene(SNOW, 384, 480);
  struct tg_rgb_image orig = rgb_copy(&s);
  CHECK(tg_composite_vehicle(&s, &car, &p, &rep, err, sizeof(err)) == TG_OK);
  CHECK(rep.box_x1 == 0 && memcmp(s.rgb, orig.rgb, (size_t)384 * 480 * 3) == 0);
  tg_image_free(&s);
  tg_image_free(&orig);
  tg_rgba_free(&car);
}

/* Scaled cutout alpha as composite.c sees it: the test's own resize of the car. */
static unsigned char *scaled_alpha(const struct tg_rgba_image *car,
                                   const struct tg_composite_report *rep) {
  char err[256];
  struct tg_rgba_image sc;
  assert(tg_rgba_resize_lanczos(car, rep->width, rep->height, &sc, err, sizeof(err)) == TG_OK);
  size_t n = (size_t)sc.width * (size_t)sc.height;
  unsigned char *a = malloc(n);
  assert(a);
  for (size_t i = 0; i < n; i++)
    a[i] = sc.rgba[4 * i + 3];
  tg_rgba_free(&sc);
  return a;
}

/* alpha of scene pixel (x, y) in the scaled cutout placed at rep->x, rep->y; 0 outside */
static int alpha_at(const unsigned char *a, const struct tg_composite_report *rep, int x, int y) {
  int u = x - rep->x, v = y - rep->y;
  if (u < 0 || v < 0 || u >= rep->width || v >= rep->height)
    return 0;
  return a[(size_t)v * (size_t)rep->width + (size_t)u];
}

static double lab_de(const unsigned char *p, const unsigned char *q) {
  float l1[3], l2[3];
  tg_srgb8_to_lab(p, l1);
  tg_srgb8_to_lab(q, l2);
  return tg_ciede2000(l1[0], l1[1], l1[2], l2[0], l2[1], l2[2]);
}

/*
 * The seam: every pixel of the car's edge band (opaque in the cutout, no
 * more than feather + 2 px inside its edge) is paired with the nearest
 * transparent pixel, the background just outside the edge; the mean
 * CIEDE2000 of those pairs in the composite.
 */
static double seam(const struct tg_rgb_image *s, const unsigned char *a,
                   const struct tg_composite_report *rep, int feather) {
  const int in_d = feather + 2, reach = in_d + 1;
  double sum = 0;
  long pairs = 0;
  for (int y = 0; y < s->height; y++) {
    for (int x = 0; x < s->width; x++) {
      if (alpha_at(a, rep, x, y) < 250)
        continue;
      /* nearest transparent pixel: within in_d makes this an edge-band pixel */
      int best = 1 << 30, bx = -1, by = -1;
      for (int dy = -reach; dy <= reach; dy++)
        for (int dx = -reach; dx <= reach; dx++) {
          int qx = x + dx, qy = y + dy;
          if (qx < 0 || qy < 0 || qx >= s->width || qy >= s->height)
            continue;
          if (alpha_at(a, rep, qx, qy) != 0)
            continue;
          int d2 = dx * dx + dy * dy;
          if (d2 < best)
            best = d2, bx = qx, by = qy;
        }
      if (bx < 0 || best > in_d * in_d)
        continue;
      sum += lab_de(s->rgb + 3 * ((size_t)y * (size_t)s->width + (size_t)x),
                    s->rgb + 3 * ((size_t)by * (size_t)s->width + (size_t)bx));
      pairs++;
    }
  }
  assert(pairs > 50);
  return sum / (double)pairs;
}

/* mean L* of the pixels that are pure car colour (opaque, away from the feathered edge) */
static double interior_l(const struct tg_rgb_image *s, const unsigned char *a,
                         const struct tg_composite_report *rep, int feather) {
  double sum = 0;
  long n = 0;
  int r = feather + 1;
  for (int y = 0; y < s->height; y++)
    for (int x = 0; x < s->width; x++) {
      bool inner = true;
      for (int dy = -r; dy <= r && inner; dy++)
        for (int dx = -r; dx <= r && inner; dx++)
          inner = alpha_at(a, rep, x + dx, y + dy) == 255;
      if (!inner)
        continue;
      float lab[3];
      tg_srgb8_to_lab(s->rgb + 3 * ((size_t)y * (size_t)s->width + (size_t)x), lab);
      sum += lab[0];
      n++;
    }
  assert(n > 100);
  return sum / (double)n;
}

static void test_vehicle_seams(void) {
  char err[256];
  const int *bodies[2] = {red_body, black_body};
  const char *body_name[2] = {"red", "black"};
  for (int b = 0; b < 2; b++) {
    struct tg_rgba_image car = make_car(bodies[b], 400, 200);
    for (int pal = 0; pal < N_PALETTES; pal++) {
      struct tg_composite_params p = default_params();
      struct tg_composite_report r0, r1;
      struct tg_rgb_image s0 = make_scene((enum palette)pal, 384, 480);
      struct tg_rgb_image s1 = rgb_copy(&s0);
      p.harmonise_permille = 0;
      CHECK(tg_composite_vehicle(&s0, &car, &p, &r0, err, sizeof(err)) == TG_OK);
      p.harmonise_permille = 600;
      CHECK(tg_composite_vehicle(&s1, &car, &p, &r1, err, sizeof(err)) == TG_OK);
      CHECK(r0.x == r1.x && r0.y == r1.y && r0.width == r1.width && r0.harmonised == 0 &&
            r1.harmonised == 1);
      unsigned char *a = scaled_alpha(&car, &r1);
      double d0 = seam(&s0, a, &r0, p.feather_px), d1 = seam(&s1, a, &r1, p.feather_px);
      fprintf(stderr, "  seam %-5s car on %-6s: dE00 %.2f without, %.2f with harmonisation\n",
              body_name[b], palette_name[pal], d0, d1);
      CHECK_MSG(d1 < d0, "%s car on %s: seam %.3f with harmonisation, %.3f without",
                body_name[b], palette_name[pal], d1, d0);

      /* the car's lightness moves by at most max_lightness_shift */
      double l0 = interior_l(&s0, a, &r0, p.feather_px), l1 = interior_l(&s1, a, &r1, p.feather_px);
      CHECK_MSG(fabs(l1 - l0) <= p.max_lightness_shift,
                "%s car on %s: mean L* %.2f -> %.2f", body_name[b], palette_name[pal], l0, l1);
      CHECK(fabsf(r1.car_l_after - r1.car_l_before) <= (float)p.max_lightness_shift);
      if (b == 1) {
        fprintf(stderr, "  black car on %-6s: mean L* %.2f -> %.2f (report %.2f -> %.2f)\n",
                palette_name[pal], l0, l1, r1.car_l_before, r1.car_l_after);
        CHECK(l1 < 35.0); /* still black */
      }
      free(a);
      tg_image_free(&s0);
      tg_image_free(&s1);
    }
    tg_rgba_free(&car);
  }

  /* full strength on snow: the lightness clamp is what holds the black car */
  struct tg_rgba_image car = make_car(black_body, 400, 200);
  struct tg_composite_params p = default_params();
  struct tg_composite_report r0, r1;
  struct tg_rgb_image s0 = make_scene(SNOW, 384, 480), s1 = rgb_copy(&s0);
  p.harmonise_permille = 0;
  CHECK(tg_composite_vehicle(&s0, &car, &p, &r0, err, sizeof(err)) == TG_OK);
  p.harmonise_permille = 1000;
  CHECK(tg_composite_vehicle(&s1, &car, &p, &r1, err, sizeof(err)) == TG_OK);
  unsigned char *a = scaled_alpha(&car, &r1);
  double l0 = interior_l(&s0, a, &r0, p.feather_px), l1 = interior_l(&s1, a, &r1, p.feather_px);
  CHECK_MSG(l1 > l0 + 6.0 && l1 - l0 <= p.max_lightness_shift, "L* %.2f -> %.2f", l0, l1);
  CHECK(r1.car_l_after - r1.car_l_before <= (float)p.max_lightness_shift + 1e-4f);
  CHECK(r1.car_l_after - r1.car_l_before > 10.0f);
  free(a);
  tg_image_free(&s0);
  tg_image_free(&s1);
  tg_rgba_free(&car);
}

static void test_vehicle_refuses(void) {
  char err[256];
  struct tg_rgba_image car = make_car(red_body, 100, 50);
  struct tg_composite_params p = default_params();
  struct tg_rgb_image s = make_scene(SNOW, 64, 64), orig = rgb_copy(&s);

  CHECK(tg_composite_vehicle(NULL, &car, &p, NULL, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(strstr(err, "scene is empty or missing") != NULL);
  CHECK(tg_composite_vehicle(&s, NULL, &p, NULL, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(strstr(err, "vehicle cutout is empty or missing") != NULL);
  CHECK(tg_composite_vehicle(&s, &car, NULL, NULL, err, sizeof(err)) == TG_ERR_INVAL);
  struct tg_rgb_image zero = {0, 0, s.rgb};
  CHECK(tg_composite_vehicle(&zero, &car, &p, NULL, err, sizeof(err)) == TG_ERR_INVAL);
  struct tg_rgb_image huge = {40000, 40000, s.rgb}; /* never read: refused first */
  CHECK(tg_composite_vehicle(&huge, &car, &p, NULL, err, sizeof(err)) == TG_ERR_TOO_LARGE);
  CHECK_MSG(strstr(err, "scene 40000x40000 exceeds 4096 px per side") != NULL, "%s", err);
  struct tg_rgba_image wide = {4096, 4097, car.rgba};
  CHECK(tg_composite_vehicle(&s, &wide, &p, NULL, err, sizeof(err)) == TG_ERR_TOO_LARGE);

  static const struct {
    size_t off;
    int bad;
    const char *name;
  } bad[] = {
    {offsetof(struct tg_composite_params, anchor_x_permille), 1001, "anchor_x_permille"},
    {offsetof(struct tg_composite_params, anchor_y_permille), -1, "anchor_y_permille"},
    {offsetof(struct tg_composite_params, car_width_permille), 0, "car_width_permille"},
    {offsetof(struct tg_composite_params, harmonise_permille), 1001, "harmonise_permille"},
    {offsetof(struct tg_composite_params, max_lightness_shift), 101, "max_lightness_shift"},
    {offsetof(struct tg_composite_params, feather_px), 65, "feather_px"},
    {offsetof(struct tg_composite_params, shadow_permille), -5, "shadow_permille"},
    {offsetof(struct tg_composite_params, shadow_blur_px), 129, "shadow_blur_px"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct tg_composite_params q = p;
    *(int *)((char *)&q + bad[i].off) = bad[i].bad;
    CHECK(tg_composite_vehicle(&s, &car, &q, NULL, err, sizeof(err)) == TG_ERR_INVAL);
    CHECK_MSG(strstr(err, bad[i].name) && strstr(err, "out of range"), "%s", err);
  }

  /* a fully transparent cutout; a very tall one whose scaled size breaks the limits */
  struct tg_rgba_image clear = rgba_new(30, 20);
  CHECK(tg_composite_vehicle(&s, &clear, &p, NULL, err, sizeof(err)) == TG_ERR_INVAL);
  CHECK(strstr(err, "fully transparent") != NULL);
  CHECK(memcmp(s.rgb, orig.rgb, (size_t)64 * 64 * 3) == 0); /* untouched by every refusal */
  /* a wide car on the widest scene, its cutout padded: scaling the whole cutout would pass
   * the image limits, so it is drawn as large as they allow rather than refused */
  struct tg_rgba_image padded = rgba_new(1024, 200);
  for (int y = 50; y < 150; y++)
    for (int x = 262; x < 762; x++)
      memset(padded.rgba + 4 * ((size_t)y * 1024 + x), 200, 4);
  struct tg_rgb_image big = rgb_new(4096, 300);
  struct tg_composite_params wp = p;
  wp.car_width_permille = 1000;
  struct tg_composite_report wrep;
  CHECK_MSG(tg_composite_vehicle(&big, &padded, &wp, &wrep, err, sizeof(err)) == TG_OK, "%s",
            err);
  CHECK_MSG(wrep.width <= TG_MAX_IMAGE_SIDE && wrep.width >= 4000, "scaled to %d", wrep.width);
  tg_image_free(&big);
  tg_rgba_free(&padded);
  tg_rgba_free(&clear);
  tg_rgba_free(&car);
  tg_image_free(&s);
  tg_image_free(&orig);
}

int main(int argc, char **argv) {
  if (argc > 1)
    src_root = argv[1];
  RUN(test_ciede2000_sharma);
  RUN(test_lab_conversions);
  RUN(test_lab_transfer);
  RUN(test_kernels_and_blend);
  RUN(test_resize_constant_and_ramp);
  RUN(test_resize_golden);
  RUN(test_rgba_resize);
  RUN(test_resize_refuses);
  RUN(test_rgba_decode);
  RUN(test_rgba_load_fixtures);
  RUN(test_logo_exact);
  RUN(test_vehicle_golden);
  RUN(test_vehicle_placement);
  RUN(test_vehicle_seams);
  RUN(test_vehicle_refuses);
  return check_done("composite");
}
