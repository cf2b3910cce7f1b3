/* SPDX-License-Identifier: Apache-2.0 */
/*
 * prompt.c - the registry of prompt backends (a NULL-terminated array of
 * const ops tables, looked up by the name in prompt.backend) and the
 * release of a stage's output. A new backend adds its file and one row.
 */
#include "prompt.h"

#include <stdlib.h>
#include <string.h>

static const struct tg_prompt_ops *const backends[] = {
    &tg_prompt_template,
    &tg_prompt_dashscope,
    &tg_prompt_openai,
    NULL,
};

const struct tg_prompt_ops *tg_prompt_find(const char *name) {
  TG_BACKEND_FIND(backends, name);
}

void tg_prompt_out_free(struct tg_prompt_out *p) {
  if (!p)
    return;
  free(p->prompt);
  free(p->negative_prompt);
  p->prompt = NULL;
  p->negative_prompt = NULL;
}
