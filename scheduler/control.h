/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.h - the scheduler's control loops: per service (one env each),
 * promote due retries, park entries of dead or stalled workers for the next
 * take (dead-lettering those delivered max_deliveries times), and remove idle
 * consumers without entries — only on the replica holding the env's control
 * lease in Redis (SET NX PX, renewed every round). Every step is idempotent,
 * so a stale leader does no harm. Every replica also reads each service's
 * depth once a round, for /metrics and /v1/autoscale.
 */
#ifndef SCH_CONTROL_H
#define SCH_CONTROL_H

#include "sch_config.h"
#include "tg_transport.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sch_control_s sch_control_t;

/* What the control loops know about one service. */
struct sch_service_status {
  bool depth_ok;                 /* the last depth reading succeeded */
  char depth_error[512];         /* why not (no secrets) */
  int64_t depth_at_ms;           /* wall time of the last good reading; 0: none yet */
  struct tg_depth depth;
  bool leader;                   /* this replica holds the env's control lease */
  int64_t promoted_total;        /* retries moved back to the input */
  int64_t reclaimed_total;       /* entries parked from dead or stalled workers */
  int64_t dead_lettered_total;   /* entries past max_deliveries */
  int64_t consumers_removed_total;
};

/**
 * sch_control_start() - start the control thread
 * @conf:   the validated config (copied)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Redis may be down at start: the loops keep trying and report it.
 *
 * Return: the handle, or NULL.
 */
sch_control_t *sch_control_start(const struct sch_conf *conf, char *errstr, size_t n);

/**
 * sch_control_stop() - stop the loops and give up held leases at once, so
 * another replica takes over now; statuses stay readable (NULL-safe)
 * @c: the handle
 */
void sch_control_stop(sch_control_t *c);

/**
 * sch_control_destroy() - stop if still running, then free (NULL-safe)
 * @c: the handle
 */
void sch_control_destroy(sch_control_t *c);

/**
 * sch_control_status() - a copy of one service's status
 * @c:       the handle
 * @service: index into conf.services
 * @out:     filled
 */
void sch_control_status(sch_control_t *c, size_t service, struct sch_service_status *out);

/**
 * sch_control_holder() - this replica's name in the leases
 * @c: the handle
 *
 * Return: the name.
 */
const char *sch_control_holder(const sch_control_t *c);

#endif
