/* SPDX-License-Identifier: Apache-2.0 */
/*
 * err.c - the error tables: names of function error codes and the wire
 * error table (code, EAS lastCode, default retryability) of DESIGN.md.
 */
#include "tg_err.h"

#include <string.h>

const char *tg_err2str(tg_err_t err) {
  switch (err) {
  case TG_OK: return "ok";
  case TG_ERR_INVAL: return "invalid argument";
  case TG_ERR_NOMEM: return "out of memory";
  case TG_ERR_TRANSPORT: return "queue transport error";
  case TG_ERR_TIMEOUT: return "timed out";
  case TG_ERR_BAD_MSG: return "invalid message";
  case TG_ERR_QUEUE_FULL: return "queue full";
  case TG_ERR_NOT_FOUND: return "not found";
  case TG_ERR_IO: return "i/o error";
  case TG_ERR_TOO_LARGE: return "too large";
  }
  return "unknown error";
}

bool tg_err_retryable(tg_err_t err) {
  switch (err) {
  case TG_ERR_TRANSPORT:
  case TG_ERR_TIMEOUT:
  case TG_ERR_QUEUE_FULL:
  case TG_ERR_IO:
  case TG_ERR_NOMEM:
    return true;
  default:
    return false;
  }
}

static const struct tg_code_info code_table[TG_CODE__COUNT] = {
  {TG_CODE_INVALID_INPUT, "invalid_input", 400, false,
   "the trip or job failed validation; the producer must fix it"},
  {TG_CODE_ENV_MISMATCH, "env_mismatch", 403, false,
   "the job names another environment than the worker serves"},
  {TG_CODE_PROMPT_FAILED, "prompt_failed", 502, true,
   "the prompt model failed or was unreachable"},
  {TG_CODE_CONTENT_REJECTED, "content_rejected", 422, false,
   "a model refused the content (moderation)"},
  {TG_CODE_DIFFUSION_FAILED, "diffusion_failed", 502, true,
   "the diffusion backend failed or was unreachable"},
  {TG_CODE_POSTPROC_FAILED, "postproc_failed", 500, false,
   "post-processing (decode, composite, encode) failed"},
  {TG_CODE_UPLOAD_FAILED, "upload_failed", 503, true,
   "object storage refused or did not answer"},
  {TG_CODE_DEADLINE_EXCEEDED, "deadline_exceeded", 408, false,
   "the job's deadline passed before it finished"},
  {TG_CODE_INTERNAL, "internal", 500, true,
   "a worker fault, or a job that kept crashing workers"},
};

const struct tg_code_info *tg_code_table(size_t *n) {
  if (n)
    *n = TG_CODE__COUNT;
  return code_table;
}

const struct tg_code_info *tg_code_info(tg_code_t code) {
  if ((int)code < 0 || code >= TG_CODE__COUNT)
    return &code_table[TG_CODE_INTERNAL];
  return &code_table[code];
}

bool tg_code_from_name(const char *name, tg_code_t *out) {
  for (int i = 0; i < TG_CODE__COUNT; i++) {
    if (name && strcmp(code_table[i].name, name) == 0) {
      *out = (tg_code_t)i;
      return true;
    }
  }
  return false;
}
