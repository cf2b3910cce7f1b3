/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_transport.h - the queue transport: how jobs reach workers and results
 * reach consumers, with at-least-once delivery and idempotent effects.
 *
 * A transport serves one environment. Its operations are DESIGN.md's:
 * put, take, complete (publish + result record + ack, atomically),
 * retry_later (ack + delay, atomically), dead_letter, extend_lease,
 * promote_due, reclaim and depth, plus the reads the CLI needs. The backend
 * (Redis Streams today) sits behind a const ops table.
 *
 * A handle is not thread-safe: give each thread its own. Handles of one
 * process may share a consumer name; only one of them may read the
 * consumer's old pending entries (the others set skip_own_pending), and
 * only after it has read them all may the others take().
 */
#ifndef TG_TRANSPORT_H
#define TG_TRANSPORT_H

#include "tg_err.h"
#include "tg_job.h"
#include "tg_result.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct tg_transport_s tg_transport_t;

/* Settings of a transport; tg_transport_conf_init() fills the defaults. */
struct tg_transport_conf {
  char backend[16];             /* "redis" or "kafka" */
  char redis_url[512];          /* redis://[[user]:pass@]host[:port][/db] or unix:///path */
  char env[TG_MAX_ENV_CHARS + 1];
  char group[64];               /* consumer group of the workers */
  char consumer[128];           /* stable consumer name; "" = host-pid */
  bool skip_own_pending;        /* take() does not read this consumer's old pending
                                   entries (another handle of the process does) */
  int64_t visibility_timeout_ms; /* idle time after which reclaim() takes an entry */
  int max_deliveries;           /* deliveries before an entry is dead-lettered */
  int64_t queue_cap;            /* put() beyond this many input entries: queue full */
  int64_t sink_max_len;         /* approximate length the output stream is trimmed to */
  int64_t dlq_max_len;          /* approximate number of dead letters kept (oldest go) */
  int64_t result_ttl_ms;        /* lifetime of result records */
  int64_t worker_window_ms;     /* a worker seen (heartbeat) within this is active */
  int64_t connect_timeout_ms;
  int64_t command_timeout_ms;
  int64_t reconnect_max_ms;     /* how long one operation keeps reconnecting */
  struct tg_kafka_conf {        /* backend "kafka" (proto/transport_kafka.c) */
    char brokers[512];          /* bootstrap.servers */
    char topic_in[128];         /* input topic; "{env}" is replaced by the env */
    char topic_out[128];        /* results, keyed by request_id */
    char topic_dlq[128];        /* dead letters */
    char topic_retry[128];      /* where retries go; "" = the input topic */
    bool exactly_once;          /* transactions: results and offsets committed together */
    int max_in_flight;          /* jobs held (buffered + running) before partitions pause */
    char instance_id[128];      /* group.instance.id (static membership); "" = dynamic */
    int64_t session_timeout_ms;
    int64_t max_poll_interval_ms;
    char props[4096];           /* more librdkafka properties, "name=value" lines; a value
                                   "env:NAME" or "file:PATH" is read from there at open */
  } kafka;
};

/* An enqueue with more than a job: what the EAS API's put needs. */
struct tg_put_req {
  const char *request_id;       /* tripgen-assigned */
  const char *payload;          /* the job JSON; or the raw body of a put that is not a
                                   valid trip (the worker answers it with invalid_input) */
  size_t payload_len;
  bool priority;
  int64_t enqueued_at_ms;
  const char *tags_json;        /* NULL, or a JSON object of the client's string tags */
  const char *data;             /* NULL, or the client's bytes as sent */
  size_t data_len;
  const char *idempotency_key;  /* NULL, or: a repeat within idempotency_ttl_ms returns
                                   the first put's index and request_id */
  int64_t idempotency_ttl_ms;
  const char *invalid_reason;   /* NULL, or why the payload is not a valid trip: delivered
                                   as the delivery's parse_error */
};

