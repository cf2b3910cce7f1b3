/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.c - the worker's configuration table: one row per key with its
 * type, default, range and help. Loading is defaults → JSON file (nested
 * objects, e.g. {"queue": {"max_deliveries": 5}}) → TRIPGEN_* environment
 * variables; every step refuses unknown keys and bad values by name.
 */
#include "config.h"
#include "kafka_client.h"
#include "redis_url.h"
#include "tg_json.h"
#include "tg_log.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* P_MAP: an object of strings, kept as "name=value" lines (env: "a=b;c=d") */
enum prop_type { P_STR, P_INT, P_I64, P_BOOL, P_MAP };

struct prop {
  const char *key;
  enum prop_type type;
  size_t off;
  size_t size;          /* P_STR: buffer size */
  int64_t min, max;     /* P_INT, P_I64 */
  const char *def;
  const char *choices;  /* P_STR: comma-separated allowed values, or NULL */
  const char *help;
};

#define OFF(f) offsetof(struct tg_worker_conf, f)
#define STR(k, f, d, ch, h) {k, P_STR, OFF(f), sizeof(((struct tg_worker_conf *)0)->f), 0, 0, d, ch, h}
#define INT(k, f, lo, hi, d, h) {k, P_INT, OFF(f), 0, lo, hi, d, NULL, h}
#define I64(k, f, lo, hi, d, h) {k, P_I64, OFF(f), 0, lo, hi, d, NULL, h}
#define BOOL(k, f, d, h) {k, P_BOOL, OFF(f), 0, 0, 1, d, NULL, h}
#define MAP(k, f, h) {k, P_MAP, OFF(f), sizeof(((struct tg_worker_conf *)0)->f), 0, 0, "", NULL, h}

#define DEFAULT_NEGATIVE                                                                   \
  "(car:1.4), vehicle, NSFW, nude, naked, porn, (worst quality, low quality:1.4), deformed, " \
  "distorted, disfigured, cropped, out of frame, poorly drawn, blurry, jpeg artifacts, "      \
  "watermark, text, signature, sketch"

