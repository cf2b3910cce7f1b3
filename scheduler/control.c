/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.c - the control thread (control.h): one round per interval; per
 * service, take or renew the env's lease, and while held run promote_due,
 * park_stale and (less often) prune_consumers through the transport; then
 * read the depth. A failed step is logged and tried again next round.
 */
#include "control.h"
#include "tg_log.h"
#include "tg_time.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#define LEASE_NAME "control"
#define STEP_MAX 1000              /* entries one step moves */
#define STEP_ROUNDS 10             /* steps per round while a step fills up */
#define PRUNE_EVERY_MS 30000

struct service_loop {
  const struct sch_service_conf *sc;
  tg_transport_t *t;               /* NULL until Redis answers */
  int64_t renewed_ms;              /* monotonic time of the last lease renewal */
  int64_t next_prune_ms;
  bool warned;                     /* the last failure is already in the log */
  pthread_mutex_t lock;            /* guards status */
  struct sch_service_status status;
};

struct sch_control_s {
  struct sch_conf conf;
  char holder[128];
  struct service_loop loops[SCH_MAX_SERVICES];
  atomic_bool quit;
  bool stopped;                    /* the thread is joined and the leases given up */
  pthread_t thread;
};

static void holder_name(char *out, size_t size) {
  char host[64] = "host";
  gethostname(host, sizeof(host) - 1);
  uint32_t r = 0;
  if (getrandom(&r, sizeof(r), 0) != sizeof(r))
    r = (uint32_t)tg_mono_ms();
  snprintf(out, size, "%s-%d-%08x", host, (int)getpid(), r);
}

static tg_transport_t *open_transport(const struct sch_conf *conf,
                                      const struct sch_service_conf *sc, char *errstr,
                                      size_t n) {
  struct tg_transport_conf tc;
  tg_transport_conf_init(&tc, sc->env);
  snprintf(tc.redis_url, sizeof(tc.redis_url), "%s", conf->redis_url);
  snprintf(tc.consumer, sizeof(tc.consumer), "%s", TG_TRANSPORT_PARKED_CONSUMER);
  tc.visibility_timeout_ms = sc->visibility_timeout_ms;
  tc.max_deliveries = sc->max_deliveries;
  tc.queue_cap = sc->queue_cap;
  tc.sink_max_len = sc->sink_max_len;
  tc.dlq_max_len = sc->dlq_max_len;
  tc.worker_window_ms = sc->autoscale.active_window_ms;
  tc.reconnect_max_ms = 0; /* one try per step: the next round tries again */
  if (sc->on_kafka) { /* lag only: the loops are no-ops there */
    snprintf(tc.backend, sizeof(tc.backend), "kafka");
    snprintf(tc.group, sizeof(tc.group), "%s", sc->kafka_group);
    tc.kafka = sc->kafka;
    snprintf(tc.consumer, sizeof(tc.consumer), "scheduler");
  }
  return tg_transport_new(&tc, errstr, n);
}

/* Log a failure once, until a step succeeds again. */
static void step_failed(struct service_loop *l, const char *step, const char *errstr) {
  if (!l->warned)
    tg_log(TG_WARN, "event=control_step_failed service=%s env=%s step=%s err=\"%s\"",
           l->sc->name, l->sc->env, step, errstr);
  l->warned = true;
}

/* Between steps of a long round: renew the lease once a third of it has
 * passed, so a slow round never outlives it. False: no longer the leader. */
static bool still_leading(sch_control_t *c, struct service_loop *l) {
  if (tg_mono_ms() - l->renewed_ms < c->conf.control.lease_ms / 3)
    return true;
  char errstr[512];
  bool held = false;
  if (tg_transport_lease(l->t, LEASE_NAME, c->holder, c->conf.control.lease_ms, &held, errstr,
                         sizeof(errstr)) != TG_OK)
    held = false;
  if (held)
    l->renewed_ms = tg_mono_ms();
  return held;
}

/* The leader's steps; false when one failed. */
static bool lead(sch_control_t *c, struct service_loop *l) {
  char errstr[512];
  int64_t promoted = 0, parked = 0, dead = 0;
  int removed = 0;
  for (int i = 0; i < STEP_ROUNDS; i++) {
    int k = 0;
    if (tg_transport_promote_due(l->t, tg_now_ms(), STEP_MAX, &k, errstr, sizeof(errstr)) !=
        TG_OK) {
      step_failed(l, "promote_due", errstr);
      return false;
    }
    promoted += k;
    if (k < STEP_MAX || !still_leading(c, l))
      break;
  }
  for (int i = 0; i < STEP_ROUNDS && still_leading(c, l); i++) {
    int p = 0, d = 0;
    if (tg_transport_park_stale(l->t, STEP_MAX, &p, &d, errstr, sizeof(errstr)) != TG_OK) {
      step_failed(l, "reclaim", errstr);
      return false;
    }
    parked += p;
    dead += d;
    if (p + d < STEP_MAX)
      break;
  }
  if (tg_mono_ms() >= l->next_prune_ms && still_leading(c, l)) {
    if (tg_transport_prune_consumers(l->t, l->sc->consumer_idle_ms, &removed, errstr,
                                     sizeof(errstr)) != TG_OK) {
      step_failed(l, "prune_consumers", errstr);
      return false;
    }
    l->next_prune_ms = tg_mono_ms() + PRUNE_EVERY_MS;
    if (removed)
      tg_log(TG_INFO, "event=consumers_removed service=%s env=%s count=%d", l->sc->name,
             l->sc->env, removed);
  }
  if (promoted)
    tg_log(TG_INFO, "event=retries_promoted service=%s env=%s count=%lld", l->sc->name,
           l->sc->env, (long long)promoted);
  pthread_mutex_lock(&l->lock);
  l->status.promoted_total += promoted;
  l->status.reclaimed_total += parked;
  l->status.dead_lettered_total += dead;
  l->status.consumers_removed_total += removed;
  pthread_mutex_unlock(&l->lock);
  return true;
}

