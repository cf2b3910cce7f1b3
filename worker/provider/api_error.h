/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_error.h - how a failed call to a model provider (DashScope native or
 * compatible mode, any OpenAI-compatible API, ComfyUI) becomes a stage
 * error: the wire code, and whether this instance is retryable, decided by
 * its cause (DESIGN.md's error table), plus the Retry-After the provider
 * asked for.
 */
#ifndef TG_API_ERROR_H
#define TG_API_ERROR_H

#include "tg_err.h"

#include <stdbool.h>
#include <stdint.h>

/* What is known about one failed call. */
struct tg_api_failure {
  bool no_answer;            /* connection refused or reset, timeout: no HTTP status */
  int http_status;           /* the status when there was an answer */
  const char *provider_code; /* DashScope "code" ("Throttling.RateQuota", ...) or OpenAI
                                "error.code"/"error.type"; NULL when none */
};

/* The verdict. */
struct tg_api_verdict {
  tg_code_t code;            /* the stage's own code, or content_rejected */
  bool retryable;
  const char *why;           /* a short reason for the message, static text */
};

/**
 * tg_api_classify() - decide code and retryability of a failed call
 * @f:          the failure
 * @stage_code: the stage's code (prompt_failed, diffusion_failed)
 * @out:        the verdict
 *
 * Retryable: no answer, 408, 429 throttling (not an exhausted quota:
 * Throttling.AllocationQuota, insufficient_quota), 5xx. Not retryable: a
 * bad key or parameter, any other 4xx. Content moderation
 * (DataInspectionFailed, data_inspection_failed, content_filter) gives
 * content_rejected, never retried.
 */
void tg_api_classify(const struct tg_api_failure *f, tg_code_t stage_code,
                     struct tg_api_verdict *out);

/**
 * tg_retry_after_ms() - the wait a Retry-After header asks for
 * @value:  the header's value: delay-seconds or an HTTP-date; NULL when absent
 * @now_ms: the current wall-clock time, for an HTTP-date
 * @max_ms: the longest wait honoured (a larger one is capped)
 *
 * Return: the wait in ms (0 for a date in the past), or -1 when the value
 * is absent or not understood.
 */
int64_t tg_retry_after_ms(const char *value, int64_t now_ms, int64_t max_ms);

#endif
