/* SPDX-License-Identifier: Apache-2.0 */
/*
 * comfyui.c - the ComfyUI diffusion backend: one site per ComfyUI base URL
 * (one per GPU), each holding at most comfyui.slots jobs and guarded by its
 * own circuit breaker. A paint takes the least busy site, fills the
 * workflow's bound inputs (the filename prefix gets a per-attempt nonce,
 * so ComfyUI's cache never hands back an old file), follows the job over
 * /ws (comfyui_ws.c) or by polling /history, and takes the image from the
 * socket (a SaveImageWebsocket workflow) or from /view, deleting the files
 * the job saved when the output folder is mounted here (comfyui_call.c).
 * Past the deadline the job is interrupted when it is the one running, or
 * deleted from ComfyUI's queue, and the paint fails retryably.
 */
#include "comfyui_int.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_WORKFLOW_BYTES (1 << 20)

static bool split_binding(const char *s, struct cf_binding *b) {
  const char *dot = strchr(s, '.');
  if (!dot || (size_t)(dot - s) >= sizeof(b->node) || strlen(dot + 1) >= sizeof(b->input))
    return false;
  snprintf(b->node, sizeof(b->node), "%.*s", (int)(dot - s), s);
  snprintf(b->input, sizeof(b->input), "%s", dot + 1);
  return true;
}

static bool check_binding(json_t *wf, const char *name, const char *spec, struct cf_binding *b,
                          char *errstr, size_t n) {
  if (!split_binding(spec, b)) {
    snprintf(errstr, n, "comfyui.bind.%s: bad binding \"%s\"", name, spec);
    return false;
  }
  json_t *inputs = json_object_get(json_object_get(wf, b->node), "inputs");
  if (!json_is_object(inputs) || !json_object_get(inputs, b->input)) {
    snprintf(errstr, n, "comfyui.bind.%s: the workflow has no input %s on node %s", name,
             b->input, b->node);
    return false;
  }
  return true;
}

