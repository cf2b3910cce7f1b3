/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_conn.c - one resilient hiredis connection (redis_conn.h): connect
 * with AUTH and SELECT, reconnect with backoff, retry transient server
 * errors, EVALSHA with EVAL fallback. Used by proto/transport_redis.c and
 * scheduler/store.c.
 */
#include "redis_conn.h"

#include "redis_url.h"
#include "tg_log.h"
#include "tg_time.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_STACK_ARGS 32 /* scripts with more arguments allocate */

struct tg_redis_conn_s {
  redisContext *c;
  struct tg_redis_url url;
  char shown_url[320];       /* password masked */
  char component[32];        /* log label */
  int64_t connect_timeout_ms, command_timeout_ms, reconnect_max_ms;
  int64_t lost_at_ms;        /* when the connection dropped, 0 while up */
  tg_redis_on_connect_fn on_connect;
  void *arg;
};

static struct timeval tv_ms(int64_t ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  return tv;
}

/* Connect, AUTH and SELECT; the hook is the caller's business. */
static tg_err_t conn_connect(tg_redis_conn_t *rc, char *errstr, size_t n) {
  struct timeval tv = tv_ms(rc->connect_timeout_ms);
  redisContext *c = rc->url.is_unix ? redisConnectUnixWithTimeout(rc->url.host, tv)
                                    : redisConnectWithTimeout(rc->url.host, rc->url.port, tv);
  if (!c || c->err) {
    snprintf(errstr, n, "redis %s: cannot connect: %s", rc->shown_url,
             c ? c->errstr : "out of memory");
    redisFree(c);
    return TG_ERR_TRANSPORT;
  }
  redisSetTimeout(c, tv_ms(rc->command_timeout_ms));
  redisReply *r = NULL;
  if (*rc->url.password) {
    r = *rc->url.user ? redisCommand(c, "AUTH %s %s", rc->url.user, rc->url.password)
                      : redisCommand(c, "AUTH %s", rc->url.password);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      /* the server's text names no secret; ours must not either */
      snprintf(errstr, n, "redis %s: authentication failed%s%s", rc->shown_url, r ? ": " : "",
               r ? r->str : "");
      freeReplyObject(r);
      redisFree(c);
      return TG_ERR_TRANSPORT;
    }
    freeReplyObject(r);
  }
  if (rc->url.db) {
    r = redisCommand(c, "SELECT %d", rc->url.db);
    if (!r || r->type == REDIS_REPLY_ERROR) {
      snprintf(errstr, n, "redis %s: SELECT %d failed", rc->shown_url, rc->url.db);
      freeReplyObject(r);
      redisFree(c);
      return TG_ERR_TRANSPORT;
    }
    freeReplyObject(r);
  }
  rc->c = c;
  if (rc->lost_at_ms)
    tg_log(TG_INFO, "event=redis_reconnected component=%s url=%s down_ms=%" PRId64,
           rc->component, rc->shown_url, tg_mono_ms() - rc->lost_at_ms);
  rc->lost_at_ms = 0;
  return TG_OK;
}

static void conn_disconnect(tg_redis_conn_t *rc, const char *why) {
  if (!rc->c)
    return;
  char q[256];
  tg_log(TG_WARN, "event=redis_disconnected component=%s url=%s err=%s", rc->component,
         rc->shown_url, tg_logq(q, sizeof(q), why));
  redisFree(rc->c);
  rc->c = NULL;
  rc->lost_at_ms = tg_mono_ms();
}

/* True for server errors that pass: loading after a restart, a busy script. */
static bool transient_server_error(const redisReply *r) {
  return r->type == REDIS_REPLY_ERROR &&
         (strncmp(r->str, "LOADING", 7) == 0 || strncmp(r->str, "BUSY ", 5) == 0 ||
          strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "MASTERDOWN", 10) == 0);
}

