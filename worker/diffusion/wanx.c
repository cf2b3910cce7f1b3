/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wanx.c - the DashScope wanx diffusion backend (async image synthesis).
 * A paint holds one of the env's wanx task slots (limits.wanx.concurrency)
 * from before the submission until the task ends, submits with
 * "X-DashScope-Async: enable" (one limits.wanx.rps token), polls
 * /api/v1/tasks/{task_id} every wanx.poll_ms until SUCCEEDED, FAILED,
 * UNKNOWN or the deadline (then a best-effort cancel), and downloads
 * output.results[0].url at once - result URLs expire after 24 h - bounded
 * by diffusion.max_image_bytes, only from hosts of wanx.download_hosts,
 * following at most 3 redirects, each checked against the same list. The
 * JSON calls go through tg_api_call() (breaker, Retry-After, errors by
 * cause); the binary download has its own small retry loop with the same
 * rules. The key goes only into the Authorization header of DashScope
 * calls: never to the download host, never into a log or a message.
 */
#include "diffusion.h"
#include "http_client.h"
#include "metrics.h"
#include "provider/api_call.h"
#include "provider/api_error.h"
#include "provider/breaker.h"
#include "provider/fleet_limit.h"
#include "tg_json.h"
#include "tg_log.h"
#include "tg_time.h"

#include <ctype.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUBMIT_PATH "/api/v1/services/aigc/text2image/image-synthesis"
#define TASK_PATH "/api/v1/tasks/"
#define WANX_MIN_SIDE 512 /* wanx2.x: each side 512..1440 */
#define WANX_MAX_SIDE 1440
#define WANX_MAX_SEED 2147483647 /* DashScope's seed is 0..2^31-1 */
#define MAX_HOSTS 32
#define MAX_HOST_CHARS 255
#define MAX_TASK_ID 128
#define MAX_URL 4096
#define MAX_API_RESPONSE (1 << 20)
#define MAX_REDIRECTS 3
#define MAX_KEY 256
#define CANCEL_TIMEOUT_MS 2000

/* One entry of wanx.download_hosts, lower case. */
struct host_rule {
  char name[MAX_HOST_CHARS + 1]; /* the host, or for "*.d" the domain d */
  bool subdomains;               /* "*.d": any name ending in ".d", at any depth, not d itself */
};

struct wanx {
  char base[TG_CONF_STR];
  char model[64];
  char auth[MAX_KEY + 32];       /* "Authorization: Bearer <key>": never logged */
  struct host_rule hosts[MAX_HOSTS];
  int n_hosts;
  int64_t poll_ms;
  int64_t max_image_bytes;
  int concurrency;               /* limits.wanx.concurrency; 0 = no slots taken */
  tg_breaker_t *breaker;
  tg_fleet_limit_t *limit;
  struct tg_provider provider;
  char holder_prefix[TG_MAX_REQUEST_ID_CHARS + 8];
  atomic_uint_fast64_t paints;   /* makes each paint's slot holder unique */
};

/* ---- the download host allow-list -------------------------------------- */

/* A host name or IPv4 address ([A-Za-z0-9.-], no empty label), or an
 * IPv6 literal in brackets. No scheme, port, path or bare "*". */
static bool host_name_ok(const char *s, size_t l) {
  if (l >= 2 && s[0] == '[' && s[l - 1] == ']') {
    for (size_t i = 1; i + 1 < l; i++)
      if (!isxdigit((unsigned char)s[i]) && s[i] != ':' && s[i] != '.')
        return false;
    return l > 2;
  }
  if (l == 0 || s[0] == '.' || s[0] == '-')
    return false;
  for (size_t i = 0; i < l; i++) {
    bool ok = isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '.';
    if (!ok || (s[i] == '.' && i + 1 < l && s[i + 1] == '.'))
      return false;
  }
  return true;
}

/*
 * wanx.download_hosts: a comma-separated list. "name" matches that host
 * exactly; "*.example.com" matches every name below example.com at any
 * depth (OSS result hosts are like bucket.oss-cn-beijing.aliyuncs.com), but
 * not example.com itself - list it too when wanted. Case-insensitive; one
 * trailing dot is ignored; the port never takes part, so an entry with a
 * port is refused rather than silently widened.
 */