/* "scheme://[user@]host[:port][/path]" into a site. */
static bool parse_site(const char *url, size_t len, struct cf_site *s) {
  char u[TG_CONF_STR];
  if (len >= sizeof(u))
    return false;
  memcpy(u, url, len);
  u[len] = '\0';
  while (len > 0 && u[len - 1] == '/')
    u[--len] = '\0';
  snprintf(s->base, sizeof(s->base), "%s", u);
  const char *p;
  if (strncmp(u, "https://", 8) == 0) {
    s->ssl = true;
    s->port = 443;
    p = u + 8;
  } else if (strncmp(u, "http://", 7) == 0) {
    s->port = 80;
    p = u + 7;
  } else {
    return false;
  }
  const char *slash = strchr(p, '/');
  size_t auth_len = slash ? (size_t)(slash - p) : strlen(p);
  snprintf(s->path, sizeof(s->path), "%s", slash ? slash : "");
  const char *at = memchr(p, '@', auth_len);
  if (at) { /* credentials are not for the socket's Host line (nor for logs) */
    auth_len -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  const char *host = p, *hend = p + auth_len, *colon;
  if (*p == '[') { /* IPv6 literal */
    const char *rb = memchr(p, ']', auth_len);
    if (!rb)
      return false;
    host = p + 1;
    colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
    hend = rb;
  } else {
    colon = memchr(p, ':', auth_len);
    if (colon)
      hend = colon;
  }
  if (hend <= host || (size_t)(hend - host) >= sizeof(s->host))
    return false;
  snprintf(s->host, sizeof(s->host), "%.*s", (int)(hend - host), host);
  if (colon) {
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (port < 1 || port > 65535 || (end != p + auth_len))
      return false;
    s->port = (int)port;
  }
  return true;
}

static void c_destroy(void *state);

static tg_err_t c_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                         size_t n) {
  struct comfyui *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  pthread_mutex_init(&c->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&c->freed, &ca);
  pthread_condattr_destroy(&ca);
  bool any_ssl = false;
  struct tg_breaker_conf bc = {.failures = conf->breaker_failures,
                               .open_ms = conf->breaker_open_ms};
  for (const char *u = conf->comfyui_url; *u;) {
    u += strspn(u, " ,");
    size_t len = strcspn(u, ",");
    while (len > 0 && u[len - 1] == ' ')
      len--;
    if (!len)
      break;
    if (c->n_sites == CF_MAX_SITES) {
      snprintf(errstr, n, "comfyui.url: more than %d URLs", CF_MAX_SITES);
      goto err;
    }
    struct cf_site *s = &c->sites[c->n_sites];
    if (!parse_site(u, len, s)) {
      snprintf(errstr, n, "comfyui.url: cannot read \"%.*s\"", (int)(len < 200 ? len : 200), u);
      goto err;
    }
    if (!(s->breaker = tg_breaker_create("comfyui", &bc))) {
      snprintf(errstr, n, "out of memory");
      goto err;
    }
    s->prov = (struct tg_provider){.name = "comfyui", .stage_code = TG_CODE_DIFFUSION_FAILED,
                                   .breaker = s->breaker, .retries = conf->comfyui_http_retries,
                                   .timeout_ms = conf->comfyui_http_timeout_ms,
                                   .max_retry_after_ms = conf->max_retry_after_ms};
    any_ssl = any_ssl || s->ssl;
    c->n_sites++;
    u += strcspn(u, ",");
  }
  if (!c->n_sites) {
    snprintf(errstr, n, "comfyui.url: no URL");
    goto err;
  }
  char why[256];
  if (!tg_json_load_file(conf->comfyui_workflow, MAX_WORKFLOW_BYTES, &c->workflow, why,
                         sizeof(why)) ||
      !json_is_object(c->workflow)) {
    snprintf(errstr, n, "comfyui.workflow %s: %s", conf->comfyui_workflow,
             c->workflow ? "expected an object of nodes (API format)" : why);
    goto err;
  }
  c->has_prefix = *conf->bind.prefix;
  if (!check_binding(c->workflow, "prompt", conf->bind.prompt, &c->prompt, errstr, n) ||
      !check_binding(c->workflow, "negative", conf->bind.negative, &c->negative, errstr, n) ||
      !check_binding(c->workflow, "seed", conf->bind.seed, &c->seed, errstr, n) ||
      !check_binding(c->workflow, "width", conf->bind.width, &c->width, errstr, n) ||
      !check_binding(c->workflow, "height", conf->bind.height, &c->height, errstr, n) ||
      (c->has_prefix &&
       !check_binding(c->workflow, "prefix", conf->bind.prefix, &c->prefix, errstr, n)))
    goto err;
  const char *id;
  json_t *node;
  json_object_foreach(c->workflow, id, node) {
    const char *ct = json_string_value(json_object_get(node, "class_type"));
    if (ct && strcmp(ct, "SaveImageWebsocket") == 0 && strlen(id) < sizeof(c->ws_node)) {
      snprintf(c->ws_node, sizeof(c->ws_node), "%s", id);
      break;
    }
  }
  c->follow_ws = strcmp(conf->comfyui_follow, "ws") == 0;
  if (*c->ws_node && !c->follow_ws) {
    snprintf(errstr, n, "comfyui.follow: the workflow sends its image over the socket "
             "(SaveImageWebsocket node %s): needs ws", c->ws_node);
    goto err;
  }
  /* civetweb's WebSocket client does not verify certificates: never trust
   * events (or images) from an unverified wss://; https sites are polled */
  if (any_ssl && *c->ws_node) {
    snprintf(errstr, n, "comfyui.url: an https URL with a SaveImageWebsocket workflow: the "
             "WebSocket client cannot verify certificates; use a workflow that saves files");
    goto err;
  }
  if (any_ssl && c->follow_ws)
    tg_log(TG_WARN, "event=comfyui_ws_off reason=\"https URLs are polled: the WebSocket client "
           "cannot verify certificates\"");
  if (!*c->ws_node && !c->has_prefix) {
    snprintf(errstr, n, "comfyui.bind.prefix: empty, but the workflow has no SaveImageWebsocket "
             "node (ComfyUI would hand back cached files)");
    goto err;
  }
  snprintf(c->output_dir, sizeof(c->output_dir), "%s", conf->comfyui_output_dir);
  size_t ol = strlen(c->output_dir);
  while (ol > 1 && c->output_dir[ol - 1] == '/')
    c->output_dir[--ol] = '\0';
  c->slots = conf->comfyui_slots;
  c->poll_ms = conf->comfyui_poll_ms;
  c->http_timeout_ms = conf->comfyui_http_timeout_ms;
  c->http_retries = conf->comfyui_http_retries;
  c->max_image_bytes = conf->max_image_bytes;
  if (c->follow_ws)
    cf_ws_global_init(false);
  *state = c;
  return TG_OK;
err:
  c_destroy(c);
  return TG_ERR_INVAL;
}

