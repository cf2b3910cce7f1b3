/* SPDX-License-Identifier: Apache-2.0 */
/*
 * storage.h - the upload stage: puts an object under the environment's
 * prefix and returns its URL. Keys are a pure function of the job (env,
 * UTC date of enqueued_at, request_id, variant), so a redelivered job
 * overwrites the same objects. Backends sit behind a const ops table: file.c
 * (a local directory), oss.c (Alibaba OSS), s3.c (S3 and compatible stores);
 * the last two send their signed requests through object_http.c.
 */
#ifndef TG_STORAGE_H
#define TG_STORAGE_H

#include "config.h"
#include "stage.h"

#include <stdint.h>

/* the longest key tg_storage_key_ok() accepts (tg_object_key() makes ~130) */
#define TG_STORAGE_KEY_MAX 255

struct tg_storage_ops {
  const char *name;
  tg_err_t (*create)(const struct tg_worker_conf *conf, void **state, char *errstr, size_t n);
  void (*destroy)(void *state);
  /* true with a malloc()ed URL in *url; false with err */
  bool (*put)(void *state, const char *key, const struct tg_blob *data,
              const char *content_type, char **url, struct tg_stage_error *err);
};

extern const struct tg_storage_ops tg_storage_file;
extern const struct tg_storage_ops tg_storage_oss;
extern const struct tg_storage_ops tg_storage_s3;

/**
 * tg_storage_find() - the backend of a name
 * @name: e.g. "file"
 *
 * Return: the ops, or NULL.
 */
const struct tg_storage_ops *tg_storage_find(const char *name);

/**
 * tg_object_key() - the object key of one variant of a job
 * @env:            environment ([a-z][a-z0-9-]*)
 * @enqueued_at_ms: the job's enqueue time; its UTC date goes in the key
 * @request_id:     [A-Za-z0-9_-]{1,64}
 * @variant:        [a-z][a-z0-9_-]*
 * @ext:            "jpg", "png", "webp"
 * @buf:            output: "{env}/{yyyy}/{mm}/{dd}/{request_id}/{variant}.{ext}"
 * @size:           its size
 * @errstr:         reason when a part is not safe in a key
 * @n:              its size
 *
 * Every part is validated: no traversal, no separators, no surprises.
 *
 * Return: true on success.
 */
bool tg_object_key(const char *env, int64_t enqueued_at_ms, const char *request_id,
                   const char *variant, const char *ext, char *buf, size_t size, char *errstr,
                   size_t n);

/**
 * tg_storage_key_ok() - whether a key may be stored for an environment
 * @env: the environment the worker serves (its config, not the job's word)
 * @key: the object key, before any backend prefix (storage.prefix, root)
 * @why: reason when it may not; never holds the key itself
 * @n:   its size
 *
 * The key must start with "{env}/"; hold no "..", "//", "./", backslash,
 * leading "/", control or non-ASCII byte; and be exactly
 * "{env}/{yyyy}/{mm}/{dd}/{request_id}/{variant}.{ext}" as tg_object_key()
 * builds it from valid parts and a calendar date. The upload stage calls it
 * before every put, so a backend never sees a key outside its env's prefix.
 *
 * Return: true when the key may be stored.
 */
bool tg_storage_key_ok(const char *env, const char *key, char *why, size_t n);

/**
 * tg_storage_key_request_id() - the request_id inside an object key, for log lines
 * @key: "{env}/{yyyy}/{mm}/{dd}/{request_id}/{variant}.{ext}"
 * @out: the request_id, or "-" when the key has another shape
 * @n:   its size
 */
void tg_storage_key_request_id(const char *key, char *out, size_t n);

#endif
