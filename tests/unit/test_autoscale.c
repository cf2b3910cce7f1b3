/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_autoscale.c - the scheduler's autoscale numbers (scheduler/autoscale.c)
 * for scripted depth readings: desired_workers (scale from zero, the
 * ceiling, the clamp to min and max, what counts as backlog) and
 * backlog_per_worker; the /v1/autoscale JSON object field by field; and the
 * /metrics text of a control handle that never reached Redis.
 */
#undef NDEBUG
#include "autoscale.h"
#include "check.h"
#include "control.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct scenario {
  int64_t waiting, pending, delayed, dead, active;
  int64_t target, min, max;
  int64_t want_desired;
  double want_backlog;
};

static void check_scenario(int line, const struct scenario *s) {
  struct tg_depth d = {.waiting = s->waiting, .pending = s->pending, .delayed = s->delayed,
                       .dead = s->dead, .active_workers = s->active};
  struct sch_autoscale_conf a = {.target_backlog_per_worker = s->target,
                                 .min_workers = s->min, .max_workers = s->max,
                                 .active_window_ms = 30000};
  struct sch_autoscale_numbers num = {.backlog_per_worker = -1, .desired_workers = -1};
  sch_autoscale_compute(&d, &a, &num);
  CHECK_MSG(num.desired_workers == s->want_desired,
            "line %d: waiting %lld pending %lld target %lld min %lld max %lld: desired %lld, "
            "want %lld",
            line, (long long)s->waiting, (long long)s->pending, (long long)s->target,
            (long long)s->min, (long long)s->max, (long long)num.desired_workers,
            (long long)s->want_desired);
  CHECK_MSG(fabs(num.backlog_per_worker - s->want_backlog) < 1e-9,
            "line %d: backlog_per_worker %g, want %g", line, num.backlog_per_worker,
            s->want_backlog);
}

#define SCENARIO(...) check_scenario(__LINE__, &(struct scenario){__VA_ARGS__})

static void test_desired_workers(void) {
  /* nothing to do: min_workers */
  SCENARIO(.target = 4, .min = 0, .max = 20, .want_desired = 0, .want_backlog = 0);
  SCENARIO(.target = 4, .min = 2, .max = 20, .want_desired = 2, .want_backlog = 0);
  /* one job: scale from zero, whatever the target */
  SCENARIO(.waiting = 1, .target = 4, .min = 0, .max = 20, .want_desired = 1,
           .want_backlog = 1);
  SCENARIO(.waiting = 1, .target = 1000000, .min = 0, .max = 20, .want_desired = 1,
           .want_backlog = 1);
  /* the ceiling of backlog / target */
  SCENARIO(.waiting = 4, .target = 4, .min = 0, .max = 20, .want_desired = 1,
           .want_backlog = 4);
  SCENARIO(.waiting = 5, .target = 4, .min = 0, .max = 20, .want_desired = 2,
           .want_backlog = 5);
  SCENARIO(.waiting = 40, .target = 4, .min = 0, .max = 20, .want_desired = 10,
           .want_backlog = 40);
  SCENARIO(.waiting = 41, .target = 4, .min = 0, .max = 20, .want_desired = 11,
           .want_backlog = 41);
  /* max caps it */
  SCENARIO(.waiting = 40, .target = 4, .min = 0, .max = 6, .want_desired = 6,
           .want_backlog = 40);
  SCENARIO(.waiting = 1000000, .target = 1, .min = 0, .max = 1, .want_desired = 1,
           .want_backlog = 1000000);
  /* pending counts like waiting (docs/autoscaling.md: 12 waiting, 8 pending, target 4 -> 5) */
  SCENARIO(.pending = 5, .target = 4, .min = 0, .max = 20, .want_desired = 2,
           .want_backlog = 5);
  SCENARIO(.waiting = 12, .pending = 8, .target = 4, .min = 0, .max = 20, .want_desired = 5,
           .want_backlog = 20);
  SCENARIO(.pending = 1, .target = 4, .min = 0, .max = 20, .want_desired = 1,
           .want_backlog = 1);
  /* delayed retries and dead letters need no worker */
  SCENARIO(.delayed = 100, .dead = 100, .target = 4, .min = 0, .max = 20, .want_desired = 0,
           .want_backlog = 0);
  SCENARIO(.waiting = 4, .delayed = 100, .dead = 7, .target = 4, .min = 0, .max = 20,
           .want_desired = 1, .want_backlog = 4);
  /* min above the computed number wins */
  SCENARIO(.waiting = 4, .target = 4, .min = 3, .max = 20, .want_desired = 3,
           .want_backlog = 4);
  SCENARIO(.waiting = 40, .target = 4, .min = 3, .max = 20, .want_desired = 10,
           .want_backlog = 40);
  SCENARIO(.waiting = 40, .target = 4, .min = 5, .max = 5, .want_desired = 5,
           .want_backlog = 40);
}

