/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fleet_limit.c - fleet-wide limits in Redis (fleet_limit.h): a token
 * bucket and a semaphore of leased slots, each one Lua script on Redis's
 * clock. The scripts only answer "granted" (0) or "try again in N ms";
 * the waiting happens here, outside the mutex that guards the one
 * connection, with a little jitter so workers do not retry in step.
 *
 * When Redis cannot be reached the limit fails open: the first failure
 * logs event=fleet_limit_unavailable, calls for the next OUTAGE_RETRY_MS
 * pass without touching Redis, and the first success after it logs
 * event=fleet_limit_available. The connection gives a command at most
 * RECONNECT_MAX_MS of reconnecting (not the queue's much longer
 * reconnect_max_ms), so a call never waits on a dead Redis for more than
 * about one connect or command timeout.
 */
#include "provider/fleet_limit.h"

#include "redis_conn.h"
#include "redis_url.h"
#include "tg_log.h"
#include "tg_time.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 256
#define OUTAGE_RETRY_MS 500   /* after a failure, calls pass without Redis this long */
#define RECONNECT_MAX_MS 100  /* reconnecting within one command (a restarted server) */
#define SLOT_POLL_MS 50       /* the semaphore script's longest hint */
#define SLOT_SLEEP_MAX_MS 100 /* so that releases are seen quickly */
#define DEFAULT_LEASE_MS 600000

/*
 * KEYS[1] the bucket (hash: tokens, ts in ms). ARGV: rps, burst, ttl ms.
 * Returns 0 when a token was taken, else the ms until one is there. A
 * refusal writes nothing: the refill is a function of ts alone.
 */
