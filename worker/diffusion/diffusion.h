/* SPDX-License-Identifier: Apache-2.0 */
/*
 * diffusion.h - the diffusion stage: paints the scene for a prompt.
 * Backends sit behind a const ops table, one file each: comfyui.c (a
 * ComfyUI workflow), wanx.c (DashScope async image synthesis).
 */
#ifndef TG_DIFFUSION_H
#define TG_DIFFUSION_H

#include "config.h"
#include "stage.h"
#include "tg_job.h"

/* One painting request. */
struct tg_diffusion_req {
  const tg_job_t *job;
  const char *prompt;
  const char *negative_prompt;
  int64_t seed;
  int width;
  int height;
  const char *filename_prefix;  /* carries env and request_id */
  int64_t deadline_mono_ms;     /* give up (retryably) after this; 0 = none */
};

struct tg_diffusion_ops {
  const char *name;
  tg_err_t (*create)(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n);
  void (*destroy)(void *state);
  /* true with the encoded image (PNG or JPEG) in *image; false with err */
  bool (*paint)(void *state, const struct tg_diffusion_req *req, struct tg_blob *image,
                struct tg_stage_error *err);
  /* quick reachability check for /readyz */
  bool (*ready)(void *state, char *why, size_t n);
};

extern const struct tg_diffusion_ops tg_diffusion_comfyui;
extern const struct tg_diffusion_ops tg_diffusion_wanx;

/**
 * tg_diffusion_find() - the backend of a name
 * @name: e.g. "comfyui"
 *
 * Return: the ops, or NULL.
 */
const struct tg_diffusion_ops *tg_diffusion_find(const char *name);

#endif
