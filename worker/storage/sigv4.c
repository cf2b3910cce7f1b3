/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.c - AWS Signature Version 4 with OpenSSL, as AWS's "Signature
 * Calculations" pages describe it for S3: the path keeps its '/' and every
 * segment is URI-encoded once (S3 does not normalise paths), query names
 * and values are encoded and sorted by name then value, header names are
 * lower-cased and sorted, values trimmed with inner runs of spaces folded,
 * and the payload is the hex SHA-256 the caller also sends as
 * x-amz-content-sha256 (or UNSIGNED-PAYLOAD). Strings are built in a small
 * growable buffer; any allocation failure makes the whole call fail.
 */
#include "storage/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

/* ---- a growable string ------------------------------------------------- */

struct sb {
  char *s;
  size_t len, cap;
  bool failed;
};

static void sb_addn(struct sb *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* the string, or NULL (and nothing to free) when any step failed */
static char *sb_take(struct sb *b) {
  if (b->failed || !b->s) {
    free(b->s);
    return b->failed ? NULL : strdup("");
  }
  return b->s;
}

/* ---- primitives -------------------------------------------------------- */

static void to_hex(const unsigned char *p, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[p[i] >> 4];
    out[2 * i + 1] = hex[p[i] & 15];
  }
  out[2 * n] = '\0';
}

void tg_sigv4_sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(data ? data : (const void *)"", len, md);
  to_hex(md, sizeof(md), out);
}

static void hmac(const unsigned char *key, size_t klen, const char *msg, unsigned char out[32]) {
  unsigned int olen = 32;
  HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen);
}

static bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '-' || c == '.' || c == '_' || c == '~';
}

static void sb_encode(struct sb *b, const char *s, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (unreserved(*p) || (keep_slash && *p == '/')) {
      sb_addn(b, (const char *)p, 1);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      sb_addn(b, e, 3);
    }
  }
}

char *tg_sigv4_uri_encode(const char *s, bool keep_slash) {
  struct sb b = {0};
  sb_add(&b, "");
  sb_encode(&b, s ? s : "", keep_slash);
  return sb_take(&b);
}

bool tg_sigv4_amz_date(int64_t t, char out[17]) {
  struct tm tm;
  time_t tt = (time_t)t;
  out[0] = '\0';
  if (t < INT64_C(-62167219200) || t > INT64_C(253402300799) || !gmtime_r(&tt, &tm))
    return false;
  return strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) == 16;
}

void tg_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, unsigned char key[32]) {
  size_t sl = strlen(secret);
  unsigned char *k0 = malloc(sl + 4);
  unsigned char a[32], b[32];
  if (!k0) { /* derive nothing usable: a zero key signs nothing valid */
    memset(key, 0, 32);
    return;
  }
  memcpy(k0, "AWS4", 4);
  memcpy(k0 + 4, secret, sl);
  hmac(k0, sl + 4, date, a);
  hmac(a, 32, region, b);
  hmac(b, 32, service, a);
  hmac(a, 32, "aws4_request", key);
  OPENSSL_cleanse(k0, sl + 4);
  OPENSSL_cleanse(a, sizeof(a));
  OPENSSL_cleanse(b, sizeof(b));
  free(k0);
}

/* ---- the canonical request --------------------------------------------- */

struct kv {
  char *k, *v;
  size_t order;   /* ties keep the caller's order */
};

static int kv_cmp(const void *pa, const void *pb) {
  const struct kv *a = pa, *b = pb;
  int c = strcmp(a->k, b->k);
  if (c)
    return c;
  return a->order < b->order ? -1 : a->order > b->order;
}

static int kv_cmp_value(const void *pa, const void *pb) {
  const struct kv *a = pa, *b = pb;
  int c = strcmp(a->k, b->k);
  return c ? c : strcmp(a->v, b->v);
}

static void kv_free(struct kv *v, size_t n) {
  for (size_t i = 0; v && i < n; i++) {
    free(v[i].k);
    free(v[i].v);
  }
  free(v);
}

/* lower-cased, trimmed name */
static char *header_name(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
    n--;
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  for (size_t i = 0; i < n; i++)
    o[i] = (char)tolower((unsigned char)s[i]);
  o[n] = '\0';
  return o;
}

/* Trimall: no leading or trailing blanks, inner runs folded to one space */
static char *header_value(const char *s) {
  char *o = malloc(strlen(s) + 1), *p = o;
  if (!o)
    return NULL;
  bool space = false;
  for (; *s; s++) {
    if (*s == ' ' || *s == '\t') {
      space = p != o;
      continue;
    }
    if (space)
      *p++ = ' ';
    space = false;
    *p++ = *s;
  }
  *p = '\0';
  return o;
}

