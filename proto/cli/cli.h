/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - shared pieces of the `tripgen` command: common options, the
 * transport they open, bounded file reading and the exit codes.
 */
#ifndef TG_CLI_H
#define TG_CLI_H

#include "tg_transport.h"

#include <stddef.h>

/* Exit codes of every command. */
enum {
  CLI_OK = 0,
  CLI_NOT_FOUND = 1,  /* get: no result yet; watch: timed out */
  CLI_USAGE = 2,      /* bad arguments or invalid input */
  CLI_FAILED = 3,     /* the queue was unreachable or refused */
};

/* Options every queue command takes. */
struct cli_common {
  const char *env;
  const char *redis_url;
  const char *transport;        /* "redis" or "kafka" */
  const char *brokers;          /* kafka bootstrap servers */
};

/**
 * cli_common_init() - defaults from TRIPGEN_ENV, TRIPGEN_REDIS_URL,
 * TRIPGEN_TRANSPORT and TRIPGEN_KAFKA_BROKERS
 * @c: the options
 */
void cli_common_init(struct cli_common *c);

/**
 * cli_open() - open the transport of the selected env
 * @c: the options
 *
 * Return: the handle, or NULL after printing why.
 */
tg_transport_t *cli_open(const struct cli_common *c);

/**
 * cli_read_file() - read a whole file ("-" = stdin), refusing more than @max bytes
 * @path:   the path
 * @max:    size bound
 * @len:    set to the length
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: a malloc()ed, NUL-terminated buffer, or NULL.
 */
char *cli_read_file(const char *path, size_t max, size_t *len, char *errstr, size_t n);

int cli_put(int argc, char **argv);
int cli_watch(int argc, char **argv);
int cli_get(int argc, char **argv);
int cli_depth(int argc, char **argv);
int cli_validate(int argc, char **argv);
int cli_limits(int argc, char **argv);
int cli_errors(int argc, char **argv);
int cli_dlq(int argc, char **argv);

#endif
