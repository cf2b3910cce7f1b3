/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openai.c - the prompt backend for any OpenAI-compatible chat endpoint
 * (DashScope compatible mode, vLLM, Ollama): POST {openai.url}/chat/completions
 * with {"model", "messages", "max_tokens"}; the answer at
 * choices[0].message.content, tokens at usage.prompt_tokens and
 * completion_tokens, the provider's id at request_id (DashScope) or id.
 * The key is optional: local servers take none.
 */
#include "prompt/llm.h"

#include <stdio.h>
#include <string.h>

static void oa_url(const struct tg_worker_conf *conf, char *out, size_t n) {
  size_t l = strlen(conf->openai_url);
  while (l && conf->openai_url[l - 1] == '/')
    l--;
  snprintf(out, n, "%.*s/chat/completions", (int)l, conf->openai_url);
}

static json_t *oa_body(const struct tg_worker_conf *conf, const char *system, const char *user) {
  return json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:i}", "model", conf->llm_model,
                   "messages", "role", "system", "content", system, "role", "user", "content",
                   user, "max_tokens", conf->llm_max_tokens);
}

static bool oa_answer(json_t *root, const char **text, struct tg_prompt_usage *usage,
                      bool *refused, char *why, size_t n) {
  json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
  *text = json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
  const char *finish = json_string_value(json_object_get(choice, "finish_reason"));
  if (finish && strcmp(finish, "content_filter") == 0 && (!*text || !**text)) {
    *refused = true;
    snprintf(why, n, "the answer was withheld by the content filter (finish_reason "
             "content_filter)");
    return false;
  }
  if (!*text) {
    snprintf(why, n, "no choices[0].message.content in the answer");
    return false;
  }
  json_t *u = json_object_get(root, "usage");
  usage->input_tokens = json_integer_value(json_object_get(u, "prompt_tokens"));
  usage->output_tokens = json_integer_value(json_object_get(u, "completion_tokens"));
  const char *model = json_string_value(json_object_get(root, "model"));
  if (model && strlen(model) < sizeof(usage->model) && !strpbrk(model, "\r\n\t"))
    snprintf(usage->model, sizeof(usage->model), "%s", model);
  const char *rid = json_string_value(json_object_get(root, "request_id"));
  if (!rid)
    rid = json_string_value(json_object_get(root, "id"));
  if (rid && strlen(rid) < sizeof(usage->request_id) && !strpbrk(rid, "\r\n\t"))
    snprintf(usage->request_id, sizeof(usage->request_id), "%s", rid);
  return true;
}

static const struct tg_llm_dialect dialect = {
  .name = "openai",
  .key_required = NULL,
  .url = oa_url,
  .body = oa_body,
  .answer = oa_answer,
};

static tg_err_t oa_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                          size_t n) {
  return tg_llm_create(&dialect, conf, state, errstr, n);
}

const struct tg_prompt_ops tg_prompt_openai = {
  .name = "openai",
  .create = oa_create,
  .destroy = tg_llm_destroy,
  .compose = tg_llm_compose,
};
