/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.c - the worker's life: create the stage backends and queue
 * handles, run the consumer thread (takes jobs only while the first stage
 * has room, like EAS's window), one thread pool per stage with bounded
 * queues between them, a finisher thread that publishes, a keeper thread
 * (lease refresh, promote_due, reclaim, heartbeats) and a prober thread
 * (is the diffusion backend ready, for /readyz).
 * SIGTERM: stop taking, let in-flight jobs finish within the grace period,
 * hand the rest back to the queue, exit 0.
 */
#include "http_client.h"
#include "tg_log.h"
#include "tg_time.h"
#include "worker_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- creation ----------------------------------------------------------- */

static tg_err_t create_stages(tg_worker_t *w, const struct tg_stage_set *set, char *errstr,
                              size_t n) {
  const struct tg_worker_conf *c = &w->conf;
  struct stages *st = &w->st;
  w->stage_set_name = set ? set->name : "config";
  if (set) {
    st->prompt = set->prompt;
    st->diffusion = set->diffusion;
    st->postproc = set->postproc;
    st->storage = set->storage;
  }
  if (set ? !st->prompt || !st->diffusion || !st->postproc || !st->storage :
      !(st->prompt = tg_prompt_find(c->prompt_backend)) ||
      !(st->diffusion = tg_diffusion_find(c->diffusion_backend)) ||
      !(st->postproc = tg_postproc_find(c->postproc_backend)) ||
      !(st->storage = tg_storage_find(c->storage_backend))) {
    snprintf(errstr, n, "unknown stage backend");
    return TG_ERR_INVAL;
  }
  tg_err_t err;
  if ((err = st->prompt->create(c, &st->prompt_state, errstr, n)) != TG_OK ||
      (err = st->diffusion->create(c, &st->diffusion_state, errstr, n)) != TG_OK ||
      (err = st->postproc->create(c, &st->postproc_state, errstr, n)) != TG_OK ||
      (err = st->storage->create(c, &st->storage_state, errstr, n)) != TG_OK)
    return err;
  return TG_OK;
}

tg_worker_t *tg_worker_new(const struct tg_worker_conf *conf, const struct tg_stage_set *stages,
                           bool queue, char *errstr, size_t n) {
  static bool curl_ready;
  if (!curl_ready && !(curl_ready = tg_http_global_init())) {
    snprintf(errstr, n, "libcurl initialisation failed");
    return NULL;
  }
  tg_worker_t *w = calloc(1, sizeof(*w));
  if (!w) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  w->conf = *conf;
  struct tg_transport_conf *qc = &w->conf.queue;
  snprintf(qc->env, sizeof(qc->env), "%s", conf->env);
  snprintf(qc->consumer, sizeof(qc->consumer), "%s", conf->worker_name);
  if (!w->conf.lease_refresh_ms)
    w->conf.lease_refresh_ms = qc->visibility_timeout_ms / 3;
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->slot_free, NULL);
  if (create_stages(w, stages, errstr, n) != TG_OK)
    goto err;
  if (queue) {
    if (!(w->taker = w->takers[0] = tg_transport_new(qc, errstr, n)))
      goto err;
    /* the other handles share the consumer name the taker picked; several
     * takers are safe: a delivery already in flight here is not admitted twice */
    snprintf(qc->consumer, sizeof(qc->consumer), "%s", tg_transport_consumer(w->taker));
    struct tg_transport_conf more = *qc;
    more.skip_own_pending = true; /* takers[0] reads them, before the others start */
    for (int i = 1; i < conf->take_threads; i++)
      if (!(w->takers[i] = tg_transport_new(&more, errstr, n)))
        goto err;
    if (!(w->finisher = tg_transport_new(qc, errstr, n)) ||
        !(w->keeper = tg_transport_new(qc, errstr, n)))
      goto err;
    atomic_store(&w->queue_ok, true);
  }
  return w;
err:
  tg_worker_destroy(w);
  return NULL;
}

