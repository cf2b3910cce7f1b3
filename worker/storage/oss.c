/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oss.c - the "oss" storage backend: Alibaba Cloud OSS PutObject, signed
 * with V4 (OSS4-HMAC-SHA256, the default) or V1 (oss.signature), sent
 * through object_http.c (bounded, 5xx and timeouts retried in the stage, a
 * rejected signature or access turned into upload_failed with the service's
 * Code and not retried).
 *
 * Credentials come only from OSS_ACCESS_KEY_ID / OSS_ACCESS_KEY_SECRET (or
 * their _FILE variants), with an optional OSS_SESSION_TOKEN for STS; they
 * are never logged and never put in a message. The endpoint is
 * storage.endpoint or https://oss-{region}.aliyuncs.com; the bucket goes in
 * the host ({bucket}.{host}) unless storage.addressing is "path". Each PUT
 * carries an explicit Content-Type, Content-MD5, Date (and x-oss-date,
 * x-oss-content-sha256: UNSIGNED-PAYLOAD for V4), x-oss-object-acl and
 * x-oss-forbid-overwrite when configured. Keys are deterministic, so a
 * redelivered job overwrites its own objects; with forbid_overwrite the
 * service answers 409 FileAlreadyExists instead, which counts as done. The
 * URL handed out is public_base_url + "/" + full key, or a pre-signed GET
 * valid for storage.presign_expiry_s. The state is read-only after
 * create(), so puts from several upload threads need no lock.
 */
#include "storage.h"
#include "storage/object_http.h"
#include "storage/oss_sign.h"
#include "provider/api_call.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_VAR "OSS_ACCESS_KEY_ID"
#define SECRET_VAR "OSS_ACCESS_KEY_SECRET"
#define TOKEN_VAR "OSS_SESSION_TOKEN"

struct oss_state {
  char id[128];
  char secret[256];
  char token[4096];               /* "" = none */
  bool v4;
  char region[64];
  char bucket[64];
  char prefix[128];
  char acl[32];
  bool forbid_overwrite;
  char base[TG_CONF_STR + 128];   /* scheme://{bucket}.host or scheme://host/{bucket} */
  char public_base[TG_CONF_STR];  /* without trailing '/'; "" = pre-signed URLs */
  int64_t expiry_s;
  int64_t timeout_ms;
  int retries;
};

/* ---- create ------------------------------------------------------------ */

/* the object URL base of the endpoint: virtual-hosted or path style */
static bool make_base(struct oss_state *s, const struct tg_worker_conf *conf, char *errstr,
                      size_t n) {
  char ep[TG_CONF_STR + 64];
  if (*conf->storage_endpoint)
    snprintf(ep, sizeof(ep), "%s", conf->storage_endpoint);
  else
    snprintf(ep, sizeof(ep), "https://oss-%s.aliyuncs.com", conf->storage_region);
  for (size_t l = strlen(ep); l > 0 && ep[l - 1] == '/'; l--)
    ep[l - 1] = '\0';
  const char *hostp = strstr(ep, "://");
  if (!hostp || !hostp[3] || strpbrk(hostp + 3, "/?#@ \t\r\n")) {
    snprintf(errstr, n, "storage.endpoint: expected scheme://host[:port] without a path, "
             "query, fragment or credentials");
    return false;
  }
  hostp += 3;
  int len;
  if (strcmp(conf->storage_addressing, "path") == 0)
    len = snprintf(s->base, sizeof(s->base), "%s/%s", ep, s->bucket);
  else
    len = snprintf(s->base, sizeof(s->base), "%.*s%s.%s", (int)(hostp - ep), ep, s->bucket,
                   hostp);
  if (len < 0 || (size_t)len >= sizeof(s->base)) {
    snprintf(errstr, n, "storage.endpoint: too long");
    return false;
  }
  return true;
}

static void oss_destroy(void *state) {
  if (state) {
    OPENSSL_cleanse(state, sizeof(struct oss_state));
    free(state);
  }
}

