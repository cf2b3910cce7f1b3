/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_err.h - tripgen's two error vocabularies.
 *
 * tg_err_t is what C functions return: a small enum that tells the caller
 * what kind of thing went wrong, with the details in an errstr buffer the
 * caller passes in. tg_code_t is the wire vocabulary of DESIGN.md: the
 * `error.code` of a failed result, its EAS `lastCode`, and whether an error
 * of that code is retryable by default. The retry decision of a single
 * error instance is made from its cause and may override the default; it
 * travels in `error.retryable`.
 */
#ifndef TG_ERR_H
#define TG_ERR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  TG_OK = 0,
  TG_ERR_INVAL = -1,      /* caller bug or bad argument: never retry */
  TG_ERR_NOMEM = -2,
  TG_ERR_TRANSPORT = -3,  /* queue backend unreachable or broken: retryable */
  TG_ERR_TIMEOUT = -4,    /* retryable */
  TG_ERR_BAD_MSG = -5,    /* message fails validation: never retried */
  TG_ERR_QUEUE_FULL = -6, /* input queue at its cap (EAS 429): retry later */
  TG_ERR_NOT_FOUND = -7,  /* no such entry / result (yet) */
  TG_ERR_IO = -8,         /* local file or socket error */
  TG_ERR_TOO_LARGE = -9,  /* a size limit was exceeded */
} tg_err_t;

/**
 * tg_err2str() - short name of a function error code
 * @err: the code
 *
 * Return: a static string, never NULL.
 */
const char *tg_err2str(tg_err_t err);

/**
 * tg_err_retryable() - whether an error of this kind is worth retrying
 * @err: the code
 *
 * Return: the default for the code; a caller that knows the cause may decide
 * otherwise.
 */
bool tg_err_retryable(tg_err_t err);

/* Wire error codes of failed results (DESIGN.md, "Errors"). */
typedef enum {
  TG_CODE_INVALID_INPUT = 0,
  TG_CODE_ENV_MISMATCH,
  TG_CODE_PROMPT_FAILED,
  TG_CODE_CONTENT_REJECTED,
  TG_CODE_DIFFUSION_FAILED,
  TG_CODE_POSTPROC_FAILED,
  TG_CODE_UPLOAD_FAILED,
  TG_CODE_DEADLINE_EXCEEDED,
  TG_CODE_INTERNAL,
  TG_CODE__COUNT
} tg_code_t;

/* One row of the wire error table. */
struct tg_code_info {
  tg_code_t code;
  const char *name;     /* wire `error.code` */
  int eas_last_code;    /* EAS `lastCode` tag of the sink frame */
  bool retryable;       /* default for this code */
  const char *meaning;  /* one line for docs and --help */
};

/**
 * tg_code_table() - the wire error table
 * @n: set to the number of rows
 *
 * Return: the rows, indexed by tg_code_t.
 */
const struct tg_code_info *tg_code_table(size_t *n);

/**
 * tg_code_info() - the row of one wire code
 * @code: the code
 *
 * Return: the row; the `internal` row for an out-of-range code.
 */
const struct tg_code_info *tg_code_info(tg_code_t code);

/**
 * tg_code_from_name() - look up a wire code by its name
 * @name: e.g. "upload_failed"
 * @out:  set to the code on success
 *
 * Return: true when found.
 */
bool tg_code_from_name(const char *name, tg_code_t *out);

#endif
