/* SPDX-License-Identifier: Apache-2.0 */
/*
 * comfyui_int.h - what the ComfyUI backend's files share: the backend's
 * state (one site per ComfyUI base URL, each with its breaker and its jobs
 * in flight), one paint attempt, the HTTP calls (comfyui_call.c) and the
 * WebSocket follower (comfyui_ws.c). Not for use outside diffusion/.
 */
#ifndef TG_COMFYUI_INT_H
#define TG_COMFYUI_INT_H

#include "diffusion.h"
#include "http_client.h"
#include "provider/api_call.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define CF_MAX_SITES 16
#define CF_MAX_API_RESPONSE (4 << 20)
#define CF_NODE_ID 32

/* "<node id>.<input>" of a bound workflow input */
struct cf_binding {
  char node[CF_NODE_ID];
  char input[32];
};

/* One ComfyUI server (one GPU). */
struct cf_site {
  char base[TG_CONF_STR];   /* scheme://host[:port][/path], no trailing slash */
  char host[256];           /* without IPv6 brackets */
  int port;
  bool ssl;
  char path[256];           /* the base URL's path, "" or "/prefix" */
  int inflight;             /* paints using it now (under the backend's lock) */
  tg_breaker_t *breaker;
  struct tg_provider prov;  /* name "comfyui", this site's breaker */
};

struct comfyui {
  struct cf_site sites[CF_MAX_SITES];
  int n_sites;
  int slots;                /* comfyui.slots: paints per site at once */
  unsigned next;            /* round robin among equally loaded sites */
  pthread_mutex_t lock;
  pthread_cond_t freed;     /* a site's slot came free (CLOCK_MONOTONIC) */
  json_t *workflow;         /* the template, never modified */
  struct cf_binding prompt, negative, seed, width, height, prefix;
  bool has_prefix;          /* comfyui.bind.prefix set */
  char ws_node[CF_NODE_ID]; /* a SaveImageWebsocket node's id, "" when none */
  bool follow_ws;
  char output_dir[TG_CONF_STR]; /* "" = ComfyUI's output folder is not mounted here */
  int64_t poll_ms;
  int64_t http_timeout_ms;
  int http_retries;
  int64_t max_image_bytes;
};

/* One paint attempt on one site. */
struct cf_job {
  struct comfyui *c;
  struct cf_site *site;
  const struct tg_diffusion_req *req;
  const char *rid;          /* the job's request_id, for logs */
  char client_id[96];       /* "tripgen-<random>": the POST's client_id = the socket's clientId */
  char prefix[256];         /* filename_prefix with this attempt's nonce */
  char prompt_id[96];
};

/* An image of the job's history outputs. */
struct cf_image {
  char filename[256];
  char subfolder[256];
  char type[32];
};

/* --- comfyui_call.c --- */

/**
 * cf_http() - one call whose answer the caller reads itself
 * @j:        the attempt (site, request_id, deadline)
 * @what:     "prompt", "history", ...: logs and messages
 * @method:   "GET" or "POST"
 * @path:     from the site's base, e.g. "/prompt"
 * @body:     JSON body or NULL
 * @max:      the largest answer taken
 * @deadline: monotonic ms; 0 = the job's
 * @retries:  retries of no answer and 5xx (backoff from 200 ms)
 * @resp:     out: the answer (free its body)
 * @err:      on failure: diffusion_failed, retryable
 *
 * Behind the site's breaker; every attempt is counted in the provider
 * metrics. Return: true with any answer below 500.
 */
bool cf_http(struct cf_job *j, const char *what, const char *method, const char *path,
             const char *body, size_t max, int64_t deadline, int retries,
             struct tg_http_resp *resp, struct tg_stage_error *err);

/**
 * cf_submit() - POST /prompt with the bound workflow and the attempt's client_id
 * @j:   the attempt; prompt_id is set on success
 * @err: a refused workflow (400) is not retryable, with ComfyUI's own words
 *
 * Return: true when queued.
 */
bool cf_submit(struct cf_job *j, struct tg_stage_error *err);

