/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tg_log.h - logfmt logging to stderr.
 *
 * Every line is `ts=... level=... src=file:line event=... key=value ...`.
 * The level is checked before the arguments are evaluated. Values that may
 * hold spaces or quotes go through tg_logq(). Never pass a secret.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stddef.h>

enum tg_log_level { TG_DEBUG = 0, TG_INFO = 1, TG_WARN = 2, TG_ERROR = 3, TG_LOG_OFF = 4 };

extern int tg_log_level;

#define tg_log(lvl, ...)                                                        \
  do {                                                                         \
    if ((lvl) >= tg_log_level)                                                 \
      tg_log_emit((lvl), __FILE__, __LINE__, __VA_ARGS__);                     \
  } while (0)

/**
 * tg_log_emit() - write one logfmt line (use the tg_log() macro)
 * @level: severity
 * @file:  source file
 * @line:  source line
 * @fmt:   printf format of the `key=value ...` part
 */
void tg_log_emit(int level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * tg_log_set_level_name() - set the level from "debug", "info", "warn", "error"
 * @name: level name (NULL keeps the current level)
 *
 * Return: 0 on success, -1 for an unknown name.
 */
int tg_log_set_level_name(const char *name);

/**
 * tg_logq() - quote a value for logfmt when it needs it
 * @buf:  scratch buffer
 * @size: its size
 * @s:    the value (NULL prints as "")
 *
 * Return: @s itself when it is safe bare, otherwise @buf holding a quoted and
 * escaped copy (cut to fit).
 */
const char *tg_logq(char *buf, size_t size, const char *s);

#endif
