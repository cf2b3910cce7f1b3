/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_harness.c - start, kill, restart and remove a private redis-server
 * for integration tests (see redis_harness.h).
 */
#include "redis_harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void exec_server(const struct test_redis *r) {
  execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->sock,
         "--unixsocketperm", "700", "--dir", r->dir, "--appendonly", "yes", "--appendfsync",
         "always", "--save", "", "--daemonize", "no", "--loglevel", "warning", "--logfile",
         "redis.log", (char *)NULL);
  fprintf(stderr, "redis_harness: cannot exec redis-server: %s\n", strerror(errno));
  _exit(127);
}

static int spawn(struct test_redis *r, int delay_ms) {
  pid_t pid = fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    if (delay_ms > 0) {
      struct timespec ts = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
    exec_server(r);
  }
  r->pid = pid;
  return 0;
}

redisContext *test_redis_connect(const struct test_redis *r) {
  struct timeval tv = {1, 0};
  redisContext *c = redisConnectUnixWithTimeout(r->sock, tv);
  if (!c || c->err) {
    redisFree(c);
    return NULL;
  }
  return c;
}

static int wait_ready(struct test_redis *r) {
  for (int i = 0; i < 500; i++) {
    redisContext *c = test_redis_connect(r);
    if (c) {
      redisReply *rep = redisCommand(c, "PING");
      int ok = rep && rep->type == REDIS_REPLY_STATUS;
      freeReplyObject(rep);
      redisFree(c);
      if (ok)
        return 0;
    }
    int status;
    if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
      fprintf(stderr, "redis_harness: redis-server exited early (status %d); see %s/redis.log\n",
              status, r->dir);
      r->pid = 0;
      return -1;
    }
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  fprintf(stderr, "redis_harness: redis-server did not answer within 5 s\n");
  return -1;
}

int test_redis_start(struct test_redis *r) {
  memset(r, 0, sizeof(*r));
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof(r->dir), "%s/tripgen-redis-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(r->dir)) {
    fprintf(stderr, "redis_harness: mkdtemp: %s\n", strerror(errno));
    return -1;
  }
  snprintf(r->sock, sizeof(r->sock), "%s/redis.sock", r->dir);
  snprintf(r->url, sizeof(r->url), "unix://%s", r->sock);
  if (spawn(r, 0) != 0)
    return -1;
  return wait_ready(r);
}

void test_redis_kill(struct test_redis *r, int sig) {
  if (r->pid <= 0)
    return;
  kill(r->pid, sig);
  waitpid(r->pid, NULL, 0);
  r->pid = 0;
}

int test_redis_restart_after(struct test_redis *r, int delay_ms) {
  test_redis_kill(r, SIGKILL);
  return spawn(r, delay_ms);
}

void test_redis_stop(struct test_redis *r) {
  test_redis_kill(r, SIGKILL);
  if (!*r->dir)
    return;
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
  if (system(cmd) != 0)
    fprintf(stderr, "redis_harness: could not remove %s\n", r->dir);
  r->dir[0] = '\0';
}
