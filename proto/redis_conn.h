/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_conn.h - one resilient hiredis connection, shared by the Redis
 * transport and the scheduler's store. A lost connection is re-established
 * with backoff (50 ms doubling to 1 s) for up to reconnect_max_ms per
 * command, with one log line when it drops and one when it is back; the
 * password never appears in a message. Scripts run as EVALSHA with a
 * fallback to EVAL after a server restart (NOSCRIPT).
 *
 * A handle is not thread-safe: give each thread its own.
 */
#ifndef TG_REDIS_CONN_H
#define TG_REDIS_CONN_H

#include "tg_err.h"
#include "tg_transport.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tg_redis_conn_s tg_redis_conn_t;

/*
 * Runs after every (re)connect on the fresh context, e.g. to create consumer
 * groups. Non-OK drops the connection (reason in errstr).
 */
typedef tg_err_t (*tg_redis_on_connect_fn)(redisContext *c, void *arg, char *errstr, size_t n);

/**
 * tg_redis_conn_new() - parse conf->redis_url and connect once
 * @conf:       redis_url, connect_timeout_ms, command_timeout_ms and
 *              reconnect_max_ms are read (and copied)
 * @component:  label for the connection's log lines, e.g. "transport"
 * @on_connect: NULL, or a hook run after every (re)connect; it is also run
 *              once per command when the server answers NOGROUP (a stream
 *              deleted under us), and the command is then retried. With no
 *              hook, NOGROUP replies reach the caller.
 * @arg:        passed to @on_connect
 * @errstr:     reason on failure (never holds the password)
 * @n:          its size
 *
 * Return: the handle, or NULL when the URL is bad, memory runs out, the
 * first connection fails or @on_connect fails on it.
 */
tg_redis_conn_t *tg_redis_conn_new(const struct tg_transport_conf *conf, const char *component,
                                   tg_redis_on_connect_fn on_connect, void *arg, char *errstr,
                                   size_t n);

/**
 * tg_redis_conn_destroy() - close the connection and free the handle
 * @c: the handle, or NULL
 */
void tg_redis_conn_destroy(tg_redis_conn_t *c);

/**
 * tg_redis_conn_url() - the URL for messages
 * @c: the handle
 *
 * Return: the URL with its password masked.
 */
const char *tg_redis_conn_url(const tg_redis_conn_t *c);

/**
 * tg_redis_conn_cmd() - run one command, reconnecting while the connection is down
 * @c:        the handle
 * @argc:     number of arguments
 * @argv:     the arguments
 * @lens:     their lengths
 * @block_ms: extra socket timeout for a blocking command (0 for none)
 * @errstr:   reason when NULL is returned
 * @n:        its size
 *
 * LOADING, BUSY, TRYAGAIN and MASTERDOWN replies are retried; READONLY and
 * UNBLOCKED (a failover) reconnect and retry.
 *
 * Return: the reply, server errors included, for the caller to free; NULL
 * (TG_ERR_TRANSPORT) when no answer came within reconnect_max_ms.
 */
redisReply *tg_redis_conn_cmd(tg_redis_conn_t *c, int argc, const char **argv,
                              const size_t *lens, int64_t block_ms, char *errstr, size_t n);

/**
 * tg_redis_conn_cmdv() - tg_redis_conn_cmd() with NUL-terminated arguments
 * @c:        the handle
 * @block_ms: extra socket timeout for a blocking command (0 for none)
 * @argc:     number of arguments, at most TG_REDIS_CMDV_MAX
 * @argv:     the arguments
 * @errstr:   reason when NULL is returned
 * @n:        its size
 *
 * Return: as tg_redis_conn_cmd().
 */
redisReply *tg_redis_conn_cmdv(tg_redis_conn_t *c, int64_t block_ms, int argc, const char **argv,
                               char *errstr, size_t n);

#define TG_REDIS_CMDV_MAX 32

/**
 * tg_redis_conn_eval() - EVALSHA a script, EVAL when the server lacks it
 * @c:       the handle
 * @script:  the script's source
 * @sha:     its SHA1 in hex (tg_redis_sha1_hex())
 * @nkeys:   number of keys
 * @keys:    the keys, NUL-terminated
 * @nargs:   number of arguments
 * @args:    the arguments
 * @arglens: their lengths, or NULL when all are NUL-terminated
 * @err:     TG_ERR_TRANSPORT or TG_ERR_NOMEM when NULL is returned
 * @errstr:  reason when NULL is returned
 * @n:       its size
 *
 * Return: the reply, error replies included (the caller maps them), or NULL.
 */
redisReply *tg_redis_conn_eval(tg_redis_conn_t *c, const char *script, const char *sha,
                               int nkeys, const char **keys, int nargs, const char **args,
                               const size_t *arglens, tg_err_t *err, char *errstr, size_t n);

/**
 * tg_redis_conn_pipeline() - send several commands in one write, then read
 * their replies in order
 * @c:       the handle
 * @count:   number of commands
 * @argcs:   each command's number of arguments
 * @argvs:   each command's arguments
 * @lens:    each command's argument lengths
 * @replies: set to each command's reply (server errors included; NULL past
 *           a connection loss), for the caller to free
 * @errstr:  reason when fewer than @count replies came
 * @n:       its size
 *
 * Connects first when the connection is down (running the on_connect
 * hook). Nothing is retried: after a connection loss midway, the commands
 * without a reply may or may not have run, so pipeline only commands that
 * are safe to repeat or whose repeat the caller detects. Transient errors
 * (LOADING, NOSCRIPT...) come back as replies for the caller to handle.
 *
 * Return: the number of replies read (@count when all came).
 */
int tg_redis_conn_pipeline(tg_redis_conn_t *c, int count, const int *argcs,
                           const char *const *const *argvs, const size_t *const *lens,
                           redisReply **replies, char *errstr, size_t n);

/**
 * tg_redis_sha1_hex() - the SHA1 of a script, as EVALSHA wants it
 * @s:   the script
 * @out: 40 hex digits and a NUL
 */
void tg_redis_sha1_hex(const char *s, char out[41]);

#endif
