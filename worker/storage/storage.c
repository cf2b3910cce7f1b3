/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.c - finding a storage backend by name.
 */
#include "storage.h"

#include <string.h>

/* every backend built in, NULL-terminated */
static const struct tg_storage_ops *const backends[] = {
  &tg_storage_file,
  NULL,
};

const struct tg_storage_ops *tg_storage_find(const char *name) {
  if (!name)
    return NULL;
  for (size_t i = 0; backends[i]; i++)
    if (strcmp(backends[i]->name, name) == 0)
      return backends[i];
  return NULL;
}
