/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oss_sign.c - OSS V1 and V4 signatures with OpenSSL's HMAC, SHA-1, SHA-256
 * and MD5, following Alibaba's documented algorithms (and checked against
 * their published examples in tests/unit/test_oss_sign.c). Canonical forms
 * are built in bounded buffers; headers and query parameters are sorted by
 * their lower-case (V1, V4 headers) or URI-encoded (V4 query) names.
 */
#include "storage/oss_sign.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_ITEMS 64
#define NAME_MAX_LEN 128

/* ---- small helpers --------------------------------------------------------------------- */

/* a bounded string builder: ok turns false once something did not fit */
struct sb {
  char *p;
  size_t n, len;
  bool ok;
};

static void sb_init(struct sb *b, char *p, size_t n) {
  b->p = p;
  b->n = n;
  b->len = 0;
  b->ok = n > 0;
  if (n)
    p[0] = '\0';
}

static void sb_addn(struct sb *b, const char *s, size_t len) {
  if (!b->ok)
    return;
  if (b->len + len + 1 > b->n) {
    b->ok = false;
    return;
  }
  memcpy(b->p + b->len, s, len);
  b->len += len;
  b->p[b->len] = '\0';
}

static void sb_add(struct sb *b, const char *s) {
  sb_addn(b, s ? s : "", s ? strlen(s) : 0);
}

static bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~';
}

static void sb_enc(struct sb *b, const char *s, bool keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *q = (const unsigned char *)(s ? s : ""); *q && b->ok; q++) {
    if (unreserved(*q) || (keep_slash && *q == '/')) {
      sb_addn(b, (const char *)q, 1);
    } else {
      char e[3] = {'%', hex[*q >> 4], hex[*q & 15]};
      sb_addn(b, e, 3);
    }
  }
}

bool tg_oss_uri_encode(const char *s, bool keep_slash, char *out, size_t n) {
  struct sb b;
  sb_init(&b, out, n);
  sb_enc(&b, s, keep_slash);
  return b.ok;
}

static void lower_copy(char *dst, size_t n, const char *src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < n; i++)
    dst[i] = (char)tolower((unsigned char)src[i]);
  dst[i] = '\0';
}

static bool empty(const char *s) {
  return !s || !*s;
}

static void to_hex(const unsigned char *md, size_t len, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  out[2 * len] = '\0';
}

static bool hmac(const EVP_MD *md, const void *key, size_t klen, const void *data, size_t dlen,
                 unsigned char *out, unsigned *olen) {
  return HMAC(md, key, (int)klen, data, dlen, out, olen) != NULL;
}

static void utc(int64_t unix_s, struct tm *tm) {
  time_t t = (time_t)unix_s;
  gmtime_r(&t, tm);
}

void tg_oss_http_date(int64_t unix_s, char out[30]) {
  static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  struct tm tm;
  utc(unix_s, &tm);
  snprintf(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
           tm.tm_mday % 32, months[tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour % 24,
           tm.tm_min % 60, tm.tm_sec % 61);
}

void tg_oss_iso8601(int64_t unix_s, char out[17]) {
  struct tm tm;
  utc(unix_s, &tm);
  if (tm.tm_year + 1900 > 9999 || strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm) != 16)
    snprintf(out, 17, "99991231T235959Z");
}

