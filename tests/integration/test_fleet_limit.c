/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_fleet_limit.c - the fleet-wide limits (worker/provider/fleet_limit.h)
 * against a real, private redis-server: two limit handles (two workers) of
 * four threads each share one token bucket, whose grants over ~2 s stay
 * within rps * seconds + burst and not far below; a semaphore of 3 never
 * has more than 3 holders while 8 threads all make progress; a holder that
 * never releases is freed after its lease; deadlines give up; envs do not
 * share tokens; idle keys expire; and a hung or dead Redis makes the limit
 * fail open within the command timeout, logged once, until it is back.
 */
#undef NDEBUG
#include "check.h"
#include "provider/fleet_limit.h"
#include "redis_harness.h"
#include "tg_log.h"
#include "tg_time.h"
#include "tg_transport.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_TIMEOUT_MS 500

static struct test_redis srv;
static char errstr[512];

static tg_fleet_limit_t *mk(const char *env, const char *name, int rps, int burst,
                            int concurrency, int64_t lease_ms) {
  struct tg_transport_conf rc;
  tg_transport_conf_init(&rc, env);
  snprintf(rc.redis_url, sizeof(rc.redis_url), "%s", srv.url);
  rc.connect_timeout_ms = CMD_TIMEOUT_MS;
  rc.command_timeout_ms = CMD_TIMEOUT_MS;
  struct tg_fleet_limit_conf c = {.env = env, .name = name, .rps = rps, .burst = burst,
                                  .concurrency = concurrency, .slot_lease_ms = lease_ms};
  tg_fleet_limit_t *l = tg_fleet_limit_create(&rc, &c, errstr, sizeof(errstr));
  CHECK_MSG(l != NULL, "%s", errstr);
  if (!l)
    exit(1);
  return l;
}

/* An integer command on a fresh raw connection; -100 when no answer. */
static long long raw_int(const char *fmt, const char *arg) {
  redisContext *c = test_redis_connect(&srv);
  if (!c)
    return -100;
  redisReply *r = redisCommand(c, fmt, arg);
  redisFree(c);
  long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
  freeReplyObject(r);
  return v;
}

/* --- the token bucket shared by two workers ------------------------------ */

#define RATE_RPS 20
#define RATE_MS 2000
#define PER_HANDLE 4

struct rate_arg {
  tg_fleet_limit_t *l;
  int64_t end;
  int granted;
  int64_t waited;
};

static pthread_barrier_t rate_go;

static void *rate_thread(void *p) {
  struct rate_arg *a = p;
  pthread_barrier_wait(&rate_go);
  for (;;) {
    int64_t w = 0;
    if (!tg_fleet_limit_take_token(a->l, a->end, &w))
      break;
    a->granted++;
    a->waited += w;
  }
  return NULL;
}

static void test_rate_shared(void) {
  tg_fleet_limit_t *w[2] = {mk("rate", "llm", RATE_RPS, RATE_RPS, 0, 0),
                            mk("rate", "llm", RATE_RPS, RATE_RPS, 0, 0)};
  struct rate_arg args[2 * PER_HANDLE];
  pthread_t th[2 * PER_HANDLE];
  pthread_barrier_init(&rate_go, NULL, 2 * PER_HANDLE + 1);
  for (int i = 0; i < 2 * PER_HANDLE; i++) {
    args[i] = (struct rate_arg){.l = w[i % 2]};
    pthread_create(&th[i], NULL, rate_thread, &args[i]);
  }
  int64_t start = tg_mono_ms();
  for (int i = 0; i < 2 * PER_HANDLE; i++)
    args[i].end = start + RATE_MS;
  pthread_barrier_wait(&rate_go);
  for (int i = 0; i < 2 * PER_HANDLE; i++)
    pthread_join(th[i], NULL);
  int64_t took = tg_mono_ms() - start;
  pthread_barrier_destroy(&rate_go);
  int total = 0, by_worker[2] = {0, 0};
  int64_t waited = 0;
  for (int i = 0; i < 2 * PER_HANDLE; i++) {
    total += args[i].granted;
    by_worker[i % 2] += args[i].granted;
    waited += args[i].waited;
  }
  int max = RATE_RPS * RATE_MS / 1000 + RATE_RPS; /* the burst, then the rate */
  fprintf(stderr, "    rate: %d tokens in %" PRId64 " ms (at most %d), workers %d + %d\n", total,
          took, max, by_worker[0], by_worker[1]);
  CHECK_MSG(total <= max + 2, "%d tokens granted, at most %d", total, max);
  CHECK_MSG(total >= max - 10, "%d tokens granted, expected about %d", total, max);
  CHECK(by_worker[0] > 0 && by_worker[1] > 0);
  CHECK(waited > 0);
  CHECK(took < RATE_MS + 500); /* all gave up at the deadline, none slept past it */
  long long ttl = raw_int("PTTL %s", "tripgen:{rate}:limit:llm:bucket");
  CHECK_MSG(ttl > 0 && ttl <= 2000, "bucket PTTL %lld", ttl); /* refill time + 1 s */
  tg_fleet_limit_destroy(w[0]);
  tg_fleet_limit_destroy(w[1]);
}

