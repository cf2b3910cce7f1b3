/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigv4.h - AWS Signature Version 4, computed with OpenSSL (SHA-256 and
 * HMAC-SHA256): the canonical request, the string to sign, the signing key,
 * the Authorization header of a request, and pre-signed URLs (query-string
 * authentication). Every function is pure: the time, the credentials and
 * the request are arguments, so AWS's published examples reproduce exactly.
 * Nothing here logs; the secret key only ever enters an HMAC, and derived
 * keys are wiped after use.
 */
#ifndef TG_SIGV4_H
#define TG_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* hex SHA-256 of the empty string (an empty payload) */
#define TG_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define TG_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"

/* Credentials. session_token NULL or "": long-term keys. */
struct tg_sigv4_creds {
  const char *access_key;
  const char *secret_key;
  const char *session_token;
};

/* A header or a query parameter, as sent (the signer encodes and sorts). */
struct tg_sigv4_pair {
  const char *name;
  const char *value;
};

/*
 * A request to sign. The signer adds "host" (from @host) and "x-amz-date"
 * (from @t) to the signed headers, and "x-amz-security-token" when the
 * credentials hold a session token; @headers are any others to sign
 * (names in any case; values are trimmed and inner runs of spaces folded).
 */
struct tg_sigv4_req {
  const char *method;                   /* "GET", "PUT", ... */
  const char *host;                     /* the Host header: "bucket.s3.amazonaws.com", "127.0.0.1:9000" */
  const char *path;                     /* NOT encoded, from "/": "/bucket/a b.jpg"; each segment is URI-encoded */
  const struct tg_sigv4_pair *query;    /* NOT encoded; may be NULL */
  size_t n_query;
  const struct tg_sigv4_pair *headers;  /* may be NULL */
  size_t n_headers;
  const char *payload_hash;             /* hex SHA-256 of the body, or TG_SIGV4_UNSIGNED */
  const char *region;                   /* "us-east-1" */
  const char *service;                  /* "s3" */
  int64_t t;                            /* request time, unix seconds (UTC) */
};

/* What signing gives. */
struct tg_sigv4_out {
  char amz_date[17];          /* "20150830T123600Z": send as x-amz-date */
  char canonical_hash[65];    /* hex SHA-256 of the canonical request */
  char signature[65];         /* hex */
  char authorization[1024];   /* the Authorization header's value */
};

/**
 * tg_sigv4_uri_encode() - AWS's URI encoding: every byte but A-Z a-z 0-9
 * - . _ ~ becomes %XX (upper-case hex)
 * @s:          the text
 * @keep_slash: leave '/' as it is (object paths), else encode it
 *
 * Return: a malloc()ed string, or NULL when out of memory.
 */
char *tg_sigv4_uri_encode(const char *s, bool keep_slash);

/**
 * tg_sigv4_amz_date() - the ISO 8601 basic time SigV4 uses
 * @t:   unix seconds
 * @out: "YYYYMMDDTHHMMSSZ"
 *
 * Return: false when @t is outside years 0000-9999.
 */
bool tg_sigv4_amz_date(int64_t t, char out[17]);

/**
 * tg_sigv4_sha256_hex() - hex SHA-256 of bytes
 * @data: the bytes (may be NULL when @len is 0)
 * @len:  their number
 * @out:  64 hex digits and a NUL
 */
void tg_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/**
 * tg_sigv4_canonical_request() - the canonical request of @r
 * @r:     the request
 * @token: the session token to sign as x-amz-security-token, NULL or "" for none
 *
 * Method, encoded path, sorted encoded query, sorted lower-cased headers
 * (host and x-amz-date added), the signed header list and the payload hash,
 * one per line.
 *
 * Return: a malloc()ed string, or NULL when out of memory or @r is incomplete.
 */
char *tg_sigv4_canonical_request(const struct tg_sigv4_req *r, const char *token);

/**
 * tg_sigv4_signing_key() - HMAC chain "AWS4"+secret, date, region, service,
 * "aws4_request"
 * @secret:  the secret access key
 * @date:    "YYYYMMDD"
 * @region:  e.g. "us-east-1"
 * @service: e.g. "s3"
 * @key:     out: the 32-byte key (wipe it after use)
 */
void tg_sigv4_signing_key(const char *secret, const char *date, const char *region,
                          const char *service, unsigned char key[32]);

/**
 * tg_sigv4_sign() - sign a request for the Authorization header
 * @r:   the request
 * @c:   the credentials
 * @out: x-amz-date, the canonical request's hash, the signature and the
 *       Authorization value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...")
 *
 * Return: false when out of memory, @r is incomplete or a field does not fit.
 */
bool tg_sigv4_sign(const struct tg_sigv4_req *r, const struct tg_sigv4_creds *c,
                   struct tg_sigv4_out *out);

/**
 * tg_sigv4_presign() - a pre-signed URL (query-string authentication)
 * @r:       the request: method, host, path, region, service, t (query,
 *           headers and payload_hash are ignored: only host is signed and
 *           the payload is UNSIGNED-PAYLOAD)
 * @c:       the credentials; a session token goes in X-Amz-Security-Token
 * @scheme:  "https" or "http"
 * @expires: X-Amz-Expires, 1..604800 seconds
 *
 * Return: a malloc()ed "{scheme}://{host}{encoded path}?X-Amz-Algorithm=...
 * &X-Amz-Signature=...", or NULL when out of memory or an argument is bad.
 */
char *tg_sigv4_presign(const struct tg_sigv4_req *r, const struct tg_sigv4_creds *c,
                       const char *scheme, int64_t expires);

#endif
