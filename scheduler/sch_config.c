/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sch_config.c - loading and validating the scheduler's JSON config; tokens
 * come from the environment or files and are never printed.
 */
#include "sch_config.h"
#include "kafka_client.h"
#include "redis_url.h"
#include "tg_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool service_name_ok(const char *s) {
  size_t l = strlen(s);
  if (l < 1 || l > 64)
    return false;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '_' || *p == '-'))
      return false;
  return true;
}

static bool read_token_file(const char *path, char *out, size_t size, char *errstr, size_t n) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(errstr, n, "cannot read %s: %s", path, strerror(errno));
    return false;
  }
  bool ok = fgets(out, (int)size, f) != NULL;
  fclose(f);
  out[strcspn(out, "\r\n")] = '\0';
  if (!ok || !*out) {
    snprintf(errstr, n, "%s is empty", path);
    return false;
  }
  return true;
}

static const char *const service_keys[] = {
  "name", "env", "token_env", "token_file", "strict_put", "idempotency_ttl_ms", "max_watchers",
  "max_long_polls",
  "visibility_timeout_ms", "queue_cap", "sink_max_len", "dlq_max_len", "max_deliveries",
  "consumer_idle_ms",
  "autoscale", "kafka", NULL};
static const char *const root_keys[] = {"listen", "redis", "log", "long_poll_max_ms",
                                        "threads", "control", "services", NULL};

/* One optional integer key within [min, max]; *v holds the default. */
static bool opt_int(json_t *o, const char *path, const char *key, int64_t min, int64_t max,
                    int64_t *v, char *errstr, size_t n) {
  return tg_v_int(o, path, key, false, min, max, v, errstr, n);
}

static bool load_autoscale(json_t *svc, const char *path, struct sch_autoscale_conf *a,
                           char *errstr, size_t n) {
  static const char *const keys[] = {"target_backlog_per_worker", "min_workers", "max_workers",
                                     "active_window_ms", NULL};
  char sub[64];
  json_t *o;
  a->target_backlog_per_worker = 4;
  a->min_workers = 0;
  a->max_workers = 20;
  a->active_window_ms = 30000;
  snprintf(sub, sizeof(sub), "%s.autoscale", path);
  if (!tg_v_child(svc, path, "autoscale", JSON_OBJECT, false, false, &o, errstr, n))
    return false;
  if (!o)
    return true;
  if (!tg_v_keys(o, sub, keys, errstr, n) ||
      !opt_int(o, sub, "target_backlog_per_worker", 1, 1000000, &a->target_backlog_per_worker,
               errstr, n) ||
      !opt_int(o, sub, "min_workers", 0, 100000, &a->min_workers, errstr, n) ||
      !opt_int(o, sub, "max_workers", 1, 100000, &a->max_workers, errstr, n) ||
      !opt_int(o, sub, "active_window_ms", 1000, 86400000, &a->active_window_ms, errstr, n))
    return false;
  if (a->min_workers > a->max_workers) {
    snprintf(errstr, n, "%s: min_workers %lld is above max_workers %lld", sub,
             (long long)a->min_workers, (long long)a->max_workers);
    return false;
  }
  return true;
}

static bool load_control(json_t *root, struct sch_control_conf *c, char *errstr, size_t n) {
  static const char *const keys[] = {"enabled", "interval_ms", "lease_ms", NULL};
  json_t *o;
  c->enabled = true;
  c->interval_ms = 1000;
  c->lease_ms = 10000;
  if (!tg_v_child(root, "", "control", JSON_OBJECT, false, false, &o, errstr, n))
    return false;
  if (!o)
    return true;
  if (!tg_v_keys(o, "control", keys, errstr, n) ||
      !tg_v_bool(o, "control", "enabled", false, &c->enabled, errstr, n) ||
      !opt_int(o, "control", "interval_ms", 50, 60000, &c->interval_ms, errstr, n) ||
      !opt_int(o, "control", "lease_ms", 500, 600000, &c->lease_ms, errstr, n))
    return false;
  if (c->lease_ms < 3 * c->interval_ms) {
    snprintf(errstr, n, "control.lease_ms: %lld must be at least 3 × interval_ms (%lld), so a "
                        "live leader renews it in time", (long long)c->lease_ms,
             (long long)c->interval_ms);
    return false;
  }
  return true;
}

/* "kafka": the env's queue is on Kafka (the workers' kafka.* settings):
 * the scheduler reports its lag, and serves no EAS queue API for it. */
