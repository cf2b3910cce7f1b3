/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_offsets.c - the per-partition commit watermark (kafka_offsets.h):
 * a sorted array of open offsets whose done prefix is dropped as it forms.
 */
#include "kafka_offsets.h"

#include <stdlib.h>
#include <string.h>

void tg_offsets_reset(struct tg_offsets *o) {
  free(o->open);
  free(o->done);
  memset(o, 0, sizeof(*o));
  o->next = -1;
}

bool tg_offsets_add(struct tg_offsets *o, int64_t offset) {
  if (offset < 0 || (o->next >= 0 && offset < o->next))
    return false;
  if (o->len == o->cap) {
    size_t cap = o->cap ? o->cap * 2 : 16;
    int64_t *open = realloc(o->open, cap * sizeof(*open));
    if (!open)
      return false;
    o->open = open;
    bool *done = realloc(o->done, cap * sizeof(*done));
    if (!done)
      return false;
    o->done = done;
    o->cap = cap;
  }
  o->open[o->len] = offset;
  o->done[o->len++] = false;
  o->next = offset + 1;
  return true;
}

bool tg_offsets_done(struct tg_offsets *o, int64_t offset) {
  size_t lo = 0, hi = o->len;
  while (lo < hi) { /* binary search: the array is ascending */
    size_t mid = lo + (hi - lo) / 2;
    if (o->open[mid] < offset)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == o->len || o->open[lo] != offset || o->done[lo])
    return false;
  o->done[lo] = true;
  size_t drop = 0;
  while (drop < o->len && o->done[drop])
    drop++;
  if (drop) {
    memmove(o->open, o->open + drop, (o->len - drop) * sizeof(*o->open));
    memmove(o->done, o->done + drop, (o->len - drop) * sizeof(*o->done));
    o->len -= drop;
  }
  return true;
}

int64_t tg_offsets_watermark(const struct tg_offsets *o) {
  return o->len ? o->open[0] : o->next;
}

size_t tg_offsets_open_count(const struct tg_offsets *o) {
  size_t k = 0;
  for (size_t i = 0; i < o->len; i++)
    k += !o->done[i];
  return k;
}
