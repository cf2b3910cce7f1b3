/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_oss_sign.c - the OSS signer against Alibaba's published examples,
 * reproduced exactly: the V1 header example of the OSS API reference
 * ("Include a V1 signature in the Authorization header": PUT
 * /oss-example/nelson, secret OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV,
 * signature 26NBxoKdsyly4EDv6inkoDft/yA=) and its V1 signed-URL example
 * (GET oss-api.pdf, Expires 1141889120, EwaNTn1erJGkimiJ9WmXgwnANLc=); the
 * V4 Authorization header and pre-signed query vectors of Alibaba's OSS SDK
 * (alibabacloud-oss-python-sdk-v2 tests/unit/signer/test_v4.py: ak/sk,
 * bucket "bucket", key "1234+-/123/1.txt", odd query names, with and without
 * a security token and additional headers). Plus the helpers (dates,
 * Content-MD5, URI encoding) and the URL shapes the backend hands out.
 */
#include "storage/oss_sign.h"
#include "check.h"

#include <stdio.h>
#include <string.h>

#define SECRET_V1 "OtxrzxIsfpFjA7SwPzILwy8Bw21TLhquhboDYROV"
#define ID_V1 "44CF9590006BF252F707"

static void test_helpers(void) {
  char d[30], s[17], md5[25], enc[64];
  tg_oss_http_date(1132253398, d);
  CHECK_STREQ(d, "Thu, 17 Nov 2005 18:49:58 GMT");
  tg_oss_http_date(0, d);
  CHECK_STREQ(d, "Thu, 01 Jan 1970 00:00:00 GMT");
  tg_oss_iso8601(1702743657, s);
  CHECK_STREQ(s, "20231216T162057Z");
  /* RFC 1864's example body and the empty body */
  CHECK(tg_oss_content_md5("", 0, md5));
  CHECK_STREQ(md5, "1B2M2Y8AsgTpgAmY7PhCfg==");
  CHECK(tg_oss_content_md5("0123456789", 10, md5));
  CHECK_STREQ(md5, "eB5eJF1ptWaXm4bijSPyxw==");
  CHECK(tg_oss_uri_encode("a b/c+d~_.-|", true, enc, sizeof(enc)));
  CHECK_STREQ(enc, "a%20b/c%2Bd~_.-%7C");
  CHECK(tg_oss_uri_encode("a/b", false, enc, sizeof(enc)));
  CHECK_STREQ(enc, "a%2Fb");
  CHECK(!tg_oss_uri_encode("abcdef", false, enc, 4));
}

/* the documented V1 header example */
static void test_v1_header_documented(void) {
  const struct tg_oss_kv h[] = {
    {"Content-MD5", "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM="},
    {"Content-Type", "text/html"},
    {"Date", "Thu, 17 Nov 2005 18:49:58 GMT"},
    {"Host", "oss-example.oss-cn-hangzhou.aliyuncs.com"},
    {"X-OSS-Meta-Author", "foo@bar.com"},
    {"X-OSS-Magic", "abracadabra"},
  };
  struct tg_oss_v1_req r = {
    .verb = "PUT", .content_md5 = "ODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=",
    .content_type = "text/html", .date = "Thu, 17 Nov 2005 18:49:58 GMT", .headers = h,
    .n_headers = 6, .resource = "/oss-example/nelson"};
  char sts[512], auth[128];
  CHECK(tg_oss_v1_string_to_sign(&r, sts, sizeof(sts)));
  CHECK_STREQ(sts, "PUT\nODBGOERFMDMzQTczRUY3NUE3NzA5QzdFNUYzMDQxNEM=\ntext/html\n"
                   "Thu, 17 Nov 2005 18:49:58 GMT\nx-oss-magic:abracadabra\n"
                   "x-oss-meta-author:foo@bar.com\n/oss-example/nelson");
  CHECK(tg_oss_v1_authorization(&r, ID_V1, SECRET_V1, auth, sizeof(auth)));
  CHECK_STREQ(auth, "OSS 44CF9590006BF252F707:26NBxoKdsyly4EDv6inkoDft/yA=");
  /* a different secret, a different signature; a short buffer is refused */
  CHECK(tg_oss_v1_authorization(&r, ID_V1, "wrong", auth, sizeof(auth)));
  CHECK(strcmp(auth, "OSS 44CF9590006BF252F707:26NBxoKdsyly4EDv6inkoDft/yA=") != 0);
  CHECK(!tg_oss_v1_authorization(&r, ID_V1, SECRET_V1, auth, 20));
}

