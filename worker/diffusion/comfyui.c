/* SPDX-License-Identifier: Apache-2.0 */
/*
 * comfyui.c - the ComfyUI diffusion backend: fill the workflow's bound
 * inputs (prompt, negative prompt, seed, size, filename prefix), POST
 * /prompt with a client_id, poll /history/{prompt_id} until the job is done
 * or the deadline passes, then fetch the image from /view. Both of
 * ComfyUI's error shapes and execution errors become diffusion_failed with
 * ComfyUI's own message. Connection errors and 5xx are retried in the stage
 * with backoff; what is left is a retryable failure of the job.
 */
#include "diffusion.h"
#include "http_client.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKFLOW_BYTES (1 << 20)
#define MAX_API_RESPONSE (4 << 20)

struct binding {
  char node[32];
  char input[32];
};

struct comfyui {
  char base[TG_CONF_STR];
  json_t *workflow;      /* the template, never modified */
  struct binding prompt, negative, seed, width, height, prefix;
  int64_t poll_ms;
  int64_t http_timeout_ms;
  int http_retries;
  int64_t max_image_bytes;
  char client_id[96];
};

static bool split_binding(const char *s, struct binding *b) {
  const char *dot = strchr(s, '.');
  if (!dot || (size_t)(dot - s) >= sizeof(b->node) || strlen(dot + 1) >= sizeof(b->input))
    return false;
  snprintf(b->node, sizeof(b->node), "%.*s", (int)(dot - s), s);
  snprintf(b->input, sizeof(b->input), "%s", dot + 1);
  return true;
}

static bool check_binding(json_t *wf, const char *name, const char *spec, struct binding *b,
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

static tg_err_t c_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                         size_t n) {
  struct comfyui *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  snprintf(c->base, sizeof(c->base), "%s", conf->comfyui_url);
  size_t bl = strlen(c->base);
  while (bl > 0 && c->base[bl - 1] == '/')
    c->base[--bl] = '\0';
  char why[256];
  if (!tg_json_load_file(conf->comfyui_workflow, MAX_WORKFLOW_BYTES, &c->workflow, why,
                         sizeof(why)) ||
      !json_is_object(c->workflow)) {
    snprintf(errstr, n, "comfyui.workflow %s: %s", conf->comfyui_workflow,
             c->workflow ? "expected an object of nodes (API format)" : why);
    goto err;
  }
  if (!check_binding(c->workflow, "prompt", conf->bind.prompt, &c->prompt, errstr, n) ||
      !check_binding(c->workflow, "negative", conf->bind.negative, &c->negative, errstr, n) ||
      !check_binding(c->workflow, "seed", conf->bind.seed, &c->seed, errstr, n) ||
      !check_binding(c->workflow, "width", conf->bind.width, &c->width, errstr, n) ||
      !check_binding(c->workflow, "height", conf->bind.height, &c->height, errstr, n) ||
      !check_binding(c->workflow, "prefix", conf->bind.prefix, &c->prefix, errstr, n))
    goto err;
  c->poll_ms = conf->comfyui_poll_ms;
  c->http_timeout_ms = conf->comfyui_http_timeout_ms;
  c->http_retries = conf->comfyui_http_retries;
  c->max_image_bytes = conf->max_image_bytes;
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_request_id_generate(rid);
  snprintf(c->client_id, sizeof(c->client_id), "tripgen-%s", rid);
  *state = c;
  return TG_OK;
err:
  json_decref(c->workflow);
  free(c);
  return TG_ERR_INVAL;
}

static void c_destroy(void *state) {
  struct comfyui *c = state;
  if (!c)
    return;
  json_decref(c->workflow);
  free(c);
}

static void bind_value(json_t *wf, const struct binding *b, json_t *v) {
  json_object_set_new(json_object_get(json_object_get(wf, b->node), "inputs"), b->input, v);
}

/*
 * One HTTP call with in-stage retries for connection errors and 5xx,
 * backing off 200 ms, 400 ms, ... Returns true with a response of any
 * other status; false with err filled (retryable).
 */
