/* SPDX-License-Identifier: Apache-2.0 */
/*
 * postproc.c - what the post-process stage's callers share whatever the
 * backend: finding a backend by name, the variant names that can be
 * produced, and freeing an output array.
 */
#include "postproc.h"

#include <string.h>

/* every backend built in, NULL-terminated */
static const struct tg_postproc_ops *const backends[] = {
  &tg_postproc_cpu,
  NULL,
};

/* every variant a backend can produce, NULL-terminated */
static const char *const variants[] = {"full", "thumb", NULL};

const struct tg_postproc_ops *tg_postproc_find(const char *name) {
  TG_BACKEND_FIND(backends, name);
}

bool tg_postproc_variant_known(const char *name) {
  if (!name)
    return false;
  for (size_t i = 0; variants[i]; i++)
    if (strcmp(variants[i], name) == 0)
      return true;
  return false;
}

void tg_variant_images_free(struct tg_variant_image *v, size_t n) {
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    tg_blob_free(&v[i].data);
}
