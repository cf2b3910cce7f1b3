/* SPDX-License-Identifier: Apache-2.0 */
/*
 * api_call.c - how every backend calls a model provider: fleet limits
 * first (a token, a slot), then the breaker, then one bounded HTTP request;
 * a failure is classified by its cause (api_error.c) and retried within the
 * stage while retries, the deadline and the provider's Retry-After allow.
 * Error messages carry the provider's code, message and request_id, with
 * anything shaped like an API key masked.
 */
#include "provider/api_call.h"
#include "metrics.h"
#include "provider/api_error.h"
#include "tg_job.h"
#include "tg_log.h"
#include "tg_time.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_BACKOFF_MS 200

void tg_api_error_fields(const char *body, size_t len, char *code, size_t cn, char *msg,
                         size_t mn, char *rid, size_t rn) {
  *code = *msg = *rid = '\0';
  if (!body || !len)
    return;
  json_error_t je;
  json_t *root = json_loadb(body, len, 0, &je);
  if (!json_is_object(root)) {
    json_decref(root);
    return;
  }
  json_t *e = json_object_get(root, "error");
  const char *c, *m;
  if (json_is_object(e)) { /* OpenAI and compatible mode */
    c = json_string_value(json_object_get(e, "code"));
    if (!c)
      c = json_string_value(json_object_get(e, "type"));
    m = json_string_value(json_object_get(e, "message"));
  } else { /* DashScope native */
    c = json_string_value(json_object_get(root, "code"));
    m = json_string_value(json_object_get(root, "message"));
    if (!m && json_is_string(e)) /* {"error": "text"} */
      m = json_string_value(e);
  }
  const char *r = json_string_value(json_object_get(root, "request_id"));
  snprintf(code, cn, "%s", c ? c : "");
  snprintf(msg, mn, "%s", m ? m : "");
  snprintf(rid, rn, "%s", r ? r : "");
  json_decref(root);
}

void tg_mask_keys(char *s) {
  for (char *p = s; *p; p++) {
    size_t skip = 0;
    if (strncmp(p, "sk-", 3) == 0 &&
        (p == s || !(isalnum((unsigned char)p[-1]) || p[-1] == '-' || p[-1] == '_')))
      skip = 3;
    else if (strncmp(p, "Bearer ", 7) == 0)
      skip = 7;
    if (!skip)
      continue;
    char *q = p + skip, *end = q;
    while (*end && (isalnum((unsigned char)*end) || strchr("-_.*", *end)))
      end++;
    while (end > q && end[-1] == '.') /* a full stop ends the sentence, not the key */
      end--;
    if (end == q)
      continue;
    memmove(q + 3, end, strlen(end) + 1);
    memcpy(q, "***", 3);
    p = q + 2;
  }
}

/* A key must fit and be one token: a space or control byte would break or
 * inject header lines. */
static bool key_usable(const char *v, size_t n, const char *origin, char *why, size_t wn) {
  if (strlen(v) >= n) {
    snprintf(why, wn, "%s is longer than %zu bytes", origin, n - 1);
    return false;
  }
  for (const char *k = v; *k; k++)
    if ((unsigned char)*k <= ' ' || *k == 0x7f) {
      snprintf(why, wn, "%s holds spaces or control characters", origin);
      return false;
    }
  return true;
}

bool tg_secret_get(const char *name, char *buf, size_t n, char *why, size_t wn) {
  *buf = '\0';
  snprintf(why, wn, "%s is not set", name ? name : "(no name)");
  if (!name || !*name || n < 2)
    return false;
  char origin[200];
  const char *v = getenv(name);
  if (v && *v) {
    snprintf(origin, sizeof(origin), "the value of %s", name);
    if (!key_usable(v, n, origin, why, wn))
      return false;
    snprintf(buf, n, "%s", v);
    return true;
  }
  char file_var[160];
  snprintf(file_var, sizeof(file_var), "%s_FILE", name);
  const char *path = getenv(file_var);
  if (!path || !*path) {
    snprintf(why, wn, "neither %s nor %s is set", name, file_var);
    return false;
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(why, wn, "%s names a file that cannot be read (%s)", file_var, strerror(errno));
    return false;
  }
  size_t len = fread(buf, 1, n - 1, f);
  bool whole = fgetc(f) == EOF;
  fclose(f);
  buf[len] = '\0';
  while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
    buf[--len] = '\0';
  snprintf(origin, sizeof(origin), "the file named by %s", file_var);
  if (!whole) {
    snprintf(why, wn, "%s is longer than %zu bytes", origin, n - 1);
  } else if (!len) {
    snprintf(why, wn, "%s is empty", origin);
  } else if (key_usable(buf, n, origin, why, wn)) {
    return true;
  }
  memset(buf, 0, n);
  return false;
}