/* The pieces of a canonical request that signing needs again. */
struct canon {
  char *text;             /* the canonical request */
  char *signed_headers;   /* "host;x-amz-date" */
  char *query;            /* the canonical query string (also what a URL carries) */
};

static void canon_free(struct canon *c) {
  free(c->text);
  free(c->signed_headers);
  free(c->query);
  memset(c, 0, sizeof(*c));
}

static char *canonical_query(const struct tg_sigv4_pair *q, size_t n) {
  struct kv *v = calloc(n ? n : 1, sizeof(*v));
  struct sb b = {0};
  bool ok = v != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    v[i].k = tg_sigv4_uri_encode(q[i].name ? q[i].name : "", false);
    v[i].v = tg_sigv4_uri_encode(q[i].value ? q[i].value : "", false);
    ok = v[i].k && v[i].v;
  }
  if (ok) {
    qsort(v, n, sizeof(*v), kv_cmp_value);
    sb_add(&b, "");
    for (size_t i = 0; i < n; i++) {
      if (i)
        sb_add(&b, "&");
      sb_add(&b, v[i].k);
      sb_add(&b, "=");
      sb_add(&b, v[i].v);
    }
  }
  kv_free(v, n);
  return ok ? sb_take(&b) : NULL;
}

/*
 * The canonical request of @r. Signed headers: @r's, host, and (for the
 * Authorization header, @date_header) x-amz-date, plus x-amz-security-token
 * when @token is set; a pre-signed URL carries the date in its query.
 */
static bool build_canonical(const struct tg_sigv4_req *r, const char *token, bool date_header,
                            char amz_date[17], struct canon *out) {
  memset(out, 0, sizeof(*out));
  if (!r || !r->method || !*r->method || !r->host || !*r->host || !r->payload_hash ||
      !*r->payload_hash || !tg_sigv4_amz_date(r->t, amz_date))
    return false;
  bool with_token = token && *token;
  size_t nh = r->n_headers + 1 + (date_header ? 1 : 0) + (with_token ? 1 : 0);
  struct kv *h = calloc(nh, sizeof(*h));
  struct sb text = {0}, sh = {0};
  bool ok = h != NULL;
  size_t k = 0;
  for (size_t i = 0; ok && i < r->n_headers; i++, k++) {
    if (!r->headers[i].name || !r->headers[i].value) {
      ok = false;
      break;
    }
    h[k].k = header_name(r->headers[i].name);
    h[k].v = header_value(r->headers[i].value);
    h[k].order = k;
    ok = h[k].k && h[k].v && *h[k].k;
    /* host and x-amz-date come from the request itself */
    if (ok && (strcmp(h[k].k, "host") == 0 || strcmp(h[k].k, "x-amz-date") == 0 ||
               (with_token && strcmp(h[k].k, "x-amz-security-token") == 0)))
      ok = false;
  }
  if (ok) {
    const char *names[3] = {"host", "x-amz-date", "x-amz-security-token"};
    const char *values[3] = {r->host, amz_date, token};
    for (size_t i = 0; ok && i < 3; i++) {
      if ((i == 1 && !date_header) || (i == 2 && !with_token))
        continue;
      h[k].k = strdup(names[i]);
      h[k].v = header_value(values[i]);
      h[k].order = k;
      ok = h[k].k && h[k].v;
      k++;
    }
  }
  if (ok) {
    qsort(h, nh, sizeof(*h), kv_cmp);
    out->query = canonical_query(r->query, r->query ? r->n_query : 0);
    ok = out->query != NULL;
  }
  if (ok) {
    sb_add(&text, r->method);
    sb_add(&text, "\n");
    if (!r->path || r->path[0] != '/')
      sb_add(&text, "/");
    sb_encode(&text, r->path ? r->path : "", true);
    sb_add(&text, "\n");
    sb_add(&text, out->query);
    sb_add(&text, "\n");
    sb_add(&sh, "");
    for (size_t i = 0; i < nh; i++) {
      bool same = i > 0 && strcmp(h[i].k, h[i - 1].k) == 0;
      if (same) {         /* repeated header: values joined by ',' */
        sb_add(&text, ",");
      } else {
        if (i > 0) {
          sb_add(&text, "\n");
          sb_add(&sh, ";");
        }
        sb_add(&text, h[i].k);
        sb_add(&text, ":");
        sb_add(&sh, h[i].k);
      }
      sb_add(&text, h[i].v);
    }
    sb_add(&text, "\n\n");
    sb_add(&text, sh.s ? sh.s : "");
    sb_add(&text, "\n");
    sb_add(&text, r->payload_hash);
  }
  kv_free(h, nh);
  out->text = ok ? sb_take(&text) : (free(text.s), NULL);
  out->signed_headers = ok ? sb_take(&sh) : (free(sh.s), NULL);
  if (!out->text || !out->signed_headers) {
    canon_free(out);
    return false;
  }
  return true;
}

