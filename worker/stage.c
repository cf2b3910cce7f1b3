/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stage.c - helpers every stage uses: filling a stage error, freeing a blob.
 */
#include "stage.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tg_stage_fail(struct tg_stage_error *e, tg_code_t code, bool retryable, const char *fmt, ...) {
  va_list ap;
  e->code = code;
  e->retryable = retryable;
  e->deadline_cut = false;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof(e->message), fmt, ap);
  va_end(ap);
}

void tg_blob_free(struct tg_blob *b) {
  if (!b)
    return;
  free(b->data);
  b->data = NULL;
  b->len = 0;
}
