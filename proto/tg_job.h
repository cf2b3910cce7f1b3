/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_job.h - the job: what travels on the input queue.
 *
 * A job wraps a trip with what tripgen needs to process it exactly once in
 * effect: a tripgen-assigned request_id, the generation (bumped by a
 * dead-letter replay), the environment, the attempt number, the enqueue
 * time that fixes the object keys' date, an optional deadline and the
 * rendering options. Jobs are versioned ("v": 1).
 */
#ifndef TG_JOB_H
#define TG_JOB_H

#include "tg_limits.h"
#include "tg_trip.h"

#include <stdbool.h>
#include <stdint.h>

#define TG_JOB_VERSION 1
#define TG_DEFAULT_WIDTH 768
#define TG_DEFAULT_HEIGHT 960
#define TG_DEFAULT_VARIANT "full"

/* Rendering options of a job; defaults filled in by the parser. */
struct tg_job_options {
  int width;
  int height;
  bool has_seed;     /* false: the worker derives one from the job */
  int64_t seed;
  char *style;       /* NULL: the trip's style or the worker default */
  char variants[TG_MAX_VARIANTS][TG_MAX_VARIANT_CHARS + 1];
  size_t n_variants;
};

typedef struct tg_job {
  char request_id[TG_MAX_REQUEST_ID_CHARS + 1];
  int64_t generation;
  char env[TG_MAX_ENV_CHARS + 1];
  char *idempotency_key;
  bool priority;
  int64_t attempt;         /* 1 for the first attempt */
  int64_t enqueued_at_ms;  /* UTC; fixes the date in object keys */
  int64_t deadline_ms;     /* 0: none */
  struct tg_job_options options;
  tg_trip_t *trip;         /* owned */
} tg_job_t;

/**
 * tg_job_new() - wrap a validated trip in a fresh job
 * @trip:       the trip (ownership passes to the job on success)
 * @env:        environment name
 * @request_id: tripgen-assigned id, or NULL to generate one
 * @now_ms:     enqueue time
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: the job (attempt 1, generation 0, default options), or NULL.
 */
tg_job_t *tg_job_new(tg_trip_t *trip, const char *env, const char *request_id, int64_t now_ms,
                     char *errstr, size_t n);

/**
 * tg_job_parse() - parse and validate a job
 * @data:   JSON bytes
 * @len:    their length
 * @errstr: on failure, "<field path>: <reason>"
 * @n:      its size
 *
 * Return: the job, or NULL.
 */
tg_job_t *tg_job_parse(const char *data, size_t len, char *errstr, size_t n);

/**
 * tg_job_serialize() - the job as compact JSON
 * @job: the job
 *
 * Return: a malloc()ed NUL-terminated string, or NULL when out of memory.
 */
char *tg_job_serialize(const tg_job_t *job);

/**
 * tg_job_destroy() - free a job and its trip (NULL-safe)
 * @job: the job
 */
void tg_job_destroy(tg_job_t *job);

/**
 * tg_request_id_generate() - a new unique request id
 * @buf: output, at least TG_MAX_REQUEST_ID_CHARS + 1 bytes
 *
 * The id sorts by creation time: 12 hex digits of milliseconds, '-', and
 * 16 random hex digits.
 */
void tg_request_id_generate(char *buf);

#endif