static bool load_kafka(json_t *o, const char *path, struct sch_service_conf *s, char *errstr,
                       size_t n) {
  json_t *k, *props;
  char kp[80];
  snprintf(kp, sizeof(kp), "%s.kafka", path);
  if (!tg_v_child(o, path, "kafka", JSON_OBJECT, false, false, &k, errstr, n))
    return false;
  if (!k)
    return true;
  static const char *const keys[] = {"brokers", "group", "topic_in", "topic_retry",
                                     "topic_dlq", "conf", NULL};
  static const struct tg_str_rule req = {true, false, 1, 500, TG_CS_LINE};
  static const struct tg_str_rule opt = {false, true, 0, 120, TG_CS_LINE};
  struct tg_transport_conf defaults;
  tg_transport_conf_init(&defaults, s->env);
  s->kafka = defaults.kafka;
  snprintf(s->kafka_group, sizeof(s->kafka_group), "%s", defaults.group);
  const char *v;
  if (!tg_v_keys(k, kp, keys, errstr, n) || !tg_v_str(k, kp, "brokers", &req, &v, errstr, n))
    return false;
  snprintf(s->kafka.brokers, sizeof(s->kafka.brokers), "%s", v);
  struct { const char *key; char *dst; size_t size; } strs[] = {
    {"group", s->kafka_group, sizeof(s->kafka_group)},
    {"topic_in", s->kafka.topic_in, sizeof(s->kafka.topic_in)},
    {"topic_retry", s->kafka.topic_retry, sizeof(s->kafka.topic_retry)},
    {"topic_dlq", s->kafka.topic_dlq, sizeof(s->kafka.topic_dlq)},
  };
  for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
    if (!tg_v_str(k, kp, strs[i].key, &opt, &v, errstr, n))
      return false;
    if (v && strlen(v) >= strs[i].size) {
      snprintf(errstr, n, "%s.%s: too long", kp, strs[i].key);
      return false;
    }
    if (v)
      snprintf(strs[i].dst, strs[i].size, "%s", v);
  }
  if (!tg_v_child(k, kp, "conf", JSON_OBJECT, false, false, &props, errstr, n))
    return false;
  char cp[100];
  snprintf(cp, sizeof(cp), "%s.conf", kp);
  if (props && !tg_kafka_props_from_json(props, cp, s->kafka.props, sizeof(s->kafka.props),
                                         errstr, n))
    return false;
  s->on_kafka = true;
  return true;
}

static bool load_service(json_t *o, size_t i, struct sch_service_conf *s, char *errstr,
                         size_t n) {
  char path[48];
  snprintf(path, sizeof(path), "services[%zu]", i);
  const char *v;
  int64_t x;
  bool b = false;
  static const struct tg_str_rule name_rule = {true, false, 1, 64, TG_CS_LINE};
  static const struct tg_str_rule env_rule = {true, false, 1, TG_MAX_ENV_CHARS, TG_CS_ENV};
  static const struct tg_str_rule opt_rule = {false, false, 1, 150, TG_CS_LINE};
  if (!json_is_object(o)) {
    snprintf(errstr, n, "%s: expected object", path);
    return false;
  }
  if (!tg_v_keys(o, path, service_keys, errstr, n) ||
      !tg_v_str(o, path, "name", &name_rule, &v, errstr, n))
    return false;
  if (!service_name_ok(v)) {
    snprintf(errstr, n, "%s.name: must be 1-64 of letters, digits, '.', '_', '-'", path);
    return false;
  }
  snprintf(s->name, sizeof(s->name), "%s", v);
  if (!tg_v_str(o, path, "env", &env_rule, &v, errstr, n))
    return false;
  snprintf(s->env, sizeof(s->env), "%s", v);
  const char *tenv, *tfile;
  if (!tg_v_str(o, path, "token_env", &opt_rule, &tenv, errstr, n) ||
      !tg_v_str(o, path, "token_file", &opt_rule, &tfile, errstr, n))
    return false;
  char why[300];
  if (tenv) {
    const char *tok = getenv(tenv);
    if (!tok || !*tok) {
      snprintf(errstr, n, "%s: the token variable %s is not set", path, tenv);
      return false;
    }
    if (strlen(tok) >= sizeof(s->token)) {
      snprintf(errstr, n, "%s: the token in %s is too long", path, tenv);
      return false;
    }
    snprintf(s->token, sizeof(s->token), "%s", tok);
    snprintf(s->token_source, sizeof(s->token_source), "env %s", tenv);
  } else if (tfile) {
    if (!read_token_file(tfile, s->token, sizeof(s->token), why, sizeof(why))) {
      snprintf(errstr, n, "%s.token_file: %s", path, why);
      return false;
    }
    snprintf(s->token_source, sizeof(s->token_source), "file %s", tfile);
  } else {
    snprintf(errstr, n, "%s: needs token_env or token_file (every queue is authenticated)",
             path);
    return false;
  }
  s->idempotency_ttl_ms = 600000;
  s->max_watchers = 64;
  s->max_long_polls = 32;
  s->visibility_timeout_ms = 300000;
  s->queue_cap = TG_DEFAULT_QUEUE_LENGTH;
  s->sink_max_len = 100000;
  if (!tg_v_bool(o, path, "strict_put", false, &b, errstr, n))
    return false;
  s->strict_put = b;
  x = s->idempotency_ttl_ms;
  if (!tg_v_int(o, path, "idempotency_ttl_ms", false, 0, 7LL * 86400000, &x, errstr, n))
    return false;
  s->idempotency_ttl_ms = x;
  x = s->max_watchers;
  if (!tg_v_int(o, path, "max_watchers", false, 1, 10000, &x, errstr, n))
    return false;
  s->max_watchers = (int)x;
  x = s->max_long_polls;
  if (!tg_v_int(o, path, "max_long_polls", false, 1, 10000, &x, errstr, n))
    return false;
  s->max_long_polls = (int)x;
  x = s->visibility_timeout_ms;
  if (!tg_v_int(o, path, "visibility_timeout_ms", false, 100, 86400000, &x, errstr, n))
    return false;
  s->visibility_timeout_ms = x;
  x = s->queue_cap;
  if (!tg_v_int(o, path, "queue_cap", false, 1, TG_MAX_QUEUE_LENGTH, &x, errstr, n))
    return false;
  s->queue_cap = x;
  x = s->sink_max_len;
  if (!tg_v_int(o, path, "sink_max_len", false, 100, 100000000, &x, errstr, n))
    return false;
  s->sink_max_len = x;
  s->dlq_max_len = 100000;
  if (!opt_int(o, path, "dlq_max_len", 100, 100000000, &s->dlq_max_len, errstr, n))
    return false;
  x = 5;
  if (!opt_int(o, path, "max_deliveries", 1, 1000, &x, errstr, n))
    return false;
  s->max_deliveries = (int)x;
  s->consumer_idle_ms = 3600000;
  if (!opt_int(o, path, "consumer_idle_ms", 1000, 30LL * 86400000, &s->consumer_idle_ms, errstr,
               n))
    return false;
  return load_autoscale(o, path, &s->autoscale, errstr, n) && load_kafka(o, path, s, errstr, n);
}