static const struct prop props[] = {
  STR("env", env, "dev", NULL, "environment this worker serves (its queues and storage prefix)"),
  STR("worker.name", worker_name, "", NULL,
      "stable consumer name (e.g. the StatefulSet pod name); empty: host-pid"),
  STR("log.level", log_level, "info", "debug,info,warn,error", "log level"),
  STR("redis.url", queue.redis_url, "redis://127.0.0.1:6379", NULL,
      "redis://[[user]:password@]host[:port][/db] or unix:///path; a password only via "
      "TRIPGEN_REDIS_URL, never in the file"),
  STR("queue.backend", queue.backend, "redis", "redis,kafka", "queue transport"),
  STR("queue.group", queue.group, "workers", NULL, "consumer group of the workers"),
  I64("queue.visibility_timeout_ms", queue.visibility_timeout_ms, 100, 86400000, "300000",
      "idle time after which another worker reclaims a job"),
  INT("queue.max_deliveries", queue.max_deliveries, 1, 1000, "5",
      "deliveries before a job that keeps crashing workers is dead-lettered"),
  I64("queue.cap", queue.queue_cap, 1, TG_MAX_QUEUE_LENGTH, "100000",
      "input queue length at which puts are refused"),
  I64("queue.dlq_max_len", queue.dlq_max_len, 100, 100000000, "100000",
      "approximate number of dead letters kept; the oldest are trimmed (their failed "
      "results stay on the sink)"),
  I64("queue.sink_max_len", queue.sink_max_len, 100, 100000000, "100000",
      "approximate number of output frames kept"),
  I64("queue.result_ttl_ms", queue.result_ttl_ms, 1000, 31622400000LL, "604800000",
      "lifetime of stored final results"),
  I64("queue.connect_timeout_ms", queue.connect_timeout_ms, 1, 600000, "2000",
      "Redis connect timeout"),
  I64("queue.command_timeout_ms", queue.command_timeout_ms, 1, 600000, "5000",
      "Redis command timeout"),
  I64("queue.reconnect_max_ms", queue.reconnect_max_ms, 0, 3600000, "10000",
      "how long one operation keeps reconnecting before it fails"),
  BOOL("queue.housekeeping", housekeeping, "true",
       "run promote_due and reclaim in this worker (turn off when a scheduler runs them)"),
  I64("queue.housekeeping_interval_ms", housekeeping_interval_ms, 10, 600000, "1000",
      "how often housekeeping and lease refresh run"),
  I64("queue.lease_refresh_ms", lease_refresh_ms, 0, 3600000, "0",
      "extend the lease of running jobs this often; 0: a third of the visibility timeout"),
  INT("queue.take_batch", take_batch, 1, 100, "4", "most jobs taken in one read"),
  INT("queue.take_threads", take_threads, 1, TG_WORKER_MAX_TAKERS, "1",
      "threads that take and parse jobs (each with its own Redis connection)"),
  STR("kafka.brokers", queue.kafka.brokers, "127.0.0.1:9092", NULL,
      "Kafka bootstrap servers, host:port comma-separated (queue.backend kafka)"),
  STR("kafka.topic_in", queue.kafka.topic_in, "tripgen-{env}-in", NULL,
      "input topic: jobs or plain trip events; {env} is replaced by the env"),
  STR("kafka.topic_out", queue.kafka.topic_out, "tripgen-{env}-out", NULL,
      "output topic: results keyed by request_id"),
  STR("kafka.topic_dlq", queue.kafka.topic_dlq, "tripgen-{env}-dlq", NULL,
      "dead-letter topic: the job and its last failed result"),
  STR("kafka.topic_retry", queue.kafka.topic_retry, "", NULL,
      "where retries go (attempt+1, not-before header); empty: the input topic"),
  BOOL("kafka.exactly_once", queue.kafka.exactly_once, "false",
       "transactional producer: results and the offset watermark commit together"),
  INT("kafka.max_in_flight", queue.kafka.max_in_flight, 1, 100000, "16",
      "records held (buffered + running) before the consumer pauses its partitions"),
  STR("kafka.instance_id", queue.kafka.instance_id, "", NULL,
      "group.instance.id for static membership (e.g. the pod name); empty: dynamic"),
  I64("kafka.session_timeout_ms", queue.kafka.session_timeout_ms, 1000, 3600000, "10000",
      "consumer group session timeout: a silent worker's partitions move after it"),
  I64("kafka.max_poll_interval_ms", queue.kafka.max_poll_interval_ms, 1000, 86400000, "300000",
      "max.poll.interval.ms (the worker polls while jobs run, so jobs may take longer)"),
  MAP("kafka.conf", queue.kafka.props,
      "more librdkafka properties (SASL, TLS...); a secret as \"env:NAME\" or \"file:PATH\"; "
      "variable: name=value;name=value"),
  INT("queue.max_in_flight", max_in_flight, 0, 10000, "0",
      "most jobs this worker holds at once (EAS _window_); 0: as many as the stage queues hold"),
  INT("retry.max_attempts", max_attempts, 1, TG_MAX_ATTEMPT, "5",
      "attempts of a job before it is dead-lettered"),
  I64("retry.backoff_base_ms", backoff_base_ms, 1, 3600000, "2000",
      "delay before the second attempt; doubles each attempt, with jitter"),
  I64("retry.backoff_max_ms", backoff_max_ms, 1, 86400000, "300000", "largest retry delay"),
  STR("prompt.backend", prompt_backend, "template", "template,dashscope,openai",
      "prompt stage backend: the built-in composer, qwen on DashScope's native API, or any "
      "OpenAI-compatible chat endpoint"),
  INT("prompt.concurrency", prompt_concurrency, 1, 64, "2", "prompt stage threads"),
  STR("prompt.negative", negative_prompt, DEFAULT_NEGATIVE, NULL,
      "negative prompt (the scene is painted without cars: the owner's car is composited)"),
  STR("prompt.system_prompt_file", system_prompt_file, "deploy/prompts/trip-painter-system.txt",
      NULL, "system prompt of the LLM backends"),
  STR("prompt.fallback", prompt_fallback, "none", "none,template",
      "template: when the LLM fails for good (not moderation), use the built-in prompt "
      "(prompt_source \"template\")"),
  INT("prompt.max_chars", prompt_max_chars, 16, TG_MAX_PROMPT_CHARS, "1200",
      "longest prompt kept from an LLM answer (characters)"),
  STR("llm.model", llm_model, "qwen-max", NULL, "model of the LLM prompt backends"),
  I64("llm.timeout_ms", llm_timeout_ms, 100, 600000, "30000", "timeout of one LLM call"),
  INT("llm.retries", llm_retries, 0, 10, "2",
      "retries of a retryable LLM failure within the stage (Retry-After honoured)"),
  INT("llm.max_tokens", llm_max_tokens, 16, 8192, "400", "most tokens the LLM may answer"),
  STR("dashscope.url", dashscope_url, "https://dashscope.aliyuncs.com", NULL,
      "DashScope base URL (native API: qwen prompts, wanx images)"),
  STR("dashscope.api_key_env", dashscope_key_env, "DASHSCOPE_API_KEY", NULL,
      "name of the environment variable holding the DashScope key (or NAME_FILE: a file)"),
  STR("openai.url", openai_url, "https://dashscope.aliyuncs.com/compatible-mode/v1", NULL,
      "OpenAI-compatible base URL, up to /v1 (DashScope compatible mode, vLLM, Ollama)"),
  STR("openai.api_key_env", openai_key_env, "OPENAI_API_KEY", NULL,
      "name of the environment variable holding the key (or NAME_FILE); unset: no "
      "Authorization header (vLLM, Ollama)"),
  STR("diffusion.backend", diffusion_backend, "comfyui", "comfyui,wanx",
      "diffusion stage backend: a ComfyUI workflow, or DashScope wanx"),
  INT("diffusion.slots", diffusion_slots, 1, 64, "1",
      "diffusion jobs at once (what the GPU serves concurrently)"),
  I64("diffusion.timeout_ms", diffusion_timeout_ms, 100, 3600000, "600000",
      "longest one diffusion may take before it is given up (retryably)"),
  I64("diffusion.max_image_bytes", max_image_bytes, 1024, 268435456, "33554432",
      "largest diffusion output accepted (download cap)"),
  STR("diffusion.seed_policy", seed_policy, "request", "request,trip,fixed,random",
      "seed when the job sets none: a hash of request_id and generation (a redelivery paints "
      "the same), a hash of trip_id, diffusion.seed, or random; recorded as seed_policy"),
  I64("diffusion.seed", fixed_seed, 0, 2147483647, "42", "the seed of seed_policy fixed"),
  STR("comfyui.url", comfyui_url, "http://127.0.0.1:8188", NULL,
      "ComfyUI base URL; several, comma-separated, one per GPU"),
  INT("comfyui.slots", comfyui_slots, 1, 16, "1",
      "jobs each ComfyUI holds at once (running or queued); 2 keeps its GPU busy between jobs"),
  STR("comfyui.follow", comfyui_follow, "ws", "ws,poll",
      "follow a job over /ws (falls back to polling /history when the socket drops), or poll"),
  STR("comfyui.output_dir", comfyui_output_dir, "", NULL,
      "ComfyUI's output folder as mounted here; set: the files a job saved are deleted once "
      "fetched"),
  STR("comfyui.workflow", comfyui_workflow, "deploy/workflows/trip-sdxl-api.json", NULL,
      "workflow in ComfyUI's API format"),
  STR("comfyui.bind.prompt", bind.prompt, "6.text", NULL, "node.input that gets the prompt"),
  STR("comfyui.bind.negative", bind.negative, "7.text", NULL,
      "node.input that gets the negative prompt"),
  STR("comfyui.bind.seed", bind.seed, "3.seed", NULL, "node.input that gets the seed"),
  STR("comfyui.bind.width", bind.width, "5.width", NULL, "node.input that gets the width"),
  STR("comfyui.bind.height", bind.height, "5.height", NULL, "node.input that gets the height"),
  STR("comfyui.bind.prefix", bind.prefix, "9.filename_prefix", NULL,
      "node.input that gets the filename prefix (carries env and request_id); empty for a "
      "workflow that sends its image over the socket (SaveImageWebsocket)"),
  I64("comfyui.poll_ms", comfyui_poll_ms, 10, 60000, "500", "how often /history is polled"),
  I64("comfyui.http_timeout_ms", comfyui_http_timeout_ms, 100, 600000, "30000",
      "timeout of one HTTP call to ComfyUI"),
  INT("comfyui.http_retries", comfyui_http_retries, 0, 10, "3",
      "retries of a failed HTTP call (connection errors, 5xx) within the stage"),
  STR("wanx.model", wanx_model, "wanx2.1-t2i-turbo", NULL, "DashScope image synthesis model"),
  I64("wanx.poll_ms", wanx_poll_ms, 10, 60000, "1000", "how often a wanx task is polled"),
  I64("wanx.http_timeout_ms", wanx_http_timeout_ms, 100, 600000, "30000",
      "timeout of one call to DashScope (submit, poll, download)"),
  INT("wanx.http_retries", wanx_http_retries, 0, 10, "2",
      "retries of a retryable wanx call within the stage"),
  STR("wanx.download_hosts", wanx_download_hosts, "*.aliyuncs.com", NULL,
      "hosts result images may be downloaded from, comma-separated (\"*.example.com\": its "
      "subdomains); no redirect leaves them"),
  INT("limits.llm.rps", limits_llm.rps, 0, 100000, "0",
      "LLM requests per second across every worker of the env (0: no limit)"),
  INT("limits.llm.burst", limits_llm.burst, 0, 100000, "0",
      "LLM requests allowed at once after a quiet spell (0: limits.llm.rps)"),
  INT("limits.llm.concurrency", limits_llm.concurrency, 0, 100000, "0",
      "LLM calls in flight across the env (0: no limit)"),
  INT("limits.wanx.rps", limits_wanx.rps, 0, 100000, "0",
      "wanx task submissions per second across the env (0: no limit)"),
  INT("limits.wanx.burst", limits_wanx.burst, 0, 100000, "0", "wanx burst (0: limits.wanx.rps)"),
  INT("limits.wanx.concurrency", limits_wanx.concurrency, 0, 100000, "0",
      "wanx tasks running across the env (0: no limit)"),
  INT("breaker.failures", breaker_failures, 0, 1000, "5",
      "consecutive failed calls (no answer, 5xx) that open a backend's breaker (0: never)"),
  I64("breaker.open_ms", breaker_open_ms, 10, 3600000, "30000",
      "how long an open breaker refuses calls before it lets one probe through"),
  I64("provider.max_retry_after_ms", max_retry_after_ms, 0, 3600000, "30000",
      "longest Retry-After a stage waits for; a longer one ends the stage (the job is "
      "retried later)"),
  STR("postproc.backend", postproc_backend, "cpu", "cpu", "post-process backend"),
  INT("postproc.concurrency", postproc_concurrency, 1, 64, "2", "post-process threads"),
  INT("postproc.jpeg_quality", jpeg_quality, 1, 100, "90", "JPEG quality of the variants"),
  STR("postproc.format", output_format, "jpeg", "jpeg,webp", "encoding of the variants"),
  STR("postproc.assets_dir", assets_dir, "deploy/assets", NULL,
      "the asset catalogue (catalogue.json: vehicle cutouts by model and colour, the logo)"),
  BOOL("postproc.vehicle", vehicle_composite, "true",
       "composite the owner's car (from the catalogue) into the scene"),
  INT("postproc.anchor_x_permille", anchor_x_permille, 0, 1000, "500",
      "the car's bottom centre across the scene, in thousandths"),
  INT("postproc.anchor_y_permille", anchor_y_permille, 0, 1000, "860",
      "the car's bottom centre down the scene, in thousandths (above the caption band)"),
  INT("postproc.car_width_permille", car_width_permille, 50, 1000, "560",
      "the car's width, thousandths of the scene width"),
  INT("postproc.harmonise_permille", harmonise_permille, 0, 1000, "600",
      "strength of the colour transfer from the scene to the car (Lab mean/std)"),
  INT("postproc.max_lightness_shift", max_lightness_shift, 0, 100, "12",
      "most the car's mean lightness (L*) may move: a black car stays black"),
  INT("postproc.feather_px", feather_px, 0, 64, "3", "blur radius of the car's alpha edge"),
  INT("postproc.shadow_permille", shadow_permille, 0, 1000, "450",
      "opacity of the soft contact shadow under the car"),
  INT("postproc.shadow_blur_px", shadow_blur_px, 0, 128, "18", "blur radius of the shadow"),
  BOOL("postproc.logo", logo, "true", "composite the brand logo with its exact colours"),
  INT("postproc.logo_margin_px", logo_margin_px, 0, 1000, "24",
      "the logo's distance from the top-right corner"),
  BOOL("postproc.caption", caption, "true", "draw the caption band with the trip's facts"),
  STR("postproc.font_file", font_file, "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
      NULL, "the caption's font (Noto Sans CJK, Debian fonts-noto-cjk)"),
  INT("postproc.caption_font_px", caption_font_px, 8, 200, "24", "caption text size"),
  INT("postproc.caption_band_permille", caption_band_permille, 20, 500, "110",
      "caption band height, thousandths of the scene height"),
  INT("postproc.caption_band_alpha", caption_band_alpha, 0, 255, "150",
      "opacity of the caption band"),
  STR("storage.backend", storage_backend, "file", "file,oss,s3",
      "object storage backend: a local directory, Alibaba OSS, or S3 (AWS, MinIO, OSS's S3 "
      "endpoint)"),
  INT("storage.concurrency", upload_concurrency, 1, 64, "2", "upload threads"),
  STR("storage.root", storage_root, "var/images", NULL,
      "file backend: directory under which {env}/{yyyy}/{mm}/{dd}/{request_id}/ go"),
  STR("storage.public_base_url", public_base_url, "", NULL,
      "URL prefix of stored objects; empty: file:// URLs (file) or pre-signed GET URLs (oss, "
      "s3)"),
  STR("storage.prefix", storage_prefix, "", NULL,
      "oss, s3: key prefix inside the bucket, before {env}/ (\"\" or ending in /)"),
  STR("storage.bucket", storage_bucket, "", NULL, "oss, s3: the bucket"),
  STR("storage.region", storage_region, "", NULL,
      "oss, s3: the region (cn-hangzhou, us-east-1, ...)"),
  STR("storage.endpoint", storage_endpoint, "", NULL,
      "oss, s3: endpoint URL; empty: https://oss-{region}.aliyuncs.com or "
      "https://s3.{region}.amazonaws.com"),
  STR("storage.addressing", storage_addressing, "virtual", "virtual,path",
      "oss, s3: {bucket}.{endpoint host}/key, or {endpoint}/{bucket}/key (MinIO)"),
  I64("storage.presign_expiry_s", presign_expiry_s, 1, 604800, "86400",
      "oss, s3: lifetime of pre-signed GET URLs"),
  I64("storage.timeout_ms", storage_timeout_ms, 100, 600000, "30000",
      "timeout of one upload"),
  INT("storage.retries", storage_retries, 0, 10, "2",
      "retries of an upload that got no answer or a 5xx, within the stage"),
  STR("oss.signature", oss_signature, "v4", "v4,v1",
      "OSS request signing: OSS4-HMAC-SHA256 or the older HMAC-SHA1"),
  STR("oss.acl", oss_acl, "", NULL, "x-oss-object-acl of uploads; empty: the bucket's"),
  BOOL("oss.forbid_overwrite", oss_forbid_overwrite, "false",
       "send x-oss-forbid-overwrite: an existing object is kept (a redelivery then counts the "
       "upload as done)"),
  STR("http.listen", http_listen, "127.0.0.1:9464", NULL,
      "host:port of /metrics, /healthz, /readyz (port 0: any free port; empty: off)"),
  I64("shutdown.grace_ms", shutdown_grace_ms, 0, 3600000, "30000",
      "on SIGTERM, how long in-flight jobs may finish before they are handed back"),
};

