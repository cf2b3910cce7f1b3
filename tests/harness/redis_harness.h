/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_harness.h - a private redis-server for one test: its own temp
 * directory and unix socket, AOF with fsync on every write (so a kill -9
 * loses nothing acknowledged), killed and removed at the end.
 */
#ifndef TG_REDIS_HARNESS_H
#define TG_REDIS_HARNESS_H

#include <hiredis/hiredis.h>
#include <sys/types.h>

struct test_redis {
  char dir[256];
  char sock[320];
  char url[340];   /* unix:///.../redis.sock */
  pid_t pid;
};

/**
 * test_redis_start() - start a fresh server in a new temp directory
 * @r: filled in
 *
 * Return: 0 once it answers PING, -1 (with a message on stderr) otherwise.
 */
int test_redis_start(struct test_redis *r);

/**
 * test_redis_kill() - kill the server with a signal and reap it
 * @r:   the server
 * @sig: e.g. SIGKILL
 */
void test_redis_kill(struct test_redis *r, int sig);

/**
 * test_redis_restart_after() - start the server again on the same directory
 * and socket, after a delay, without waiting for it
 * @r:        the server
 * @delay_ms: how long the new process sleeps before it execs redis-server
 *
 * Return: 0 when the process was started.
 */
int test_redis_restart_after(struct test_redis *r, int delay_ms);

/**
 * test_redis_stop() - kill the server and remove its directory
 * @r: the server
 */
void test_redis_stop(struct test_redis *r);

/**
 * test_redis_connect() - a raw hiredis connection, for tests that poke keys
 * @r: the server
 *
 * Return: the context (redisFree() it), or NULL.
 */
redisContext *test_redis_connect(const struct test_redis *r);

#endif
