/* SPDX-License-Identifier: Apache-2.0 */
/*
 * finish.c - the end of a job (DESIGN.md, "Retries — one owner per kind of
 * failure"): a success or a non-retryable failure is completed (result
 * published, input acked, atomically); a retryable failure is re-queued
 * with attempt+1 after exponential backoff with jitter until max_attempts,
 * then dead-lettered with its last error; a job whose final result already
 * exists is only acked. Queue errors are retried here until they pass.
 */
#include "tg_log.h"
#include "tg_time.h"
#include "worker_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

tg_result_t *tg_job_result(const tg_worker_t *w, const struct job *j) {
  tg_result_t *r = j->d.job ? tg_result_for_job(j->d.job)
                            : tg_result_new(j->d.request_id, 0, w->conf.env);
  if (!r)
    return NULL;
  r->worker = strdup(w->taker ? tg_transport_consumer(w->taker) : "once");
  if (j->prompt.prompt) {
    r->prompt = strdup(j->prompt.prompt);
    r->negative_prompt = j->prompt.negative_prompt ? strdup(j->prompt.negative_prompt) : NULL;
    r->prompt_source = strdup(j->prompt.source);
    r->has_usage = j->prompt.has_usage;
    r->prompt_usage = j->prompt.usage;
  }
  if (*j->postproc.vehicle_match) {
    snprintf(r->vehicle_match, sizeof(r->vehicle_match), "%s", j->postproc.vehicle_match);
    snprintf(r->vehicle_asset, sizeof(r->vehicle_asset), "%s", j->postproc.vehicle_asset);
  }
  if (j->d.job && j->stage_ms[TG_STAGE_DIFFUSION]) {
    r->has_seed = true;
    r->seed = j->seed;
    snprintf(r->seed_policy, sizeof(r->seed_policy), "%s", j->seed_policy);
  }
  int64_t enq = j->d.job ? j->d.job->enqueued_at_ms : j->d.enqueued_at_ms;
  r->timings_ms.queued = enq && j->taken_wall_ms > enq ? j->taken_wall_ms - enq : 0;
  r->timings_ms.prompt = j->stage_ms[TG_STAGE_PROMPT];
  r->timings_ms.diffusion = j->stage_ms[TG_STAGE_DIFFUSION];
  r->timings_ms.postproc = j->stage_ms[TG_STAGE_POSTPROC];
  r->timings_ms.upload = j->stage_ms[TG_STAGE_UPLOAD];
  int64_t now = tg_now_ms();
  r->timings_ms.total = enq && now > enq ? now - enq : 0;
  if (j->failed) {
    tg_result_fail(r, j->err.code, j->failed_stage_name ? j->failed_stage_name : "queue",
                   j->err.retryable, "%s", j->err.message);
    return r;
  }
  for (size_t i = 0; i < j->n_variants && i < TG_MAX_VARIANTS; i++) {
    const struct tg_variant_image *v = &j->variants[i];
    struct tg_image *im = &r->images[i];
    snprintf(im->variant, sizeof(im->variant), "%s", v->variant);
    im->url = j->urls[i] ? strdup(j->urls[i]) : NULL;
    im->key = j->keys[i] ? strdup(j->keys[i]) : NULL;
    im->width = v->width;
    im->height = v->height;
    snprintf(im->format, sizeof(im->format), "%s", v->format);
    im->bytes = (int64_t)v->data.len;
    snprintf(im->sha256, sizeof(im->sha256), "%s", v->sha256);
    r->n_images = i + 1;
  }
  return r;
}

/* Exponential backoff with full jitter in [base/2, base] * 2^(attempt-1). */
static int64_t retry_delay(const struct tg_worker_conf *c, int64_t attempt) {
  int64_t d = c->backoff_base_ms;
  for (int64_t i = 1; i < attempt && d < c->backoff_max_ms; i++)
    d *= 2;
  if (d > c->backoff_max_ms)
    d = c->backoff_max_ms;
  uint32_t r = 0;
  if (getrandom(&r, sizeof(r), 0) != sizeof(r))
    r = (uint32_t)tg_mono_ms();
  return d / 2 + (int64_t)(r % (uint32_t)(d / 2 + 1));
}

enum action { ACT_COMPLETE, ACT_RETRY, ACT_DEAD };