/* What one attempt ended with. */
struct attempt {
  bool answered;        /* an HTTP status came */
  bool ok;              /* 2xx with a JSON object */
  bool counts_against;  /* for the breaker: no answer, 5xx, malformed 2xx */
  struct tg_api_verdict verdict;
  int64_t retry_after_ms;
  char message[TG_STAGE_MSG * 2]; /* cut to TG_STAGE_MSG in the stage error */
};

static void one_attempt(const struct tg_provider *p, const struct tg_api_request *r,
                        int64_t timeout_ms, json_t **json, struct attempt *a) {
  struct tg_http_req hr = {.method = r->method, .url = r->url, .body = r->body,
                           .body_len = r->body ? strlen(r->body) : 0, .headers = r->headers,
                           .timeout_ms = timeout_ms, .max_response = r->max_response};
  struct tg_http_resp resp;
  char why[256] = "";
  memset(a, 0, sizeof(*a));
  a->retry_after_ms = -1;
  if (!tg_http_do(&hr, &resp, why, sizeof(why))) {
    if (resp.too_large) { /* it answered, too much: asking again gets the same */
      a->answered = true;
      a->verdict = (struct tg_api_verdict){p->stage_code, false, "answer over the size cap"};
      snprintf(a->message, sizeof(a->message), "%s %s: %s", p->name, r->what, why);
      return;
    }
    struct tg_api_failure f = {.no_answer = true};
    tg_api_classify(&f, p->stage_code, &a->verdict);
    a->counts_against = true;
    snprintf(a->message, sizeof(a->message), "%s %s: %s", p->name, r->what, why);
    return;
  }
  a->answered = true;
  if (resp.status >= 200 && resp.status < 300) {
    json_error_t je;
    *json = json_loadb((const char *)resp.body.data, resp.body.len, 0, &je);
    if (json_is_object(*json)) {
      a->ok = true;
    } else {
      json_decref(*json);
      *json = NULL;
      struct tg_api_failure f = {.http_status = 502}; /* a broken answer: as a bad gateway */
      tg_api_classify(&f, p->stage_code, &a->verdict);
      a->counts_against = true;
      snprintf(a->message, sizeof(a->message), "%s %s: HTTP %ld with a body that is not a JSON "
               "object (%s)", p->name, r->what, resp.status, je.text);
    }
    tg_blob_free(&resp.body);
    return;
  }
  char code[96], msg[320], rid[96];
  tg_api_error_fields((const char *)resp.body.data, resp.body.len, code, sizeof(code), msg,
                      sizeof(msg), rid, sizeof(rid));
  struct tg_api_failure f = {.http_status = (int)resp.status, .provider_code = *code ? code : NULL};
  tg_api_classify(&f, p->stage_code, &a->verdict);
  a->counts_against = resp.status >= 500;
  a->retry_after_ms = tg_retry_after_ms(*resp.retry_after ? resp.retry_after : NULL, tg_now_ms(),
                                        INT64_MAX / 4);
  snprintf(a->message, sizeof(a->message), "%s %s: HTTP %ld%s%s%s%s%s%s%s", p->name, r->what,
           resp.status, *code ? " " : "", code, *msg ? ": " : "", msg,
           *rid ? " (request_id " : "", rid, *rid ? ")" : "");
  tg_blob_free(&resp.body);
}

/* The wait before the next attempt, or -1 when there should be none. */
static int64_t next_wait(const struct tg_provider *p, const struct tg_api_request *r,
                         const struct attempt *a, int attempt, int64_t backoff) {
  if (!a->verdict.retryable || attempt >= p->retries)
    return -1;
  int64_t wait = backoff;
  if (a->retry_after_ms >= 0) {
    if (a->retry_after_ms > p->max_retry_after_ms)
      return -1; /* longer than a stage should sit: the job is retried later instead */
    if (a->retry_after_ms > wait)
      wait = a->retry_after_ms;
  }
  if (r->deadline_ms && tg_mono_ms() + wait >= r->deadline_ms)
    return -1;
  return wait;
}

