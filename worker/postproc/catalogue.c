/* SPDX-License-Identifier: Apache-2.0 */
/*
 * catalogue.c - the asset catalogue (catalogue.h, docs/assets.md): strict
 * parsing of catalogue.json, path checks that keep every file inside the
 * assets directory, decoding of every image once at load (a file listed
 * twice is decoded once), the per-model default-colour rule, and the
 * lookup with its fallbacks exact -> model_color -> default_color -> none.
 */
#include "catalogue.h"

#include "tg_json.h"
#include "tg_limits.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CATALOGUE_MAX_JSON (1u << 20) /* catalogue.json bytes */
#define CATALOGUE_MAX_VEHICLES 4096

struct cat_image {
  char *file; /* as written in the catalogue */
  struct tg_rgba_image img;
};

struct cat_vehicle {
  char *model;      /* trimmed */
  char *color;      /* trimmed */
  char *generation; /* trimmed; NULL when the entry has none */
  bool default_color;
  size_t image;     /* index into images */
};

struct tg_catalogue_s {
  char root[PATH_MAX]; /* the assets directory, symlinks resolved */
  struct cat_image *images;
  size_t n_images;
  size_t logo;
  struct cat_vehicle *vehicles;
  size_t n_vehicles;
};

static const char *const root_keys[] = {"version", "logo", "vehicles", NULL};
static const char *const vehicle_keys[] = {"model", "color", "generation", "file",
                                           "default_color", NULL};

/* ASCII white space or U+3000 (ideographic space) at @s, else 0 */
static size_t space_len(const char *s, size_t len) {
  unsigned char c = (unsigned char)s[0];
  if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
    return 1;
  if (len >= 3 && c == 0xE3 && (unsigned char)s[1] == 0x80 && (unsigned char)s[2] == 0x80)
    return 3;
  return 0;
}

/* @s without leading and trailing white space: start in *out, length returned */
static size_t trim(const char *s, const char **out) {
  size_t len = strlen(s), k;
  while (len > 0 && (k = space_len(s, len)) > 0) {
    s += k;
    len -= k;
  }
  while (len > 0) {
    if (space_len(s + len - 1, 1) == 1)
      len--;
    else if (len >= 3 && space_len(s + len - 3, 3) == 3)
      len -= 3;
    else
      break;
  }
  *out = s;
  return len;
}