static tg_err_t oss_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                           size_t n) {
  char why[256];
  struct oss_state *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  if (!tg_secret_get(ID_VAR, s->id, sizeof(s->id), why, sizeof(why)) ||
      !tg_secret_get(SECRET_VAR, s->secret, sizeof(s->secret), why, sizeof(why))) {
    snprintf(errstr, n, "oss storage: no credentials: %s (set %s and %s, or %s_FILE and %s_FILE)",
             why, ID_VAR, SECRET_VAR, ID_VAR, SECRET_VAR);
    oss_destroy(s);
    return TG_ERR_INVAL;
  }
  /* an STS token is optional; one that is set but unusable is an error */
  if (!tg_secret_get(TOKEN_VAR, s->token, sizeof(s->token), why, sizeof(why))) {
    char file_var[64];
    snprintf(file_var, sizeof(file_var), "%s_FILE", TOKEN_VAR);
    if ((getenv(TOKEN_VAR) && *getenv(TOKEN_VAR)) || (getenv(file_var) && *getenv(file_var))) {
      snprintf(errstr, n, "oss storage: %s", why);
      oss_destroy(s);
      return TG_ERR_INVAL;
    }
    s->token[0] = '\0';
  }
  s->v4 = strcmp(conf->oss_signature, "v1") != 0;
  snprintf(s->region, sizeof(s->region), "%s", conf->storage_region);
  snprintf(s->bucket, sizeof(s->bucket), "%s", conf->storage_bucket);
  snprintf(s->prefix, sizeof(s->prefix), "%s", conf->storage_prefix);
  snprintf(s->acl, sizeof(s->acl), "%s", conf->oss_acl);
  s->forbid_overwrite = conf->oss_forbid_overwrite;
  s->expiry_s = conf->presign_expiry_s;
  s->timeout_ms = conf->storage_timeout_ms;
  s->retries = conf->storage_retries;
  snprintf(s->public_base, sizeof(s->public_base), "%s", conf->public_base_url);
  for (size_t l = strlen(s->public_base); l > 0 && s->public_base[l - 1] == '/'; l--)
    s->public_base[l - 1] = '\0';
  if (!*s->bucket) {
    snprintf(errstr, n, "storage.bucket: required for oss");
    oss_destroy(s);
    return TG_ERR_INVAL;
  }
  if (s->v4 && !*s->region) {
    snprintf(errstr, n, "storage.region: required for oss.signature v4 (it is signed)");
    oss_destroy(s);
    return TG_ERR_INVAL;
  }
  if (s->acl[0] && strspn(s->acl, "abcdefghijklmnopqrstuvwxyz-") != strlen(s->acl)) {
    snprintf(errstr, n, "oss.acl: expected private, public-read, public-read-write or default");
    oss_destroy(s);
    return TG_ERR_INVAL;
  }
  if (!make_base(s, conf, errstr, n)) {
    oss_destroy(s);
    return TG_ERR_INVAL;
  }
  *state = s;
  return TG_OK;
}

/* ---- put --------------------------------------------------------------- */

/* the headers of one PUT: signed as listed, sent as "Name: value" lines */
struct put_headers {
  struct tg_oss_kv kv[10];
  size_t n;
  char md5[25], date[30], stamp[17];
};

static void add(struct put_headers *h, const char *name, const char *value) {
  h->kv[h->n++] = (struct tg_oss_kv){name, value};
}

/* Authorization for the PUT of @full_key, signed at @now */
static bool sign_put(const struct oss_state *s, const char *full_key, const char *content_type,
                     const struct put_headers *h, int64_t now, char *auth, size_t n) {
  if (s->v4) {
    struct tg_oss_v4_req r = {.method = "PUT", .bucket = s->bucket, .key = full_key,
                              .headers = h->kv, .n_headers = h->n};
    return tg_oss_v4_authorization(&r, s->id, s->secret, s->region, now, auth, n);
  }
  char resource[1024];
  int len = snprintf(resource, sizeof(resource), "/%s/%s", s->bucket, full_key);
  struct tg_oss_v1_req r = {.verb = "PUT", .content_md5 = h->md5, .content_type = content_type,
                            .date = h->date, .headers = h->kv, .n_headers = h->n,
                            .resource = resource};
  return len > 0 && (size_t)len < sizeof(resource) &&
         tg_oss_v1_authorization(&r, s->id, s->secret, auth, n);
}

/* the URL handed out for @full_key: public, or pre-signed from @now */
static char *object_url(const struct oss_state *s, const char *full_key, int64_t now) {
  size_t n = strlen(s->base) + strlen(s->public_base) + 3 * strlen(full_key) +
             3 * strlen(s->token) + 1024;
  char *url = malloc(n);
  if (!url)
    return NULL;
  bool ok;
  if (*s->public_base) {
    size_t l = (size_t)snprintf(url, n, "%s/", s->public_base);
    ok = tg_oss_uri_encode(full_key, true, url + l, n - l);
  } else if (s->v4) {
    struct tg_oss_v4_req r = {.method = "GET", .bucket = s->bucket, .key = full_key};
    ok = tg_oss_v4_presign(s->base, &r, s->id, s->secret, s->token, s->region, now, s->expiry_s,
                           url, n);
  } else {
    ok = tg_oss_v1_presign(s->base, s->bucket, full_key, s->id, s->secret, s->token,
                           now + s->expiry_s, url, n);
  }
  if (!ok) {
    free(url);
    return NULL;
  }
  return url;
}