void tg_worker_destroy(tg_worker_t *w) {
  if (!w)
    return;
  struct stages *st = &w->st;
  if (st->prompt && st->prompt_state)
    st->prompt->destroy(st->prompt_state);
  if (st->diffusion && st->diffusion_state)
    st->diffusion->destroy(st->diffusion_state);
  if (st->postproc && st->postproc_state)
    st->postproc->destroy(st->postproc_state);
  if (st->storage && st->storage_state)
    st->storage->destroy(st->storage_state);
  for (int i = 0; i < TG_WORKER_MAX_TAKERS; i++)
    tg_transport_destroy(w->takers[i]);
  tg_transport_destroy(w->finisher);
  tg_transport_destroy(w->keeper);
  for (int s = 0; s < TG_STAGE__COUNT; s++)
    tg_bqueue_destroy(w->q[s]);
  tg_bqueue_destroy(w->q_finish);
  pthread_cond_destroy(&w->slot_free);
  pthread_mutex_destroy(&w->lock);
  free(w);
}

/* ---- the in-flight list ------------------------------------------------- */

/* Adds a job unless its entry is already in flight here (a reclaim of our
 * own slow job); returns false then. */
static bool track(tg_worker_t *w, struct job *j) {
  pthread_mutex_lock(&w->lock);
  for (struct job *x = w->inflight; x; x = x->next) /* a lost copy does not count */
    if (!atomic_load(&x->lost) && strcmp(x->d.entry_id, j->d.entry_id) == 0 &&
        x->d.priority == j->d.priority) {
      pthread_mutex_unlock(&w->lock);
      return false;
    }
  j->next = w->inflight;
  if (w->inflight)
    w->inflight->prev = j;
  w->inflight = j;
  w->n_inflight++;
  pthread_mutex_unlock(&w->lock);
  return true;
}

static void untrack(tg_worker_t *w, struct job *j) {
  pthread_mutex_lock(&w->lock);
  if (j->prev)
    j->prev->next = j->next;
  else
    w->inflight = j->next;
  if (j->next)
    j->next->prev = j->prev;
  w->n_inflight--;
  pthread_cond_signal(&w->slot_free);
  pthread_mutex_unlock(&w->lock);
}

/* Reserve room under queue.max_in_flight for a take, waiting up to wait_ms
 * until a quarter of the window (or @want) is free, so that a full window
 * is refilled in batches rather than a job per round trip; release it once
 * the taken jobs are tracked (or none came). The stage queues bound the rest. */
static size_t window_reserve(tg_worker_t *w, size_t want, int64_t wait_ms) {
  int cap = w->conf.max_in_flight;
  if (cap <= 0)
    return want;
  int low = cap / 4 > 1 ? cap / 4 : 1;
  if ((size_t)low > want)
    low = (int)want;
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
  until.tv_sec += wait_ms / 1000 + until.tv_nsec / 1000000000L;
  until.tv_nsec %= 1000000000L;
  pthread_mutex_lock(&w->lock);
  while (wait_ms > 0 && cap - (w->n_inflight + w->reserved) < low &&
         pthread_cond_timedwait(&w->slot_free, &w->lock, &until) == 0)
    ;
  int used = w->n_inflight + w->reserved;
  size_t room = used < cap ? (size_t)(cap - used) : 0;
  if (room > want)
    room = want;
  w->reserved += (int)room;
  pthread_mutex_unlock(&w->lock);
  return room;
}

static void window_release(tg_worker_t *w, size_t reserved) {
  if (w->conf.max_in_flight <= 0 || reserved == 0)
    return;
  pthread_mutex_lock(&w->lock);
  w->reserved -= (int)reserved;
  pthread_cond_signal(&w->slot_free);
  pthread_mutex_unlock(&w->lock);
}

static int inflight_count(tg_worker_t *w) {
  pthread_mutex_lock(&w->lock);
  int n = w->n_inflight;
  pthread_mutex_unlock(&w->lock);
  return n;
}

/* ---- intake: what happens to a delivery before the first stage ---------- */

/* Moves a delivery into a tracked job (its lease is refreshed from now on)
 * and decides where it goes: the first stage, or straight to the finisher
 * when it must not run. Takes ownership of d's contents. NULL: not admitted
 * (already in flight here, or out of memory: it stays pending). */