static int fold(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* whether @a (@alen bytes, trimmed) names @stored (trimmed, NUL-terminated) */
static bool name_eq(const char *a, size_t alen, const char *stored) {
  size_t i;
  for (i = 0; i < alen; i++)
    if (stored[i] == '\0' || fold((unsigned char)a[i]) != fold((unsigned char)stored[i]))
      return false;
  return stored[alen] == '\0';
}

/* two stored names (or two absent generations) equal under name_eq() */
static bool names_eq(const char *a, const char *b) {
  if (!a || !b)
    return a == b;
  return name_eq(a, strlen(a), b);
}

static void free_all(tg_catalogue_t *cat) {
  size_t i;
  for (i = 0; i < cat->n_images; i++) {
    free(cat->images[i].file);
    tg_rgba_free(&cat->images[i].img);
  }
  for (i = 0; i < cat->n_vehicles; i++) {
    free(cat->vehicles[i].model);
    free(cat->vehicles[i].color);
    free(cat->vehicles[i].generation);
  }
  free(cat->images);
  free(cat->vehicles);
  free(cat);
}

void tg_catalogue_destroy(tg_catalogue_t *cat) {
  if (cat)
    free_all(cat);
}

/* lexical checks of a catalogue-relative path; the reason in @why */
static bool rel_path_ok(const char *rel, char *why, size_t n) {
  const char *p = rel, *slash;
  size_t i, clen;
  if (!*rel) {
    snprintf(why, n, "empty path");
    return false;
  }
  if (strlen(rel) > TG_CATALOGUE_MAX_FILE) {
    snprintf(why, n, "path longer than %d bytes", TG_CATALOGUE_MAX_FILE);
    return false;
  }
  if (rel[0] == '/') {
    snprintf(why, n, "'%s' is absolute; paths are relative to the catalogue", rel);
    return false;
  }
  for (i = 0; rel[i]; i++) {
    if ((unsigned char)rel[i] < 0x20 || rel[i] == 0x7f || rel[i] == '\\') {
      snprintf(why, n, "'%s' contains a control character or backslash", rel);
      return false;
    }
  }
  for (;;) {
    slash = strchr(p, '/');
    clen = slash ? (size_t)(slash - p) : strlen(p);
    if (clen == 2 && p[0] == '.' && p[1] == '.') {
      snprintf(why, n, "'%s' leaves the catalogue directory ('..')", rel);
      return false;
    }
    if (clen == 0 || (clen == 1 && p[0] == '.')) {
      snprintf(why, n, "'%s' has an empty or '.' component", rel);
      return false;
    }
    if (!slash)
      return true;
    p = slash + 1;
  }
}

/*
 * The image of catalogue path @rel, decoded now unless an earlier entry
 * named the same file. @field names the entry in errors.
 */
static bool add_image(tg_catalogue_t *cat, const char *field, const char *rel, bool cutout,
                      int64_t max_bytes, size_t *index, char *errstr, size_t n) {
  char full[PATH_MAX + TG_CATALOGUE_MAX_FILE + 2], real[PATH_MAX], why[512];
  size_t i, rootlen = strlen(cat->root), npix;
  struct cat_image *grown, *im;
  struct stat st;
  tg_err_t err;
  for (i = 0; i < cat->n_images; i++) {
    if (strcmp(cat->images[i].file, rel) == 0) {
      im = &cat->images[i];
      goto check_cutout;
    }
  }
  if (!rel_path_ok(rel, why, sizeof(why))) {
    snprintf(errstr, n, "%s: %s", field, why);
    return false;
  }
  snprintf(full, sizeof(full), "%s/%s", cat->root, rel);
  if (!realpath(full, real)) {
    if (errno == ENOENT || errno == ENOTDIR)
      snprintf(errstr, n, "%s: '%s': no such file in the catalogue directory", field, rel);
    else
      snprintf(errstr, n, "%s: '%s': %s", field, rel, strerror(errno));
    return false;
  }
  if (strncmp(real, cat->root, rootlen) != 0 || real[rootlen] != '/') {
    snprintf(errstr, n, "%s: '%s' resolves outside the catalogue directory", field, rel);
    return false;
  }
  if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(errstr, n, "%s: '%s' is not a regular file", field, rel);
    return false;
  }
  grown = realloc(cat->images, (cat->n_images + 1) * sizeof(*grown));
  if (!grown) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  cat->images = grown;
  im = &cat->images[cat->n_images];
  memset(im, 0, sizeof(*im));
  err = tg_rgba_load_png(real, max_bytes, &im->img, why, sizeof(why));
  if (err != TG_OK) { /* the loader's message names the file */
    snprintf(errstr, n, "%s: %s", field, why);
    return false;
  }
  im->file = strdup(rel);
  if (!im->file) {
    tg_rgba_free(&im->img);
    snprintf(errstr, n, "out of memory");
    return false;
  }
  cat->n_images++;
check_cutout:
  if (cutout) {
    npix = (size_t)im->img.width * (size_t)im->img.height;
    for (i = 0; i < npix; i++)
      if (im->img.rgba[4 * i + 3] != 255)
        break;
    if (i == npix) {
      snprintf(errstr, n, "%s: '%s' has no transparent pixels; a cutout needs an alpha channel",
               field, rel);
      return false;
    }
  }
  *index = (size_t)(im - cat->images);
  return true;
}

/* a trimmed copy of a name field, which must not be blank */
static bool dup_name(const char *field, const char *s, char **out, char *errstr, size_t n) {
  const char *t;
  size_t len = trim(s, &t);
  if (len == 0) {
    snprintf(errstr, n, "%s: blank", field);
    return false;
  }
  *out = strndup(t, len);
  if (!*out) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  return true;
}

