/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_api_error.c - failed provider calls become the right code and
 * retryability (throttling, exhausted quota, moderation, bad key, 5xx, no
 * answer), and Retry-After is read in both of its forms, bounded; the
 * provider's code, message and request_id are found in every error shape;
 * keys come from a variable or a file.
 */
#include "provider/api_call.h"
#include "provider/api_error.h"
#include "check.h"

#include <fcntl.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  verdict(false, 400, "IPInfringementSuspect", C, false);
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

static void fields(const char *body, const char *code, const char *msg, const char *rid) {
  char c[64], m[128], r[64];
  tg_api_error_fields(body, body ? strlen(body) : 0, c, sizeof(c), m, sizeof(m), r, sizeof(r));
  CHECK_MSG(strcmp(c, code) == 0 && strcmp(m, msg) == 0 && strcmp(r, rid) == 0,
            "%s: got code \"%s\" message \"%s\" request_id \"%s\"", body ? body : "NULL", c,
            m, r);
}

/* The provider's code, message and request_id in every error shape. */
static void test_error_fields(void) {
  fields("{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded\","
         "\"request_id\":\"r-1\"}", "Throttling.RateQuota", "Requests rate limit exceeded", "r-1");
  fields("{\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,"
         "\"code\":\"rate_limit_exceeded\"}}", "rate_limit_exceeded", "Rate limit reached", "");
  /* compatible mode: code may be null, then the type names it; request_id at the top */
  fields("{\"error\":{\"message\":\"bad\",\"type\":\"data_inspection_failed\",\"code\":null},"
         "\"id\":\"chatcmpl-1\",\"request_id\":\"r-2\"}", "data_inspection_failed", "bad", "r-2");
  fields("{\"error\":\"no prompt\",\"node_errors\":[]}", "", "no prompt", "");
  fields("<html><body>502 Bad Gateway</body></html>", "", "", "");
  fields("[1,2]", "", "", "");
  fields("", "", "", "");
  fields(NULL, "", "", "");
}

/* A key comes from its variable, else from NAME_FILE; never empty. */
static void test_secret(void) {
  char buf[64], why[160], path[] = "/tmp/tg-secret-XXXXXX";
  unsetenv("TG_TEST_KEY");
  unsetenv("TG_TEST_KEY_FILE");
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)) && !*buf);
  setenv("TG_TEST_KEY", "sk-from-env", 1);
  CHECK(tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)) && strcmp(buf, "sk-from-env") == 0);
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, 5, why, sizeof(why))); /* does not fit: refused, not cut */
  CHECK(strstr(why, "longer than 4 bytes") && !strstr(why, "sk-from"));
  setenv("TG_TEST_KEY", "sk-a\r\nX-Evil: 1", 1); /* would inject a header line */
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)) &&
        strstr(why, "control characters") && !strstr(why, "sk-a"));
  unsetenv("TG_TEST_KEY");
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)) &&
        strstr(why, "TG_TEST_KEY_FILE"));
  int fd = mkstemp(path);
  CHECK(fd >= 0 && write(fd, "sk-from-file\n", 13) == 13);
  close(fd);
  setenv("TG_TEST_KEY_FILE", path, 1);
  CHECK(tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)) && strcmp(buf, "sk-from-file") == 0);
  /* exactly as long as the buffer allows, then one byte more */
  fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, "sk-1234567", 10) == 10);
  close(fd);
  CHECK(tg_secret_get("TG_TEST_KEY", buf, 11, why, sizeof(why)) && strcmp(buf, "sk-1234567") == 0);
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, 10, why, sizeof(why)) && strstr(why, "longer than"));
  fd = open(path, O_WRONLY | O_TRUNC);
  CHECK(fd >= 0 && write(fd, "\n", 1) == 1);
  close(fd);
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)));
  unlink(path);
  CHECK(!tg_secret_get("TG_TEST_KEY", buf, sizeof(buf), why, sizeof(why)));
  unsetenv("TG_TEST_KEY_FILE");
}

static void masked(const char *in, const char *want) {
  char buf[256];
  snprintf(buf, sizeof(buf), "%s", in);
  tg_mask_keys(buf);
  CHECK_MSG(strcmp(buf, want) == 0, "%s -> %s", in, buf);
}

/* What looks like a key in a provider's message is masked. */
static void test_mask_keys(void) {
  masked("Incorrect API key provided: sk-abc123**********xyz.", "Incorrect API key provided: sk-***.");
  masked("header Bearer sk-live_0123 was refused", "header Bearer *** was refused");
  masked("task-sk-1 and risk-free", "task-sk-1 and risk-free");
  masked("no key here", "no key here");
  masked("sk-", "sk-");
}

int main(void) {
  RUN(test_classify);
  RUN(test_retry_after);
  RUN(test_error_fields);
  RUN(test_secret);
  RUN(test_mask_keys);
  return check_done("test_api_error");
}
