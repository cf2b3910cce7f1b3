/* SPDX-License-Identifier: Apache-2.0 */
/*
 * breaker.c - the per-worker circuit breaker of a backend (breaker.h):
 * closed until `failures` consecutive counted failures, then open for
 * open_ms, then half-open with exactly one probe in flight; the probe's
 * success closes it, its failure opens it for another open_ms. A probe
 * never recorded is given up after open_ms and another one goes, so a
 * caller that forgets to record cannot wedge the breaker. Every state
 * change updates the metrics and logs one line, under the mutex so the
 * gauge follows the order of the changes.
 *
 * Records carry no ticket: while half-open, the first record is taken as
 * the probe's outcome (a late record of a call let through before the
 * breaker opened counts as a probe; a late failure re-opens, which errs on
 * the safe side). Records that arrive while open change nothing.
 */
#include "provider/breaker.h"

#include "metrics.h"
#include "tg_log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct tg_breaker_s {
  pthread_mutex_t mu;
  char backend[32];
  struct tg_breaker_conf conf;
  enum tg_breaker_state state;
  int consecutive;     /* counted failures in a row while closed */
  int64_t opened_at;   /* when it last opened */
  int64_t probe_at;    /* when the outstanding probe was let through (half-open) */
  bool probe_free;     /* half-open with no probe out: the last one was not made */
};

tg_breaker_t *tg_breaker_create(const char *backend, const struct tg_breaker_conf *conf) {
  tg_breaker_t *b = calloc(1, sizeof(*b));
  if (!b)
    return NULL;
  if (pthread_mutex_init(&b->mu, NULL) != 0) {
    free(b);
    return NULL;
  }
  snprintf(b->backend, sizeof(b->backend), "%s", backend ? backend : "");
  b->conf = *conf;
  if (b->conf.failures < 0)
    b->conf.failures = 0;
  if (b->conf.open_ms < 0)
    b->conf.open_ms = 0;
  b->state = TG_BREAKER_CLOSED;
  return b;
}

void tg_breaker_destroy(tg_breaker_t *b) {
  if (!b)
    return;
  pthread_mutex_destroy(&b->mu);
  free(b);
}

/* Under the mutex: open (again) at @now. */
static void set_open(tg_breaker_t *b, int64_t now, bool probe_failed) {
  b->state = TG_BREAKER_OPEN;
  b->opened_at = now;
  tg_metrics_breaker(b->backend, TG_BREAKER_OPEN, true);
  if (probe_failed)
    tg_log(TG_WARN, "event=breaker_opened backend=%s probe_failed=true open_ms=%" PRId64,
           b->backend, b->conf.open_ms);
  else
    tg_log(TG_WARN, "event=breaker_opened backend=%s failures=%d open_ms=%" PRId64, b->backend,
           b->consecutive, b->conf.open_ms);
  b->consecutive = 0;
}

bool tg_breaker_allow(tg_breaker_t *b, int64_t now_ms, int64_t *retry_in_ms) {
  if (!b)
    return true;
  bool ok = false;
  int64_t retry = 1;
  pthread_mutex_lock(&b->mu);
  switch (b->state) {
  case TG_BREAKER_CLOSED:
    ok = true;
    break;
  case TG_BREAKER_OPEN:
    if (now_ms - b->opened_at >= b->conf.open_ms) {
      b->state = TG_BREAKER_HALF_OPEN;
      b->probe_at = now_ms;
      b->probe_free = false;
      tg_metrics_breaker(b->backend, TG_BREAKER_HALF_OPEN, false);
      tg_log(TG_INFO, "event=breaker_half_open backend=%s open_for_ms=%" PRId64, b->backend,
             now_ms - b->opened_at);
      ok = true;
    } else {
      retry = b->opened_at + b->conf.open_ms - now_ms;
    }
    break;
  case TG_BREAKER_HALF_OPEN:
    if (b->probe_free) {
      b->probe_free = false;
      b->probe_at = now_ms;
      ok = true;
    } else if (now_ms - b->probe_at >= b->conf.open_ms) {
      /* the probe was never recorded: let another one go */
      tg_log(TG_WARN, "event=breaker_probe_expired backend=%s probe_age_ms=%" PRId64,
             b->backend, now_ms - b->probe_at);
      b->probe_at = now_ms;
      ok = true;
    } else {
      retry = b->probe_at + b->conf.open_ms - now_ms;
    }
    break;
  }
  pthread_mutex_unlock(&b->mu);
  if (!ok && retry_in_ms)
    *retry_in_ms = retry < 1 ? 1 : retry;
  return ok;
}

void tg_breaker_record(tg_breaker_t *b, bool failed, int64_t now_ms) {
  if (!b)
    return;
  pthread_mutex_lock(&b->mu);
  switch (b->state) {
  case TG_BREAKER_CLOSED:
    if (!failed)
      b->consecutive = 0;
    else if (b->conf.failures > 0 && ++b->consecutive >= b->conf.failures)
      set_open(b, now_ms, false);
    break;
  case TG_BREAKER_HALF_OPEN:
    if (failed) {
      set_open(b, now_ms, true);
    } else {
      b->state = TG_BREAKER_CLOSED;
      b->consecutive = 0;
      tg_metrics_breaker(b->backend, TG_BREAKER_CLOSED, false);
      tg_log(TG_INFO, "event=breaker_closed backend=%s since_opened_ms=%" PRId64, b->backend,
             now_ms - b->opened_at);
    }
    break;
  case TG_BREAKER_OPEN:
    break; /* a call let through before it opened: nothing to learn */
  }
  pthread_mutex_unlock(&b->mu);
}

int64_t tg_breaker_wait_ms(tg_breaker_t *b, int64_t now_ms) {
  if (!b)
    return 0;
  int64_t wait = 0;
  pthread_mutex_lock(&b->mu);
  if (b->state == TG_BREAKER_OPEN)
    wait = b->opened_at + b->conf.open_ms - now_ms;
  else if (b->state == TG_BREAKER_HALF_OPEN && !b->probe_free)
    wait = b->probe_at + b->conf.open_ms - now_ms;
  pthread_mutex_unlock(&b->mu);
  return wait > 0 ? wait : 0;
}

void tg_breaker_forget(tg_breaker_t *b) {
  if (!b)
    return;
  pthread_mutex_lock(&b->mu);
  if (b->state == TG_BREAKER_HALF_OPEN)
    b->probe_free = true; /* the next caller probes at once */
  pthread_mutex_unlock(&b->mu);
}

enum tg_breaker_state tg_breaker_state(tg_breaker_t *b) {
  if (!b)
    return TG_BREAKER_CLOSED;
  pthread_mutex_lock(&b->mu);
  enum tg_breaker_state s = b->state;
  pthread_mutex_unlock(&b->mu);
  return s;
}