#define N_PROPS (sizeof(props) / sizeof(props[0]))

static const struct prop *find_prop(const char *key) {
  for (size_t i = 0; i < N_PROPS; i++)
    if (strcmp(props[i].key, key) == 0)
      return &props[i];
  return NULL;
}

static bool choice_ok(const char *choices, const char *v) {
  size_t len = strlen(v);
  for (const char *p = choices; *p;) {
    const char *comma = strchr(p, ',');
    size_t l = comma ? (size_t)(comma - p) : strlen(p);
    if (l == len && strncmp(p, v, len) == 0)
      return true;
    if (!comma)
      break;
    p = comma + 1;
  }
  return false;
}

/* Set one key from text (defaults, environment variables). */
static tg_err_t set_text(struct tg_worker_conf *c, const struct prop *p, const char *v,
                         const char *origin, char *errstr, size_t n) {
  char *dst = (char *)c + p->off;
  char *end;
  switch (p->type) {
  case P_STR:
    if (strlen(v) >= p->size) {
      snprintf(errstr, n, "%s (%s): longer than %zu bytes", p->key, origin, p->size - 1);
      return TG_ERR_INVAL;
    }
    if (p->choices && !choice_ok(p->choices, v)) {
      snprintf(errstr, n, "%s (%s): \"%s\" is not one of %s", p->key, origin, v, p->choices);
      return TG_ERR_INVAL;
    }
    snprintf(dst, p->size, "%s", v);
    return TG_OK;
  case P_INT:
  case P_I64: {
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno) {
      snprintf(errstr, n, "%s (%s): expected an integer, got \"%s\"", p->key, origin, v);
      return TG_ERR_INVAL;
    }
    if (x < p->min || x > p->max) {
      snprintf(errstr, n, "%s (%s): %lld is out of range [%" PRId64 ", %" PRId64 "]", p->key,
               origin, x, p->min, p->max);
      return TG_ERR_INVAL;
    }
    if (p->type == P_INT)
      *(int *)(void *)dst = (int)x;
    else
      *(int64_t *)(void *)dst = x;
    return TG_OK;
  }
  case P_MAP: { /* "a=b;c=d" from the environment */
    char lines[sizeof(((struct tg_worker_conf *)0)->queue.kafka.props)];
    size_t o = 0;
    for (const char *q = v; *q; q++) {
      if (o + 2 >= sizeof(lines) || o + 2 >= p->size) {
        snprintf(errstr, n, "%s (%s): longer than %zu bytes", p->key, origin, p->size - 1);
        return TG_ERR_INVAL;
      }
      lines[o++] = *q == ';' ? '\n' : *q;
    }
    lines[o] = '\0';
    for (char *line = lines, *eol; *line; line = eol ? eol + 1 : line + strlen(line)) {
      eol = strchr(line, '\n');
      char *eq = strchr(line, '=');
      if (!eq || eq == line || (eol && eq > eol)) {
        snprintf(errstr, n, "%s (%s): expected name=value pairs separated by ';'", p->key,
                 origin);
        return TG_ERR_INVAL;
      }
      if (!eol)
        break;
    }
    snprintf(dst, p->size, "%s", lines);
    return TG_OK;
  }
  case P_BOOL:
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
      *(bool *)(void *)dst = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
      *(bool *)(void *)dst = false;
    else {
      snprintf(errstr, n, "%s (%s): expected true or false, got \"%s\"", p->key, origin, v);
      return TG_ERR_INVAL;
    }
    return TG_OK;
  }
  return TG_ERR_INVAL;
}