static void set_leader(struct service_loop *l, bool held, const char *holder) {
  pthread_mutex_lock(&l->lock);
  bool was = l->status.leader;
  l->status.leader = held;
  pthread_mutex_unlock(&l->lock);
  if (was != held)
    tg_log(TG_INFO, "event=%s service=%s env=%s holder=%s", held ? "lease_taken" : "lease_lost",
           l->sc->name, l->sc->env, holder);
}

static void round_of(sch_control_t *c, struct service_loop *l) {
  char errstr[512];
  if (!l->t && !(l->t = open_transport(&c->conf, l->sc, errstr, sizeof(errstr)))) {
    step_failed(l, "connect", errstr);
    set_leader(l, false, c->holder);
    pthread_mutex_lock(&l->lock);
    l->status.depth_ok = false;
    snprintf(l->status.depth_error, sizeof(l->status.depth_error), "%s", errstr);
    pthread_mutex_unlock(&l->lock);
    return;
  }
  bool ok = true;
  if (c->conf.control.enabled) {
    bool held = false;
    if (tg_transport_lease(l->t, LEASE_NAME, c->holder, c->conf.control.lease_ms, &held, errstr,
                           sizeof(errstr)) != TG_OK) {
      step_failed(l, "lease", errstr);
      ok = false;
    }
    if (held)
      l->renewed_ms = tg_mono_ms();
    set_leader(l, held, c->holder);
    if (ok && held)
      ok = lead(c, l); /* a failed step is logged; the depth is still read */
  }
  struct tg_depth d;
  bool depth_ok = tg_transport_depth(l->t, &d, errstr, sizeof(errstr)) == TG_OK;
  if (!depth_ok)
    step_failed(l, "depth", errstr);
  pthread_mutex_lock(&l->lock);
  l->status.depth_ok = depth_ok;
  if (depth_ok) {
    l->status.depth = d;
    l->status.depth_at_ms = tg_now_ms();
    l->status.depth_error[0] = '\0';
  } else {
    snprintf(l->status.depth_error, sizeof(l->status.depth_error), "%s", errstr);
  }
  pthread_mutex_unlock(&l->lock);
  if (depth_ok && ok && l->warned) {
    tg_log(TG_INFO, "event=control_recovered service=%s env=%s", l->sc->name, l->sc->env);
    l->warned = false;
  }
  if (!depth_ok) { /* reconnect next round, from scratch */
    tg_transport_destroy(l->t);
    l->t = NULL;
  }
}

static void *control_main(void *arg) {
  sch_control_t *c = arg;
  while (!atomic_load(&c->quit)) {
    int64_t start = tg_mono_ms();
    for (size_t i = 0; i < c->conf.n_services && !atomic_load(&c->quit); i++)
      round_of(c, &c->loops[i]);
    int64_t left = c->conf.control.interval_ms - (tg_mono_ms() - start);
    while (left > 0 && !atomic_load(&c->quit)) { /* wake up for a stop within 50 ms */
      tg_sleep_ms(left > 50 ? 50 : left);
      left -= 50;
    }
  }
  return NULL;
}

sch_control_t *sch_control_start(const struct sch_conf *conf, char *errstr, size_t n) {
  sch_control_t *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  c->conf = *conf;
  holder_name(c->holder, sizeof(c->holder));
  for (size_t i = 0; i < conf->n_services; i++) {
    c->loops[i].sc = &c->conf.services[i];
    pthread_mutex_init(&c->loops[i].lock, NULL);
  }
  if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
    for (size_t i = 0; i < conf->n_services; i++)
      pthread_mutex_destroy(&c->loops[i].lock);
    free(c);
    snprintf(errstr, n, "cannot start the control thread");
    return NULL;
  }
  tg_log(TG_INFO, "event=control_started holder=%s enabled=%s interval_ms=%lld lease_ms=%lld",
         c->holder, conf->control.enabled ? "true" : "false",
         (long long)conf->control.interval_ms, (long long)conf->control.lease_ms);
  return c;
}

void sch_control_stop(sch_control_t *c) {
  if (!c || c->stopped)
    return;
  atomic_store(&c->quit, true);
  pthread_join(c->thread, NULL);
  c->stopped = true;
  for (size_t i = 0; i < c->conf.n_services; i++) {
    struct service_loop *l = &c->loops[i];
    char errstr[256];
    /* hand the loops over at once instead of after lease_ms */
    if (l->t && l->status.leader &&
        tg_transport_lease_release(l->t, LEASE_NAME, c->holder, errstr, sizeof(errstr)) ==
            TG_OK)
      tg_log(TG_INFO, "event=lease_released service=%s env=%s", l->sc->name, l->sc->env);
    pthread_mutex_lock(&l->lock);
    l->status.leader = false;
    pthread_mutex_unlock(&l->lock);
    tg_transport_destroy(l->t);
    l->t = NULL;
  }
}

void sch_control_destroy(sch_control_t *c) {
  if (!c)
    return;
  sch_control_stop(c);
  for (size_t i = 0; i < c->conf.n_services; i++)
    pthread_mutex_destroy(&c->loops[i].lock);
  free(c);
}

void sch_control_status(sch_control_t *c, size_t service, struct sch_service_status *out) {
  struct service_loop *l = &c->loops[service];
  pthread_mutex_lock(&l->lock);
  *out = l->status;
  pthread_mutex_unlock(&l->lock);
}

const char *sch_control_holder(const sch_control_t *c) { return c->holder; }
