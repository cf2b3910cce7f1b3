/* SPDX-License-Identifier: Apache-2.0 */
/*
 * postproc.h - the post-process stage: decode the diffusion output and
 * produce the encoded variants of the final image, each with its size,
 * format and sha256. Backends sit behind a const ops table: cpu.c.
 *
 * Variants known today: "full" (the decoded size) and "thumb" (half of it,
 * rounded down, area-averaged).
 */
#ifndef TG_POSTPROC_H
#define TG_POSTPROC_H

#include "config.h"
#include "stage.h"
#include "tg_job.h"

/* One encoded output image. */
struct tg_variant_image {
  char variant[TG_MAX_VARIANT_CHARS + 1];
  struct tg_blob data;
  int width;
  int height;
  char format[8];         /* "jpeg" */
  char ext[8];            /* "jpg" */
  char content_type[32];  /* "image/jpeg" */
  char sha256[65];        /* hex of data */
};

/* What the stage did besides the variants (recorded in the result). */
struct tg_postproc_report {
  char vehicle_match[16];   /* "exact", "model_color", "default_color", "none"; "" = off */
  char vehicle_asset[128];  /* the catalogue file composited, "" when none */
  bool logo;                /* the logo was composited */
  int caption_lines;        /* lines drawn in the caption band (0: none) */
};

struct tg_postproc_ops {
  const char *name;
  tg_err_t (*create)(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n);
  void (*destroy)(void *state);
  /* fills out[0..job->options.n_variants-1] in the job's variant order, and @rep */
  bool (*run)(void *state, const tg_job_t *job, const struct tg_blob *scene,
              struct tg_variant_image *out, size_t *n_out, struct tg_postproc_report *rep,
              struct tg_stage_error *err);
};

extern const struct tg_postproc_ops tg_postproc_cpu;

/**
 * tg_postproc_find() - the backend of a name
 * @name: e.g. "cpu"
 *
 * Return: the ops, or NULL.
 */
const struct tg_postproc_ops *tg_postproc_find(const char *name);

/**
 * tg_postproc_variant_known() - whether a variant name can be produced
 * @name: e.g. "thumb"
 *
 * Return: true for "full" and "thumb".
 */
bool tg_postproc_variant_known(const char *name);

/**
 * tg_variant_images_free() - free the blobs of an output array
 * @v: the array
 * @n: its length
 */
void tg_variant_images_free(struct tg_variant_image *v, size_t n);

#endif