/* the documented V1 signed-URL example */
static void test_v1_url_documented(void) {
  char url[512];
  CHECK(tg_oss_v1_presign("http://oss-example.oss-cn-hangzhou.aliyuncs.com", "oss-example",
                          "oss-api.pdf", ID_V1, SECRET_V1, NULL, 1141889120, url, sizeof(url)));
  CHECK_STREQ(url, "http://oss-example.oss-cn-hangzhou.aliyuncs.com/oss-api.pdf?OSSAccessKeyId="
                   "44CF9590006BF252F707&Expires=1141889120&Signature=EwaNTn1erJGkimiJ9WmXgwnANLc%3D");
  /* path style: the bucket is in the base, the signed resource is the same */
  CHECK(tg_oss_v1_presign("http://127.0.0.1:9000/oss-example", "oss-example", "oss-api.pdf",
                          ID_V1, SECRET_V1, NULL, 1141889120, url, sizeof(url)));
  CHECK(strstr(url, "http://127.0.0.1:9000/oss-example/oss-api.pdf?") == url &&
        strstr(url, "Signature=EwaNTn1erJGkimiJ9WmXgwnANLc%3D"));
  /* an STS token is a signed subresource and goes into the URL */
  CHECK(tg_oss_v1_presign("http://b.example", "b", "k", ID_V1, SECRET_V1, "tok/en", 1141889120,
                          url, sizeof(url)));
  CHECK(strstr(url, "&security-token=tok%2Fen") != NULL);
}

static const struct tg_oss_kv sdk_query[] = {
  {"param1", "value1"}, {"+param1", "value3"}, {"|param1", "value4"},
  {"+param2", ""},      {"|param2", ""},       {"param2", ""},
};

/* The header vectors of the SDK: headers as its signer sends them. */
static void v4_header_case(int64_t t, const char *token, const char *const *addl, size_t naddl,
                           const char *want) {
  char stamp[17], auth[512];
  tg_oss_iso8601(t, stamp);
  struct tg_oss_kv h[10] = {
    {"x-oss-head1", "value"}, {"abc", "value"}, {"ZAbc", "value"}, {"XYZ", "value"},
    {"content-type", "text/plain"}, {"x-oss-content-sha256", "UNSIGNED-PAYLOAD"},
    {"x-oss-date", stamp}, {"Date", "ignored, not signed"},
  };
  size_t nh = 8;
  if (token)
    h[nh++] = (struct tg_oss_kv){"x-oss-security-token", token};
  struct tg_oss_v4_req r = {.method = "PUT", .bucket = "bucket", .key = "1234+-/123/1.txt",
                            .query = sdk_query, .n_query = 6, .headers = h, .n_headers = nh,
                            .additional = addl, .n_additional = naddl};
  CHECK(tg_oss_v4_authorization(&r, "ak", "sk", "cn-hangzhou", t, auth, sizeof(auth)));
  CHECK_STREQ(auth, want);
}

static void test_v4_header_sdk_vectors(void) {
  v4_header_case(1702743657, NULL, NULL, 0,
                 "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
                 "Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe");
  v4_header_case(1702784856, "token", NULL, 0,
                 "OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,"
                 "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea");
  const char *const addl[] = {"ZAbc", "abc"};
  v4_header_case(1702747512, NULL, addl, 2,
                 "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
                 "AdditionalHeaders=abc;zabc,"
                 "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f");
  /* default-signed and absent names are dropped from AdditionalHeaders */
  const char *const addl2[] = {"x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"};
  v4_header_case(1702747512, NULL, addl2, 4,
                 "OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
                 "AdditionalHeaders=abc;zabc,"
                 "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f");
}

static void test_v4_canonical_request(void) {
  char stamp[17], canon[2048];
  tg_oss_iso8601(1702743657, stamp);
  const struct tg_oss_kv h[] = {
    {"x-oss-head1", "value"}, {"abc", "value"}, {"content-type", "text/plain"},
    {"x-oss-content-sha256", "UNSIGNED-PAYLOAD"}, {"x-oss-date", stamp},
  };
  struct tg_oss_v4_req r = {.method = "PUT", .bucket = "bucket", .key = "1234+-/123/1.txt",
                            .query = sdk_query, .n_query = 6, .headers = h, .n_headers = 5};
  CHECK(tg_oss_v4_canonical_request(&r, canon, sizeof(canon)));
  CHECK_STREQ(canon, "PUT\n/bucket/1234%2B-/123/1.txt\n"
                     "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\n"
                     "content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\n"
                     "x-oss-date:20231216T162057Z\nx-oss-head1:value\n\n\nUNSIGNED-PAYLOAD");
}

/* the x-oss-signature (and another parameter) of a pre-signed URL */
static void query_param(const char *url, const char *name, char *out, size_t n) {
  char pat[64];
  snprintf(pat, sizeof(pat), "%s=", name);
  *out = '\0';
  for (const char *p = strchr(url, '?'); p; p = strchr(p + 1, '&')) {
    if (strncmp(p + 1, pat, strlen(pat)) == 0) {
      snprintf(out, n, "%.*s", (int)strcspn(p + 1 + strlen(pat), "&"), p + 1 + strlen(pat));
      return;
    }
  }
}