void tg_worker_conf_defaults(struct tg_worker_conf *c) {
  char errstr[256];
  memset(c, 0, sizeof(*c));
  tg_transport_conf_init(&c->queue, "dev");
  for (size_t i = 0; i < N_PROPS; i++)
    if (set_text(c, &props[i], props[i].def, "default", errstr, sizeof(errstr)) != TG_OK)
      abort(); /* a bad default is a programming error */
}

/* Set one key from a JSON value of the file. */
static tg_err_t set_json(struct tg_worker_conf *c, const char *key, json_t *v, char *errstr,
                         size_t n) {
  const struct prop *p = find_prop(key);
  if (!p) {
    snprintf(errstr, n, "%s: unknown key (tripgen-worker --help-config lists them)", key);
    return TG_ERR_INVAL;
  }
  char text[64];
  switch (p->type) {
  case P_STR:
    if (!json_is_string(v)) {
      snprintf(errstr, n, "%s: expected string, got %s", key, tg_json_type_name(v));
      return TG_ERR_INVAL;
    }
    return set_text(c, p, json_string_value(v), "config file", errstr, n);
  case P_INT:
  case P_I64:
    if (!json_is_integer(v)) {
      snprintf(errstr, n, "%s: expected integer, got %s", key, tg_json_type_name(v));
      return TG_ERR_INVAL;
    }
    snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return set_text(c, p, text, "config file", errstr, n);
  case P_MAP: {
    if (!json_is_object(v)) {
      snprintf(errstr, n, "%s: expected an object of strings, got %s", key, tg_json_type_name(v));
      return TG_ERR_INVAL;
    }
    return tg_kafka_props_from_json(v, key, (char *)c + p->off, p->size, errstr, n) ? TG_OK
                                                                                 : TG_ERR_INVAL;
  }
  case P_BOOL:
    if (!json_is_boolean(v)) {
      snprintf(errstr, n, "%s: expected boolean, got %s", key, tg_json_type_name(v));
      return TG_ERR_INVAL;
    }
    return set_text(c, p, json_is_true(v) ? "true" : "false", "config file", errstr, n);
  }
  return TG_ERR_INVAL;
}

