/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_call.h - one call to a model provider's HTTP API (DashScope native
 * and compatible mode, OpenAI-compatible, ComfyUI), the way every backend
 * makes it: behind the backend's circuit breaker and fleet-wide limits,
 * bounded in time and size, retried within the stage when the failure is
 * retryable (backoff doubling from 200 ms, or the provider's Retry-After
 * when longer), and otherwise turned into a stage error by its cause
 * (api_error.h) with the provider's code, message and request_id - never
 * a key - in the message.
 */
#ifndef TG_API_CALL_H
#define TG_API_CALL_H

#include "http_client.h"
#include "provider/breaker.h"
#include "provider/fleet_limit.h"
#include "stage.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* A backend as the calls see it. */
struct tg_provider {
  const char *name;             /* "dashscope", "openai", "wanx", "comfyui" */
  tg_code_t stage_code;         /* prompt_failed, diffusion_failed */
  tg_breaker_t *breaker;        /* NULL: none */
  tg_fleet_limit_t *limit;      /* NULL: none */
  int retries;                  /* in-stage retries of a retryable failure */
  int64_t timeout_ms;           /* one attempt */
  int64_t max_retry_after_ms;   /* a longer Retry-After ends the stage instead */
};

/* One request. */
struct tg_api_request {
  const char *request_id;       /* the job's, for logs */
  const char *what;             /* "chat", "submit", "task", ...: logs and messages */
  const char *method;
  const char *url;
  const char *body;             /* NULL: none */
  const char *const *headers;   /* "Name: value", NULL-terminated; may hold the key */
  size_t max_response;
  bool take_token;              /* count against the fleet's requests per second */
  bool hold_slot;               /* hold a fleet concurrency slot during the call */
  int64_t deadline_ms;          /* monotonic; 0 = none */
};

/**
 * tg_api_call() - make the call, retrying what is worth retrying
 * @p:    the backend
 * @r:    the request
 * @json: set to the 2xx response's body parsed as a JSON object (caller
 *        json_decref()s); a 2xx body that is not a JSON object is a
 *        retryable failure
 * @err:  on failure: code and retryability by cause, a message such as
 *        "dashscope chat: HTTP 429 Throttling.RateQuota: Requests rate limit
 *        exceeded (request_id 7d3c...)"
 *
 * A refused breaker fails at once (retryable, no call made); a fleet limit
 * whose wait would pass the deadline fails retryably too.
 *
 * Return: true on a 2xx answer with a JSON object body.
 */
bool tg_api_call(const struct tg_provider *p, const struct tg_api_request *r, json_t **json,
                 struct tg_stage_error *err);

/**
 * tg_api_error_fields() - the provider's code, message and request_id in an
 * error body of any of the known shapes
 * @body:  the body (may be NULL or not JSON)
 * @len:   its length
 * @code:  out: DashScope "code", or OpenAI "error.code" / "error.type"; "" when none
 * @cn:    its size
 * @msg:   out: the provider's message; "" when none
 * @mn:    its size
 * @rid:   out: the provider's request_id; "" when none
 * @rn:    its size
 */
void tg_api_error_fields(const char *body, size_t len, char *code, size_t cn, char *msg,
                         size_t mn, char *rid, size_t rn);

/**
 * tg_mask_keys() - mask what looks like a key in a provider's message, in
 * place: "sk-..." and "Bearer ..." tokens become "sk-***" and "Bearer ***"
 * (providers sometimes echo part of a key)
 * @s: the message
 */
void tg_mask_keys(char *s);

/**
 * tg_secret_get() - a secret from the environment: the variable @name, or
 * else the file named by @name + "_FILE" (trailing newlines dropped)
 * @name: e.g. "DASHSCOPE_API_KEY"
 * @buf:  out
 * @n:    its size
 * @why:  when there is none: why (names the variable or file, never a value)
 * @wn:   its size
 *
 * A value that does not fit, or holds spaces or control characters (it
 * goes into a header), is refused rather than cut.
 *
 * Return: true when found and usable; the value is never logged.
 */
bool tg_secret_get(const char *name, char *buf, size_t n, char *why, size_t wn);

#endif