/* A job handed to a consumer. */
typedef struct tg_delivery {
  uint64_t index;               /* EAS index (the n of stream id 0-n) */
  bool priority;                /* read from the priority stream */
  int64_t deliveries;           /* times delivered, this one included */
  char entry_id[48];            /* stream entry id */
  char request_id[TG_MAX_REQUEST_ID_CHARS + 1];
  char *payload;                /* the job JSON as stored */
  size_t payload_len;
  int64_t enqueued_at_ms;
  tg_job_t *job;                /* parsed job, NULL when the payload is invalid */
  char parse_error[256];        /* why job is NULL */
} tg_delivery_t;

/* Queue depth, the same words everywhere (DESIGN.md, "Depth"). */
struct tg_depth {
  int64_t waiting;              /* in the input streams, not yet delivered */
  int64_t waiting_priority;     /* the part of waiting in the priority stream */
  int64_t pending;              /* delivered, not acked */
  int64_t delayed;              /* waiting for a retry's due time */
  int64_t dead;                 /* in the dead-letter stream */
  int64_t oldest_waiting_age_ms; /* age of the oldest waiting job (0: none waits) */
  int64_t active_workers;       /* workers whose heartbeat is within worker_window_ms */
};

/* What a Kafka handle's consumer holds now (for the worker's /metrics). */
struct tg_transport_stats {
  int held;                     /* records received and not finished (buffered + running) */
  int partitions;               /* partitions assigned to this consumer */
  int paused;                   /* of them, paused at the in-flight cap */
};

/* The consumer that the scheduler parks reclaimed entries under until a
 * worker's take() claims them (never a worker's own name). */
#define TG_TRANSPORT_PARKED_CONSUMER "tripgen-reclaimed"

/* One dead letter (tripgen dlq). */
struct tg_dlq_entry {
  uint64_t dlq_index;           /* its index in the dead-letter stream */
  uint64_t index;               /* the input index it had */
  char request_id[TG_MAX_REQUEST_ID_CHARS + 1];
  int64_t generation;
  int64_t dead_at_ms;
  int64_t deliveries;
  char *job;                    /* the job JSON as it was queued */
  char *result;                 /* the failed result JSON published for it */
};

/* One frame of the output (sink) stream. */
struct tg_sink_frame {
  uint64_t index;
  char request_id[TG_MAX_REQUEST_ID_CHARS + 1];
  char *result;                 /* the result JSON */
};

/**
 * tg_transport_conf_init() - fill a conf with the defaults
 * @conf: the conf
 * @env:  environment name (NULL: "dev")
 */
void tg_transport_conf_init(struct tg_transport_conf *conf, const char *env);

/**
 * tg_transport_new() - connect to the queue backend of one environment
 * @conf:   settings (copied)
 * @errstr: reason on failure (never holds a password)
 * @n:      its size
 *
 * Creates the consumer group when missing.
 *
 * Return: the handle, or NULL.
 */
tg_transport_t *tg_transport_new(const struct tg_transport_conf *conf, char *errstr, size_t n);

/**
 * tg_transport_destroy() - disconnect and free (NULL-safe)
 * @t: the handle
 */
void tg_transport_destroy(tg_transport_t *t);

/**
 * tg_transport_consumer() - the consumer name this handle uses
 * @t: the handle
 *
 * Return: the name.
 */
const char *tg_transport_consumer(const tg_transport_t *t);

/**
 * tg_transport_history_done() - whether take() has read all of this
 * consumer's old pending entries (always true with skip_own_pending)
 * @t: the handle
 *
 * Return: true once they are read.
 */
bool tg_transport_history_done(const tg_transport_t *t);

/**
 * tg_transport_put() - enqueue a job
 * @t:      the handle
 * @job:    the job; its env must be the transport's
 * @index:  set to the new EAS index
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK, TG_ERR_QUEUE_FULL at the cap, TG_ERR_INVAL for another env,
 * TG_ERR_TRANSPORT when the backend is unreachable.
 */
tg_err_t tg_transport_put(tg_transport_t *t, const tg_job_t *job, uint64_t *index, char *errstr,
                          size_t n);

#define TG_TRANSPORT_PUT_MANY_MAX 10000