static bool call(struct comfyui *c, const char *method, const char *url, const char *body,
                 size_t max, const struct tg_diffusion_req *req, struct tg_http_resp *resp,
                 struct tg_stage_error *err) {
  static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
  char why[256] = "";
  int64_t backoff = 200;
  for (int attempt = 0;; attempt++) {
    struct tg_http_req r = {.method = method, .url = url, .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .headers = body ? json_hdr : NULL,
                            .timeout_ms = c->http_timeout_ms, .max_response = max};
    if (req->deadline_mono_ms) {
      int64_t left = req->deadline_mono_ms - tg_mono_ms();
      if (left <= 0) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                      "comfyui: diffusion timed out before %s %s", method, url + strlen(c->base));
        return false;
      }
      if (left < r.timeout_ms)
        r.timeout_ms = left;
    }
    if (tg_http_do(&r, resp, why, sizeof(why))) {
      if (resp->status < 500)
        return true;
      snprintf(why, sizeof(why), "HTTP %ld", resp->status);
      tg_blob_free(&resp->body);
    }
    if (attempt >= c->http_retries) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: %s %s: %s", method,
                    url + strlen(c->base), why);
      return false;
    }
    tg_log(TG_WARN, "event=comfyui_retry request_id=%s call=\"%s %s\" attempt=%d err=\"%s\"",
           req->job->request_id, method, url + strlen(c->base), attempt + 1, why);
    tg_sleep_ms(backoff);
    backoff *= 2;
  }
}

/* ComfyUI's error bodies: {"error": "text", ...} (older) or
 * {"error": {"type", "message", "details"}, "node_errors": {...}} (newer). */
static void describe_error(const struct tg_blob *body, char *out, size_t n) {
  json_error_t je;
  json_t *root = json_loadb((const char *)body->data, body->len, 0, &je);
  json_t *e = json_object_get(root, "error");
  if (json_is_string(e)) {
    snprintf(out, n, "%s", json_string_value(e));
  } else if (json_is_object(e)) {
    const char *msg = json_string_value(json_object_get(e, "message"));
    const char *details = json_string_value(json_object_get(e, "details"));
    snprintf(out, n, "%s%s%s", msg ? msg : "error", details && *details ? ": " : "",
             details ? details : "");
  } else {
    snprintf(out, n, "unexpected response");
  }
  /* name the first failing node, if any */
  json_t *ne = json_object_get(root, "node_errors");
  const char *node;
  json_t *info;
  if (json_is_object(ne)) {
    json_object_foreach(ne, node, info) {
      json_t *errs = json_object_get(info, "errors");
      const char *m = json_string_value(json_object_get(json_array_get(errs, 0), "message"));
      const char *d = json_string_value(json_object_get(json_array_get(errs, 0), "details"));
      size_t l = strlen(out);
      snprintf(out + l, n - l, " (node %s: %s%s%s)", node, m ? m : "error", d ? ": " : "",
               d ? d : "");
      break;
    }
  }
  json_decref(root);
}

static bool submit(struct comfyui *c, const struct tg_diffusion_req *req, char *prompt_id,
                   size_t pid_size, struct tg_stage_error *err) {
  json_t *wf = json_deep_copy(c->workflow);
  bind_value(wf, &c->prompt, json_string(req->prompt));
  bind_value(wf, &c->negative, json_string(req->negative_prompt));
  bind_value(wf, &c->seed, json_integer(req->seed));
  bind_value(wf, &c->width, json_integer(req->width));
  bind_value(wf, &c->height, json_integer(req->height));
  bind_value(wf, &c->prefix, json_string(req->filename_prefix));
  json_t *body = json_pack("{s:o, s:s}", "prompt", wf, "client_id", c->client_id);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char url[TG_CONF_STR + 32];
  snprintf(url, sizeof(url), "%s/prompt", c->base);
  struct tg_http_resp resp;
  bool ok = text && call(c, "POST", url, text, MAX_API_RESPONSE, req, &resp, err);
  free(text);
  if (!ok)
    return false;
  if (resp.status != 200) {
    char why[400];
    describe_error(&resp.body, why, sizeof(why));
    /* a refused workflow does not get better by trying again; a proxy's
     * timeout or throttling does */
    bool retry = resp.status == 408 || resp.status == 429;
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, retry, "comfyui: prompt refused (HTTP %ld): %s",
                  resp.status, why);
    tg_blob_free(&resp.body);
    return false;
  }
  json_error_t je;
  json_t *root = json_loadb((const char *)resp.body.data, resp.body.len, 0, &je);
  const char *id = json_string_value(json_object_get(root, "prompt_id"));
  if (id && strlen(id) < pid_size && tg_charset_ok(id, TG_CS_REQUEST_ID))
    snprintf(prompt_id, pid_size, "%s", id);
  else
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: /prompt answered without a "
                                                       "usable prompt_id");
  json_decref(root);
  tg_blob_free(&resp.body);
  return id && *prompt_id;
}

