/* SPDX-License-Identifier: Apache-2.0 */
/*
 * png_read.c - libpng over a PNG in memory with its bounds set (png_read.h).
 */
#include "png_read.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PNG_CHUNK_MAX (8u << 20) /* one ancillary chunk, decompressed */

static void on_error(png_structp png, png_const_charp msg) {
  struct tg_png_read *r = png_get_error_ptr(png);
  snprintf(r->msg, sizeof(r->msg), "%s", msg);
  png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
  (void)png; /* benign: bad ancillary chunks are dropped */
  (void)msg;
}

static void read_mem(png_structp png, png_bytep buf, size_t want) {
  struct tg_png_read *r = png_get_io_ptr(png);
  if (want > r->len - r->pos)
    png_error(png, "truncated (the data ends early)");
  memcpy(buf, r->data + r->pos, want);
  r->pos += want;
}

static png_voidp mem_alloc(png_structp png, png_alloc_size_t size) {
  void *p = malloc(size);
  if (!p) {
    struct tg_png_read *r = png_get_mem_ptr(png);
    r->oom = true;
  }
  return p;
}

static void mem_free(png_structp png, png_voidp p) {
  (void)png;
  free(p);
}

/*
 * libpng allocates, and zeroes, the length an ancillary text chunk declares
 * before reading it (png_read_buffer), whatever png_set_chunk_malloc_max()
 * says: a 60-byte file claiming a 2 GiB tEXt costs 2 GiB and seconds. The
 * bytes are all in memory, so refuse a chunk longer than what is left first.
 */
tg_err_t tg_png_chunks_fit(const unsigned char *data, size_t len, char *errstr, size_t n) {
  if (!data || len < 8) {
    snprintf(errstr, n, "PNG: shorter than its signature");
    return TG_ERR_BAD_MSG;
  }
  size_t at = 8;
  while (len - at >= 8) {
    const unsigned char *p = data + at;
    uint32_t clen = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if ((uint64_t)clen + 12 > len - at) {
      char name[5];
      for (int i = 0; i < 4; i++)
        name[i] = (p[4 + i] >= 'A' && p[4 + i] <= 'z') ? (char)p[4 + i] : '?';
      name[4] = '\0';
      snprintf(errstr, n, "PNG: truncated (%s chunk of %u bytes, %zu left)", name, clen,
               len - at - 8);
      return TG_ERR_BAD_MSG;
    }
    if (memcmp(p + 4, "IEND", 4) == 0)
      break;
    at += 12 + (size_t)clen;
  }
  return TG_OK;
}

tg_err_t tg_png_read_open(struct tg_png_read *r, const unsigned char *data, size_t len,
                          png_structp *png, png_infop *info, char *errstr, size_t n) {
  memset(r, 0, sizeof(*r));
  r->data = data;
  r->len = len;
  *png = NULL;
  *info = NULL;
  if (tg_png_chunks_fit(data, len, errstr, n) != TG_OK)
    return TG_ERR_BAD_MSG;
  *png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, r, on_error, on_warning, r, mem_alloc,
                                  mem_free);
  *info = *png ? png_create_info_struct(*png) : NULL;
  if (!*info) {
    png_destroy_read_struct(*png ? png : NULL, NULL, NULL);
    *png = NULL;
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  png_set_read_fn(*png, r, read_mem);
  /* libpng's own size limit would refuse first, with a vaguer message */
  png_set_user_limits(*png, 0x7fffffff, 0x7fffffff);
  png_set_chunk_malloc_max(*png, PNG_CHUNK_MAX);
  /* the cap is per chunk: a file of many compressed text chunks would still inflate
   * each (and keep them all), so text and palette-suggestion chunks are not read at all */
  static const png_byte ignored[] = "zTXt\0iTXt\0tEXt\0sPLT\0";
  png_set_keep_unknown_chunks(*png, PNG_HANDLE_CHUNK_NEVER, ignored, 4);
  png_set_chunk_cache_max(*png, 16);
  return TG_OK;
}

tg_err_t tg_png_read_failed(const struct tg_png_read *r, char *errstr, size_t n) {
  if (r->oom) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  snprintf(errstr, n, "PNG: %s", r->msg);
  return TG_ERR_BAD_MSG;
}

void tg_png_read_close(struct tg_png_read *r, png_structp *png, png_infop *info) {
  if (*png)
    png_destroy_read_struct(png, *info ? info : NULL, NULL);
  *png = NULL;
  *info = NULL;
  free(r->rows);
  r->rows = NULL;
}
