/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_error.c - the classification of failed provider calls (api_error.h)
 * and the parsing of Retry-After.
 */
#include "api_error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static bool code_is(const char *code, const char *want) {
  return code && strcasecmp(code, want) == 0;
}

static bool code_starts(const char *code, const char *prefix) {
  return code && strncasecmp(code, prefix, strlen(prefix)) == 0;
}

void tg_api_classify(const struct tg_api_failure *f, tg_code_t stage_code,
                     struct tg_api_verdict *out) {
  const char *c = f->provider_code;
  out->code = stage_code;
  out->retryable = false;
  if (code_is(c, "DataInspectionFailed") || code_is(c, "data_inspection_failed") ||
      code_is(c, "content_filter") || code_starts(c, "DataInspection") ||
      code_is(c, "IPInfringementSuspect")) {
    out->code = TG_CODE_CONTENT_REJECTED;
    out->why = "content rejected by the provider's moderation";
    return;
  }
  if (code_is(c, "Throttling.AllocationQuota") || code_is(c, "insufficient_quota") ||
      code_is(c, "Arrearage")) {
    out->why = "quota exhausted (needs a person, not a retry)";
    return;
  }
  if (f->no_answer) {
    out->retryable = true;
    out->why = "no answer (connection or timeout)";
  } else if (f->http_status == 429 || code_starts(c, "Throttling") ||
             code_is(c, "rate_limit_exceeded")) {
    out->retryable = true;
    out->why = "throttled";
  } else if (f->http_status == 408 || f->http_status >= 500) {
    out->retryable = true;
    out->why = f->http_status == 408 ? "request timeout" : "server error";
  } else if (code_is(c, "InvalidApiKey") || code_is(c, "invalid_api_key") ||
             f->http_status == 401 || f->http_status == 403) {
    out->why = "not authorised (check the API key)";
  } else if (code_starts(c, "InvalidParameter") || code_is(c, "invalid_request_error") ||
             f->http_status == 400) {
    out->why = "invalid request";
  } else {
    out->why = "refused";
  }
}

int64_t tg_retry_after_ms(const char *value, int64_t now_ms, int64_t max_ms) {
  if (!value)
    return -1;
  while (isspace((unsigned char)*value))
    value++;
  if (!*value)
    return -1;
  int64_t ms;
  if (isdigit((unsigned char)*value)) { /* delay-seconds */
    char *end;
    long long secs = strtoll(value, &end, 10);
    while (isspace((unsigned char)*end))
      end++;
    if (*end || secs < 0)
      return -1;
    ms = secs > max_ms / 1000 ? max_ms : secs * 1000;
  } else { /* IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT" */
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
      return -1;
    int64_t at = (int64_t)timegm(&tm) * 1000;
    ms = at > now_ms ? at - now_ms : 0;
  }
  return ms > max_ms ? max_ms : ms;
}
