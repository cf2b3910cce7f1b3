/* SPDX-License-Identifier: Apache-2.0 */
/*
 * limits.c - the table of bounds that `tripgen limits` prints and the
 * README documents; the values come from the constants in tg_limits.h.
 */
#include "tg_limits.h"

static const struct tg_limit limits[] = {
  {"payload_bytes", TG_MAX_PAYLOAD_BYTES, "bytes", "one trip, job or put body"},
  {"result_bytes", TG_MAX_RESULT_BYTES, "bytes", "one serialised result"},
  {"json_depth", TG_MAX_JSON_DEPTH, "levels", "nesting of objects and arrays"},
  {"id_chars", TG_MAX_ID_CHARS, "chars", "trip_id, user_id, idempotency_key"},
  {"request_id_chars", TG_MAX_REQUEST_ID_CHARS, "chars", "request_id ([A-Za-z0-9_-])"},
  {"env_chars", TG_MAX_ENV_CHARS, "chars", "environment name ([a-z][a-z0-9-]*)"},
  {"tag_chars", TG_MAX_TAG_CHARS, "chars", "tag"},
  {"text_chars", TG_MAX_TEXT_CHARS, "chars", "mood text"},
  {"address_chars", TG_MAX_ADDRESS_CHARS, "chars", "origin/destination address"},
  {"name_chars", TG_MAX_NAME_CHARS, "chars", "city, via city, vehicle model, team"},
  {"short_chars", TG_MAX_SHORT_CHARS, "chars", "weather, vehicle colour and generation, style"},
  {"locale_chars", TG_MAX_LOCALE_CHARS, "chars", "locale (BCP 47)"},
  {"via_cities", TG_MAX_VIA_CITIES, "entries", "via_cities"},
  {"variants", TG_MAX_VARIANTS, "entries", "options.variants"},
  {"variant_chars", TG_MAX_VARIANT_CHARS, "chars", "one variant name"},
  {"image_side_min", TG_MIN_IMAGE_SIDE, "pixels", "options.size width and height, lower bound"},
  {"image_side_max", TG_MAX_IMAGE_SIDE, "pixels", "options.size width and height, upper bound"},
  {"image_pixels", TG_MAX_IMAGE_PIXELS, "pixels", "options.size width x height"},
  {"distance_km", TG_MAX_DISTANCE_KM, "km", "distance_km"},
  {"driving_seconds", TG_MAX_DRIVING_SECONDS, "seconds", "driving_seconds"},
  {"attempt", TG_MAX_ATTEMPT, "attempts", "job attempt number"},
  {"generation", TG_MAX_GENERATION, "replays", "job generation (dead-letter replays)"},
  {"queue_length_max", TG_MAX_QUEUE_LENGTH, "entries", "largest configurable input queue cap"},
  {"queue_length_default", TG_DEFAULT_QUEUE_LENGTH, "entries", "default input queue cap (put beyond it: queue full)"},
  {"error_message_chars", TG_MAX_ERROR_MESSAGE_CHARS, "chars", "error.message of a result"},
  {"prompt_chars", TG_MAX_PROMPT_CHARS, "chars", "prompt and negative_prompt of a result"},
};

const struct tg_limit *tg_limits_table(size_t *n) {
  *n = sizeof(limits) / sizeof(limits[0]);
  return limits;
}
