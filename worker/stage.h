/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.h - what pipeline stages share: the error a stage reports (wire
 * code, retryable or not, a message without secrets) and an encoded image
 * in memory.
 */
#ifndef TG_WORKER_STAGE_H
#define TG_WORKER_STAGE_H

#include "tg_err.h"

#include <stdbool.h>
#include <stddef.h>

#define TG_STAGE_MSG 512

/* Why a stage failed. */
struct tg_stage_error {
  tg_code_t code;
  bool retryable;
  char message[TG_STAGE_MSG];
};

/**
 * tg_stage_fail() - fill a stage error
 * @e:         the error
 * @code:      wire code
 * @retryable: whether this instance may succeed on a later attempt
 * @fmt:       printf format of the message (no secrets)
 */
void tg_stage_fail(struct tg_stage_error *e, tg_code_t code, bool retryable, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An encoded file in memory. */
struct tg_blob {
  unsigned char *data;
  size_t len;
};

/**
 * tg_blob_free() - free a blob's bytes and zero it (NULL-safe)
 * @b: the blob
 */
void tg_blob_free(struct tg_blob *b);

#endif