bool tg_api_call(const struct tg_provider *p, const struct tg_api_request *r, json_t **json,
                 struct tg_stage_error *err) {
  *json = NULL;
  char holder[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_request_id_generate(holder); /* names this call's slot */
  int64_t backoff = FIRST_BACKOFF_MS;
  for (int attempt = 0;; attempt++) {
    /* the breaker first: an open one spends none of the fleet's budget */
    int64_t retry_in = 0;
    if (!tg_breaker_allow(p->breaker, tg_mono_ms(), &retry_in)) {
      tg_metrics_provider_call(p->name, TG_CALL_REFUSED);
      tg_stage_fail(err, p->stage_code, true, "%s %s: not called: the circuit breaker is open "
                    "after repeated failures (next probe in %lld ms)", p->name, r->what,
                    (long long)retry_in);
      return false;
    }
    int64_t waited = 0, w2 = 0;
    const char *refusal = NULL;
    bool have_slot = false;
    if (r->take_token && !tg_fleet_limit_take_token(p->limit, r->deadline_ms, &waited))
      refusal = "the fleet-wide request rate limit leaves no room before the deadline";
    else if (r->hold_slot &&
             !(have_slot = tg_fleet_limit_acquire_slot(p->limit, holder, r->deadline_ms, &w2)))
      refusal = "no fleet-wide concurrency slot came free before the deadline";
    if (waited + w2 > 0)
      tg_metrics_limit_wait(p->name, waited + w2);
    int64_t timeout = p->timeout_ms;
    if (!refusal && r->deadline_ms && r->deadline_ms - tg_mono_ms() < timeout)
      timeout = r->deadline_ms - tg_mono_ms();
    if (!refusal && timeout <= 0)
      refusal = "the deadline passed before the call";
    if (refusal) {
      tg_breaker_forget(p->breaker); /* no call, nothing learned */
      if (have_slot)
        tg_fleet_limit_release_slot(p->limit, holder);
      tg_metrics_provider_call(p->name, TG_CALL_REFUSED);
      tg_stage_fail(err, p->stage_code, true, "%s %s: %s", p->name, r->what, refusal);
      err->deadline_cut = true; /* every refusal is "not before the deadline" */
      return false;
    }
    struct attempt a;
    one_attempt(p, r, timeout, json, &a);
    /* a call the job's deadline cut short says nothing about the provider */
    if (!a.answered && timeout < p->timeout_ms)
      tg_breaker_forget(p->breaker);
    else
      tg_breaker_record(p->breaker, a.counts_against, tg_mono_ms());
    if (have_slot)
      tg_fleet_limit_release_slot(p->limit, holder);
    if (a.ok) {
      tg_metrics_provider_call(p->name, TG_CALL_OK);
      return true;
    }
    tg_mask_keys(a.message);
    int64_t wait = next_wait(p, r, &a, attempt, backoff);
    if (wait < 0) {
      tg_metrics_provider_call(p->name, TG_CALL_FAILED);
      if (!a.answered && timeout < p->timeout_ms && tg_deadline_came(r->deadline_ms)) {
        tg_stage_fail(err, a.verdict.code, true, "%s %s: the deadline came during the call",
                      p->name, r->what);
        err->deadline_cut = true;
      } else
        tg_stage_fail(err, a.verdict.code, a.verdict.retryable, "%s", a.message);
      return false;
    }
    tg_metrics_provider_call(p->name, TG_CALL_RETRIED);
    char q[TG_STAGE_MSG * 2 + 8];
    tg_log(TG_WARN, "event=provider_retry request_id=%s backend=%s call=%s attempt=%d wait_ms=%lld "
           "err=%s", r->request_id ? r->request_id : "-", p->name, r->what, attempt + 1,
           (long long)wait, tg_logq(q, sizeof(q), a.message));
    tg_sleep_ms(wait);
    backoff *= 2;
  }
}