static const char BUCKET_LUA[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000\n"
    "local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(v[1])\n"
    "local ts = tonumber(v[2])\n"
    "if tokens == nil or ts == nil or ts > now + 1000 then\n"
    "  tokens = burst\n"
    "  ts = now\n"
    "end\n"
    "if now > ts then\n"
    "  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)\n"
    "  ts = now\n"
    "end\n"
    "if tokens < 1 then\n"
    "  local wait = math.ceil((1 - tokens) * 1000 / rate + (ts - now))\n"
    "  if wait < 1 then wait = 1 end\n"
    "  return wait\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'ts', ts)\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "return 0\n";

/*
 * KEYS[1] the slots (zset: holder -> lease expiry in ms). ARGV:
 * concurrency, holder, lease ms, poll ms. Returns 0 when the holder holds
 * a slot (its lease renewed), else the ms to wait: until the earliest
 * lease runs out, at most poll ms. The key lives as long as its longest
 * lease, so workers with different leases cannot cut each other's short.
 */
static const char SLOTS_LUA[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local lease = tonumber(ARGV[3])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "if redis.call('ZSCORE', KEYS[1], ARGV[2]) or\n"
    "   redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then\n"
    "  redis.call('ZADD', KEYS[1], now + lease, ARGV[2])\n"
    "  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')\n"
    "  redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - now + 1000)\n"
    "  return 0\n"
    "end\n"
    "local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')\n"
    "local wait = tonumber(ARGV[4])\n"
    "if first[2] then\n"
    "  local left = tonumber(first[2]) - now\n"
    "  if left < wait then wait = left end\n"
    "end\n"
    "if wait < 1 then wait = 1 end\n"
    "return wait\n";

struct tg_fleet_limit_s {
  pthread_mutex_t mu;              /* guards conn */
  struct tg_transport_conf redis;
  tg_redis_conn_t *conn;           /* NULL until first used, or after a failed connect */
  char env[64], name[64];
  int rps, burst, concurrency;
  int64_t lease_ms;
  char k_bucket[KEY_MAX], k_slots[KEY_MAX];
  char bucket_sha[41], slots_sha[41];
  char a_rps[24], a_burst[24], a_bucket_ttl[24];
  char a_conc[24], a_lease[24], a_poll[24];
  atomic_bool down;                /* an outage is on (logged once) */
  _Atomic int64_t retry_at;        /* while down: Redis is tried again from then */
  int64_t down_since;              /* under mu */
};

tg_fleet_limit_t *tg_fleet_limit_create(const struct tg_transport_conf *redis,
                                        const struct tg_fleet_limit_conf *conf, char *errstr,
                                        size_t n) {
  if (conf->rps < 0 || conf->burst < 0 || conf->concurrency < 0 || conf->slot_lease_ms < 0) {
    snprintf(errstr, n, "fleet limit: negative rps, burst, concurrency or slot_lease_ms");
    return NULL;
  }
  bool limited = conf->rps > 0 || conf->concurrency > 0;
  if (limited && (!conf->env || !*conf->env || !conf->name || !*conf->name)) {
    snprintf(errstr, n, "fleet limit: env and name are required");
    return NULL;
  }
  struct tg_redis_url url;
  if (limited && !tg_redis_url_parse(redis->redis_url, &url, errstr, n))
    return NULL;
  tg_fleet_limit_t *l = calloc(1, sizeof(*l));
  if (!l) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  if (pthread_mutex_init(&l->mu, NULL) != 0) {
    free(l);
    snprintf(errstr, n, "fleet limit: cannot create a mutex");
    return NULL;
  }
  l->redis = *redis;
  if (l->redis.reconnect_max_ms > RECONNECT_MAX_MS)
    l->redis.reconnect_max_ms = RECONNECT_MAX_MS;
  snprintf(l->env, sizeof(l->env), "%s", conf->env ? conf->env : "");
  snprintf(l->name, sizeof(l->name), "%s", conf->name ? conf->name : "");
  l->rps = conf->rps;
  l->burst = conf->burst > 0 ? conf->burst : conf->rps;
  l->concurrency = conf->concurrency;
  l->lease_ms = conf->slot_lease_ms > 0 ? conf->slot_lease_ms : DEFAULT_LEASE_MS;
  int kb = snprintf(l->k_bucket, KEY_MAX, "tripgen:{%s}:limit:%s:bucket", l->env, l->name);
  int ks = snprintf(l->k_slots, KEY_MAX, "tripgen:{%s}:limit:%s:slots", l->env, l->name);
  if (kb >= KEY_MAX || ks >= KEY_MAX) {
    snprintf(errstr, n, "fleet limit: env or name too long");
    tg_fleet_limit_destroy(l);
    return NULL;
  }
  tg_redis_sha1_hex(BUCKET_LUA, l->bucket_sha);
  tg_redis_sha1_hex(SLOTS_LUA, l->slots_sha);
  /* a full bucket is one whose key may vanish: refill time plus a margin */
  int64_t refill_ms = l->rps > 0 ? ((int64_t)l->burst * 1000 + l->rps - 1) / l->rps : 0;
  snprintf(l->a_rps, sizeof(l->a_rps), "%d", l->rps);
  snprintf(l->a_burst, sizeof(l->a_burst), "%d", l->burst);
  snprintf(l->a_bucket_ttl, sizeof(l->a_bucket_ttl), "%" PRId64, refill_ms + 1000);
  snprintf(l->a_conc, sizeof(l->a_conc), "%d", l->concurrency);
  snprintf(l->a_lease, sizeof(l->a_lease), "%" PRId64, l->lease_ms);
  snprintf(l->a_poll, sizeof(l->a_poll), "%d", SLOT_POLL_MS);
  return l;
}

void tg_fleet_limit_destroy(tg_fleet_limit_t *l) {
  if (!l)
    return;
  tg_redis_conn_destroy(l->conn);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

/* A small random number in [0, max], thread-safe (splitmix64 on a shared counter). */
static int64_t jitter(int64_t max) {
  static _Atomic uint64_t state = 0x2545F4914F6CDD1DULL;
  if (max <= 0)
    return 0;
  uint64_t z = atomic_fetch_add(&state, 0x9E3779B97F4A7C15ULL) + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return (int64_t)(z % (uint64_t)(max + 1));
}

/* Under mu: note a failure; the first of an outage is logged. */
static void mark_down(tg_fleet_limit_t *l, const char *why) {
  int64_t now = tg_mono_ms();
  if (!atomic_load(&l->down)) {
    char q[320];
    l->down_since = now;
    tg_log(TG_WARN,
           "event=fleet_limit_unavailable env=%s limit=%s err=%s action=fail_open "
           "retry_ms=%d",
           l->env, l->name, tg_logq(q, sizeof(q), why), OUTAGE_RETRY_MS);
  }
  atomic_store(&l->retry_at, now + OUTAGE_RETRY_MS);
  atomic_store(&l->down, true);
}

/* Under mu: note a success; the end of an outage is logged. */
static void mark_up(tg_fleet_limit_t *l) {
  if (!atomic_load(&l->down))
    return;
  tg_log(TG_INFO, "event=fleet_limit_available env=%s limit=%s down_ms=%" PRId64, l->env,
         l->name, tg_mono_ms() - l->down_since);
  atomic_store(&l->down, false);
}

enum op { OP_TOKEN, OP_SLOT, OP_RELEASE };

/*
 * One script run or release. Return: the script's answer (>= 0), or -1
 * when Redis could not answer (fail open; logged once per outage).
 */
static int64_t run(tg_fleet_limit_t *l, enum op op, const char *holder) {
  if (atomic_load(&l->down)) {
    /* an outage: pass at once until it is time to try again, and while
     * another thread is trying */
    if (tg_mono_ms() < atomic_load(&l->retry_at) || pthread_mutex_trylock(&l->mu) != 0)
      return -1;
  } else {
    pthread_mutex_lock(&l->mu);
    if (atomic_load(&l->down) && tg_mono_ms() < atomic_load(&l->retry_at)) {
      pthread_mutex_unlock(&l->mu); /* the thread before us found Redis gone */
      return -1;
    }
  }
  char why[512] = "";
  int64_t out = -1;
  redisReply *r = NULL;
  if (!l->conn)
    l->conn = tg_redis_conn_new(&l->redis, "fleet_limit", NULL, NULL, why, sizeof(why));
  if (l->conn) {
    tg_err_t err = TG_OK;
    if (op == OP_TOKEN) {
      const char *keys[] = {l->k_bucket};
      const char *args[] = {l->a_rps, l->a_burst, l->a_bucket_ttl};
      r = tg_redis_conn_eval(l->conn, BUCKET_LUA, l->bucket_sha, 1, keys, 3, args, NULL, &err,
                             why, sizeof(why));
    } else if (op == OP_SLOT) {
      const char *keys[] = {l->k_slots};
      const char *args[] = {l->a_conc, holder, l->a_lease, l->a_poll};
      r = tg_redis_conn_eval(l->conn, SLOTS_LUA, l->slots_sha, 1, keys, 4, args, NULL, &err,
                             why, sizeof(why));
    } else {
      const char *argv[] = {"ZREM", l->k_slots, holder};
      r = tg_redis_conn_cmdv(l->conn, 0, 3, argv, why, sizeof(why));
    }
  }
  if (r && r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
    out = op == OP_RELEASE ? 0 : r->integer;
    mark_up(l);
  } else {
    if (r)
      snprintf(why, sizeof(why), "unexpected reply: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "not an integer");
    mark_down(l, why);
  }
  pthread_mutex_unlock(&l->mu);
  freeReplyObject(r);
  return out;
}

/* A call waited when its first try was refused; its round trips alone are no
 * wait. The caller counts it in the metrics, under its backend's name. */
static void note_wait(const tg_fleet_limit_t *l, int tries, int64_t start, int64_t *waited_ms) {
  (void)l;
  int64_t waited = tries > 1 ? tg_mono_ms() - start : 0;
  if (waited_ms)
    *waited_ms = waited;
}

bool tg_fleet_limit_take_token(tg_fleet_limit_t *l, int64_t deadline_ms, int64_t *waited_ms) {
  if (waited_ms)
    *waited_ms = 0;
  if (!l || l->rps <= 0)
    return true;
  int64_t start = tg_mono_ms();
  bool ok;
  int tries = 0;
  for (;;) {
    int64_t wait = run(l, OP_TOKEN, NULL);
    tries++;
    if (wait <= 0) { /* taken, or fail open */
      ok = true;
      break;
    }
    int64_t now = tg_mono_ms();
    if (deadline_ms && now + wait > deadline_ms) {
      ok = false; /* no token can come in time */
      break;
    }
    int64_t nap = wait + jitter(wait / 8 < 10 ? wait / 8 : 10);
    if (deadline_ms && now + nap > deadline_ms)
      nap = deadline_ms - now;
    tg_sleep_ms(nap);
  }
  note_wait(l, tries, start, waited_ms);
  return ok;
}

bool tg_fleet_limit_acquire_slot(tg_fleet_limit_t *l, const char *holder, int64_t deadline_ms,
                                 int64_t *waited_ms) {
  if (waited_ms)
    *waited_ms = 0;
  if (!l || l->concurrency <= 0)
    return true;
  int64_t start = tg_mono_ms();
  bool ok;
  int tries = 0;
  for (;;) {
    int64_t wait = run(l, OP_SLOT, holder ? holder : "");
    tries++;
    if (wait <= 0) {
      ok = true;
      break;
    }
    int64_t now = tg_mono_ms();
    if (deadline_ms && now >= deadline_ms) {
      ok = false;
      break;
    }
    /* a release can come at any time: the hint is only how long to poll */
    int64_t nap = (wait < SLOT_SLEEP_MAX_MS ? wait : SLOT_SLEEP_MAX_MS) + jitter(5);
    if (deadline_ms && now + nap > deadline_ms)
      nap = deadline_ms - now;
    tg_sleep_ms(nap);
  }
  note_wait(l, tries, start, waited_ms);
  return ok;
}

void tg_fleet_limit_release_slot(tg_fleet_limit_t *l, const char *holder) {
  if (!l || l->concurrency <= 0)
    return;
  run(l, OP_RELEASE, holder ? holder : ""); /* lost in an outage: the lease frees it */
}
