/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_frames.c - the scheduler's EAS frame and attribute encodings
 * (scheduler/frames.c): protobuf and JSON round trips (tags, binary data with
 * NUL bytes, empty data, index_only, a 2^40 index, unicode tags), the
 * big-endian length of the streaming form, base64 that OpenSSL decodes back,
 * attributes in both forms, and byte vectors computed by hand from the
 * protobuf wire format, as no protoc/python3-protobuf is there to cross-check.
 * Frames are made here; store.c is not linked.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "frames.h"

#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* a frame on static/test memory: tags is a new object from @tags_json (or NULL) */
static struct sch_frame mkframe(uint64_t index, const char *tags_json, const void *data,
                                size_t len) {
  struct sch_frame f = {.index = index, .data = (unsigned char *)data, .len = len};
  if (tags_json) {
    f.tags = json_loads(tags_json, 0, NULL);
    assert(f.tags);
  }
  return f;
}

static bool same_frame(const struct sch_frame *a, const struct sch_frame *b, bool index_only) {
  size_t want_len = index_only ? 0 : b->len;
  json_t *empty = json_object();
  bool tags_ok = json_equal(a->tags, b->tags ? b->tags : empty);
  json_decref(empty);
  return a->index == b->index && a->len == want_len && a->data &&
         (want_len == 0 || memcmp(a->data, b->data, want_len) == 0) && tags_ok;
}

static void free_decoded(struct sch_frame *f, int n) {
  for (int i = 0; i < n; i++)
    sch_frame_clear(&f[i]);
  free(f);
}

/* index=1, tags {"requestId":"a"}, data "x" as a DataFrameProto, by hand:
 * 08 01 | 12 0e [0a 09 "requestId" 12 01 "a"] | 1a 01 "x" */
static const unsigned char small_pb[] = {
    0x08, 0x01, 0x12, 0x0e, 0x0a, 0x09, 'r', 'e', 'q', 'u', 'e',
    's',  't',  'I',  'd',  0x12, 0x01, 'a', 0x1a, 0x01, 'x'};

static void test_small_vectors(void) {
  struct sch_frame f = mkframe(1, "{\"requestId\":\"a\"}", "x", 1);
  unsigned char *out = NULL;
  size_t len = 0;

  CHECK(sch_frame_encode_one(&f, false, &out, &len) == TG_OK);
  CHECK(len == sizeof small_pb && memcmp(out, small_pb, len) == 0);
  free(out);

  /* DataFrameListProto: field 1, length 21 */
  CHECK(sch_frames_encode_list(&f, 1, true, false, &out, &len) == TG_OK);
  CHECK(len == 2 + sizeof small_pb && out[0] == 0x0a && out[1] == sizeof small_pb &&
        memcmp(out + 2, small_pb, sizeof small_pb) == 0);
  free(out);

  CHECK(sch_frame_encode_prefixed(&f, false, &out, &len) == TG_OK);
  CHECK(len == 4 + sizeof small_pb && out[0] == 0 && out[1] == 0 && out[2] == 0 &&
        out[3] == sizeof small_pb && memcmp(out + 4, small_pb, sizeof small_pb) == 0);
  free(out);

  /* index_only drops field 3 */
  CHECK(sch_frame_encode_one(&f, true, &out, &len) == TG_OK);
  CHECK(len == sizeof small_pb - 3 && memcmp(out, small_pb, len) == 0);
  free(out);

  CHECK(sch_frames_encode_list(&f, 1, false, false, &out, &len) == TG_OK);
  const char *want = "[{\"index\":1,\"tags\":{\"requestId\":\"a\"},\"data\":\"eA==\",\"message\":\"\"}]";
  CHECK(len == strlen(want) && memcmp(out, want, len) == 0);
  free(out);

  /* 2^40 as a varint: five 0x80 bytes, then 0x20 */
  struct sch_frame big = mkframe(UINT64_C(1) << 40, NULL, NULL, 0);
  static const unsigned char big_pb[] = {0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20};
  CHECK(sch_frame_encode_one(&big, false, &out, &len) == TG_OK);
  CHECK(len == sizeof big_pb && memcmp(out, big_pb, len) == 0);
  free(out);

  /* an empty frame is an empty message, still a buffer */
  struct sch_frame zero = mkframe(0, "{}", NULL, 0);
  CHECK(sch_frame_encode_one(&zero, false, &out, &len) == TG_OK);
  CHECK(out != NULL && len == 0);
  free(out);
  json_decref(zero.tags);
  json_decref(f.tags);
}