static tg_err_t load_object(struct tg_worker_conf *c, json_t *obj, const char *prefix,
                            char *errstr, size_t n) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    char key[128];
    snprintf(key, sizeof(key), "%s%s%s", prefix, *prefix ? "." : "", k);
    /* an object is a section, unless the key itself names a value */
    tg_err_t err = json_is_object(v) && !find_prop(key) ? load_object(c, v, key, errstr, n)
                                                        : set_json(c, key, v, errstr, n);
    if (err != TG_OK)
      return err;
  }
  return TG_OK;
}

static void env_name(const char *key, char *buf, size_t size) {
  size_t o = snprintf(buf, size, "TRIPGEN_");
  for (const char *p = key; *p && o + 1 < size; p++)
    buf[o++] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
  buf[o] = '\0';
}

extern char **environ;

/* A TRIPGEN_* variable that names no key is most likely a typo: say so. */
static void warn_unknown_env(void) {
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "TRIPGEN_", 8) != 0 || strncmp(*e, "TRIPGEN_CONFIG=", 15) == 0)
      continue;
    bool known = false;
    for (size_t i = 0; i < N_PROPS && !known; i++) {
      char name[128];
      env_name(props[i].key, name, sizeof(name));
      size_t l = strlen(name);
      known = strncmp(*e, name, l) == 0 && (*e)[l] == '=';
    }
    if (!known) {
      const char *eq = strchr(*e, '=');
      tg_log(TG_WARN, "event=config_unknown_variable name=%.*s (no such key: see --help-config)",
             (int)(eq ? eq - *e : 64), *e);
    }
  }
}

