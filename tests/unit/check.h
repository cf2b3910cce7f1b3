/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h - the unit tests' tiny check macros.
 *
 * A failed CHECK prints file:line and the expression and counts the failure;
 * the test goes on, so one run reports every failure. CHECK_BUG marks a check
 * that a known defect of proto/ makes fail, with a note saying where. A test
 * ends with `return check_done();`: exit status 1 when anything failed.
 */
#ifndef TG_UNIT_CHECK_H
#define TG_UNIT_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(expr)                                                                  \
  do {                                                                               \
    check_count++;                                                                   \
    if (!(expr)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);      \
      check_failures++;                                                              \
    }                                                                                \
  } while (0)

/* like CHECK, with a printf-style line of context on failure */
#define CHECK_MSG(expr, ...)                                                         \
  do {                                                                               \
    check_count++;                                                                   \
    if (!(expr)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n    ", __FILE__, __LINE__, #expr);  \
      fprintf(stderr, __VA_ARGS__);                                                  \
      fputc('\n', stderr);                                                           \
      check_failures++;                                                              \
    }                                                                                \
  } while (0)

/* string equality; NULL only equals NULL */
#define CHECK_STREQ(a, b)                                                            \
  do {                                                                               \
    const char *check_a_ = (a), *check_b_ = (b);                                     \
    check_count++;                                                                   \
    if (!(check_a_ == check_b_ ||                                                    \
          (check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0))) {              \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s\n    got \"%s\", want \"%s\"\n", \
              __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",           \
              check_b_ ? check_b_ : "(null)");                                       \
      check_failures++;                                                              \
    }                                                                                \
  } while (0)

/* a check that fails because of a known defect in proto/ (see the note) */
#define CHECK_BUG(expr, note)                                                        \
  do {                                                                               \
    check_count++;                                                                   \
    if (!(expr)) {                                                                   \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n    PROTO BUG: %s\n", __FILE__,      \
              __LINE__, #expr, note);                                                \
      check_failures++;                                                              \
    }                                                                                \
  } while (0)

static inline int check_done(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

#endif
