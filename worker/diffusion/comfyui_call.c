/* SPDX-License-Identifier: Apache-2.0 */
/*
 * comfyui_call.c - the ComfyUI backend's HTTP calls: POST /prompt with the
 * bound workflow (ComfyUI's own words when it refuses it), /history polling,
 * the image from /view, giving a job up (a targeted /interrupt when it is
 * the one running, else deleting it from ComfyUI's queue) and deleting the
 * files a job saved from a locally mounted output folder. Every call goes
 * through the site's circuit breaker and is counted in the provider
 * metrics; no answer and 5xx are retried within the stage with backoff.
 */
#include "comfyui_int.h"
#include "metrics.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const json_hdr[] = {"Content-Type: application/json", NULL};

/* The failure of a call the diffusion deadline prevented or cut short: while
 * we wait on /history for our prompt, the prompt did not finish in time. */
static void out_of_time(const struct cf_job *j, const char *what, const char *when,
                        const char *method, const char *path, struct tg_stage_error *err) {
  if (j->prompt_id[0] && strcmp(what, "history") == 0)
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                  "comfyui: prompt %s not finished within the diffusion timeout (it came %s "
                  "%s %s)", j->prompt_id, when, method, path);
  else
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                  "comfyui %s: the diffusion timeout came %s %s %s", what, when, method, path);
  err->deadline_cut = true;
}

bool cf_http(struct cf_job *j, const char *what, const char *method, const char *path,
             const char *body, size_t max, int64_t deadline, int retries,
             struct tg_http_resp *resp, struct tg_stage_error *err) {
  struct cf_site *s = j->site;
  char url[TG_CONF_STR + 2048], why[256] = "";
  snprintf(url, sizeof(url), "%s%s", s->base, path);
  bool diffusion_deadline = !deadline;
  if (!deadline)
    deadline = j->req->deadline_mono_ms;
  int64_t backoff = 200;
  memset(resp, 0, sizeof(*resp));
  for (int attempt = 0;; attempt++) {
    int64_t now = tg_mono_ms(), timeout = j->c->http_timeout_ms, retry_in = 0;
    if (deadline) {
      if (deadline - now <= 0) {
        if (diffusion_deadline)
          out_of_time(j, what, "before", method, path, err);
        else
          tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui %s: out of time before "
                        "%s %s", what, method, path);
        return false;
      }
      if (deadline - now < timeout)
        timeout = deadline - now;
    }
    if (!tg_breaker_allow(s->breaker, now, &retry_in)) {
      tg_metrics_provider_call("comfyui", TG_CALL_REFUSED);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "comfyui %s: not called: the circuit breaker of %s:%d is open after "
                    "repeated failures (next probe in %lld ms)", what, s->host, s->port,
                    (long long)retry_in);
      return false;
    }
    struct tg_http_req r = {.method = method, .url = url, .body = body,
                            .body_len = body ? strlen(body) : 0,
                            .headers = body ? json_hdr : NULL, .timeout_ms = timeout,
                            .max_response = max};
    bool answered = tg_http_do(&r, resp, why, sizeof(why));
    if (!answered && resp->too_large) { /* it answered, too much: asking again gets the same */
      tg_breaker_forget(s->breaker);
      tg_metrics_provider_call("comfyui", TG_CALL_FAILED);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false, "comfyui %s: %s %s at %s:%d: %s "
                    "(diffusion.max_image_bytes)", what, method, path, s->host, s->port, why);
      return false;
    }
    bool bad = !answered || resp->status >= 500;
    /* a call the job's deadline cut short says nothing about the server */
    if (!answered && timeout < j->c->http_timeout_ms)
      tg_breaker_forget(s->breaker);
    else
      tg_breaker_record(s->breaker, bad, tg_mono_ms());
    if (!bad) {
      tg_metrics_provider_call("comfyui", resp->status < 400 ? TG_CALL_OK : TG_CALL_FAILED);
      return true;
    }
    if (answered) {
      snprintf(why, sizeof(why), "HTTP %ld", resp->status);
      tg_blob_free(&resp->body);
    }
    if (attempt >= retries || (deadline && tg_mono_ms() + backoff >= deadline)) {
      tg_metrics_provider_call("comfyui", TG_CALL_FAILED);
      if (diffusion_deadline && !answered && timeout < j->c->http_timeout_ms &&
          tg_deadline_came(deadline))
        out_of_time(j, what, "during", method, path, err);
      else
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui %s: %s %s at %s:%d: %s",
                      what, method, path, s->host, s->port, why);
      return false;
    }
    tg_metrics_provider_call("comfyui", TG_CALL_RETRIED);
    char q[300];
    tg_log(TG_WARN, "event=comfyui_retry request_id=%s call=%s host=%s port=%d attempt=%d err=%s",
           j->rid, what, s->host, s->port, attempt + 1, tg_logq(q, sizeof(q), why));
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