/* --- the semaphore ------------------------------------------------------- */

#define SLOTS 3
#define SLOT_THREADS 8
#define SLOT_ROUNDS 6

static atomic_int holding, most_held;

struct slot_arg {
  tg_fleet_limit_t *l;
  int id;
  int done;
  int refused;
};

static void *slot_thread(void *p) {
  struct slot_arg *a = p;
  char holder[32];
  snprintf(holder, sizeof(holder), "w%d-t%d", a->id % 2, a->id);
  for (int r = 0; r < SLOT_ROUNDS; r++) {
    if (!tg_fleet_limit_acquire_slot(a->l, holder, tg_mono_ms() + 10000, NULL)) {
      a->refused++;
      continue;
    }
    int now = atomic_fetch_add(&holding, 1) + 1;
    int seen = atomic_load(&most_held);
    while (now > seen && !atomic_compare_exchange_weak(&most_held, &seen, now))
      ;
    tg_sleep_ms(20);
    atomic_fetch_sub(&holding, 1);
    tg_fleet_limit_release_slot(a->l, holder);
    a->done++;
  }
  return NULL;
}

static void test_semaphore(void) {
  tg_fleet_limit_t *w[2] = {mk("sem", "wanx", 0, 0, SLOTS, 60000),
                            mk("sem", "wanx", 0, 0, SLOTS, 60000)};
  struct slot_arg args[SLOT_THREADS];
  pthread_t th[SLOT_THREADS];
  atomic_store(&holding, 0);
  atomic_store(&most_held, 0);
  int64_t start = tg_mono_ms();
  for (int i = 0; i < SLOT_THREADS; i++) {
    args[i] = (struct slot_arg){.l = w[i % 2], .id = i};
    pthread_create(&th[i], NULL, slot_thread, &args[i]);
  }
  for (int i = 0; i < SLOT_THREADS; i++)
    pthread_join(th[i], NULL);
  fprintf(stderr, "    semaphore: %d x %d holds of 20 ms in %" PRId64 " ms, at most %d at once\n",
          SLOT_THREADS, SLOT_ROUNDS, tg_mono_ms() - start, atomic_load(&most_held));
  CHECK_MSG(atomic_load(&most_held) == SLOTS, "at most %d held at once, want %d",
            atomic_load(&most_held), SLOTS);
  for (int i = 0; i < SLOT_THREADS; i++)
    CHECK_MSG(args[i].done == SLOT_ROUNDS && args[i].refused == 0,
              "thread %d: %d done, %d refused", i, args[i].done, args[i].refused);
  /* every slot given back */
  CHECK(raw_int("ZCARD %s", "tripgen:{sem}:limit:wanx:slots") == 0);
  tg_fleet_limit_destroy(w[0]);
  tg_fleet_limit_destroy(w[1]);
}

static void test_lease_frees_a_dead_holder(void) {
  tg_fleet_limit_t *l = mk("lease", "wanx", 0, 0, 1, 400);
  CHECK(tg_fleet_limit_acquire_slot(l, "crashed", 0, NULL)); /* never released */
  int64_t t0 = tg_mono_ms();
  CHECK(tg_fleet_limit_acquire_slot(l, "crashed", 0, NULL)); /* a holder renews its own */
  long long ttl = raw_int("PTTL %s", "tripgen:{lease}:limit:wanx:slots");
  CHECK_MSG(ttl > 400 && ttl <= 1400, "slots PTTL %lld", ttl);
  int64_t waited = -1;
  /* a deadline before the lease runs out: gives up at the deadline */
  CHECK(!tg_fleet_limit_acquire_slot(l, "alive", tg_mono_ms() + 100, &waited));
  CHECK_MSG(waited >= 90 && waited < 300, "gave up after %" PRId64 " ms", waited);
  CHECK(tg_fleet_limit_acquire_slot(l, "alive", tg_mono_ms() + 5000, &waited));
  int64_t after = tg_mono_ms() - t0;
  CHECK_MSG(after >= 350 && after < 1500, "slot freed %" PRId64 " ms after the renewal", after);
  tg_fleet_limit_release_slot(l, "alive");
  tg_fleet_limit_release_slot(l, "alive"); /* idempotent */
  tg_fleet_limit_release_slot(l, "never-held");
  CHECK(tg_fleet_limit_acquire_slot(l, "next", tg_mono_ms() + 50, &waited));
  CHECK(waited < 50);
  tg_fleet_limit_release_slot(l, "next");
  tg_fleet_limit_destroy(l);
}

