/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker.h - tripgen-worker: consume jobs of one environment, run them
 * through the staged pipeline (prompt → diffusion → postproc → upload),
 * publish the result and ack — or retry, dead-letter, or fail them — and
 * drain on SIGTERM.
 */
#ifndef TG_WORKER_H
#define TG_WORKER_H

#include "config.h"
#include "tg_trip.h"

#include <signal.h>

struct tg_prompt_ops;
struct tg_diffusion_ops;
struct tg_postproc_ops;
struct tg_storage_ops;

typedef struct tg_worker_s tg_worker_t;

/* The four stage backends of a worker, when not the ones its config names. */
struct tg_stage_set {
  const char *name;                        /* for the start-up log line */
  const struct tg_prompt_ops *prompt;
  const struct tg_diffusion_ops *diffusion;
  const struct tg_postproc_ops *postproc;
  const struct tg_storage_ops *storage;
};

#define TG_WORKER_HANDED_BACK 3

/**
 * tg_worker_new() - create the stage backends; connect to the queue
 * @conf:   validated configuration (copied)
 * @stages: the stage backends; NULL: those the config names
 * @queue:  false for --once and --check-config (no queue connection)
 * @errstr: reason on failure
 * @n:      its size
 *
 * Return: the worker, or NULL.
 */
tg_worker_t *tg_worker_new(const struct tg_worker_conf *conf, const struct tg_stage_set *stages,
                           bool queue, char *errstr, size_t n);

/**
 * tg_worker_main() - the tripgen-worker command line (--help lists it)
 * @argc:   as main()'s
 * @argv:   as main()'s
 * @stages: the stage backends; NULL: those the config names
 *
 * Return: the process exit code.
 */
int tg_worker_main(int argc, char **argv, const struct tg_stage_set *stages);

/**
 * tg_worker_run() - serve until *stop becomes non-zero, then drain
 * @w:    the worker
 * @stop: set by the signal handler
 *
 * Return: 0 after a clean drain, 1 on a fatal error, TG_WORKER_HANDED_BACK
 * when jobs were handed back while stage threads were still inside remote
 * calls: then the process must exit at once (no tg_worker_destroy()).
 */
int tg_worker_run(tg_worker_t *w, volatile sig_atomic_t *stop);

/**
 * tg_worker_broken() - whether tg_worker_run() stopped because the queue
 * transport failed for good (the process should exit 1 and be restarted)
 * @w: the worker
 *
 * Return: true then.
 */
bool tg_worker_broken(tg_worker_t *w);

/**
 * tg_worker_once() - one trip through the pipeline without a queue
 * @w:    the worker (created with queue == false)
 * @trip: the trip (ownership passes to the worker)
 * @out:  set to the result JSON (malloc()ed)
 *
 * Return: 0 when the result succeeded, 1 when it failed.
 */
int tg_worker_once(tg_worker_t *w, tg_trip_t *trip, char **out);

/**
 * tg_worker_destroy() - free (NULL-safe)
 * @w: the worker
 */
void tg_worker_destroy(tg_worker_t *w);

#endif
