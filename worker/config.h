/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config.h - the worker's configuration: one JSON file per environment
 * (deploy/config/<env>.json), every key overridable by an environment
 * variable TRIPGEN_<KEY> (dots as underscores, upper case), validated as a
 * whole, printable with secrets masked. One table row per key gives the
 * type, default, range and help text (config.c).
 */
#ifndef TG_WORKER_CONFIG_H
#define TG_WORKER_CONFIG_H

#include "tg_err.h"
#include "tg_transport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TG_CONF_STR 512

/* Where a ComfyUI workflow receives each per-job value: "<node id>.<input>". */
struct tg_comfyui_bindings {
  char prompt[64];
  char negative[64];
  char seed[64];
  char width[64];
  char height[64];
  char prefix[64];
};

#define TG_WORKER_MAX_TAKERS 8

struct tg_worker_conf {
  char env[TG_MAX_ENV_CHARS + 1];
  char worker_name[128];          /* stable consumer name; "" = host-pid */
  char log_level[16];

  /* queue */
  struct tg_transport_conf queue; /* redis_url, group, timeouts, caps */
  bool housekeeping;              /* run promote_due and reclaim in this worker */
  int64_t housekeeping_interval_ms;
  int64_t lease_refresh_ms;       /* extend leases of running jobs this often */
  int take_batch;
  int max_in_flight;
  int take_threads;               /* consumer threads, 1..TG_WORKER_MAX_TAKERS */              /* 0: bounded by the stage queues only */

  /* retries of the whole job */
  int max_attempts;
  int64_t backoff_base_ms;
  int64_t backoff_max_ms;

  /* stages */
  char prompt_backend[32];        /* template, dashscope, openai */
  int prompt_concurrency;
  char negative_prompt[TG_CONF_STR * 2];
  char system_prompt_file[TG_CONF_STR];
  char prompt_fallback[16];       /* none, template */
  int prompt_max_chars;
  char llm_model[TG_MAX_ID_CHARS + 1];
  int64_t llm_timeout_ms;         /* one LLM call */
  int llm_retries;                /* in-stage retries of a retryable LLM failure */
  int llm_max_tokens;
  char dashscope_url[TG_CONF_STR];
  char dashscope_key_env[64];     /* name of the variable holding the key (or NAME_FILE) */
  char openai_url[TG_CONF_STR];   /* ends in /v1 */
  char openai_key_env[64];
  char diffusion_backend[32];     /* comfyui, wanx */
  int diffusion_slots;
  int64_t diffusion_timeout_ms;   /* whole diffusion of one job */
  char seed_policy[16];           /* request, trip, fixed, random */
  int64_t fixed_seed;
  char comfyui_url[TG_CONF_STR * 2]; /* comma-separated base URLs, one per GPU */
  int comfyui_slots;              /* jobs each ComfyUI runs or queues at once */
  char comfyui_follow[8];         /* ws, poll */
  char comfyui_output_dir[TG_CONF_STR]; /* ComfyUI's output folder mounted here; "" = not */
  char comfyui_workflow[TG_CONF_STR];
  struct tg_comfyui_bindings bind;
  int64_t comfyui_poll_ms;
  int64_t comfyui_http_timeout_ms;
  int comfyui_http_retries;
  char wanx_model[64];
  int64_t wanx_poll_ms;
  int64_t wanx_http_timeout_ms;
  int wanx_http_retries;
  char wanx_download_hosts[TG_CONF_STR]; /* comma-separated; "*.x" matches subdomains */
  int64_t max_image_bytes;        /* largest diffusion output accepted */

