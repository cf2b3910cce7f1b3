/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli_run.c - cli_run(): popen() the command, read its stdout, and its
 * stderr from a file in the test's temp directory.
 */
#include "cli_run.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>

int cli_run(struct cli_run *r, const char *fmt, ...) {
  char args[1024], cmd[2048], errfile[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(errfile, sizeof(errfile), "%s/stderr.txt", r->tmp_dir);
  snprintf(cmd, sizeof(cmd), "cd '%s' && '%s' %s 2>'%s'", r->root, r->program, args, errfile);
  FILE *p = popen(cmd, "r");
  size_t n = p ? fread(r->out, 1, r->out_size - 1, p) : 0;
  r->out[n] = '\0';
  int status = p ? pclose(p) : -1;
  FILE *e = fopen(errfile, "r");
  n = e ? fread(r->err, 1, r->err_size - 1, e) : 0;
  r->err[n] = '\0';
  if (e)
    fclose(e);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
