/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store.h - the EAS queue operations of one service, on the Redis Streams
 * layout of proto/ (README, "Queue semantics"): the input queue is the
 * env's :in and :in:prio streams (the workers' queue), the sink is :out.
 * Frames are addressed by EAS index (stream id 0-<index>). EAS consumer
 * groups (the gid header) are Redis consumer groups named "eas:<gid>" on
 * the same streams; the workers' own group is never touched by them, except
 * that removing an input entry (commit, delete, truncate, auto-delete) also
 * acks it for the workers, so depth stays right.
 *
 * A store holds one Redis connection and is not thread-safe: one per thread.
 */
#ifndef SCH_STORE_H
#define SCH_STORE_H

#include "tg_err.h"
#include "tg_transport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sch_queue { SCH_QUEUE_INPUT = 0, SCH_QUEUE_SINK = 1 };

/* One EAS frame. */
struct sch_frame {
  uint64_t index;
  json_t *tags;         /* object of strings; always "requestId"; "lastCode" on failed results */
  unsigned char *data;  /* the bytes: the client's put body, or a worker's result JSON */
  size_t len;
};

/* Which frames an operation looks at. */
struct sch_filter {
  const char *request_id; /* NULL: any */
  json_t *tags;           /* NULL, or an object whose every key/value must match */
  int priority;           /* -1 any; input only: 0 normal stream only, 1 priority only */
};

/* Where one watcher is in its own pending entries (history) after a reconnect. */
struct sch_cursor {
  bool own_done;
  char own[2][48];        /* stream ids read so far: [0] priority/sink, [1] normal */
};

/* Queue attributes (EAS-QUEUE-API.md, "Attribute keys clients read"). */
struct sch_attrs {
  int64_t length;         /* frames in the queue */
  uint64_t first_index;   /* 0 when empty */
  uint64_t last_index;    /* 0 when empty */
  int64_t max_length;     /* the cap reported as stream.approxMaxLength */
  bool eos;               /* end of stream was put */
  char **groups;          /* EAS group names (without the "eas:" prefix) */
  size_t n_groups;
  char **consumers;       /* "gid/uid" of every consumer of every EAS group */
  size_t n_consumers;
};

typedef struct sch_store_s sch_store_t;

/**
 * sch_store_new() - connect for one env
 * @conf:   Redis URL, env, workers' group, caps, timeouts (copied)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: the store, or NULL.
 */
sch_store_t *sch_store_new(const struct tg_transport_conf *conf, char *errstr, size_t n);

/**
 * sch_store_destroy() - disconnect and free (NULL-safe)
 * @s: the store
 */
void sch_store_destroy(sch_store_t *s);

/**
 * sch_store_put_input() - an EAS put on the input queue
 * @s:          the store
 * @body:       the client's bytes
 * @len:        their length (<= TG_MAX_PAYLOAD_BYTES)
 * @tags:       the client's tags (object of strings, may be NULL); kept with the frame
 * @priority:   enqueue on the priority stream
 * @strict:     refuse a body that is not a valid trip
 * @idem_ttl_ms: a put of the same trip_id within this time returns the first put (0: off)
 * @index:      set to the EAS index
 * @request_id: set to the tripgen-assigned request id (TG_MAX_REQUEST_ID_CHARS + 1 bytes)
 * @errstr:     reason on failure
 * @n:          its size
 *
 * A valid trip becomes a job (request_id assigned here, never the client's).
 * An invalid body is still enqueued, as EAS accepts any bytes, and the worker
 * answers it with a failed invalid_input result in the sink; with @strict it
 * is refused with TG_ERR_BAD_MSG and the validation message in @errstr.
 *
 * Return: TG_OK, TG_ERR_BAD_MSG, TG_ERR_QUEUE_FULL, TG_ERR_TOO_LARGE or
 * TG_ERR_TRANSPORT.
 */
tg_err_t sch_store_put_input(sch_store_t *s, const char *body, size_t len, json_t *tags,
                             bool priority, bool strict, int64_t idem_ttl_ms, uint64_t *index,
                             char *request_id, char *errstr, size_t n);

