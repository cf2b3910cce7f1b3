/* SPDX-License-Identifier: Apache-2.0 */
/*
 * s3.c - the "s3" storage backend: PutObject to AWS S3 or a store that
 * speaks its API (MinIO, OSS's S3-compatible endpoint), signed with SigV4
 * (sigv4.c) and sent through object_http.c, which retries what may succeed
 * next time (no answer, 5xx, 408, 429) within the stage and turns anything
 * else - a rejected signature, a denied access - into upload_failed with the
 * service's error code, not retried.
 *
 * Addressing: path style is {endpoint}/{bucket}/{key}; virtual-hosted is
 * {scheme}://{bucket}.{endpoint host}/{key}. The endpoint defaults to
 * https://s3.{region}.amazonaws.com. Every PUT carries Content-Type,
 * x-amz-content-sha256 (the body's hex SHA-256, which S3 requires), host,
 * x-amz-date, x-amz-security-token with temporary credentials, all signed;
 * the body goes through CURLOPT_POSTFIELDS (see PITFALLS.md). Keys are
 * storage.prefix + the job's deterministic key, so a redelivered job
 * overwrites its own objects. The URL handed back is public_base_url + key
 * when that is set, else a pre-signed GET valid for presign_expiry_s.
 *
 * Credentials come only from the environment (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN, or NAME_FILE naming a
 * file holding each); they are never logged nor put in a message. The state
 * is read-only after create, so upload threads share it without locks.
 */
#include "storage/object_http.h"
#include "storage/sigv4.h"
#include "storage.h"

#include "provider/api_call.h"

#include <openssl/crypto.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOKEN_MAX 4096

struct s3_state {
  char access_key[256];
  char secret_key[256];
  char *session_token;            /* NULL: long-term keys */
  char scheme[8];                 /* "https", "http" */
  char host[TG_CONF_STR + 80];    /* the Host header: [bucket.]host[:port] */
  char path_base[80];             /* "/{bucket}" (path style) or "" */
  char region[64];
  char prefix[128];               /* storage.prefix: "" or "a/b/" */
  char base_url[TG_CONF_STR];     /* public_base_url without trailing '/'; "" = pre-signed */
  int64_t expiry_s;
  int64_t timeout_ms;
  int retries;
};

/* ---- create ------------------------------------------------------------ */

static void wipe_state(struct s3_state *s) {
  if (!s)
    return;
  if (s->session_token) {
    OPENSSL_cleanse(s->session_token, strlen(s->session_token));
    free(s->session_token);
  }
  OPENSSL_cleanse(s, sizeof(*s));
  free(s);
}

/* AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when set, AWS_SESSION_TOKEN */
static bool read_credentials(struct s3_state *s, char *errstr, size_t n) {
  char why[256];
  static const char hint[] = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
                             "AWS_ACCESS_KEY_ID_FILE and AWS_SECRET_ACCESS_KEY_FILE)";
  if (!tg_secret_get("AWS_ACCESS_KEY_ID", s->access_key, sizeof(s->access_key), why,
                     sizeof(why)) ||
      !tg_secret_get("AWS_SECRET_ACCESS_KEY", s->secret_key, sizeof(s->secret_key), why,
                     sizeof(why))) {
    snprintf(errstr, n, "s3: no credentials: %s; %s", why, hint);
    return false;
  }
  const char *tok = getenv("AWS_SESSION_TOKEN"), *tok_file = getenv("AWS_SESSION_TOKEN_FILE");
  if ((tok && *tok) || (tok_file && *tok_file)) {
    s->session_token = calloc(1, TOKEN_MAX);
    if (!s->session_token) {
      snprintf(errstr, n, "out of memory");
      return false;
    }
    if (!tg_secret_get("AWS_SESSION_TOKEN", s->session_token, TOKEN_MAX, why, sizeof(why))) {
      snprintf(errstr, n, "s3: session token: %s", why);
      return false;
    }
  }
  return true;
}