static struct job *admit(tg_worker_t *w, tg_delivery_t *d, bool done) {
  struct job *j = calloc(1, sizeof(*j));
  if (!j)
    return NULL;
  j->d = *d;
  memset(d, 0, sizeof(*d));
  j->taken_wall_ms = tg_now_ms();
  if (!track(w, j)) {
    tg_job_free(j);
    return NULL;
  }
  const tg_job_t *job = j->d.job;
  if (!job) {
    tg_job_fail(j, "input", TG_CODE_INVALID_INPUT, false, "%s", j->d.parse_error);
  } else if (strcmp(job->env, w->conf.env) != 0) {
    tg_job_fail(j, "input", TG_CODE_ENV_MISMATCH, false,
                "job is for env '%s' but this worker serves '%s'", job->env, w->conf.env);
  } else if (tg_job_past_deadline(j)) {
    tg_job_fail(j, "input", TG_CODE_DEADLINE_EXCEEDED, false, "deadline passed while queued");
  } else if (done) {
    j->duplicate = true;
  } else {
    for (size_t i = 0; i < job->options.n_variants; i++)
      if (!tg_postproc_variant_known(job->options.variants[i])) {
        tg_job_fail(j, "input", TG_CODE_INVALID_INPUT, false,
                    "options.variants[%zu]: unknown variant \"%s\" (known: full, thumb)", i,
                    job->options.variants[i]);
        break;
      }
  }
  tg_log(TG_INFO, "event=job_taken request_id=%s index=%llu attempt=%lld deliveries=%lld%s",
         j->d.request_id, (unsigned long long)j->d.index, (long long)(job ? job->attempt : 1),
         (long long)j->d.deliveries,
         j->failed ? " outcome=refused" : j->duplicate ? " outcome=duplicate" : "");
  return j;
}

/* Admits a batch of deliveries into jobs[] (NULL where not admitted),
 * asking in one round trip which of the redelivered ones already have a
 * final result (DESIGN.md: those are acked without running). A first
 * delivery is not asked about: only a put repeated after a lost reply can
 * have a result already, and completing it then publishes nothing. */
static void admit_all(tg_worker_t *w, tg_transport_t *t, tg_delivery_t *d, int nd,
                      struct job **jobs) {
  const tg_job_t **valid = calloc((size_t)nd, sizeof(*valid));
  bool *done = calloc((size_t)nd, sizeof(*done));
  int *at = calloc((size_t)nd, sizeof(*at));
  int k = 0;
  char errstr[256];
  for (int i = 0; valid && done && at && i < nd; i++)
    if (d[i].job && d[i].deliveries > 1) {
      at[k] = i;
      valid[k++] = d[i].job;
    }
  bool known = k > 0 && tg_transport_done_many(t, valid, k, done, errstr, sizeof(errstr)) == TG_OK;
  if (k > 0 && !known) /* they run: completing publishes nothing for a finished request */
    tg_log(TG_WARN, "event=result_check_failed count=%d err=\"%s\"", k, errstr);
  bool *done_at = calloc((size_t)nd, sizeof(*done_at));
  for (int i = 0; known && done_at && i < k; i++)
    done_at[at[i]] = done[i];
  for (int i = 0; i < nd; i++)
    jobs[i] = admit(w, &d[i], done_at && done_at[i]);
  free(valid);
  free(done);
  free(at);
  free(done_at);
}

/* Send an admitted job on; blocks while the first stage is full. */
static void dispatch(tg_worker_t *w, struct job *j) {
  tg_bqueue_t *next = (j->failed || j->duplicate) ? w->q_finish : w->q[TG_STAGE_PROMPT];
  if (!tg_bqueue_push(next, j)) { /* closing: leave it pending for another worker */
    untrack(w, j);
    tg_job_free(j);
  }
}

/* ---- threads ------------------------------------------------------------ */

struct stage_thread {
  tg_worker_t *w;
  enum tg_stage_id stage;
};

#define STAGE_BATCH 64

/* Push jobs on; the ones a closing queue refuses leave the pipeline. */
static void pass_on(tg_worker_t *w, tg_bqueue_t *q, struct job **jobs, size_t count) {
  size_t pushed = count ? tg_bqueue_push_many(q, (void *const *)jobs, count) : 0;
  for (size_t i = pushed; i < count; i++) {
    untrack(w, jobs[i]);
    tg_job_free(jobs[i]);
  }
}

/* A stage thread. The only thread of its stage takes whatever waits, to
 * wake less often; where several share a stage, each takes one job at a
 * time so that none holds jobs another could be running. */