/**
 * tg_transport_put_many() - enqueue jobs in one pipelined round trip
 * @t:       the handle
 * @jobs:    the jobs; each one's env must be the transport's
 * @count:   their number, 1 to TG_TRANSPORT_PUT_MANY_MAX
 * @indexes: set to each job's EAS index; 0 for a job not known to be enqueued
 * @errstr:  reason on failure (the first one)
 * @n:       its size
 *
 * Each job is enqueued atomically and on its own (a job past the cap is
 * refused, the others go). After a connection loss midway, the jobs
 * without an index may or may not be in the queue: a repeat puts those
 * that are again, under the same request_id, and the worker publishes one
 * final result per request.
 *
 * Return: TG_OK when every job was enqueued, else the first error.
 */
tg_err_t tg_transport_put_many(tg_transport_t *t, const tg_job_t *const *jobs, int count,
                               uint64_t *indexes, char *errstr, size_t n);

/**
 * tg_transport_put_req() - enqueue with tags, original bytes and idempotency
 * @t:          the handle
 * @req:        the request
 * @index:      set to the EAS index (the first put's, for a repeat)
 * @request_id: set to the request id (the first put's, for a repeat);
 *              TG_MAX_REQUEST_ID_CHARS + 1 bytes
 * @repeated:   set to true when an earlier put with the same key answered
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: as tg_transport_put().
 */
tg_err_t tg_transport_put_req(tg_transport_t *t, const struct tg_put_req *req, uint64_t *index,
                              char *request_id, bool *repeated, char *errstr, size_t n);

/**
 * tg_transport_take() - receive up to @max jobs, priority ones first
 * @t:          the handle
 * @max:        most deliveries to return (>= 1)
 * @timeout_ms: how long to block when nothing is waiting (0: don't block)
 * @out:        set to a malloc()ed array of deliveries (free with
 *              tg_deliveries_free())
 * @n_out:      set to its length
 * @errstr:     reason on failure
 * @n:          its size
 *
 * The first calls of a handle return the consumer's own pending entries
 * (left by a previous run under the same name); then come entries the
 * scheduler parked (reclaimed from dead or stalled workers, claimed
 * atomically: each goes to one taker), then new ones. A blocking read that both
 * streams answer at once may return up to 2 × max deliveries: every one
 * returned is the caller's. Entries delivered more than
 * max_deliveries times are dead-lettered here with a failed result and not
 * returned. A delivery whose payload is not a valid job has job == NULL and
 * the reason in parse_error; the caller answers it with a failed result.
 *
 * Return: TG_OK (possibly with *n_out == 0), or an error.
 */
tg_err_t tg_transport_take(tg_transport_t *t, int max, int timeout_ms, tg_delivery_t **out,
                           int *n_out, char *errstr, size_t n);

/**
 * tg_transport_complete() - publish the final result and ack, atomically
 * @t:         the handle
 * @d:         the delivery it answers
 * @r:         the result
 * @published: set to false when a result for (request_id, generation) was
 *             already stored, so nothing new became visible
 * @errstr:    reason on failure
 * @n:         its size
 *
 * Return: TG_OK or an error; safe to repeat.
 */
tg_err_t tg_transport_complete(tg_transport_t *t, const tg_delivery_t *d, const tg_result_t *r,
                               bool *published, char *errstr, size_t n);

/**
 * tg_transport_complete_many() - tg_transport_complete() for several
 * deliveries in one pipelined round trip
 * @t:         the handle
 * @ds:        the deliveries
 * @rs:        their results
 * @count:     their number, 1 to TG_TRANSPORT_PUT_MANY_MAX
 * @published: set per result as tg_transport_complete()'s
 * @errs:      set per result: TG_OK, or why it was not completed (repeat those)
 * @errstr:    the first failure's reason
 * @n:         its size
 *
 * Each result is published and acked atomically, on its own.
 *
 * Return: TG_OK when all were, else the first error.
 */
tg_err_t tg_transport_complete_many(tg_transport_t *t, const tg_delivery_t *const *ds,
                                    const tg_result_t *const *rs, int count, bool *published,
                                    tg_err_t *errs, char *errstr, size_t n);