static void c_destroy(void *state) {
  struct comfyui *c = state;
  if (!c)
    return;
  for (int i = 0; i < c->n_sites; i++)
    tg_breaker_destroy(c->sites[i].breaker);
  json_decref(c->workflow);
  pthread_mutex_destroy(&c->lock);
  pthread_cond_destroy(&c->freed);
  free(c);
}

/*
 * Take a slot on the least busy site whose breaker lets calls through. A
 * site whose breaker refuses is taken only when every site refuses (the
 * paint then fails at once, retryably); while some site would serve but is
 * full, wait for it - until the deadline, re-checking when a breaker is due
 * for its probe.
 */
static bool acquire_site(struct comfyui *c, int64_t deadline, struct cf_site **out,
                         struct tg_stage_error *err) {
  pthread_mutex_lock(&c->lock);
  for (;;) {
    struct cf_site *best = NULL;
    bool best_refuses = true, any_serves = false;
    int64_t now = tg_mono_ms(), soonest = INT64_MAX;
    for (int k = 0; k < c->n_sites; k++) {
      struct cf_site *s = &c->sites[(c->next + (unsigned)k) % (unsigned)c->n_sites];
      int64_t wait = tg_breaker_wait_ms(s->breaker, now);
      bool refuses = wait > 0;
      any_serves = any_serves || !refuses;
      if (refuses && wait < soonest)
        soonest = wait;
      if (s->inflight >= c->slots)
        continue;
      if (!best || (best_refuses && !refuses) ||
          (refuses == best_refuses && s->inflight < best->inflight)) {
        best = s;
        best_refuses = refuses;
      }
    }
    if (best && best_refuses && any_serves)
      best = NULL; /* a serving site is only busy: wait for it */
    if (best) {
      best->inflight++;
      c->next = (unsigned)(best - c->sites + 1) % (unsigned)c->n_sites;
      pthread_mutex_unlock(&c->lock);
      *out = best;
      return true;
    }
    if (deadline && tg_mono_ms() >= deadline) {
      pthread_mutex_unlock(&c->lock);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "comfyui: no slot came free within the diffusion timeout (%d URL%s x %d)",
                    c->n_sites, c->n_sites == 1 ? "" : "s", c->slots);
      return false;
    }
    int64_t until = soonest < INT64_MAX / 2 ? now + soonest : 0; /* a breaker's probe */
    if (deadline && (!until || deadline < until))
      until = deadline;
    if (until) {
      struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                            .tv_nsec = (long)(until % 1000) * 1000000L};
      pthread_cond_timedwait(&c->freed, &c->lock, &ts);
    } else {
      pthread_cond_wait(&c->freed, &c->lock);
    }
  }
}

static void release_site(struct comfyui *c, struct cf_site *s) {
  pthread_mutex_lock(&c->lock);
  s->inflight--;
  pthread_cond_broadcast(&c->freed);
  pthread_mutex_unlock(&c->lock);
}

/* The image of a finished job: from the socket, else its first output via /view. */
static bool take_image(struct cf_job *j, cf_ws_t *ws, json_t *entry, struct tg_blob *image,
                       struct tg_stage_error *err) {
  if (ws && cf_ws_take_image(ws, image))
    return true;
  struct cf_image img;
  if (entry && cf_first_image(entry, &img))
    return cf_fetch(j, &img, image, err);
  if (*j->c->ws_node)
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: prompt %s finished, but its "
                  "image did not come over the socket", j->prompt_id);
  else
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                  "comfyui: the workflow finished without an output image");
  return false;
}