static void v4_query_case(int64_t t, int64_t expires, const char *token, const char *const *addl,
                          size_t naddl, const char *want_sig, const char *want_addl) {
  const struct tg_oss_kv h[] = {
    {"x-oss-head1", "value"}, {"abc", "value"}, {"ZAbc", "value"}, {"XYZ", "value"},
    {"content-type", "application/octet-stream"},
  };
  struct tg_oss_v4_req r = {.method = "PUT", .bucket = "bucket", .key = "1234+-/123/1.txt",
                            .query = sdk_query, .n_query = 6, .headers = h, .n_headers = 5,
                            .additional = addl, .n_additional = naddl};
  char url[2048], v[256], stamp[17];
  CHECK(tg_oss_v4_presign("http://bucket.oss-cn-hangzhou.aliyuncs.com", &r, "ak", "sk", token,
                          "cn-hangzhou", t, expires, url, sizeof(url)));
  query_param(url, "x-oss-signature", v, sizeof(v));
  CHECK_STREQ(v, want_sig);
  query_param(url, "x-oss-signature-version", v, sizeof(v));
  CHECK_STREQ(v, "OSS4-HMAC-SHA256");
  query_param(url, "x-oss-expires", v, sizeof(v));
  CHECK_STREQ(v, "599");
  query_param(url, "x-oss-credential", v, sizeof(v));
  CHECK_STREQ(v, "ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request");
  query_param(url, "x-oss-date", v, sizeof(v));
  tg_oss_iso8601(t, stamp);
  CHECK_STREQ(v, stamp);
  query_param(url, "x-oss-additional-headers", v, sizeof(v));
  CHECK_STREQ(v, want_addl);
  query_param(url, "x-oss-security-token", v, sizeof(v));
  CHECK_STREQ(v, token ? token : "");
  CHECK(strncmp(url, "http://bucket.oss-cn-hangzhou.aliyuncs.com/1234%2B-/123/1.txt?", 62) == 0);
}

static void test_v4_query_sdk_vectors(void) {
  v4_query_case(1702781677, 599, NULL, NULL, 0,
                "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe", "");
  v4_query_case(1702785388, 599, "token", NULL, 0,
                "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5", "");
  const char *const addl[] = {"ZAbc", "abc"};
  v4_query_case(1702783809, 599, NULL, addl, 2,
                "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7", "abc%3Bzabc");
}

/* the shape the backend hands out: a GET of the object, nothing but the query signed */
static void test_v4_presigned_get(void) {
  char url[2048], url2[2048], sig[80];
  struct tg_oss_v4_req r = {.method = "GET", .bucket = "tripgen", .key = "p/dev/2024/12/31/r-1/full.jpg"};
  CHECK(tg_oss_v4_presign("http://127.0.0.1:9000/tripgen", &r, "id", "secret", NULL, "cn-shanghai",
                          1735689599, 2, url, sizeof(url)));
  CHECK(strncmp(url, "http://127.0.0.1:9000/tripgen/p/dev/2024/12/31/r-1/full.jpg?"
                     "x-oss-credential=id%2F20241231%2Fcn-shanghai%2Foss%2Faliyun_v4_request&"
                     "x-oss-date=20241231T235959Z&x-oss-expires=2&"
                     "x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-signature=", 229) == 0);
  query_param(url, "x-oss-signature", sig, sizeof(sig));
  CHECK(strlen(sig) == 64 && strspn(sig, "0123456789abcdef") == 64);
  /* deterministic; the secret, the time and the region all change it */
  CHECK(tg_oss_v4_presign("http://127.0.0.1:9000/tripgen", &r, "id", "secret", NULL,
                          "cn-shanghai", 1735689599, 2, url2, sizeof(url2)));
  CHECK_STREQ(url, url2);
  CHECK(tg_oss_v4_presign("http://127.0.0.1:9000/tripgen", &r, "id", "secreT", NULL,
                          "cn-shanghai", 1735689599, 2, url2, sizeof(url2)));
  CHECK(strcmp(url, url2) != 0);
  CHECK(tg_oss_v4_presign("http://127.0.0.1:9000/tripgen", &r, "id", "secret", NULL,
                          "cn-hangzhou", 1735689599, 2, url2, sizeof(url2)));
  CHECK(strcmp(url, url2) != 0);
  CHECK(!tg_oss_v4_presign("http://127.0.0.1:9000/tripgen", &r, "id", "secret", NULL,
                           "cn-shanghai", 1735689599, 2, url2, 100));
  /* the secret never appears in what is handed out */
  CHECK(strstr(url, "secret") == NULL);
}

int main(void) {
  RUN(test_helpers);
  RUN(test_v1_header_documented);
  RUN(test_v1_url_documented);
  RUN(test_v4_header_sdk_vectors);
  RUN(test_v4_canonical_request);
  RUN(test_v4_query_sdk_vectors);
  RUN(test_v4_presigned_get);
  return check_done("oss_sign");
}
