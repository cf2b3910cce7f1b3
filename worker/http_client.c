/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_client.c - bounded libcurl requests: a total timeout, a size cap on
 * the response, no signals, no redirects to other protocols.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sink {
  struct tg_blob *b;
  size_t max;
  bool overflow;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct sink *s = userdata;
  size_t len = size * nmemb;
  if (s->b->len + len > s->max) {
    s->overflow = true;
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  }
  unsigned char *p = realloc(s->b->data, s->b->len + len + 1);
  if (!p)
    return 0;
  memcpy(p + s->b->len, ptr, len);
  s->b->data = p;
  s->b->len += len;
  p[s->b->len] = '\0';
  return len;
}

/* Keeps the Retry-After and Location headers of the final response. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata) {
  struct tg_http_resp *resp = userdata;
  size_t len = size * nitems;
  static const struct { const char *name; size_t off, cap; } keep[] = {
    {"retry-after:", offsetof(struct tg_http_resp, retry_after), sizeof(resp->retry_after)},
    {"location:", offsetof(struct tg_http_resp, location), sizeof(resp->location)},
  };
  if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after 1xx): start over */
    resp->retry_after[0] = resp->location[0] = '\0';
    return len;
  }
  for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
    size_t nl = strlen(keep[i].name);
    if (len <= nl || strncasecmp(buf, keep[i].name, nl) != 0)
      continue;
    const char *v = buf + nl;
    size_t vl = len - nl;
    while (vl && (*v == ' ' || *v == '\t'))
      v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
      vl--;
    char *dst = (char *)resp + keep[i].off;
    if (vl < keep[i].cap) { /* an over-long value is dropped, never cut */
      memcpy(dst, v, vl);
      dst[vl] = '\0';
    }
  }
  return len;
}

bool tg_http_global_init(void) { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

bool tg_http_do(const struct tg_http_req *req, struct tg_http_resp *resp, char *errstr,
                size_t n) {
  memset(resp, 0, sizeof(*resp));
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  struct curl_slist *hdrs = NULL;
  for (const char *const *h = req->headers; h && *h; h++)
    hdrs = curl_slist_append(hdrs, *h);
  hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
  struct sink s = {&resp->body, req->max_response, false};
  char curl_err[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, req->url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(req->timeout_ms < 10000 ? req->timeout_ms : 10000));
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  /* send the path as built (and signed): no dot-segment squashing */
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "tripgen-worker");
  if (req->body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
  }
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  if (s.overflow) {
    snprintf(errstr, n, "response larger than %zu bytes", req->max_response);
    resp->too_large = true;
    tg_blob_free(&resp->body);
    return false;
  }
  if (rc != CURLE_OK) {
    snprintf(errstr, n, "%s", *curl_err ? curl_err : curl_easy_strerror(rc));
    tg_blob_free(&resp->body);
    resp->status = 0;
    return false;
  }
  if (!resp->body.data) { /* empty body: keep a valid empty string */
    resp->body.data = calloc(1, 1);
  }
  return true;
}