static void *stage_main(void *arg) {
  struct stage_thread *st = arg;
  tg_worker_t *w = st->w;
  enum tg_stage_id s = st->stage;
  int caps[TG_STAGE__COUNT] = {w->conf.prompt_concurrency, w->conf.diffusion_slots,
                               w->conf.postproc_concurrency, w->conf.upload_concurrency};
  size_t batch = caps[s] == 1 ? STAGE_BATCH : 1, got;
  void *items[STAGE_BATCH];
  struct job *onward[STAGE_BATCH], *finished[STAGE_BATCH];
  while ((got = tg_bqueue_pop_many(w->q[s], items, batch)) > 0) {
    size_t n_on = 0, n_fin = 0;
    for (size_t i = 0; i < got; i++) {
      struct job *j = items[i];
      if (atomic_load(&j->lost)) { /* another consumer owns it now */
        tg_log(TG_WARN, "event=job_dropped request_id=%s reason=lease_lost", j->d.request_id);
        untrack(w, j);
        tg_job_free(j);
        continue;
      }
      if (tg_stage_run(w, s, j) && s + 1 < TG_STAGE__COUNT)
        onward[n_on++] = j;
      else
        finished[n_fin++] = j;
    }
    if (s + 1 < TG_STAGE__COUNT)
      pass_on(w, w->q[s + 1], onward, n_on);
    pass_on(w, w->q_finish, finished, n_fin);
  }
  return NULL;
}

#define FINISH_BATCH 64

static void *finisher_main(void *arg) {
  tg_worker_t *w = arg;
  void *items[FINISH_BATCH];
  size_t got;
  while ((got = tg_bqueue_pop_many(w->q_finish, items, FINISH_BATCH)) > 0) {
    struct job *live[FINISH_BATCH];
    int k = 0;
    for (size_t i = 0; i < got; i++) { /* a job handed back at shutdown is not finished */
      struct job *j = items[i];
      if (!atomic_load(&j->lost) && !atomic_exchange(&j->settled, true))
        live[k++] = j;
    }
    if (k > 0)
      tg_jobs_finish(w, w->finisher, live, k);
    for (size_t i = 0; i < got; i++) {
      untrack(w, items[i]);
      tg_job_free(items[i]);
    }
  }
  return NULL;
}

/* Jobs the keeper reclaimed, admitted and waiting for the consumer to
 * dispatch them (the keeper never blocks on a full stage). */
static struct job *take_reclaimed(tg_worker_t *w) {
  pthread_mutex_lock(&w->lock);
  struct job *list = w->reclaimed;
  w->reclaimed = NULL;
  pthread_mutex_unlock(&w->lock);
  return list;
}

struct consumer_args {
  tg_worker_t *w;
  tg_transport_t *t;
};

/* A reclaimed job that never started goes back to the queue, due now, for
 * another worker; then it leaves this one. One whose final result exists
 * stays pending (a copy handed back would be a first delivery, which runs
 * without asking): the next reclaim finds it done. */
static void give_back_unstarted(tg_worker_t *w, tg_transport_t *t, struct job *j) {
  char errstr[256];
  if (j->d.job && !j->duplicate) {
    tg_err_t err = tg_transport_retry_later(t, &j->d, j->d.job, tg_now_ms(), errstr,
                                            sizeof(errstr));
    if (err == TG_OK)
      tg_log(TG_INFO, "event=job_handed_back request_id=%s (reclaimed, not started)",
             j->d.request_id);
    else
      tg_log(TG_INFO, "event=job_left_pending request_id=%s err=\"%s\"", j->d.request_id,
             errstr);
  }
  untrack(w, j);
  tg_job_free(j);
}