tg_err_t tg_worker_conf_load(struct tg_worker_conf *c, const char *path, char *errstr, size_t n) {
  tg_worker_conf_defaults(c);
  if (path) {
    json_t *root = NULL;
    char why[256];
    if (!tg_json_load_file(path, 65535, &root, why, sizeof(why))) {
      snprintf(errstr, n, "config %s: %s", path, why);
      return TG_ERR_INVAL;
    }
    if (!json_is_object(root)) {
      json_decref(root);
      snprintf(errstr, n, "config %s: expected a JSON object", path);
      return TG_ERR_INVAL;
    }
    char inner[400];
    tg_err_t err = load_object(c, root, "", inner, sizeof(inner));
    json_decref(root);
    if (err != TG_OK) {
      snprintf(errstr, n, "config %s: %s", path, inner);
      return err;
    }
    struct tg_redis_url u;
    if (!tg_redis_url_parse(c->queue.redis_url, &u, inner, sizeof(inner))) {
      snprintf(errstr, n, "config %s: redis.url: %s", path, inner);
      return TG_ERR_INVAL;
    }
    if (*u.password) {
      snprintf(errstr, n, "config %s: redis.url holds a password: secrets come only from the "
                          "environment (TRIPGEN_REDIS_URL)", path);
      return TG_ERR_INVAL;
    }
  }
  for (size_t i = 0; i < N_PROPS; i++) {
    char name[128];
    env_name(props[i].key, name, sizeof(name));
    const char *v = getenv(name);
    if (v && set_text(c, &props[i], v, name, errstr, n) != TG_OK)
      return TG_ERR_INVAL;
  }
  warn_unknown_env();
  return tg_worker_conf_check(c, errstr, n);
}

/* One or more http(s) URLs, comma-separated, none empty. */
static bool urls_ok(const char *list) {
  for (const char *p = list;;) {
    const char *comma = strchr(p, ',');
    size_t l = comma ? (size_t)(comma - p) : strlen(p);
    bool http = l > 7 && strncmp(p, "http://", 7) == 0, https = l > 8 && !strncmp(p, "https://", 8);
    if (!http && !https)
      return false;
    if (!comma)
      return true;
    p = comma + 1;
  }
}

static bool binding_ok(const char *b) {
  const char *dot = strchr(b, '.');
  return dot && dot != b && dot[1] && !strchr(dot + 1, '.');
}

