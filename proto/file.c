/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file.c - bounded whole-file reads (tg_file.h).
 */
#include "tg_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *tg_read_file(const char *path, size_t max_bytes, size_t *len, char *errstr, size_t n) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(errstr, n, "%s", strerror(errno));
    return NULL;
  }
  char *buf = malloc(max_bytes + 1);
  size_t got = buf ? fread(buf, 1, max_bytes + 1, f) : 0;
  int e = ferror(f) ? errno : 0;
  fclose(f);
  if (!buf)
    snprintf(errstr, n, "out of memory");
  else if (e)
    snprintf(errstr, n, "%s", strerror(e));
  else if (got > max_bytes)
    snprintf(errstr, n, "larger than %zu bytes", max_bytes);
  if (!buf || e || got > max_bytes) {
    free(buf);
    return NULL;
  }
  buf[got] = '\0';
  if (len)
    *len = got;
  return buf;
}
