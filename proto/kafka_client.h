/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_client.h - one process's connection to the Kafka topics of an
 * environment, shared by every transport handle with the same settings:
 * an idempotent (or transactional) producer with a delivery-report thread,
 * and, from the first take(), a group consumer whose own thread keeps
 * polling while jobs run, buffers what it receives, pauses its partitions
 * at the in-flight cap, follows rebalances and commits, per partition,
 * only the offset below which every job is finished (kafka_offsets.h).
 * transport_kafka.c maps the transport operations onto it.
 */
#ifndef TG_KAFKA_CLIENT_H
#define TG_KAFKA_CLIENT_H

#include "tg_err.h"
#include "tg_transport.h"

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_kclient tg_kclient_t;

enum tg_ktopic { TG_KT_IN, TG_KT_RETRY, TG_KT_OUT, TG_KT_DLQ, TG_KT__COUNT };

/* A record to produce. */
struct tg_krec {
  enum tg_ktopic topic;
  const char *key;
  const char *value;
  size_t len;
  int64_t not_before_ms;        /* > 0: header tripgen-not-before (a retry's due time) */
  int last_code;                /* > 0: header tripgen-last-code (a failed result) */
};

/* Where a received message sits: what its commit depends on. */
struct tg_kpos {
  enum tg_ktopic topic;         /* TG_KT_IN or TG_KT_RETRY */
  int32_t partition;
  int64_t offset;
  uint64_t epoch;               /* the assignment it was received under */
};

/* A message the consumer received and take() hands out. */
struct tg_kmsg {
  struct tg_kpos pos;
  char *key;                    /* NUL-terminated, NULL when absent */
  char *value;                  /* NUL-terminated copy */
  size_t len;
  int64_t timestamp_ms;
  int64_t not_before_ms;
};

/**
 * tg_kafka_secret_name() - whether a librdkafka property holds a secret
 * (passwords, secrets, tokens, JAAS and OAUTHBEARER configs, PEM keys):
 * configs must give its value as "env:NAME" or "file:PATH", and printed
 * configs mask a literal one
 * @name: the property name
 *
 * Return: true for a secret.
 */
bool tg_kafka_secret_name(const char *name);

/**
 * tg_kafka_props_from_json() - a config's object of librdkafka properties as
 * the "name=value" lines of tg_kafka_conf.props
 * @obj:    the JSON object (string values)
 * @path:   its config key, for messages
 * @out:    the lines
 * @size:   its size
 * @errstr: reason on failure (a literal secret is refused, never echoed)
 * @n:      its size
 *
 * Return: true when every property is a plain name with a string value, and
 * every secret (tg_kafka_secret_name()) is given as "env:NAME" or "file:PATH".
 */
bool tg_kafka_props_from_json(const json_t *obj, const char *path, char *out, size_t size,
                              char *errstr, size_t n);

/**
 * tg_kafka_topic_name() - a configured topic name with "{env}" replaced, checked
 * @pattern: the configured name
 * @env:     the env
 * @out:     the name
 * @size:    its size
 * @what:    which topic, for messages ("input", "retry", ...; only "retry" may be empty)
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: true when the name is a valid Kafka topic name.
 */
bool tg_kafka_topic_name(const char *pattern, const char *env, char *out, size_t size,
                         const char *what, char *errstr, size_t n);

/**
 * tg_kclient_get() - the shared client for these settings (created on first use)
 * @conf:   transport settings (backend "kafka")
 * @errstr: reason on failure (never holds a secret)
 * @n:      its size
 *
 * Return: the client, with one more reference; NULL on failure.
 */
tg_kclient_t *tg_kclient_get(const struct tg_transport_conf *conf, char *errstr, size_t n);

/**
 * tg_kclient_put() - drop a reference; the last one commits what is
 * finished, leaves the group and disconnects (NULL-safe)
 * @c: the client
 */
void tg_kclient_put(tg_kclient_t *c);

/**
 * tg_kclient_topic() - a topic's name, "{env}" replaced
 * @c: the client
 * @t: which topic
 *
 * Return: the name ("" for TG_KT_RETRY when retries go to the input).
 */
const char *tg_kclient_topic(const tg_kclient_t *c, enum tg_ktopic t);

/**
 * tg_kclient_produce() - produce records and wait for their delivery reports
 * @c:       the client
 * @recs:    the records
 * @count:   their number
 * @offsets: set per record to its offset (-1 when not delivered); may be NULL
 * @errs:    set per record: TG_OK or why it was not delivered; may be NULL
 * @errstr:  the first failure's reason
 * @n:       its size
 *
 * Not on an exactly_once client (its records go out in transactions).
 *
 * Return: TG_OK when all were delivered, else the first error.
 */
