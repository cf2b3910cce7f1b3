/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llm.c - the shared body of the LLM prompt backends: at create, read the
 * system prompt and the key, set up the breaker and the env's fleet-wide
 * limits; per job, render the trip, make the call (api_call.c: limits,
 * breaker, retries by cause, Retry-After), clean the answer, record model,
 * tokens and the provider's request_id, and fall back to the template when
 * configured.
 */
#include "prompt/llm.h"
#include "prompt/llm_text.h"
#include "provider/api_call.h"
#include "tg_file.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SYSTEM_PROMPT_BYTES (64 * 1024)
#define MAX_LLM_RESPONSE (1 << 20)

struct llm {
  const struct tg_llm_dialect *d;
  const struct tg_worker_conf *conf;
  char url[TG_CONF_STR + 64];
  char *system;
  char auth[600];           /* "Authorization: Bearer ..." or "" */
  bool fallback;
  tg_breaker_t *breaker;
  tg_fleet_limit_t *limit;
  struct tg_provider provider;
  void *template_state;
};

/* The system prompt: a bounded text file without NUL bytes, not empty. */
static char *read_text_file(const char *path, size_t max, char *why, size_t n) {
  size_t len;
  char *buf = tg_read_file(path, max, &len, why, n);
  if (buf && (strlen(buf) != len || !len)) {
    snprintf(why, n, len ? "holds a NUL byte" : "is empty");
    free(buf);
    return NULL;
  }
  return buf;
}

/* Whether a key was given at all (in NAME or NAME_FILE), usable or not. */
static bool key_given(const char *name) {
  char file_var[160];
  snprintf(file_var, sizeof(file_var), "%s_FILE", name);
  const char *v = getenv(name), *f = getenv(file_var);
  return (v && *v) || (f && *f);
}

void tg_llm_destroy(void *state) {
  struct llm *l = state;
  if (!l)
    return;
  if (l->template_state)
    tg_prompt_template.destroy(l->template_state);
  tg_breaker_destroy(l->breaker);
  tg_fleet_limit_destroy(l->limit);
  free(l->system);
  memset(l->auth, 0, sizeof(l->auth));
  free(l);
}

tg_err_t tg_llm_create(const struct tg_llm_dialect *d, const struct tg_worker_conf *conf,
                       void **state, char *errstr, size_t n) {
  struct llm *l = calloc(1, sizeof(*l));
  char why[256], key[512];
  if (!l) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  l->d = d;
  l->conf = conf;
  d->url(conf, l->url, sizeof(l->url));
  if (!(l->system = read_text_file(conf->system_prompt_file, MAX_SYSTEM_PROMPT_BYTES, why,
                                   sizeof(why)))) {
    snprintf(errstr, n, "prompt.system_prompt_file %s: %s", conf->system_prompt_file, why);
    goto fail;
  }
  const char *key_env = strcmp(d->name, "dashscope") == 0 ? conf->dashscope_key_env
                                                          : conf->openai_key_env;
  if (tg_secret_get(key_env, key, sizeof(key), why, sizeof(why))) {
    snprintf(l->auth, sizeof(l->auth), "Authorization: Bearer %s", key);
  } else if (d->key_required || key_given(key_env)) {
    /* required, or given but unusable: say so rather than go without */
    snprintf(errstr, n, "%s prompt backend: no API key: %s (set %s, or %s_FILE)", d->name, why,
             key_env, key_env);
    goto fail;
  }
  memset(key, 0, sizeof(key));
  json_t *probe = d->body(conf, l->system, "-"); /* jansson refuses text that is not UTF-8 */
  if (!probe) {
    snprintf(errstr, n, "prompt.system_prompt_file %s or llm.model: not valid UTF-8",
             conf->system_prompt_file);
    goto fail;
  }
  json_decref(probe);
  l->fallback = strcmp(conf->prompt_fallback, "template") == 0;
  if (l->fallback && tg_prompt_template.create(conf, &l->template_state, errstr, n) != TG_OK)
    goto fail;
  struct tg_breaker_conf bc = {conf->breaker_failures, conf->breaker_open_ms};
  struct tg_fleet_limit_conf fc = {.env = conf->env, .name = "llm",
                                   .rps = conf->limits_llm.rps,
                                   .burst = conf->limits_llm.burst,
                                   .concurrency = conf->limits_llm.concurrency,
                                   .slot_lease_ms = conf->llm_timeout_ms + 10000};
  if (!(l->breaker = tg_breaker_create(d->name, &bc))) {
    snprintf(errstr, n, "out of memory");
    goto fail;
  }
  if ((conf->limits_llm.rps || conf->limits_llm.concurrency) &&
      !(l->limit = tg_fleet_limit_create(&conf->queue, &fc, why, sizeof(why)))) {
    snprintf(errstr, n, "limits.llm: %s", why);
    goto fail;
  }
  l->provider = (struct tg_provider){.name = d->name, .stage_code = TG_CODE_PROMPT_FAILED,
                                     .breaker = l->breaker, .limit = l->limit,
                                     .retries = conf->llm_retries,
                                     .timeout_ms = conf->llm_timeout_ms,
                                     .max_retry_after_ms = conf->max_retry_after_ms};
  *state = l;
  return TG_OK;
fail:
  tg_llm_destroy(l);
  return TG_ERR_INVAL;
}

