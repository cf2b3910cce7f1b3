/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - counters, gauges and latency histograms of the worker, kept
 * in C11 atomics and rendered in the Prometheus text format.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>

static const int64_t buckets_ms[] = {10,   50,    100,   250,   500,    1000,  2500,
                                     5000, 10000, 30000, 60000, 120000, 300000};
#define N_BUCKETS (sizeof(buckets_ms) / sizeof(buckets_ms[0]))

static atomic_llong jobs[TG_OUTCOME__COUNT][TG_CODE__COUNT];
static atomic_llong stage_buckets[TG_STAGE__COUNT][N_BUCKETS + 1];
static atomic_llong stage_sum_ms[TG_STAGE__COUNT];
static atomic_llong stage_count[TG_STAGE__COUNT];
static atomic_int stage_inflight[TG_STAGE__COUNT];
static atomic_llong taken;

static const char *const outcome_names[TG_OUTCOME__COUNT] = {
  "succeeded", "failed", "retried", "dead_lettered", "duplicate", "handed_back"};

const char *tg_stage_name(enum tg_stage_id s) {
  static const char *const names[TG_STAGE__COUNT] = {"prompt", "diffusion", "postproc",
                                                     "upload"};
  return (unsigned)s < TG_STAGE__COUNT ? names[s] : "unknown";
}

void tg_metrics_job(enum tg_job_outcome outcome, tg_code_t code) {
  if ((unsigned)outcome >= TG_OUTCOME__COUNT)
    return;
  if (outcome == TG_OUTCOME_SUCCEEDED || outcome == TG_OUTCOME_DUPLICATE ||
      (unsigned)code >= TG_CODE__COUNT)
    code = 0;
  atomic_fetch_add(&jobs[outcome][code], 1);
}

void tg_metrics_stage(enum tg_stage_id s, int64_t ms) {
  if ((unsigned)s >= TG_STAGE__COUNT)
    return;
  size_t b = 0;
  while (b < N_BUCKETS && ms > buckets_ms[b])
    b++;
  atomic_fetch_add(&stage_buckets[s][b], 1);
  atomic_fetch_add(&stage_sum_ms[s], ms);
  atomic_fetch_add(&stage_count[s], 1);
}

void tg_metrics_inflight(enum tg_stage_id s, int delta) {
  if ((unsigned)s < TG_STAGE__COUNT)
    atomic_fetch_add(&stage_inflight[s], delta);
}

void tg_metrics_count_taken(int n) { atomic_fetch_add(&taken, n); }

void tg_metrics_render(FILE *f, const char *env) {
  fprintf(f, "# HELP tripgen_jobs_total Jobs that left this worker, by outcome and error code.\n"
             "# TYPE tripgen_jobs_total counter\n");
  for (int o = 0; o < TG_OUTCOME__COUNT; o++) {
    bool with_code = o != TG_OUTCOME_SUCCEEDED && o != TG_OUTCOME_DUPLICATE;
    for (int c = 0; c < (with_code ? TG_CODE__COUNT : 1); c++) {
      long long v = atomic_load(&jobs[o][c]);
      if (with_code)
        fprintf(f, "tripgen_jobs_total{env=\"%s\",status=\"%s\",code=\"%s\"} %lld\n", env,
                outcome_names[o], tg_code_info((tg_code_t)c)->name, v);
      else
        fprintf(f, "tripgen_jobs_total{env=\"%s\",status=\"%s\",code=\"\"} %lld\n", env,
                outcome_names[o], v);
    }
  }
  fprintf(f, "# HELP tripgen_jobs_taken_total Jobs received from the queue.\n"
             "# TYPE tripgen_jobs_taken_total counter\n"
             "tripgen_jobs_taken_total{env=\"%s\"} %lld\n", env, (long long)atomic_load(&taken));
  fprintf(f, "# HELP tripgen_stage_inflight Jobs inside each stage now.\n"
             "# TYPE tripgen_stage_inflight gauge\n");
  for (int s = 0; s < TG_STAGE__COUNT; s++)
    fprintf(f, "tripgen_stage_inflight{env=\"%s\",stage=\"%s\"} %d\n", env, tg_stage_name(s),
            atomic_load(&stage_inflight[s]));
  fprintf(f, "# HELP tripgen_stage_duration_seconds Time one job spent in a stage.\n"
             "# TYPE tripgen_stage_duration_seconds histogram\n");
  for (int s = 0; s < TG_STAGE__COUNT; s++) {
    long long cum = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++) {
      cum += atomic_load(&stage_buckets[s][b]);
      if (b < N_BUCKETS)
        fprintf(f, "tripgen_stage_duration_seconds_bucket{env=\"%s\",stage=\"%s\",le=\"%g\"} %lld\n",
                env, tg_stage_name(s), (double)buckets_ms[b] / 1000.0, cum);
      else
        fprintf(f, "tripgen_stage_duration_seconds_bucket{env=\"%s\",stage=\"%s\",le=\"+Inf\"} %lld\n",
                env, tg_stage_name(s), cum);
    }
    fprintf(f, "tripgen_stage_duration_seconds_sum{env=\"%s\",stage=\"%s\"} %.3f\n", env,
            tg_stage_name(s), (double)atomic_load(&stage_sum_ms[s]) / 1000.0);
    fprintf(f, "tripgen_stage_duration_seconds_count{env=\"%s\",stage=\"%s\"} %lld\n", env,
            tg_stage_name(s), (long long)atomic_load(&stage_count[s]));
  }
}
