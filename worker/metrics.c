/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.c - counters, gauges and latency histograms of the worker, kept
 * in C11 atomics and rendered in the Prometheus text format.
 */
#include "metrics.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

static const int64_t buckets_ms[] = {10,   50,    100,   250,   500,    1000,  2500,
                                     5000, 10000, 30000, 60000, 120000, 300000};
#define N_BUCKETS (sizeof(buckets_ms) / sizeof(buckets_ms[0]))

static atomic_llong jobs[TG_OUTCOME__COUNT][TG_CODE__COUNT];
static atomic_llong stage_buckets[TG_STAGE__COUNT][N_BUCKETS + 1];
static atomic_llong stage_sum_ms[TG_STAGE__COUNT];
static atomic_llong stage_count[TG_STAGE__COUNT];
static atomic_int stage_inflight[TG_STAGE__COUNT];
static atomic_llong taken;

static const char *const backend_names[] = {"dashscope", "openai", "wanx", "comfyui"};
#define N_BACKENDS (sizeof(backend_names) / sizeof(backend_names[0]))
static const char *const call_names[TG_CALL__COUNT] = {"ok", "retried", "failed", "refused"};
static atomic_llong calls[N_BACKENDS][TG_CALL__COUNT];
static atomic_int breaker_state[N_BACKENDS];
static atomic_llong breaker_opened[N_BACKENDS];
static atomic_llong limit_wait_ms[N_BACKENDS];
static atomic_llong limit_waits[N_BACKENDS];
static atomic_llong progress_steps;
static atomic_int progress_permille; /* of the last report */

static int backend_index(const char *name) {
  for (size_t i = 0; name && i < N_BACKENDS; i++)
    if (strcmp(backend_names[i], name) == 0)
      return (int)i;
  return -1;
}

void tg_metrics_provider_call(const char *backend, enum tg_call_outcome outcome) {
  int b = backend_index(backend);
  if (b >= 0 && (unsigned)outcome < TG_CALL__COUNT)
    atomic_fetch_add(&calls[b][outcome], 1);
}

void tg_metrics_breaker(const char *backend, int state, bool opened) {
  int b = backend_index(backend);
  if (b < 0)
    return;
  atomic_store(&breaker_state[b], state);
  if (opened)
    atomic_fetch_add(&breaker_opened[b], 1);
}

void tg_metrics_limit_wait(const char *backend, int64_t ms) {
  int b = backend_index(backend);
  if (b < 0)
    return;
  atomic_fetch_add(&limit_wait_ms[b], ms);
  atomic_fetch_add(&limit_waits[b], 1);
}

void tg_metrics_diffusion_progress(int value, int max) {
  atomic_fetch_add(&progress_steps, 1);
  if (max > 0 && value >= 0)
    atomic_store(&progress_permille, (int)((int64_t)value * 1000 / max));
}

static void render_providers(FILE *f, const char *env) {
  fprintf(f, "# HELP tripgen_provider_calls_total Calls to model providers, by outcome.\n"
             "# TYPE tripgen_provider_calls_total counter\n");
  for (size_t b = 0; b < N_BACKENDS; b++)
    for (int o = 0; o < TG_CALL__COUNT; o++)
      fprintf(f, "tripgen_provider_calls_total{env=\"%s\",backend=\"%s\",outcome=\"%s\"} %lld\n",
              env, backend_names[b], call_names[o], (long long)atomic_load(&calls[b][o]));
  fprintf(f, "# HELP tripgen_breaker_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
             "# TYPE tripgen_breaker_state gauge\n");
  for (size_t b = 0; b < N_BACKENDS; b++)
    fprintf(f, "tripgen_breaker_state{env=\"%s\",backend=\"%s\"} %d\n", env, backend_names[b],
            atomic_load(&breaker_state[b]));
  fprintf(f, "# HELP tripgen_breaker_opened_total Times a backend's breaker opened.\n"
             "# TYPE tripgen_breaker_opened_total counter\n");
  for (size_t b = 0; b < N_BACKENDS; b++)
    fprintf(f, "tripgen_breaker_opened_total{env=\"%s\",backend=\"%s\"} %lld\n", env,
            backend_names[b], (long long)atomic_load(&breaker_opened[b]));
  fprintf(f, "# HELP tripgen_limit_wait_seconds_total Time spent waiting for fleet-wide limits.\n"
             "# TYPE tripgen_limit_wait_seconds_total counter\n");
  for (size_t b = 0; b < N_BACKENDS; b++)
    fprintf(f, "tripgen_limit_wait_seconds_total{env=\"%s\",backend=\"%s\"} %.3f\n", env,
            backend_names[b], (double)atomic_load(&limit_wait_ms[b]) / 1000.0);
  fprintf(f, "# HELP tripgen_limit_waits_total Calls that waited for a fleet-wide limit.\n"
             "# TYPE tripgen_limit_waits_total counter\n");
  for (size_t b = 0; b < N_BACKENDS; b++)
    fprintf(f, "tripgen_limit_waits_total{env=\"%s\",backend=\"%s\"} %lld\n", env,
            backend_names[b], (long long)atomic_load(&limit_waits[b]));
  fprintf(f, "# HELP tripgen_diffusion_progress_reports_total Sampler progress reports received.\n"
             "# TYPE tripgen_diffusion_progress_reports_total counter\n"
             "tripgen_diffusion_progress_reports_total{env=\"%s\"} %lld\n"
             "# HELP tripgen_diffusion_progress_ratio Progress of the latest report (0..1).\n"
             "# TYPE tripgen_diffusion_progress_ratio gauge\n"
             "tripgen_diffusion_progress_ratio{env=\"%s\"} %.3f\n",
          env, (long long)atomic_load(&progress_steps), env,
          (double)atomic_load(&progress_permille) / 1000.0);
}

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

static atomic_bool queue_known;
static atomic_int queue_held, queue_partitions, queue_paused;

void tg_metrics_queue(const struct tg_transport_stats *st) {
  atomic_store(&queue_held, st->held);
  atomic_store(&queue_partitions, st->partitions);
  atomic_store(&queue_paused, st->paused);
  atomic_store(&queue_known, true);
}

static void render_queue(FILE *f, const char *env) {
  if (!atomic_load(&queue_known))
    return;
  fprintf(f, "# HELP tripgen_kafka_records_held Records received and not finished "
             "(buffered + running).\n# TYPE tripgen_kafka_records_held gauge\n"
             "tripgen_kafka_records_held{env=\"%s\"} %d\n"
             "# HELP tripgen_kafka_partitions_assigned Partitions this worker consumes.\n"
             "# TYPE tripgen_kafka_partitions_assigned gauge\n"
             "tripgen_kafka_partitions_assigned{env=\"%s\"} %d\n"
             "# HELP tripgen_kafka_partitions_paused Partitions paused at kafka.max_in_flight.\n"
             "# TYPE tripgen_kafka_partitions_paused gauge\n"
             "tripgen_kafka_partitions_paused{env=\"%s\"} %d\n",
          env, atomic_load(&queue_held), env, atomic_load(&queue_partitions), env,
          atomic_load(&queue_paused));
}

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
  render_providers(f, env);
  render_queue(f, env);
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
