/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resize.h - separable Lanczos-3 resampling of RGB8 scenes and RGBA8
 * overlays. The filter runs on the 8-bit sRGB-encoded values as stored (not
 * in linear light, like libvips' vips_resize() on an sRGB image), with
 * filter taps quantised to 14-bit integers that sum exactly to 1 per output
 * pixel and integer accumulation with round-half-up, so a result depends
 * only on the input and the target size: identical on every platform.
 * Taps that fall outside the source are dropped and the rest renormalised.
 * RGBA is filtered premultiplied (colour times alpha, kept at 16 bits) and
 * un-premultiplied after, so transparent pixels never bleed colour.
 */
#ifndef TG_POSTPROC_RESIZE_H
#define TG_POSTPROC_RESIZE_H

#include "image.h"
#include "raster.h"
#include "tg_err.h"

#include <stddef.h>

/**
 * tg_image_resize_lanczos() - Lanczos-3 resize of an RGB8 image
 * @src:    the source image
 * @w:      target width, 1..TG_MAX_IMAGE_SIDE
 * @h:      target height, 1..TG_MAX_IMAGE_SIDE
 * @out:    the resized image on success (free with tg_image_free()); zeroed on failure
 * @errstr: reason on failure
 * @n:      its size
 *
 * Downscaling widens the kernel by the scale factor (a proper low-pass);
 * upscaling interpolates. Results are clamped to 0..255 (the kernel's
 * negative lobes can ring past the range).
 *
 * Return: TG_OK, TG_ERR_NOMEM, TG_ERR_INVAL (NULL or empty source, target
 * side < 1) or TG_ERR_TOO_LARGE (source or target beyond the limits).
 */
tg_err_t tg_image_resize_lanczos(const struct tg_rgb_image *src, int w, int h,
                                 struct tg_rgb_image *out, char *errstr, size_t n);

/**
 * tg_rgba_resize_lanczos() - Lanczos-3 resize of an RGBA8 image, premultiplied
 * @src:    the source image (straight alpha)
 * @w:      target width, 1..TG_MAX_IMAGE_SIDE
 * @h:      target height, 1..TG_MAX_IMAGE_SIDE
 * @out:    the resized image on success (straight alpha; free with
 *          tg_rgba_free()); zeroed on failure
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: as tg_image_resize_lanczos().
 */
tg_err_t tg_rgba_resize_lanczos(const struct tg_rgba_image *src, int w, int h,
                                struct tg_rgba_image *out, char *errstr, size_t n);

#endif