static bool is_err(const redisReply *r, const char *prefix) {
  return r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

tg_redis_conn_t *tg_redis_conn_new(const struct tg_transport_conf *conf, const char *component,
                                   tg_redis_on_connect_fn on_connect, void *arg, char *errstr,
                                   size_t n) {
  tg_redis_conn_t *rc = calloc(1, sizeof(*rc));
  if (!rc) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  if (!tg_redis_url_parse(conf->redis_url, &rc->url, errstr, n)) {
    free(rc);
    return NULL;
  }
  tg_redis_url_redact(&rc->url, rc->shown_url, sizeof(rc->shown_url));
  snprintf(rc->component, sizeof(rc->component), "%s", component ? component : "redis");
  rc->connect_timeout_ms = conf->connect_timeout_ms;
  rc->command_timeout_ms = conf->command_timeout_ms;
  rc->reconnect_max_ms = conf->reconnect_max_ms;
  rc->on_connect = on_connect;
  rc->arg = arg;
  if (conn_connect(rc, errstr, n) != TG_OK ||
      (on_connect && on_connect(rc->c, arg, errstr, n) != TG_OK)) {
    tg_redis_conn_destroy(rc);
    return NULL;
  }
  return rc;
}

void tg_redis_conn_destroy(tg_redis_conn_t *rc) {
  if (!rc)
    return;
  redisFree(rc->c);
  free(rc);
}

const char *tg_redis_conn_url(const tg_redis_conn_t *rc) { return rc->shown_url; }

redisReply *tg_redis_conn_cmd(tg_redis_conn_t *rc, int argc, const char **argv,
                              const size_t *lens, int64_t block_ms, char *errstr, size_t n) {
  int64_t deadline = tg_mono_ms() + rc->reconnect_max_ms;
  int64_t backoff = 50;
  bool rehooked = false;
  char last[256] = "not connected";
  for (;;) {
    if (!rc->c && conn_connect(rc, last, sizeof(last)) == TG_OK && rc->on_connect &&
        rc->on_connect(rc->c, rc->arg, last, sizeof(last)) != TG_OK)
      conn_disconnect(rc, last);
    if (rc->c) {
      if (block_ms)
        redisSetTimeout(rc->c, tv_ms(block_ms + rc->command_timeout_ms));
      redisReply *r = redisCommandArgv(rc->c, argc, argv, lens);
      if (r && block_ms)
        redisSetTimeout(rc->c, tv_ms(rc->command_timeout_ms));
      if (r && transient_server_error(r)) {
        snprintf(last, sizeof(last), "%s", r->str);
        freeReplyObject(r);
      } else if (r && (is_err(r, "READONLY") || is_err(r, "UNBLOCKED"))) {
        /* a demoted primary (failover): reconnect, DNS or the sidecar finds the new one */
        snprintf(last, sizeof(last), "%s", r->str);
        freeReplyObject(r);
        conn_disconnect(rc, last);
      } else if (r && rc->on_connect && is_err(r, "NOGROUP") && !rehooked) {
        /* the stream was deleted under us: run the hook (recreate groups) once */
        freeReplyObject(r);
        rehooked = true;
        if (rc->on_connect(rc->c, rc->arg, last, sizeof(last)) == TG_OK)
          continue;
      } else if (r) {
        return r;
      } else {
        snprintf(last, sizeof(last), "%s", rc->c->errstr);
        conn_disconnect(rc, last);
      }
    }
    if (tg_mono_ms() >= deadline) {
      snprintf(errstr, n, "redis %s: %s", rc->shown_url, last);
      return NULL;
    }
    tg_sleep_ms(backoff);
    backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
  }
}

redisReply *tg_redis_conn_cmdv(tg_redis_conn_t *rc, int64_t block_ms, int argc, const char **argv,
                               char *errstr, size_t n) {
  size_t lens[TG_REDIS_CMDV_MAX];
  if (argc > TG_REDIS_CMDV_MAX) {
    snprintf(errstr, n, "redis: %d arguments, at most %d", argc, TG_REDIS_CMDV_MAX);
    return NULL;
  }
  for (int i = 0; i < argc; i++)
    lens[i] = strlen(argv[i]);
  return tg_redis_conn_cmd(rc, argc, argv, lens, block_ms, errstr, n);
}

redisReply *tg_redis_conn_eval(tg_redis_conn_t *rc, const char *script, const char *sha,
                               int nkeys, const char **keys, int nargs, const char **args,
                               const size_t *arglens, tg_err_t *err, char *errstr, size_t n) {
  int argc = 3 + nkeys + nargs;
  const char *sargv[EVAL_STACK_ARGS];
  size_t slens[EVAL_STACK_ARGS];
  const char **argv = sargv;
  size_t *lens = slens;
  if (argc > EVAL_STACK_ARGS) {
    argv = malloc(sizeof(*argv) * (size_t)argc);
    lens = malloc(sizeof(*lens) * (size_t)argc);
    if (!argv || !lens) {
      free(argv);
      free(lens);
      snprintf(errstr, n, "out of memory");
      *err = TG_ERR_NOMEM;
      return NULL;
    }
  }
  char nk[16];
  snprintf(nk, sizeof(nk), "%d", nkeys);
  int a = 0;
  argv[a] = "EVALSHA";
  lens[a++] = 7;
  argv[a] = sha;
  lens[a++] = 40;
  argv[a] = nk;
  lens[a++] = strlen(nk);
  for (int i = 0; i < nkeys; i++) {
    argv[a] = keys[i];
    lens[a++] = strlen(keys[i]);
  }
  for (int i = 0; i < nargs; i++) {
    argv[a] = args[i];
    lens[a++] = arglens ? arglens[i] : strlen(args[i]);
  }
  redisReply *r = tg_redis_conn_cmd(rc, argc, argv, lens, 0, errstr, n);
  if (r && is_err(r, "NOSCRIPT")) {
    freeReplyObject(r);
    argv[0] = "EVAL";
    lens[0] = 4;
    argv[1] = script;
    lens[1] = strlen(script);
    r = tg_redis_conn_cmd(rc, argc, argv, lens, 0, errstr, n);
  }
  if (argv != sargv) {
    free(argv);
    free(lens);
  }
  if (!r)
    *err = TG_ERR_TRANSPORT;
  return r;
}

int tg_redis_conn_pipeline(tg_redis_conn_t *rc, int count, const int *argcs,
                           const char *const *const *argvs, const size_t *const *lens,
                           redisReply **replies, char *errstr, size_t n) {
  for (int i = 0; i < count; i++)
    replies[i] = NULL;
  if (!rc->c) { /* connect (and run the hook) through the resilient path */
    const char *ping[] = {"PING"};
    redisReply *r = tg_redis_conn_cmdv(rc, 0, 1, ping, errstr, n);
    if (!r)
      return 0;
    freeReplyObject(r);
  }
  for (int i = 0; i < count; i++)
    if (redisAppendCommandArgv(rc->c, argcs[i], (const char **)argvs[i], lens[i]) != REDIS_OK) {
      snprintf(errstr, n, "redis %s: out of memory", rc->shown_url);
      conn_disconnect(rc, "pipeline append failed"); /* drop what was buffered */
      return 0;
    }
  int got = 0;
  for (; got < count; got++) {
    void *reply = NULL;
    if (redisGetReply(rc->c, &reply) != REDIS_OK) {
      snprintf(errstr, n, "redis %s: %s", rc->shown_url, rc->c->errstr);
      conn_disconnect(rc, rc->c->errstr);
      break;
    }
    replies[got] = reply;
  }
  return got;
}

void tg_redis_sha1_hex(const char *s, char out[41]) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)s, strlen(s), d);
  for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}