static bool parse_hosts(struct wanx *w, const char *list, char *errstr, size_t n) {
  for (const char *p = list; *p;) {
    size_t len = strcspn(p, ",");
    const char *s = p, *entry;
    size_t l = len;
    while (l && isspace((unsigned char)*s))
      s++, l--;
    while (l && isspace((unsigned char)s[l - 1]))
      l--;
    entry = s;
    size_t entry_len = l;
    p += len + (p[len] == ',');
    if (!l)
      continue;
    bool sub = l > 2 && s[0] == '*' && s[1] == '.';
    if (sub)
      s += 2, l -= 2;
    if (l && s[l - 1] == '.')
      l--;
    if (!host_name_ok(s, l) || l > MAX_HOST_CHARS) {
      snprintf(errstr, n, "wanx.download_hosts: \"%.*s\" is not a host name or \"*.domain\" "
               "(no scheme, port, path or bare *)", (int)(entry_len > 200 ? 200 : entry_len),
               entry);
      return false;
    }
    if (w->n_hosts == MAX_HOSTS) {
      snprintf(errstr, n, "wanx.download_hosts: more than %d hosts", MAX_HOSTS);
      return false;
    }
    struct host_rule *r = &w->hosts[w->n_hosts++];
    for (size_t i = 0; i < l; i++)
      r->name[i] = (char)tolower((unsigned char)s[i]);
    r->name[l] = '\0';
    r->subdomains = sub;
  }
  if (!w->n_hosts) {
    snprintf(errstr, n, "wanx.download_hosts: must name at least one host");
    return false;
  }
  return true;
}

static bool host_allowed(const struct wanx *w, const char *host) {
  char h[MAX_HOST_CHARS + 2];
  size_t hl = strlen(host);
  if (hl == 0 || hl >= sizeof(h))
    return false;
  for (size_t i = 0; i <= hl; i++)
    h[i] = (char)tolower((unsigned char)host[i]);
  if (h[hl - 1] == '.')
    h[--hl] = '\0';
  for (int i = 0; i < w->n_hosts; i++) {
    const struct host_rule *r = &w->hosts[i];
    size_t rl = strlen(r->name);
    if (!r->subdomains ? strcmp(h, r->name) == 0
                       : hl > rl + 1 && h[hl - rl - 1] == '.' && strcmp(h + hl - rl, r->name) == 0)
      return true;
  }
  return false;
}

/*
 * Parses @url (resolved against @base when given: a Location may be
 * relative) with libcurl's own parser - the one that makes the request, so
 * the host checked is the host contacted - and checks scheme and host.
 * Fills @out with the absolute URL and @host; false with @why.
 */
static bool check_url(const struct wanx *w, const char *base, const char *url, char *out,
                      size_t on, char *host, size_t hn, char *why, size_t wn) {
  CURLU *u = curl_url();
  char *scheme = NULL, *h = NULL, *full = NULL;
  bool ok = false;
  *host = '\0';
  if (!u) {
    snprintf(why, wn, "out of memory");
    return false;
  }
  if ((base && curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK) ||
      curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
      curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
    snprintf(why, wn, "not a usable URL");
    goto out;
  }
  snprintf(host, hn, "%s", h);
  if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
    snprintf(why, wn, "scheme %.16s is not http or https", scheme);
    goto out;
  }
  if (strlen(h) >= hn || !host_allowed(w, h)) {
    snprintf(why, wn, "host %.200s is not in wanx.download_hosts", h);
    goto out;
  }
  if (strlen(full) >= on) {
    snprintf(why, wn, "URL longer than %zu characters", on - 1);
    goto out;
  }
  snprintf(out, on, "%s", full);
  ok = true;
out:
  curl_free(scheme);
  curl_free(h);
  curl_free(full);
  curl_url_cleanup(u);
  return ok;
}

/* ---- create, destroy, ready --------------------------------------------- */

