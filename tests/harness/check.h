/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h - the assertion macros of tripgen's C tests: a failed CHECK prints
 * where and what, counts, and lets the test go on; check_exit() turns the
 * count into the exit status meson reads.
 */
#ifndef TG_CHECK_H
#define TG_CHECK_H

#include <stdio.h>

static int check_failures;

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                        \
    }                                                                          \
  } while (0)

#define CHECK_MSG(cond, ...)                                                   \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                            \
      fputc('\n', stderr);                                                     \
      check_failures++;                                                        \
    }                                                                          \
  } while (0)

#define RUN(test)                                                              \
  do {                                                                         \
    int before_ = check_failures;                                              \
    test();                                                                    \
    fprintf(stderr, "%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test); \
  } while (0)

static inline int check_exit(void) { return check_failures ? 1 : 0; }

#endif