/* the frames of the round trips; data points at @bin */
static int sample_frames(struct sch_frame *f, unsigned char *bin, size_t n_bin) {
  for (size_t i = 0; i < n_bin; i++)
    bin[i] = (unsigned char)(i % 256); /* NUL bytes at 0, 256, ... */
  f[0] = mkframe(7, "{\"requestId\":\"r-7\",\"lastCode\":\"500\"}", bin, n_bin);
  f[1] = mkframe(8, "{\"requestId\":\"r-8\"}", NULL, 0);                     /* empty data */
  f[2] = mkframe(UINT64_C(1) << 40, "{\"requestId\":\"r-big\"}", "{\"ok\":true}", 11);
  f[3] = mkframe(9, "{\"requestId\":\"r-9\",\"st\\u00e4dte\":\"\\u6771\\u4eac \\ud83d\\ude97\"}",
                 "\0\0\0", 3);                                                 /* unicode */
  f[4] = mkframe(10, NULL, "z", 1);                                            /* no tags */
  return 5;
}

static void roundtrip(bool protobuf, bool index_only) {
  unsigned char bin[1000];
  struct sch_frame f[5];
  int n = sample_frames(f, bin, sizeof bin);
  unsigned char *out = NULL;
  size_t len = 0;
  CHECK(sch_frames_encode_list(f, n, protobuf, index_only, &out, &len) == TG_OK);
  struct sch_frame *d = NULL;
  int nd = -1;
  CHECK(sch_frames_decode_list(out, len, protobuf, &d, &nd) == TG_OK);
  CHECK(nd == n);
  for (int i = 0; i < n && i < nd; i++)
    CHECK_MSG(same_frame(&d[i], &f[i], index_only), "frame %d (protobuf %d, index_only %d)", i,
              protobuf, index_only);
  if (nd > 3)
    CHECK_STREQ(json_string_value(json_object_get(d[3].tags, "st\xc3\xa4" "dte")),
                "\xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x9a\x97");
  free_decoded(d, nd);
  free(out);

  /* each frame alone and prefixed */
  for (int i = 0; i < n; i++) {
    struct sch_frame one;
    CHECK(sch_frame_encode_one(&f[i], index_only, &out, &len) == TG_OK);
    CHECK(sch_frame_decode_one(out, len, &one) == TG_OK);
    CHECK_MSG(same_frame(&one, &f[i], index_only), "one frame %d", i);
    sch_frame_clear(&one);
    free(out);

    CHECK(sch_frame_encode_prefixed(&f[i], index_only, &out, &len) == TG_OK);
    CHECK(len >= 4);
    size_t body = (size_t)out[0] << 24 | (size_t)out[1] << 16 | (size_t)out[2] << 8 | out[3];
    CHECK(body == len - 4);
    CHECK(sch_frame_decode_one(out + 4, len - 4, &one) == TG_OK);
    CHECK_MSG(same_frame(&one, &f[i], index_only), "prefixed frame %d", i);
    sch_frame_clear(&one);
    free(out);
  }
  for (int i = 0; i < n; i++)
    json_decref(f[i].tags);
}

static void test_roundtrip_protobuf(void) { roundtrip(true, false); }
static void test_roundtrip_json(void) { roundtrip(false, false); }
static void test_index_only_protobuf(void) { roundtrip(true, true); }
static void test_index_only_json(void) { roundtrip(false, true); }

/* the prefix is big-endian also when more than its low byte is used */
static void test_prefix_big_endian(void) {
  size_t n = 70000;
  unsigned char *data = malloc(n);
  assert(data);
  memset(data, 0, n);
  struct sch_frame f = mkframe(3, "{\"requestId\":\"r\"}", data, n);
  unsigned char *one = NULL, *pre = NULL;
  size_t one_len = 0, pre_len = 0;
  CHECK(sch_frame_encode_one(&f, false, &one, &one_len) == TG_OK);
  CHECK(sch_frame_encode_prefixed(&f, false, &pre, &pre_len) == TG_OK);
  CHECK(one_len > 65536 && pre_len == one_len + 4);
  CHECK(pre[0] == (unsigned char)(one_len >> 24) && pre[1] == (unsigned char)(one_len >> 16) &&
        pre[2] == (unsigned char)(one_len >> 8) && pre[3] == (unsigned char)one_len);
  CHECK(pre[1] == 0x01); /* 70000 + header bytes: 0x011xxx */
  CHECK(memcmp(pre + 4, one, one_len) == 0);
  free(one);
  free(pre);
  free(data);
  json_decref(f.tags);
}

