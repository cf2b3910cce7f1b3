/* SPDX-License-Identifier: Apache-2.0 */
/*
 * composite.h - putting RGBA overlays into the RGB8 scene: the owner's car
 * (scaled, colour-harmonised to the scene, with a feathered edge and a soft
 * contact shadow) and the brand logo (its exact pixel colours). The
 * per-pixel math comes from pixel_math.h, which the CUDA twin compiles too.
 */
#ifndef TG_POSTPROC_COMPOSITE_H
#define TG_POSTPROC_COMPOSITE_H

#include "image.h"
#include "raster.h"
#include "tg_err.h"

#include <stddef.h>

/* How the car is placed and blended; the postproc.* keys of worker/config.h. */
struct tg_composite_params {
  int anchor_x_permille;   /* the car's bottom centre, thousandths of the scene, 0..1000 */
  int anchor_y_permille;
  int car_width_permille;  /* the car's width, thousandths of the scene width, 1..1000 */
  int harmonise_permille;  /* strength of the colour transfer, 0..1000 (0: off) */
  int max_lightness_shift; /* most the car's mean L* may move, CIELAB units, 0..100 */
  int feather_px;          /* blur radius of the alpha edge, 0..64 (0: hard edge) */
  int shadow_permille;     /* contact shadow opacity, 0..1000 (0: none) */
  int shadow_blur_px;      /* blur radius of the shadow, 0..128 */
};

/* What tg_composite_vehicle() did. */
struct tg_composite_report {
  int x, y;          /* where the scaled cutout's top-left corner went (may be < 0) */
  int width, height; /* the scaled cutout's size; only its part inside the scene is drawn */
  int box_x0, box_y0, box_x1, box_y1; /* the car's visible opaque part in the scene,
                                         half-open; all 0 when nothing is visible */
  float scene_l_mean; /* mean L* of the scene behind the car (alpha-weighted) */
  float car_l_before; /* the car's mean L* (alpha-weighted) before harmonisation */
  float car_l_after;  /* ... and after: within max_lightness_shift of car_l_before */
  int harmonised;     /* 1 when the colour transfer ran */
  int shadow;         /* 1 when a contact shadow was drawn */
};

/**
 * tg_composite_vehicle() - composite the car cutout into the scene
 * @scene:  the scene, changed in place
 * @car:    the cutout (straight alpha); its opaque part's bounding box is
 *          the car (transparent padding around it is ignored)
 * @p:      placement and blending parameters
 * @rep:    what was done (may be NULL)
 * @errstr: reason on failure
 * @n:      its size
 *
 * The cutout's opaque part is scaled (Lanczos-3, premultiplied; see
 * resize.h) to car_width_permille of the scene width, keeping its aspect
 * ratio, and placed with the bottom centre of its opaque box at the anchor;
 * what falls outside the scene is clipped. Colour harmonisation, when
 * harmonise_permille > 0: the alpha-weighted CIELAB mean and standard
 * deviation of the scene under the car and of the car itself are taken,
 * and every car pixel moves toward the scene's statistics by
 * harmonise_permille / 1000 (tg_lab_xfer_plan() in pixel_math.h): every
 * L* by one shift clamped to +-max_lightness_shift (so a black car stays
 * black; the report's car_l_after is within it of car_l_before), a* and b*
 * by a mean shift at most TG_LAB_AB_SHIFT_MAX long (a red car stays red)
 * with their spread nudged toward the scene's. Then the alpha is
 * feathered inward (min of itself and its separable Gaussian blur of radius
 * feather_px), a soft contact shadow (a dark ellipse under the car's
 * bottom, blurred by shadow_blur_px, opacity shadow_permille / 1000) darkens
 * the scene, and the car is blended over it (sRGB-encoded values, the
 * feathered alpha as a fraction: tg_blend_over_f()). The scene is changed
 * only on success.
 *
 * Return: TG_OK, TG_ERR_INVAL (NULL or empty images, a fully transparent
 * cutout, parameters out of range), TG_ERR_TOO_LARGE (an image beyond the
 * limits) or TG_ERR_NOMEM.
 */
tg_err_t tg_composite_vehicle(struct tg_rgb_image *scene, const struct tg_rgba_image *car,
                              const struct tg_composite_params *p,
                              struct tg_composite_report *rep, char *errstr, size_t n);

/**
 * tg_composite_logo() - composite the logo at its own size with exact colours
 * @scene:  the scene, changed in place
 * @logo:   the logo (straight alpha)
 * @x:      where its top-left corner goes (may be negative)
 * @y:      likewise
 * @errstr: reason on failure
 * @n:      its size
 *
 * Pixels of alpha 255 are copied bit-exactly, alpha 0 leaves the scene as
 * it is, partial alpha is blended in integer arithmetic
 * (tg_blend_over_u8()). What falls outside the scene is clipped.
 *
 * Return: TG_OK, TG_ERR_INVAL (NULL or empty images) or TG_ERR_TOO_LARGE.
 */
tg_err_t tg_composite_logo(struct tg_rgb_image *scene, const struct tg_rgba_image *logo, int x,
                           int y, char *errstr, size_t n);

#endif
