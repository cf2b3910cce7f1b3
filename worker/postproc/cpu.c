/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpu.c - the "cpu" post-process backend: decode the diffusion scene, then
 * produce each variant the job asks for, in its order ("full" at the
 * decoded size, "thumb" at half of it, area-averaged), encoded as JPEG at
 * the configured quality with the sha256 of the bytes. A scene that cannot
 * be decoded (a truncated download, a bad PNG) is retryable: the next
 * attempt paints it again; a scene beyond the size limits fails for good;
 * running out of memory may pass on a later attempt; an unknown variant is
 * the producer's mistake (invalid_input).
 */
#include "postproc.h"

#include "image.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cpu_state {
  int jpeg_quality;
  int64_t max_image_bytes;
};

static tg_err_t cpu_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                           size_t n) {
  if (conf->jpeg_quality < 1 || conf->jpeg_quality > 100) {
    snprintf(errstr, n, "jpeg_quality: %d is out of range [1, 100]", conf->jpeg_quality);
    return TG_ERR_INVAL;
  }
  struct cpu_state *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  s->jpeg_quality = conf->jpeg_quality;
  s->max_image_bytes = conf->max_image_bytes;
  *state = s;
  return TG_OK;
}

static void cpu_destroy(void *state) {
  free(state);
}

/* false only when OpenSSL cannot allocate its digest context */
static bool sha256_hex(const struct tg_blob *b, char hex[65]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(b->data, b->len, md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
    ERR_clear_error(); /* leave nothing on this thread's OpenSSL error queue */
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    hex[2 * i] = digits[md[i] >> 4];
    hex[2 * i + 1] = digits[md[i] & 15];
  }
  hex[64] = '\0';
  return true;
}

/* A failure of the image layer as a stage error. Retryable: out of memory,
 * and an undecodable scene (its redo needs the diffusion stage again). */
static void fail_image(struct tg_stage_error *err, tg_err_t rc, const char *what,
                       const char *why) {
  bool retry = rc == TG_ERR_NOMEM || (rc == TG_ERR_BAD_MSG && strcmp(what, "scene") == 0);
  tg_stage_fail(err, TG_CODE_POSTPROC_FAILED, retry, "%s: %s", what, why);
}

/* Render one variant of the decoded scene into @out. */
static bool make_variant(const struct cpu_state *s, const struct tg_rgb_image *scene,
                         const char *variant, struct tg_variant_image *out,
                         struct tg_stage_error *err) {
  char why[256];
  struct tg_rgb_image thumb = {0};
  const struct tg_rgb_image *img = scene;
  tg_err_t rc;

  if (strcmp(variant, "thumb") == 0) {
    int w = scene->width / 2 > 0 ? scene->width / 2 : 1;
    int h = scene->height / 2 > 0 ? scene->height / 2 : 1;
    rc = tg_image_resize_area(scene, w, h, &thumb, why, sizeof(why));
    if (rc != TG_OK) {
      fail_image(err, rc, variant, why);
      return false;
    }
    img = &thumb;
  }

  memset(out, 0, sizeof(*out));
  rc = tg_image_encode_jpeg(img, s->jpeg_quality, &out->data, why, sizeof(why));
  if (rc != TG_OK) {
    fail_image(err, rc, variant, why);
    tg_image_free(&thumb);
    return false;
  }
  snprintf(out->variant, sizeof(out->variant), "%s", variant);
  out->width = img->width;
  out->height = img->height;
  snprintf(out->format, sizeof(out->format), "jpeg");
  snprintf(out->ext, sizeof(out->ext), "jpg");
  snprintf(out->content_type, sizeof(out->content_type), "image/jpeg");
  tg_image_free(&thumb);
  if (!sha256_hex(&out->data, out->sha256)) {
    tg_stage_fail(err, TG_CODE_POSTPROC_FAILED, true, "%s: sha256: out of memory", variant);
    tg_blob_free(&out->data);
    return false;
  }
  return true;
}

static bool cpu_run(void *state, const tg_job_t *job, const struct tg_blob *scene,
                    struct tg_variant_image *out, size_t *n_out, struct tg_postproc_report *rep,
                    struct tg_stage_error *err) {
  const struct cpu_state *s = state;
  const struct tg_job_options *o = &job->options;
  char why[256];
  *n_out = 0;
  memset(rep, 0, sizeof(*rep));

  if (o->n_variants < 1 || o->n_variants > TG_MAX_VARIANTS) {
    tg_stage_fail(err, TG_CODE_INVALID_INPUT, false,
                  "options.variants: must have 1-%d entries, got %zu", TG_MAX_VARIANTS,
                  o->n_variants);
    return false;
  }
  for (size_t i = 0; i < o->n_variants; i++) {
    if (!tg_postproc_variant_known(o->variants[i])) {
      tg_stage_fail(err, TG_CODE_INVALID_INPUT, false,
                    "options.variants[%zu]: unknown variant \"%.*s\" (known: full, thumb)", i,
                    TG_MAX_VARIANT_CHARS, o->variants[i]);
      return false;
    }
  }

  struct tg_rgb_image img;
  tg_err_t rc = tg_image_decode(scene ? scene->data : NULL, scene ? scene->len : 0,
                                s->max_image_bytes, &img, why, sizeof(why));
  if (rc != TG_OK) {
    fail_image(err, rc, "scene", why);
    return false;
  }
  size_t done = 0;
  for (; done < o->n_variants; done++)
    if (!make_variant(s, &img, o->variants[done], &out[done], err))
      break;
  tg_image_free(&img);
  if (done < o->n_variants) {
    tg_variant_images_free(out, done);
    return false;
  }
  *n_out = done;
  return true;
}

const struct tg_postproc_ops tg_postproc_cpu = {
  .name = "cpu",
  .create = cpu_create,
  .destroy = cpu_destroy,
  .run = cpu_run,
};