/* JSON data is base64 without newlines that OpenSSL decodes back */
static void test_json_base64(void) {
  for (size_t n = 0; n < 200; n += 37) { /* lengths 0, 37, 74, ...: every padding */
    unsigned char bin[2000];
    struct sch_frame f[5];
    size_t blen = n * 10 + 1;
    sample_frames(f, bin, blen);
    unsigned char *out = NULL;
    size_t len = 0;
    CHECK(sch_frames_encode_list(f, 1, false, false, &out, &len) == TG_OK);
    CHECK(memchr(out, '\n', len) == NULL);
    json_t *arr = json_loadb((const char *)out, len, 0, NULL);
    json_t *data = json_object_get(json_array_get(arr, 0), "data");
    CHECK(json_is_string(data));
    const char *s = json_string_value(data);
    size_t slen = s ? strlen(s) : 0;
    CHECK(slen % 4 == 0 && slen == 4 * ((blen + 2) / 3));
    unsigned char dec[2000 + 3];
    int r = s ? EVP_DecodeBlock(dec, (const unsigned char *)s, (int)slen) : -1;
    size_t pad = (slen && s[slen - 1] == '=') + (slen > 1 && s[slen - 2] == '=');
    CHECK(r >= 0 && (size_t)r - pad == blen && memcmp(dec, bin, blen) == 0);
    CHECK_STREQ(json_string_value(json_object_get(json_array_get(arr, 0), "message")), "");
    json_decref(arr);
    free(out);
    for (int i = 0; i < 5; i++)
      json_decref(f[i].tags);
  }
}

static void test_attributes(void) {
  json_t *a = json_pack("{s:s, s:s, s:s}", "meta.name", "trips", "stream.length", "12",
                        "meta.header.group", "X-EAS-QueueService-Gid");
  unsigned char *out = NULL;
  size_t len = 0;
  json_t *back = NULL;

  CHECK(sch_attrs_encode(a, true, &out, &len) == TG_OK);
  CHECK(sch_attrs_decode(out, len, true, &back) == TG_OK);
  CHECK(json_equal(back, a));
  json_decref(back);
  free(out);

  CHECK(sch_attrs_encode(a, false, &out, &len) == TG_OK);
  CHECK(sch_attrs_decode(out, len, false, &back) == TG_OK);
  CHECK(json_equal(back, a));
  json_decref(back);
  free(out);
  json_decref(a);

  /* by hand: {"k":"v"} = 0a 06 [0a 01 "k" 12 01 "v"] */
  static const unsigned char kv_pb[] = {0x0a, 0x06, 0x0a, 0x01, 'k', 0x12, 0x01, 'v'};
  a = json_pack("{s:s}", "k", "v");
  CHECK(sch_attrs_encode(a, true, &out, &len) == TG_OK);
  CHECK(len == sizeof kv_pb && memcmp(out, kv_pb, len) == 0);
  free(out);
  CHECK(sch_attrs_encode(a, false, &out, &len) == TG_OK);
  CHECK(len == 9 && memcmp(out, "{\"k\":\"v\"}", 9) == 0);
  free(out);
  json_decref(a);

  /* scalars are sent as text, in both forms; null is refused */
  a = json_pack("{s:I, s:b}", "stream.length", (json_int_t)42, "meta.eos", 1);
  json_t *want = json_pack("{s:s, s:s}", "stream.length", "42", "meta.eos", "true");
  for (int pb = 0; pb < 2; pb++) {
    CHECK(sch_attrs_encode(a, pb, &out, &len) == TG_OK);
    CHECK(sch_attrs_decode(out, len, pb, &back) == TG_OK);
    CHECK_MSG(json_equal(back, want), "protobuf %d", pb);
    json_decref(back);
    free(out);
  }
  json_decref(want);
  json_object_set_new(a, "bad", json_null());
  CHECK(sch_attrs_encode(a, true, &out, &len) == TG_ERR_INVAL && out == NULL && len == 0);
  CHECK(sch_attrs_encode(a, false, &out, &len) == TG_ERR_INVAL && out == NULL);
  json_decref(a);

  /* empty attributes */
  a = json_object();
  CHECK(sch_attrs_encode(a, true, &out, &len) == TG_OK && out && len == 0);
  free(out);
  CHECK(sch_attrs_encode(a, false, &out, &len) == TG_OK && len == 2 && memcmp(out, "{}", 2) == 0);
  free(out);
  json_decref(a);
}