tg_err_t tg_worker_conf_check(const struct tg_worker_conf *c, char *errstr, size_t n) {
  char why[256];
  if (!*c->env || strlen(c->env) > TG_MAX_ENV_CHARS || !tg_charset_ok(c->env, TG_CS_ENV)) {
    snprintf(errstr, n, "env: \"%s\" must be 1-%d of %s", c->env, TG_MAX_ENV_CHARS,
             tg_charset_describe(TG_CS_ENV));
    return TG_ERR_INVAL;
  }
  if (*c->worker_name && !tg_charset_ok(c->worker_name, TG_CS_ID)) {
    snprintf(errstr, n, "worker.name: must be %s", tg_charset_describe(TG_CS_ID));
    return TG_ERR_INVAL;
  }
  struct tg_redis_url u;
  if (!tg_redis_url_parse(c->queue.redis_url, &u, why, sizeof(why))) {
    snprintf(errstr, n, "redis.url: %s", why);
    return TG_ERR_INVAL;
  }
  if (strcmp(c->queue.backend, "kafka") == 0) {
    const struct tg_kafka_conf *k = &c->queue.kafka;
    const struct { const char *key, *pattern, *what; } topics[] = {
      {"kafka.topic_in", k->topic_in, "input"}, {"kafka.topic_out", k->topic_out, "output"},
      {"kafka.topic_dlq", k->topic_dlq, "dead-letter"},
      {"kafka.topic_retry", k->topic_retry, "retry"}};
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
      char name[256];
      if (!tg_kafka_topic_name(topics[i].pattern, c->env, name, sizeof(name), topics[i].what,
                               why, sizeof(why))) {
        snprintf(errstr, n, "%s: %s", topics[i].key, why);
        return TG_ERR_INVAL;
      }
    }
    if (!*k->brokers || strspn(k->brokers, ", ") == strlen(k->brokers)) {
      snprintf(errstr, n, "kafka.brokers: name at least one host:port");
      return TG_ERR_INVAL;
    }
  }
  if (c->backoff_base_ms > c->backoff_max_ms) {
    snprintf(errstr, n, "retry.backoff_base_ms: larger than retry.backoff_max_ms");
    return TG_ERR_INVAL;
  }
  if (c->lease_refresh_ms && c->lease_refresh_ms >= c->queue.visibility_timeout_ms) {
    snprintf(errstr, n, "queue.lease_refresh_ms: must be shorter than "
                        "queue.visibility_timeout_ms, or leases lapse");
    return TG_ERR_INVAL;
  }
  if (!urls_ok(c->comfyui_url)) {
    snprintf(errstr, n, "comfyui.url: expected http:// or https:// URLs, comma-separated");
    return TG_ERR_INVAL;
  }
  const struct { const char *key, *v; } urls[] = {
    {"dashscope.url", c->dashscope_url}, {"openai.url", c->openai_url}};
  for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++)
    if (!urls_ok(urls[i].v) || strchr(urls[i].v, ',')) {
      snprintf(errstr, n, "%s: expected one http:// or https:// URL", urls[i].key);
      return TG_ERR_INVAL;
    }
  const struct { const char *key, *v; } key_envs[] = {
    {"dashscope.api_key_env", c->dashscope_key_env}, {"openai.api_key_env", c->openai_key_env}};
  for (size_t i = 0; i < sizeof(key_envs) / sizeof(key_envs[0]); i++) {
    const char *v = key_envs[i].v;
    if (!*v || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                   strlen(v) || (*v >= '0' && *v <= '9')) { /* never echo it: it may be a key */
      snprintf(errstr, n, "%s: must be the name of an environment variable (letters, digits, "
                          "_), not a key", key_envs[i].key);
      return TG_ERR_INVAL;
    }
  }
  if (!*c->llm_model) {
    snprintf(errstr, n, "llm.model: must not be empty");
    return TG_ERR_INVAL;
  }
  if (!*c->wanx_download_hosts && strcmp(c->diffusion_backend, "wanx") == 0) {
    snprintf(errstr, n, "wanx.download_hosts: must name at least one host");
    return TG_ERR_INVAL;
  }
  const struct { const char *key, *v; } binds[] = {
    {"comfyui.bind.prompt", c->bind.prompt}, {"comfyui.bind.negative", c->bind.negative},
    {"comfyui.bind.seed", c->bind.seed},     {"comfyui.bind.width", c->bind.width},
    {"comfyui.bind.height", c->bind.height}, {"comfyui.bind.prefix", c->bind.prefix}};
  for (size_t i = 0; i < sizeof(binds) / sizeof(binds[0]); i++)
    if (!binding_ok(binds[i].v) && !(binds[i].v == c->bind.prefix && !*c->bind.prefix)) {
      snprintf(errstr, n, "%s: expected \"<node id>.<input name>\", got \"%s\"", binds[i].key,
               binds[i].v);
      return TG_ERR_INVAL;
    }
  if (!*c->storage_root) {
    snprintf(errstr, n, "storage.root: must not be empty");
    return TG_ERR_INVAL;
  }
  if (strcmp(c->storage_backend, "file") != 0) {
    size_t pl = strlen(c->storage_prefix);
    char dotted[sizeof(c->storage_prefix) + 2];
    snprintf(dotted, sizeof(dotted), "/%s", c->storage_prefix); /* finds a leading "./" too */
    if (pl && (c->storage_prefix[pl - 1] != '/' || c->storage_prefix[0] == '/' ||
               strstr(c->storage_prefix, "//") || strstr(c->storage_prefix, "..") ||
               strstr(dotted, "/./") || strpbrk(c->storage_prefix, "?#%\\") ||
               !tg_charset_ok(c->storage_prefix, TG_CS_LINE))) {
      snprintf(errstr, n, "storage.prefix: \"%s\" must be empty or like \"a/b/\" (no leading "
               "/, no //, no . or .. segments, no ? # %% or backslash)", c->storage_prefix);
      return TG_ERR_INVAL;
    }
    if (strchr(c->storage_bucket, '.') && strcmp(c->storage_addressing, "virtual") == 0 &&
        strncmp(c->storage_endpoint, "http://", 7) != 0) {
      snprintf(errstr, n, "storage.bucket: a bucket name with dots cannot be addressed "
               "virtual-hosted over https (the wildcard certificate does not cover it): set "
               "storage.addressing to path");
      return TG_ERR_INVAL;
    }
    if (!*c->storage_bucket || strspn(c->storage_bucket, "abcdefghijklmnopqrstuvwxyz0123456789-.") !=
                                   strlen(c->storage_bucket)) {
      snprintf(errstr, n, "storage.bucket: required for %s: lower-case letters, digits, - and .",
               c->storage_backend);
      return TG_ERR_INVAL;
    }
    if (!*c->storage_region && !*c->storage_endpoint) {
      snprintf(errstr, n, "storage.region: required for %s (or set storage.endpoint)",
               c->storage_backend);
      return TG_ERR_INVAL;
    }
    if (*c->storage_endpoint && (!urls_ok(c->storage_endpoint) || strchr(c->storage_endpoint, ','))) {
      snprintf(errstr, n, "storage.endpoint: expected one http:// or https:// URL");
      return TG_ERR_INVAL;
    }
  }
  const char *colon = strrchr(c->http_listen, ':');
  if (*c->http_listen && (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1))) {
    snprintf(errstr, n, "http.listen: expected host:port, got \"%s\"", c->http_listen);
    return TG_ERR_INVAL;
  }
  return TG_OK;
}