static void *consumer_main(void *arg) {
  struct consumer_args *ca = arg;
  tg_worker_t *w = ca->w;
  tg_transport_t *taker = ca->t;
  bool first = taker == w->takers[0];
  /* the other takers start once the first has read the consumer's old entries,
   * so that none of them is delivered twice within this process */
  while (!first && !atomic_load(&w->history_read) && !atomic_load(&w->stopping))
    tg_sleep_ms(20);
  char errstr[512];
  int64_t backoff = 100;
  while (!atomic_load(&w->stopping)) {
    for (struct job *j = take_reclaimed(w), *next; j; j = next) {
      next = j->reclaimed_next;
      dispatch(w, j);
    }
    size_t room = tg_bqueue_wait_room(w->q[TG_STAGE_PROMPT], 500);
    if (room > (size_t)w->conf.take_batch)
      room = (size_t)w->conf.take_batch;
    if (room == 0 || (room = window_reserve(w, room, 500)) == 0)
      continue;
    tg_delivery_t *d;
    int nd;
    tg_err_t err = tg_transport_take(taker, (int)room, 1000, &d, &nd, errstr, sizeof(errstr));
    if (err != TG_OK) {
      window_release(w, room);
      atomic_store(&w->queue_ok, false);
      tg_log(TG_ERROR, "event=take_failed err=\"%s\" retry_ms=%lld", errstr, (long long)backoff);
      tg_sleep_ms(backoff);
      backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
      continue;
    }
    backoff = 100;
    atomic_store(&w->queue_ok, true);
    if (first && !atomic_load(&w->history_read) && tg_transport_history_done(taker))
      atomic_store(&w->history_read, true);
    tg_metrics_count_taken(nd);
    /* track the whole batch first, so every job's lease is kept while we wait */
    struct job **jobs = nd ? calloc((size_t)nd, sizeof(*jobs)) : NULL;
    if (jobs)
      admit_all(w, taker, d, nd, jobs);
    window_release(w, room); /* the admitted ones count as in flight now */
    for (int i = 0; i < nd; i++)
      if (jobs && jobs[i])
        dispatch(w, jobs[i]);
    free(jobs);
    tg_deliveries_free(d, nd);
  }
  /* reclaimed jobs never dispatched: back to the queue for another worker */
  for (struct job *j = take_reclaimed(w), *next; j; j = next) {
    next = j->reclaimed_next;
    give_back_unstarted(w, taker, j);
  }
  return NULL;
}

/* The entries of the jobs in flight (entry_id and priority only; free()).
 * Sets *count (-1: out of memory). */
static tg_delivery_t *inflight_entries(tg_worker_t *w, int *count) {
  pthread_mutex_lock(&w->lock);
  int n = w->n_inflight, k = 0;
  tg_delivery_t *ds = n ? calloc((size_t)n, sizeof(*ds)) : NULL;
  for (struct job *x = w->inflight; x && ds && k < n; x = x->next, k++) {
    snprintf(ds[k].entry_id, sizeof(ds[k].entry_id), "%s", x->d.entry_id);
    ds[k].priority = x->d.priority;
  }
  pthread_mutex_unlock(&w->lock);
  *count = n && !ds ? -1 : k;
  return ds;
}

/* Extend the lease of every job in flight; mark the ones lost to others.
 * Returns false when a renewal failed for another reason (Redis trouble). */
static bool refresh_leases(tg_worker_t *w) {
  bool all_ok = true;
  int k;
  tg_delivery_t *ds = inflight_entries(w, &k);
  for (int i = 0; i < k; i++) {
    char errstr[256];
    tg_err_t err = tg_transport_extend_lease(w->keeper, &ds[i], errstr, sizeof(errstr));
    if (err != TG_OK && err != TG_ERR_NOT_FOUND)
      all_ok = false;
    if (err != TG_ERR_NOT_FOUND)
      continue;
    pthread_mutex_lock(&w->lock);
    for (struct job *x = w->inflight; x; x = x->next)
      if (strcmp(x->d.entry_id, ds[i].entry_id) == 0 && x->d.priority == ds[i].priority) {
        atomic_store(&x->lost, true);
        tg_log(TG_WARN, "event=lease_lost request_id=%s entry=%s", x->d.request_id,
               x->d.entry_id);
      }
    pthread_mutex_unlock(&w->lock);
  }
  free(ds);
  return all_ok && k >= 0;
}

/* Claim up to @room entries of dead or stalled consumers, for the consumers
 * to dispatch. Not before the first taker has read this consumer's own old
 * entries: a restart under the same name finds them stale, and a reclaim
 * between two of those reads would deliver one of them twice (and
 * max_deliveries would bury a job that runs here). The jobs running here
 * are renewed in the same atomic step: after a stall (of Redis or of this
 * process) they look stale too, and the reclaim must not take them. */
