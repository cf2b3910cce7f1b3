/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_breaker.c - the circuit breaker driven with explicit times: it
 * opens after N consecutive failures and not before, refuses while open
 * with the right retry_in_ms, lets exactly one probe through when half-open,
 * closes on the probe's success and re-opens on its failure for another
 * open_ms (one probe even when many threads ask at once), never opens with failures == 0, counts only consecutive
 * failures, lets another probe go when one is never recorded, and takes
 * NULL everywhere.
 */
#undef NDEBUG
#include "check.h"
#include "provider/breaker.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

static tg_breaker_t *mk(int failures, int64_t open_ms) {
  struct tg_breaker_conf c = {.failures = failures, .open_ms = open_ms};
  tg_breaker_t *b = tg_breaker_create("dashscope", &c);
  CHECK(b != NULL);
  return b;
}

/* allow() that must say yes */
static void allowed(tg_breaker_t *b, int64_t now) {
  int64_t retry = -7;
  CHECK_MSG(tg_breaker_allow(b, now, &retry), "refused at %" PRId64, now);
  CHECK(retry == -7); /* untouched when allowed */
}

/* allow() that must say no, with this retry_in_ms */
static void refused(tg_breaker_t *b, int64_t now, int64_t want_retry) {
  int64_t retry = -7;
  bool ok = tg_breaker_allow(b, now, &retry);
  CHECK_MSG(!ok, "allowed at %" PRId64, now);
  CHECK_MSG(retry == want_retry, "at %" PRId64 ": retry_in_ms %" PRId64 ", want %" PRId64, now,
            retry, want_retry);
}

/* n failed calls at @now */
static void fail_n(tg_breaker_t *b, int n, int64_t now) {
  for (int i = 0; i < n; i++) {
    allowed(b, now);
    tg_breaker_record(b, true, now);
  }
}

static void test_opens_after_n(void) {
  tg_breaker_t *b = mk(3, 1000);
  fail_n(b, 2, 100);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  allowed(b, 100);
  tg_breaker_record(b, true, 200); /* the third: opens at 200 */
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  refused(b, 200, 1000);
  refused(b, 700, 500);
  refused(b, 1199, 1);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  tg_breaker_destroy(b);
}

static void test_one_probe_when_half_open(void) {
  tg_breaker_t *b = mk(2, 1000);
  fail_n(b, 2, 0);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  allowed(b, 1000); /* the probe */
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  refused(b, 1000, 1000); /* others wait for it (at most until it expires) */
  refused(b, 1500, 500);
  refused(b, 1999, 1);
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  tg_breaker_destroy(b);
}

static void test_probe_success_closes(void) {
  tg_breaker_t *b = mk(2, 1000);
  fail_n(b, 2, 0);
  allowed(b, 1200);
  tg_breaker_record(b, false, 1300);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  for (int i = 0; i < 5; i++)
    allowed(b, 1300);
  /* closed again from a clean count: one failure does not re-open it */
  tg_breaker_record(b, true, 1400);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  allowed(b, 1400);
  tg_breaker_record(b, true, 1500);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  refused(b, 1500, 1000);
  tg_breaker_destroy(b);
}

static void test_probe_failure_reopens(void) {
  tg_breaker_t *b = mk(2, 1000);
  fail_n(b, 2, 0);
  allowed(b, 1000);
  tg_breaker_record(b, true, 1300); /* re-opens at 1300, for another 1000 */
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  refused(b, 1300, 1000);
  refused(b, 2000, 300);
  refused(b, 2299, 1);
  allowed(b, 2300); /* the next probe */
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  refused(b, 2300, 1000);
  tg_breaker_record(b, false, 2400);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  allowed(b, 2400);
  tg_breaker_destroy(b);
}

static void test_zero_failures_never_opens(void) {
  tg_breaker_t *b = mk(0, 1000);
  fail_n(b, 1000, 5);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  allowed(b, 6);
  tg_breaker_destroy(b);
}

static void test_success_resets_the_count(void) {
  tg_breaker_t *b = mk(3, 1000);
  for (int round = 0; round < 10; round++) {
    fail_n(b, 2, round);
    allowed(b, round);
    tg_breaker_record(b, false, round);
  }
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  fail_n(b, 3, 50);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  tg_breaker_destroy(b);
}

static void test_forgotten_probe_times_out(void) {
  tg_breaker_t *b = mk(1, 1000);
  fail_n(b, 1, 0);
  allowed(b, 1000); /* a probe whose outcome is never recorded */
  refused(b, 1999, 1);
  allowed(b, 2000); /* so another one goes after open_ms */
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  refused(b, 2000, 1000);
  tg_breaker_record(b, false, 2100);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  tg_breaker_destroy(b);
}

