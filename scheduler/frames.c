/* SPDX-License-Identifier: Apache-2.0 */
/*
 * frames.c - EAS frames and attributes as bytes: the protobuf messages of
 * eas.proto (through protobuf-c's generated eas.pb-c.c) and their JSON
 * equivalents, with base64 data (OpenSSL's EVP_EncodeBlock/EVP_DecodeBlock,
 * run in chunks so that no length passes through an int unchecked).
 *
 * The protobuf messages are built on the caller's memory: keys, values and
 * data point into the frames' own jansson strings and buffers; only scalar
 * tag values turned into text are allocated here. Nothing is kept between
 * calls.
 */
#include "frames.h"

#include "eas.pb-c.h"

#include <limits.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* bytes of input base64-encoded per EVP_EncodeBlock call (a multiple of 3) */
#define B64_ENC_CHUNK ((size_t)3 << 20)
/* characters of base64 decoded per EVP_DecodeBlock call (a multiple of 4) */
#define B64_DEC_CHUNK ((size_t)4 << 20)

/* ---- buffers ---- */

/* a malloc()ed buffer of at least one byte, so that an empty result is not NULL */
static unsigned char *buf_alloc(size_t n) { return malloc(n ? n : 1); }

static void out_reset(unsigned char **out, size_t *len) {
  if (out)
    *out = NULL;
  if (len)
    *len = 0;
}

/* ---- base64 ---- */

/* standard alphabet with padding, no newlines; NUL-terminated; NULL on OOM */
static char *b64_encode(const unsigned char *in, size_t n, size_t *olen) {
  size_t want = 4 * ((n + 2) / 3);
  char *s = malloc(want + 1);
  if (!s)
    return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i += B64_ENC_CHUNK) {
    size_t c = n - i < B64_ENC_CHUNK ? n - i : B64_ENC_CHUNK;
    o += (size_t)EVP_EncodeBlock((unsigned char *)s + o, in + i, (int)c);
  }
  s[o] = '\0';
  *olen = o;
  return s;
}

static bool b64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '+' || c == '/';
}

/* strict: a multiple of 4 characters of the standard alphabet, '=' only as
 * the last one or two; *out gets a NUL after the data */
static tg_err_t b64_decode(const char *s, size_t n, unsigned char **out, size_t *olen) {
  size_t pad = 0;
  if (n % 4)
    return TG_ERR_BAD_MSG;
  if (n >= 1 && s[n - 1] == '=')
    pad++;
  if (n >= 2 && s[n - 2] == '=')
    pad++;
  for (size_t i = 0; i < n - pad; i++)
    if (!b64_char((unsigned char)s[i]))
      return TG_ERR_BAD_MSG;
  unsigned char *d = malloc(n / 4 * 3 + 1);
  if (!d)
    return TG_ERR_NOMEM;
  size_t o = 0;
  for (size_t i = 0; i < n; i += B64_DEC_CHUNK) {
    size_t c = n - i < B64_DEC_CHUNK ? n - i : B64_DEC_CHUNK;
    int r = EVP_DecodeBlock(d + o, (const unsigned char *)s + i, (int)c);
    if (r < 0) {
      free(d);
      return TG_ERR_BAD_MSG;
    }
    o += (size_t)r;
  }
  o -= pad; /* EVP_DecodeBlock counts the padding as zero bytes */
  d[o] = '\0';
  *out = d;
  *olen = o;
  return TG_OK;
}

/* ---- objects of strings ---- */

/* one key/value of a tags or attributes object; owned is set when the value
 * was made here from a scalar */
struct kv {
  const char *key;
  const char *val;
  char *owned;
};

static void kv_free(struct kv *kv, size_t n) {
  if (!kv)
    return;
  for (size_t i = 0; i < n; i++)
    free(kv[i].owned);
  free(kv);
}

/* the text of a tag or attribute value: a string as is, a number or boolean as
 * its JSON text; NULL with *err set otherwise */
static const char *value_text(json_t *v, char **owned, tg_err_t *err) {
  *owned = NULL;
  if (json_is_string(v))
    return json_string_value(v);
  if (!(json_is_number(v) || json_is_boolean(v))) {
    *err = TG_ERR_INVAL;
    return NULL;
  }
  char tmp[64];
  size_t k = json_dumpb(v, tmp, sizeof tmp - 1, JSON_ENCODE_ANY | JSON_COMPACT);
  if (k == 0 || k >= sizeof tmp) {
    *err = TG_ERR_INVAL;
    return NULL;
  }
  tmp[k] = '\0';
  *owned = strdup(tmp);
  if (!*owned)
    *err = TG_ERR_NOMEM;
  return *owned;
}