/* scheme and authority of storage.endpoint (or the region's AWS endpoint) */
static bool parse_endpoint(const struct tg_worker_conf *conf, struct s3_state *s,
                           char *authority, size_t an, char *errstr, size_t n) {
  const char *ep = conf->storage_endpoint;
  if (!*ep) {
    snprintf(s->scheme, sizeof(s->scheme), "https");
    int w = snprintf(authority, an, "s3.%s.amazonaws.com", s->region);
    return w > 0 && (size_t)w < an;
  }
  const char *rest;
  if (strncmp(ep, "https://", 8) == 0) {
    snprintf(s->scheme, sizeof(s->scheme), "https");
    rest = ep + 8;
  } else if (strncmp(ep, "http://", 7) == 0) {
    snprintf(s->scheme, sizeof(s->scheme), "http");
    rest = ep + 7;
  } else {
    snprintf(errstr, n, "storage.endpoint: expected http:// or https://");
    return false;
  }
  size_t len = strcspn(rest, "/?#");
  if (rest[len] == '?' || rest[len] == '#' || (rest[len] == '/' && rest[len + 1])) {
    snprintf(errstr, n, "storage.endpoint: only scheme://host[:port] is supported (no path "
             "or query)");
    return false;
  }
  if (!len || len >= an || memchr(rest, '@', len)) {
    snprintf(errstr, n, "storage.endpoint: no usable host");
    return false;
  }
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)rest[i];
    if (c <= ' ' || c >= 0x7f) {
      snprintf(errstr, n, "storage.endpoint: the host holds spaces or control characters");
      return false;
    }
  }
  memcpy(authority, rest, len);
  authority[len] = '\0';
  /* the scheme's default port is left out, as clients leave it out of Host: a signed
   * "host:443" would never match what a pre-signed URL's user sends */
  const char *dflt = strcmp(s->scheme, "https") == 0 ? ":443" : ":80";
  size_t al = strlen(authority), dl = strlen(dflt);
  if (al > dl && strcmp(authority + al - dl, dflt) == 0 && authority[0] != '[')
    authority[al - dl] = '\0';
  return true;
}

static tg_err_t s3_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                          size_t n) {
  struct s3_state *s = calloc(1, sizeof(*s));
  char authority[TG_CONF_STR];
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  snprintf(s->region, sizeof(s->region), "%s",
           *conf->storage_region ? conf->storage_region : "us-east-1");
  if (!*conf->storage_bucket) {
    snprintf(errstr, n, "storage.bucket: required for s3");
    goto err;
  }
  if (!parse_endpoint(conf, s, authority, sizeof(authority), errstr, n))
    goto err;
  bool path_style = strcmp(conf->storage_addressing, "path") == 0;
  int w = path_style
              ? snprintf(s->host, sizeof(s->host), "%s", authority)
              : snprintf(s->host, sizeof(s->host), "%s.%s", conf->storage_bucket, authority);
  if (w < 0 || (size_t)w >= sizeof(s->host)) {
    snprintf(errstr, n, "storage.endpoint: too long");
    goto err;
  }
  if (path_style)
    snprintf(s->path_base, sizeof(s->path_base), "/%s", conf->storage_bucket);
  snprintf(s->prefix, sizeof(s->prefix), "%s", conf->storage_prefix);
  snprintf(s->base_url, sizeof(s->base_url), "%s", conf->public_base_url);
  for (size_t l = strlen(s->base_url); l > 0 && s->base_url[l - 1] == '/'; l--)
    s->base_url[l - 1] = '\0';
  s->expiry_s = conf->presign_expiry_s;
  s->timeout_ms = conf->storage_timeout_ms;
  s->retries = conf->storage_retries;
  if (!read_credentials(s, errstr, n))
    goto err;
  *state = s;
  return TG_OK;
err:
  wipe_state(s);
  return TG_ERR_INVAL;
}

static void s3_destroy(void *state) { wipe_state(state); }

/* ---- put --------------------------------------------------------------- */


/* "Name: value" in a malloc()ed string, or NULL */
static char *header(const char *name, const char *value) {
  size_t len = strlen(name) + strlen(value) + 3;
  char *h = malloc(len);
  if (h)
    snprintf(h, len, "%s: %s", name, value);
  return h;
}

