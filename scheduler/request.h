/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request.h - one EAS request taken apart: which service and queue, the
 * reserved `_x_` parameters, the requestId filter, the user tags, the
 * identity headers and the encoding the client accepts.
 */
#ifndef SCH_REQUEST_H
#define SCH_REQUEST_H

#include "store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCH_MAX_PARAMS 32

struct sch_request {
  const char *method;
  int service;                  /* index into the config's services */
  enum sch_queue queue;
  char subpath[256];            /* "/a/b" of a put to a deeper path, else "" */
  char keys[SCH_MAX_PARAMS][64];   /* reserved parameters, e.g. "_index_" */
  char values[SCH_MAX_PARAMS][512];
  int n_params;
  char request_id[128];         /* the requestId filter, "" for none */
  json_t *tags;                 /* other query parameters: user tags (object of strings) */
  char uid[128];
  char gid[128];
  bool protobuf;                /* Accept: application/vnd.google.protobuf */
  char caller[200];             /* peer and uid, for logs */
};

/**
 * sch_request_parse_query() - split a query string into parameters and tags
 * @r:      the request (tags allocated here; sch_request_clear() frees)
 * @query:  the raw query string (may be NULL)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: true on success.
 */
bool sch_request_parse_query(struct sch_request *r, const char *query, char *errstr, size_t n);

/**
 * sch_request_param() - a reserved parameter's value
 * @r:   the request
 * @key: e.g. "_index_"
 *
 * Return: the value, or NULL when absent.
 */
const char *sch_request_param(const struct sch_request *r, const char *key);

/**
 * sch_request_flag() - a boolean parameter ("true"/"1" are true)
 * @r:   the request
 * @key: e.g. "_auto_delete_"
 * @def: value when absent
 *
 * Return: the value.
 */
bool sch_request_flag(const struct sch_request *r, const char *key, bool def);

/**
 * sch_request_u64() - an unsigned integer parameter
 * @r:   the request
 * @key: e.g. "_index_"
 * @def: value when absent
 * @out: the value
 *
 * Return: false when present but not a number.
 */
bool sch_request_u64(const struct sch_request *r, const char *key, uint64_t def, uint64_t *out);

/**
 * sch_parse_duration_ms() - a Go duration ("5s", "1m0s", "1.5s", "500ms",
 * "1h2m") or bare seconds ("5", "0.5")
 * @s:   the text
 * @out: milliseconds
 *
 * Return: true on success.
 */
bool sch_parse_duration_ms(const char *s, int64_t *out);

/**
 * sch_parse_indexes() - "1,2,3" into numbers
 * @s:     the list
 * @out:   up to @max numbers
 * @max:   capacity
 * @count: set to how many
 *
 * Return: false on a malformed list or more than @max entries.
 */
bool sch_parse_indexes(const char *s, uint64_t *out, int max, int *count);

/**
 * sch_request_filter() - the request's frame filter (requestId and tags)
 * @r: the request
 * @f: filled; valid while @r lives
 */
void sch_request_filter(const struct sch_request *r, struct sch_filter *f);

/**
 * sch_request_clear() - free what parsing allocated
 * @r: the request
 */
void sch_request_clear(struct sch_request *r);

#endif
