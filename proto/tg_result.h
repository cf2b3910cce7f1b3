/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_result.h - the result a worker publishes on the output queue.
 *
 * One result per (request_id, generation) becomes visible: the transport
 * stores it with SET-if-absent semantics. A failed result carries the wire
 * error (code, stage, message, retryable); a succeeded one its images.
 */
#ifndef TG_RESULT_H
#define TG_RESULT_H

#include "tg_err.h"
#include "tg_job.h"
#include "tg_limits.h"

#include <stdbool.h>
#include <stdint.h>

#define TG_RESULT_VERSION 1

/* One uploaded image variant. */
struct tg_image {
  char variant[TG_MAX_VARIANT_CHARS + 1];
  char *url;
  char *key;
  int width;
  int height;
  char format[8];    /* "jpeg", "webp", "png" */
  int64_t bytes;
  char sha256[65];   /* lowercase hex */
};

/* Milliseconds spent in each phase. */
struct tg_timings {
  int64_t queued, prompt, diffusion, postproc, upload, total;
};

/* The error of a failed result. */
struct tg_result_error {
  tg_code_t code;
  char *stage;       /* "input", "prompt", "diffusion", "postproc", "upload", "queue" */
  char *message;     /* never holds a secret */
  bool retryable;
};

/* What an LLM prompt backend reports about its call (absent for the template). */
struct tg_prompt_usage {
  char model[TG_MAX_ID_CHARS * 4 + 1];      /* up to TG_MAX_ID_CHARS characters of UTF-8 */
  char request_id[TG_MAX_ID_CHARS * 4 + 1]; /* the provider's; "" when it gave none */
  int64_t input_tokens;
  int64_t output_tokens;
};

typedef struct tg_result {
  char request_id[TG_MAX_REQUEST_ID_CHARS + 1];
  int64_t generation;
  char *trip_id;       /* NULL when the input was not a readable trip */
  char env[TG_MAX_ENV_CHARS + 1];
  bool succeeded;
  struct tg_image images[TG_MAX_VARIANTS];
  size_t n_images;
  char *prompt;
  char *prompt_source; /* "template", "dashscope", "openai" */
  char *negative_prompt;
  bool has_usage;
  struct tg_prompt_usage prompt_usage;
  bool has_seed;
  int64_t seed;
  char seed_policy[TG_MAX_SHORT_CHARS + 1]; /* "job", "request", "trip", "fixed", "random"; "" = none */
  char vehicle_match[TG_MAX_SHORT_CHARS + 1]; /* "exact", "model_color", "default_color", "none"; "" = absent */
  char vehicle_asset[TG_MAX_ID_CHARS + 1];    /* the catalogue file; "" = none */
  int64_t attempt;
  char *worker;
  struct tg_timings timings_ms;
  struct tg_result_error error; /* meaningful when !succeeded */
} tg_result_t;

/**
 * tg_result_for_job() - a new result that answers a job
 * @job: the job (copied from: request_id, generation, trip_id, env, attempt)
 *
 * Return: a result marked succeeded with no images, or NULL when out of memory.
 */
tg_result_t *tg_result_for_job(const tg_job_t *job);

/**
 * tg_result_new() - a new empty result for the given ids
 * @request_id: the request id (1-64 of [A-Za-z0-9_-] for a result that can be
 *              read back; the transport names unreadable entries "idx-<index>")
 * @generation: generation
 * @env:        environment
 *
 * Return: the result, or NULL when out of memory.
 */
tg_result_t *tg_result_new(const char *request_id, int64_t generation, const char *env);

/**
 * tg_result_fail() - mark a result failed
 * @r:         the result
 * @code:      wire error code
 * @stage:     the stage that failed
 * @retryable: whether this error instance may succeed on retry
 * @fmt:       printf format of the message (cut at TG_MAX_ERROR_MESSAGE_CHARS)
 */
void tg_result_fail(tg_result_t *r, tg_code_t code, const char *stage, bool retryable,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/**
 * tg_result_serialize() - the result as compact JSON
 * @r: the result
 *
 * Return: a malloc()ed string, or NULL when out of memory.
 */
char *tg_result_serialize(const tg_result_t *r);

/**
 * tg_result_parse() - parse and validate a result
 * @data:   JSON bytes
 * @len:    their length
 * @errstr: on failure, "<field path>: <reason>"
 * @n:      its size
 *
 * Return: the result, or NULL.
 */
tg_result_t *tg_result_parse(const char *data, size_t len, char *errstr, size_t n);

/**
 * tg_result_destroy() - free a result (NULL-safe)
 * @r: the result
 */
void tg_result_destroy(tg_result_t *r);

#endif