static bool parse_vehicle(tg_catalogue_t *cat, const json_t *obj, size_t idx, int64_t max_bytes,
                          char *errstr, size_t n) {
  static const struct tg_str_rule model_rule = {true, false, 1, TG_MAX_NAME_CHARS, TG_CS_LINE};
  static const struct tg_str_rule short_rule = {true, false, 1, TG_MAX_SHORT_CHARS, TG_CS_LINE};
  static const struct tg_str_rule gen_rule = {false, false, 1, TG_MAX_SHORT_CHARS, TG_CS_LINE};
  static const struct tg_str_rule file_rule = {true, false, 1, TG_CATALOGUE_MAX_FILE,
                                               TG_CS_LINE};
  struct cat_vehicle *v = &cat->vehicles[idx];
  const char *model = NULL, *color = NULL, *gen = NULL, *file = NULL;
  char path[48], field[64];
  snprintf(path, sizeof(path), "vehicles[%zu]", idx);
  if (!json_is_object(obj)) {
    snprintf(errstr, n, "%s: expected object, got %s", path, tg_json_type_name(obj));
    return false;
  }
  if (!tg_v_keys(obj, path, vehicle_keys, errstr, n) ||
      !tg_v_str(obj, path, "model", &model_rule, &model, errstr, n) ||
      !tg_v_str(obj, path, "color", &short_rule, &color, errstr, n) ||
      !tg_v_str(obj, path, "generation", &gen_rule, &gen, errstr, n) ||
      !tg_v_str(obj, path, "file", &file_rule, &file, errstr, n) ||
      !tg_v_bool(obj, path, "default_color", true, &v->default_color, errstr, n))
    return false;
  snprintf(field, sizeof(field), "%s.model", path);
  if (!dup_name(field, model, &v->model, errstr, n))
    return false;
  snprintf(field, sizeof(field), "%s.color", path);
  if (!dup_name(field, color, &v->color, errstr, n))
    return false;
  snprintf(field, sizeof(field), "%s.generation", path);
  if (gen && !dup_name(field, gen, &v->generation, errstr, n))
    return false;
  snprintf(field, sizeof(field), "%s.file", path);
  return add_image(cat, field, file, true, max_bytes, &v->image, errstr, n);
}

/* no duplicate (model, colour, generation); exactly one default colour per model */
static bool check_rules(const tg_catalogue_t *cat, char *errstr, size_t n) {
  size_t i, j, defaults;
  for (i = 0; i < cat->n_vehicles; i++) {
    const struct cat_vehicle *a = &cat->vehicles[i];
    bool first_of_model = true;
    defaults = 0;
    for (j = 0; j < cat->n_vehicles; j++) {
      const struct cat_vehicle *b = &cat->vehicles[j];
      if (!names_eq(a->model, b->model))
        continue;
      if (j < i)
        first_of_model = false;
      if (b->default_color)
        defaults++;
      if (j > i && names_eq(a->color, b->color) && names_eq(a->generation, b->generation)) {
        snprintf(errstr, n, "vehicles[%zu] repeats vehicles[%zu] (model '%s', color '%s'%s%s%s)",
                 j, i, a->model, a->color, a->generation ? ", generation '" : "",
                 a->generation ? a->generation : "", a->generation ? "'" : "");
        return false;
      }
    }
    if (!first_of_model)
      continue;
    if (defaults == 0) {
      snprintf(errstr, n,
               "model '%s' has no default colour (set \"default_color\": true on one of its "
               "entries)", a->model);
      return false;
    }
    if (defaults > 1) {
      snprintf(errstr, n, "model '%s' has %zu default colours; exactly one entry may set "
               "\"default_color\": true", a->model, defaults);
      return false;
    }
  }
  return true;
}

static bool parse_root(tg_catalogue_t *cat, const json_t *root, int64_t max_bytes, char *errstr,
                       size_t n) {
  static const struct tg_str_rule file_rule = {true, false, 1, TG_CATALOGUE_MAX_FILE,
                                               TG_CS_LINE};
  const char *logo = NULL;
  json_t *arr = NULL;
  int64_t version = 0;
  size_t i, count;
  if (!json_is_object(root)) {
    snprintf(errstr, n, "expected an object, got %s", tg_json_type_name(root));
    return false;
  }
  if (!tg_v_keys(root, "", root_keys, errstr, n) ||
      !tg_v_int(root, "", "version", true, INT64_MIN, INT64_MAX, &version, errstr, n))
    return false;
  if (version != 1) {
    snprintf(errstr, n, "version: %lld is not supported (this worker reads version 1)",
             (long long)version);
    return false;
  }
  if (!tg_v_str(root, "", "logo", &file_rule, &logo, errstr, n) ||
      !add_image(cat, "logo", logo, false, max_bytes, &cat->logo, errstr, n) ||
      !tg_v_child(root, "", "vehicles", JSON_ARRAY, true, false, &arr, errstr, n))
    return false;
  count = json_array_size(arr);
  if (count == 0) {
    snprintf(errstr, n, "vehicles: empty (list at least one cutout, or turn postproc.vehicle "
             "off)");
    return false;
  }
  if (count > CATALOGUE_MAX_VEHICLES) {
    snprintf(errstr, n, "vehicles: %zu entries, at most %d", count, CATALOGUE_MAX_VEHICLES);
    return false;
  }
  cat->vehicles = calloc(count, sizeof(*cat->vehicles));
  if (!cat->vehicles) {
    snprintf(errstr, n, "out of memory");
    return false;
  }
  for (i = 0; i < count; i++) {
    cat->n_vehicles = i + 1; /* the entry is freed with the rest if it fails */
    if (!parse_vehicle(cat, json_array_get(arr, i), i, max_bytes, errstr, n))
      return false;
  }
  return check_rules(cat, errstr, n);
}

