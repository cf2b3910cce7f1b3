/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_json.h - strict JSON loading and field validation shared by the trip,
 * job and result codecs.
 *
 * Every check writes "<path>: <reason>" into the caller's errstr, so a
 * rejection always names the field (`origin.weather: expected string, got
 * number`). Lengths are counted in Unicode code points.
 */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * tg_json_load() - parse a JSON document strictly
 * @data:      bytes (need not be NUL-terminated)
 * @len:       their length; more than @max_bytes is refused unread
 * @max_bytes: size bound
 * @out:       set to the parsed value (caller json_decref()s it)
 * @errstr:    reason on failure
 * @n:         its size
 *
 * Rejects invalid UTF-8, duplicate object keys, NUL characters, trailing
 * data and nesting deeper than TG_MAX_JSON_DEPTH.
 *
 * Return: true on success.
 */
bool tg_json_load(const char *data, size_t len, size_t max_bytes, json_t **out,
                  char *errstr, size_t n);

/**
 * tg_json_load_file() - read and parse a JSON file strictly (tg_json_load())
 * @path:      the file
 * @max_bytes: size bound; a larger file is refused
 * @out:       the parsed value (caller json_decref()s it)
 * @errstr:    on failure, the reason (without the path: callers prefix it)
 * @n:         its size
 *
 * Return: true on success.
 */
bool tg_json_load_file(const char *path, size_t max_bytes, json_t **out, char *errstr,
                       size_t n);

/**
 * tg_json_type_name() - the JSON type of a value in words
 * @v: value (NULL for absent)
 *
 * Return: "object", "array", "string", "number" (integers too), "boolean",
 * "null" or "nothing".
 */
const char *tg_json_type_name(const json_t *v);

/**
 * tg_utf8_chars() - count code points of a valid UTF-8 string
 * @s: the string
 *
 * Return: the number of code points.
 */
size_t tg_utf8_chars(const char *s);

/* Character classes a string field may be restricted to. */
enum tg_charset {
  TG_CS_ANY = 0,     /* any text; tab, newline and carriage return allowed */
  TG_CS_LINE,        /* one line: no control characters */
  TG_CS_ID,          /* [A-Za-z0-9][A-Za-z0-9._:-]* */
  TG_CS_REQUEST_ID,  /* [A-Za-z0-9_-]+ */
  TG_CS_ENV,         /* [a-z][a-z0-9-]* */
  TG_CS_TOKEN,       /* [A-Za-z0-9_-]+ (style) */
  TG_CS_VARIANT,     /* [a-z][a-z0-9_-]* */
  TG_CS_LOCALE,      /* [A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})* */
  TG_CS_HEX64,       /* 64 lowercase hex digits */
};

/* How a string field is checked. */
struct tg_str_rule {
  bool required;     /* absent is an error */
  bool nullable;     /* null is allowed (reported as NULL) */
  size_t min_chars;
  size_t max_chars;
  enum tg_charset charset;
};

/**
 * tg_charset_ok() - whether a string matches a character class
 * @s:  the string
 * @cs: the class
 *
 * Return: true when it matches.
 */
bool tg_charset_ok(const char *s, enum tg_charset cs);

/**
 * tg_charset_describe() - the class in words for error messages
 * @cs: the class
 *
 * Return: a static string.
 */
const char *tg_charset_describe(enum tg_charset cs);

/**
 * tg_v_keys() - refuse unknown fields of an object
 * @obj:     the object
 * @path:    its path ("" for the root)
 * @allowed: NULL-terminated list of known keys
 * @errstr:  reason on failure
 * @n:       its size
 *
 * Return: true when every key is known.
 */
bool tg_v_keys(const json_t *obj, const char *path, const char *const *allowed,
               char *errstr, size_t n);

/**
 * tg_v_str() - fetch and check a string field
 * @obj:    parent object
 * @path:   parent path ("" for the root)
 * @key:    field name
 * @rule:   the checks
 * @out:    set to the borrowed string, or NULL when absent or null
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: true when the field passes.
 */
bool tg_v_str(const json_t *obj, const char *path, const char *key,
              const struct tg_str_rule *rule, const char **out, char *errstr, size_t n);

/**
 * tg_v_int() - fetch and check an integer field
 * @obj:      parent object
 * @path:     parent path
 * @key:      field name
 * @required: absent is an error (else @out keeps its value)
 * @min:      smallest allowed
 * @max:      largest allowed
 * @out:      the value
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: true when the field passes.
 */
bool tg_v_int(const json_t *obj, const char *path, const char *key, bool required,
              int64_t min, int64_t max, int64_t *out, char *errstr, size_t n);

/**
 * tg_v_num() - fetch and check a number field (integers accepted)
 * @obj:      parent object
 * @path:     parent path
 * @key:      field name
 * @required: absent is an error
 * @min:      smallest allowed
 * @max:      largest allowed
 * @out:      the value
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: true when the field passes.
 */
bool tg_v_num(const json_t *obj, const char *path, const char *key, bool required,
              double min, double max, double *out, char *errstr, size_t n);

/**
 * tg_v_bool() - fetch a boolean field
 * @obj:      parent object
 * @path:     parent path
 * @key:      field name
 * @required: absent is an error
 * @out:      the value
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: true when the field passes.
 */
bool tg_v_bool(const json_t *obj, const char *path, const char *key, bool required,
               bool *out, char *errstr, size_t n);

/**
 * tg_v_child() - fetch a field that must be an object or an array
 * @obj:      parent object
 * @path:     parent path
 * @key:      field name
 * @type:     JSON_OBJECT or JSON_ARRAY
 * @required: absent is an error
 * @nullable: null is allowed (reported as NULL)
 * @out:      the borrowed child, NULL when absent or null
 * @errstr:   reason on failure
 * @n:        its size
 *
 * Return: true when the field passes.
 */
bool tg_v_child(const json_t *obj, const char *path, const char *key, json_type type,
                bool required, bool nullable, json_t **out, char *errstr, size_t n);

/**
 * tg_path_join() - build "parent.key" (or "key" at the root)
 * @buf:    output
 * @size:   its size
 * @parent: parent path
 * @key:    field name
 *
 * Return: @buf.
 */
char *tg_path_join(char *buf, size_t size, const char *parent, const char *key);

#endif
