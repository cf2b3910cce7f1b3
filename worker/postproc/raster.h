/* SPDX-License-Identifier: Apache-2.0 */
/*
 * raster.h - RGBA images for the post-processor's overlays: the vehicle
 * cutout and the brand logo. An RGBA8 image with straight (not
 * premultiplied) alpha, and PNG decoding that keeps the alpha channel,
 * from memory or from a file, with the same size bounds as the scene
 * decoder (image.h): dimensions are checked after the header is read and
 * before any pixel buffer is allocated. Functions return TG_OK,
 * TG_ERR_NOMEM, TG_ERR_TOO_LARGE, TG_ERR_BAD_MSG (not a decodable PNG) or
 * TG_ERR_IO (the file cannot be read), with the reason in errstr.
 */
#ifndef TG_POSTPROC_RASTER_H
#define TG_POSTPROC_RASTER_H

#include "image.h"
#include "tg_err.h"

#include <stddef.h>
#include <stdint.h>

/* Packed RGBA8, straight alpha, rows top to bottom, stride 4 * width. */
struct tg_rgba_image {
  int width;
  int height;
  unsigned char *rgba; /* malloc()ed, 4 * width * height bytes */
};

/**
 * tg_rgba_free() - free an RGBA image's pixels and zero it (NULL-safe)
 * @img: the image
 */
void tg_rgba_free(struct tg_rgba_image *img);

/**
 * tg_rgba_decode_png() - decode a PNG into RGBA8, keeping its alpha
 * @data:      the encoded bytes
 * @len:       their length
 * @max_bytes: largest @len accepted (0: no bound besides the pixel limits)
 * @out:       the image on success (free with tg_rgba_free()); zeroed on failure
 * @errstr:    on failure, what is wrong ("not a PNG image", "PNG: truncated
 *             (the data ends early)", "5000x5000 exceeds 4096 px per side", ...)
 * @n:         its size
 *
 * Every colour type and bit depth is expanded to 8-bit RGBA: 16-bit samples
 * are scaled with rounding, palettes and low-bit grey expanded, a tRNS chunk
 * becomes alpha, images without alpha get 255.
 *
 * Return: TG_OK, TG_ERR_NOMEM, TG_ERR_TOO_LARGE or TG_ERR_BAD_MSG.
 */
tg_err_t tg_rgba_decode_png(const unsigned char *data, size_t len, int64_t max_bytes,
                            struct tg_rgba_image *out, char *errstr, size_t n);

/**
 * tg_rgba_load_png() - read a PNG file and decode it into RGBA8
 * @path:      the file
 * @max_bytes: largest file accepted (0: no bound besides the pixel limits)
 * @out:       the image on success (free with tg_rgba_free()); zeroed on failure
 * @errstr:    on failure, what is wrong, naming @path
 * @n:         its size
 *
 * Return: as tg_rgba_decode_png(), TG_ERR_IO when the file cannot be
 * opened or read, TG_ERR_TOO_LARGE when it is longer than @max_bytes (it
 * is not read past the bound), TG_ERR_INVAL for a NULL or empty @path.
 */
tg_err_t tg_rgba_load_png(const char *path, int64_t max_bytes, struct tg_rgba_image *out,
                          char *errstr, size_t n);

#endif
