/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stages.c - what each pipeline stage does to a job: call its backend,
 * keep what it produced in the job, or record why it failed.
 */
#include "tg_log.h"
#include "tg_time.h"
#include "worker_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

bool tg_job_past_deadline(const struct job *j) {
  return j->d.job && j->d.job->deadline_ms && tg_now_ms() > j->d.job->deadline_ms;
}

/* Whether a stage that failed retryably was ended by the job's deadline: a
 * call cut to the time left may end TG_DEADLINE_SLACK_MS early. A permanent
 * error keeps its own cause. */
static bool deadline_ended(const struct job *j, const struct tg_stage_error *err) {
  return err->retryable && j->d.job && j->d.job->deadline_ms &&
         tg_now_ms() + TG_DEADLINE_SLACK_MS >= j->d.job->deadline_ms;
}

void tg_job_fail(struct job *j, const char *stage, tg_code_t code, bool retryable,
                 const char *fmt, ...) {
  va_list ap;
  j->failed = true;
  j->failed_stage_name = stage;
  j->err.code = code;
  j->err.retryable = retryable;
  va_start(ap, fmt);
  vsnprintf(j->err.message, sizeof(j->err.message), fmt, ap);
  va_end(ap);
}

static uint64_t fnv1a(uint64_t h, const char *s) {
  for (const char *p = s; p && *p; p++)
    h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  return h;
}

/* The seed, 31 bits (every diffusion backend takes it): the job's own, or by
 * diffusion.seed_policy - "request": FNV-1a of request_id and generation (a
 * redelivery paints the same image), "trip": of trip_id (every request for a
 * trip paints alike), "fixed": diffusion.seed, "random": a fresh one each
 * attempt. Sets *policy to what decided it. */
static int64_t job_seed(const struct tg_worker_conf *conf, const tg_job_t *job,
                        const char **policy) {
  if (job->options.has_seed) {
    *policy = "job";
    return job->options.seed;
  }
  *policy = conf->seed_policy;
  uint64_t h = 0xcbf29ce484222325ULL;
  if (strcmp(conf->seed_policy, "fixed") == 0)
    return conf->fixed_seed;
  if (strcmp(conf->seed_policy, "random") == 0) {
    if (getrandom(&h, sizeof(h), 0) != (ssize_t)sizeof(h))
      h ^= (uint64_t)tg_now_ms() * 0x9E3779B97F4A7C15ULL;
    return (int64_t)(h & 0x7FFFFFFF);
  }
  if (strcmp(conf->seed_policy, "trip") == 0) {
    h = fnv1a(h, job->trip ? job->trip->trip_id : job->request_id);
  } else {
    h = fnv1a(h, job->request_id);
    h = (h ^ (uint64_t)job->generation) * 0x100000001b3ULL;
  }
  return (int64_t)(h & 0x7FFFFFFF);
}

static bool run_prompt(tg_worker_t *w, struct job *j, struct tg_stage_error *err) {
  return w->st.prompt->compose(w->st.prompt_state, j->d.job, &j->prompt, err);
}

static bool run_diffusion(tg_worker_t *w, struct job *j, struct tg_stage_error *err) {
  const tg_job_t *job = j->d.job;
  char prefix[160];
  snprintf(prefix, sizeof(prefix), "tripgen/%s/%s", job->env, job->request_id);
  j->seed = job_seed(&w->conf, job, &j->seed_policy);
  int64_t deadline = tg_mono_ms() + w->conf.diffusion_timeout_ms;
  if (job->deadline_ms) {
    int64_t left = job->deadline_ms - tg_now_ms();
    if (tg_mono_ms() + left < deadline)
      deadline = tg_mono_ms() + (left > 0 ? left : 1);
  }
  struct tg_diffusion_req req = {
    .job = job,
    .prompt = j->prompt.prompt,
    .negative_prompt = j->prompt.negative_prompt,
    .seed = j->seed,
    .width = job->options.width,
    .height = job->options.height,
    .filename_prefix = prefix,
    .deadline_mono_ms = deadline,
  };
  return w->st.diffusion->paint(w->st.diffusion_state, &req, &j->scene, err);
}

static bool run_postproc(tg_worker_t *w, struct job *j, struct tg_stage_error *err) {
  bool ok = w->st.postproc->run(w->st.postproc_state, j->d.job, &j->scene, j->variants,
                                &j->n_variants, &j->postproc, err);
  tg_blob_free(&j->scene); /* the scene is no longer needed either way */
  return ok;
}

static bool run_upload(tg_worker_t *w, struct job *j, struct tg_stage_error *err) {
  const tg_job_t *job = j->d.job;
  for (size_t i = 0; i < j->n_variants; i++) {
    struct tg_variant_image *v = &j->variants[i];
    char key[512], why[256];
    if (!tg_object_key(job->env, job->enqueued_at_ms, job->request_id, v->variant, v->ext, key,
                       sizeof(key), why, sizeof(why))) {
      tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "object key: %s", why);
      return false;
    }
    /* the guard: under this worker's env (its config, not the job's), the shape of a key */
    if (!tg_storage_key_ok(w->conf.env, key, why, sizeof(why))) {
      tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "object key refused: %s", why);
      return false;
    }
    char *url = NULL;
    if (!w->st.storage->put(w->st.storage_state, key, &v->data, v->content_type, &url, err))
      return false;
    free(j->urls[i]);
    free(j->keys[i]);
    j->urls[i] = url;
    if (!(j->keys[i] = strdup(key))) {
      tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "out of memory");
      return false;
    }
  }
  return true;
}

bool tg_stage_run(tg_worker_t *w, enum tg_stage_id s, struct job *j) {
  static bool (*const run[TG_STAGE__COUNT])(tg_worker_t *, struct job *,
                                            struct tg_stage_error *) = {
    [TG_STAGE_PROMPT] = run_prompt,
    [TG_STAGE_DIFFUSION] = run_diffusion,
    [TG_STAGE_POSTPROC] = run_postproc,
    [TG_STAGE_UPLOAD] = run_upload,
  };
  if (tg_job_past_deadline(j)) {
    tg_job_fail(j, tg_stage_name(s), TG_CODE_DEADLINE_EXCEEDED, false,
                "deadline passed before the %s stage", tg_stage_name(s));
    return false;
  }
  struct tg_stage_error err = {.code = TG_CODE_INTERNAL, .retryable = true};
  tg_metrics_inflight(s, +1);
  int64_t t0 = tg_mono_ms();
  bool ok = run[s](w, j, &err);
  j->stage_ms[s] = tg_mono_ms() - t0;
  tg_metrics_inflight(s, -1);
  tg_metrics_stage(s, j->stage_ms[s]);
  if (!ok && deadline_ended(j, &err)) { /* the deadline, not the backend, ended it */
    tg_stage_fail(&err, TG_CODE_DEADLINE_EXCEEDED, false, "deadline passed during the %s stage",
                  tg_stage_name(s));
  }
  if (!ok) {
    j->failed = true;
    j->failed_stage = s;
    j->failed_stage_name = tg_stage_name(s);
    j->err = err;
    char q[600];
    tg_log(TG_WARN, "event=stage_failed request_id=%s stage=%s code=%s retryable=%s err=%s",
           j->d.request_id, tg_stage_name(s), tg_code_info(err.code)->name,
           err.retryable ? "true" : "false", tg_logq(q, sizeof(q), err.message));
  } else {
    tg_log(TG_DEBUG, "event=stage_done request_id=%s stage=%s ms=%lld", j->d.request_id,
           tg_stage_name(s), (long long)j->stage_ms[s]);
  }
  return ok;
}