/**
 * tg_transport_done_many() - which jobs already have a final result
 * @t:      the handle
 * @jobs:   the jobs
 * @count:  their number, 1 to TG_TRANSPORT_PUT_MANY_MAX
 * @done:   set per job: a result of its generation (or a newer one) is stored
 * @errstr: reason on failure
 * @n:      its size
 *
 * One pipelined round trip: a worker asks once per batch it takes.
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_done_many(tg_transport_t *t, const tg_job_t *const *jobs, int count,
                                bool *done, char *errstr, size_t n);

/**
 * tg_transport_retry_later() - ack a delivery and schedule its next attempt
 * @t:      the handle
 * @d:      the delivery
 * @next:   the job to run again (attempt already incremented)
 * @due_ms: wall-clock time before which it is not taken again
 * @errstr: reason on failure
 * @n:      its size
 *
 * Only the consumer holding the delivery schedules it: one whose lease went
 * to another consumer (which runs the job now) changes nothing.
 *
 * Return: TG_OK (also for a repeat after the entry was acked),
 * TG_ERR_NOT_FOUND when another consumer holds the entry now, or an error.
 */
tg_err_t tg_transport_retry_later(tg_transport_t *t, const tg_delivery_t *d,
                                  const tg_job_t *next, int64_t due_ms, char *errstr, size_t n);

/**
 * tg_transport_dead_letter() - publish a failed result, keep the job in the
 * dead-letter stream and ack it, atomically
 * @t:      the handle
 * @d:      the delivery
 * @r:      the failed result carrying the last error
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK (a repeat for an entry already acked does nothing),
 * TG_ERR_NOT_FOUND when another consumer holds the entry now (Redis; nothing
 * is done), or an error.
 */
tg_err_t tg_transport_dead_letter(tg_transport_t *t, const tg_delivery_t *d,
                                  const tg_result_t *r, char *errstr, size_t n);

/**
 * tg_transport_ack_if_done() - ack a delivery whose final result is stored
 * @t:          the handle
 * @d:          the delivery
 * @generation: its job's generation (a stored newer generation counts too)
 * @acked:      set to true when the result existed and the entry was acked
 * @errstr:     reason on failure
 * @n:          its size
 *
 * For a redelivered job: nothing is published. When no result is stored
 * (it expired, say), nothing happens and the job must run.
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_ack_if_done(tg_transport_t *t, const tg_delivery_t *d, int64_t generation,
                                  bool *acked, char *errstr, size_t n);

/**
 * tg_transport_abandon() - the worker gave up finishing a delivery (its
 * queue operations kept failing)
 * @t:   the handle
 * @d:   the delivery
 * @why: the last error
 *
 * Redis: nothing; the entry stays pending and is reclaimed after the
 * visibility timeout. Kafka: an offset that stays open would hold its
 * partition's commit and in-flight count for ever, so the client stops
 * (take fails, the worker reports not ready) and a restart reads again
 * from the last commit.
 */
void tg_transport_abandon(tg_transport_t *t, const tg_delivery_t *d, const char *why);

/**
 * tg_transport_broken() - whether the handle failed for good (a fenced
 * Kafka producer, a fatal client error, a job it had to abandon): only a
 * restart helps. Redis handles never are: their errors pass.
 * @t:   the handle
 * @why: set to the reason when broken
 * @n:   its size
 *
 * Return: true when broken.
 */
bool tg_transport_broken(tg_transport_t *t, char *why, size_t n);

/**
 * tg_transport_stats() - the consumer's holdings, where the backend has them
 * @t:   the handle
 * @out: filled
 *
 * Return: true on Kafka (once its consumer runs), false on Redis.
 */
bool tg_transport_stats(tg_transport_t *t, struct tg_transport_stats *out);

/**
 * tg_transport_extend_lease() - reset the idle time of a delivery being worked on
 * @t:      the handle
 * @d:      the delivery
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK, or TG_ERR_NOT_FOUND when the entry is no longer pending
 * (acked, or reclaimed by another consumer after the visibility timeout).
 */
