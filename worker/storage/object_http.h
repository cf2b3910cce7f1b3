/* SPDX-License-Identifier: Apache-2.0 */
/*
 * object_http.h - one signed request to an object store (OSS, S3), the way
 * both backends send it: bounded in time, retried within the stage when it
 * got no answer or a 5xx / 408 / 429 (backoff doubling from 200 ms), and
 * otherwise turned into upload_failed with the service's error Code,
 * Message and RequestId from its XML body - not retried, since a rejected
 * signature or a denied access does not get better. Never logs headers
 * (they carry the signature and the access key id).
 */
#ifndef TG_OBJECT_HTTP_H
#define TG_OBJECT_HTTP_H

#include "stage.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One request, signed by the caller (the same signature serves every retry). */
struct tg_object_request {
  const char *backend;          /* "oss", "s3": messages and metrics */
  const char *request_id;       /* the job's, for logs */
  const char *key;              /* the object key, for messages */
  const char *method;           /* "PUT", "GET", "HEAD" */
  const char *url;
  const char *const *headers;   /* "Name: value", NULL-terminated; Content-Type explicit */
  const unsigned char *body;    /* NULL: none */
  size_t body_len;
  int64_t timeout_ms;
  int retries;
  size_t max_response;          /* 0: 64 KiB (error documents) */
};

/* What the service answered last. */
struct tg_object_answer {
  long status;                  /* 0: no answer */
  char code[64];                /* <Code> of an error document, "" when none */
};

/**
 * tg_object_send() - send a request, retrying what is worth retrying
 * @r:   the request
 * @ans: out: the last status and error code (may be NULL)
 * @err: on failure: upload_failed, retryable by cause, with the service's
 *       code, message and request id
 *
 * Return: true on a 2xx answer.
 */
bool tg_object_send(const struct tg_object_request *r, struct tg_object_answer *ans,
                    struct tg_stage_error *err);

/**
 * tg_object_error_fields() - Code, Message and RequestId of an S3/OSS XML
 * error document (<Error><Code>...</Code>...</Error>)
 * @xml:  the body (need not be NUL-terminated; may be NULL)
 * @len:  its length
 * @code: out, "" when absent
 * @cn:   its size
 * @msg:  out, "" when absent
 * @mn:   its size
 * @rid:  out, "" when absent
 * @rn:   its size
 */
void tg_object_error_fields(const char *xml, size_t len, char *code, size_t cn, char *msg,
                            size_t mn, char *rid, size_t rn);

#endif