/* What a provider reported goes into the result only as the result's rules
 * allow: tokens within 0..INT32_MAX, ids and model one line of text. */
static void usage_sanitize(struct tg_prompt_usage *u, const char *conf_model) {
  if (u->input_tokens < 0 || u->input_tokens > INT32_MAX)
    u->input_tokens = 0;
  if (u->output_tokens < 0 || u->output_tokens > INT32_MAX)
    u->output_tokens = 0;
  if (!tg_charset_ok(u->request_id, TG_CS_LINE))
    *u->request_id = '\0';
  if (!*u->model || !tg_charset_ok(u->model, TG_CS_LINE))
    snprintf(u->model, sizeof(u->model), "%s", conf_model);
}

/* One call and its answer; false with err. */
static bool ask(struct llm *l, const tg_job_t *job, struct tg_prompt_out *out,
                struct tg_stage_error *err) {
  char *user = tg_llm_user_message(job->trip);
  json_t *body = user ? l->d->body(l->conf, l->system, user) : NULL;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  free(user);
  json_decref(body);
  if (!text) {
    tg_stage_fail(err, TG_CODE_PROMPT_FAILED, true, "%s: out of memory", l->d->name);
    return false;
  }
  const char *headers[] = {"Content-Type: application/json", *l->auth ? l->auth : NULL, NULL};
  int64_t deadline = job->deadline_ms ? tg_mono_ms() + (job->deadline_ms - tg_now_ms()) : 0;
  struct tg_api_request r = {.request_id = job->request_id, .what = "chat", .method = "POST",
                             .url = l->url, .body = text, .headers = headers,
                             .max_response = MAX_LLM_RESPONSE, .take_token = true,
                             .hold_slot = true, .deadline_ms = deadline};
  json_t *root = NULL;
  bool ok = tg_api_call(&l->provider, &r, &root, err);
  free(text);
  if (!ok)
    return false;
  const char *answer = NULL;
  char why[256];
  bool refused = false;
  memset(&out->usage, 0, sizeof(out->usage));
  if (!l->d->answer(root, &answer, &out->usage, &refused, why, sizeof(why))) {
    if (refused) /* the model's own content filter: moderation, never retried */
      tg_stage_fail(err, TG_CODE_CONTENT_REJECTED, false, "%s chat: %s", l->d->name, why);
    else
      tg_stage_fail(err, TG_CODE_PROMPT_FAILED, true, "%s chat: %s", l->d->name, why);
    json_decref(root);
    return false;
  }
  usage_sanitize(&out->usage, l->conf->llm_model);
  ok = tg_llm_clean_prompt(answer, (size_t)l->conf->prompt_max_chars, &out->prompt, why,
                           sizeof(why));
  json_decref(root);
  if (!ok) {
    tg_stage_fail(err, TG_CODE_PROMPT_FAILED, true, "%s chat: unusable answer: %s", l->d->name,
                  why);
    return false;
  }
  out->has_usage = true;
  snprintf(out->source, sizeof(out->source), "%s", l->d->name);
  return true;
}

bool tg_llm_compose(void *state, const tg_job_t *job, struct tg_prompt_out *out,
                    struct tg_stage_error *err) {
  struct llm *l = state;
  memset(out, 0, sizeof(*out));
  if (!job || !job->trip) {
    tg_stage_fail(err, TG_CODE_INTERNAL, false, "%s: no job or trip", l->d->name);
    return false;
  }
  if (ask(l, job, out, err)) {
    if (!(out->negative_prompt = strdup(l->conf->negative_prompt))) {
      tg_prompt_out_free(out);
      tg_stage_fail(err, TG_CODE_PROMPT_FAILED, true, "%s: out of memory", l->d->name);
      return false;
    }
    return true;
  }
  tg_prompt_out_free(out);
  if (!l->fallback || err->code == TG_CODE_CONTENT_REJECTED)
    return false;
  char q[TG_STAGE_MSG + 8];
  tg_log(TG_WARN, "event=prompt_fallback request_id=%s backend=%s source=template err=%s",
         job->request_id, l->d->name, tg_logq(q, sizeof(q), err->message));
  return tg_prompt_template.compose(l->template_state, job, out, err);
}