tg_err_t tg_transport_extend_lease(tg_transport_t *t, const tg_delivery_t *d, char *errstr,
                                   size_t n);

/**
 * tg_transport_promote_due() - move retries whose due time has come back
 * to the input streams
 * @t:        the handle
 * @now_ms:   the current wall-clock time
 * @max:      most jobs to move in one call
 * @promoted: set to the number moved
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: TG_OK or an error; safe to run from several processes.
 */
tg_err_t tg_transport_promote_due(tg_transport_t *t, int64_t now_ms, int max, int *promoted,
                                  char *errstr, size_t n);

/**
 * tg_transport_reclaim() - take over entries idle longer than the
 * visibility timeout (their consumer died or stalled)
 * @t:      the handle; the entries move to its consumer
 * @max:    most entries to claim
 * @held:   deliveries this consumer is running (entry_id and priority are
 *          read): their leases are renewed in the same atomic step, so that
 *          after a stall of Redis they are not reclaimed (and, past
 *          max_deliveries, buried) from under their own jobs
 * @n_held: their number
 * @out:    set to the claimed deliveries (tg_deliveries_free())
 * @n_out:  set to their number
 * @errstr: reason on failure
 * @n:      its size
 *
 * Entries past max_deliveries are dead-lettered instead of returned.
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_reclaim(tg_transport_t *t, int max, const tg_delivery_t *held, int n_held,
                              tg_delivery_t **out, int *n_out, char *errstr, size_t n);

/**
 * tg_transport_park_stale() - the scheduler's reclaim: move entries idle
 * longer than the visibility timeout from their (dead or stalled) consumer
 * to TG_TRANSPORT_PARKED_CONSUMER, where the next take() of any worker
 * claims them; dead-letter, with a failed result, those already delivered
 * max_deliveries times
 * @t:             the handle
 * @max:           most entries to move in one call
 * @parked:        set to the number parked
 * @dead_lettered: set to the number dead-lettered
 * @errstr:        reason on failure
 * @n:             its size
 *
 * Entries already parked are left alone (their delivery count does not
 * grow while no worker runs). Scans a bounded slice of the pending list per
 * call and continues from there on the next. Safe to run from several
 * processes at once.
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_park_stale(tg_transport_t *t, int max, int *parked, int *dead_lettered,
                                 char *errstr, size_t n);

/**
 * tg_transport_prune_consumers() - remove the workers' consumers that are
 * idle longer than @idle_ms and own no pending entry (XGROUP DELCONSUMER),
 * and forget heartbeats older than @idle_ms
 * @t:       the handle
 * @idle_ms: idle time before a consumer goes
 * @removed: set to the number of consumers removed
 * @errstr:  reason on failure
 * @n:       its size
 *
 * A consumer that still owns entries stays: its entries are reclaimed by
 * tg_transport_park_stale() first.
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_prune_consumers(tg_transport_t *t, int64_t idle_ms, int *removed,
                                      char *errstr, size_t n);

/**
 * tg_transport_heartbeat() - record that this handle's worker is alive
 * @t:      the handle
 * @now_ms: the current wall-clock time
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_heartbeat(tg_transport_t *t, int64_t now_ms, char *errstr, size_t n);

/**
 * tg_transport_lease() - take or renew a named lease (SET NX PX, renewed
 * only by its holder)
 * @t:        the handle
 * @name:     what the lease is for, e.g. "control"
 * @holder:   who asks (unique per process)
 * @lease_ms: how long it lasts without renewal
 * @held:     set to true when @holder holds it now
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_lease(tg_transport_t *t, const char *name, const char *holder,
                            int64_t lease_ms, bool *held, char *errstr, size_t n);

/**
 * tg_transport_lease_release() - give a lease up if @holder holds it
 * @t:      the handle
 * @name:   as for tg_transport_lease()
 * @holder: as for tg_transport_lease()
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_lease_release(tg_transport_t *t, const char *name, const char *holder,
                                    char *errstr, size_t n);

/**
 * tg_transport_dlq_list() - read dead letters from an index on
 * @t:      the handle
 * @from:   first dead-letter index wanted (0: the oldest)
 * @max:    most entries
 * @out:    set to the entries (tg_dlq_entries_free())
 * @n_out:  set to their number
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_dlq_list(tg_transport_t *t, uint64_t from, int max,
                               struct tg_dlq_entry **out, int *n_out, char *errstr, size_t n);

/**
 * tg_transport_dlq_replay() - re-queue a dead letter as a new generation
 * @t:              the handle
 * @dlq_index:      the dead letter
 * @index:          set to the new input index
 * @generation:     set to the new generation
 * @request_id:     set to its request id; TG_MAX_REQUEST_ID_CHARS + 1 bytes
 * @errstr:         reason on failure
 * @n:              its size
 *
 * The job keeps its request_id, priority and enqueued_at (so its object
 * keys), starts again at attempt 1 with generation + 1, and loses a
 * deadline that has already passed. It moves atomically: it is in the
 * input queue or in the dead letters, never both or neither.
 *
 * Return: TG_OK, TG_ERR_NOT_FOUND when there is no such dead letter,
 * TG_ERR_BAD_MSG when its job cannot be parsed, TG_ERR_QUEUE_FULL, or a
 * transport error.
 */