bool tg_oss_content_md5(const void *data, size_t len, char out[25]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  if (EVP_Digest(data ? data : "", len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
    return false;
  return EVP_EncodeBlock((unsigned char *)out, md, 16) == 24;
}

/* a header or parameter, its name lower-cased (V1, V4 headers) or encoded (V4 query) */
struct item {
  char *name;
  char *value;
  const char *raw_value;
};

static int item_cmp(const void *a, const void *b) {
  const struct item *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if (c)
    return c;
  return strcmp(x->value ? x->value : (x->raw_value ? x->raw_value : ""),
                y->value ? y->value : (y->raw_value ? y->raw_value : ""));
}

static void items_free(struct item *it, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(it[i].name);
    free(it[i].value);
  }
}

/* the signed headers of @headers: lower-case names for which @take() holds, sorted */
static bool collect_headers(const struct tg_oss_kv *headers, size_t nh,
                            bool (*take)(const char *lname, const void *arg), const void *arg,
                            struct item *it, size_t *count) {
  *count = 0;
  for (size_t i = 0; i < nh; i++) {
    char lname[NAME_MAX_LEN];
    if (!headers[i].name || strlen(headers[i].name) >= sizeof(lname))
      return false;
    lower_copy(lname, sizeof(lname), headers[i].name);
    if (!take(lname, arg))
      continue;
    if (*count >= MAX_ITEMS)
      return false;
    it[*count].name = strdup(lname);
    it[*count].value = NULL;
    it[*count].raw_value = headers[i].value ? headers[i].value : "";
    if (!it[*count].name)
      return false;
    (*count)++;
  }
  qsort(it, *count, sizeof(*it), item_cmp);
  return true;
}

/* ---- V1 -------------------------------------------------------------------------------- */

static bool take_x_oss(const char *lname, const void *arg) {
  (void)arg;
  return strncmp(lname, "x-oss-", 6) == 0;
}

/* a header value without the blanks around it */
static void sb_trimmed(struct sb *b, const char *v) {
  while (*v == ' ' || *v == '\t')
    v++;
  size_t len = strlen(v);
  while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
    len--;
  sb_addn(b, v, len);
}

bool tg_oss_v1_string_to_sign(const struct tg_oss_v1_req *r, char *out, size_t n) {
  struct item it[MAX_ITEMS];
  size_t count = 0;
  struct sb b;
  sb_init(&b, out, n);
  if (!collect_headers(r->headers, r->n_headers, take_x_oss, NULL, it, &count)) {
    items_free(it, count);
    return false;
  }
  sb_add(&b, r->verb);
  sb_add(&b, "\n");
  sb_add(&b, r->content_md5);
  sb_add(&b, "\n");
  sb_add(&b, r->content_type);
  sb_add(&b, "\n");
  sb_add(&b, r->date);
  sb_add(&b, "\n");
  for (size_t i = 0; i < count; i++) {
    sb_add(&b, it[i].name);
    sb_add(&b, ":");
    sb_trimmed(&b, it[i].raw_value);
    sb_add(&b, "\n");
  }
  sb_add(&b, r->resource);
  items_free(it, count);
  return b.ok;
}

/* base64(HMAC-SHA1(secret, sts)) into out[29] */
static bool v1_sign(const char *secret, const char *sts, char out[29]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (!hmac(EVP_sha1(), secret, strlen(secret), sts, strlen(sts), md, &len) || len != 20)
    return false;
  return EVP_EncodeBlock((unsigned char *)out, md, 20) == 28;
}

bool tg_oss_v1_authorization(const struct tg_oss_v1_req *r, const char *id, const char *secret,
                             char *out, size_t n) {
  char sts[8192], sig[29];
  if (!tg_oss_v1_string_to_sign(r, sts, sizeof(sts)) || !v1_sign(secret, sts, sig))
    return false;
  struct sb b;
  sb_init(&b, out, n);
  sb_add(&b, "OSS ");
  sb_add(&b, id);
  sb_add(&b, ":");
  sb_add(&b, sig);
  return b.ok;
}

bool tg_oss_v1_presign(const char *url_base, const char *bucket, const char *key, const char *id,
                       const char *secret, const char *token, int64_t expires_at, char *out,
                       size_t n) {
  char resource[4096], expires[24], sts[8192], sig[29];
  struct sb rb;
  sb_init(&rb, resource, sizeof(resource));
  sb_add(&rb, "/");
  sb_add(&rb, bucket);
  sb_add(&rb, "/");
  sb_add(&rb, key);
  if (!empty(token)) {
    sb_add(&rb, "?security-token=");
    sb_add(&rb, token);
  }
  snprintf(expires, sizeof(expires), "%" PRId64, expires_at);
  struct tg_oss_v1_req r = {.verb = "GET", .date = expires, .resource = resource};
  if (!rb.ok || !tg_oss_v1_string_to_sign(&r, sts, sizeof(sts)) || !v1_sign(secret, sts, sig))
    return false;
  struct sb b;
  sb_init(&b, out, n);
  sb_add(&b, url_base);
  sb_add(&b, "/");
  sb_enc(&b, key, true);
  sb_add(&b, "?OSSAccessKeyId=");
  sb_enc(&b, id, false);
  sb_add(&b, "&Expires=");
  sb_add(&b, expires);
  sb_add(&b, "&Signature=");
  sb_enc(&b, sig, false);
  if (!empty(token)) {
    sb_add(&b, "&security-token=");
    sb_enc(&b, token, false);
  }
  return b.ok;
}

/* ---- V4 -------------------------------------------------------------------------------- */

static bool default_signed(const char *lname) {
  return strncmp(lname, "x-oss-", 6) == 0 || strcmp(lname, "content-type") == 0 ||
         strcmp(lname, "content-md5") == 0;
}

/* the additional header names that count: lower-case, present with a value, not signed
 * anyway, unique, sorted */
struct additional {
  char names[16][NAME_MAX_LEN];
  size_t n;
};

static int str_cmp(const void *a, const void *b) {
  return strcmp((const char *)a, (const char *)b);
}

static bool additional_of(const struct tg_oss_v4_req *r, struct additional *a) {
  a->n = 0;
  for (size_t i = 0; i < r->n_additional; i++) {
    char lname[NAME_MAX_LEN];
    if (!r->additional[i] || strlen(r->additional[i]) >= sizeof(lname))
      return false;
    lower_copy(lname, sizeof(lname), r->additional[i]);
    if (default_signed(lname))
      continue;
    bool present = false, dup = false;
    for (size_t k = 0; k < r->n_headers; k++)
      if (r->headers[k].name && strcasecmp(r->headers[k].name, lname) == 0 &&
          !empty(r->headers[k].value))
        present = true;
    for (size_t k = 0; k < a->n; k++)
      if (strcmp(a->names[k], lname) == 0)
        dup = true;
    if (!present || dup)
      continue;
    if (a->n >= 16)
      return false;
    memcpy(a->names[a->n++], lname, strlen(lname) + 1);
  }
  qsort(a->names, a->n, sizeof(a->names[0]), str_cmp);
  return true;
}

static bool take_v4(const char *lname, const void *arg) {
  const struct additional *a = arg;
  if (default_signed(lname))
    return true;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->names[i], lname) == 0)
      return true;
  return false;
}