static bool paint_on(struct cf_job *j, struct tg_blob *image, struct tg_stage_error *err) {
  struct comfyui *c = j->c;
  const struct tg_diffusion_req *req = j->req;
  char nonce[TG_MAX_REQUEST_ID_CHARS + 1], q[300];
  tg_request_id_generate(nonce);
  snprintf(j->client_id, sizeof(j->client_id), "tripgen-%s", nonce);
  tg_request_id_generate(nonce); /* "<time>-<random hex>": the random end makes the nonce */
  size_t nl = strlen(nonce);
  snprintf(j->prefix, sizeof(j->prefix), "%s-%s", req->filename_prefix,
           nonce + (nl > 8 ? nl - 8 : 0));

  cf_ws_t *ws = NULL;
  if (c->follow_ws && !j->site->ssl) {
    char why[256];
    ws = cf_ws_open(j, why, sizeof(why));
    if (!ws) {
      tg_log(TG_WARN, "event=comfyui_ws_fallback request_id=%s host=%s port=%d reason=%s",
             j->rid, j->site->host, j->site->port, tg_logq(q, sizeof(q), why));
      if (*c->ws_node) { /* the image would come over the socket only */
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                      "comfyui: /ws of %s:%d not available for a SaveImageWebsocket workflow: %s",
                      j->site->host, j->site->port, why);
        return false;
      }
    }
  }
  if (!cf_submit(j, err)) {
    cf_ws_close(ws);
    return false;
  }
  tg_log(TG_DEBUG, "event=comfyui_submitted request_id=%s prompt_id=%s host=%s port=%d "
         "follow=%s", j->rid, j->prompt_id, j->site->host, j->site->port, ws ? "ws" : "poll");
  json_t *entry = NULL;
  bool ok = false, alive = true, need_poll = !ws, image_in_hand = false;
  if (ws) {
    char msg[400];
    bool retryable = true;
    switch (cf_ws_wait(ws, j->prompt_id, req->deadline_mono_ms, msg, sizeof(msg), &retryable)) {
    case CF_WS_DONE:
      alive = false;
      /* the history holds the saved files (also needed to delete them) */
      need_poll = !*c->ws_node || (*c->output_dir && c->has_prefix);
      image_in_hand = *c->ws_node != '\0';
      ok = !need_poll;
      break;
    case CF_WS_FAILED:
      alive = !retryable; /* an image over the cap: the job may still be finishing */
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, retryable, "comfyui: %s", msg);
      break;
    case CF_WS_CLOSED:
      tg_log(TG_WARN, "event=comfyui_ws_fallback request_id=%s prompt_id=%s reason=%s", j->rid,
             j->prompt_id, "\"the socket closed\"");
      need_poll = true;
      break;
    case CF_WS_LATE:
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "comfyui: prompt %s not finished within the diffusion timeout", j->prompt_id);
      break;
    }
  }
  if (need_poll) /* with the image in hand, polling only finds files to delete */
    ok = cf_poll(j, &entry, err, &alive) || image_in_hand;
  if (ok)
    ok = take_image(j, ws, entry, image, err);
  cf_ws_close(ws);
  if (!ok && alive)
    cf_cancel(j);
  cf_cleanup(j, entry);
  json_decref(entry);
  return ok;
}

static bool c_paint(void *state, const struct tg_diffusion_req *req, struct tg_blob *image,
                    struct tg_stage_error *err) {
  struct comfyui *c = state;
  memset(image, 0, sizeof(*image));
  struct cf_job j = {.c = c, .req = req, .rid = req->job->request_id};
  if (!acquire_site(c, req->deadline_mono_ms, &j.site, err))
    return false;
  bool ok = paint_on(&j, image, err);
  release_site(c, j.site);
  if (!ok)
    tg_blob_free(image);
  return ok;
}

/* Ready when any ComfyUI answers /system_stats. */
static bool c_ready(void *state, char *why, size_t n) {
  struct comfyui *c = state;
  char last[600] = "";
  for (int i = 0; i < c->n_sites; i++) {
    struct cf_site *s = &c->sites[i];
    char url[TG_CONF_STR + 32], e[256];
    snprintf(url, sizeof(url), "%s/system_stats", s->base);
    struct tg_http_req r = {.method = "GET", .url = url, .timeout_ms = 2000,
                            .max_response = 1 << 20};
    struct tg_http_resp resp;
    if (!tg_http_do(&r, &resp, e, sizeof(e))) {
      snprintf(last, sizeof(last), "comfyui %s:%d unreachable: %s", s->host, s->port, e);
      continue;
    }
    tg_blob_free(&resp.body);
    if (resp.status == 200)
      return true;
    snprintf(last, sizeof(last), "comfyui %s:%d /system_stats answered HTTP %ld", s->host,
             s->port, resp.status);
  }
  snprintf(why, n, "%s", last);
  return false;
}

const struct tg_diffusion_ops tg_diffusion_comfyui = {
  .name = "comfyui",
  .create = c_create,
  .destroy = c_destroy,
  .paint = c_paint,
  .ready = c_ready,
};