static void reclaim_stale(tg_worker_t *w, size_t room) {
  if (room == 0 || !atomic_load(&w->history_read))
    return;
  int n_held;
  tg_delivery_t *held = inflight_entries(w, &n_held);
  if (n_held < 0)
    return; /* out of memory: the next round tries again */
  char errstr[512];
  tg_delivery_t *d;
  int nd;
  tg_err_t err = tg_transport_reclaim(w->keeper, (int)room, held, n_held, &d, &nd, errstr,
                                      sizeof(errstr));
  free(held);
  if (err != TG_OK) {
    tg_log(TG_WARN, "event=reclaim_failed err=\"%s\"", errstr);
    return;
  }
  struct job **jobs = nd ? calloc((size_t)nd, sizeof(*jobs)) : NULL;
  if (jobs)
    admit_all(w, w->keeper, d, nd, jobs);
  for (int i = 0; jobs && i < nd; i++) {
    struct job *j = jobs[i];
    if (!j)
      continue;
    pthread_mutex_lock(&w->lock); /* the consumer dispatches it */
    bool stopping = atomic_load(&w->stopping);
    if (!stopping) {
      j->reclaimed_next = w->reclaimed;
      w->reclaimed = j;
    }
    pthread_mutex_unlock(&w->lock);
    if (stopping) /* the consumers are gone or going: give it back now */
      give_back_unstarted(w, w->keeper, j);
  }
  free(jobs);
  tg_deliveries_free(d, nd);
}

static void housekeeping_round(tg_worker_t *w) {
  char errstr[512];
  if (!atomic_load(&w->queue_broken) && tg_transport_broken(w->keeper, errstr, sizeof(errstr))) {
    pthread_mutex_lock(&w->lock);
    snprintf(w->queue_broken_why, sizeof(w->queue_broken_why), "%s", errstr);
    pthread_mutex_unlock(&w->lock);
    atomic_store(&w->queue_broken, true);
    tg_log(TG_ERROR, "event=queue_broken err=\"%s\" (draining, then exit 1: a restart "
                     "reconnects)", errstr);
  }
  if (tg_transport_heartbeat(w->keeper, tg_now_ms(), errstr, sizeof(errstr)) != TG_OK)
    tg_log(TG_WARN, "event=heartbeat_failed err=\"%s\"", errstr);
  struct tg_transport_stats qs;
  if (tg_transport_stats(w->keeper, &qs))
    tg_metrics_queue(&qs);
  if (w->conf.housekeeping) {
    int promoted = 0;
    if (tg_transport_promote_due(w->keeper, tg_now_ms(), 100, &promoted, errstr,
                                 sizeof(errstr)) != TG_OK)
      tg_log(TG_WARN, "event=promote_due_failed err=\"%s\"", errstr);
    else if (promoted)
      tg_log(TG_INFO, "event=retries_promoted count=%d", promoted);
    /* claim no more than the first stage can take, less what already waits */
    size_t room = atomic_load(&w->stopping) ? 0 : tg_bqueue_wait_room(w->q[TG_STAGE_PROMPT], 0);
    room = window_reserve(w, room, 0);
    window_release(w, room); /* the keeper tracks what it reclaims at once */
    pthread_mutex_lock(&w->lock);
    for (struct job *x = w->reclaimed; x && room > 0; x = x->reclaimed_next)
      room--;
    pthread_mutex_unlock(&w->lock);
    reclaim_stale(w, room);
  }
}

struct background_args {
  tg_worker_t *w;
  atomic_bool *quit;
};

/* The keeper: lease renewals and housekeeping rounds, nothing that waits on a
 * model server (a slow one must not delay renewals past the visibility timeout). */
static void *keeper_main(void *arg) {
  struct background_args *a = arg;
  tg_worker_t *w = a->w;
  int64_t next_lease = 0, next_round = 0;
  while (!atomic_load(a->quit)) {
    int64_t now = tg_mono_ms();
    if (now >= next_lease) {
      /* a failed renewal is tried again soon, not a third of the visibility
       * timeout later: the lease may be close to its end by then */
      int64_t again = w->conf.lease_refresh_ms < 250 ? w->conf.lease_refresh_ms : 250;
      next_lease = now + (refresh_leases(w) ? w->conf.lease_refresh_ms : again);
    }
    if (now >= next_round) {
      housekeeping_round(w);
      next_round = now + w->conf.housekeeping_interval_ms;
    }
    int64_t wake = next_lease < next_round ? next_lease : next_round;
    int64_t nap = wake - tg_mono_ms();
    tg_sleep_ms(nap > 100 ? 100 : nap < 1 ? 1 : nap);
  }
  return NULL;
}

/* The prober: asks the diffusion backend whether it is ready (for /readyz),
 * every housekeeping interval, on its own thread - a probe may take seconds. */