static char *enc_dup(const char *s) {
  size_t n = 3 * strlen(s ? s : "") + 1;
  char *out = malloc(n);
  if (out && !tg_oss_uri_encode(s ? s : "", false, out, n)) {
    free(out);
    out = NULL;
  }
  return out;
}

/* the query, names and values URI-encoded, sorted */
static bool collect_query(const struct tg_oss_kv *q, size_t nq, struct item *it, size_t *count) {
  *count = 0;
  for (size_t i = 0; i < nq; i++) {
    if (*count >= MAX_ITEMS || !q[i].name)
      return false;
    it[*count].name = enc_dup(q[i].name);
    it[*count].value = enc_dup(q[i].value ? q[i].value : "");
    it[*count].raw_value = NULL;
    (*count)++;
    if (!it[*count - 1].name || !it[*count - 1].value)
      return false;
  }
  qsort(it, *count, sizeof(*it), item_cmp);
  return true;
}

static void sb_query(struct sb *b, const struct item *it, size_t count) {
  for (size_t i = 0; i < count; i++) {
    if (i)
      sb_add(b, "&");
    sb_add(b, it[i].name);
    if (*it[i].value) {
      sb_add(b, "=");
      sb_add(b, it[i].value);
    }
  }
}

bool tg_oss_v4_canonical_request(const struct tg_oss_v4_req *r, char *out, size_t n) {
  struct additional a;
  struct item hd[MAX_ITEMS], qs[MAX_ITEMS];
  size_t nh = 0, nq = 0;
  struct sb b;
  bool ok = additional_of(r, &a) &&
            collect_headers(r->headers, r->n_headers, take_v4, &a, hd, &nh) &&
            collect_query(r->query, r->n_query, qs, &nq);
  sb_init(&b, out, n);
  if (ok) {
    const char *payload = "UNSIGNED-PAYLOAD";
    for (size_t i = 0; i < nh; i++)
      if (strcmp(hd[i].name, "x-oss-content-sha256") == 0)
        payload = hd[i].raw_value;
    sb_add(&b, r->method);
    sb_add(&b, "\n/");
    if (!empty(r->bucket)) {
      sb_enc(&b, r->bucket, true);
      sb_add(&b, "/");
    }
    sb_enc(&b, r->key, true);
    sb_add(&b, "\n");
    sb_query(&b, qs, nq);
    sb_add(&b, "\n");
    for (size_t i = 0; i < nh; i++) {
      sb_add(&b, hd[i].name);
      sb_add(&b, ":");
      sb_add(&b, hd[i].raw_value);
      sb_add(&b, "\n");
    }
    sb_add(&b, "\n");
    for (size_t i = 0; i < a.n; i++) {
      if (i)
        sb_add(&b, ";");
      sb_add(&b, a.names[i]);
    }
    sb_add(&b, "\n");
    sb_add(&b, payload);
  }
  items_free(hd, nh);
  items_free(qs, nq);
  return ok && b.ok;
}