static void bind_value(json_t *wf, const struct cf_binding *b, json_t *v) {
  json_object_set_new(json_object_get(json_object_get(wf, b->node), "inputs"), b->input, v);
}

bool cf_submit(struct cf_job *j, struct tg_stage_error *err) {
  struct comfyui *c = j->c;
  const struct tg_diffusion_req *req = j->req;
  json_t *wf = json_deep_copy(c->workflow);
  bind_value(wf, &c->prompt, json_string(req->prompt));
  bind_value(wf, &c->negative, json_string(req->negative_prompt));
  bind_value(wf, &c->seed, json_integer(req->seed));
  bind_value(wf, &c->width, json_integer(req->width));
  bind_value(wf, &c->height, json_integer(req->height));
  if (c->has_prefix)
    bind_value(wf, &c->prefix, json_string(j->prefix));
  json_t *body = json_pack("{s:o, s:s}", "prompt", wf, "client_id", j->client_id);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text) {
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: out of memory");
    return false;
  }
  struct tg_http_resp resp;
  bool ok = cf_http(j, "prompt", "POST", "/prompt", text, CF_MAX_API_RESPONSE, 0,
                    c->http_retries, &resp, err);
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
  bool got = id && strlen(id) < sizeof(j->prompt_id) && tg_charset_ok(id, TG_CS_REQUEST_ID);
  if (got)
    snprintf(j->prompt_id, sizeof(j->prompt_id), "%s", id);
  else
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                  "comfyui: /prompt answered without a usable prompt_id");
  json_decref(root);
  tg_blob_free(&resp.body);
  return got;
}

bool cf_history(struct cf_job *j, json_t **entry, struct tg_stage_error *err) {
  char path[160];
  snprintf(path, sizeof(path), "/history/%s", j->prompt_id);
  *entry = NULL;
  struct tg_http_resp resp;
  if (!cf_http(j, "history", "GET", path, NULL, CF_MAX_API_RESPONSE, 0, j->c->http_retries,
               &resp, err))
    return false;
  if (resp.status != 200) {
    /* ComfyUI answers {} for an unknown id: a 404 is a proxy or a wrong base URL */
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui history: GET %s answered HTTP %ld",
                  path, resp.status);
    tg_blob_free(&resp.body);
    return false;
  }
  json_error_t je;
  json_t *root = json_loadb((const char *)resp.body.data, resp.body.len, 0, &je);
  tg_blob_free(&resp.body);
  if (!json_is_object(root)) {
    json_decref(root);
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                  "comfyui history: GET %s answered something that is not a JSON object", path);
    return false;
  }
  json_t *e = json_object_get(root, j->prompt_id);
  if (json_is_object(e))
    *entry = json_incref(e);
  json_decref(root);
  return true;
}

bool cf_entry_failed(json_t *entry, char *out, size_t n) {
  json_t *status = json_object_get(entry, "status");
  const char *st = json_string_value(json_object_get(status, "status_str"));
  if (!st || strcmp(st, "error") != 0)
    return false;
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
      return true;
    }
    if (kind && strcmp(kind, "execution_interrupted") == 0)
      snprintf(out, n, "execution interrupted");
  }
  return true;
}

