/* SPDX-License-Identifier: Apache-2.0 */
/*
 * autoscale.h - the numbers autoscalers read (docs/autoscaling.md):
 * backlog_per_worker and desired_workers from a service's depth, and the
 * two ways they are served: GET /v1/autoscale[/<service>] (JSON) and
 * GET /metrics (Prometheus text).
 */
#ifndef SCH_AUTOSCALE_H
#define SCH_AUTOSCALE_H

#include "control.h"
#include "sch_config.h"
#include "tg_transport.h"

#include <stdint.h>

struct sch_autoscale_numbers {
  double backlog_per_worker;     /* (waiting + pending) / max(active workers, 1) */
  int64_t desired_workers;       /* clamp(ceil((waiting + pending) / target), min, max),
                                    at least 1 while anything waits */
};

/**
 * sch_autoscale_compute() - the numbers for one depth reading
 * @d:   the depth
 * @a:   the service's autoscale settings
 * @out: filled
 */
void sch_autoscale_compute(const struct tg_depth *d, const struct sch_autoscale_conf *a,
                           struct sch_autoscale_numbers *out);

/**
 * sch_autoscale_json() - one service's status as the /v1/autoscale object
 * @sc: the service
 * @st: its status
 *
 * Return: malloc()ed JSON text, or NULL when out of memory.
 */
char *sch_autoscale_json(const struct sch_service_conf *sc, const struct sch_service_status *st);

/**
 * sch_metrics_text() - every service's numbers in Prometheus text format
 * @conf: the config (its services)
 * @ctl:  the control loops (their statuses)
 *
 * Return: malloc()ed text, or NULL when out of memory.
 */
char *sch_metrics_text(const struct sch_conf *conf, sch_control_t *ctl);

#endif
