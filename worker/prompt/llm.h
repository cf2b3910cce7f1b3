/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llm.h - what the two LLM prompt backends share: the system prompt file,
 * the key, the provider guard (breaker, fleet-wide limits), the call, the
 * clean-up of the answer and the fallback to the built-in template. A
 * backend file only says how its dialect (DashScope native, OpenAI chat)
 * spells the request and where the answer and usage are in the reply.
 */
#ifndef TG_PROMPT_LLM_H
#define TG_PROMPT_LLM_H

#include "prompt/prompt.h"

#include <jansson.h>

/* How one API spells a chat call. */
struct tg_llm_dialect {
  const char *name;           /* "dashscope", "openai": prompt_source and metrics */
  const char *key_required;   /* NULL: the key is optional (vLLM, Ollama) */
  /* the chat URL from the configured base */
  void (*url)(const struct tg_worker_conf *conf, char *out, size_t n);
  /* the request body */
  json_t *(*body)(const struct tg_worker_conf *conf, const char *system, const char *user);
  /* the answer's text (borrowed from root) and usage; false with why, and
   * *refused set when the model's content filter withheld the answer */
  bool (*answer)(json_t *root, const char **text, struct tg_prompt_usage *usage, bool *refused,
                 char *why, size_t n);
};

/**
 * tg_llm_create() - the state of an LLM backend
 * @d:      its dialect
 * @conf:   the worker's configuration
 * @state:  out
 * @errstr: reason on failure (a missing key names its variable, never a value)
 * @n:      its size
 *
 * Return: TG_OK, TG_ERR_INVAL or TG_ERR_NOMEM.
 */
tg_err_t tg_llm_create(const struct tg_llm_dialect *d, const struct tg_worker_conf *conf,
                       void **state, char *errstr, size_t n);

/**
 * tg_llm_destroy() - free the state (NULL-safe)
 * @state: the state
 */
void tg_llm_destroy(void *state);

/**
 * tg_llm_compose() - write a job's prompt with the LLM
 * @state: the state
 * @job:   the job
 * @out:   the prompt, its source and usage
 * @err:   why it failed
 *
 * When the call fails for good (the stage's retries spent, or not
 * retryable) and prompt.fallback is "template", the built-in prompt is used
 * instead (source "template") - except for content moderation, which is
 * the provider's verdict on the trip and ends the job as content_rejected.
 *
 * Return: true with *out filled.
 */
bool tg_llm_compose(void *state, const tg_job_t *job, struct tg_prompt_out *out,
                    struct tg_stage_error *err);

#endif
