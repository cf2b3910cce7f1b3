/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.c - finding a storage backend by name.
 */
#include "storage.h"

#include <string.h>

/* every backend built in, NULL-terminated */
static const struct tg_storage_ops *const backends[] = {
  &tg_storage_file,
  &tg_storage_oss,
  &tg_storage_s3,
  NULL,
};

const struct tg_storage_ops *tg_storage_find(const char *name) {
  TG_BACKEND_FIND(backends, name);
}
