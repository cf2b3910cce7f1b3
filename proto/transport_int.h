/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_int.h - what a queue backend implements: the const ops table
 * that transport.c drives. Backends see raw payloads; parsing, poison
 * detection and result serialisation happen once, in transport.c.
 */
#ifndef TG_TRANSPORT_INT_H
#define TG_TRANSPORT_INT_H

#include "tg_transport.h"

/* A result ready to publish. */
struct tg_publish {
  const char *request_id;
  int64_t generation;
  const char *result_json;
  int last_code;               /* EAS lastCode tag of the frame; 0 on success */
};

struct tg_transport_ops {
  const char *name;
  tg_err_t (*open)(tg_transport_t *t, char *errstr, size_t n);
  void (*close)(tg_transport_t *t);
  tg_err_t (*put)(tg_transport_t *t, const struct tg_put_req *req, uint64_t *index,
                  char *request_id, bool *repeated, char *errstr, size_t n);
  /* indexes[i] = 0 for a request not enqueued */
  tg_err_t (*put_many)(tg_transport_t *t, const struct tg_put_req *reqs, int count,
                       uint64_t *indexes, char *errstr, size_t n);
  /* fills index, priority, deliveries, entry_id, request_id, payload, enqueued_at_ms */
  tg_err_t (*take)(tg_transport_t *t, int max, int timeout_ms, tg_delivery_t **out, int *n_out,
                   char *errstr, size_t n);
  tg_err_t (*complete)(tg_transport_t *t, const tg_delivery_t *d, const struct tg_publish *p,
                       bool *published, char *errstr, size_t n);
  /* errs[i] and published[i] per result; returns the first error */
  tg_err_t (*complete_many)(tg_transport_t *t, const tg_delivery_t *const *ds,
                            const struct tg_publish *ps, int count, bool *published,
                            tg_err_t *errs, char *errstr, size_t n);
  /* done[i]: a final result of generation >= generations[i] is stored */
  tg_err_t (*done_many)(tg_transport_t *t, const char *const *request_ids,
                        const int64_t *generations, int count, bool *done, char *errstr,
                        size_t n);
  tg_err_t (*retry_later)(tg_transport_t *t, const tg_delivery_t *d, const char *request_id,
                          const char *job_json, bool priority, int64_t enqueued_at_ms,
                          int64_t due_ms, char *errstr, size_t n);
  tg_err_t (*dead_letter)(tg_transport_t *t, const tg_delivery_t *d, const struct tg_publish *p,
                          char *errstr, size_t n);
  tg_err_t (*extend_lease)(tg_transport_t *t, const tg_delivery_t *d, char *errstr, size_t n);
  tg_err_t (*ack_if_done)(tg_transport_t *t, const tg_delivery_t *d, int64_t generation,
                          bool *acked, char *errstr, size_t n);
  tg_err_t (*promote_due)(tg_transport_t *t, int64_t now_ms, int max, int *promoted,
                          char *errstr, size_t n);
  tg_err_t (*reclaim)(tg_transport_t *t, int max, const tg_delivery_t *held, int n_held,
                      tg_delivery_t **out, int *n_out, char *errstr, size_t n);
  /* dead: entries past max_deliveries, claimed with their fields for burying */
  tg_err_t (*park_stale)(tg_transport_t *t, int max, int *parked, tg_delivery_t **dead,
                         int *n_dead, char *errstr, size_t n);
  tg_err_t (*prune_consumers)(tg_transport_t *t, int64_t idle_ms, int *removed, char *errstr,
                              size_t n);
  tg_err_t (*heartbeat)(tg_transport_t *t, int64_t now_ms, char *errstr, size_t n);
  /* take or renew (release: give up) the lease of a name */
  tg_err_t (*lease)(tg_transport_t *t, const char *name, const char *holder, int64_t lease_ms,
                    bool release, bool *held, char *errstr, size_t n);
  tg_err_t (*dlq_list)(tg_transport_t *t, uint64_t from, int max, struct tg_dlq_entry **out,
                       int *n_out, char *errstr, size_t n);
  /* move a dead letter back to the input with the given (rewritten) job */
  tg_err_t (*dlq_requeue)(tg_transport_t *t, uint64_t dlq_index, const char *request_id,
                          const char *job_json, bool priority, int64_t enqueued_at_ms,
                          uint64_t *index, char *errstr, size_t n);
  tg_err_t (*dlq_purge)(tg_transport_t *t, uint64_t dlq_index, int64_t *purged, char *errstr,
                        size_t n);
  bool (*history_done)(const tg_transport_t *t);
  tg_err_t (*depth)(tg_transport_t *t, struct tg_depth *out, char *errstr, size_t n);
  tg_err_t (*remove)(tg_transport_t *t, uint64_t index, bool *removed, char *errstr, size_t n);
  tg_err_t (*get_result)(tg_transport_t *t, const char *request_id, char **json_out,
                         char *errstr, size_t n);
  tg_err_t (*read_sink)(tg_transport_t *t, uint64_t from_index, int max, int timeout_ms,
                        struct tg_sink_frame **out, int *n_out, char *errstr, size_t n);
  /* optional: the worker gave up finishing a delivery (NULL: it stays pending) */
  void (*abandon)(tg_transport_t *t, const tg_delivery_t *d, const char *why);
  /* optional: true when the handle can never work again (NULL: never) */
  bool (*broken)(tg_transport_t *t, char *why, size_t n);
  /* optional: the consumer's holdings (NULL: none to report) */
  bool (*stats)(tg_transport_t *t, struct tg_transport_stats *out);
};

struct tg_transport_s {
  const struct tg_transport_ops *ops;
  struct tg_transport_conf conf;
  void *backend;               /* the backend's own state */
};

extern const struct tg_transport_ops tg_transport_redis;
extern const struct tg_transport_ops tg_transport_kafka;

#endif
