/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_trip.h - the trip event a car platform emits when a drive ends.
 *
 * A tg_trip_t is a typed, validated view over the JSON object: the string
 * fields point into the JSON it holds a reference to, so the view and the
 * JSON live and die together. Validation is strict: unknown fields, wrong
 * types, out-of-range numbers, bad times and over-long strings are refused
 * with the field's path and the reason.
 */
#ifndef TG_TRIP_H
#define TG_TRIP_H

#include "tg_limits.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Origin or destination of a trip. */
struct tg_place {
  const char *address;
  const char *city;
  const char *weather;
};

/* The owner's car. */
struct tg_vehicle {
  const char *model;
  const char *color;
  const char *generation;
};

typedef struct tg_trip {
  json_t *json;          /* the validated object; the view holds one reference */
  const char *trip_id;
  const char *user_id;
  const char *tag;
  const char *text;
  const char *start_time; /* as given (RFC 3339 with offset) */
  const char *end_time;
  int64_t start_ms;       /* parsed, UTC */
  int64_t end_ms;
  int64_t driving_seconds;
  double distance_km;
  struct tg_place origin;
  struct tg_place destination;
  const char *via_cities[TG_MAX_VIA_CITIES];
  size_t n_via_cities;
  struct tg_vehicle vehicle;
  const char *team;       /* NULL when absent or null */
  const char *style;      /* NULL when absent */
  const char *locale;     /* NULL when absent */
} tg_trip_t;

/**
 * tg_trip_parse() - parse and validate a trip event
 * @data:   JSON bytes (need not be NUL-terminated)
 * @len:    their length (at most TG_MAX_PAYLOAD_BYTES)
 * @errstr: on failure, "<field path>: <reason>"
 * @n:      its size
 *
 * Return: a new trip, or NULL with the reason in @errstr.
 */
tg_trip_t *tg_trip_parse(const char *data, size_t len, char *errstr, size_t n);

/**
 * tg_trip_from_json() - validate a trip held in a larger document
 * @obj:    the trip object (a reference is taken on success)
 * @path:   its path in the document, "" at the root ("trip" in a job)
 * @errstr: on failure, "<field path>: <reason>"
 * @n:      its size
 *
 * Return: a new trip, or NULL with the reason in @errstr.
 */
tg_trip_t *tg_trip_from_json(json_t *obj, const char *path, char *errstr, size_t n);

/**
 * tg_trip_destroy() - free a trip (NULL-safe)
 * @trip: the trip
 */
void tg_trip_destroy(tg_trip_t *trip);

#endif
