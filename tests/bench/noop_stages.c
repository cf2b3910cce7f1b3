/* SPDX-License-Identifier: Apache-2.0 */
/*
 * noop_stages.c - tripgen-worker-noop, a benchmark binary: the real worker
 * (queue intake, stage threads, finisher, leases, atomic completion) with a
 * stage set that does nothing, so `scripts/bench queue` measures the queue
 * path alone. It lives under tests/ and is never installed: the shipped
 * tripgen-worker has no way to select these stages.
 */
#include "diffusion/diffusion.h"
#include "postproc/postproc.h"
#include "prompt/prompt.h"
#include "storage/storage.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

static tg_err_t noop_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                            size_t n) {
  (void)conf;
  (void)errstr;
  (void)n;
  *state = (void *)1; /* non-NULL: the worker destroys what it created */
  return TG_OK;
}

static void noop_destroy(void *state) { (void)state; }

static bool noop_compose(void *state, const tg_job_t *job, struct tg_prompt_out *out,
                         struct tg_stage_error *err) {
  (void)state;
  (void)job;
  (void)err;
  memset(out, 0, sizeof(*out));
  memcpy(out->source, "noop", 5);
  return true;
}

static bool noop_paint(void *state, const struct tg_diffusion_req *req, struct tg_blob *image,
                       struct tg_stage_error *err) {
  (void)state;
  (void)req;
  (void)err;
  image->data = NULL;
  image->len = 0;
  return true;
}

static bool noop_ready(void *state, char *why, size_t n) {
  (void)state;
  (void)why;
  (void)n;
  return true;
}

static bool noop_postproc(void *state, const tg_job_t *job, const struct tg_blob *scene,
                          struct tg_variant_image *out, size_t *n_out,
                          struct tg_postproc_report *rep, struct tg_stage_error *err) {
  memset(rep, 0, sizeof(*rep));
  (void)state;
  (void)job;
  (void)scene;
  (void)out;
  (void)err;
  *n_out = 0; /* no images: nothing to upload */
  return true;
}

static bool noop_put(void *state, const char *key, const struct tg_blob *data,
                     const char *content_type, char **url, struct tg_stage_error *err) {
  (void)state;
  (void)key;
  (void)data;
  (void)content_type;
  (void)err;
  *url = strdup("noop://");
  return *url != NULL;
}

static const struct tg_prompt_ops noop_prompt = {"noop", noop_create, noop_destroy, noop_compose};
static const struct tg_diffusion_ops noop_diffusion = {"noop", noop_create, noop_destroy,
                                                       noop_paint, noop_ready};
static const struct tg_postproc_ops noop_postproc_ops = {"noop", noop_create, noop_destroy,
                                                         noop_postproc};
static const struct tg_storage_ops noop_storage = {"noop", noop_create, noop_destroy, noop_put};

static const struct tg_stage_set noop_stage_set = {
  .name = "noop-bench",
  .prompt = &noop_prompt,
  .diffusion = &noop_diffusion,
  .postproc = &noop_postproc_ops,
  .storage = &noop_storage,
};

int main(int argc, char **argv) { return tg_worker_main(argc, argv, &noop_stage_set); }
