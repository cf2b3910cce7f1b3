/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the shipped tripgen-worker: the command line (cli.c) with the
 * stage backends its config names.
 */
#include "worker.h"

int main(int argc, char **argv) { return tg_worker_main(argc, argv, NULL); }