static void test_token_deadline(void) {
  tg_fleet_limit_t *l = mk("deadline", "llm", 1, 1, 0, 0);
  int64_t waited = -1;
  CHECK(tg_fleet_limit_take_token(l, tg_mono_ms() + 100, &waited));
  CHECK(waited == 0);
  /* the next token is ~1 s away: no point waiting for a 600 ms deadline */
  int64_t t0 = tg_mono_ms();
  CHECK(!tg_fleet_limit_take_token(l, tg_mono_ms() + 600, &waited));
  CHECK_MSG(tg_mono_ms() - t0 < 300, "gave up after %" PRId64 " ms", tg_mono_ms() - t0);
  /* with room for it: waits about a second */
  CHECK(tg_fleet_limit_take_token(l, tg_mono_ms() + 3000, &waited));
  CHECK_MSG(waited >= 800 && waited < 1500, "waited %" PRId64 " ms", waited);
  tg_fleet_limit_destroy(l);
}

static void test_envs_isolated(void) {
  tg_fleet_limit_t *a = mk("a", "llm", 1, 3, 1, 60000);
  tg_fleet_limit_t *b = mk("b", "llm", 1, 3, 1, 60000);
  for (int i = 0; i < 3; i++)
    CHECK(tg_fleet_limit_take_token(a, tg_mono_ms() + 10, NULL));
  CHECK(!tg_fleet_limit_take_token(a, tg_mono_ms() + 10, NULL));
  for (int i = 0; i < 3; i++)
    CHECK(tg_fleet_limit_take_token(b, tg_mono_ms() + 10, NULL));
  CHECK(!tg_fleet_limit_take_token(b, tg_mono_ms() + 10, NULL));
  CHECK(tg_fleet_limit_acquire_slot(a, "x", tg_mono_ms() + 10, NULL));
  CHECK(tg_fleet_limit_acquire_slot(b, "y", tg_mono_ms() + 10, NULL));
  CHECK(!tg_fleet_limit_acquire_slot(a, "z", tg_mono_ms() + 10, NULL));
  CHECK(raw_int("EXISTS %s", "tripgen:{a}:limit:llm:bucket") == 1);
  CHECK(raw_int("EXISTS %s", "tripgen:{b}:limit:llm:slots") == 1);
  tg_fleet_limit_release_slot(a, "x");
  tg_fleet_limit_release_slot(b, "y");
  tg_fleet_limit_destroy(a);
  tg_fleet_limit_destroy(b);
}

static void test_no_limit_and_bad_conf(void) {
  tg_fleet_limit_t *l = mk("none", "llm", 0, 0, 0, 0);
  int64_t waited = -1;
  for (int i = 0; i < 100; i++)
    CHECK(tg_fleet_limit_take_token(l, 0, &waited) && waited == 0);
  CHECK(tg_fleet_limit_acquire_slot(l, "h", 0, &waited) && waited == 0);
  tg_fleet_limit_release_slot(l, "h");
  CHECK(raw_int("EXISTS %s", "tripgen:{none}:limit:llm:bucket") == 0);
  tg_fleet_limit_destroy(l);
  CHECK(tg_fleet_limit_take_token(NULL, 0, NULL));
  CHECK(tg_fleet_limit_acquire_slot(NULL, "h", 0, NULL));
  tg_fleet_limit_release_slot(NULL, "h");
  tg_fleet_limit_destroy(NULL);

  struct tg_transport_conf rc;
  tg_transport_conf_init(&rc, "x");
  snprintf(rc.redis_url, sizeof(rc.redis_url), "bogus://nowhere");
  struct tg_fleet_limit_conf c = {.env = "x", .name = "llm", .rps = 5};
  errstr[0] = '\0';
  CHECK(tg_fleet_limit_create(&rc, &c, errstr, sizeof(errstr)) == NULL);
  CHECK(errstr[0] != '\0');
}

/* --- Redis hung, then gone ---------------------------------------------- */

/* stderr goes to a file between capture_log() and release_log() */
static int saved_stderr = -1;
static char log_path[512];

