/* SPDX-License-Identifier: Apache-2.0 */
/*
 * webp.c - lossy WebP encoding of an RGB8 image with libwebp's advanced API
 * (WebPConfig + WebPPicture), written through our own writer into a
 * malloc()ed buffer so that the result is an ordinary tg_blob and an error
 * mid-encode leaks nothing. libwebp's error codes become messages.
 */
#include "webp.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <webp/encode.h>

/* Where the encoder's bytes go: a buffer grown by doubling. */
struct webp_sink {
  unsigned char *buf;
  size_t len;
  size_t cap;
  bool oom;
};

static int sink_write(const uint8_t *data, size_t size, const WebPPicture *pic) {
  struct webp_sink *s = pic->custom_ptr;
  if (size > SIZE_MAX - s->len) {
    s->oom = true;
    return 0;
  }
  if (s->len + size > s->cap) {
    size_t cap = s->cap ? s->cap : 16384;
    while (cap < s->len + size)
      cap = cap > SIZE_MAX / 2 ? s->len + size : cap * 2;
    unsigned char *p = realloc(s->buf, cap);
    if (!p) {
      s->oom = true;
      return 0;
    }
    s->buf = p;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, size);
  s->len += size;
  return 1;
}

static const char *webp_error(WebPEncodingError e) {
  switch (e) {
  case VP8_ENC_ERROR_OUT_OF_MEMORY:
  case VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY:
    return "out of memory";
  case VP8_ENC_ERROR_INVALID_CONFIGURATION:
    return "invalid configuration";
  case VP8_ENC_ERROR_BAD_DIMENSION:
    return "bad dimensions";
  case VP8_ENC_ERROR_PARTITION0_OVERFLOW:
  case VP8_ENC_ERROR_PARTITION_OVERFLOW:
    return "partition overflow";
  case VP8_ENC_ERROR_BAD_WRITE:
    return "write failed";
  case VP8_ENC_ERROR_FILE_TOO_BIG:
    return "file too big";
  default:
    return "encoder error";
  }
}

tg_err_t tg_image_encode_webp(const struct tg_rgb_image *img, int quality, struct tg_blob *out,
                              char *errstr, size_t n) {
  out->data = NULL;
  out->len = 0;
  if (!img || !img->rgb || img->width < 1 || img->height < 1) {
    snprintf(errstr, n, "WebP: nothing to encode");
    return TG_ERR_INVAL;
  }
  if (img->width > WEBP_MAX_DIMENSION || img->height > WEBP_MAX_DIMENSION) {
    snprintf(errstr, n, "WebP: %dx%d is too large for WebP (%d px per side)", img->width,
             img->height, WEBP_MAX_DIMENSION);
    return TG_ERR_INVAL;
  }
  quality = quality < 1 ? 1 : quality > 100 ? 100 : quality;

  WebPConfig config;
  WebPPicture pic;
  if (!WebPConfigPreset(&config, WEBP_PRESET_PHOTO, (float)quality) || !WebPPictureInit(&pic)) {
    snprintf(errstr, n, "WebP: libwebp version mismatch");
    return TG_ERR_INVAL;
  }
  config.method = 4;
  config.thread_level = 0;
  if (!WebPValidateConfig(&config)) {
    snprintf(errstr, n, "WebP: invalid configuration");
    return TG_ERR_INVAL;
  }
  struct webp_sink sink = {0};
  pic.use_argb = 0; /* encode from YUV420, as lossy WebP stores it */
  pic.width = img->width;
  pic.height = img->height;
  pic.writer = sink_write;
  pic.custom_ptr = &sink;
  tg_err_t rc = TG_OK;
  if (!WebPPictureImportRGB(&pic, img->rgb, img->width * 3)) {
    snprintf(errstr, n, "out of memory");
    rc = TG_ERR_NOMEM;
  } else if (!WebPEncode(&config, &pic)) {
    bool oom = sink.oom || pic.error_code == VP8_ENC_ERROR_OUT_OF_MEMORY ||
               pic.error_code == VP8_ENC_ERROR_BITSTREAM_OUT_OF_MEMORY;
    if (oom)
      snprintf(errstr, n, "out of memory");
    else
      snprintf(errstr, n, "WebP: %s", webp_error(pic.error_code));
    rc = oom ? TG_ERR_NOMEM : TG_ERR_INVAL;
  }
  WebPPictureFree(&pic);
  if (rc != TG_OK) {
    free(sink.buf);
    return rc;
  }
  unsigned char *shrunk = realloc(sink.buf, sink.len ? sink.len : 1);
  out->data = shrunk ? shrunk : sink.buf;
  out->len = sink.len;
  return TG_OK;
}