/* the members of @obj (NULL: none) in its order */
static tg_err_t kv_from_object(json_t *obj, struct kv **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (!obj)
    return TG_OK;
  if (!json_is_object(obj))
    return TG_ERR_INVAL;
  size_t size = json_object_size(obj);
  if (size == 0)
    return TG_OK;
  struct kv *kv = calloc(size, sizeof *kv);
  if (!kv)
    return TG_ERR_NOMEM;
  size_t i = 0;
  const char *key;
  json_t *v;
  tg_err_t err = TG_OK;
  json_object_foreach(obj, key, v) {
    kv[i].key = key;
    kv[i].val = value_text(v, &kv[i].owned, &err);
    if (!kv[i].val) {
      kv_free(kv, i + 1);
      return err;
    }
    i++;
  }
  *out = kv;
  *n = i;
  return TG_OK;
}

/* a new JSON object of the strings of @kv */
static json_t *kv_to_json(const struct kv *kv, size_t n) {
  json_t *o = json_object();
  for (size_t i = 0; o && i < n; i++) {
    if (json_object_set_new(o, kv[i].key, json_string(kv[i].val)) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* compact JSON text of @j in a malloc()ed buffer */
static tg_err_t json_to_buf(const json_t *j, unsigned char **out, size_t *len) {
  size_t need = json_dumpb(j, NULL, 0, JSON_COMPACT);
  if (need == 0)
    return TG_ERR_INVAL;
  unsigned char *b = malloc(need);
  if (!b)
    return TG_ERR_NOMEM;
  if (json_dumpb(j, (char *)b, need, JSON_COMPACT) != need) {
    free(b);
    return TG_ERR_INVAL;
  }
  *out = b;
  *len = need;
  return TG_OK;
}

/* ---- protobuf frames ---- */

/* a DataFrameProto on a frame's memory, with what it needs kept alive */
struct pb_frame {
  Tg__Eas__DataFrameProto msg;
  Tg__Eas__DataFrameProto__TagsEntry *ents;
  Tg__Eas__DataFrameProto__TagsEntry **ptrs;
  struct kv *kv;
  size_t n_kv;
};

static void pb_frame_release(struct pb_frame *p) {
  free(p->ents);
  free(p->ptrs);
  kv_free(p->kv, p->n_kv);
  memset(p, 0, sizeof *p);
}

static tg_err_t pb_frame_build(struct pb_frame *p, const struct sch_frame *f, bool index_only) {
  memset(p, 0, sizeof *p);
  tg__eas__data_frame_proto__init(&p->msg);
  if (!f || (f->len && !f->data))
    return TG_ERR_INVAL;
  tg_err_t err = kv_from_object(f->tags, &p->kv, &p->n_kv);
  if (err != TG_OK)
    return err;
  if (p->n_kv) {
    p->ents = calloc(p->n_kv, sizeof *p->ents);
    p->ptrs = calloc(p->n_kv, sizeof *p->ptrs);
    if (!p->ents || !p->ptrs) {
      pb_frame_release(p);
      return TG_ERR_NOMEM;
    }
    for (size_t i = 0; i < p->n_kv; i++) {
      tg__eas__data_frame_proto__tags_entry__init(&p->ents[i]);
      /* protobuf-c's string fields are char *; packing only reads them */
      p->ents[i].key = (char *)p->kv[i].key;
      p->ents[i].value = (char *)p->kv[i].val;
      p->ptrs[i] = &p->ents[i];
    }
  }
  p->msg.index = f->index;
  p->msg.n_tags = p->n_kv;
  p->msg.tags = p->ptrs;
  if (!index_only && f->len) {
    p->msg.data.len = f->len;
    p->msg.data.data = f->data;
  }
  return TG_OK;
}

/* pack @msg after @prefix spare bytes of a new buffer */
static tg_err_t pb_pack(const ProtobufCMessage *msg, size_t prefix, unsigned char **out,
                        size_t *len, size_t *body) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  unsigned char *b = buf_alloc(prefix + n);
  if (!b)
    return TG_ERR_NOMEM;
  if (protobuf_c_message_pack(msg, b + prefix) != n) {
    free(b);
    return TG_ERR_INVAL;
  }
  *out = b;
  *len = prefix + n;
  if (body)
    *body = n;
  return TG_OK;
}

static tg_err_t encode_list_pb(const struct sch_frame *f, int n, bool index_only,
                               unsigned char **out, size_t *len) {
  struct pb_frame *pf = NULL;
  Tg__Eas__DataFrameProto **ptrs = NULL;
  Tg__Eas__DataFrameListProto list = TG__EAS__DATA_FRAME_LIST_PROTO__INIT;
  tg_err_t err = TG_OK;
  int built = 0;
  if (n > 0) {
    pf = calloc((size_t)n, sizeof *pf);
    ptrs = calloc((size_t)n, sizeof *ptrs);
    if (!pf || !ptrs) {
      err = TG_ERR_NOMEM;
      goto done;
    }
  }
  for (; built < n; built++) {
    err = pb_frame_build(&pf[built], &f[built], index_only);
    if (err != TG_OK)
      goto done;
    ptrs[built] = &pf[built].msg;
  }
  list.n_index = (size_t)n;
  list.index = ptrs;
  err = pb_pack(&list.base, 0, out, len, NULL);
done:
  for (int i = 0; i < built; i++)
    pb_frame_release(&pf[i]);
  free(pf);
  free(ptrs);
  return err;
}

/* ---- JSON frames ---- */

static json_t *frame_to_json(const struct sch_frame *f, bool index_only, tg_err_t *err) {
  struct kv *kv = NULL;
  size_t n_kv = 0;
  char *b64 = NULL;
  size_t b64_len = 0;
  json_t *o = NULL, *tags = NULL;
  if (f->len && !f->data) {
    *err = TG_ERR_INVAL;
    return NULL;
  }
  if (f->index > (uint64_t)INT64_MAX) {
    *err = TG_ERR_INVAL;
    return NULL;
  }
  *err = kv_from_object(f->tags, &kv, &n_kv);
  if (*err != TG_OK)
    return NULL;
  *err = TG_ERR_NOMEM;
  tags = kv_to_json(kv, n_kv);
  b64 = b64_encode(f->data, index_only ? 0 : f->len, &b64_len);
  if (!tags || !b64)
    goto done;
  o = json_object();
  if (!o || json_object_set_new(o, "index", json_integer((json_int_t)f->index)) ||
      json_object_set(o, "tags", tags) ||
      json_object_set_new(o, "data", json_stringn(b64, b64_len)) ||
      json_object_set_new(o, "message", json_string(""))) {
    json_decref(o);
    o = NULL;
    goto done;
  }
  *err = TG_OK;
done:
  json_decref(tags);
  free(b64);
  kv_free(kv, n_kv);
  return o;
}

static tg_err_t encode_list_json(const struct sch_frame *f, int n, bool index_only,
                                 unsigned char **out, size_t *len) {
  json_t *arr = json_array();
  tg_err_t err = arr ? TG_OK : TG_ERR_NOMEM;
  for (int i = 0; err == TG_OK && i < n; i++) {
    json_t *o = frame_to_json(&f[i], index_only, &err);
    if (o && json_array_append_new(arr, o) != 0)
      err = TG_ERR_NOMEM;
  }
  if (err == TG_OK)
    err = json_to_buf(arr, out, len);
  json_decref(arr);
  return err;
}

/* ---- encoders ---- */

tg_err_t sch_frames_encode_list(const struct sch_frame *f, int n, bool protobuf, bool index_only,
                                unsigned char **out, size_t *len) {
  out_reset(out, len);
  if (!out || !len || n < 0 || (n > 0 && !f))
    return TG_ERR_INVAL;
  tg_err_t err = protobuf ? encode_list_pb(f, n, index_only, out, len)
                          : encode_list_json(f, n, index_only, out, len);
  if (err != TG_OK)
    out_reset(out, len);
  return err;
}

tg_err_t sch_frame_encode_one(const struct sch_frame *f, bool index_only, unsigned char **out,
                              size_t *len) {
  out_reset(out, len);
  if (!f || !out || !len)
    return TG_ERR_INVAL;
  struct pb_frame p;
  tg_err_t err = pb_frame_build(&p, f, index_only);
  if (err != TG_OK)
    return err;
  err = pb_pack(&p.msg.base, 0, out, len, NULL);
  pb_frame_release(&p);
  return err;
}

tg_err_t sch_frame_encode_prefixed(const struct sch_frame *f, bool index_only,
                                   unsigned char **out, size_t *len) {
  out_reset(out, len);
  if (!f || !out || !len)
    return TG_ERR_INVAL;
  struct pb_frame p;
  size_t body = 0;
  tg_err_t err = pb_frame_build(&p, f, index_only);
  if (err != TG_OK)
    return err;
  if (protobuf_c_message_get_packed_size(&p.msg.base) > UINT32_MAX) {
    pb_frame_release(&p);
    return TG_ERR_TOO_LARGE;
  }
  err = pb_pack(&p.msg.base, 4, out, len, &body);
  pb_frame_release(&p);
  if (err != TG_OK)
    return err;
  (*out)[0] = (unsigned char)(body >> 24);
  (*out)[1] = (unsigned char)(body >> 16);
  (*out)[2] = (unsigned char)(body >> 8);
  (*out)[3] = (unsigned char)body;
  return TG_OK;
}

tg_err_t sch_attrs_encode(json_t *attrs, bool protobuf, unsigned char **out, size_t *len) {
  out_reset(out, len);
  if (!attrs || !json_is_object(attrs) || !out || !len)
    return TG_ERR_INVAL;
  struct kv *kv = NULL;
  size_t n = 0;
  tg_err_t err = kv_from_object(attrs, &kv, &n);
  if (err != TG_OK)
    return err;
  if (protobuf) {
    Tg__Eas__AttributesProto msg = TG__EAS__ATTRIBUTES_PROTO__INIT;
    Tg__Eas__AttributesProto__AttributesEntry *ents = n ? calloc(n, sizeof *ents) : NULL;
    Tg__Eas__AttributesProto__AttributesEntry **ptrs = n ? calloc(n, sizeof *ptrs) : NULL;
    if (n && (!ents || !ptrs)) {
      err = TG_ERR_NOMEM;
    } else {
      for (size_t i = 0; i < n; i++) {
        tg__eas__attributes_proto__attributes_entry__init(&ents[i]);
        ents[i].key = (char *)kv[i].key;
        ents[i].value = (char *)kv[i].val;
        ptrs[i] = &ents[i];
      }
      msg.n_attributes = n;
      msg.attributes = ptrs;
      err = pb_pack(&msg.base, 0, out, len, NULL);
    }
    free(ents);
    free(ptrs);
  } else {
    json_t *o = kv_to_json(kv, n);
    err = o ? json_to_buf(o, out, len) : TG_ERR_NOMEM;
    json_decref(o);
  }
  kv_free(kv, n);
  if (err != TG_OK)
    out_reset(out, len);
  return err;
}

/* ---- decoders ---- */

void sch_frame_clear(struct sch_frame *f) {
  if (!f)
    return;
  json_decref(f->tags);
  free(f->data);
  memset(f, 0, sizeof *f);
}

/* a malloc()ed copy of @n bytes with a NUL after them */
static unsigned char *bytes_dup(const unsigned char *p, size_t n) {
  unsigned char *d = malloc(n + 1);
  if (!d)
    return NULL;
  if (n)
    memcpy(d, p, n);
  d[n] = '\0';
  return d;
}

/* one protobuf map entry into an object of strings (a missing key or value is "") */
static tg_err_t json_add_pair(json_t *o, const char *k, const char *v) {
  json_t *s = json_string(v ? v : ""); /* NULL for invalid UTF-8 */
  if (!s)
    return TG_ERR_BAD_MSG;
  return json_object_set_new(o, k ? k : "", s) == 0 ? TG_OK : TG_ERR_BAD_MSG;
}

static tg_err_t frame_from_pb(const Tg__Eas__DataFrameProto *m, struct sch_frame *f) {
  memset(f, 0, sizeof *f);
  f->tags = json_object();
  if (!f->tags)
    return TG_ERR_NOMEM;
  for (size_t i = 0; i < m->n_tags; i++) {
    tg_err_t err = json_add_pair(f->tags, m->tags[i]->key, m->tags[i]->value);
    if (err != TG_OK) {
      sch_frame_clear(f);
      return err;
    }
  }
  f->data = bytes_dup(m->data.data, m->data.len);
  if (!f->data) {
    sch_frame_clear(f);
    return TG_ERR_NOMEM;
  }
  f->len = m->data.len;
  f->index = m->index;
  return TG_OK;
}

static tg_err_t frame_from_json(json_t *o, struct sch_frame *f) {
  memset(f, 0, sizeof *f);
  json_t *idx = json_object_get(o, "index");
  json_t *tags = json_object_get(o, "tags");
  json_t *data = json_object_get(o, "data");
  if (!json_is_object(o) || !json_is_integer(idx) || json_integer_value(idx) < 0 ||
      (tags && !json_is_object(tags) && !json_is_null(tags)) ||
      (data && !json_is_string(data) && !json_is_null(data)))
    return TG_ERR_BAD_MSG;
  f->index = (uint64_t)json_integer_value(idx);
  f->tags = json_object();
  if (!f->tags)
    return TG_ERR_NOMEM;
  const char *k;
  json_t *v;
  if (json_is_object(tags)) {
    json_object_foreach(tags, k, v) {
      if (!json_is_string(v) || json_object_set(f->tags, k, v) != 0) {
        sch_frame_clear(f);
        return TG_ERR_BAD_MSG;
      }
    }
  }
  tg_err_t err;
  if (json_is_string(data))
    err = b64_decode(json_string_value(data), json_string_length(data), &f->data, &f->len);
  else
    err = (f->data = bytes_dup(NULL, 0)) ? TG_OK : TG_ERR_NOMEM;
  if (err != TG_OK)
    sch_frame_clear(f);
  return err;
}

tg_err_t sch_frames_decode_list(const unsigned char *buf, size_t len, bool protobuf,
                                struct sch_frame **out, int *n_out) {
  if (!out || !n_out)
    return TG_ERR_INVAL;
  *out = NULL;
  *n_out = 0;
  if (!buf && len)
    return TG_ERR_INVAL;
  Tg__Eas__DataFrameListProto *list = NULL;
  json_t *arr = NULL;
  size_t n;
  if (protobuf) {
    list = tg__eas__data_frame_list_proto__unpack(NULL, len, buf);
    if (!list)
      return TG_ERR_BAD_MSG;
    n = list->n_index;
  } else {
    arr = json_loadb((const char *)buf, len, 0, NULL);
    if (!json_is_array(arr)) {
      json_decref(arr);
      return TG_ERR_BAD_MSG;
    }
    n = json_array_size(arr);
  }
  tg_err_t err = TG_OK;
  struct sch_frame *f = NULL;
  size_t done = 0;
  if (n > INT_MAX) {
    err = TG_ERR_BAD_MSG;
  } else if (n) {
    f = calloc(n, sizeof *f);
    if (!f)
      err = TG_ERR_NOMEM;
  }
  for (; err == TG_OK && done < n; done++) {
    err = protobuf ? frame_from_pb(list->index[done], &f[done])
                   : frame_from_json(json_array_get(arr, done), &f[done]);
    if (err != TG_OK)
      break;
  }
  if (list)
    tg__eas__data_frame_list_proto__free_unpacked(list, NULL);
  json_decref(arr);
  if (err != TG_OK) {
    for (size_t i = 0; i < done; i++)
      sch_frame_clear(&f[i]);
    free(f);
    return err;
  }
  *out = f;
  *n_out = (int)n;
  return TG_OK;
}

tg_err_t sch_frame_decode_one(const unsigned char *buf, size_t len, struct sch_frame *out) {
  if (!out || (!buf && len))
    return TG_ERR_INVAL;
  memset(out, 0, sizeof *out);
  Tg__Eas__DataFrameProto *m = tg__eas__data_frame_proto__unpack(NULL, len, buf);
  if (!m)
    return TG_ERR_BAD_MSG;
  tg_err_t err = frame_from_pb(m, out);
  tg__eas__data_frame_proto__free_unpacked(m, NULL);
  return err;
}

tg_err_t sch_attrs_decode(const unsigned char *buf, size_t len, bool protobuf, json_t **out) {
  if (!out || (!buf && len))
    return TG_ERR_INVAL;
  *out = NULL;
  if (protobuf) {
    Tg__Eas__AttributesProto *m = tg__eas__attributes_proto__unpack(NULL, len, buf);
    if (!m)
      return TG_ERR_BAD_MSG;
    json_t *o = json_object();
    tg_err_t err = o ? TG_OK : TG_ERR_NOMEM;
    for (size_t i = 0; err == TG_OK && i < m->n_attributes; i++)
      err = json_add_pair(o, m->attributes[i]->key, m->attributes[i]->value);
    if (err == TG_OK)
      *out = o;
    else
      json_decref(o);
    tg__eas__attributes_proto__free_unpacked(m, NULL);
    return err;
  }
  json_t *o = json_loadb((const char *)buf, len, 0, NULL);
  const char *k;
  json_t *v;
  if (!json_is_object(o)) {
    json_decref(o);
    return TG_ERR_BAD_MSG;
  }
  json_object_foreach(o, k, v) {
    if (!json_is_string(v)) {
      json_decref(o);
      return TG_ERR_BAD_MSG;
    }
  }
  *out = o;
  return TG_OK;
}
