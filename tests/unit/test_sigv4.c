/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sigv4.c - the SigV4 signer (worker/storage/sigv4.c) reproduces AWS's
 * published examples exactly: the signing-key derivation example, cases of
 * the Signature Version 4 test suite (get-vanilla, query order, UTF-8 and
 * unreserved paths, an unnormalised path as S3 signs it, a session token),
 * the S3 API reference's header examples (GET Object with Range, PUT Object
 * "Welcome to Amazon S3." to test$file.text, GET Bucket lifecycle, List
 * Objects) and its pre-signed URL example (examplebucket/test.txt, 86400 s).
 * Where a page publishes the canonical request, its text is compared too.
 * Then the edges: encoding, time formatting, a session token in a
 * pre-signed URL, header folding, and refusals.
 */
#undef NDEBUG
#include "storage/sigv4.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the test suite's credentials and time (2015-08-30T12:36:00Z) */
static const struct tg_sigv4_creds SUITE = {"AKIDEXAMPLE",
                                            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};
#define SUITE_T INT64_C(1440938160)
#define SUITE_SCOPE "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"

/* the S3 API reference's credentials and time (2013-05-24T00:00:00Z) */
static const struct tg_sigv4_creds S3DOC = {"AKIAIOSFODNN7EXAMPLE",
                                            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
#define S3DOC_T INT64_C(1369353600)

#define STS_TOKEN                                                                            \
  "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfp" \
  "SPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQ" \
  "DYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+s" \
  "cqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

static struct tg_sigv4_req suite_req(const char *method, const char *path) {
  struct tg_sigv4_req r = {.method = method, .host = "example.amazonaws.com", .path = path,
                           .payload_hash = TG_SIGV4_EMPTY_SHA256, .region = "us-east-1",
                           .service = "service", .t = SUITE_T};
  return r;
}

static struct tg_sigv4_req s3doc_req(const char *method, const char *path) {
  struct tg_sigv4_req r = {.method = method, .host = "examplebucket.s3.amazonaws.com",
                           .path = path, .payload_hash = TG_SIGV4_EMPTY_SHA256,
                           .region = "us-east-1", .service = "s3", .t = S3DOC_T};
  return r;
}

/* sign @r, compare the signature and, when given, the canonical request */
static void expect(const char *name, const struct tg_sigv4_req *r,
                   const struct tg_sigv4_creds *c, const char *canonical,
                   const char *canonical_hash, const char *signature) {
  struct tg_sigv4_out o;
  CHECK_MSG(tg_sigv4_sign(r, c, &o), "%s: signed", name);
  CHECK_MSG(strcmp(o.signature, signature) == 0, "%s: signature %s, want %s", name, o.signature,
            signature);
  if (canonical_hash)
    CHECK_MSG(strcmp(o.canonical_hash, canonical_hash) == 0, "%s: canonical hash %s, want %s",
              name, o.canonical_hash, canonical_hash);
  if (canonical) {
    char *cr = tg_sigv4_canonical_request(r, c->session_token);
    CHECK_MSG(cr && strcmp(cr, canonical) == 0, "%s: canonical request\n%s\nwant\n%s", name,
              cr ? cr : "(null)", canonical);
    free(cr);
  }
}

static void test_signing_key(void) {
  /* "Examples of how to derive a signing key for Signature Version 4" */
  unsigned char k[32];
  char hex[65];
  tg_sigv4_signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1",
                       "iam", k);
  for (int i = 0; i < 32; i++)
    snprintf(hex + 2 * i, 3, "%02x", k[i]);
  CHECK_STREQ(hex, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

static void test_suite_get_vanilla(void) {
  struct tg_sigv4_req r = suite_req("GET", "/");
  expect("get-vanilla", &r, &SUITE,
         "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
         "host;x-amz-date\n" TG_SIGV4_EMPTY_SHA256,
         "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  struct tg_sigv4_out o;
  CHECK(tg_sigv4_sign(&r, &SUITE, &o));
  CHECK_STREQ(o.amz_date, "20150830T123600Z");
  CHECK_STREQ(o.authorization,
              "AWS4-HMAC-SHA256 Credential=" SUITE_SCOPE ", SignedHeaders=host;x-amz-date, "
              "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_suite_more(void) {
  struct tg_sigv4_req r = suite_req("GET", "/");
  const struct tg_sigv4_pair q[] = {{"Param2", "value2"}, {"Param1", "value1"}};
  r.query = q;
  r.n_query = 2;
  expect("get-vanilla-query-order-key-case", &r, &SUITE,
         "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\n"
         "x-amz-date:20150830T123600Z\n\nhost;x-amz-date\n" TG_SIGV4_EMPTY_SHA256,
         NULL, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");

  r = suite_req("POST", "/");
  expect("post-vanilla", &r, &SUITE, NULL, NULL,
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");

  r = suite_req("GET", "/\xe1\x88\xb4"); /* "/ሴ" */
  expect("get-utf8", &r, &SUITE,
         "GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
         "host;x-amz-date\n" TG_SIGV4_EMPTY_SHA256,
         NULL, "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");

  r = suite_req("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  expect("get-unreserved", &r, &SUITE, NULL, NULL,
         "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");

  /* the suite's S3-style (unnormalised) variant: the space is encoded, nothing else changes */
  r = suite_req("GET", "/example space/");
  expect("get-space-unnormalized", &r, &SUITE, NULL, NULL,
         "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");

  /* post-sts-header-before: the session token is a signed header */
  struct tg_sigv4_creds sts = SUITE;
  sts.session_token = STS_TOKEN;
  r = suite_req("POST", "/");
  expect("post-sts-header-before", &r, &sts,
         "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n"
         "x-amz-security-token:" STS_TOKEN "\n\nhost;x-amz-date;x-amz-security-token\n"
         TG_SIGV4_EMPTY_SHA256,
         "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
         "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

static void test_s3_get_object(void) {
  struct tg_sigv4_req r = s3doc_req("GET", "/test.txt");
  const struct tg_sigv4_pair h[] = {{"Range", "bytes=0-9"},
                                    {"x-amz-content-sha256", TG_SIGV4_EMPTY_SHA256}};
  r.headers = h;
  r.n_headers = 2;
  expect("s3 GET Object", &r, &S3DOC,
         "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
         "x-amz-content-sha256:" TG_SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
         "host;range;x-amz-content-sha256;x-amz-date\n" TG_SIGV4_EMPTY_SHA256,
         "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
         "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

static void test_s3_put_object(void) {
  const char *body = "Welcome to Amazon S3.";
  char hash[65];
  tg_sigv4_sha256_hex(body, strlen(body), hash);
  CHECK_STREQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  struct tg_sigv4_req r = s3doc_req("PUT", "/test$file.text");
  const struct tg_sigv4_pair h[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                                    {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                                    {"x-amz-content-sha256", hash}};
  r.headers = h;
  r.n_headers = 3;
  r.payload_hash = hash;
  expect("s3 PUT Object", &r, &S3DOC,
         "PUT\n/test%24file.text\n\ndate:Fri, 24 May 2013 00:00:00 GMT\n"
         "host:examplebucket.s3.amazonaws.com\n"
         "x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
         "x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n"
         "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
         "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
         "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
         "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

static void test_s3_bucket_queries(void) {
  const struct tg_sigv4_pair h[] = {{"x-amz-content-sha256", TG_SIGV4_EMPTY_SHA256}};
  struct tg_sigv4_req r = s3doc_req("GET", "/");
  const struct tg_sigv4_pair lifecycle[] = {{"lifecycle", ""}};
  r.headers = h;
  r.n_headers = 1;
  r.query = lifecycle;
  r.n_query = 1;
  expect("s3 GET Bucket lifecycle", &r, &S3DOC,
         "GET\n/\nlifecycle=\nhost:examplebucket.s3.amazonaws.com\n"
         "x-amz-content-sha256:" TG_SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
         "host;x-amz-content-sha256;x-amz-date\n" TG_SIGV4_EMPTY_SHA256,
         "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
         "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
  const struct tg_sigv4_pair list[] = {{"prefix", "J"}, {"max-keys", "2"}}; /* unsorted */
  r.query = list;
  r.n_query = 2;
  expect("s3 List Objects", &r, &S3DOC, NULL,
         "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
         "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

static void test_s3_presigned_url(void) {
  struct tg_sigv4_req r = s3doc_req("GET", "/test.txt");
  char *url = tg_sigv4_presign(&r, &S3DOC, "https", 86400);
  CHECK_STREQ(url,
              "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
              "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
              "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
              "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
  free(url);
  /* headers and a payload hash given for the PUT are ignored by a pre-signed GET */
  const struct tg_sigv4_pair h[] = {{"x-amz-content-sha256", "abc"}};
  r.headers = h;
  r.n_headers = 1;
  r.payload_hash = "abc";
  url = tg_sigv4_presign(&r, &S3DOC, "https", 86400);
  CHECK(url && strstr(url, "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c2659"));
  free(url);
}

static void test_presign_with_token_and_path_style(void) {
  struct tg_sigv4_creds c = {"AKID", "secret", "tok/en+=="};
  struct tg_sigv4_req r = {.method = "GET", .host = "127.0.0.1:9000",
                           .path = "/bucket/dev/2026/01/02/req-1/full.jpg", .region = "us-east-1",
                           .service = "s3", .t = S3DOC_T};
  char *url = tg_sigv4_presign(&r, &c, "http", 2);
  CHECK(url && strncmp(url, "http://127.0.0.1:9000/bucket/dev/2026/01/02/req-1/full.jpg?", 59) == 0);
  CHECK(url && strstr(url, "&X-Amz-Expires=2&X-Amz-Security-Token=tok%2Fen%2B%3D%3D"
                           "&X-Amz-SignedHeaders=host&X-Amz-Signature="));
  char *again = tg_sigv4_presign(&r, &c, "http", 2);
  CHECK(url && again && strcmp(url, again) == 0); /* deterministic */
  free(again);
  c.session_token = NULL;
  again = tg_sigv4_presign(&r, &c, "http", 2);
  CHECK(again && !strstr(again, "Security-Token"));
  free(again);
  free(url);
  CHECK(tg_sigv4_presign(&r, &c, "http", 0) == NULL);
  CHECK(tg_sigv4_presign(&r, &c, "http", 604801) == NULL);
}

static void test_encoding_and_time(void) {
  char *e = tg_sigv4_uri_encode("a b/c$d~e_f.g-h*(ü)", true);
  CHECK_STREQ(e, "a%20b/c%24d~e_f.g-h%2A%28%C3%BC%29");
  free(e);
  e = tg_sigv4_uri_encode("A/B=c&d+", false);
  CHECK_STREQ(e, "A%2FB%3Dc%26d%2B");
  free(e);
  char d[17];
  CHECK(tg_sigv4_amz_date(0, d) && strcmp(d, "19700101T000000Z") == 0);
  CHECK(tg_sigv4_amz_date(INT64_C(1709164800), d) && strcmp(d, "20240229T000000Z") == 0);
  CHECK(!tg_sigv4_amz_date(INT64_C(253402300800), d));
}

static void test_headers_folded_and_refusals(void) {
  struct tg_sigv4_req r = suite_req("GET", "/");
  const struct tg_sigv4_pair h[] = {{"My-Header1", "  a   b  c "}, {"my-header1", "d"}};
  r.headers = h;
  r.n_headers = 2;
  char *cr = tg_sigv4_canonical_request(&r, NULL);
  CHECK(cr && strstr(cr, "\nmy-header1:a b c,d\nx-amz-date:") &&
        strstr(cr, "\nhost;my-header1;x-amz-date\n"));
  free(cr);
  /* host and x-amz-date come from the request; a caller's copy is refused */
  const struct tg_sigv4_pair dup[] = {{"Host", "evil.example"}};
  r.headers = dup;
  r.n_headers = 1;
  struct tg_sigv4_out o;
  CHECK(!tg_sigv4_sign(&r, &SUITE, &o));
  r = suite_req("GET", "/");
  struct tg_sigv4_creds none = {"AKID", "", NULL};
  CHECK(!tg_sigv4_sign(&r, &none, &o));
  r.host = "";
  CHECK(!tg_sigv4_sign(&r, &SUITE, &o));
  /* the secret never appears in what the signer returns */
  r = suite_req("GET", "/");
  CHECK(tg_sigv4_sign(&r, &SUITE, &o) && !strstr(o.authorization, SUITE.secret_key));
}

int main(void) {
  RUN(test_signing_key);
  RUN(test_suite_get_vanilla);
  RUN(test_suite_more);
  RUN(test_s3_get_object);
  RUN(test_s3_put_object);
  RUN(test_s3_bucket_queries);
  RUN(test_s3_presigned_url);
  RUN(test_presign_with_token_and_path_style);
  RUN(test_encoding_and_time);
  RUN(test_headers_folded_and_refusals);
  return check_done("sigv4");
}
