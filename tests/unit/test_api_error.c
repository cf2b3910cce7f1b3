/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_api_error.c - failed provider calls become the right code and
 * retryability (throttling, exhausted quota, moderation, bad key, 5xx, no
 * answer), and Retry-After is read in both of its forms, bounded.
 */
#include "provider/api_error.h"
#include "check.h"

#include <stddef.h>

static void verdict(bool no_answer, int status, const char *code, tg_code_t want_code,
                    bool want_retryable) {
  struct tg_api_failure f = {no_answer, status, code};
  struct tg_api_verdict v;
  tg_api_classify(&f, TG_CODE_PROMPT_FAILED, &v);
  CHECK_MSG(v.code == want_code && v.retryable == want_retryable && v.why && *v.why,
            "status %d code %s: got code %d retryable %d", status, code ? code : "-", v.code,
            v.retryable);
}

static void test_classify(void) {
  const tg_code_t P = TG_CODE_PROMPT_FAILED, C = TG_CODE_CONTENT_REJECTED;
  /* DashScope native codes */
  verdict(false, 429, "Throttling.RateQuota", P, true);
  verdict(false, 429, "Throttling", P, true);
  verdict(false, 429, "Throttling.AllocationQuota", P, false);
  verdict(false, 400, "DataInspectionFailed", C, false);
  verdict(false, 401, "InvalidApiKey", P, false);
  verdict(false, 400, "InvalidParameter", P, false);
  verdict(false, 400, "InvalidParameter.NotSupported", P, false);
  verdict(false, 500, "InternalError", P, true);
  verdict(false, 503, "ServiceUnavailable", P, true);
  verdict(false, 400, "Arrearage", P, false);
  /* OpenAI-compatible shapes (DashScope compatible mode, vLLM, Ollama) */
  verdict(false, 429, "rate_limit_exceeded", P, true);
  verdict(false, 429, "insufficient_quota", P, false);
  verdict(false, 400, "data_inspection_failed", C, false);
  verdict(false, 400, "content_filter", C, false);
  verdict(false, 401, "invalid_api_key", P, false);
  verdict(false, 400, "invalid_request_error", P, false);
  /* by status alone */
  verdict(false, 429, NULL, P, true);
  verdict(false, 408, NULL, P, true);
  verdict(false, 502, NULL, P, true);
  verdict(false, 404, NULL, P, false);
  verdict(false, 403, NULL, P, false);
  verdict(true, 0, NULL, P, true);
  /* moderation wins over a retryable status; the stage code is kept otherwise */
  verdict(false, 500, "DataInspectionFailed", C, false);
  struct tg_api_failure f = {false, 500, NULL};
  struct tg_api_verdict v;
  tg_api_classify(&f, TG_CODE_DIFFUSION_FAILED, &v);
  CHECK(v.code == TG_CODE_DIFFUSION_FAILED && v.retryable);
}

static void test_retry_after(void) {
  const int64_t now = 1445412480000LL; /* Wed, 21 Oct 2015 07:28:00 GMT */
  CHECK(tg_retry_after_ms(NULL, now, 60000) == -1);
  CHECK(tg_retry_after_ms("", now, 60000) == -1);
  CHECK(tg_retry_after_ms("5", now, 60000) == 5000);
  CHECK(tg_retry_after_ms(" 2 ", now, 60000) == 2000);
  CHECK(tg_retry_after_ms("0", now, 60000) == 0);
  CHECK(tg_retry_after_ms("3600", now, 60000) == 60000);        /* capped */
  CHECK(tg_retry_after_ms("99999999999999999", now, 60000) == 60000 ||
        tg_retry_after_ms("99999999999999999", now, 60000) == -1);
  CHECK(tg_retry_after_ms("-1", now, 60000) == -1);
  CHECK(tg_retry_after_ms("1.5", now, 60000) == -1);
  CHECK(tg_retry_after_ms("soon", now, 60000) == -1);
  CHECK(tg_retry_after_ms("Wed, 21 Oct 2015 07:28:10 GMT", now, 60000) == 10000);
  CHECK(tg_retry_after_ms("Wed, 21 Oct 2015 07:27:00 GMT", now, 60000) == 0); /* past */
  CHECK(tg_retry_after_ms("Wed, 21 Oct 2015 09:28:00 GMT", now, 60000) == 60000);
  CHECK(tg_retry_after_ms("Wed, 21 Oct 2015 07:28:10 PST", now, 60000) == -1);
}

int main(void) {
  RUN(test_classify);
  RUN(test_retry_after);
  return check_done("test_api_error");
}