tg_err_t tg_transport_dlq_replay(tg_transport_t *t, uint64_t dlq_index, uint64_t *index,
                                 int64_t *generation, char *request_id, char *errstr, size_t n);

/**
 * tg_transport_dlq_purge() - delete dead letters
 * @t:         the handle
 * @dlq_index: the one to delete, or 0 for all
 * @purged:    set to the number deleted
 * @errstr:    reason on failure
 * @n:         its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_dlq_purge(tg_transport_t *t, uint64_t dlq_index, int64_t *purged,
                                char *errstr, size_t n);

/**
 * tg_dlq_entries_free() - free entries from tg_transport_dlq_list() (NULL-safe)
 * @e: the array
 * @n: its length
 */
void tg_dlq_entries_free(struct tg_dlq_entry *e, int n);

/**
 * tg_transport_depth() - waiting, pending, delayed and dead counts, the
 * oldest waiting job's age and the active workers
 * @t:      the handle
 * @out:    the numbers
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_depth(tg_transport_t *t, struct tg_depth *out, char *errstr, size_t n);

/**
 * tg_transport_remove() - delete an input entry by index (EAS delete)
 * @t:       the handle
 * @index:   the EAS index
 * @removed: set to true when an entry was deleted
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_remove(tg_transport_t *t, uint64_t index, bool *removed, char *errstr,
                             size_t n);

/**
 * tg_transport_get_result() - the stored result of the latest generation
 * @t:          the handle
 * @request_id: the request
 * @json_out:   set to a malloc()ed result JSON
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: TG_OK, TG_ERR_NOT_FOUND when there is none yet, or an error.
 */
tg_err_t tg_transport_get_result(tg_transport_t *t, const char *request_id, char **json_out,
                                 char *errstr, size_t n);

/**
 * tg_transport_read_sink() - read output frames from an index on
 * @t:          the handle
 * @from_index: first index wanted (0: from the oldest kept)
 * @max:        most frames
 * @timeout_ms: how long to block when there is none (0: don't block)
 * @out:        set to the frames (tg_sink_frames_free())
 * @n_out:      set to their number
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t tg_transport_read_sink(tg_transport_t *t, uint64_t from_index, int max, int timeout_ms,
                                struct tg_sink_frame **out, int *n_out, char *errstr, size_t n);

/**
 * tg_deliveries_free() - free deliveries from take() or reclaim() (NULL-safe)
 * @d: the array
 * @n: its length
 */
void tg_deliveries_free(tg_delivery_t *d, int n);

/**
 * tg_sink_frames_free() - free frames from read_sink() (NULL-safe)
 * @f: the array
 * @n: its length
 */
void tg_sink_frames_free(struct tg_sink_frame *f, int n);

#endif