static void *prober_main(void *arg) {
  struct background_args *a = arg;
  tg_worker_t *w = a->w;
  while (!atomic_load(a->quit)) {
    char why[256] = "";
    bool ok = w->st.diffusion->ready(w->st.diffusion_state, why, sizeof(why));
    pthread_mutex_lock(&w->lock);
    snprintf(w->diffusion_why, sizeof(w->diffusion_why), "%s", why);
    pthread_mutex_unlock(&w->lock);
    atomic_store(&w->diffusion_ok, ok);
    int64_t next = tg_mono_ms() + w->conf.housekeeping_interval_ms;
    while (!atomic_load(a->quit) && tg_mono_ms() < next)
      tg_sleep_ms(20);
  }
  return NULL;
}

static bool ready(void *ctx, char *why, size_t n) {
  tg_worker_t *w = ctx;
  if (atomic_load(&w->queue_broken)) {
    pthread_mutex_lock(&w->lock);
    snprintf(why, n, "queue broken: %s", w->queue_broken_why);
    pthread_mutex_unlock(&w->lock);
    return false;
  }
  if (atomic_load(&w->stopping)) {
    snprintf(why, n, "draining");
    return false;
  }
  if (!atomic_load(&w->queue_ok)) {
    snprintf(why, n, "queue unreachable");
    return false;
  }
  if (!atomic_load(&w->diffusion_ok)) {
    pthread_mutex_lock(&w->lock);
    snprintf(why, n, "%s", *w->diffusion_why ? w->diffusion_why : "diffusion not ready yet");
    pthread_mutex_unlock(&w->lock);
    return false;
  }
  return true;
}

/* After the grace period: give every job still in flight back to the queue,
 * due now, same attempt, so another worker takes it at once. Returns how
 * many went back. */
static int hand_back(tg_worker_t *w) {
  int handed = 0;
  pthread_mutex_lock(&w->lock);
  for (struct job *x = w->inflight; x; x = x->next) {
    /* not a job another worker runs now, nor one the finisher is finishing */
    if (atomic_load(&x->lost) || atomic_exchange(&x->settled, true))
      continue;
    atomic_store(&x->lost, true);
    char errstr[256];
    tg_err_t err = TG_ERR_BAD_MSG;
    if (x->d.job && !x->duplicate) /* a finished one stays pending: found done later */
      err = tg_transport_retry_later(w->keeper, &x->d, x->d.job, tg_now_ms(), errstr,
                                     sizeof(errstr));
    if (err == TG_OK) {
      handed++;
      tg_metrics_job(TG_OUTCOME_HANDED_BACK, TG_CODE_INTERNAL);
      tg_log(TG_WARN, "event=job_handed_back request_id=%s", x->d.request_id);
    } else if (err == TG_ERR_NOT_FOUND) {
      tg_log(TG_INFO, "event=job_lost request_id=%s (another worker holds it now)",
             x->d.request_id);
    } else {
      tg_log(TG_WARN, "event=job_left_pending request_id=%s (reclaimed after the visibility "
                      "timeout)", x->d.request_id);
    }
  }
  pthread_mutex_unlock(&w->lock);
  return handed;
}

