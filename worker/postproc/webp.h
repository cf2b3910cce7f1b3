/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webp.h - optional WebP output of the post-process stage: an RGB8 image
 * (image.h) encoded as a lossy WebP in memory with libwebp. Used for the
 * variants when postproc.format is "webp"; JPEG stays the default.
 */
#ifndef TG_POSTPROC_WEBP_H
#define TG_POSTPROC_WEBP_H

#include "image.h"
#include "stage.h"
#include "tg_err.h"

#include <stddef.h>

/**
 * tg_image_encode_webp() - encode RGB8 as a lossy WebP in memory
 * @img:     the image (1..16383 px per side, WebP's own bound)
 * @quality: 1-100 (values outside are clamped), as libwebp's quality factor
 * @out:     the WebP bytes on success, malloc()ed (free with tg_blob_free());
 *           zeroed on failure
 * @errstr:  reason on failure, e.g. "WebP: 20000x10 is too large for WebP"
 * @n:       its size
 *
 * The same image and quality always give the same bytes (single-threaded
 * encoding, method 4, no metadata).
 *
 * Return: TG_OK, TG_ERR_NOMEM, or TG_ERR_INVAL for an empty image, one over
 * WebP's size bound, or an encoder failure.
 */
tg_err_t tg_image_encode_webp(const struct tg_rgb_image *img, int quality, struct tg_blob *out,
                              char *errstr, size_t n);

#endif