bool tg_oss_v4_signature(const char *canonical, const char *secret, const char *region,
                         int64_t now_s, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE], k1[EVP_MAX_MD_SIZE], k2[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  char stamp[17], date[9], hexhash[65], sts[256], key0[512];
  tg_oss_iso8601(now_s, stamp);
  memcpy(date, stamp, 8);
  date[8] = '\0';
  if (EVP_Digest(canonical, strlen(canonical), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
    return false;
  to_hex(md, 32, hexhash);
  int sl = snprintf(sts, sizeof(sts), "OSS4-HMAC-SHA256\n%s\n%s/%s/oss/aliyun_v4_request\n%s",
                    stamp, date, region, hexhash);
  int kl = snprintf(key0, sizeof(key0), "aliyun_v4%s", secret);
  bool ok = sl > 0 && (size_t)sl < sizeof(sts) && kl > 0 && (size_t)kl < sizeof(key0) &&
            hmac(EVP_sha256(), key0, (size_t)kl, date, 8, k1, &len) &&
            hmac(EVP_sha256(), k1, 32, region, strlen(region), k2, &len) &&
            hmac(EVP_sha256(), k2, 32, "oss", 3, k1, &len) &&
            hmac(EVP_sha256(), k1, 32, "aliyun_v4_request", 17, k2, &len) &&
            hmac(EVP_sha256(), k2, 32, sts, (size_t)sl, md, &len) && len == 32;
  OPENSSL_cleanse(key0, sizeof(key0));
  OPENSSL_cleanse(k1, sizeof(k1));
  OPENSSL_cleanse(k2, sizeof(k2));
  if (ok)
    to_hex(md, 32, out);
  return ok;
}

/* "{id}/{date}/{region}/oss/aliyun_v4_request" */
static bool credential(const char *id, const char *region, int64_t now_s, char *out, size_t n) {
  char stamp[17];
  tg_oss_iso8601(now_s, stamp);
  int l = snprintf(out, n, "%s/%.8s/%s/oss/aliyun_v4_request", id, stamp, region);
  return l > 0 && (size_t)l < n;
}

static void sb_additional(struct sb *b, const struct additional *a) {
  for (size_t i = 0; i < a->n; i++) {
    if (i)
      sb_add(b, ";");
    sb_add(b, a->names[i]);
  }
}

bool tg_oss_v4_authorization(const struct tg_oss_v4_req *r, const char *id, const char *secret,
                             const char *region, int64_t now_s, char *out, size_t n) {
  char cred[512], sig[65];
  struct additional a;
  size_t cn = 16384;
  char *canonical = malloc(cn);
  bool ok = canonical && additional_of(r, &a) && credential(id, region, now_s, cred, sizeof(cred)) &&
            tg_oss_v4_canonical_request(r, canonical, cn) &&
            tg_oss_v4_signature(canonical, secret, region, now_s, sig);
  free(canonical);
  if (!ok)
    return false;
  struct sb b;
  sb_init(&b, out, n);
  sb_add(&b, "OSS4-HMAC-SHA256 Credential=");
  sb_add(&b, cred);
  if (a.n) {
    sb_add(&b, ",AdditionalHeaders=");
    sb_additional(&b, &a);
  }
  sb_add(&b, ",Signature=");
  sb_add(&b, sig);
  return b.ok;
}

bool tg_oss_v4_presign(const char *url_base, const struct tg_oss_v4_req *r, const char *id,
                       const char *secret, const char *token, const char *region, int64_t now_s,
                       int64_t expires_s, char *out, size_t n) {
  char cred[512], stamp[17], expires[24], addl[16 * NAME_MAX_LEN], sig[65];
  struct additional a;
  struct tg_oss_kv q[MAX_ITEMS];
  struct item qs[MAX_ITEMS];
  size_t nq = 0, nqs = 0;
  if (r->n_query + 6 > MAX_ITEMS || !additional_of(r, &a) ||
      !credential(id, region, now_s, cred, sizeof(cred)))
    return false;
  tg_oss_iso8601(now_s, stamp);
  snprintf(expires, sizeof(expires), "%" PRId64, expires_s);
  struct sb ab;
  sb_init(&ab, addl, sizeof(addl));
  sb_additional(&ab, &a);
  for (size_t i = 0; i < r->n_query; i++) {
    const char *nm = r->query[i].name;
    if (nm && (strcmp(nm, "x-oss-signature") == 0 || strcmp(nm, "x-oss-security-token") == 0 ||
               strcmp(nm, "x-oss-additional-headers") == 0))
      continue;
    q[nq++] = r->query[i];
  }
  q[nq++] = (struct tg_oss_kv){"x-oss-signature-version", "OSS4-HMAC-SHA256"};
  q[nq++] = (struct tg_oss_kv){"x-oss-date", stamp};
  q[nq++] = (struct tg_oss_kv){"x-oss-expires", expires};
  q[nq++] = (struct tg_oss_kv){"x-oss-credential", cred};
  if (!empty(token))
    q[nq++] = (struct tg_oss_kv){"x-oss-security-token", token};
  if (a.n)
    q[nq++] = (struct tg_oss_kv){"x-oss-additional-headers", addl};
  struct tg_oss_v4_req signed_req = *r;
  signed_req.query = q;
  signed_req.n_query = nq;
  size_t cn = 16384;
  char *canonical = malloc(cn);
  bool ok = canonical && ab.ok && tg_oss_v4_canonical_request(&signed_req, canonical, cn) &&
            tg_oss_v4_signature(canonical, secret, region, now_s, sig) &&
            collect_query(q, nq, qs, &nqs);
  free(canonical);
  struct sb b;
  sb_init(&b, out, n);
  if (ok) {
    sb_add(&b, url_base);
    sb_add(&b, "/");
    sb_enc(&b, r->key, true);
    sb_add(&b, "?");
    sb_query(&b, qs, nqs);
    sb_add(&b, "&x-oss-signature=");
    sb_add(&b, sig);
  }
  items_free(qs, nqs);
  return ok && b.ok;
}
