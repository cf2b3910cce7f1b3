/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_overlap.h - whether two environments' configs would share queues
 * or storage: where a config's jobs come from (its env on one Redis) and
 * where its objects go (a store and a prefix), in canonical form, and the
 * pairwise comparison that `tripgen-worker --check-config A.json B.json ...`
 * runs so that test and prod can never overwrite each other's files.
 */
#ifndef TG_WORKER_CONFIG_OVERLAP_H
#define TG_WORKER_CONFIG_OVERLAP_H

#include "config.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* Where one config's jobs come from and its objects go, canonical. */
struct tg_conf_places {
  char env[TG_MAX_ENV_CHARS + 1];
  char redis[PATH_MAX + 32];      /* "redis 127.0.0.1:6379/0", "redis unix:/run/r.sock db 0";
                                     "" on kafka */
  char kafka[4][800];             /* on kafka: "kafka BROKERS topic NAME" per topic ("" unused) */
  char store[TG_CONF_STR + 128];  /* "file", or "object store HOST bucket B" (oss, s3) */
  char prefix[PATH_MAX + TG_MAX_ENV_CHARS + 8]; /* file: "/root/{env}/"; oss, s3: "{prefix}{env}/" */
};

/**
 * tg_worker_conf_places() - the canonical queue and storage places of a config
 * @c:      a validated conf
 * @out:    its places
 * @errstr: reason on failure
 * @n:      its size
 *
 * Redis: the host lower-cased with loopback names as 127.0.0.1, the port and
 * the db, or the resolved socket path and the db; user and password play no
 * part (and never appear). File storage: storage.root made absolute against
 * the working directory, symlinks of its existing part resolved, plus
 * "{env}/". oss, s3: the endpoint's host (the provider's public endpoint of
 * the region when none is set; any *.aliyuncs.com or *.amazonaws.com host
 * counts as that provider, whose bucket names are global) and the bucket,
 * then storage.prefix + "{env}/". Credentials in an endpoint are dropped.
 *
 * Return: TG_OK, or TG_ERR_INVAL when a URL or path cannot be read.
 */
tg_err_t tg_worker_conf_places(const struct tg_worker_conf *c, struct tg_conf_places *out,
                               char *errstr, size_t n);

/**
 * tg_worker_conf_overlap() - whether two configs would share queues or storage
 * @a:   places of one config
 * @b:   places of another
 * @why: what they share, when they do (no secrets)
 * @n:   its size
 *
 * They overlap when they serve the same env on the same Redis (the streams
 * tripgen:{env}:... would be shared, whatever queue.group says), or when
 * they store in the same place (both file, or oss/s3 on the same host and
 * bucket) and one's prefix is a prefix of the other's, e.g. "prod/" and
 * "prod/test/" in one bucket, or root /x with env test and root /x/test/sub.
 *
 * Return: true when they overlap.
 */
bool tg_worker_conf_overlap(const struct tg_conf_places *a, const struct tg_conf_places *b,
                            char *why, size_t n);

#endif