static void capture_log(void) {
  snprintf(log_path, sizeof(log_path), "%s/captured.log", srv.dir);
  fflush(stderr);
  saved_stderr = dup(2);
  FILE *f = fopen(log_path, "w");
  CHECK(f != NULL);
  if (f) {
    dup2(fileno(f), 2);
    fclose(f);
  }
}

static void release_log(void) {
  fflush(stderr);
  if (saved_stderr >= 0) {
    dup2(saved_stderr, 2);
    close(saved_stderr);
    saved_stderr = -1;
  }
}

/* lines of the captured log that hold @event */
static int captured_count(const char *event) {
  FILE *f = fopen(log_path, "r");
  if (!f)
    return -1;
  char line[2048];
  int count = 0;
  while (fgets(line, sizeof(line), f))
    if (strstr(line, event))
      count++;
  fclose(f);
  return count;
}

static void test_fail_open_and_recover(void) {
  tg_fleet_limit_t *l = mk("down", "llm", 1, 1, 1, 60000);
  CHECK(tg_fleet_limit_take_token(l, 0, NULL));
  CHECK(tg_fleet_limit_acquire_slot(l, "held", 0, NULL));
  int old_level = tg_log_level;
  tg_log_level = TG_INFO;
  capture_log();

  /* hung: the first call fails open after about one command timeout */
  kill(srv.pid, SIGSTOP);
  int64_t t0 = tg_mono_ms();
  int64_t waited = -1;
  bool ok = tg_fleet_limit_take_token(l, tg_mono_ms() + 100, &waited);
  int64_t took = tg_mono_ms() - t0;
  CHECK(ok);
  CHECK_MSG(took < CMD_TIMEOUT_MS + 400, "hung redis: failed open after %" PRId64 " ms", took);
  /* and the calls after it at once, tokens and slots alike */
  t0 = tg_mono_ms();
  for (int i = 0; i < 20; i++) {
    CHECK(tg_fleet_limit_take_token(l, tg_mono_ms() + 100, NULL));
    CHECK(tg_fleet_limit_acquire_slot(l, "other", tg_mono_ms() + 100, NULL));
  }
  CHECK_MSG(tg_mono_ms() - t0 < 400, "20 calls in an outage took %" PRId64 " ms",
            tg_mono_ms() - t0);
  kill(srv.pid, SIGCONT);

  /* gone: each call fails open at once (a refused connection), past the
   * outage retry interval too */
  test_redis_kill(&srv, SIGKILL);
  int64_t until = tg_mono_ms() + 1200;
  while (tg_mono_ms() < until) {
    t0 = tg_mono_ms();
    CHECK(tg_fleet_limit_take_token(l, tg_mono_ms() + 100, NULL));
    CHECK_MSG(tg_mono_ms() - t0 < CMD_TIMEOUT_MS + 400, "dead redis: %" PRId64 " ms",
              tg_mono_ms() - t0);
    tg_sleep_ms(50);
  }

  /* back (its AOF kept the slot "held"): the limit applies again */
  CHECK(test_redis_restart_after(&srv, 0) == 0);
  int64_t deadline = tg_mono_ms() + 5000;
  bool limited = false;
  while (!limited && tg_mono_ms() < deadline) {
    limited = !tg_fleet_limit_acquire_slot(l, "other", tg_mono_ms() + 30, NULL);
    if (!limited)
      tg_sleep_ms(20);
  }
  release_log();
  int unavailable = captured_count("event=fleet_limit_unavailable");
  int available = captured_count("event=fleet_limit_available");
  tg_log_level = old_level;
  CHECK_MSG(limited, "the limit did not apply again once Redis was back");
  CHECK_MSG(unavailable == 1, "%d fleet_limit_unavailable lines, want 1 per outage", unavailable);
  CHECK_MSG(available == 1, "%d fleet_limit_available lines, want 1", available);
  tg_fleet_limit_release_slot(l, "held");
  CHECK(tg_fleet_limit_acquire_slot(l, "other", tg_mono_ms() + 1000, NULL));
  tg_fleet_limit_release_slot(l, "other");
  tg_fleet_limit_destroy(l);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  if (test_redis_start(&srv) != 0)
    return 1;
  int64_t t0 = tg_mono_ms();
  RUN(test_no_limit_and_bad_conf);
  RUN(test_token_deadline);
  RUN(test_envs_isolated);
  RUN(test_lease_frees_a_dead_holder);
  RUN(test_semaphore);
  RUN(test_rate_shared);
  RUN(test_fail_open_and_recover);
  fprintf(stderr, "    all in %" PRId64 " ms\n", tg_mono_ms() - t0);
  test_redis_stop(&srv);
  return check_done("fleet_limit");
}