/* Run one queue operation until it passes (the queue may be restarting). */
static bool with_retries(tg_worker_t *w, struct job *j, const char *what,
                         tg_err_t (*op)(tg_worker_t *, tg_transport_t *, struct job *, void *,
                                        char *, size_t),
                         tg_transport_t *t, void *arg) {
  char errstr[512];
  int64_t backoff = 100;
  for (int attempt = 1;; attempt++) {
    tg_err_t err = op(w, t, j, arg, errstr, sizeof(errstr));
    if (err == TG_OK) {
      atomic_store(&w->queue_ok, true);
      return true;
    }
    if (err == TG_ERR_NOT_FOUND) { /* the lease was lost: the job runs elsewhere now */
      tg_log(TG_WARN, "event=job_lost request_id=%s op=%s err=\"%s\"", j->d.request_id, what,
             errstr);
      return false;
    }
    atomic_store(&w->queue_ok, false);
    tg_log(TG_ERROR, "event=finish_failed request_id=%s op=%s attempt=%d err=\"%s\"",
           j->d.request_id, what, attempt, errstr);
    if (!tg_err_retryable(err) || attempt >= 30) {
      tg_transport_abandon(t, &j->d, errstr); /* Redis: reclaimed after the visibility timeout */
      return false;
    }
    tg_sleep_ms(backoff);
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
}

struct publish_arg {
  tg_result_t *r;
  bool dead;
  bool published;
};

static tg_err_t op_publish(tg_worker_t *w, tg_transport_t *t, struct job *j, void *arg,
                           char *errstr, size_t n) {
  struct publish_arg *a = arg;
  (void)w;
  if (a->dead)
    return tg_transport_dead_letter(t, &j->d, a->r, errstr, n);
  return tg_transport_complete(t, &j->d, a->r, &a->published, errstr, n);
}

struct retry_arg {
  tg_job_t *next;
  int64_t due_ms;
};

static tg_err_t op_retry(tg_worker_t *w, tg_transport_t *t, struct job *j, void *arg,
                         char *errstr, size_t n) {
  struct retry_arg *a = arg;
  (void)w;
  return tg_transport_retry_later(t, &j->d, a->next, a->due_ms, errstr, n);
}

static tg_err_t op_ack_done(tg_worker_t *w, tg_transport_t *t, struct job *j, void *arg,
                            char *errstr, size_t n) {
  (void)w;
  return tg_transport_ack_if_done(t, &j->d, j->d.job->generation, arg, errstr, n);
}

/* What the end of a (non-duplicate) job is: published, retried or buried. */
static enum action decide(const tg_worker_t *w, const struct job *j) {
  if (j->failed && j->err.retryable && j->d.job)
    return j->d.job->attempt < w->conf.max_attempts ? ACT_RETRY : ACT_DEAD;
  return ACT_COMPLETE;
}

/* Metrics and the log line of a published (or dead-lettered) result. */
static void report(const struct job *j, const tg_result_t *r, enum action act, bool published) {
  char q[600];
  enum tg_job_outcome o = act == ACT_DEAD                ? TG_OUTCOME_DEAD
                          : !published && !j->failed ? TG_OUTCOME_DUPLICATE
                          : j->failed                ? TG_OUTCOME_FAILED
                                                     : TG_OUTCOME_SUCCEEDED;
  tg_metrics_job(o, j->err.code);
  if (o == TG_OUTCOME_SUCCEEDED)
    /* the key, not the URL: a pre-signed URL carries a signature (and a session token) */
    tg_log(TG_INFO, "event=job_succeeded request_id=%s attempt=%lld total_ms=%lld key=%s",
           j->d.request_id, (long long)r->attempt, (long long)r->timings_ms.total,
           tg_logq(q, sizeof(q), r->n_images && r->images[0].key ? r->images[0].key : ""));
  else if (o == TG_OUTCOME_DUPLICATE)
    tg_log(TG_INFO, "event=job_duplicate request_id=%s (final result already published)",
           j->d.request_id);
  else
    tg_log(TG_WARN, "event=job_%s request_id=%s code=%s stage=%s err=%s",
           o == TG_OUTCOME_DEAD ? "dead_lettered" : "failed", j->d.request_id,
           tg_code_info(j->err.code)->name, r->error.stage,
           tg_logq(q, sizeof(q), r->error.message));
}

void tg_job_finish(tg_worker_t *w, tg_transport_t *t, struct job *j) {
  if (j->duplicate) { /* ack only: never publish anything for a finished request */
    bool acked = false;
    if (with_retries(w, j, "ack_if_done", op_ack_done, t, &acked) && acked) {
      tg_metrics_job(TG_OUTCOME_DUPLICATE, TG_CODE_INTERNAL);
      tg_log(TG_INFO, "event=job_duplicate request_id=%s (final result already published)",
             j->d.request_id);
    } else if (!acked) {
      tg_log(TG_WARN, "event=job_left_pending request_id=%s (its result record vanished: it "
                      "runs again after the visibility timeout)", j->d.request_id);
    }
    return;
  }
  const tg_job_t *job = j->d.job;
  enum action act = decide(w, j);
  if (act != ACT_COMPLETE) {
    if (act == ACT_DEAD) {
      size_t l = strlen(j->err.message);
      snprintf(j->err.message + l, sizeof(j->err.message) - l, " (attempt %lld of %d)",
               (long long)job->attempt, w->conf.max_attempts);
    }
  }
  char q[600];
  if (act == ACT_RETRY) {
    char why[256];
    struct retry_arg a = {tg_job_parse(j->d.payload, j->d.payload_len, why, sizeof(why)),
                          tg_now_ms() + retry_delay(&w->conf, job->attempt)};
    if (!a.next) { /* cannot happen: the payload parsed once already */
      act = ACT_DEAD;
    } else {
      a.next->attempt++;
      if (with_retries(w, j, "retry_later", op_retry, t, &a)) {
        tg_metrics_job(TG_OUTCOME_RETRIED, j->err.code);
        tg_log(TG_WARN, "event=job_retry request_id=%s attempt=%lld delay_ms=%lld code=%s err=%s",
               j->d.request_id, (long long)job->attempt, (long long)(a.due_ms - tg_now_ms()),
               tg_code_info(j->err.code)->name, tg_logq(q, sizeof(q), j->err.message));
      }
      tg_job_destroy(a.next);
      return;
    }
  }
  struct publish_arg a = {tg_job_result(w, j), act == ACT_DEAD, false};
  if (!a.r)
    return;
  if (with_retries(w, j, act == ACT_DEAD ? "dead_letter" : "complete", op_publish, t, &a))
    report(j, a.r, act, a.published);
  tg_result_destroy(a.r);
}

void tg_jobs_finish(tg_worker_t *w, tg_transport_t *t, struct job **jobs, int count) {
  /* plain completions go together: one round trip publishes and acks them all */
  struct job **batch = calloc((size_t)count, sizeof(*batch));
  const tg_delivery_t **ds = calloc((size_t)count, sizeof(*ds));
  tg_result_t **rs = calloc((size_t)count, sizeof(*rs));
  bool *published = calloc((size_t)count, sizeof(*published));
  tg_err_t *errs = calloc((size_t)count, sizeof(*errs));
  bool batching = batch && ds && rs && published && errs;
  int k = 0;
  for (int i = 0; i < count; i++) {
    struct job *j = jobs[i];
    if (!batching || j->duplicate || decide(w, j) != ACT_COMPLETE ||
        !(rs[k] = tg_job_result(w, j))) {
      tg_job_finish(w, t, j);
      continue;
    }
    ds[k] = &j->d;
    batch[k++] = j;
  }
  char errstr[512];
  if (k > 0 && tg_transport_complete_many(t, ds, (const tg_result_t *const *)rs, k, published,
                                          errs, errstr, sizeof(errstr)) != TG_OK)
    tg_log(TG_WARN, "event=complete_batch_failed count=%d err=\"%s\" (completing one by one)",
           k, errstr);
  for (int i = 0; i < k; i++) {
    if (errs[i] == TG_OK) {
      atomic_store(&w->queue_ok, true);
      report(batch[i], rs[i], ACT_COMPLETE, published[i]);
    } else {
      tg_job_finish(w, t, batch[i]); /* with its own retries */
    }
    tg_result_destroy(rs[i]);
  }
  free(batch);
  free(ds);
  free(rs);
  free(published);
  free(errs);
}

void tg_job_free(struct job *j) {
  if (!j)
    return;
  free(j->d.payload);
  tg_job_destroy(j->d.job);
  tg_prompt_out_free(&j->prompt);
  tg_blob_free(&j->scene);
  tg_variant_images_free(j->variants, j->n_variants);
  for (size_t i = 0; i < TG_MAX_VARIANTS; i++) {
    free(j->urls[i]);
    free(j->keys[i]);
  }
  free(j);
}
