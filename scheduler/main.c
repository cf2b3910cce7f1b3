/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - tripgen-scheduler entry point. Only --help and --version exist yet:
 * the scheduler itself is built by a later issue (see README, "Roadmap").
 */
#include "tg_config.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("tripgen-scheduler %s\n", TG_VERSION);
    return 0;
  }
  fprintf(argc > 1 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
          "usage: tripgen-scheduler [--help] [--version]\n"
          "tripgen-scheduler is not implemented yet in this version.\n");
  return argc > 1 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
}
