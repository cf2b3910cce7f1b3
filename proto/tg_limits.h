/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_limits.h - every size bound tripgen enforces, in one table.
 *
 * The constants are used by the code that enforces them; the table
 * (tg_limits_table()) is what `tripgen limits` prints and what the README's
 * limits section must match (a test compares them). String lengths are in
 * Unicode code points, as JSON Schema's maxLength counts them.
 */
#ifndef TG_LIMITS_H
#define TG_LIMITS_H

#include <stddef.h>
#include <stdint.h>

enum {
  TG_MAX_PAYLOAD_BYTES = 65536,   /* one trip, job or queue put body */
  TG_MAX_RESULT_BYTES = 262144,   /* one serialised result */
  TG_MAX_JSON_DEPTH = 8,          /* nesting of objects and arrays */
  TG_MAX_ID_CHARS = 128,          /* trip_id, user_id, idempotency_key */
  TG_MAX_REQUEST_ID_CHARS = 64,   /* request_id */
  TG_MAX_ENV_CHARS = 32,          /* env name */
  TG_MAX_TAG_CHARS = 64,          /* tag */
  TG_MAX_TEXT_CHARS = 1000,       /* mood text */
  TG_MAX_ADDRESS_CHARS = 256,     /* origin/destination address */
  TG_MAX_NAME_CHARS = 64,         /* city, vehicle model, team */
  TG_MAX_SHORT_CHARS = 32,        /* weather, colour, generation, style */
  TG_MAX_LOCALE_CHARS = 35,       /* BCP 47 tag */
  TG_MAX_VIA_CITIES = 32,         /* via_cities entries */
  TG_MAX_VARIANTS = 4,            /* options.variants entries */
  TG_MAX_VARIANT_CHARS = 16,      /* one variant name */
  TG_MAX_IMAGE_SIDE = 4096,       /* width or height in pixels */
  TG_MIN_IMAGE_SIDE = 64,
  TG_MAX_IMAGE_PIXELS = 16777216, /* width x height */
  TG_MAX_DISTANCE_KM = 100000,
  TG_MAX_DRIVING_SECONDS = 31 * 24 * 3600,
  TG_MAX_ATTEMPT = 100,
  TG_MAX_GENERATION = 1000000,
  TG_MAX_QUEUE_LENGTH = 10000000, /* upper bound of the configurable cap */
  TG_DEFAULT_QUEUE_LENGTH = 100000,
  TG_MAX_ERROR_MESSAGE_CHARS = 1024,
  TG_MAX_PROMPT_CHARS = 4000,
};

/* One row of the limits table. */
struct tg_limit {
  const char *name;    /* stable key, e.g. "payload_bytes" */
  int64_t value;
  const char *unit;    /* "bytes", "chars", "entries", ... */
  const char *applies; /* what it bounds, one line */
};

/**
 * tg_limits_table() - the table of bounds
 * @n: set to the number of rows
 *
 * Return: the rows, in documentation order.
 */
const struct tg_limit *tg_limits_table(size_t *n);

#endif
