/* SPDX-License-Identifier: Apache-2.0 */
/*
 * redis_url.h - parsing of Redis connection URLs:
 * redis://[[user]:password@]host[:port][/db] and unix:///path[?db=N].
 * The password is kept out of every message: use redact for display.
 */
#ifndef TG_REDIS_URL_H
#define TG_REDIS_URL_H

#include <stdbool.h>
#include <stddef.h>

struct tg_redis_url {
  bool is_unix;
  char host[256];      /* or the socket path */
  int port;
  int db;
  char user[128];      /* ACL user, "" for the default user */
  char password[256];  /* "" when none */
};

/**
 * tg_redis_url_parse() - parse a Redis URL
 * @url:    the URL
 * @out:    the parts
 * @errstr: reason on failure (never holds the password)
 * @n:      its size
 *
 * Return: true on success.
 */
bool tg_redis_url_parse(const char *url, struct tg_redis_url *out, char *errstr, size_t n);

/**
 * tg_redis_url_redact() - the URL for logs and messages, password masked
 * @u:    parsed URL
 * @buf:  output
 * @size: its size
 *
 * Return: @buf.
 */
char *tg_redis_url_redact(const struct tg_redis_url *u, char *buf, size_t size);

#endif