tg_err_t sch_conf_load(struct sch_conf *c, const char *path, char *errstr, size_t n) {
  memset(c, 0, sizeof(*c));
  snprintf(c->listen, sizeof(c->listen), "127.0.0.1:8080");
  snprintf(c->redis_url, sizeof(c->redis_url), "redis://127.0.0.1:6379");
  snprintf(c->log_level, sizeof(c->log_level), "info");
  c->long_poll_max_ms = 60000;
  c->threads = 64;
  json_t *root = NULL;
  char why[400];
  if (!tg_json_load_file(path, 65535, &root, why, sizeof(why)) || !json_is_object(root)) {
    snprintf(errstr, n, "config %s: %s", path, root ? "expected a JSON object" : why);
    json_decref(root);
    return TG_ERR_INVAL;
  }
  static const struct tg_str_rule str_rule = {false, false, 1, 500, TG_CS_LINE};
  const char *v;
  int64_t x;
  json_t *redis, *log, *services, *svc;
  size_t i;
  bool ok = tg_v_keys(root, "", root_keys, why, sizeof(why)) &&
            tg_v_str(root, "", "listen", &str_rule, &v, why, sizeof(why));
  if (ok && v)
    snprintf(c->listen, sizeof(c->listen), "%s", v);
  ok = ok && tg_v_child(root, "", "redis", JSON_OBJECT, false, false, &redis, why, sizeof(why));
  if (ok && redis) {
    static const char *const rk[] = {"url", NULL};
    ok = tg_v_keys(redis, "redis", rk, why, sizeof(why)) &&
         tg_v_str(redis, "redis", "url", &str_rule, &v, why, sizeof(why));
    if (ok && v)
      snprintf(c->redis_url, sizeof(c->redis_url), "%s", v);
  }
  ok = ok && tg_v_child(root, "", "log", JSON_OBJECT, false, false, &log, why, sizeof(why));
  if (ok && log) {
    static const char *const lk[] = {"level", NULL};
    ok = tg_v_keys(log, "log", lk, why, sizeof(why)) &&
         tg_v_str(log, "log", "level", &str_rule, &v, why, sizeof(why));
    if (ok && v)
      snprintf(c->log_level, sizeof(c->log_level), "%s", v);
  }
  x = c->long_poll_max_ms;
  ok = ok && tg_v_int(root, "", "long_poll_max_ms", false, 100, 600000, &x, why, sizeof(why));
  c->long_poll_max_ms = x;
  x = c->threads;
  ok = ok && tg_v_int(root, "", "threads", false, 4, 1024, &x, why, sizeof(why));
  c->threads = (int)x;
  ok = ok && load_control(root, &c->control, why, sizeof(why));
  ok = ok && tg_v_child(root, "", "services", JSON_ARRAY, true, false, &services, why,
                        sizeof(why));
  if (ok && (json_array_size(services) < 1 || json_array_size(services) > SCH_MAX_SERVICES)) {
    snprintf(why, sizeof(why), "services: 1-%d services", SCH_MAX_SERVICES);
    ok = false;
  }
  if (ok) {
    json_array_foreach(services, i, svc) {
      if (!(ok = load_service(svc, i, &c->services[i], why, sizeof(why))))
        break;
      for (size_t k = 0; k < i && ok; k++)
        if (strcmp(c->services[k].name, c->services[i].name) == 0 ||
            strcmp(c->services[k].env, c->services[i].env) == 0) {
          snprintf(why, sizeof(why), "services[%zu]: name or env used twice (one service per env)",
                   i);
          ok = false;
        }
      c->n_services = i + 1;
    }
  }
  json_decref(root);
  if (!ok) {
    snprintf(errstr, n, "config %s: %s", path, why);
    return TG_ERR_INVAL;
  }
  const char *e = getenv("TRIPGEN_REDIS_URL");
  if (e && *e)
    snprintf(c->redis_url, sizeof(c->redis_url), "%s", e);
  e = getenv("TRIPGEN_SCHEDULER_LISTEN");
  if (e && *e)
    snprintf(c->listen, sizeof(c->listen), "%s", e);
  struct tg_redis_url u;
  if (!tg_redis_url_parse(c->redis_url, &u, why, sizeof(why))) {
    snprintf(errstr, n, "redis.url: %s", why);
    return TG_ERR_INVAL;
  }
  return TG_OK;
}

