/* SPDX-License-Identifier: Apache-2.0 */
/*
 * trip.c - validation of trip events: the field rules of DESIGN.md's trip
 * message, each rejection naming the field. The rules here and
 * proto/schema/trip.schema.json describe the same contract; a test runs
 * every sample and bad case through both.
 */
#include "tg_trip.h"
#include "tg_json.h"
#include "tg_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const trip_keys[] = {
  "trip_id", "user_id", "tag", "text", "start_time", "end_time", "driving_seconds",
  "distance_km", "origin", "destination", "via_cities", "vehicle", "team", "style",
  "locale", NULL};
static const char *const place_keys[] = {"address", "city", "weather", NULL};
static const char *const vehicle_keys[] = {"model", "color", "generation", NULL};

static const struct tg_str_rule rule_id = {true, false, 1, TG_MAX_ID_CHARS, TG_CS_ID};
static const struct tg_str_rule rule_tag = {true, false, 0, TG_MAX_TAG_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_text = {true, false, 0, TG_MAX_TEXT_CHARS, TG_CS_ANY};
static const struct tg_str_rule rule_time = {true, false, 1, 64, TG_CS_LINE};
static const struct tg_str_rule rule_address = {true, false, 0, TG_MAX_ADDRESS_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_name = {true, false, 1, TG_MAX_NAME_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_short = {true, false, 0, TG_MAX_SHORT_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_team = {false, true, 0, TG_MAX_NAME_CHARS, TG_CS_LINE};
static const struct tg_str_rule rule_style = {false, false, 1, TG_MAX_SHORT_CHARS, TG_CS_TOKEN};
static const struct tg_str_rule rule_locale = {false, false, 2, TG_MAX_LOCALE_CHARS, TG_CS_LOCALE};

static bool check_time(const json_t *obj, const char *path, const char *key, const char **s,
                       int64_t *ms, char *errstr, size_t n) {
  if (!tg_v_str(obj, path, key, &rule_time, s, errstr, n))
    return false;
  const char *why;
  if (!tg_time_parse(*s, ms, &why)) {
    char p[128];
    snprintf(errstr, n, "%s: %s", tg_path_join(p, sizeof(p), path, key), why);
    return false;
  }
  return true;
}

static bool check_place(const json_t *trip, const char *path, const char *key,
                        struct tg_place *out, char *errstr, size_t n) {
  json_t *obj;
  char p[128];
  tg_path_join(p, sizeof(p), path, key);
  if (!tg_v_child(trip, path, key, JSON_OBJECT, true, false, &obj, errstr, n) ||
      !tg_v_keys(obj, p, place_keys, errstr, n) ||
      !tg_v_str(obj, p, "address", &rule_address, &out->address, errstr, n) ||
      !tg_v_str(obj, p, "city", &rule_name, &out->city, errstr, n) ||
      !tg_v_str(obj, p, "weather", &rule_short, &out->weather, errstr, n))
    return false;
  return true;
}

static bool check_via(const json_t *trip, const char *path, tg_trip_t *t, char *errstr,
                      size_t n) {
  json_t *arr, *v;
  char p[128], ip[160];
  size_t i;
  tg_path_join(p, sizeof(p), path, "via_cities");
  if (!tg_v_child(trip, path, "via_cities", JSON_ARRAY, true, false, &arr, errstr, n))
    return false;
  if (json_array_size(arr) > TG_MAX_VIA_CITIES) {
    snprintf(errstr, n, "%s: %zu entries exceeds the limit of %d", p, json_array_size(arr),
             TG_MAX_VIA_CITIES);
    return false;
  }
  json_array_foreach(arr, i, v) {
    /* check each entry with the string rule by wrapping it in a probe object */
    snprintf(ip, sizeof(ip), "%s[%zu]", p, i);
    json_t *probe = json_object();
    json_object_set(probe, "v", v);
    char inner[256];
    const char *s;
    bool ok = tg_v_str(probe, "", "v", &rule_name, &s, inner, sizeof(inner));
    json_decref(probe);
    if (!ok) {
      snprintf(errstr, n, "%s%s", ip, inner + 1); /* inner is "v: reason" */
      return false;
    }
    t->via_cities[i] = json_string_value(v);
  }
  t->n_via_cities = json_array_size(arr);
  return true;
}

tg_trip_t *tg_trip_from_json(json_t *obj, const char *path, char *errstr, size_t n) {
  if (!json_is_object(obj)) {
    snprintf(errstr, n, "%s: expected object, got %s", *path ? path : "payload",
             tg_json_type_name(obj));
    return NULL;
  }
  tg_trip_t *t = calloc(1, sizeof(*t));
  if (!t) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  json_t *veh;
  char vp[128];
  tg_path_join(vp, sizeof(vp), path, "vehicle");
  if (!tg_v_keys(obj, path, trip_keys, errstr, n) ||
      !tg_v_str(obj, path, "trip_id", &rule_id, &t->trip_id, errstr, n) ||
      !tg_v_str(obj, path, "user_id", &rule_id, &t->user_id, errstr, n) ||
      !tg_v_str(obj, path, "tag", &rule_tag, &t->tag, errstr, n) ||
      !tg_v_str(obj, path, "text", &rule_text, &t->text, errstr, n) ||
      !check_time(obj, path, "start_time", &t->start_time, &t->start_ms, errstr, n) ||
      !check_time(obj, path, "end_time", &t->end_time, &t->end_ms, errstr, n) ||
      !tg_v_int(obj, path, "driving_seconds", true, 0, TG_MAX_DRIVING_SECONDS,
                &t->driving_seconds, errstr, n) ||
      !tg_v_num(obj, path, "distance_km", true, 0, TG_MAX_DISTANCE_KM, &t->distance_km, errstr,
                n) ||
      !check_place(obj, path, "origin", &t->origin, errstr, n) ||
      !check_place(obj, path, "destination", &t->destination, errstr, n) ||
      !check_via(obj, path, t, errstr, n) ||
      !tg_v_child(obj, path, "vehicle", JSON_OBJECT, true, false, &veh, errstr, n) ||
      !tg_v_keys(veh, vp, vehicle_keys, errstr, n) ||
      !tg_v_str(veh, vp, "model", &rule_name, &t->vehicle.model, errstr, n) ||
      !tg_v_str(veh, vp, "color", &rule_short, &t->vehicle.color, errstr, n) ||
      !tg_v_str(veh, vp, "generation", &rule_short, &t->vehicle.generation, errstr, n) ||
      !tg_v_str(obj, path, "team", &rule_team, &t->team, errstr, n) ||
      !tg_v_str(obj, path, "style", &rule_style, &t->style, errstr, n) ||
      !tg_v_str(obj, path, "locale", &rule_locale, &t->locale, errstr, n))
    goto err;
  char p[128];
  if (t->end_ms <= t->start_ms) {
    snprintf(errstr, n, "%s: must be after start_time", tg_path_join(p, sizeof(p), path, "end_time"));
    goto err;
  }
  if (t->driving_seconds * 1000 > t->end_ms - t->start_ms) {
    snprintf(errstr, n, "%s: %lld s is longer than the trip (%lld s from start to end)",
             tg_path_join(p, sizeof(p), path, "driving_seconds"), (long long)t->driving_seconds,
             (long long)((t->end_ms - t->start_ms) / 1000));
    goto err;
  }
  t->json = json_incref(obj);
  return t;
err:
  free(t);
  return NULL;
}

tg_trip_t *tg_trip_parse(const char *data, size_t len, char *errstr, size_t n) {
  json_t *root;
  if (!tg_json_load(data, len, TG_MAX_PAYLOAD_BYTES, &root, errstr, n))
    return NULL;
  tg_trip_t *t = tg_trip_from_json(root, "", errstr, n);
  json_decref(root);
  return t;
}

void tg_trip_destroy(tg_trip_t *trip) {
  if (!trip)
    return;
  json_decref(trip->json);
  free(trip);
}