static void w_destroy(void *state) {
  struct wanx *w = state;
  if (!w)
    return;
  tg_fleet_limit_destroy(w->limit);
  tg_breaker_destroy(w->breaker);
  explicit_bzero(w->auth, sizeof(w->auth));
  free(w);
}

static tg_err_t w_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                         size_t n) {
  struct wanx *w = calloc(1, sizeof(*w));
  char key[MAX_KEY];
  if (!w) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  tg_err_t rc = TG_ERR_INVAL;
  snprintf(w->base, sizeof(w->base), "%s", conf->dashscope_url);
  size_t bl = strlen(w->base);
  while (bl > 0 && w->base[bl - 1] == '/')
    w->base[--bl] = '\0';
  snprintf(w->model, sizeof(w->model), "%s", conf->wanx_model);
  char why[256];
  if (!tg_secret_get(conf->dashscope_key_env, key, sizeof(key), why, sizeof(why))) {
    snprintf(errstr, n, "diffusion.backend wanx needs a DashScope API key: %s (set the "
             "environment variable %s, or %s_FILE naming a file that holds it; see "
             "dashscope.api_key_env)", why, conf->dashscope_key_env, conf->dashscope_key_env);
    goto err;
  }
  snprintf(w->auth, sizeof(w->auth), "Authorization: Bearer %s", key);
  if (!parse_hosts(w, conf->wanx_download_hosts, errstr, n))
    goto err;
  w->poll_ms = conf->wanx_poll_ms;
  w->max_image_bytes = conf->max_image_bytes;
  w->concurrency = conf->limits_wanx.concurrency;
  w->breaker = tg_breaker_create("wanx", &(struct tg_breaker_conf){
                                             .failures = conf->breaker_failures,
                                             .open_ms = conf->breaker_open_ms});
  if (!w->breaker) {
    snprintf(errstr, n, "out of memory");
    rc = TG_ERR_NOMEM;
    goto err;
  }
  w->limit = tg_fleet_limit_create(
      &conf->queue,
      &(struct tg_fleet_limit_conf){.env = conf->env, .name = "wanx",
                                    .rps = conf->limits_wanx.rps,
                                    .burst = conf->limits_wanx.burst,
                                    .concurrency = conf->limits_wanx.concurrency,
                                    .slot_lease_ms = conf->diffusion_timeout_ms + 60000},
      errstr, n);
  if (!w->limit)
    goto err;
  w->provider = (struct tg_provider){.name = "wanx", .stage_code = TG_CODE_DIFFUSION_FAILED,
                                     .breaker = w->breaker, .limit = w->limit,
                                     .retries = conf->wanx_http_retries,
                                     .timeout_ms = conf->wanx_http_timeout_ms,
                                     .max_retry_after_ms = conf->max_retry_after_ms};
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_request_id_generate(rid);
  snprintf(w->holder_prefix, sizeof(w->holder_prefix), "wanx-%s", rid);
  explicit_bzero(key, sizeof(key));
  *state = w;
  return TG_OK;
err:
  explicit_bzero(key, sizeof(key));
  w_destroy(w);
  return rc;
}

/* There is no cheap reachability check that spends no quota; create()
 * already refused to start without a key. */
static bool w_ready(void *state, char *why, size_t n) {
  (void)state;
  (void)why;
  (void)n;
  return true;
}

/* ---- the task ----------------------------------------------------------- */

