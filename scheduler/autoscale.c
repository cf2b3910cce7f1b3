/* SPDX-License-Identifier: Apache-2.0 */
/*
 * autoscale.c - desired_workers and backlog_per_worker from a depth
 * reading, and their JSON (/v1/autoscale) and Prometheus (/metrics) forms.
 */
#include "autoscale.h"
#include "tg_time.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sch_autoscale_compute(const struct tg_depth *d, const struct sch_autoscale_conf *a,
                           struct sch_autoscale_numbers *out) {
  int64_t backlog = d->waiting + d->pending;
  int64_t workers = d->active_workers > 0 ? d->active_workers : 1;
  out->backlog_per_worker = (double)backlog / (double)workers;
  int64_t want = (backlog + a->target_backlog_per_worker - 1) / a->target_backlog_per_worker;
  if (backlog > 0 && want < 1) /* scale from zero whenever anything waits */
    want = 1;
  if (want < a->min_workers)
    want = a->min_workers;
  if (want > a->max_workers)
    want = a->max_workers;
  out->desired_workers = want;
}

static double age_seconds(const struct tg_depth *d) {
  return (double)d->oldest_waiting_age_ms / 1000.0;
}

char *sch_autoscale_json(const struct sch_service_conf *sc, const struct sch_service_status *st) {
  struct sch_autoscale_numbers num;
  sch_autoscale_compute(&st->depth, &sc->autoscale, &num);
  const struct tg_depth *d = &st->depth;
  char at[40] = "";
  if (st->depth_at_ms)
    tg_time_format_utc(st->depth_at_ms, at, sizeof(at));
  json_t *o = json_pack(
      "{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:I, s:f, s:I, s:I, s:I, s:I, s:b, s:s*}",
      "service", sc->name, "env", sc->env, "waiting", (json_int_t)d->waiting, "waiting_priority",
      (json_int_t)d->waiting_priority, "pending", (json_int_t)d->pending, "delayed",
      (json_int_t)d->delayed, "dead", (json_int_t)d->dead, "oldest_waiting_age_seconds",
      age_seconds(d), "active_workers", (json_int_t)d->active_workers, "backlog_per_worker",
      num.backlog_per_worker, "desired_workers", (json_int_t)num.desired_workers,
      "target_backlog_per_worker", (json_int_t)sc->autoscale.target_backlog_per_worker,
      "min_workers", (json_int_t)sc->autoscale.min_workers, "max_workers",
      (json_int_t)sc->autoscale.max_workers, "leader", st->leader, "measured_at",
      *at ? at : NULL);
  char *s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
              : NULL;
  json_decref(o);
  return s;
}

/* A growing text buffer. */
struct text {
  char *s;
  size_t len, cap;
  bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...) {
  if (t->failed)
    return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (w < 0) {
      t->failed = true;
      return;
    }
    if (t->s && t->len + (size_t)w < t->cap) {
      t->len += (size_t)w;
      return;
    }
    size_t nc = (t->cap ? t->cap * 2 : 4096) + (size_t)w;
    char *ns = realloc(t->s, nc);
    if (!ns) {
      t->failed = true;
      return;
    }
    t->s = ns;
    t->cap = nc;
  }
}

/* One metric family: HELP, TYPE and a sample per service. */
struct family {
  const char *name, *type, *help;
  bool per_env;                  /* labelled {env} only (lease and loop counters) */
  double (*value)(const struct sch_service_conf *, const struct sch_service_status *,
                  const struct sch_autoscale_numbers *);
};

#define V(fn, expr)                                                                        \
  static double fn(const struct sch_service_conf *sc, const struct sch_service_status *st, \
                   const struct sch_autoscale_numbers *num) {                              \
    (void)sc;                                                                              \
    (void)st;                                                                              \
    (void)num;                                                                             \
    return (double)(expr);                                                                 \
  }