static void test_backlog_per_worker(void) {
  /* no worker heartbeats: divided by 1 */
  SCENARIO(.waiting = 10, .active = 0, .target = 4, .min = 0, .max = 20, .want_desired = 3,
           .want_backlog = 10);
  SCENARIO(.waiting = 6, .pending = 4, .active = 4, .target = 4, .min = 0, .max = 20,
           .want_desired = 3, .want_backlog = 2.5);
  SCENARIO(.waiting = 1, .active = 3, .target = 4, .min = 0, .max = 20, .want_desired = 1,
           .want_backlog = 1.0 / 3.0);
  SCENARIO(.active = 7, .target = 4, .min = 0, .max = 20, .want_desired = 0,
           .want_backlog = 0);
  /* desired_workers depends on the queue alone, not on how many run */
  SCENARIO(.waiting = 40, .active = 40, .target = 4, .min = 0, .max = 20, .want_desired = 10,
           .want_backlog = 1);
  /* waiting_priority is part of waiting, not added to it */
  struct tg_depth d = {.waiting = 4, .waiting_priority = 4, .active_workers = 1};
  struct sch_autoscale_conf a = {.target_backlog_per_worker = 4, .min_workers = 0,
                                 .max_workers = 20, .active_window_ms = 30000};
  struct sch_autoscale_numbers num;
  sch_autoscale_compute(&d, &a, &num);
  CHECK(num.desired_workers == 1 && num.backlog_per_worker == 4.0);
}

static void service(struct sch_service_conf *sc, const char *name, const char *env) {
  memset(sc, 0, sizeof(*sc));
  snprintf(sc->name, sizeof(sc->name), "%s", name);
  snprintf(sc->env, sizeof(sc->env), "%s", env);
  sc->visibility_timeout_ms = 300000;
  sc->queue_cap = 100000;
  sc->sink_max_len = 100000;
  sc->max_deliveries = 5;
  sc->consumer_idle_ms = 3600000;
  sc->autoscale = (struct sch_autoscale_conf){.target_backlog_per_worker = 4,
                                              .min_workers = 1, .max_workers = 20,
                                              .active_window_ms = 30000};
}

static json_t *parse(const char *s) {
  json_error_t je;
  json_t *o = s ? json_loads(s, 0, &je) : NULL;
  CHECK_MSG(o && json_is_object(o), "not a JSON object: %s (%s)", s ? s : "(null)",
            o ? "" : je.text);
  return o;
}

static int64_t int_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  CHECK_MSG(json_is_integer(v), "%s: not an integer", key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : -999;
}

static double real_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  CHECK_MSG(json_is_number(v), "%s: not a number", key);
  return json_is_number(v) ? json_number_value(v) : -999;
}

static const char *str_field(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  CHECK_MSG(json_is_string(v), "%s: not a string", key);
  return json_is_string(v) ? json_string_value(v) : "";
}