static bool submit(struct wanx *w, const struct tg_diffusion_req *req, char *task_id,
                   size_t tn, struct tg_stage_error *err) {
  char size[32];
  snprintf(size, sizeof(size), "%d*%d", req->width, req->height);
  json_t *input = json_pack("{s:s}", "prompt", req->prompt ? req->prompt : "");
  if (input && req->negative_prompt && *req->negative_prompt)
    json_object_set_new(input, "negative_prompt", json_string(req->negative_prompt));
  json_int_t seed = (json_int_t)req->seed; /* checked against DashScope's 0..2147483647 */
  json_t *body = json_pack("{s:s, s:o, s:{s:s, s:i, s:I}}", "model", w->model, "input", input,
                           "parameters", "size", size, "n", 1, "seed", seed);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text) {
    tg_stage_fail(err, TG_CODE_INTERNAL, true, "wanx: out of memory building the request");
    return false;
  }
  char url[TG_CONF_STR + 64];
  snprintf(url, sizeof(url), "%s" SUBMIT_PATH, w->base);
  const char *const hdrs[] = {w->auth, "Content-Type: application/json",
                              "X-DashScope-Async: enable", NULL};
  struct tg_api_request r = {.request_id = req->job->request_id, .what = "submit",
                             .method = "POST", .url = url, .body = text, .headers = hdrs,
                             .max_response = MAX_API_RESPONSE, .take_token = true,
                             .deadline_ms = req->deadline_mono_ms};
  json_t *root = NULL;
  bool ok = tg_api_call(&w->provider, &r, &root, err);
  free(text);
  if (!ok)
    return false;
  const char *id = json_string_value(json_object_get(json_object_get(root, "output"), "task_id"));
  const char *drid = json_string_value(json_object_get(root, "request_id"));
  ok = id && *id && strlen(id) <= MAX_TASK_ID && strlen(id) < tn &&
       tg_charset_ok(id, TG_CS_REQUEST_ID);
  if (ok) {
    snprintf(task_id, tn, "%s", id);
    char q[160];
    tg_log(TG_INFO, "event=wanx_submitted request_id=%s task_id=%s dashscope_request_id=%s",
           req->job->request_id, task_id, tg_logq(q, sizeof(q), drid ? drid : ""));
  } else {
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                  "wanx submit: the answer holds no usable output.task_id");
  }
  json_decref(root);
  return ok;
}

/* A FAILED task (or a failed result): the provider's code decides. The
 * classifier knows moderation (content_rejected), exhausted quotas and
 * throttling by code. A task has no HTTP status of its own, so one is
 * implied: codes naming a bad request (Invalid*, AccessDenied*) stand for a
 * 400 - not retried; any other code (InternalError.Algo, a timeout inside
 * the service, an unknown or missing code) stands for a failure on the
 * provider's side, a 500 - retried, since a new task usually succeeds. */
static void task_failed(const char *task_id, const char *code, const char *msg,
                        struct tg_stage_error *err) {
  bool client = code && (strncasecmp(code, "Invalid", 7) == 0 ||
                         strncasecmp(code, "AccessDenied", 12) == 0 ||
                         strncasecmp(code, "BadRequest", 10) == 0);
  struct tg_api_failure f = {.no_answer = false, .http_status = client ? 400 : 500,
                             .provider_code = code && *code ? code : NULL};
  struct tg_api_verdict v;
  tg_api_classify(&f, TG_CODE_DIFFUSION_FAILED, &v);
  tg_stage_fail(err, v.code, v.retryable, "wanx task %s failed: %s: %s", task_id,
                code && *code ? code : "(no code)", msg && *msg ? msg : "(no message)");
  tg_mask_keys(err->message);
}

/* Best effort: cancel a task we gave up on (DashScope cancels only PENDING
 * tasks); the answer is ignored. */
static void cancel(struct wanx *w, const struct tg_diffusion_req *req, const char *task_id) {
  char url[TG_CONF_STR + MAX_TASK_ID + 32];
  snprintf(url, sizeof(url), "%s" TASK_PATH "%s/cancel", w->base, task_id);
  const char *const hdrs[] = {w->auth, NULL};
  struct tg_http_req r = {.method = "POST", .url = url, .body = "", .body_len = 0,
                          .headers = hdrs, .timeout_ms = CANCEL_TIMEOUT_MS,
                          .max_response = 65536};
  struct tg_http_resp resp;
  char why[256];
  bool answered = tg_http_do(&r, &resp, why, sizeof(why));
  tg_log(TG_INFO, "event=wanx_cancel request_id=%s task_id=%s status=%ld", req->job->request_id,
         task_id, answered ? resp.status : 0L);
  if (answered)
    tg_blob_free(&resp.body);
}