static bool oss_put(void *state, const char *key, const struct tg_blob *data,
                    const char *content_type, char **url, struct tg_stage_error *err) {
  const struct oss_state *s = state;
  char full_key[768], auth[1024], target[sizeof(s->base) + 3 * sizeof(full_key)];
  struct put_headers h = {.n = 0};
  *url = NULL;

  if (!data || (!data->data && data->len)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "oss storage: no data to store");
    return false;
  }
  if (!key || !*key || key[0] == '/' ||
      (size_t)snprintf(full_key, sizeof(full_key), "%s%s", s->prefix, key) >= sizeof(full_key)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "object key: empty, absolute or too long");
    return false;
  }
  if (!content_type || !*content_type)
    content_type = "application/octet-stream";
  int64_t now = (int64_t)time(NULL);
  if (!tg_oss_content_md5(data->data, data->len, h.md5)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "oss storage: MD5 failed");
    return false;
  }
  tg_oss_http_date(now, h.date);
  tg_oss_iso8601(now, h.stamp);
  add(&h, "Content-Type", content_type);
  add(&h, "Content-MD5", h.md5);
  add(&h, "Date", h.date);
  if (s->v4) {
    add(&h, "x-oss-date", h.stamp);
    add(&h, "x-oss-content-sha256", "UNSIGNED-PAYLOAD");
  }
  if (*s->acl)
    add(&h, "x-oss-object-acl", s->acl);
  if (s->forbid_overwrite)
    add(&h, "x-oss-forbid-overwrite", "true");
  if (*s->token)
    add(&h, "x-oss-security-token", s->token);

  size_t tl = (size_t)snprintf(target, sizeof(target), "%s/", s->base);
  if (tl >= sizeof(target) || !tg_oss_uri_encode(full_key, true, target + tl, sizeof(target) - tl) ||
      !sign_put(s, full_key, content_type, &h, now, auth, sizeof(auth))) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "oss storage: cannot sign the request");
    return false;
  }

  /* "Name: value" lines; the longest is the security token's */
  size_t ln = strlen(s->token) + 256;
  char *lines[12] = {0};
  const char *hdrs[13] = {0};
  bool ok = true;
  size_t nl = 0;
  for (size_t i = 0; i < h.n && ok; i++, nl++) {
    lines[nl] = malloc(ln);
    ok = lines[nl] && snprintf(lines[nl], ln, "%s: %s", h.kv[i].name, h.kv[i].value) > 0;
  }
  if (ok) {
    lines[nl] = malloc(sizeof(auth) + 32);
    ok = lines[nl] && snprintf(lines[nl], sizeof(auth) + 32, "Authorization: %s", auth) > 0;
    nl++;
  }
  for (size_t i = 0; i < nl; i++)
    hdrs[i] = lines[i];
  char rid[TG_MAX_REQUEST_ID_CHARS + 1];
  tg_storage_key_request_id(key, rid, sizeof(rid));
  struct tg_object_request r = {
    .backend = "oss", .request_id = rid, .key = full_key, .method = "PUT", .url = target,
    .headers = hdrs,
    .body = data->data, .body_len = data->len, .timeout_ms = s->timeout_ms,
    .retries = s->retries};
  struct tg_object_answer ans = {0};
  if (!ok) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "oss storage: out of memory");
  } else if (!tg_object_send(&r, &ans, err)) {
    /* forbid_overwrite: the object of this deterministic key is already there (a redelivery) */
    ok = s->forbid_overwrite && ans.status == 409 && strcmp(ans.code, "FileAlreadyExists") == 0;
    if (ok)
      memset(err, 0, sizeof(*err));
  }
  for (size_t i = 0; i < nl; i++) {
    if (lines[i])
      OPENSSL_cleanse(lines[i], strlen(lines[i]));
    free(lines[i]);
  }
  OPENSSL_cleanse(auth, sizeof(auth));
  if (!ok)
    return false;
  *url = object_url(s, full_key, now);
  if (!*url) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "oss storage: cannot make the object URL");
    return false;
  }
  return true;
}

const struct tg_storage_ops tg_storage_oss = {
  .name = "oss",
  .create = oss_create,
  .destroy = oss_destroy,
  .put = oss_put,
};
