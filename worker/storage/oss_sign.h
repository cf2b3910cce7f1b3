/* SPDX-License-Identifier: Apache-2.0 */
/*
 * oss_sign.h - Alibaba Cloud OSS request signatures, as pure functions of
 * their inputs and an explicit time: V1 (HMAC-SHA1, "OSS id:signature" and
 * the Expires/OSSAccessKeyId/Signature URL) and V4 (OSS4-HMAC-SHA256, the
 * Authorization header and the pre-signed query URL, signing key derived
 * from "aliyun_v4" + secret, date, region, "oss", "aliyun_v4_request").
 * Nothing here logs; secrets only go into HMAC keys. Outputs that do not fit
 * their buffer make the function return false rather than cut.
 */
#ifndef TG_OSS_SIGN_H
#define TG_OSS_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One header or query parameter: raw (not URI-encoded) name and value. */
struct tg_oss_kv {
  const char *name;
  const char *value;            /* NULL or "": a query parameter without "=" */
};

/**
 * tg_oss_http_date() - an RFC 1123 date ("Thu, 17 Nov 2005 18:49:58 GMT")
 * @unix_s: the time
 * @out:    at least 30 bytes
 */
void tg_oss_http_date(int64_t unix_s, char out[30]);

/**
 * tg_oss_iso8601() - a V4 timestamp ("20231216T162057Z")
 * @unix_s: the time
 * @out:    at least 17 bytes
 */
void tg_oss_iso8601(int64_t unix_s, char out[17]);

/**
 * tg_oss_content_md5() - base64 of the MD5 of a body (Content-MD5)
 * @data: the body (may be NULL when @len is 0)
 * @len:  its length
 * @out:  at least 25 bytes
 *
 * Return: true on success.
 */
bool tg_oss_content_md5(const void *data, size_t len, char out[25]);

/**
 * tg_oss_uri_encode() - %XX-encode every byte but A-Z a-z 0-9 - _ . ~
 * @s:          the text
 * @keep_slash: leave '/' as it is (paths)
 * @out:        output
 * @n:          its size
 *
 * Return: true when it fit.
 */
bool tg_oss_uri_encode(const char *s, bool keep_slash, char *out, size_t n);

/* ---- V1 ------------------------------------------------------------------ */

/* What a V1 signature covers. */
struct tg_oss_v1_req {
  const char *verb;                     /* "PUT", "GET", ... */
  const char *content_md5;              /* NULL: "" */
  const char *content_type;             /* NULL: "" */
  const char *date;                     /* the Date header, or Expires of a signed URL */
  const struct tg_oss_kv *headers;      /* the request's headers; x-oss-* ones are signed */
  size_t n_headers;
  const char *resource;                 /* "/bucket/key", subresources included */
};

/**
 * tg_oss_v1_string_to_sign() - VERB, Content-MD5, Content-Type, Date, the
 * canonicalized x-oss-* headers and the resource
 * @r:   the request
 * @out: output
 * @n:   its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v1_string_to_sign(const struct tg_oss_v1_req *r, char *out, size_t n);

/**
 * tg_oss_v1_authorization() - the Authorization header value "OSS id:sig"
 * @r:      the request
 * @id:     AccessKeyId
 * @secret: AccessKeySecret
 * @out:    output
 * @n:      its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v1_authorization(const struct tg_oss_v1_req *r, const char *id, const char *secret,
                             char *out, size_t n);

/**
 * tg_oss_v1_presign() - a V1 signed GET URL of an object
 * @url_base:   scheme and host, and "/bucket" for path-style addressing
 * @bucket:     the bucket (for the signed resource)
 * @key:        the object key (raw)
 * @id:         AccessKeyId
 * @secret:     AccessKeySecret
 * @token:      STS security token, or NULL / ""
 * @expires_at: Unix time the URL stops working
 * @out:        "{url_base}/{key}?OSSAccessKeyId=..&Expires=..&Signature=..[&security-token=..]"
 * @n:          its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v1_presign(const char *url_base, const char *bucket, const char *key, const char *id,
                       const char *secret, const char *token, int64_t expires_at, char *out,
                       size_t n);

/* ---- V4 ------------------------------------------------------------------ */

/* What a V4 signature covers. */
struct tg_oss_v4_req {
  const char *method;
  const char *bucket;                   /* NULL / "": none */
  const char *key;                      /* NULL / "": none */
  const struct tg_oss_kv *query;        /* raw names and values */
  size_t n_query;
  const struct tg_oss_kv *headers;      /* as sent: x-oss-*, Content-Type, Content-MD5 signed */
  size_t n_headers;
  const char *const *additional;        /* more header names to sign (AdditionalHeaders) */
  size_t n_additional;
};

/**
 * tg_oss_v4_canonical_request() - method, URI, query, headers, additional
 * headers and the payload hash (x-oss-content-sha256, else UNSIGNED-PAYLOAD)
 * @r:   the request
 * @out: output
 * @n:   its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v4_canonical_request(const struct tg_oss_v4_req *r, char *out, size_t n);

/**
 * tg_oss_v4_signature() - hex HMAC-SHA256 of the string to sign
 * "OSS4-HMAC-SHA256\n{datetime}\n{date}/{region}/oss/aliyun_v4_request\n{hex
 * sha256 of the canonical request}" under the derived signing key
 * @canonical: the canonical request
 * @secret:    AccessKeySecret
 * @region:    e.g. "cn-hangzhou"
 * @now_s:     the signing time (its UTC date and timestamp)
 * @out:       64 hex digits and a NUL
 *
 * Return: true on success.
 */
bool tg_oss_v4_signature(const char *canonical, const char *secret, const char *region,
                         int64_t now_s, char out[65]);

/**
 * tg_oss_v4_authorization() - the Authorization header value
 * "OSS4-HMAC-SHA256 Credential=id/date/region/oss/aliyun_v4_request[,AdditionalHeaders=..],Signature=.."
 * @r:      the request; its headers must hold x-oss-date (tg_oss_iso8601(@now_s))
 *          and x-oss-content-sha256, as sent
 * @id:     AccessKeyId
 * @secret: AccessKeySecret
 * @region: the region
 * @now_s:  the signing time
 * @out:    output
 * @n:      its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v4_authorization(const struct tg_oss_v4_req *r, const char *id, const char *secret,
                             const char *region, int64_t now_s, char *out, size_t n);

/**
 * tg_oss_v4_presign() - a V4 pre-signed URL (query form)
 * @url_base:  scheme and host, and "/bucket" for path-style addressing
 * @r:         the request; its query gets x-oss-signature-version, x-oss-date,
 *             x-oss-expires, x-oss-credential, [x-oss-security-token,]
 *             [x-oss-additional-headers] added
 * @id:        AccessKeyId
 * @secret:    AccessKeySecret
 * @token:     STS security token, or NULL / ""
 * @region:    the region
 * @now_s:     the signing time
 * @expires_s: lifetime in seconds (1..604800)
 * @out:       "{url_base}/{key}?{sorted query}&x-oss-signature={hex}"
 * @n:         its size
 *
 * Return: true when it fit.
 */
bool tg_oss_v4_presign(const char *url_base, const struct tg_oss_v4_req *r, const char *id,
                       const char *secret, const char *token, const char *region, int64_t now_s,
                       int64_t expires_s, char *out, size_t n);

#endif