void sch_conf_print(const struct sch_conf *c, FILE *f) {
  struct tg_redis_url u;
  char why[128], shown[400] = "(invalid)";
  if (tg_redis_url_parse(c->redis_url, &u, why, sizeof(why)))
    tg_redis_url_redact(&u, shown, sizeof(shown));
  json_t *svcs = json_array();
  for (size_t i = 0; i < c->n_services; i++) {
    const struct sch_service_conf *s = &c->services[i];
    json_array_append_new(
        svcs, json_pack("{s:s, s:s, s:s, s:b, s:I, s:i, s:i, s:I, s:I, s:I, s:I, s:i, s:I, "
                        "s:{s:I, s:I, s:I, s:I}}", "name", s->name,
                        "env", s->env, "token", "***", "strict_put", s->strict_put,
                        "idempotency_ttl_ms", (json_int_t)s->idempotency_ttl_ms, "max_watchers",
                        s->max_watchers, "max_long_polls", s->max_long_polls,
                        "visibility_timeout_ms",
                        (json_int_t)s->visibility_timeout_ms, "queue_cap",
                        (json_int_t)s->queue_cap, "sink_max_len", (json_int_t)s->sink_max_len,
                        "dlq_max_len", (json_int_t)s->dlq_max_len,
                        "max_deliveries", s->max_deliveries, "consumer_idle_ms",
                        (json_int_t)s->consumer_idle_ms, "autoscale",
                        "target_backlog_per_worker",
                        (json_int_t)s->autoscale.target_backlog_per_worker, "min_workers",
                        (json_int_t)s->autoscale.min_workers, "max_workers",
                        (json_int_t)s->autoscale.max_workers, "active_window_ms",
                        (json_int_t)s->autoscale.active_window_ms));
    if (s->on_kafka) /* literal secrets are refused at load: values name variables or files */
      json_object_set_new(json_array_get(svcs, i), "kafka",
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "brokers",
                                    s->kafka.brokers, "group", s->kafka_group, "topic_in",
                                    s->kafka.topic_in, "topic_retry", s->kafka.topic_retry,
                                    "topic_dlq", s->kafka.topic_dlq, "conf", s->kafka.props));
  }
  json_t *root = json_pack("{s:s, s:{s:s}, s:{s:s}, s:I, s:i, s:{s:b, s:I, s:I}, s:o}", "listen",
                           c->listen, "redis", "url", shown, "log", "level", c->log_level,
                           "long_poll_max_ms", (json_int_t)c->long_poll_max_ms, "threads",
                           c->threads, "control", "enabled", c->control.enabled, "interval_ms",
                           (json_int_t)c->control.interval_ms, "lease_ms",
                           (json_int_t)c->control.lease_ms, "services", svcs);
  char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fprintf(f, "%s\n", s ? s : "{}");
  free(s);
  json_decref(root);
}