int tg_worker_run(tg_worker_t *w, volatile sig_atomic_t *stop) {
  const struct tg_worker_conf *c = &w->conf;
  char errstr[512];
  int caps[TG_STAGE__COUNT] = {c->prompt_concurrency, c->diffusion_slots,
                               c->postproc_concurrency, c->upload_concurrency};
  for (int s = 0; s < TG_STAGE__COUNT; s++) {
    /* with a window, the window bounds the jobs held: any stage may queue them */
    int slots = c->max_in_flight > caps[s] ? c->max_in_flight : caps[s];
    if (!(w->q[s] = tg_bqueue_new((size_t)slots)))
      return 1;
  }
  if (!(w->q_finish = tg_bqueue_new(64)))
    return 1;
  if (*c->http_listen) {
    int port = 0;
    w->http = tg_http_start(c->http_listen, c->env, ready, w, &port, errstr, sizeof(errstr));
    if (!w->http) {
      tg_log(TG_ERROR, "event=http_failed err=\"%s\"", errstr);
      return 1;
    }
    tg_log(TG_INFO, "event=http_listening port=%d", port);
  }
  int nthreads = 0;
  for (int s = 0; s < TG_STAGE__COUNT; s++)
    nthreads += caps[s];
  pthread_t *threads = calloc((size_t)nthreads, sizeof(*threads));
  struct stage_thread *args = calloc((size_t)nthreads, sizeof(*args));
  pthread_t consumers[TG_WORKER_MAX_TAKERS], finisher, keeper, prober;
  struct consumer_args cargs[TG_WORKER_MAX_TAKERS];
  atomic_bool keeper_quit = false;
  struct background_args ka = {w, &keeper_quit};
  int t = 0;
  for (int s = 0; s < TG_STAGE__COUNT; s++)
    for (int i = 0; i < caps[s]; i++, t++) {
      args[t] = (struct stage_thread){w, (enum tg_stage_id)s};
      pthread_create(&threads[t], NULL, stage_main, &args[t]);
    }
  pthread_create(&finisher, NULL, finisher_main, w);
  pthread_create(&keeper, NULL, keeper_main, &ka);
  pthread_create(&prober, NULL, prober_main, &ka);
  for (int i = 0; i < c->take_threads; i++) {
    cargs[i] = (struct consumer_args){w, w->takers[i]};
    pthread_create(&consumers[i], NULL, consumer_main, &cargs[i]);
  }
  tg_log(TG_INFO, "event=worker_started env=%s consumer=%s stage_set=%s prompt=%s diffusion=%s "
                  "postproc=%s storage=%s slots=%d max_in_flight=%d",
         c->env, tg_transport_consumer(w->taker), w->stage_set_name, w->st.prompt->name,
         w->st.diffusion->name, w->st.postproc->name, w->st.storage->name, c->diffusion_slots,
         c->max_in_flight);

  while (!*stop && !atomic_load(&w->queue_broken))
    tg_sleep_ms(50);

  /* drain: stop taking, let in-flight jobs finish within the grace period */
  atomic_store(&w->stopping, true);
  int64_t deadline = tg_mono_ms() + c->shutdown_grace_ms; /* joining may wait on a full stage */
  for (int i = 0; i < c->take_threads; i++)
    pthread_join(consumers[i], NULL);
  int left;
  tg_log(TG_INFO, "event=draining in_flight=%d grace_ms=%lld", inflight_count(w),
         (long long)c->shutdown_grace_ms);
  while ((left = inflight_count(w)) > 0 && tg_mono_ms() < deadline)
    tg_sleep_ms(20);
  atomic_store(&keeper_quit, true);
  pthread_join(keeper, NULL);
  if (left > 0) {
    int handed = hand_back(w); /* first: the prober may be inside a probe of seconds */
    pthread_join(prober, NULL);
    tg_log(TG_WARN, "event=worker_stopped handed_back=%d in_flight=%d", handed, left);
    /* stage threads may be inside a remote call: the process exits under them */
    tg_http_stop(w->http);
    w->http = NULL;
    return TG_WORKER_HANDED_BACK;
  }
  pthread_join(prober, NULL);
  for (int s = 0; s < TG_STAGE__COUNT; s++)
    tg_bqueue_close(w->q[s]);
  for (int i = 0; i < nthreads; i++)
    pthread_join(threads[i], NULL);
  tg_bqueue_close(w->q_finish);
  pthread_join(finisher, NULL);
  tg_http_stop(w->http);
  w->http = NULL;
  free(threads);
  free(args);
  tg_log(TG_INFO, "event=worker_stopped handed_back=0");
  return 0;
}

bool tg_worker_broken(tg_worker_t *w) { return atomic_load(&w->queue_broken); }

int tg_worker_once(tg_worker_t *w, tg_trip_t *trip, char **out) {
  char errstr[256];
  struct job *j = calloc(1, sizeof(*j));
  if (!j) {
    tg_trip_destroy(trip);
    return 1;
  }
  j->d.job = tg_job_new(trip, w->conf.env, NULL, tg_now_ms(), errstr, sizeof(errstr));
  if (!j->d.job) {
    tg_trip_destroy(trip);
    free(j);
    fprintf(stderr, "tripgen-worker: %s\n", errstr);
    return 1;
  }
  snprintf(j->d.request_id, sizeof(j->d.request_id), "%s", j->d.job->request_id);
  j->taken_wall_ms = tg_now_ms();
  for (int s = 0; s < TG_STAGE__COUNT && !j->failed; s++)
    tg_stage_run(w, (enum tg_stage_id)s, j);
  tg_result_t *r = tg_job_result(w, j);
  *out = r ? tg_result_serialize(r) : NULL;
  int rc = r && r->succeeded ? 0 : 1;
  tg_result_destroy(r);
  tg_job_free(j);
  return rc;
}
