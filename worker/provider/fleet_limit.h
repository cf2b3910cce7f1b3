/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_limit.h - limits on calls to a model provider shared by every
 * worker of an environment, kept in Redis (DashScope's quotas apply per
 * account, not per worker): a token bucket for requests per second and a
 * semaphore for calls or tasks at once. Both are one Lua script each, on
 * Redis's own clock, so workers with skewed clocks agree. A holder that
 * dies frees its semaphore slot when the slot's lease runs out. Keys:
 * tripgen:{env}:limit:{name}:bucket and tripgen:{env}:limit:{name}:slots.
 * Thread-safe (one Redis connection behind a mutex; waiting happens
 * outside it). When Redis cannot be reached the limit lets calls through
 * (fail open) and says so in the log: the provider's own 429s still apply.
 * A dead Redis costs a call at most about one command timeout; calls in the
 * half second after a failure pass without trying it.
 */
#ifndef TG_FLEET_LIMIT_H
#define TG_FLEET_LIMIT_H

#include "tg_err.h"
#include "tg_transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_fleet_limit_s tg_fleet_limit_t;

struct tg_fleet_limit_conf {
  const char *env;         /* the environment (its hash tag) */
  const char *name;        /* "llm", "wanx" */
  int rps;                 /* tokens per second; 0 = no rate limit */
  int burst;               /* bucket size; 0 = rps */
  int concurrency;         /* slots; 0 = no concurrency limit */
  int64_t slot_lease_ms;   /* a slot not released within this is freed; 0 = 10 min */
};

/**
 * tg_fleet_limit_create() - a limit (connects to Redis lazily)
 * @redis:  redis_url and timeouts of the worker's queue (copied)
 * @conf:   the limit (copied)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: the limit, or NULL (bad URL, out of memory). With rps and
 * concurrency both 0 a limit that never waits is returned.
 */
tg_fleet_limit_t *tg_fleet_limit_create(const struct tg_transport_conf *redis,
                                        const struct tg_fleet_limit_conf *conf, char *errstr,
                                        size_t n);

/**
 * tg_fleet_limit_destroy() - close and free (NULL-safe)
 * @l: the limit
 */
void tg_fleet_limit_destroy(tg_fleet_limit_t *l);

/**
 * tg_fleet_limit_take_token() - wait for one request token
 * @l:           the limit (NULL: no limit)
 * @deadline_ms: monotonic time after which waiting is pointless; 0 = none
 * @waited_ms:   set to the time spent waiting (may be NULL): 0 when the
 *               first try answered, whatever its round trip took
 *
 * Return: true with a token (or when Redis is unreachable: fail open);
 * false when the deadline would pass first.
 */
bool tg_fleet_limit_take_token(tg_fleet_limit_t *l, int64_t deadline_ms, int64_t *waited_ms);

/**
 * tg_fleet_limit_acquire_slot() - wait for one concurrency slot
 * @l:           the limit (NULL: no limit)
 * @holder:      a name unique to this acquisition (worker, thread, job)
 * @deadline_ms: monotonic deadline; 0 = none
 * @waited_ms:   set to the time spent waiting (may be NULL), as above
 *
 * Acquiring again under a name that holds a slot renews its lease.
 *
 * Return: true with the slot (or fail open); false when the deadline
 * would pass first. Release it with tg_fleet_limit_release_slot().
 */
bool tg_fleet_limit_acquire_slot(tg_fleet_limit_t *l, const char *holder, int64_t deadline_ms,
                                 int64_t *waited_ms);

/**
 * tg_fleet_limit_release_slot() - give a slot back (idempotent)
 * @l:      the limit (NULL: nothing)
 * @holder: the name it was acquired with
 */
void tg_fleet_limit_release_slot(tg_fleet_limit_t *l, const char *holder);

#endif
