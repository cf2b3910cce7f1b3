/* SPDX-License-Identifier: Apache-2.0 */
/*
 * catalogue.h - the post-processor's asset catalogue: a directory holding
 * catalogue.json, the vehicle cutouts (RGBA PNG) listed in it by model,
 * colour and generation, and the brand logo (docs/assets.md). The whole
 * catalogue is checked and every image decoded once at load, so a broken
 * catalogue is a startup error naming the entry and file, and a job never
 * touches the disk for assets. After load the catalogue is read-only and
 * may be shared by any number of post-process threads without locking.
 */
#ifndef TG_POSTPROC_CATALOGUE_H
#define TG_POSTPROC_CATALOGUE_H

#include "raster.h"

#include <stddef.h>
#include <stdint.h>

/* Longest "file" of an entry, in bytes (fits tg_postproc_report.vehicle_asset). */
#define TG_CATALOGUE_MAX_FILE 127

/* The catalogue file inside the assets directory. */
#define TG_CATALOGUE_FILE "catalogue.json"

typedef struct tg_catalogue_s tg_catalogue_t;

/* Which cutout a lookup chose, and how (recorded in the job's result). */
struct tg_vehicle_choice {
  const char *file; /* catalogue-relative path ("vehicles/es6-black.png"), "" when none */
  const char *how;  /* "exact", "model_color", "default_color" or "none" (static) */
};

/**
 * tg_catalogue_load() - read, check and decode an asset catalogue
 * @dir:             the assets directory (holds catalogue.json)
 * @max_image_bytes: largest PNG file accepted (0: only the pixel limits)
 * @errstr:          on failure, the reason, naming the catalogue and the
 *                   entry or file at fault ("deploy/assets/catalogue.json:
 *                   vehicles[3].file: ...")
 * @n:               its size
 *
 * The JSON is parsed strictly (unknown keys, duplicate keys and wrong types
 * are errors). Every file must be a relative path that stays inside @dir
 * (no "..", not absolute, not through a symlink leading out), name a
 * regular file and decode as a PNG; vehicle cutouts must have transparent
 * pixels. Each model needs exactly one entry with "default_color": true,
 * and no two entries may share model, colour and generation. Names are
 * stored trimmed.
 *
 * Return: the catalogue (free with tg_catalogue_destroy()), or NULL with
 * the reason in @errstr.
 */
tg_catalogue_t *tg_catalogue_load(const char *dir, int64_t max_image_bytes, char *errstr,
                                  size_t n);

/**
 * tg_catalogue_destroy() - free a catalogue and its images (NULL-safe)
 * @cat: the catalogue
 */
void tg_catalogue_destroy(tg_catalogue_t *cat);

/**
 * tg_catalogue_logo() - the brand logo
 * @cat: the catalogue
 *
 * Return: the decoded logo, owned by @cat.
 */
const struct tg_rgba_image *tg_catalogue_logo(const tg_catalogue_t *cat);

/**
 * tg_catalogue_vehicle() - the cutout for an owner's car
 * @cat:        the catalogue
 * @model:      the trip's vehicle.model (NULL or blank: no vehicle)
 * @color:      its vehicle.color (NULL: skip to the default colour)
 * @generation: its vehicle.generation (NULL when the trip has none)
 * @choice:     filled with the file chosen and how (may be NULL)
 *
 * Names are compared after trimming white space, ASCII letters without
 * regard to case, other characters byte for byte. In order:
 * "exact" - model, colour and generation match (an entry without a
 * generation matches a trip without one); "model_color" - model and colour
 * match, the entry without a generation first, else the first in catalogue
 * order; "default_color" - the model's default colour; "none" - the model
 * is not in the catalogue.
 *
 * Return: the cutout, owned by @cat, or NULL for "none".
 */
const struct tg_rgba_image *tg_catalogue_vehicle(const tg_catalogue_t *cat, const char *model,
                                                 const char *color, const char *generation,
                                                 struct tg_vehicle_choice *choice);

#endif
