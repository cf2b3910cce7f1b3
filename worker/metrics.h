/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - the worker's Prometheus metrics: jobs by status and error
 * code, retries and dead letters, per-stage latency histograms and
 * in-flight gauges. Process-wide, lock-free (C11 atomics).
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include "tg_err.h"
#include "tg_transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum tg_stage_id {
  TG_STAGE_PROMPT = 0,
  TG_STAGE_DIFFUSION,
  TG_STAGE_POSTPROC,
  TG_STAGE_UPLOAD,
  TG_STAGE__COUNT
};

/**
 * tg_stage_name() - "prompt", "diffusion", "postproc" or "upload"
 * @s: the stage
 *
 * Return: a static string.
 */
const char *tg_stage_name(enum tg_stage_id s);

/* How a job left this worker. */
enum tg_job_outcome {
  TG_OUTCOME_SUCCEEDED = 0, /* result published */
  TG_OUTCOME_FAILED,        /* failed result published */
  TG_OUTCOME_RETRIED,       /* re-queued for a later attempt */
  TG_OUTCOME_DEAD,          /* failed result + dead letter */
  TG_OUTCOME_DUPLICATE,     /* a final result already existed: acked only */
  TG_OUTCOME_HANDED_BACK,   /* shutdown: returned to the queue */
  TG_OUTCOME__COUNT
};

/**
 * tg_metrics_job() - count a job leaving the worker
 * @outcome: how it left
 * @code:    its error code (ignored for succeeded and duplicate)
 */
void tg_metrics_job(enum tg_job_outcome outcome, tg_code_t code);

/**
 * tg_metrics_stage() - record one stage run
 * @s:  the stage
 * @ms: how long it took
 */
void tg_metrics_stage(enum tg_stage_id s, int64_t ms);

/**
 * tg_metrics_inflight() - move the in-flight gauge of a stage
 * @s:     the stage
 * @delta: +1 when a job enters, -1 when it leaves
 */
void tg_metrics_inflight(enum tg_stage_id s, int delta);

/**
 * tg_metrics_count_taken() - count jobs taken from the queue
 * @n: how many
 */
void tg_metrics_count_taken(int n);

/* Outcomes of one provider call attempt (tg_metrics_provider_call()). */
enum tg_call_outcome {
  TG_CALL_OK = 0,        /* a 2xx answer */
  TG_CALL_RETRIED,       /* failed, tried again within the stage */
  TG_CALL_FAILED,        /* failed, the stage gave up */
  TG_CALL_REFUSED,       /* not made: the breaker is open or a fleet limit's wait too long */
  TG_CALL__COUNT
};

/**
 * tg_metrics_provider_call() - count one call attempt to a provider
 * @backend: "dashscope", "openai", "wanx" or "comfyui" (others are ignored)
 * @outcome: what became of it
 */
void tg_metrics_provider_call(const char *backend, enum tg_call_outcome outcome);

/**
 * tg_metrics_breaker() - a backend's breaker changed state
 * @backend: as above
 * @state:   0 closed, 1 open, 2 half-open
 * @opened:  true when this change opened it (counted)
 */
void tg_metrics_breaker(const char *backend, int state, bool opened);

/**
 * tg_metrics_limit_wait() - time spent waiting for a fleet-wide limit
 * @backend: as above
 * @ms:      the wait
 */
void tg_metrics_limit_wait(const char *backend, int64_t ms);

/**
 * tg_metrics_diffusion_progress() - a sampler progress report (ComfyUI /ws)
 * @value: steps done
 * @max:   steps in all
 */
void tg_metrics_diffusion_progress(int value, int max);

/**
 * tg_metrics_queue() - the queue consumer's holdings (Kafka), refreshed by
 * the housekeeping thread
 * @st: the numbers
 */
void tg_metrics_queue(const struct tg_transport_stats *st);

/**
 * tg_metrics_render() - the metrics in Prometheus text format
 * @f:   where to write
 * @env: the env label
 */
void tg_metrics_render(FILE *f, const char *env);

#endif
