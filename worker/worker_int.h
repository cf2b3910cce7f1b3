/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker_int.h - the worker's insides shared by worker.c (lifecycle,
 * consumer, housekeeping), stages.c (the stage runners) and finish.c (what
 * happens to a job at the end): the job context that travels through the
 * pipeline and the worker state.
 */
#ifndef TG_WORKER_INT_H
#define TG_WORKER_INT_H

#include "bqueue.h"
#include "diffusion/diffusion.h"
#include "http.h"
#include "metrics.h"
#include "postproc/postproc.h"
#include "prompt/prompt.h"
#include "storage/storage.h"
#include "tg_transport.h"
#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>

/* One job on its way through the pipeline. */
struct job {
  tg_delivery_t d;                 /* owned; d.job is NULL for an invalid payload */
  struct tg_prompt_out prompt;
  struct tg_blob scene;
  struct tg_variant_image variants[TG_MAX_VARIANTS];
  struct tg_postproc_report postproc; /* what the post-process stage did */
  size_t n_variants;
  char *urls[TG_MAX_VARIANTS];
  char *keys[TG_MAX_VARIANTS];
  int64_t seed;
  const char *seed_policy;         /* "job", or diffusion.seed_policy */
  bool failed;
  enum tg_stage_id failed_stage;
  const char *failed_stage_name;   /* "input", "prompt", ... */
  struct tg_stage_error err;
  bool duplicate;                  /* a final result already exists */
  atomic_bool lost;                /* the lease went to another consumer: drop */
  atomic_bool settled;             /* the finisher or a hand-back took it on: one acts */
  int64_t taken_wall_ms;
  int64_t stage_ms[TG_STAGE__COUNT];
  struct job *prev, *next;         /* the in-flight list */
  struct job *reclaimed_next;      /* the list of reclaimed jobs waiting for dispatch */
};

/* The stage backends and their states. */
struct stages {
  const struct tg_prompt_ops *prompt;
  void *prompt_state;
  const struct tg_diffusion_ops *diffusion;
  void *diffusion_state;
  const struct tg_postproc_ops *postproc;
  void *postproc_state;
  const struct tg_storage_ops *storage;
  void *storage_state;
};

struct tg_worker_s {
  struct tg_worker_conf conf;
  struct stages st;
  tg_transport_t *taker;           /* the first consumer thread (takers[0]) */
  tg_transport_t *takers[TG_WORKER_MAX_TAKERS]; /* one per consumer thread */
  tg_transport_t *finisher;        /* finisher thread */
  tg_transport_t *keeper;          /* housekeeping thread and hand-back */
  tg_bqueue_t *q[TG_STAGE__COUNT]; /* input queue of each stage */
  tg_bqueue_t *q_finish;
  const char *stage_set_name;      /* "config", or the name of a handed-in stage set */
  pthread_mutex_t lock;            /* guards the in-flight list */
  pthread_cond_t slot_free;        /* signalled when a job leaves the in-flight list */
  int reserved;                    /* window slots consumer threads are taking for */
  atomic_bool history_read;        /* takers[0] has read the consumer's old entries */
  struct job *inflight;
  int n_inflight;
  struct job *reclaimed;           /* admitted by the keeper, dispatched by the consumer */
  atomic_bool stopping;
  atomic_bool queue_ok;
  atomic_bool queue_broken;     /* the transport failed for good: drain and exit 1 */
  char queue_broken_why[512];   /* under lock */
  atomic_bool diffusion_ok;
  char diffusion_why[256];
  tg_http_t *http;
};

/* stages.c */
bool tg_stage_run(tg_worker_t *w, enum tg_stage_id s, struct job *j);
bool tg_job_past_deadline(const struct job *j);
void tg_job_fail(struct job *j, const char *stage, tg_code_t code, bool retryable,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* finish.c */
tg_result_t *tg_job_result(const tg_worker_t *w, const struct job *j);
void tg_job_finish(tg_worker_t *w, tg_transport_t *t, struct job *j);
void tg_jobs_finish(tg_worker_t *w, tg_transport_t *t, struct job **jobs, int count);
void tg_job_free(struct job *j);

#endif