/**
 * sch_store_put_sink() - an EAS put on the sink queue (any bytes)
 * @s:          the store
 * @body:       the bytes
 * @len:        their length
 * @tags:       tags (may be NULL); a "requestId" tag names the request, else one is made
 * @index:      set to the EAS index
 * @request_id: set to the frame's request id
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_put_sink(sch_store_t *s, const char *body, size_t len, json_t *tags,
                            uint64_t *index, char *request_id, char *errstr, size_t n);

/**
 * sch_store_get() - frames from an index on, without consuming them
 * @s:           the store
 * @q:           which queue
 * @from_index:  first index (0: from the head)
 * @length:      most frames
 * @f:           filter (may be NULL)
 * @auto_delete: delete the returned frames
 * @out:         the frames (sch_frames_free())
 * @n_out:       their number (0: none matched now; the caller long-polls)
 * @errstr:      reason on failure
 * @n:           its size
 *
 * Input frames come in index order across both streams.
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_get(sch_store_t *s, enum sch_queue q, uint64_t from_index, int length,
                       const struct sch_filter *f, bool auto_delete, struct sch_frame **out,
                       int *n_out, char *errstr, size_t n);

/**
 * sch_store_delete() - delete frames by index (EAS DELETE ?_indexes_=)
 * @s:       the store
 * @q:       which queue
 * @idx:     indexes
 * @count:   their number
 * @deleted: set to how many existed
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_delete(sch_store_t *s, enum sch_queue q, const uint64_t *idx, int count,
                          int64_t *deleted, char *errstr, size_t n);

/**
 * sch_store_truncate() - delete every frame with an index below @below
 * @s:       the store
 * @q:       which queue
 * @below:   first index kept
 * @deleted: set to how many were deleted
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_truncate(sch_store_t *s, enum sch_queue q, uint64_t below, int64_t *deleted,
                            char *errstr, size_t n);

/**
 * sch_store_commit() - a consumer is done with frames: ack in its group, delete
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @idx:    indexes
 * @count:  their number
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_commit(sch_store_t *s, enum sch_queue q, const char *gid, const uint64_t *idx,
                          int count, char *errstr, size_t n);

/**
 * sch_store_negative_commit() - a consumer refuses frames: deliver them again
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @uid:    the refusing consumer: for a while (the visibility timeout, at most
 *          30 s) the frames go to the group's other consumers, not back to it
 * @idx:    indexes
 * @count:  their number
 * @errstr: reason on failure
 * @n:      its size
 *
 * The frames become claimable by any consumer of the group at once.
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_negative_commit(sch_store_t *s, enum sch_queue q, const char *gid,
                                   const char *uid, const uint64_t *idx, int count,
                                   char *errstr, size_t n);

/**
 * sch_store_search() - where a frame stands (EAS ?_search_=true)
 * @s:          the store
 * @q:          which queue
 * @index:      the frame
 * @pending:    set to true when it is delivered and not yet acked (workers'
 *              group for the input queue; any EAS group for the sink)
 * @wait_count: set to how many undelivered frames are ahead of it (0 when
 *              pending; -1 when there is no such frame)
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_search(sch_store_t *s, enum sch_queue q, uint64_t index, bool *pending,
                          int64_t *wait_count, char *errstr, size_t n);

/**
 * sch_store_count() - frames matching a filter (EAS ?_count_=true)
 * @s:      the store
 * @q:      which queue
 * @f:      filter (may be NULL)
 * @count:  the number
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_count(sch_store_t *s, enum sch_queue q, const struct sch_filter *f,
                         int64_t *count, char *errstr, size_t n);

/**
 * sch_store_attributes() - what EAS attributes report
 * @s:      the store
 * @q:      which queue
 * @a:      filled (sch_attrs_free())
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_attributes(sch_store_t *s, enum sch_queue q, struct sch_attrs *a,
                              char *errstr, size_t n);

/**
 * sch_attrs_free() - free the lists of an attrs (not the struct)
 * @a: the attrs
 */
void sch_attrs_free(struct sch_attrs *a);

/**
 * sch_store_eos() - put end-of-stream: watchers finish once they have sent
 * everything before it
 * @s:      the store
 * @q:      which queue
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_eos(sch_store_t *s, enum sch_queue q, char *errstr, size_t n);

/**
 * sch_store_group_read() - frames for one consumer of an EAS group (watch)
 * @s:           the store
 * @q:           which queue
 * @gid:         EAS group (created at @from_index when new)
 * @uid:         consumer
 * @from_index:  where a new group starts (0: the head)
 * @max:         most frames (the free part of the watcher's window)
 * @auto_commit: ack and delete the frames as they are handed out
 * @cur:         this watcher's cursor (zeroed at connect): its own pending
 *               frames from an earlier connection come first
 * @out:         the frames (sch_frames_free())
 * @n_out:       their number
 * @errstr:      reason on failure
 * @n:           its size
 *
 * Order: the consumer's own pending frames (a reconnect with the same uid
 * resumes), then frames of the group idle longer than the visibility timeout
 * (their consumer went away), then new frames, priority first. A call made
 * while the cursor's history is not through returns history frames only
 * (possibly none, when it has just ended). Never blocks.
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_group_read(sch_store_t *s, enum sch_queue q, const char *gid, const char *uid,
                              uint64_t from_index, int max, bool auto_commit,
                              struct sch_cursor *cur, struct sch_frame **out, int *n_out,
                              char *errstr, size_t n);

/**
 * sch_store_group_ack() - ack frames in one group only, without deleting
 * them (a filtered watcher passing over frames it does not want; the other
 * groups still see them)
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @idx:    indexes
 * @count:  their number
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_group_ack(sch_store_t *s, enum sch_queue q, const char *gid,
                             const uint64_t *idx, int count, char *errstr, size_t n);

/**
 * sch_store_group_pending() - frames delivered to a consumer and not committed
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @uid:    consumer
 * @count:  the number (the watcher's window in use)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_group_pending(sch_store_t *s, enum sch_queue q, const char *gid,
                                 const char *uid, int64_t *count, char *errstr, size_t n);

/**
 * sch_store_group_release() - a watcher's connection dropped: its uncommitted
 * frames become claimable by the other consumers of the group at once
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @uid:    consumer
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_group_release(sch_store_t *s, enum sch_queue q, const char *gid,
                                 const char *uid, char *errstr, size_t n);

/**
 * sch_store_group_forget() - delete a consumer that holds nothing pending
 * (a watcher that left cleanly), so consumers do not pile up
 * @s:      the store
 * @q:      which queue
 * @gid:    EAS group
 * @uid:    consumer
 * @errstr: reason on failure
 * @n:      its size
 *
 * A consumer with uncommitted frames is kept: a reconnect with the same uid
 * resumes them.
 *
 * Return: TG_OK or an error.
 */
tg_err_t sch_store_group_forget(sch_store_t *s, enum sch_queue q, const char *gid,
                                const char *uid, char *errstr, size_t n);

/**
 * sch_frames_free() - free frames (NULL-safe)
 * @f: the array
 * @n: its length
 */
void sch_frames_free(struct sch_frame *f, int n);

#endif