bool cf_first_image(json_t *entry, struct cf_image *img) {
  const char *node;
  json_t *out;
  json_object_foreach(json_object_get(entry, "outputs"), node, out) {
    json_t *im = json_array_get(json_object_get(out, "images"), 0);
    const char *fn = json_string_value(json_object_get(im, "filename"));
    const char *sf = json_string_value(json_object_get(im, "subfolder"));
    const char *ty = json_string_value(json_object_get(im, "type"));
    if (fn && *fn && strlen(fn) < sizeof(img->filename) &&
        (!sf || strlen(sf) < sizeof(img->subfolder)) && (!ty || strlen(ty) < sizeof(img->type))) {
      snprintf(img->filename, sizeof(img->filename), "%s", fn);
      snprintf(img->subfolder, sizeof(img->subfolder), "%s", sf ? sf : "");
      snprintf(img->type, sizeof(img->type), "%s", ty ? ty : "output");
      return true;
    }
  }
  return false;
}

bool cf_poll(struct cf_job *j, json_t **entry, struct tg_stage_error *err, bool *alive) {
  *entry = NULL;
  *alive = true;
  for (;;) {
    json_t *e;
    if (!cf_history(j, &e, err))
      return false;
    if (e) {
      char why[400];
      *alive = false;
      if (cf_entry_failed(e, why, sizeof(why))) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: %s", why);
        json_decref(e);
        return false;
      }
      *entry = e;
      return true;
    }
    int64_t dl = j->req->deadline_mono_ms;
    if (dl && tg_mono_ms() + j->c->poll_ms > dl) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "comfyui: prompt %s not finished within the diffusion timeout", j->prompt_id);
      return false;
    }
    tg_sleep_ms(j->c->poll_ms);
  }
}

bool cf_fetch(struct cf_job *j, const struct cf_image *img, struct tg_blob *image,
              struct tg_stage_error *err) {
  char *f = curl_easy_escape(NULL, img->filename, 0), *s = curl_easy_escape(NULL, img->subfolder, 0),
       *t = curl_easy_escape(NULL, img->type, 0);
  char path[2048];
  snprintf(path, sizeof(path), "/view?filename=%s&subfolder=%s&type=%s", f ? f : "", s ? s : "",
           t ? t : "");
  curl_free(f);
  curl_free(s);
  curl_free(t);
  struct tg_http_resp resp;
  if (!cf_http(j, "view", "GET", path, NULL, (size_t)j->c->max_image_bytes, 0,
               j->c->http_retries, &resp, err))
    return false;
  if (resp.status != 200) {
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "comfyui: /view of %s answered HTTP %ld",
                  img->filename, resp.status);
    tg_blob_free(&resp.body);
    return false;
  }
  *image = resp.body;
  return true;
}

/* Is prompt_id among a /queue list's items ([number, prompt_id, prompt, extra, outputs])? */
static bool in_list(json_t *list, const char *pid) {
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item) {
    const char *id = json_string_value(json_array_get(item, 1));
    if (id && strcmp(id, pid) == 0)
      return true;
  }
  return false;
}

