/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bqueue.c - a ring buffer guarded by one mutex and two condition
 * variables (not empty, not full).
 */
#include "bqueue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct tg_bqueue_s {
  pthread_mutex_t lock;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
  void **items;
  size_t cap, head, len;
  bool closed;
};

tg_bqueue_t *tg_bqueue_new(size_t cap) {
  tg_bqueue_t *q = calloc(1, sizeof(*q));
  if (!q || !(q->items = calloc(cap ? cap : 1, sizeof(void *)))) {
    free(q);
    return NULL;
  }
  q->cap = cap ? cap : 1;
  pthread_mutex_init(&q->lock, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  return q;
}

void tg_bqueue_destroy(tg_bqueue_t *q) {
  if (!q)
    return;
  pthread_mutex_destroy(&q->lock);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
  free(q->items);
  free(q);
}

bool tg_bqueue_push(tg_bqueue_t *q, void *item) {
  pthread_mutex_lock(&q->lock);
  while (q->len == q->cap && !q->closed)
    pthread_cond_wait(&q->not_full, &q->lock);
  bool ok = !q->closed;
  if (ok) {
    q->items[(q->head + q->len) % q->cap] = item;
    q->len++;
    pthread_cond_signal(&q->not_empty);
  }
  pthread_mutex_unlock(&q->lock);
  return ok;
}

size_t tg_bqueue_push_many(tg_bqueue_t *q, void *const *items, size_t count) {
  size_t done = 0;
  pthread_mutex_lock(&q->lock);
  while (done < count) {
    while (q->len == q->cap && !q->closed)
      pthread_cond_wait(&q->not_full, &q->lock);
    if (q->closed)
      break;
    for (; done < count && q->len < q->cap; done++) {
      q->items[(q->head + q->len) % q->cap] = items[done];
      q->len++;
    }
    pthread_cond_broadcast(&q->not_empty);
  }
  pthread_mutex_unlock(&q->lock);
  return done;
}

void *tg_bqueue_pop(tg_bqueue_t *q) {
  pthread_mutex_lock(&q->lock);
  while (q->len == 0 && !q->closed)
    pthread_cond_wait(&q->not_empty, &q->lock);
  void *item = NULL;
  if (q->len > 0) {
    item = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
    pthread_cond_broadcast(&q->not_full);
  }
  pthread_mutex_unlock(&q->lock);
  return item;
}

size_t tg_bqueue_pop_many(tg_bqueue_t *q, void **items, size_t max) {
  pthread_mutex_lock(&q->lock);
  while (q->len == 0 && !q->closed)
    pthread_cond_wait(&q->not_empty, &q->lock);
  size_t got = 0;
  for (; got < max && q->len > 0; got++) {
    items[got] = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    q->len--;
  }
  if (got)
    pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->lock);
  return got;
}

size_t tg_bqueue_wait_room(tg_bqueue_t *q, int timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&q->lock);
  while (q->len == q->cap && !q->closed)
    if (pthread_cond_timedwait(&q->not_full, &q->lock, &until) == ETIMEDOUT)
      break;
  size_t room = q->closed ? 0 : q->cap - q->len;
  pthread_mutex_unlock(&q->lock);
  return room;
}

void tg_bqueue_close(tg_bqueue_t *q) {
  pthread_mutex_lock(&q->lock);
  q->closed = true;
  pthread_cond_broadcast(&q->not_empty);
  pthread_cond_broadcast(&q->not_full);
  pthread_mutex_unlock(&q->lock);
}