/**
 * cf_poll() - poll /history/{prompt_id} until the job ends or the deadline
 * @j:      the attempt
 * @entry:  out: the job's history entry (caller json_decref()s) on success
 * @err:    an execution error (ComfyUI's message), or the deadline passed
 * @late:   out: true when the failure is the deadline (the job may still live)
 *
 * Return: true when the job finished successfully.
 */
bool cf_poll(struct cf_job *j, json_t **entry, struct tg_stage_error *err, bool *late);

/**
 * cf_history() - GET /history/{prompt_id} once
 * @j:     the attempt
 * @entry: out: the entry, NULL while the job is not finished
 * @err:   on failure
 *
 * Return: true when ComfyUI answered.
 */
bool cf_history(struct cf_job *j, json_t **entry, struct tg_stage_error *err);

/**
 * cf_entry_failed() - whether a history entry is a failed job
 * @entry: the entry
 * @why:   out: ComfyUI's message (execution_error), "execution interrupted", ...
 * @n:     its size
 *
 * Return: true when the status says error.
 */
bool cf_entry_failed(json_t *entry, char *why, size_t n);

/**
 * cf_first_image() - the first image of a history entry's outputs
 * @entry: the entry
 * @img:   out
 *
 * Return: true when there is one.
 */
bool cf_first_image(json_t *entry, struct cf_image *img);

/**
 * cf_fetch() - GET /view of an image
 * @j:     the attempt
 * @img:   the image
 * @image: out: its bytes
 * @err:   on failure
 *
 * Return: true with the bytes.
 */
bool cf_fetch(struct cf_job *j, const struct cf_image *img, struct tg_blob *image,
              struct tg_stage_error *err);

/**
 * cf_cancel() - give up a job ComfyUI may still hold: interrupt it when it
 * is the one running (POST /interrupt {"prompt_id"}), else delete it from
 * the queue; nothing when it is in neither. Best effort, bounded.
 * @j: the attempt
 */
void cf_cancel(struct cf_job *j);

/**
 * cf_cleanup() - delete the files this attempt saved from the locally
 * mounted output folder (comfyui.output_dir): the entry's output images
 * whose names start with the attempt's prefix, paths validated
 * @j:     the attempt
 * @entry: its history entry
 */
void cf_cleanup(struct cf_job *j, json_t *entry);

/* --- comfyui_ws.c --- */

typedef struct cf_ws cf_ws_t;

/* How following over the socket ended. */
enum cf_ws_end {
  CF_WS_DONE = 0,   /* ComfyUI finished our prompt (success) */
  CF_WS_FAILED,     /* execution_error / execution_interrupted: message filled */
  CF_WS_CLOSED,     /* the socket went away first: poll /history instead */
  CF_WS_LATE,       /* the deadline passed */
};

/**
 * cf_ws_global_init() - civetweb's library set-up, once per process
 * @ssl: initialise TLS too
 */
void cf_ws_global_init(bool ssl);

/**
 * cf_ws_open() - connect to the site's /ws?clientId= and wait for the
 * server's first status message (the socket is then registered)
 * @j:   the attempt (site, client_id, deadline)
 * @why: out: why not
 * @n:   its size
 *
 * Return: the follower, or NULL (then poll).
 */
cf_ws_t *cf_ws_open(struct cf_job *j, char *why, size_t n);

/**
 * cf_ws_wait() - wait for the prompt to end, the socket to close or the deadline
 * @w:         the follower
 * @prompt_id: our prompt
 * @deadline:  monotonic ms
 * @msg:       out: the failure's message (CF_WS_FAILED, or an image over the cap)
 * @n:         its size
 * @retryable: out: for CF_WS_FAILED
 *
 * Return: how it ended.
 */
enum cf_ws_end cf_ws_wait(cf_ws_t *w, const char *prompt_id, int64_t deadline, char *msg,
                          size_t n, bool *retryable);

/**
 * cf_ws_take_image() - the image our SaveImageWebsocket node sent, if any
 * @w:     the follower
 * @image: out: the bytes (ownership passes)
 *
 * Return: true when one came.
 */
bool cf_ws_take_image(cf_ws_t *w, struct tg_blob *image);

/**
 * cf_ws_close() - close the socket and free (NULL-safe)
 * @w: the follower
 */
void cf_ws_close(cf_ws_t *w);

#endif