char *tg_sigv4_canonical_request(const struct tg_sigv4_req *r, const char *token) {
  char amz_date[17];
  struct canon c;
  if (!build_canonical(r, token, true, amz_date, &c))
    return NULL;
  char *text = c.text;
  c.text = NULL;
  canon_free(&c);
  return text;
}

/* ---- signing ----------------------------------------------------------- */

/* signature of @canonical at @amz_date into @sig; the scope into @scope */
static bool sign_canonical(const struct tg_sigv4_req *r, const struct tg_sigv4_creds *c,
                           const char *amz_date, const char *canonical, char scope[160],
                           char hash[65], char sig[65]) {
  char date[9], sts[400];
  unsigned char key[32], mac[32];
  if (!c || !c->access_key || !*c->access_key || !c->secret_key || !*c->secret_key ||
      !r->region || !*r->region || !r->service || !*r->service)
    return false;
  memcpy(date, amz_date, 8);
  date[8] = '\0';
  int n = snprintf(scope, 160, "%s/%s/%s/aws4_request", date, r->region, r->service);
  if (n < 0 || n >= 160)
    return false;
  tg_sigv4_sha256_hex(canonical, strlen(canonical), hash);
  n = snprintf(sts, sizeof(sts), ALGORITHM "\n%s\n%s\n%s", amz_date, scope, hash);
  if (n < 0 || (size_t)n >= sizeof(sts))
    return false;
  tg_sigv4_signing_key(c->secret_key, date, r->region, r->service, key);
  hmac(key, sizeof(key), sts, mac);
  OPENSSL_cleanse(key, sizeof(key));
  to_hex(mac, sizeof(mac), sig);
  return true;
}

bool tg_sigv4_sign(const struct tg_sigv4_req *r, const struct tg_sigv4_creds *c,
                   struct tg_sigv4_out *out) {
  struct canon cn;
  char scope[160];
  memset(out, 0, sizeof(*out));
  if (!c || !build_canonical(r, c->session_token, true, out->amz_date, &cn))
    return false;
  bool ok = sign_canonical(r, c, out->amz_date, cn.text, scope, out->canonical_hash,
                           out->signature);
  if (ok) {
    int n = snprintf(out->authorization, sizeof(out->authorization),
                     ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                     c->access_key, scope, cn.signed_headers, out->signature);
    ok = n > 0 && (size_t)n < sizeof(out->authorization);
  }
  canon_free(&cn);
  if (!ok)
    memset(out, 0, sizeof(*out));
  return ok;
}

char *tg_sigv4_presign(const struct tg_sigv4_req *r, const struct tg_sigv4_creds *c,
                       const char *scheme, int64_t expires) {
  char amz_date[17], date[9], credential[400], exp[24], hash[65], sig[65], scope[160];
  if (!r || !c || !c->access_key || !r->region || !r->service || !scheme ||
      expires < 1 || expires > 604800 || !tg_sigv4_amz_date(r->t, amz_date))
    return NULL;
  memcpy(date, amz_date, 8);
  date[8] = '\0';
  int n = snprintf(credential, sizeof(credential), "%s/%s/%s/%s/aws4_request", c->access_key,
                   date, r->region, r->service);
  if (n < 0 || (size_t)n >= sizeof(credential))
    return NULL;
  snprintf(exp, sizeof(exp), "%lld", (long long)expires);
  struct tg_sigv4_pair q[6] = {
    {"X-Amz-Algorithm", ALGORITHM},
    {"X-Amz-Credential", credential},
    {"X-Amz-Date", amz_date},
    {"X-Amz-Expires", exp},
    {"X-Amz-SignedHeaders", "host"},
    {"X-Amz-Security-Token", c->session_token},
  };
  struct tg_sigv4_req pr = *r;
  pr.query = q;
  pr.n_query = c->session_token && *c->session_token ? 6 : 5;
  pr.headers = NULL;
  pr.n_headers = 0;
  pr.payload_hash = TG_SIGV4_UNSIGNED;
  struct canon cn;
  if (!build_canonical(&pr, NULL, false, amz_date, &cn))
    return NULL;
  char *url = NULL;
  if (sign_canonical(&pr, c, amz_date, cn.text, scope, hash, sig)) {
    struct sb b = {0};
    sb_add(&b, scheme);
    sb_add(&b, "://");
    sb_add(&b, r->host);
    if (!r->path || r->path[0] != '/')
      sb_add(&b, "/");
    sb_encode(&b, r->path ? r->path : "", true);
    sb_add(&b, "?");
    sb_add(&b, cn.query);
    sb_add(&b, "&X-Amz-Signature=");
    sb_add(&b, sig);
    url = sb_take(&b);
  }
  canon_free(&cn);
  return url;
}