static void test_records_while_open_change_nothing(void) {
  tg_breaker_t *b = mk(2, 1000);
  allowed(b, 0);
  allowed(b, 0);
  allowed(b, 0); /* three calls in flight */
  tg_breaker_record(b, true, 10);
  tg_breaker_record(b, true, 20); /* opens at 20 */
  tg_breaker_record(b, false, 30); /* the third answers late: still open */
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  tg_breaker_record(b, true, 900); /* nor does a late failure extend it */
  refused(b, 1000, 20);
  allowed(b, 1020);
  tg_breaker_destroy(b);
}

static void test_open_ms_zero_probes_at_once(void) {
  tg_breaker_t *b = mk(1, 0);
  fail_n(b, 1, 10);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  allowed(b, 10);
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  tg_breaker_record(b, false, 10);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  tg_breaker_destroy(b);
}

#define RACERS 8
static pthread_barrier_t start_line;
static atomic_int let_through;

static void *racer(void *arg) {
  tg_breaker_t *b = arg;
  pthread_barrier_wait(&start_line);
  for (int i = 0; i < 1000; i++)
    if (tg_breaker_allow(b, 5000, NULL))
      atomic_fetch_add(&let_through, 1);
  return NULL;
}

static void test_one_probe_across_threads(void) {
  tg_breaker_t *b = mk(1, 1000);
  fail_n(b, 1, 0);
  pthread_t th[RACERS];
  pthread_barrier_init(&start_line, NULL, RACERS);
  atomic_store(&let_through, 0);
  for (int i = 0; i < RACERS; i++)
    pthread_create(&th[i], NULL, racer, b);
  for (int i = 0; i < RACERS; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&start_line);
  CHECK_MSG(atomic_load(&let_through) == 1, "%d calls let through", atomic_load(&let_through));
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN);
  tg_breaker_destroy(b);
}

static void test_null(void) {
  int64_t retry = -7;
  CHECK(tg_breaker_allow(NULL, 0, &retry));
  CHECK(retry == -7);
  tg_breaker_record(NULL, true, 0);
  CHECK(tg_breaker_state(NULL) == TG_BREAKER_CLOSED);
  tg_breaker_destroy(NULL);
  tg_breaker_t *b = mk(1, 100);
  fail_n(b, 1, 0);
  CHECK(!tg_breaker_allow(b, 1, NULL)); /* retry_in_ms may be NULL */
  tg_breaker_destroy(b);
}

/* wait_ms() tells what allow() would say, without changing it; forget() gives
 * an unused probe back so the next caller probes at once. */
static void test_wait_and_forget(void) {
  tg_breaker_t *b = mk(2, 1000);
  CHECK(tg_breaker_wait_ms(b, 0) == 0);
  fail_n(b, 2, 0);
  CHECK(tg_breaker_wait_ms(b, 0) == 1000 && tg_breaker_wait_ms(b, 400) == 600);
  CHECK(tg_breaker_wait_ms(b, 1000) == 0);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN); /* asking changed nothing */
  allowed(b, 1000);                                /* the probe ... */
  CHECK(tg_breaker_wait_ms(b, 1200) == 800);
  tg_breaker_forget(b);                            /* ... was not made after all */
  CHECK(tg_breaker_state(b) == TG_BREAKER_HALF_OPEN && tg_breaker_wait_ms(b, 1200) == 0);
  allowed(b, 1200);                                /* another caller probes at once */
  refused(b, 1200, 1000);
  tg_breaker_record(b, false, 1300);
  CHECK(tg_breaker_state(b) == TG_BREAKER_CLOSED);
  tg_breaker_forget(b); /* closed: nothing to give back, the count is kept */
  fail_n(b, 1, 1400);
  tg_breaker_forget(b);
  fail_n(b, 1, 1500);
  CHECK(tg_breaker_state(b) == TG_BREAKER_OPEN);
  tg_breaker_destroy(b);
  CHECK(tg_breaker_wait_ms(NULL, 0) == 0);
  tg_breaker_forget(NULL);
}

int main(void) {
  RUN(test_opens_after_n);
  RUN(test_one_probe_when_half_open);
  RUN(test_probe_success_closes);
  RUN(test_probe_failure_reopens);
  RUN(test_zero_failures_never_opens);
  RUN(test_success_resets_the_count);
  RUN(test_forgotten_probe_times_out);
  RUN(test_records_while_open_change_nothing);
  RUN(test_open_ms_zero_probes_at_once);
  RUN(test_one_probe_across_threads);
  RUN(test_wait_and_forget);
  RUN(test_null);
  return check_done("breaker");
}