/* The message of an execution_error in the history's status messages. */
static void execution_error(json_t *status, char *out, size_t n) {
  size_t i;
  json_t *m;
  snprintf(out, n, "execution failed");
  json_array_foreach(json_object_get(status, "messages"), i, m) {
    const char *kind = json_string_value(json_array_get(m, 0));
    json_t *data = json_array_get(m, 1);
    if (kind && strcmp(kind, "execution_error") == 0) {
      const char *msg = json_string_value(json_object_get(data, "exception_message"));
      const char *type = json_string_value(json_object_get(data, "exception_type"));
      const char *node = json_string_value(json_object_get(data, "node_id"));
      snprintf(out, n, "node %s: %s%s%s", node ? node : "?", type ? type : "", type ? ": " : "",
               msg ? msg : "error");
      return;
    }
    if (kind && strcmp(kind, "execution_interrupted") == 0)
      snprintf(out, n, "execution interrupted");
  }
}

/* Poll /history/{id} until done. On success fills the image's location. */
static bool wait_done(struct comfyui *c, const struct tg_diffusion_req *req, const char *pid,
                      char *filename, char *subfolder, char *type, size_t sz,
                      struct tg_stage_error *err) {
  char url[TG_CONF_STR + 96];
  snprintf(url, sizeof(url), "%s/history/%s", c->base, pid);
  for (;;) {
    struct tg_http_resp resp;
    if (!call(c, "GET", url, NULL, MAX_API_RESPONSE, req, &resp, err))
      return false;
    json_error_t je;
    json_t *root = resp.status == 200
                       ? json_loadb((const char *)resp.body.data, resp.body.len, 0, &je)
                       : NULL;
    tg_blob_free(&resp.body);
    json_t *entry = json_object_get(root, pid);
    if (entry) {
      json_t *status = json_object_get(entry, "status");
      const char *st = json_string_value(json_object_get(status, "status_str"));
      if (st && strcmp(st, "error") == 0) {
        char why[400];
        execution_error(status, why, sizeof(why));
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: %s", why);
        json_decref(root);
        return false;
      }
      /* the first image of any output node */
      const char *node;
      json_t *out;
      json_object_foreach(json_object_get(entry, "outputs"), node, out) {
        json_t *img = json_array_get(json_object_get(out, "images"), 0);
        const char *fn = json_string_value(json_object_get(img, "filename"));
        const char *sf = json_string_value(json_object_get(img, "subfolder"));
        const char *ty = json_string_value(json_object_get(img, "type"));
        if (fn && strlen(fn) < sz && (!sf || strlen(sf) < sz) && (!ty || strlen(ty) < sz)) {
          snprintf(filename, sz, "%s", fn);
          snprintf(subfolder, sz, "%s", sf ? sf : "");
          snprintf(type, sz, "%s", ty ? ty : "output");
          json_decref(root);
          return true;
        }
      }
      bool completed = json_is_true(json_object_get(status, "completed"));
      if (completed || (st && strcmp(st, "success") == 0)) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                      "comfyui: the workflow finished without an output image");
        json_decref(root);
        return false;
      }
    } else if (resp.status != 200) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: /history answered HTTP %ld",
                    resp.status);
      json_decref(root);
      return false;
    }
    json_decref(root);
    if (req->deadline_mono_ms && tg_mono_ms() + c->poll_ms > req->deadline_mono_ms) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "comfyui: prompt %s not finished within the diffusion timeout", pid);
      return false;
    }
    tg_sleep_ms(c->poll_ms);
  }
}

