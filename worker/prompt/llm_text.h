/* SPDX-License-Identifier: Apache-2.0 */
/*
 * llm_text.h - the text an LLM prompt backend (DashScope qwen, any
 * OpenAI-compatible endpoint) sends and gets back: the trip rendered as a
 * readable user message, and the model's answer cleaned into a painting
 * prompt (no code fences, quotes or "Prompt:" labels, bounded, not empty).
 * The system prompt is a file (deploy/prompts/trip-painter-system.txt).
 */
#ifndef TG_LLM_TEXT_H
#define TG_LLM_TEXT_H

#include "tg_trip.h"

#include <stdbool.h>
#include <stddef.h>

/**
 * tg_llm_user_message() - the trip as the user message of a chat call
 * @trip: the trip
 *
 * One labelled line per field: origin and destination (address, city,
 * weather), via cities, start and end times as given, driving time,
 * distance, vehicle, mood text and tag, team, style and locale when set.
 * The trip and user ids are left out: the model has no use for them.
 *
 * Return: malloc()ed text, or NULL when out of memory.
 */
char *tg_llm_user_message(const tg_trip_t *trip);

/**
 * tg_llm_clean_prompt() - a model's answer made into a painting prompt
 * @raw:       the answer
 * @max_chars: most characters (code points) kept; longer text is cut at the
 *             last comma or space in its final fifth, else at a character
 * @out:       set to the malloc()ed prompt
 * @why:       why there is none
 * @n:         its size
 *
 * Removes code fences, a leading "Prompt:"-style label (English or
 * Chinese, any case, Markdown bold included), matching surrounding quotes,
 * and folds every run of whitespace into one space.
 *
 * Return: true with *out set; false when nothing is left (or out of memory).
 */
bool tg_llm_clean_prompt(const char *raw, size_t max_chars, char **out, char *why, size_t n);

#endif
