/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image.h - the CPU post-processor's pixel layer: an RGB8 image in memory,
 * decoding PNG (libpng) and JPEG (libjpeg-turbo) from memory with every
 * size bound checked before a pixel buffer is allocated, JPEG encoding to
 * memory, and an exact area-averaging downscale. Corrupt or truncated input
 * is an error with a message, never a crash. Functions return TG_OK,
 * TG_ERR_NOMEM (worth a retry), TG_ERR_TOO_LARGE (a bound was exceeded) or
 * TG_ERR_BAD_MSG (not a decodable image), with the reason in errstr.
 */
#ifndef TG_POSTPROC_IMAGE_H
#define TG_POSTPROC_IMAGE_H

#include "stage.h"
#include "tg_err.h"

#include <stddef.h>
#include <stdint.h>

/* Packed 8-bit RGB, rows top to bottom, stride 3 * width, no padding. */
struct tg_rgb_image {
  int width;
  int height;
  unsigned char *rgb; /* malloc()ed, 3 * width * height bytes */
};

/* What the magic bytes of an encoded image say it is. */
enum tg_image_format {
  TG_IMAGE_UNKNOWN = 0,
  TG_IMAGE_PNG,
  TG_IMAGE_JPEG,
};

/**
 * tg_image_sniff() - the format of an encoded image from its magic bytes
 * @data: the bytes
 * @len:  their length
 *
 * Return: TG_IMAGE_PNG for the 8-byte PNG signature, TG_IMAGE_JPEG for an
 * SOI marker followed by another marker (FF D8 FF), else TG_IMAGE_UNKNOWN.
 */
enum tg_image_format tg_image_sniff(const unsigned char *data, size_t len);

/**
 * tg_image_check_size() - whether decoded dimensions are within the limits
 * @width:  pixels
 * @height: pixels
 * @errstr: reason when not, e.g. "5000x5000 exceeds 4096 px per side"
 * @n:      its size
 *
 * Both sides must be 1..TG_MAX_IMAGE_SIDE and their product at most
 * TG_MAX_IMAGE_PIXELS.
 *
 * Return: TG_OK, TG_ERR_TOO_LARGE, or TG_ERR_BAD_MSG for a zero side.
 */
tg_err_t tg_image_check_size(uint64_t width, uint64_t height, char *errstr, size_t n);

/**
 * tg_image_decode() - decode a PNG or JPEG image into RGB8
 * @data:      the encoded bytes
 * @len:       their length
 * @max_bytes: largest @len accepted (0: no bound besides the pixel limits)
 * @out:       the image on success (free with tg_image_free()); zeroed on failure
 * @errstr:    on failure, what is wrong ("not a PNG or JPEG image",
 *             "PNG: truncated", "5000x5000 exceeds 4096 px per side", ...)
 * @n:         its size
 *
 * PNGs of any colour type and bit depth are expanded to 8-bit RGB (16-bit
 * samples scaled with rounding, palettes and low-bit grey expanded, alpha
 * composited over black). JPEGs are converted to RGB by libjpeg; warnings
 * about corrupt data are errors. Dimensions are checked against the limits
 * after the header is read and before the pixel buffer is allocated.
 *
 * Return: TG_OK, TG_ERR_NOMEM, TG_ERR_TOO_LARGE or TG_ERR_BAD_MSG.
 */
tg_err_t tg_image_decode(const unsigned char *data, size_t len, int64_t max_bytes,
                         struct tg_rgb_image *out, char *errstr, size_t n);

/**
 * tg_image_encode_jpeg() - encode RGB8 as a baseline JPEG in memory
 * @img:     the image
 * @quality: 1-100 (values outside are clamped)
 * @out:     the JPEG bytes on success (free with tg_blob_free()); zeroed on failure
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: TG_OK, TG_ERR_NOMEM, or TG_ERR_INVAL for an empty image.
 */
tg_err_t tg_image_encode_jpeg(const struct tg_rgb_image *img, int quality, struct tg_blob *out,
                              char *errstr, size_t n);

/**
 * tg_image_resize_area() - area-averaging (box filter) resize
 * @src:    the source image
 * @width:  target width, >= 1
 * @height: target height, >= 1
 * @out:    the resized image on success; zeroed on failure
 * @errstr: reason on failure
 * @n:      its size
 *
 * Each target pixel is the mean of the source pixels under its exact
 * footprint, a source pixel counted by the fraction of it that the
 * footprint covers. Weights are integers (coverage in units of 1/width of a
 * source pixel horizontally, 1/height vertically) and the mean is rounded
 * half up, so results are exact and identical on every platform.
 *
 * Return: TG_OK, TG_ERR_NOMEM or TG_ERR_INVAL.
 */
tg_err_t tg_image_resize_area(const struct tg_rgb_image *src, int width, int height,
                              struct tg_rgb_image *out, char *errstr, size_t n);

/**
 * tg_image_check_encoded() - the checks every decoder makes first
 * @data:      the encoded bytes
 * @len:       their length
 * @max_bytes: the largest encoded size accepted; <= 0: no bound
 * @errstr:    reason
 * @n:         its size
 *
 * Return: TG_OK, TG_ERR_BAD_MSG (empty) or TG_ERR_TOO_LARGE.
 */
tg_err_t tg_image_check_encoded(const unsigned char *data, size_t len, int64_t max_bytes,
                                char *errstr, size_t n);

/**
 * tg_image_free() - free an image's pixels and zero it (NULL-safe)
 * @img: the image
 */
void tg_image_free(struct tg_rgb_image *img);

#endif