tg_catalogue_t *tg_catalogue_load(const char *dir, int64_t max_image_bytes, char *errstr,
                                  size_t n) {
  char path[PATH_MAX + sizeof(TG_CATALOGUE_FILE) + 1], why[768];
  tg_catalogue_t *cat;
  json_t *root = NULL;
  bool ok;
  if (!dir || !*dir) {
    snprintf(errstr, n, "asset catalogue: no directory given");
    return NULL;
  }
  cat = calloc(1, sizeof(*cat));
  if (!cat) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  snprintf(path, sizeof(path), "%s/%s", dir, TG_CATALOGUE_FILE);
  if (strlen(dir) >= PATH_MAX || !realpath(dir, cat->root)) {
    snprintf(errstr, n, "asset catalogue %s: %s", dir,
             strlen(dir) >= PATH_MAX ? "path too long" : strerror(errno));
    free_all(cat);
    return NULL;
  }
  if (!tg_json_load_file(path, CATALOGUE_MAX_JSON, &root, why, sizeof(why))) {
    snprintf(errstr, n, "asset catalogue %s: %s", path, why);
    free_all(cat);
    return NULL;
  }
  ok = parse_root(cat, root, max_image_bytes, why, sizeof(why));
  json_decref(root);
  if (!ok) {
    snprintf(errstr, n, "asset catalogue %s: %s", path, why);
    free_all(cat);
    return NULL;
  }
  return cat;
}

const struct tg_rgba_image *tg_catalogue_logo(const tg_catalogue_t *cat) {
  return &cat->images[cat->logo].img;
}

static const struct tg_rgba_image *chose(const tg_catalogue_t *cat, const struct cat_vehicle *v,
                                         const char *how, struct tg_vehicle_choice *choice) {
  if (choice) {
    choice->file = v ? cat->images[v->image].file : "";
    choice->how = how;
  }
  return v ? &cat->images[v->image].img : NULL;
}

const struct tg_rgba_image *tg_catalogue_vehicle(const tg_catalogue_t *cat, const char *model,
                                                 const char *color, const char *generation,
                                                 struct tg_vehicle_choice *choice) {
  const struct cat_vehicle *v, *any_gen = NULL, *no_gen = NULL, *def = NULL;
  const char *m = NULL, *c = NULL, *g = NULL;
  size_t mlen = model ? trim(model, &m) : 0;
  size_t clen = color ? trim(color, &c) : 0;
  size_t glen = generation ? trim(generation, &g) : 0;
  size_t i;
  if (mlen == 0)
    return chose(cat, NULL, "none", choice);
  for (i = 0; i < cat->n_vehicles; i++) {
    v = &cat->vehicles[i];
    if (!name_eq(m, mlen, v->model))
      continue;
    if (v->default_color && !def)
      def = v;
    if (clen == 0 || !name_eq(c, clen, v->color))
      continue;
    if (glen == 0 ? !v->generation : (v->generation && name_eq(g, glen, v->generation)))
      return chose(cat, v, "exact", choice);
    if (!v->generation && !no_gen)
      no_gen = v;
    if (!any_gen)
      any_gen = v;
  }
  if (no_gen || any_gen)
    return chose(cat, no_gen ? no_gen : any_gen, "model_color", choice);
  if (def)
    return chose(cat, def, "default_color", choice);
  return chose(cat, NULL, "none", choice);
}
