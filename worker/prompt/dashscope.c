/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dashscope.c - the qwen prompt backend on DashScope's native API:
 * POST {dashscope.url}/api/v1/services/aigc/text-generation/generation
 * with {"model", "input": {"messages"}, "parameters": {"result_format":
 * "message"}}; the answer at output.choices[0].message.content, tokens at
 * usage.input_tokens/output_tokens, DashScope's request_id at the top.
 */
#include "prompt/llm.h"

#include <stdio.h>
#include <string.h>

static void ds_url(const struct tg_worker_conf *conf, char *out, size_t n) {
  size_t l = strlen(conf->dashscope_url);
  while (l && conf->dashscope_url[l - 1] == '/')
    l--;
  snprintf(out, n, "%.*s/api/v1/services/aigc/text-generation/generation", (int)l,
           conf->dashscope_url);
}

static json_t *ds_body(const struct tg_worker_conf *conf, const char *system, const char *user) {
  return json_pack("{s:s, s:{s:[{s:s, s:s}, {s:s, s:s}]}, s:{s:s, s:i}}", "model",
                   conf->llm_model, "input", "messages", "role", "system", "content", system,
                   "role", "user", "content", user, "parameters", "result_format", "message",
                   "max_tokens", conf->llm_max_tokens);
}

static bool ds_answer(json_t *root, const char **text, struct tg_prompt_usage *usage,
                      bool *refused, char *why, size_t n) {
  json_t *output = json_object_get(root, "output");
  json_t *choice = json_array_get(json_object_get(output, "choices"), 0);
  *text = json_string_value(json_object_get(json_object_get(choice, "message"), "content"));
  (void)refused; /* DashScope refuses with DataInspectionFailed, an error answer */
  if (!*text) /* result_format "text" answers at output.text */
    *text = json_string_value(json_object_get(output, "text"));
  if (!*text) {
    snprintf(why, n, "no output.choices[0].message.content in the answer");
    return false;
  }
  json_t *u = json_object_get(root, "usage");
  usage->input_tokens = json_integer_value(json_object_get(u, "input_tokens"));
  usage->output_tokens = json_integer_value(json_object_get(u, "output_tokens"));
  const char *rid = json_string_value(json_object_get(root, "request_id"));
  if (rid && strlen(rid) < sizeof(usage->request_id) && !strpbrk(rid, "\r\n\t"))
    snprintf(usage->request_id, sizeof(usage->request_id), "%s", rid);
  return true;
}

static const struct tg_llm_dialect dialect = {
  .name = "dashscope",
  .key_required = "yes",
  .url = ds_url,
  .body = ds_body,
  .answer = ds_answer,
};

static tg_err_t ds_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                          size_t n) {
  return tg_llm_create(&dialect, conf, state, errstr, n);
}

const struct tg_prompt_ops tg_prompt_dashscope = {
  .name = "dashscope",
  .create = ds_create,
  .destroy = tg_llm_destroy,
  .compose = tg_llm_compose,
};