static void test_empty_and_errors(void) {
  unsigned char *out = NULL;
  size_t len = 7;
  struct sch_frame *d = NULL;
  int nd = -1;

  CHECK(sch_frames_encode_list(NULL, 0, true, false, &out, &len) == TG_OK && out && len == 0);
  CHECK(sch_frames_decode_list(out, len, true, &d, &nd) == TG_OK && nd == 0 && d == NULL);
  free(out);
  CHECK(sch_frames_encode_list(NULL, 0, false, false, &out, &len) == TG_OK && len == 2 &&
        memcmp(out, "[]", 2) == 0);
  free(out);

  /* truncated protobuf, bad base64, not an array */
  static const unsigned char trunc[] = {0x0a, 0x05, 0x08};
  CHECK(sch_frames_decode_list(trunc, sizeof trunc, true, &d, &nd) == TG_ERR_BAD_MSG);
  struct sch_frame one;
  CHECK(sch_frame_decode_one(small_pb, sizeof small_pb - 1, &one) == TG_ERR_BAD_MSG);
  const char *bad[] = {
      "[{\"index\":1,\"tags\":{},\"data\":\"ab=c\"}]",
      "[{\"index\":1,\"tags\":{},\"data\":\"abc\"}]",
      "[{\"index\":1,\"tags\":{},\"data\":\" eA==\"}]",
      "[{\"index\":-1,\"tags\":{},\"data\":\"\"}]",
      "[{\"index\":1,\"tags\":{\"n\":1},\"data\":\"\"}]",
      "{\"index\":1}",
      "[1]",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_MSG(sch_frames_decode_list((const unsigned char *)bad[i], strlen(bad[i]), false, &d,
                                     &nd) == TG_ERR_BAD_MSG && d == NULL && nd == 0,
              "%s", bad[i]);

  /* tags must be an object of scalars; data needs a pointer */
  struct sch_frame f = mkframe(1, "{\"requestId\":[1]}", "x", 1);
  CHECK(sch_frames_encode_list(&f, 1, true, false, &out, &len) == TG_ERR_INVAL && !out && !len);
  CHECK(sch_frames_encode_list(&f, 1, false, false, &out, &len) == TG_ERR_INVAL && !out);
  CHECK(sch_frame_encode_one(&f, false, &out, &len) == TG_ERR_INVAL && !out);
  json_decref(f.tags);
  f = mkframe(1, NULL, NULL, 5);
  CHECK(sch_frame_encode_prefixed(&f, false, &out, &len) == TG_ERR_INVAL && !out);

  /* an index past INT64_MAX: protobuf only */
  f = mkframe(UINT64_MAX, NULL, NULL, 0);
  CHECK(sch_frames_encode_list(&f, 1, false, false, &out, &len) == TG_ERR_INVAL && !out);
  CHECK(sch_frames_encode_list(&f, 1, true, false, &out, &len) == TG_OK);
  CHECK(sch_frames_decode_list(out, len, true, &d, &nd) == TG_OK && nd == 1 &&
        d[0].index == UINT64_MAX);
  free_decoded(d, nd);
  free(out);
}

int main(void) {
  RUN(test_small_vectors);
  RUN(test_roundtrip_protobuf);
  RUN(test_roundtrip_json);
  RUN(test_index_only_protobuf);
  RUN(test_index_only_json);
  RUN(test_prefix_big_endian);
  RUN(test_json_base64);
  RUN(test_attributes);
  RUN(test_empty_and_errors);
  return check_done("frames");
}