/* Best effort: drop a job we gave up on from ComfyUI's queue. */
static void forget(struct comfyui *c, const struct tg_diffusion_req *req, const char *pid) {
  char url[TG_CONF_STR + 16], body[160];
  snprintf(url, sizeof(url), "%s/queue", c->base);
  snprintf(body, sizeof(body), "{\"delete\":[\"%s\"]}", pid);
  static const char *const hdr[] = {"Content-Type: application/json", NULL};
  struct tg_http_req r = {.method = "POST", .url = url, .body = body, .body_len = strlen(body),
                          .headers = hdr, .timeout_ms = 2000, .max_response = 65536};
  struct tg_http_resp resp;
  char why[128];
  if (tg_http_do(&r, &resp, why, sizeof(why)))
    tg_blob_free(&resp.body);
  (void)req;
}

static bool fetch(struct comfyui *c, const struct tg_diffusion_req *req, const char *filename,
                  const char *subfolder, const char *type, struct tg_blob *image,
                  struct tg_stage_error *err) {
  char *f = curl_easy_escape(NULL, filename, 0), *s = curl_easy_escape(NULL, subfolder, 0),
       *t = curl_easy_escape(NULL, type, 0);
  char url[TG_CONF_STR + 1024];
  snprintf(url, sizeof(url), "%s/view?filename=%s&subfolder=%s&type=%s", c->base, f ? f : "",
           s ? s : "", t ? t : "");
  curl_free(f);
  curl_free(s);
  curl_free(t);
  struct tg_http_resp resp;
  if (!call(c, "GET", url, NULL, (size_t)c->max_image_bytes, req, &resp, err))
    return false;
  if (resp.status != 200) {
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: /view of %s answered HTTP %ld",
                  filename, resp.status);
    tg_blob_free(&resp.body);
    return false;
  }
  *image = resp.body;
  return true;
}

static bool c_paint(void *state, const struct tg_diffusion_req *req, struct tg_blob *image,
                    struct tg_stage_error *err) {
  struct comfyui *c = state;
  char pid[TG_MAX_REQUEST_ID_CHARS + 1] = "", fn[256], sf[256], ty[64];
  memset(image, 0, sizeof(*image));
  if (!submit(c, req, pid, sizeof(pid), err))
    return false;
  tg_log(TG_DEBUG, "event=comfyui_submitted request_id=%s prompt_id=%s", req->job->request_id,
         pid);
  if (!wait_done(c, req, pid, fn, sf, ty, sizeof(ty), err)) {
    forget(c, req, pid);
    return false;
  }
  return fetch(c, req, fn, sf, ty, image, err);
}

static bool c_ready(void *state, char *why, size_t n) {
  struct comfyui *c = state;
  char url[TG_CONF_STR + 32];
  snprintf(url, sizeof(url), "%s/system_stats", c->base);
  struct tg_http_req r = {.method = "GET", .url = url, .timeout_ms = 2000,
                          .max_response = 1 << 20};
  struct tg_http_resp resp;
  char e[256];
  if (!tg_http_do(&r, &resp, e, sizeof(e))) {
    snprintf(why, n, "comfyui unreachable: %s", e);
    return false;
  }
  tg_blob_free(&resp.body);
  if (resp.status != 200) {
    snprintf(why, n, "comfyui /system_stats answered HTTP %ld", resp.status);
    return false;
  }
  return true;
}

const struct tg_diffusion_ops tg_diffusion_comfyui = {
  .name = "comfyui",
  .create = c_create,
  .destroy = c_destroy,
  .paint = c_paint,
  .ready = c_ready,
};
