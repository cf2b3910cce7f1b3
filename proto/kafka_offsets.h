/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_offsets.h - the commit watermark of one Kafka partition. Jobs of a
 * partition finish out of order; the offset that may be committed is the
 * lowest one not yet done (everything below it is finished), or one past
 * the highest offset seen when all are done. Pure bookkeeping, no I/O.
 */
#ifndef TG_KAFKA_OFFSETS_H
#define TG_KAFKA_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Offsets seen and not yet done, ascending. */
struct tg_offsets {
  int64_t *open;   /* offsets not done yet, ascending */
  bool *done;      /* per open slot: finished (waits for the ones below it) */
  size_t len, cap;
  int64_t next;    /* one past the highest offset seen; -1 before any */
};

/**
 * tg_offsets_reset() - forget everything (a new assignment); frees memory
 * @o: the tracker
 */
void tg_offsets_reset(struct tg_offsets *o);

/**
 * tg_offsets_add() - record an offset taken from the partition
 * @o:      the tracker
 * @offset: the message's offset; must be above every offset added before
 *
 * Return: false when out of memory or not ascending (nothing recorded).
 */
bool tg_offsets_add(struct tg_offsets *o, int64_t offset);

/**
 * tg_offsets_done() - mark an offset finished
 * @o:      the tracker
 * @offset: an offset added before
 *
 * Return: false when it is not open (unknown, or done already).
 */
bool tg_offsets_done(struct tg_offsets *o, int64_t offset);

/**
 * tg_offsets_watermark() - the offset to commit: every offset below it is done
 * @o: the tracker
 *
 * Return: the lowest offset not done, or @o->next when all are; -1 before any.
 */
int64_t tg_offsets_watermark(const struct tg_offsets *o);

/**
 * tg_offsets_open_count() - offsets added and not done
 * @o: the tracker
 *
 * Return: their number.
 */
size_t tg_offsets_open_count(const struct tg_offsets *o);

#endif
