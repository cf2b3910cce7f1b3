/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_decode.c - fuzz target of the post-process decode entries: any bytes
 * go through tg_image_decode() (the diffusion scene: PNG or JPEG to RGB8)
 * and, when they look like a PNG, tg_rgba_decode_png() (the overlay
 * assets). Invariants, abort() when broken: a success has 1..4096 px per
 * side within the pixel limit and a pixel buffer that can be read to its
 * end (ASan checks the size); a failure has a known error code, a non-empty
 * message and a zeroed image, and is never "out of memory": the inputs are
 * small, the pixel limits bound what decoding may need (at most 4096x4096
 * RGBA plus the codecs' buffers, well under 256 MiB), so running out means
 * a decoder asked for memory the input did not justify; fuzz with an
 * allocation limit (libFuzzer -malloc_limit_mb=256, or the replay's
 * --malloc-limit-mb) to make that visible. A small decoded scene is also
 * encoded to JPEG and WebP and both read back at the same size, so the
 * encoders see fuzzed pixels too. Built with libFuzzer (clang
 * -fsanitize=fuzzer, tests/fuzz/README.md) or with replay.c, which feeds it
 * the corpus and deterministic mutations.
 */
#include "fuzz.h"

#include "postproc/image.h"
#include "postproc/raster.h"
#include "postproc/webp.h"
#include "tg_limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>

/* largest scene re-encoded (pixels): keeps one input to milliseconds */
#define REENCODE_MAX_PIXELS (128 * 128)

static int last_ok;
static char last_why[256];

int tg_fuzz_verdict(char *why, size_t n) {
  snprintf(why, n, "%s", last_ok ? "" : last_why);
  return last_ok;
}

static void broken(const char *what, const char *detail) {
  fprintf(stderr, "fuzz_decode: invariant broken: %s (%s)\n", what, detail);
  abort();
}

static void check_failure(tg_err_t rc, const char *why, const void *px, int w, int h) {
  if (rc == TG_ERR_NOMEM)
    broken("out of memory: the decoder asked for more than the limits justify", why);
  if (rc != TG_ERR_BAD_MSG && rc != TG_ERR_TOO_LARGE)
    broken("unexpected error code", tg_err2str(rc));
  if (why[0] == '\0')
    broken("a failure without a message", tg_err2str(rc));
  if (px || w || h)
    broken("a failure left an image behind", why);
}

static void check_size(int w, int h, const void *px, const char *what) {
  if (!px || w < 1 || h < 1 || w > TG_MAX_IMAGE_SIDE || h > TG_MAX_IMAGE_SIDE ||
      (int64_t)w * h > TG_MAX_IMAGE_PIXELS)
    broken("decoded size out of bounds", what);
}

/* read every byte (ASan: the buffer has this size) */
static unsigned touch(const unsigned char *p, size_t len) {
  unsigned sum = 0;
  for (size_t i = 0; i < len; i++)
    sum += p[i];
  return sum;
}

static volatile unsigned sink;

static void reencode(const struct tg_rgb_image *img) {
  char why[256];
  struct tg_blob jpg = {0}, webp = {0};
  if (tg_image_encode_jpeg(img, 80, &jpg, why, sizeof(why)) != TG_OK)
    broken("JPEG encoding of a decoded image failed", why);
  struct tg_rgb_image back;
  if (tg_image_decode(jpg.data, jpg.len, 0, &back, why, sizeof(why)) != TG_OK)
    broken("our own JPEG does not decode", why);
  if (back.width != img->width || back.height != img->height)
    broken("JPEG round trip changed the size", "");
  tg_image_free(&back);
  tg_blob_free(&jpg);
  if (tg_image_encode_webp(img, 75, &webp, why, sizeof(why)) != TG_OK)
    broken("WebP encoding of a decoded image failed", why);
  int ww = 0, wh = 0;
  if (!WebPGetInfo(webp.data, webp.len, &ww, &wh) || ww != img->width || wh != img->height)
    broken("our own WebP does not parse back to the same size", "");
  tg_blob_free(&webp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char why[256] = "";
  struct tg_rgb_image img;
  tg_err_t rc = tg_image_decode(data, size, 0, &img, why, sizeof(why));
  last_ok = rc == TG_OK;
  snprintf(last_why, sizeof(last_why), "%s", why);
  if (rc == TG_OK) {
    check_size(img.width, img.height, img.rgb, "tg_image_decode");
    sink += touch(img.rgb, (size_t)img.width * (size_t)img.height * 3);
    if ((int64_t)img.width * img.height <= REENCODE_MAX_PIXELS)
      reencode(&img);
    tg_image_free(&img);
  } else {
    check_failure(rc, why, img.rgb, img.width, img.height);
  }

  /* the asset decoder reads the same PNGs the same way, alpha kept */
  if (tg_image_sniff(data, size) == TG_IMAGE_PNG) {
    struct tg_rgba_image rgba;
    char why2[256] = "";
    tg_err_t rc2 = tg_rgba_decode_png(data, size, 0, &rgba, why2, sizeof(why2));
    if (rc2 == TG_OK) {
      check_size(rgba.width, rgba.height, rgba.rgba, "tg_rgba_decode_png");
      sink += touch(rgba.rgba, (size_t)rgba.width * (size_t)rgba.height * 4);
      tg_rgba_free(&rgba);
    } else {
      check_failure(rc2, why2, rgba.rgba, rgba.width, rgba.height);
    }
    if ((rc == TG_OK) != (rc2 == TG_OK))
      broken("the scene and asset PNG decoders disagree", rc == TG_OK ? why2 : last_why);
  }
  return 0;
}
