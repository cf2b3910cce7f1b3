/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_run.h - run a command line tool under test through the shell from
 * the source root and capture its stdout, stderr and exit code.
 */
#ifndef TG_CLI_RUN_H
#define TG_CLI_RUN_H

#include <stddef.h>

/* Where a run's output goes; out and err are NUL-terminated after a run. */
struct cli_run {
  const char *root;      /* directory the command runs in */
  const char *program;   /* the binary */
  const char *tmp_dir;   /* where stderr is captured on its way */
  char *out;
  size_t out_size;
  char *err;
  size_t err_size;
};

/**
 * cli_run() - run "PROGRAM ARGS" (ARGS printf-formatted, shell syntax)
 * @r:   the set-up; r->out and r->err are filled
 * @fmt: printf format of the arguments
 *
 * Return: the exit code, or -1 when it did not exit normally.
 */
int cli_run(struct cli_run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
