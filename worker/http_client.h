/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_client.h - one HTTP request with libcurl, bounded in time and size:
 * what every stage backend that calls a remote API uses.
 */
#ifndef TG_HTTP_CLIENT_H
#define TG_HTTP_CLIENT_H

#include "stage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request. Headers are "Name: value" lines, NULL-terminated. */
struct tg_http_req {
  const char *method;       /* "GET", "POST", ... */
  const char *url;
  const char *body;         /* NULL: none */
  size_t body_len;
  const char *const *headers;
  int64_t timeout_ms;       /* whole request */
  size_t max_response;      /* larger responses are cut off and fail */
};

/* A response: status, body (NUL-terminated for convenience) and the
 * headers the backends act on. */
struct tg_http_resp {
  long status;              /* 0 when no HTTP answer came */
  bool too_large;           /* the body passed max_response (tg_http_do() failed) */
  struct tg_blob body;
  char retry_after[64];     /* Retry-After, "" when absent */
  char location[1024];      /* Location of a redirect, "" when absent or too long */
};

/**
 * tg_http_do() - perform a request
 * @req:    the request
 * @resp:   the response (free body with tg_blob_free())
 * @errstr: on failure, what went wrong on the wire (no credentials)
 * @n:      its size
 *
 * Return: true when an HTTP response arrived (any status), false on a
 * connection error, a timeout or an over-long response.
 */
bool tg_http_do(const struct tg_http_req *req, struct tg_http_resp *resp, char *errstr,
                size_t n);

/**
 * tg_http_global_init() - libcurl's global set-up; call once before threads
 *
 * Return: true on success.
 */
bool tg_http_global_init(void);

#endif
