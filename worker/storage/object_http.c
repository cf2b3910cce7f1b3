/* SPDX-License-Identifier: Apache-2.0 */
/*
 * object_http.c - signed requests to OSS and S3 with in-stage retries for
 * what the service may answer differently next time, and their XML error
 * documents read for the message. The three fields are plain text between
 * tags in a document the service writes; entities are not decoded.
 */
#include "storage/object_http.h"
#include "http_client.h"
#include "tg_log.h"
#include "tg_time.h"

#include <stdio.h>
#include <string.h>

#define FIRST_BACKOFF_MS 200
#define ERROR_DOC_MAX (64 * 1024)
#define SIGNATURE_LIFE_MS (10 * 60 * 1000) /* of the 15 minutes the services allow */

/* The text of the first <tag>...</tag> in xml[0..len), one line, bounded. */
static void xml_field(const char *xml, size_t len, const char *tag, char *out, size_t n) {
  char open[40], close[40];
  snprintf(open, sizeof(open), "<%s>", tag);
  snprintf(close, sizeof(close), "</%s>", tag);
  *out = '\0';
  size_t ol = strlen(open);
  for (size_t i = 0; xml && i + ol <= len; i++) {
    if (memcmp(xml + i, open, ol) != 0)
      continue;
    size_t start = i + ol, cl = strlen(close), end = start;
    while (end + cl <= len && memcmp(xml + end, close, cl) != 0)
      end++;
    if (end + cl > len)
      return;
    size_t o = 0;
    for (size_t k = start; k < end && o + 1 < n; k++)
      out[o++] = (unsigned char)xml[k] < ' ' ? ' ' : xml[k];
    out[o] = '\0';
    return;
  }
}

void tg_object_error_fields(const char *xml, size_t len, char *code, size_t cn, char *msg,
                            size_t mn, char *rid, size_t rn) {
  xml_field(xml, len, "Code", code, cn);
  xml_field(xml, len, "Message", msg, mn);
  xml_field(xml, len, "RequestId", rid, rn);
}

static bool retryable_status(long status) {
  return status == 0 || status >= 500 || status == 408 || status == 429;
}

bool tg_object_send(const struct tg_object_request *r, struct tg_object_answer *ans,
                    struct tg_stage_error *err) {
  struct tg_object_answer local;
  if (!ans)
    ans = &local;
  int64_t backoff = FIRST_BACKOFF_MS, started = tg_mono_ms();
  for (int attempt = 0;; attempt++) {
    struct tg_http_req hr = {.method = r->method, .url = r->url, .body = (const char *)r->body,
                             .body_len = r->body_len, .headers = r->headers,
                             .timeout_ms = r->timeout_ms,
                             .max_response = r->max_response ? r->max_response : ERROR_DOC_MAX};
    struct tg_http_resp resp;
    char why[256] = "", msg[TG_STAGE_MSG];
    memset(ans, 0, sizeof(*ans));
    bool answered = tg_http_do(&hr, &resp, why, sizeof(why));
    ans->status = answered ? resp.status : 0;
    if (answered && resp.status >= 200 && resp.status < 300) {
      tg_blob_free(&resp.body);
      return true;
    }
    if (answered) {
      char emsg[256], rid[96];
      tg_object_error_fields((const char *)resp.body.data, resp.body.len, ans->code,
                             sizeof(ans->code), emsg, sizeof(emsg), rid, sizeof(rid));
      snprintf(msg, sizeof(msg), "%s %s %s: HTTP %ld%s%s%s%s%s%s%s", r->backend, r->method,
               r->key, resp.status, *ans->code ? " " : "", ans->code, *emsg ? ": " : "", emsg,
               *rid ? " (request_id " : "", rid, *rid ? ")" : "");
      tg_blob_free(&resp.body);
    } else {
      snprintf(msg, sizeof(msg), "%s %s %s: %s", r->backend, r->method, r->key, why);
    }
    bool retry = retryable_status(ans->status) && !(ans->status == 0 && resp.too_large);
    /* the signature is made once; S3 and OSS refuse it 15 minutes after its date
     * (RequestTimeTooSkewed, not retryable): retry within the stage only well before that */
    bool signature_fresh = tg_mono_ms() - started + backoff + r->timeout_ms < SIGNATURE_LIFE_MS;
    if (!retry || attempt >= r->retries || !signature_fresh) {
      tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, retry, "%s", msg);
      return false;
    }
    char q[TG_STAGE_MSG + 8];
    tg_log(TG_WARN, "event=upload_retry request_id=%s backend=%s attempt=%d wait_ms=%lld err=%s",
           r->request_id ? r->request_id : "-", r->backend, attempt + 1, (long long)backoff,
           tg_logq(q, sizeof(q), msg));
    tg_sleep_ms(backoff);
    backoff *= 2;
  }
}
