/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bqueue.h - a bounded blocking FIFO of pointers between pipeline stages:
 * push waits while it is full (back-pressure), pop waits while it is empty,
 * close wakes everyone and makes pop return NULL once drained.
 */
#ifndef TG_BQUEUE_H
#define TG_BQUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tg_bqueue_s tg_bqueue_t;

/**
 * tg_bqueue_new() - a queue of @cap slots
 * @cap: capacity (>= 1)
 *
 * Return: the queue, or NULL when out of memory.
 */
tg_bqueue_t *tg_bqueue_new(size_t cap);

/**
 * tg_bqueue_destroy() - free (items left in it are not freed; NULL-safe)
 * @q: the queue
 */
void tg_bqueue_destroy(tg_bqueue_t *q);

/**
 * tg_bqueue_push() - append, waiting for room
 * @q:    the queue
 * @item: the item
 *
 * Return: false when the queue was closed (the item was not added).
 */
bool tg_bqueue_push(tg_bqueue_t *q, void *item);

/**
 * tg_bqueue_push_many() - append several in order, waiting for room as needed
 * @q:     the queue
 * @items: the items
 * @count: their number
 *
 * Return: how many were added (fewer only when the queue was closed).
 */
size_t tg_bqueue_push_many(tg_bqueue_t *q, void *const *items, size_t count);

/**
 * tg_bqueue_pop() - take the oldest item, waiting for one
 * @q: the queue
 *
 * Return: the item, or NULL once the queue is closed and empty.
 */
void *tg_bqueue_pop(tg_bqueue_t *q);

/**
 * tg_bqueue_pop_many() - take the oldest items, waiting for at least one
 * @q:     the queue
 * @items: where they go
 * @max:   most items to take
 *
 * Return: the number taken; 0 once the queue is closed and empty.
 */
size_t tg_bqueue_pop_many(tg_bqueue_t *q, void **items, size_t max);

/**
 * tg_bqueue_wait_room() - wait until a push would not block
 * @q:          the queue
 * @timeout_ms: longest wait
 *
 * Return: the free slots (0 after a timeout or when closed).
 */
size_t tg_bqueue_wait_room(tg_bqueue_t *q, int timeout_ms);

/**
 * tg_bqueue_close() - refuse further pushes and wake all waiters
 * @q: the queue
 */
void tg_bqueue_close(tg_bqueue_t *q);

#endif
