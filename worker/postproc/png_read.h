/* SPDX-License-Identifier: Apache-2.0 */
/*
 * png_read.h - what both PNG decoders (image.c: the RGB scene, raster.c: the
 * RGBA cutouts) share: libpng reading from memory with every bound set
 * before the first byte is read - the chunk lengths checked against the
 * buffer, 8 MiB per ancillary chunk, text chunks not read at all - and its
 * errors, warnings and allocations routed back to the decoder.
 */
#ifndef TG_PNG_READ_H
#define TG_PNG_READ_H

#include "tg_err.h"

#include <png.h>
#include <stdbool.h>
#include <stddef.h>

/* One decode in progress. */
struct tg_png_read {
  const unsigned char *data;
  size_t len;
  size_t pos;
  bool oom;                 /* an allocation of libpng's failed */
  char msg[160];            /* libpng's error message */
  unsigned char *pixels;    /* owned until handed to the image */
  png_bytep *rows;
  png_uint_32 width;
  png_uint_32 height;
};

/**
 * tg_png_read_open() - libpng's read and info structs over a PNG in memory
 * @r:      the decode state (zeroed, then filled with @data)
 * @data:   the PNG, signature included
 * @len:    its length
 * @png:    out: libpng's read struct
 * @info:   out: its info struct
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK (close with tg_png_read_close()), TG_ERR_BAD_MSG (a chunk
 * claims more than the buffer holds) or TG_ERR_NOMEM.
 */
tg_err_t tg_png_read_open(struct tg_png_read *r, const unsigned char *data, size_t len,
                          png_structp *png, png_infop *info, char *errstr, size_t n);

/**
 * tg_png_read_failed() - the error after libpng longjmp()ed out
 * @r:      the decode state
 * @errstr: "PNG: <libpng's message>", or "out of memory"
 * @n:      its size
 *
 * Return: TG_ERR_NOMEM or TG_ERR_BAD_MSG.
 */
tg_err_t tg_png_read_failed(const struct tg_png_read *r, char *errstr, size_t n);

/**
 * tg_png_read_close() - free libpng's structs and the row pointers; the
 * pixels stay with @r (NULL-safe)
 * @r:    the decode state
 * @png:  libpng's read struct
 * @info: its info struct
 */
void tg_png_read_close(struct tg_png_read *r, png_structp *png, png_infop *info);

/**
 * tg_png_chunks_fit() - refuse a PNG whose chunks claim more bytes than it has
 * @data:   the PNG (signature included)
 * @len:    its length
 * @errstr: reason ("PNG: truncated (tEXt chunk of N bytes, M left)")
 * @n:      its size
 *
 * libpng allocates, and zeroes, the length an ancillary chunk declares
 * before reading it, whatever png_set_chunk_malloc_max() says: a 60-byte
 * file claiming a 2 GiB tEXt would cost 2 GiB. tg_png_read_open() calls it.
 *
 * Return: TG_OK or TG_ERR_BAD_MSG.
 */
tg_err_t tg_png_chunks_fit(const unsigned char *data, size_t len, char *errstr, size_t n);

#endif
