/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cpu.c - the "cpu" post-process backend: decode the diffusion scene; put
 * the owner's car in (the catalogue's cutout for its model and colour,
 * scaled to the layout's anchor, colour-harmonised to the scene, feathered,
 * with a contact shadow: composite.c); the brand logo with its exact
 * colours, top right; the caption band with the trip's facts in Noto Sans
 * CJK (caption.c); then each variant the job asks for, in its order ("full"
 * at the scene's size, "thumb" at half of it, Lanczos-3), encoded as JPEG or
 * WebP with the sha256 of the bytes. A scene that cannot be decoded (a
 * truncated download, a bad PNG) is retryable: the next attempt paints it
 * again; a scene beyond the size limits fails for good; running out of
 * memory may pass on a later attempt; an unknown variant is the producer's
 * mistake (invalid_input). The catalogue and the font are loaded once at
 * create and shared read-only by the post-process threads.
 */
#include "postproc.h"

#include "caption.h"
#include "catalogue.h"
#include "composite.h"
#include "image.h"
#include "resize.h"
#include "webp.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cpu_state {
  int jpeg_quality;
  bool webp;
  int64_t max_image_bytes;
  tg_catalogue_t *catalogue;        /* NULL when neither the car nor the logo is wanted */
  tg_caption_t *caption;            /* NULL when the caption is off */
  bool vehicle, logo;
  struct tg_composite_params comp;
  int logo_margin_px;
  int band_permille, band_alpha;
};

static void cpu_destroy(void *state) {
  struct cpu_state *s = state;
  if (!s)
    return;
  tg_catalogue_destroy(s->catalogue);
  tg_caption_destroy(s->caption);
  free(s);
}

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
  s->webp = strcmp(conf->output_format, "webp") == 0;
  s->max_image_bytes = conf->max_image_bytes;
  s->vehicle = conf->vehicle_composite;
  s->logo = conf->logo;
  s->logo_margin_px = conf->logo_margin_px;
  s->band_permille = conf->caption_band_permille;
  s->band_alpha = conf->caption_band_alpha;
  s->comp = (struct tg_composite_params){
    .anchor_x_permille = conf->anchor_x_permille,
    .anchor_y_permille = conf->anchor_y_permille,
    .car_width_permille = conf->car_width_permille,
    .harmonise_permille = conf->harmonise_permille,
    .max_lightness_shift = conf->max_lightness_shift,
    .feather_px = conf->feather_px,
    .shadow_permille = conf->shadow_permille,
    .shadow_blur_px = conf->shadow_blur_px,
  };
  char why[400];
  if ((s->vehicle || s->logo) &&
      !(s->catalogue = tg_catalogue_load(conf->assets_dir, conf->max_image_bytes, why,
                                         sizeof(why)))) {
    snprintf(errstr, n, "postproc.assets_dir %s: %s", conf->assets_dir, why);
    cpu_destroy(s);
    return TG_ERR_INVAL;
  }
  if (conf->caption &&
      !(s->caption = tg_caption_create(conf->font_file, conf->caption_font_px, why, sizeof(why)))) {
    snprintf(errstr, n, "%s", why);
    cpu_destroy(s);
    return TG_ERR_INVAL;
  }
  *state = s;
  return TG_OK;
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
    rc = tg_image_resize_lanczos(scene, w, h, &thumb, why, sizeof(why));
    if (rc != TG_OK) {
      fail_image(err, rc, variant, why);
      return false;
    }
    img = &thumb;
  }

  memset(out, 0, sizeof(*out));
  rc = s->webp ? tg_image_encode_webp(img, s->jpeg_quality, &out->data, why, sizeof(why))
               : tg_image_encode_jpeg(img, s->jpeg_quality, &out->data, why, sizeof(why));
  if (rc != TG_OK) {
    fail_image(err, rc, variant, why);
    tg_image_free(&thumb);
    return false;
  }
  snprintf(out->variant, sizeof(out->variant), "%s", variant);
  out->width = img->width;
  out->height = img->height;
  snprintf(out->format, sizeof(out->format), "%s", s->webp ? "webp" : "jpeg");
  snprintf(out->ext, sizeof(out->ext), "%s", s->webp ? "webp" : "jpg");
  snprintf(out->content_type, sizeof(out->content_type), "%s",
           s->webp ? "image/webp" : "image/jpeg");
  tg_image_free(&thumb);
  if (!sha256_hex(&out->data, out->sha256)) {
    tg_stage_fail(err, TG_CODE_POSTPROC_FAILED, true, "%s: sha256: out of memory", variant);
    tg_blob_free(&out->data);
    return false;
  }
  return true;
}

/* The car, the caption band and the logo, in that order, onto the decoded scene: the
 * logo last, so nothing drawn after it can change its exact colours. */
static bool decorate(const struct cpu_state *s, const tg_job_t *job, struct tg_rgb_image *img,
                     struct tg_postproc_report *rep, struct tg_stage_error *err) {
  char why[256];
  tg_err_t rc;
  const tg_trip_t *trip = job->trip;
  if (s->vehicle && trip) {
    struct tg_vehicle_choice choice = {"", "none"};
    const struct tg_rgba_image *car =
        tg_catalogue_vehicle(s->catalogue, trip->vehicle.model, trip->vehicle.color,
                             trip->vehicle.generation, &choice);
    snprintf(rep->vehicle_match, sizeof(rep->vehicle_match), "%s", choice.how);
    snprintf(rep->vehicle_asset, sizeof(rep->vehicle_asset), "%s", car ? choice.file : "");
    struct tg_composite_report crep;
    if (car && (rc = tg_composite_vehicle(img, car, &s->comp, &crep, why, sizeof(why))) != TG_OK) {
      fail_image(err, rc, "vehicle composite", why);
      return false;
    }
  }
  if (s->caption && trip) {
    struct tg_caption_text text = {0};
    struct tg_caption_report crep = {0};
    rc = tg_caption_lines(trip, &text, why, sizeof(why));
    if (rc == TG_OK)
      rc = tg_caption_draw(s->caption, img, (const char *const *)text.lines, text.n_lines,
                           s->band_permille, s->band_alpha, &crep, why, sizeof(why));
    tg_caption_text_free(&text);
    if (rc != TG_OK) {
      fail_image(err, rc, "caption", why);
      return false;
    }
    rep->caption_lines = crep.lines_drawn;
  }
  if (s->logo) {
    const struct tg_rgba_image *logo = tg_catalogue_logo(s->catalogue);
    if (logo) {
      int x = img->width - logo->width - s->logo_margin_px, y = s->logo_margin_px;
      if ((rc = tg_composite_logo(img, logo, x, y, why, sizeof(why))) != TG_OK) {
        fail_image(err, rc, "logo", why);
        return false;
      }
      rep->logo = true;
    }
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
  if (!decorate(s, job, &img, rep, err)) {
    tg_image_free(&img);
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
