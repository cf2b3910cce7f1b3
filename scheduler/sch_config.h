/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sch_config.h - tripgen-scheduler's configuration: where to listen, the
 * Redis URL, and the EAS services it serves (one per env), each with its
 * token (from an environment variable or a file, never the config), its
 * put policy and limits. See docs/eas-api.md.
 */
#ifndef SCH_CONFIG_H
#define SCH_CONFIG_H

#include "tg_err.h"
#include "tg_limits.h"
#include "tg_transport.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SCH_MAX_SERVICES 16

/* How many workers a service's backlog needs (docs/autoscaling.md). */
struct sch_autoscale_conf {
  int64_t target_backlog_per_worker; /* waiting + pending one worker should hold */
  int64_t min_workers;
  int64_t max_workers;
  int64_t active_window_ms;          /* a worker heard from within this is active */
};

struct sch_service_conf {
  char name[65];                 /* [A-Za-z0-9._-]{1,64} */
  char env[TG_MAX_ENV_CHARS + 1];
  char token[256];               /* from token_env or token_file */
  char token_source[160];        /* "env NAME" or "file PATH", for messages */
  bool strict_put;
  int64_t idempotency_ttl_ms;
  int max_watchers;
  int max_long_polls;            /* gets waiting at once per queue; more: 429 */
  int64_t visibility_timeout_ms;
  int64_t queue_cap;
  int64_t sink_max_len;
  int64_t dlq_max_len;           /* dead letters kept by the control loops' burials */
  int max_deliveries;            /* deliveries before reclaim dead-letters a job */
  int64_t consumer_idle_ms;      /* idle consumers without entries are removed after this */
  struct sch_autoscale_conf autoscale;
  bool on_kafka;                 /* the env's queue is Kafka: depth (lag) only, no EAS API */
  char kafka_group[64];          /* the workers' queue.group */
  struct tg_kafka_conf kafka;    /* brokers, topics, properties */
};

/* The control loops (promote_due, reclaim, consumer hygiene) under a lease. */
struct sch_control_conf {
  bool enabled;                  /* false: only report depth, run no loop */
  int64_t interval_ms;           /* one round of every loop, and the lease renewal */
  int64_t lease_ms;              /* a dead leader's loops move on after this */
};

struct sch_conf {
  char listen[64];
  char redis_url[512];
  char log_level[16];
  int64_t long_poll_max_ms;
  int threads;                   /* HTTP threads (watchers hold one each) */
  struct sch_control_conf control;
  struct sch_service_conf services[SCH_MAX_SERVICES];
  size_t n_services;
};

/**
 * sch_conf_load() - read and validate the config
 * @c:      filled
 * @path:   JSON file
 * @errstr: names the key and what is wrong
 * @n:      its size
 *
 * TRIPGEN_REDIS_URL overrides redis.url; TRIPGEN_SCHEDULER_LISTEN overrides
 * listen. Tokens are read from each service's token_env or token_file.
 *
 * Return: TG_OK or TG_ERR_INVAL.
 */
tg_err_t sch_conf_load(struct sch_conf *c, const char *path, char *errstr, size_t n);

/**
 * sch_conf_print() - the effective config as JSON, tokens and passwords masked
 * @c: the config
 * @f: where to write
 */
void sch_conf_print(const struct sch_conf *c, FILE *f);

#endif
