/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prompt.h - the prompt stage: turns a job's trip into the positive and
 * negative prompts of the diffusion model. Backends sit behind a const ops
 * table, one file each: template.c (built-in, offline, deterministic),
 * dashscope.c (qwen on DashScope's native API) and openai.c (any
 * OpenAI-compatible chat endpoint); the two LLM backends share llm.c.
 */
#ifndef TG_PROMPT_H
#define TG_PROMPT_H

#include "config.h"
#include "stage.h"
#include "tg_job.h"
#include "tg_result.h"

/* What the stage produces. */
struct tg_prompt_out {
  char *prompt;           /* malloc()ed */
  char *negative_prompt;  /* malloc()ed */
  char source[16];        /* "template", "dashscope", "openai" */
  bool has_usage;         /* an LLM wrote it: usage is filled */
  struct tg_prompt_usage usage;
};

struct tg_prompt_ops {
  const char *name;
  tg_err_t (*create)(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n);
  void (*destroy)(void *state);
  /* true on success; false with err filled */
  bool (*compose)(void *state, const tg_job_t *job, struct tg_prompt_out *out,
                  struct tg_stage_error *err);
};

extern const struct tg_prompt_ops tg_prompt_template;
extern const struct tg_prompt_ops tg_prompt_dashscope;
extern const struct tg_prompt_ops tg_prompt_openai;

/**
 * tg_prompt_find() - the backend of a name
 * @name: e.g. "template"
 *
 * Return: the ops, or NULL.
 */
const struct tg_prompt_ops *tg_prompt_find(const char *name);

/**
 * tg_prompt_out_free() - free the strings of a prompt (NULL-safe)
 * @p: the prompt
 */
void tg_prompt_out_free(struct tg_prompt_out *p);

/**
 * tg_template_prompt() - the built-in composer: a deterministic English
 * prompt from a trip
 * @trip:  the trip
 * @style: style name from the job or trip (NULL: "default")
 *
 * A famous landmark of a city on the route, the weather as light and
 * palette, the season from the start date, the mood from the text and tag,
 * realistic and high-definition wording, and an explicit "no cars".
 *
 * Return: a malloc()ed prompt, or NULL when out of memory.
 */
char *tg_template_prompt(const tg_trip_t *trip, const char *style);

#endif