/* Credentials in a URL ("scheme://user:pass@host") are shown as "***". */
static json_t *url_masked(const char *url) {
  const char *scheme = strstr(url, "://");
  const char *host = scheme ? scheme + 3 : url;
  const char *at = strchr(host, '@'), *slash = strchr(host, '/');
  if (!at || (slash && slash < at))
    return json_string(url);
  char buf[TG_CONF_STR * 2 + 8];
  snprintf(buf, sizeof(buf), "%.*s***%s", (int)(host - url), url, at);
  return json_string(buf);
}

/* The value as JSON text, with the Redis password and URL credentials masked. */
static json_t *value_json(const struct tg_worker_conf *c, const struct prop *p) {
  const char *src = (const char *)c + p->off;
  switch (p->type) {
  case P_STR:
    if (strcmp(p->key, "comfyui.url") == 0 || strcmp(p->key, "storage.public_base_url") == 0 ||
        strcmp(p->key, "storage.endpoint") == 0 ||
        strcmp(p->key, "dashscope.url") == 0 || strcmp(p->key, "openai.url") == 0)
      return url_masked(src);
    if (strcmp(p->key, "redis.url") == 0) {
      struct tg_redis_url u;
      char why[128], shown[400];
      if (tg_redis_url_parse(src, &u, why, sizeof(why)))
        return json_string(tg_redis_url_redact(&u, shown, sizeof(shown)));
      return json_string("(invalid)");
    }
    return json_string(src);
  case P_INT: return json_integer(*(const int *)(const void *)src);
  case P_I64: return json_integer(*(const int64_t *)(const void *)src);
  case P_BOOL: return json_boolean(*(const bool *)(const void *)src);
  case P_MAP: { /* a literal secret (possible from the environment) is masked */
    json_t *o = json_object();
    char line[1200];
    for (const char *q = src; *q;) {
      size_t l = strcspn(q, "\n");
      snprintf(line, sizeof(line), "%.*s", (int)l, q);
      char *eq = strchr(line, '=');
      if (eq) {
        *eq = '\0';
        const char *val = eq + 1;
        bool ref = strncmp(val, "env:", 4) == 0 || strncmp(val, "file:", 5) == 0;
        json_object_set_new(o, line,
                            json_string(tg_kafka_secret_name(line) && !ref ? "***" : val));
      }
      q += l + (q[l] == '\n');
    }
    return o;
  }
  }
  return json_null();
}

void tg_worker_conf_print(const struct tg_worker_conf *c, FILE *f) {
  json_t *root = json_object();
  for (size_t i = 0; i < N_PROPS; i++) {
    /* nest "a.b.c" as {"a": {"b": {"c": v}}} */
    char key[128];
    snprintf(key, sizeof(key), "%s", props[i].key);
    json_t *obj = root;
    char *part = key, *dot;
    while ((dot = strchr(part, '.'))) {
      *dot = '\0';
      json_t *child = json_object_get(obj, part);
      if (!child) {
        child = json_object();
        json_object_set_new(obj, part, child);
      }
      obj = child;
      part = dot + 1;
    }
    json_object_set_new(obj, part, value_json(c, &props[i]));
  }
  char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fprintf(f, "%s\n", s ? s : "{}");
  free(s);
  json_decref(root);
}

void tg_worker_conf_help(FILE *f, bool markdown) {
  static const char *const type_names[] = {"string", "int", "int", "bool", "object"};
  if (markdown)
    fprintf(f, "| key | type | default | variable | meaning |\n|---|---|---|---|---|\n");
  for (size_t i = 0; i < N_PROPS; i++) {
    const struct prop *p = &props[i];
    char env[128];
    env_name(p->key, env, sizeof(env));
    if (markdown) {
      /* long defaults (the negative prompt) are elided in the table */
      bool long_def = strlen(p->def) > 40;
      fprintf(f, "| `%s` | %s | %s%.*s%s%s | `%s` | %s%s%s |\n", p->key, type_names[p->type],
              *p->def ? "`" : "\"\"", long_def ? 37 : (int)strlen(p->def), p->def,
              long_def ? "…" : "", *p->def ? "`" : "", env, p->help,
              p->choices ? "; one of " : "", p->choices ? p->choices : "");
      continue;
    }
    fprintf(f, "%-30s %-6s default %s%s%s\n    %s (env %s)\n", p->key, type_names[p->type],
            *p->def ? p->def : "\"\"", p->choices ? "; one of " : "",
            p->choices ? p->choices : "", p->help, env);
  }
}