static void test_json(void) {
  struct sch_service_conf sc;
  service(&sc, "trip-prod", "prod");
  struct sch_service_status st;
  memset(&st, 0, sizeof(st));
  st.depth_ok = true;
  st.depth_at_ms = 1700000000123LL; /* 2023-11-14T22:13:20.123Z */
  st.leader = true;
  st.depth = (struct tg_depth){.waiting = 12, .waiting_priority = 3, .pending = 8, .delayed = 1,
                               .dead = 2, .oldest_waiting_age_ms = 3200, .active_workers = 5};
  char *s = sch_autoscale_json(&sc, &st);
  json_t *o = parse(s);
  if (o) {
    CHECK_STREQ(str_field(o, "service"), "trip-prod");
    CHECK_STREQ(str_field(o, "env"), "prod");
    CHECK(int_field(o, "waiting") == 12);
    CHECK(int_field(o, "waiting_priority") == 3);
    CHECK(int_field(o, "pending") == 8);
    CHECK(int_field(o, "delayed") == 1);
    CHECK(int_field(o, "dead") == 2);
    CHECK(fabs(real_field(o, "oldest_waiting_age_seconds") - 3.2) < 1e-9);
    CHECK(int_field(o, "active_workers") == 5);
    CHECK(fabs(real_field(o, "backlog_per_worker") - 4.0) < 1e-9);
    CHECK(int_field(o, "desired_workers") == 5);
    CHECK(int_field(o, "target_backlog_per_worker") == 4);
    CHECK(int_field(o, "min_workers") == 1);
    CHECK(int_field(o, "max_workers") == 20);
    CHECK(json_is_true(json_object_get(o, "leader")));
    CHECK_STREQ(str_field(o, "measured_at"), "2023-11-14T22:13:20.123Z");
    CHECK_MSG(json_object_size(o) == 16, "%zu fields: %s", json_object_size(o), s);
  }
  json_decref(o);
  free(s);

  /* no reading yet: zeros, min_workers, measured_at null, not the leader */
  memset(&st, 0, sizeof(st));
  service(&sc, "svc.b_2", "b");
  sc.autoscale.min_workers = 0;
  s = sch_autoscale_json(&sc, &st);
  o = parse(s);
  if (o) {
    CHECK_STREQ(str_field(o, "service"), "svc.b_2");
    CHECK(int_field(o, "waiting") == 0 && int_field(o, "pending") == 0);
    CHECK(real_field(o, "oldest_waiting_age_seconds") == 0);
    CHECK(real_field(o, "backlog_per_worker") == 0);
    CHECK(int_field(o, "desired_workers") == 0);
    CHECK(int_field(o, "min_workers") == 0);
    CHECK(json_is_false(json_object_get(o, "leader")));
    CHECK(json_object_get(o, "measured_at") == NULL); /* no reading yet: left out */
    CHECK_MSG(json_object_size(o) == 15, "%zu fields: %s", json_object_size(o), s);
  }
  json_decref(o);
  free(s);

  /* a fractional backlog per worker survives the encoding */
  st.depth = (struct tg_depth){.waiting = 1, .active_workers = 3};
  s = sch_autoscale_json(&sc, &st);
  o = parse(s);
  if (o) {
    CHECK(fabs(real_field(o, "backlog_per_worker") - 1.0 / 3.0) < 1e-5);
    CHECK(int_field(o, "desired_workers") == 1);
  }
  json_decref(o);
  free(s);
}

/* The value of the sample line that starts with @prefix (name and labels). */
static bool sample(const char *text, const char *prefix, double *v) {
  size_t len = strlen(prefix);
  for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
    if (strncmp(p, prefix, len) == 0 && p[len] == ' ') {
      *v = strtod(p + len + 1, NULL);
      return true;
    }
  return false;
}

static void check_sample(const char *text, const char *prefix, double want) {
  double v = -12345;
  bool found = sample(text, prefix, &v);
  CHECK_MSG(found && v == want, "%s: %s %g, want %g", prefix, found ? "got" : "missing", v,
            want);
}

/* A control handle whose Redis does not answer: every status stays at "no
 * reading", which fixes every number. */
