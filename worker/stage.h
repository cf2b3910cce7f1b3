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
#include <string.h>

#define TG_STAGE_MSG 512

/* Why a stage failed. */
struct tg_stage_error {
  tg_code_t code;
  bool retryable;
  char message[TG_STAGE_MSG];
  bool deadline_cut; /* the deadline ended or prevented the call, not the provider */
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

/*
 * TG_BACKEND_FIND() - the body of a stage's tg_<stage>_find(): return the
 * ops table of a NULL-terminated @backends array whose ->name is @name, or
 * NULL (also for a NULL @name). Every stage registry uses it.
 */
#define TG_BACKEND_FIND(backends, name)                                         \
  do {                                                                         \
    for (size_t i_ = 0; (name) && (backends)[i_]; i_++)                        \
      if (strcmp((backends)[i_]->name, (name)) == 0)                           \
        return (backends)[i_];                                                 \
    return NULL;                                                               \
  } while (0)

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
