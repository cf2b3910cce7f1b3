/* SPDX-License-Identifier: Apache-2.0 */
/*
 * landmarks.h - a const table of Chinese cities, each with its English name
 * and one famous landmark phrased for a diffusion prompt, and the lookup
 * the template composer uses to name a place on the route. A trip's city
 * comes as written by the car platform ("上海市", "稻城县"); the lookup
 * accepts it with or without the trailing 市/县/区, and the English name.
 */
#ifndef TG_PROMPT_LANDMARKS_H
#define TG_PROMPT_LANDMARKS_H

#include <stddef.h>

/* One city. */
struct tg_landmark {
  const char *city;     /* Chinese name without suffix: "上海" */
  const char *suffix;   /* its usual administrative suffix: "市", "县" */
  const char *city_en;  /* "Shanghai" */
  const char *landmark; /* English noun phrase: "the Bund skyline along ..." */
};

/*
 * The scene used when no city on the route is in the table: a landscape
 * without a city name (city and city_en are "").
 */
extern const struct tg_landmark tg_landmark_fallback;

/**
 * tg_landmark_table() - every city the composer knows
 * @n: set to the number of rows
 *
 * Return: the rows, grouped by region; every field is non-empty.
 */
const struct tg_landmark *tg_landmark_table(size_t *n);

/**
 * tg_landmark_find() - the city of a name
 * @city: "上海市", "上海" or "Shanghai" (surrounding ASCII spaces ignored;
 *        the English name is matched without regard to ASCII case); NULL
 *        is allowed
 *
 * One trailing 市, 县 or 区 is ignored, so "稻城县" and "稻城" both match.
 *
 * Return: the row, or NULL when the city is not in the table.
 */
const struct tg_landmark *tg_landmark_find(const char *city);

#endif