/* The failure of a task still queued or running when the job's deadline came. */
static void not_finished(struct tg_stage_error *err, const char *task_id, const char *status) {
  tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                "wanx task %s not finished within the diffusion timeout (still %s)", task_id,
                status);
}

/* Polls until the task ends. true with the result URL; false with err
 * (after a best-effort cancel when the task may still be queued). */
static bool wait_task(struct wanx *w, const struct tg_diffusion_req *req, const char *task_id,
                      char *result_url, size_t un, struct tg_stage_error *err) {
  char url[TG_CONF_STR + MAX_TASK_ID + 32];
  snprintf(url, sizeof(url), "%s" TASK_PATH "%s", w->base, task_id);
  const char *const hdrs[] = {w->auth, NULL};
  char last[32] = "PENDING";
  for (;;) {
    struct tg_api_request r = {.request_id = req->job->request_id, .what = "task",
                               .method = "GET", .url = url, .headers = hdrs,
                               .max_response = MAX_API_RESPONSE,
                               .deadline_ms = req->deadline_mono_ms};
    json_t *root = NULL;
    if (!tg_api_call(&w->provider, &r, &root, err)) {
      /* a poll the deadline cut short: the task simply did not finish in time */
      if (err->deadline_cut)
        not_finished(err, task_id, last);
      cancel(w, req, task_id);
      return false;
    }
    json_t *out = json_object_get(root, "output");
    const char *st = json_string_value(json_object_get(out, "task_status"));
    bool done = true, ok = false;
    if (!st) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "wanx task %s: the answer holds no output.task_status", task_id);
    } else if (strcmp(st, "PENDING") == 0 || strcmp(st, "RUNNING") == 0) {
      snprintf(last, sizeof(last), "%s", st);
      done = false;
    } else if (strcmp(st, "SUCCEEDED") == 0) {
      json_t *res = json_array_get(json_object_get(out, "results"), 0);
      const char *u = json_string_value(json_object_get(res, "url"));
      if (u && *u && strlen(u) < un) {
        snprintf(result_url, un, "%s", u);
        ok = true;
      } else if (json_string_value(json_object_get(res, "code"))) { /* a failed result */
        task_failed(task_id, json_string_value(json_object_get(res, "code")),
                    json_string_value(json_object_get(res, "message")), err);
      } else {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                      "wanx task %s: SUCCEEDED without a usable output.results[0].url", task_id);
      }
    } else if (strcmp(st, "FAILED") == 0) {
      task_failed(task_id, json_string_value(json_object_get(out, "code")),
                  json_string_value(json_object_get(out, "message")), err);
    } else if (strcmp(st, "UNKNOWN") == 0) {
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "wanx task %s: status UNKNOWN (expired or unknown to DashScope)", task_id);
    } else { /* CANCELED, or a status this code does not know */
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "wanx task %s: status %.32s", task_id,
                    st);
    }
    json_decref(root);
    if (done)
      return ok;
    if (req->deadline_mono_ms && tg_mono_ms() + w->poll_ms > req->deadline_mono_ms) {
      not_finished(err, task_id, last);
      cancel(w, req, task_id);
      return false;
    }
    tg_sleep_ms(w->poll_ms);
  }
}

/* ---- the download -------------------------------------------------------- */

/*
 * One GET of a result URL, retried within the stage like tg_api_call():
 * no answer, 408, 429 and 5xx again after 200 ms, 400 ms, ... or the
 * Retry-After asked for. true with an answer of any
 * other status (redirects included); false with err.
 */