tg_err_t tg_kclient_produce(tg_kclient_t *c, const struct tg_krec *recs, int count,
                            int64_t *offsets, tg_err_t *errs, char *errstr, size_t n);

/**
 * tg_kclient_take() - received messages whose not-before time has come
 * @c:          the client; joins the consumer group on the first call
 * @max:        most messages
 * @timeout_ms: how long to wait when none is ready
 * @out:        set to a malloc()ed array (tg_kmsgs_free())
 * @n_out:      set to its length
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Return: TG_OK (possibly none), or TG_ERR_TRANSPORT.
 */
tg_err_t tg_kclient_take(tg_kclient_t *c, int max, int timeout_ms, struct tg_kmsg **out,
                         int *n_out, char *errstr, size_t n);

/**
 * tg_kmsgs_free() - free messages from tg_kclient_take() (NULL-safe)
 * @m: the array
 * @n: its length
 */
void tg_kmsgs_free(struct tg_kmsg *m, int n);

/**
 * tg_kclient_finish() - a received message is done; these records are its effects
 * @c:      the client
 * @pos:    the messages
 * @recs:   per message, its records (results, retries, dead letters)
 * @n_recs: per message, their number (1 or 2)
 * @count:  the number of messages
 * @errs:   set per message: TG_OK, TG_ERR_NOT_FOUND when its partition was
 *          revoked since (abandoned: its next owner runs it), or a
 *          delivery error (repeat it)
 * @errstr: the first failure's reason
 * @n:      its size
 *
 * At least once: the records are produced and delivered first, then the
 * offset counts as done and the commit watermark may pass it. Exactly
 * once: the records wait, and go out in the transaction that commits the
 * watermark past their message.
 *
 * Return: TG_OK when all were, else the first error.
 */
tg_err_t tg_kclient_finish(tg_kclient_t *c, const struct tg_kpos *pos,
                           const struct tg_krec *const *recs, const int *n_recs, int count,
                           tg_err_t *errs, char *errstr, size_t n);

/**
 * tg_kclient_current() - whether a message's partition is still ours in its epoch
 * @c:   the client
 * @pos: the message
 *
 * Return: true while it is.
 */
bool tg_kclient_current(tg_kclient_t *c, const struct tg_kpos *pos);

/**
 * tg_kclient_lag() - per topic: high watermark minus the group's committed
 * offset (the low watermark where nothing is committed), summed over partitions
 * @c:      the client
 * @t:      the topic
 * @group:  true: lag behind the group; false: the number of records kept
 * @out:    the sum
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: TG_OK or TG_ERR_TRANSPORT.
 */
tg_err_t tg_kclient_lag(tg_kclient_t *c, enum tg_ktopic t, bool group, int64_t *out,
                        char *errstr, size_t n);

/**
 * tg_kclient_read() - read records of a topic without a group (tripgen watch)
 * @c:          the client
 * @t:          the topic
 * @beginning:  on the first call: from the oldest kept (else only new ones)
 * @max:        most records
 * @timeout_ms: how long to wait for the first
 * @out:        set to the messages (tg_kmsgs_free())
 * @n_out:      set to their number
 * @errstr:     reason on failure
 * @n:          its size
 *
 * Reads committed records only.
 *
 * Return: TG_OK or TG_ERR_TRANSPORT.
 */
tg_err_t tg_kclient_read(tg_kclient_t *c, enum tg_ktopic t, bool beginning, int max,
                         int timeout_ms, struct tg_kmsg **out, int *n_out, char *errstr,
                         size_t n);

/**
 * tg_kclient_break() - stop the client for good: take fails from now on
 * @c:   the client
 * @why: the reason, logged and returned by take
 */
void tg_kclient_break(tg_kclient_t *c, const char *why);

/**
 * tg_kclient_stats() - records held, partitions assigned and paused
 * @c:   the client
 * @out: filled
 *
 * Return: false before the consumer started.
 */
bool tg_kclient_stats(tg_kclient_t *c, struct tg_transport_stats *out);

/**
 * tg_kclient_healthy() - false after a fatal client error (fenced producer,
 * fatal idempotence error): the process should restart
 * @c:      the client
 * @errstr: the error
 * @n:      its size
 *
 * Return: true while healthy.
 */
bool tg_kclient_healthy(tg_kclient_t *c, char *errstr, size_t n);

#endif