void cf_cancel(struct cf_job *j) {
  if (!*j->prompt_id)
    return;
  int64_t bound = j->c->http_timeout_ms < 5000 ? j->c->http_timeout_ms : 5000;
  int64_t deadline = tg_mono_ms() + bound;
  char url[TG_CONF_STR + 16];
  snprintf(url, sizeof(url), "%s/queue", j->site->base);
  struct tg_provider p = j->site->prov;
  p.retries = 0;
  struct tg_api_request r = {.request_id = j->rid, .what = "queue", .method = "GET", .url = url,
                             .max_response = CF_MAX_API_RESPONSE, .deadline_ms = deadline};
  json_t *q = NULL;
  struct tg_stage_error e;
  const char *action = "none";
  char body[160];
  struct tg_http_resp resp;
  if (!tg_api_call(&p, &r, &q, &e)) {
    char qq[300];
    tg_log(TG_WARN, "event=comfyui_cancel_failed request_id=%s prompt_id=%s err=%s", j->rid,
           j->prompt_id, tg_logq(qq, sizeof(qq), e.message));
    return;
  }
  bool running = in_list(json_object_get(q, "queue_running"), j->prompt_id);
  bool pending = !running && in_list(json_object_get(q, "queue_pending"), j->prompt_id);
  json_decref(q);
  bool ok = true;
  if (running) {
    /* only this prompt: ComfyUI skips the interrupt when another one runs by then */
    action = "interrupt";
    snprintf(body, sizeof(body), "{\"prompt_id\":\"%s\"}", j->prompt_id);
    ok = cf_http(j, "interrupt", "POST", "/interrupt", body, 65536, deadline, 0, &resp, &e);
  } else if (pending) {
    action = "delete";
    snprintf(body, sizeof(body), "{\"delete\":[\"%s\"]}", j->prompt_id);
    ok = cf_http(j, "queue", "POST", "/queue", body, 65536, deadline, 0, &resp, &e);
  }
  if (running || pending) {
    if (ok) {
      if (resp.status != 200)
        snprintf(e.message, sizeof(e.message), "HTTP %ld", resp.status);
      ok = resp.status == 200;
      tg_blob_free(&resp.body);
    }
  }
  char qq[300];
  tg_log(ok ? TG_INFO : TG_WARN, "event=comfyui_cancel request_id=%s prompt_id=%s action=%s%s%s",
         j->rid, j->prompt_id, action, ok ? "" : " err=",
         ok ? "" : tg_logq(qq, sizeof(qq), e.message));
}

/* A name ComfyUI gave that is safe to join under the output folder. */
static bool safe_part(json_t *v, bool may_be_empty, bool may_have_slash) {
  const char *s = json_string_value(v);
  if (!s)
    return may_be_empty && !v;
  size_t len = strlen(s);
  if (len != json_string_length(v) || len >= 256 || (!len && !may_be_empty))
    return false; /* a NUL inside */
  if (s[0] == '/' || strstr(s, "..") || strchr(s, '\\'))
    return false;
  return may_have_slash || !strchr(s, '/');
}

void cf_cleanup(struct cf_job *j, json_t *entry) {
  struct comfyui *c = j->c;
  if (!*c->output_dir || !c->has_prefix || !entry)
    return;
  const char *base = strrchr(j->prefix, '/');
  base = base ? base + 1 : j->prefix;
  size_t bl = strlen(base);
  if (!bl)
    return;
  int deleted = 0, refused = 0;
  const char *node;
  json_t *out;
  json_object_foreach(json_object_get(entry, "outputs"), node, out) {
    size_t i;
    json_t *im;
    json_array_foreach(json_object_get(out, "images"), i, im) {
      json_t *fn = json_object_get(im, "filename"), *sf = json_object_get(im, "subfolder");
      const char *ty = json_string_value(json_object_get(im, "type"));
      if (ty && strcmp(ty, "output") != 0)
        continue; /* temp previews are ComfyUI's to clear */
      if (!safe_part(fn, false, false) || !safe_part(sf, true, true) ||
          strncmp(json_string_value(fn), base, bl) != 0) {
        refused++;
        continue;
      }
      const char *sub = sf ? json_string_value(sf) : "";
      char path[TG_CONF_STR + 600];
      int len = snprintf(path, sizeof(path), "%s/%s%s%s", c->output_dir, sub, *sub ? "/" : "",
                         json_string_value(fn));
      if (len < 0 || (size_t)len >= sizeof(path)) {
        refused++;
        continue;
      }
      if (unlink(path) == 0) {
        deleted++;
      } else if (errno != ENOENT) {
        char q[600];
        tg_log(TG_WARN, "event=comfyui_output_delete_failed request_id=%s path=%s err=%s", j->rid,
               tg_logq(q, sizeof(q), path), strerror(errno));
      }
    }
  }
  tg_log(TG_INFO, "event=comfyui_output_deleted request_id=%s prompt_id=%s count=%d", j->rid,
         j->prompt_id, deleted);
  if (refused)
    tg_log(TG_WARN, "event=comfyui_output_not_deleted request_id=%s count=%d reason=\"not this "
           "job's file or an unsafe path\"", j->rid, refused);
}