static bool get_image(struct wanx *w, const struct tg_diffusion_req *req, const char *task_id,
                      const char *url, const char *host, struct tg_http_resp *resp,
                      struct tg_stage_error *err) {
  int64_t backoff = 200;
  char why[256];
  for (int attempt = 0;; attempt++) {
    int64_t now = tg_mono_ms(), tmo = w->provider.timeout_ms;
    if (req->deadline_mono_ms) {
      if (req->deadline_mono_ms - now <= 0) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                      "wanx task %s: diffusion timed out before the download from %s", task_id,
                      host);
        return false;
      }
      if (req->deadline_mono_ms - now < tmo)
        tmo = req->deadline_mono_ms - now;
    }
    /* no breaker here: result URLs are object storage, not the DashScope API, and
     * their faults must not stop submissions and polls */
    struct tg_http_req r = {.method = "GET", .url = url, .timeout_ms = tmo,
                            .max_response = (size_t)w->max_image_bytes};
    bool answered = tg_http_do(&r, resp, why, sizeof(why));
    bool too_big = !answered && resp->too_large;
    if (too_big) {
      tg_metrics_provider_call("wanx", TG_CALL_FAILED);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                    "wanx task %s: the image from %s is larger than diffusion.max_image_bytes "
                    "(%" PRId64 " bytes)", task_id, host, w->max_image_bytes);
      return false;
    }
    int64_t wait = backoff;
    if (answered) {
      long st = resp->status;
      if (st != 408 && st != 429 && st < 500) {
        tg_metrics_provider_call("wanx", TG_CALL_OK);
        return true;
      }
      snprintf(why, sizeof(why), "HTTP %ld", st);
      int64_t ra = tg_retry_after_ms(*resp->retry_after ? resp->retry_after : NULL, tg_now_ms(),
                                     INT64_C(1) << 40);
      tg_blob_free(&resp->body);
      if (ra > w->provider.max_retry_after_ms) {
        tg_metrics_provider_call("wanx", TG_CALL_FAILED);
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                      "wanx task %s: download from %s: %s, Retry-After %" PRId64
                      " ms is more than provider.max_retry_after_ms", task_id, host, why, ra);
        return false;
      }
      if (ra > wait)
        wait = ra;
    }
    bool late = req->deadline_mono_ms && tg_mono_ms() + wait >= req->deadline_mono_ms;
    if (attempt >= w->provider.retries || late) {
      tg_metrics_provider_call("wanx", TG_CALL_FAILED);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true, "wanx task %s: download from %s: %s",
                    task_id, host, why);
      return false;
    }
    tg_metrics_provider_call("wanx", TG_CALL_RETRIED);
    char q[300];
    tg_log(TG_WARN, "event=wanx_download_retry request_id=%s task_id=%s host=%s attempt=%d "
           "delay_ms=%" PRId64 " err=%s", req->job->request_id, task_id, host, attempt + 1,
           wait, tg_logq(q, sizeof(q), why));
    tg_sleep_ms(wait);
    backoff *= 2;
  }
}

static bool is_image(const struct tg_blob *b) {
  static const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const unsigned char jpeg[3] = {0xff, 0xd8, 0xff};
  return (b->len >= sizeof(png) && memcmp(b->data, png, sizeof(png)) == 0) ||
         (b->len >= sizeof(jpeg) && memcmp(b->data, jpeg, sizeof(jpeg)) == 0);
}

/* Downloads the result, following at most MAX_REDIRECTS redirects by hand,
 * each target checked against the allow-list. A URL or redirect outside
 * it, or an image over the cap, is not retried: the next task's URL would
 * be the same kind. The signed query string is never logged. */