static void test_metrics_text(void) {
  struct sch_conf conf;
  memset(&conf, 0, sizeof(conf));
  snprintf(conf.redis_url, sizeof(conf.redis_url),
           "unix:///nonexistent-tripgen-test-dir/redis.sock");
  conf.control.enabled = false;
  conf.control.interval_ms = 600000;
  conf.control.lease_ms = 10000;
  service(&conf.services[0], "svc-a", "a");
  conf.services[0].autoscale.min_workers = 2;
  service(&conf.services[1], "svc-b", "b");
  conf.services[1].autoscale = (struct sch_autoscale_conf){
      .target_backlog_per_worker = 7, .min_workers = 0, .max_workers = 3,
      .active_window_ms = 30000};
  conf.n_services = 2;
  char errstr[256];
  sch_control_t *ctl = sch_control_start(&conf, errstr, sizeof(errstr));
  CHECK_MSG(ctl != NULL, "%s", errstr);
  if (!ctl)
    return;
  char *text = sch_metrics_text(&conf, ctl);
  CHECK(text != NULL);
  if (text) {
    static const struct {
      const char *name, *type;
      bool per_env;
    } families[] = {
      {"tripgen_queue_waiting", "gauge", false},
      {"tripgen_queue_waiting_priority", "gauge", false},
      {"tripgen_queue_pending", "gauge", false},
      {"tripgen_queue_delayed", "gauge", false},
      {"tripgen_queue_dead", "gauge", false},
      {"tripgen_queue_oldest_waiting_age_seconds", "gauge", false},
      {"tripgen_workers_active", "gauge", false},
      {"tripgen_backlog_per_worker", "gauge", false},
      {"tripgen_desired_workers", "gauge", false},
      {"tripgen_autoscale_target_backlog_per_worker", "gauge", false},
      {"tripgen_autoscale_min_workers", "gauge", false},
      {"tripgen_autoscale_max_workers", "gauge", false},
      {"tripgen_depth_ok", "gauge", false},
      {"tripgen_depth_age_seconds", "gauge", false},
      {"tripgen_scheduler_leader", "gauge", true},
      {"tripgen_control_promoted_total", "counter", true},
      {"tripgen_control_reclaimed_total", "counter", true},
      {"tripgen_control_dead_lettered_total", "counter", true},
      {"tripgen_control_consumers_removed_total", "counter", true},
    };
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
      char want[160], a[160], b[160];
      snprintf(want, sizeof(want), "# HELP %s ", families[i].name);
      CHECK_MSG(strstr(text, want) != NULL, "no HELP for %s", families[i].name);
      snprintf(want, sizeof(want), "# TYPE %s %s\n", families[i].name, families[i].type);
      CHECK_MSG(strstr(text, want) != NULL, "no TYPE %s for %s", families[i].type,
                families[i].name);
      if (families[i].per_env) {
        snprintf(a, sizeof(a), "%s{env=\"a\"}", families[i].name);
        snprintf(b, sizeof(b), "%s{env=\"b\"}", families[i].name);
      } else {
        snprintf(a, sizeof(a), "%s{service=\"svc-a\",env=\"a\"}", families[i].name);
        snprintf(b, sizeof(b), "%s{service=\"svc-b\",env=\"b\"}", families[i].name);
      }
      double v;
      CHECK_MSG(sample(text, a, &v), "no sample %s", a);
      CHECK_MSG(sample(text, b, &v), "no sample %s", b);
    }
    /* the configured numbers, echoed; min_workers with an empty queue */
    check_sample(text, "tripgen_desired_workers{service=\"svc-a\",env=\"a\"}", 2);
    check_sample(text, "tripgen_desired_workers{service=\"svc-b\",env=\"b\"}", 0);
    check_sample(text, "tripgen_autoscale_target_backlog_per_worker{service=\"svc-a\",env=\"a\"}",
                 4);
    check_sample(text, "tripgen_autoscale_target_backlog_per_worker{service=\"svc-b\",env=\"b\"}",
                 7);
    check_sample(text, "tripgen_autoscale_min_workers{service=\"svc-a\",env=\"a\"}", 2);
    check_sample(text, "tripgen_autoscale_max_workers{service=\"svc-b\",env=\"b\"}", 3);
    /* no reading: not ok, no age, no leader, no counts */
    check_sample(text, "tripgen_depth_ok{service=\"svc-a\",env=\"a\"}", 0);
    check_sample(text, "tripgen_depth_age_seconds{service=\"svc-a\",env=\"a\"}", -1);
    check_sample(text, "tripgen_queue_waiting{service=\"svc-b\",env=\"b\"}", 0);
    check_sample(text, "tripgen_backlog_per_worker{service=\"svc-a\",env=\"a\"}", 0);
    check_sample(text, "tripgen_scheduler_leader{env=\"a\"}", 0);
    check_sample(text, "tripgen_control_promoted_total{env=\"b\"}", 0);
    /* every line is a comment or "name{labels} value" */
    int bad = 0, lines = 0;
    for (const char *p = text; *p;) {
      const char *nl = strchr(p, '\n');
      size_t len = nl ? (size_t)(nl - p) : strlen(p);
      lines++;
      if (!(len > 2 && p[0] == '#') && !(memchr(p, '{', len) && memchr(p, '}', len) &&
                                         memchr(p, ' ', len)))
        bad++;
      p += len + (nl ? 1 : 0);
    }
    CHECK_MSG(bad == 0, "%d malformed lines", bad);
    CHECK(lines == 19 * (2 + 2)); /* HELP, TYPE and one sample per service */
    CHECK(text[strlen(text) - 1] == '\n');
  }
  free(text);
  sch_control_destroy(ctl);
}

int main(void) {
  RUN(test_desired_workers);
  RUN(test_backlog_per_worker);
  RUN(test_json);
  RUN(test_metrics_text);
  return check_done("autoscale");
}