V(v_waiting, st->depth.waiting)
V(v_waiting_prio, st->depth.waiting_priority)
V(v_pending, st->depth.pending)
V(v_delayed, st->depth.delayed)
V(v_dead, st->depth.dead)
V(v_age, age_seconds(&st->depth))
V(v_workers, st->depth.active_workers)
V(v_backlog, num->backlog_per_worker)
V(v_desired, num->desired_workers)
V(v_target, sc->autoscale.target_backlog_per_worker)
V(v_min, sc->autoscale.min_workers)
V(v_max, sc->autoscale.max_workers)
V(v_depth_ok, st->depth_ok)
V(v_depth_age, st->depth_at_ms ? (double)(tg_now_ms() - st->depth_at_ms) / 1000.0 : -1.0)
V(v_leader, st->leader)
V(v_promoted, st->promoted_total)
V(v_reclaimed, st->reclaimed_total)
V(v_dead_lettered, st->dead_lettered_total)
V(v_removed, st->consumers_removed_total)

static const struct family families[] = {
  {"tripgen_queue_waiting", "gauge", "jobs in the input streams not yet delivered", false,
   v_waiting},
  {"tripgen_queue_waiting_priority", "gauge", "the part of waiting in the priority stream",
   false, v_waiting_prio},
  {"tripgen_queue_pending", "gauge", "jobs delivered to a worker and not yet acked", false,
   v_pending},
  {"tripgen_queue_delayed", "gauge", "retries waiting for their due time", false, v_delayed},
  {"tripgen_queue_dead", "gauge", "dead letters", false, v_dead},
  {"tripgen_queue_oldest_waiting_age_seconds", "gauge", "age of the oldest waiting job",
   false, v_age},
  {"tripgen_workers_active", "gauge", "workers heard from within active_window_ms", false,
   v_workers},
  {"tripgen_backlog_per_worker", "gauge", "(waiting + pending) / max(active workers, 1)",
   false, v_backlog},
  {"tripgen_desired_workers", "gauge",
   "clamp(ceil((waiting + pending) / target), min, max), at least 1 while anything waits",
   false, v_desired},
  {"tripgen_autoscale_target_backlog_per_worker", "gauge", "configured target", false,
   v_target},
  {"tripgen_autoscale_min_workers", "gauge", "configured minimum", false, v_min},
  {"tripgen_autoscale_max_workers", "gauge", "configured maximum", false, v_max},
  {"tripgen_depth_ok", "gauge", "1 when the last depth reading succeeded", false, v_depth_ok},
  {"tripgen_depth_age_seconds", "gauge", "age of the last good depth reading (-1: none)",
   false, v_depth_age},
  {"tripgen_scheduler_leader", "gauge", "1 when this replica holds the env's control lease",
   true, v_leader},
  {"tripgen_control_promoted_total", "counter", "retries moved back to the input by this replica",
   true, v_promoted},
  {"tripgen_control_reclaimed_total", "counter",
   "entries of dead or stalled workers parked for the next take by this replica", true,
   v_reclaimed},
  {"tripgen_control_dead_lettered_total", "counter",
   "entries dead-lettered past max_deliveries by this replica", true, v_dead_lettered},
  {"tripgen_control_consumers_removed_total", "counter",
   "idle consumers without entries removed by this replica", true, v_removed},
};

char *sch_metrics_text(const struct sch_conf *conf, sch_control_t *ctl) {
  struct text t = {0};
  struct sch_service_status st[SCH_MAX_SERVICES];
  struct sch_autoscale_numbers num[SCH_MAX_SERVICES];
  for (size_t i = 0; i < conf->n_services; i++) {
    sch_control_status(ctl, i, &st[i]);
    sch_autoscale_compute(&st[i].depth, &conf->services[i].autoscale, &num[i]);
  }
  for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
    const struct family *fam = &families[f];
    put(&t, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
    for (size_t i = 0; i < conf->n_services; i++) {
      const struct sch_service_conf *sc = &conf->services[i];
      double v = fam->value(sc, &st[i], &num[i]);
      if (fam->per_env)
        put(&t, "%s{env=\"%s\"} %.10g\n", fam->name, sc->env, v);
      else
        put(&t, "%s{service=\"%s\",env=\"%s\"} %.10g\n", fam->name, sc->name, sc->env, v);
    }
  }
  if (t.failed) {
    free(t.s);
    return NULL;
  }
  return t.s ? t.s : strdup("");
}
