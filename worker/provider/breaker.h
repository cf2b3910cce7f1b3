/* SPDX-License-Identifier: Apache-2.0 */
/*
 * breaker.h - a circuit breaker per backend and worker: after a run of
 * failed calls (no answer, 5xx) it opens and refuses calls at once for a
 * while, then lets one probe through (half-open); the probe's success
 * closes it, its failure opens it again. Answers such as 4xx and 429 are
 * the service working and never count. Thread-safe; time is passed in so
 * tests can drive it.
 */
#ifndef TG_BREAKER_H
#define TG_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_breaker_s tg_breaker_t;

enum tg_breaker_state { TG_BREAKER_CLOSED = 0, TG_BREAKER_OPEN = 1, TG_BREAKER_HALF_OPEN = 2 };

struct tg_breaker_conf {
  int failures;     /* consecutive failures that open it; 0 = never opens */
  int64_t open_ms;  /* time open before a probe is let through */
};

/**
 * tg_breaker_create() - a closed breaker
 * @backend: name for logs and metrics ("dashscope", "openai", "wanx", "comfyui"); copied
 * @conf:    thresholds (copied)
 *
 * Return: the breaker, or NULL when out of memory.
 */
tg_breaker_t *tg_breaker_create(const char *backend, const struct tg_breaker_conf *conf);

/**
 * tg_breaker_destroy() - free (NULL-safe)
 * @b: the breaker
 */
void tg_breaker_destroy(tg_breaker_t *b);

/**
 * tg_breaker_allow() - may a call go now?
 * @b:           the breaker (NULL: always yes)
 * @now_ms:      monotonic now
 * @retry_in_ms: when refused, set to the time until a probe may go (>= 1)
 *
 * Closed: yes. Open: no, until open_ms passed since it opened; then the
 * first caller becomes the probe (half-open) and is let through, and
 * others are refused until the probe is recorded.
 *
 * Return: true when the call may go; the caller must then report its
 * outcome with tg_breaker_record().
 */
bool tg_breaker_allow(tg_breaker_t *b, int64_t now_ms, int64_t *retry_in_ms);

/**
 * tg_breaker_record() - the outcome of an allowed call
 * @b:       the breaker (NULL: nothing)
 * @failed:  true for a failure that counts (no answer, 5xx)
 * @now_ms:  monotonic now
 */
void tg_breaker_record(tg_breaker_t *b, bool failed, int64_t now_ms);

/**
 * tg_breaker_wait_ms() - how long until tg_breaker_allow() would let a call
 * through, without changing anything
 * @b:      the breaker (NULL: 0)
 * @now_ms: monotonic now
 *
 * Return: 0 when a call would go now (closed, or due for a probe), else ms.
 */
int64_t tg_breaker_wait_ms(tg_breaker_t *b, int64_t now_ms);

/**
 * tg_breaker_forget() - an allowed call was not made after all (a limit's
 * wait or the deadline stopped it): nothing is learned, and in half-open
 * the next caller becomes the probe
 * @b: the breaker (NULL: nothing)
 */
void tg_breaker_forget(tg_breaker_t *b);

/**
 * tg_breaker_state() - the state now (for metrics and tests)
 * @b: the breaker
 *
 * Return: the state.
 */
enum tg_breaker_state tg_breaker_state(tg_breaker_t *b);

#endif