static bool download(struct wanx *w, const struct tg_diffusion_req *req, const char *task_id,
                     const char *result_url, struct tg_blob *image, struct tg_stage_error *err) {
  char url[MAX_URL], host[MAX_HOST_CHARS + 1], why[300];
  if (!check_url(w, NULL, result_url, url, sizeof(url), host, sizeof(host), why, sizeof(why))) {
    tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false, "wanx task %s: result URL refused: %s",
                  task_id, why);
    return false;
  }
  for (int hop = 0;; hop++) {
    struct tg_http_resp resp;
    if (!get_image(w, req, task_id, url, host, &resp, err))
      return false;
    long st = resp.status;
    if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
      char loc[sizeof(resp.location)], next[MAX_URL];
      snprintf(loc, sizeof(loc), "%s", resp.location);
      tg_blob_free(&resp.body);
      if (!*loc) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                      "wanx task %s: HTTP %ld from %s without a usable Location", task_id, st,
                      host);
        return false;
      }
      if (hop == MAX_REDIRECTS) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                      "wanx task %s: more than %d redirects downloading the result", task_id,
                      MAX_REDIRECTS);
        return false;
      }
      if (!check_url(w, url, loc, next, sizeof(next), host, sizeof(host), why, sizeof(why))) {
        tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, false,
                      "wanx task %s: redirect (HTTP %ld) refused: %s", task_id, st, why);
        return false;
      }
      snprintf(url, sizeof(url), "%s", next);
      continue;
    }
    if (st != 200) {
      struct tg_api_failure f = {.http_status = (int)st};
      struct tg_api_verdict v;
      tg_api_classify(&f, TG_CODE_DIFFUSION_FAILED, &v);
      tg_stage_fail(err, v.code, v.retryable, "wanx task %s: download from %s: HTTP %ld (%s)",
                    task_id, host, st, v.why);
      tg_blob_free(&resp.body);
      return false;
    }
    if (!is_image(&resp.body)) {
      /* most likely a damaged transfer or a proxy's page: a new task may do */
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "wanx task %s: the download from %s is not a PNG or JPEG (%zu bytes)",
                    task_id, host, resp.body.len);
      tg_blob_free(&resp.body);
      return false;
    }
    *image = resp.body;
    return true;
  }
}

/* ---- paint --------------------------------------------------------------- */

static bool w_paint(void *state, const struct tg_diffusion_req *req, struct tg_blob *image,
                    struct tg_stage_error *err) {
  struct wanx *w = state;
  int64_t t0 = tg_mono_ms();
  memset(image, 0, sizeof(*image));
  if (req->width < WANX_MIN_SIDE || req->width > WANX_MAX_SIDE ||
      req->height < WANX_MIN_SIDE || req->height > WANX_MAX_SIDE) {
    tg_stage_fail(err, TG_CODE_INVALID_INPUT, false,
                  "wanx: size %dx%d is not supported: %s takes %d..%d pixels per side",
                  req->width, req->height, w->model, WANX_MIN_SIDE, WANX_MAX_SIDE);
    return false;
  }
  if (req->seed < 0 || req->seed > WANX_MAX_SEED) {
    tg_stage_fail(err, TG_CODE_INVALID_INPUT, false,
                  "wanx: seed %" PRId64 " is out of DashScope's range 0..%d", req->seed,
                  WANX_MAX_SEED);
    return false;
  }
  char holder[sizeof(w->holder_prefix) + TG_MAX_REQUEST_ID_CHARS + 32];
  snprintf(holder, sizeof(holder), "%s-%" PRIuFAST64 "-%s", w->holder_prefix,
           atomic_fetch_add(&w->paints, 1), req->job->request_id);
  if (w->concurrency > 0) {
    int64_t waited = 0;
    bool got = tg_fleet_limit_acquire_slot(w->limit, holder, req->deadline_mono_ms, &waited);
    if (waited > 0)
      tg_metrics_limit_wait("wanx", waited);
    if (!got) {
      tg_metrics_provider_call("wanx", TG_CALL_REFUSED);
      tg_stage_fail(err, TG_CODE_DIFFUSION_FAILED, true,
                    "wanx: no free task slot (limits.wanx.concurrency=%d) within the diffusion "
                    "timeout", w->concurrency);
      return false;
    }
  }
  char task_id[MAX_TASK_ID + 1] = "", result_url[MAX_URL];
  bool ok = submit(w, req, task_id, sizeof(task_id), err) &&
            wait_task(w, req, task_id, result_url, sizeof(result_url), err);
  if (w->concurrency > 0) /* the task has ended (or was given up): free its slot */
    tg_fleet_limit_release_slot(w->limit, holder);
  if (ok)
    ok = download(w, req, task_id, result_url, image, err);
  if (ok)
    tg_log(TG_INFO, "event=wanx_done request_id=%s task_id=%s bytes=%zu ms=%" PRId64,
           req->job->request_id, task_id, image->len, tg_mono_ms() - t0);
  return ok;
}

const struct tg_diffusion_ops tg_diffusion_wanx = {
  .name = "wanx",
  .create = w_create,
  .destroy = w_destroy,
  .paint = w_paint,
  .ready = w_ready,
};