/* public_base_url + "/" + encoded key, or a pre-signed GET of @path at @t */
static char *object_url(const struct s3_state *s, const char *full_key, const char *path,
                        int64_t t) {
  if (*s->base_url) {
    char *enc = tg_sigv4_uri_encode(full_key, true);
    if (!enc)
      return NULL;
    size_t len = strlen(s->base_url) + strlen(enc) + 2;
    char *url = malloc(len);
    if (url)
      snprintf(url, len, "%s/%s", s->base_url, enc);
    free(enc);
    return url;
  }
  struct tg_sigv4_creds c = {s->access_key, s->secret_key, s->session_token};
  struct tg_sigv4_req r = {.method = "GET", .host = s->host, .path = path,
                           .region = s->region, .service = "s3", .t = t};
  return tg_sigv4_presign(&r, &c, s->scheme, s->expiry_s);
}

static bool s3_put(void *state, const char *key, const struct tg_blob *data,
                   const char *content_type, char **url, struct tg_stage_error *err) {
  const struct s3_state *s = state;
  *url = NULL;
  if (!data || (!data->data && data->len)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "s3: no data to store");
    return false;
  }
  if (!key || !*key || key[0] == '/' || strlen(s->prefix) + strlen(key) > 900) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "s3: unusable object key");
    return false;
  }
  const char *ctype = content_type && *content_type ? content_type : "application/octet-stream";
  if (strpbrk(ctype, "\r\n")) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "s3: bad content type");
    return false;
  }
  char full_key[1100], path[sizeof(full_key) + 84], hash[65], rid[80];
  snprintf(full_key, sizeof(full_key), "%s%s", s->prefix, key);
  snprintf(path, sizeof(path), "%s/%s", s->path_base, full_key);
  tg_storage_key_request_id(key, rid, sizeof(rid));
  tg_sigv4_sha256_hex(data->data, data->len, hash);

  int64_t now = (int64_t)time(NULL);
  struct tg_sigv4_creds c = {s->access_key, s->secret_key, s->session_token};
  const struct tg_sigv4_pair signed_hdrs[] = {{"Content-Type", ctype},
                                              {"x-amz-content-sha256", hash}};
  struct tg_sigv4_req r = {.method = "PUT", .host = s->host, .path = path,
                           .headers = signed_hdrs, .n_headers = 2, .payload_hash = hash,
                           .region = s->region, .service = "s3", .t = now};
  struct tg_sigv4_out sig;
  char *enc_path = tg_sigv4_uri_encode(path, true);
  char *req_url = NULL, *h[7] = {0};
  bool ok = false;
  if (!enc_path || !tg_sigv4_sign(&r, &c, &sig)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "s3: cannot sign the request");
    goto out;
  }
  size_t ul = strlen(s->scheme) + strlen(s->host) + strlen(enc_path) + 4;
  req_url = malloc(ul);
  int nh = 0;
  if (req_url) {
    snprintf(req_url, ul, "%s://%s%s", s->scheme, s->host, enc_path);
    h[nh++] = header("Host", s->host);
    h[nh++] = header("Content-Type", ctype);
    h[nh++] = header("x-amz-content-sha256", hash);
    h[nh++] = header("x-amz-date", sig.amz_date);
    if (s->session_token)
      h[nh++] = header("x-amz-security-token", s->session_token);
    h[nh++] = header("Authorization", sig.authorization);
  }
  for (int i = 0; i < nh; i++)
    if (!h[i])
      req_url = (free(req_url), NULL);
  if (!req_url) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "s3: out of memory");
    goto out;
  }
  struct tg_object_request orq = {.backend = "s3", .request_id = rid, .key = full_key,
                                  .method = "PUT", .url = req_url,
                                  .headers = (const char *const *)h, .body = data->data,
                                  .body_len = data->len, .timeout_ms = s->timeout_ms,
                                  .retries = s->retries};
  if (!tg_object_send(&orq, NULL, err))
    goto out;
  *url = object_url(s, full_key, path, (int64_t)time(NULL));
  if (!*url) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "s3: cannot make the object's URL");
    goto out;
  }
  ok = true;
out:
  for (int i = 0; i < 7; i++)
    free(h[i]);
  free(req_url);
  free(enc_path);
  OPENSSL_cleanse(&sig, sizeof(sig));
  return ok;
}

const struct tg_storage_ops tg_storage_s3 = {
  .name = "s3",
  .create = s3_create,
  .destroy = s3_destroy,
  .put = s3_put,
};