  /* fleet-wide limits (shared in Redis by every worker of the env) and breakers */
  struct tg_backend_limits {
    int rps;                      /* requests per second; 0 = none */
    int burst;                    /* bucket size; 0 = rps */
    int concurrency;              /* calls or tasks at once; 0 = none */
  } limits_llm, limits_wanx;
  int breaker_failures;           /* consecutive failures that open a breaker; 0 = never */
  int64_t breaker_open_ms;        /* how long it stays open before one probe */
  int64_t max_retry_after_ms;     /* longest Retry-After waited for within a stage */
  char postproc_backend[32];      /* cpu */
  int postproc_concurrency;
  int jpeg_quality;
  char output_format[8];          /* jpeg, webp */
  char assets_dir[TG_CONF_STR];   /* holds catalogue.json, vehicle cutouts, the logo */
  bool vehicle_composite;
  int anchor_x_permille;          /* car's bottom centre, in thousandths of the scene */
  int anchor_y_permille;
  int car_width_permille;         /* car width, thousandths of the scene width */
  int harmonise_permille;         /* strength of the colour transfer, 0..1000 */
  int max_lightness_shift;        /* most the car's mean L* may move (CIELAB units) */
  int feather_px;                 /* blur radius of the car's alpha edge */
  int shadow_permille;            /* contact shadow opacity, 0..1000 */
  int shadow_blur_px;
  bool logo;
  int logo_margin_px;             /* from the top-right corner */
  bool caption;
  char font_file[TG_CONF_STR];
  int caption_font_px;
  int caption_band_permille;      /* band height, thousandths of the scene height */
  int caption_band_alpha;         /* 0..255 */
  char storage_backend[32];       /* file, oss, s3 */
  int upload_concurrency;
  char storage_root[TG_CONF_STR];
  char public_base_url[TG_CONF_STR]; /* "" = file:// URLs (file), pre-signed GETs (oss, s3) */
  char storage_prefix[128];       /* oss, s3: key prefix before "{env}/"; "" or ends in "/" */
  char storage_bucket[64];
  char storage_region[64];
  char storage_endpoint[TG_CONF_STR]; /* "" = the provider's public endpoint of the region */
  char storage_addressing[16];    /* virtual, path */
  int64_t presign_expiry_s;
  int64_t storage_timeout_ms;
  int storage_retries;
  char oss_signature[8];          /* v4, v1 */
  char oss_acl[32];               /* "" = the bucket's; private, public-read, ... */
  bool oss_forbid_overwrite;
  char scratch_dir[TG_CONF_STR];

  /* operation */
  char http_listen[64];           /* host:port of /metrics, /healthz, /readyz; "" = off */
  int64_t shutdown_grace_ms;
};

/**
 * tg_worker_conf_defaults() - fill every key with its default
 * @c: the conf
 */
void tg_worker_conf_defaults(struct tg_worker_conf *c);

/**
 * tg_worker_conf_load() - defaults, then a JSON file, then TRIPGEN_* overrides
 * @c:      the conf
 * @path:   JSON file, or NULL for defaults + environment only
 * @errstr: on failure, names the key and what is wrong
 * @n:      its size
 *
 * Unknown keys, wrong types and out-of-range values are errors. The whole
 * conf is validated at the end (tg_worker_conf_check()).
 *
 * Return: TG_OK or TG_ERR_INVAL.
 */
tg_err_t tg_worker_conf_load(struct tg_worker_conf *c, const char *path, char *errstr, size_t n);

/**
 * tg_worker_conf_check() - cross-key validation
 * @c:      the conf
 * @errstr: reason
 * @n:      its size
 *
 * Return: TG_OK or TG_ERR_INVAL.
 */
tg_err_t tg_worker_conf_check(const struct tg_worker_conf *c, char *errstr, size_t n);

/**
 * tg_worker_conf_print() - the effective config as JSON, secrets masked
 * @c: the conf
 * @f: where to write
 */
void tg_worker_conf_print(const struct tg_worker_conf *c, FILE *f);

/**
 * tg_worker_conf_help() - every key: name, type, default, meaning, variable
 * @f:        where to write
 * @markdown: a Markdown table (the README's) instead of plain text
 */
void tg_worker_conf_help(FILE *f, bool markdown);

#endif
