/* SPDX-License-Identifier: Apache-2.0 */
/*
 * check.h - the check macros of tripgen's C tests.
 *
 * A failed CHECK prints file:line and the expression and counts the failure;
 * the test goes on, so one run reports every failure. RUN() names each test
 * function ok or FAIL. A test ends with `return check_done(name);` (or
 * check_exit()): exit status 1 when anything failed.
 */
#ifndef TG_CHECK_H
#define TG_CHECK_H

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

#define RUN(test)                                                                    \
  do {                                                                               \
    int before_ = check_failures;                                                    \
    test();                                                                          \
    fprintf(stderr, "%s %s\n", check_failures == before_ ? "ok  " : "FAIL", #test);  \
  } while (0)

static inline int check_done(const char *name) {
  fprintf(stderr, "%s: %d checks, %d failed\n", name, check_count, check_failures);
  return check_failures ? 1 : 0;
}

static inline int check_exit(void) { return check_failures ? 1 : 0; }

#endif
