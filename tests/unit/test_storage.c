/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_storage.c - object keys and the "file" storage backend
 * (worker/storage/): keys take the UTC date of enqueued_at and nothing
 * else, the same job gives the same key, hostile parts are refused with the
 * part named; a put lands atomically at root/key, returns a file:// URL (or
 * one under public_base_url), overwrites on redelivery, leaves no temp
 * files, and never writes outside the root, symlinks included. The key
 * guard (tg_storage_key_ok) accepts exactly the keys tg_object_key makes
 * for its own env and refuses other envs, traversal, encodings, lookalikes,
 * control bytes, wrong shapes and random mutations of good keys.
 */
#undef NDEBUG
#include <assert.h>

#include "check.h"
#include "storage/storage.h"
#include "tg_time.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* room for a temp dir path; derived paths get more */
#define DIR_MAX 256

/* ---- helpers ----------------------------------------------------------- */

static int64_t ms_of(const char *rfc3339) {
  int64_t ms = 0;
  const char *why = NULL;
  bool ok = tg_time_parse(rfc3339, &ms, &why);
  assert(ok);
  return ms;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_rf(const char *path) {
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmpdir(char *buf, size_t size) {
  const char *t = getenv("TMPDIR");
  snprintf(buf, size, "%s/tg-storage-XXXXXX", t && *t ? t : "/tmp");
  char *p = mkdtemp(buf);
  assert(p);
}

/* the whole content of a file, or NULL */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 16);
  assert(buf);
  *len = fread(buf, 1, 1 << 16, f);
  fclose(f);
  return buf;
}

/* number of entries in a directory, "." and ".." aside; -1 when it cannot be read */
static int entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

/* ---- keys -------------------------------------------------------------- */

static void test_key_dates(void) {
  char key[256], e[128];
  CHECK(tg_object_key("dev", ms_of("2024-05-05T23:59:59.999Z"), "req-1", "full", "jpg", key,
                      sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "dev/2024/05/05/req-1/full.jpg");
  CHECK(tg_object_key("dev", ms_of("2024-05-06T00:00:00Z"), "req-1", "full", "jpg", key,
                      sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "dev/2024/05/06/req-1/full.jpg");
  /* the UTC date, whatever offset the time was written with */
  CHECK(tg_object_key("prod", ms_of("2024-05-06T07:59:59.999+08:00"), "r", "thumb", "webp", key,
                      sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "prod/2024/05/05/r/thumb.webp");
  CHECK(tg_object_key("test", 0, "A_b-9", "full", "png", key, sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "test/1970/01/01/A_b-9/full.png");
  CHECK(tg_object_key("test", ms_of("9999-12-31T23:59:59.999Z"), "r", "full", "png", key,
                      sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "test/9999/12/31/r/full.png");
}

static void test_key_pure(void) {
  char a[256], b[256], e[128];
  int64_t at = ms_of("2024-02-29T12:00:00Z");
  CHECK(tg_object_key("dev", at, "0190f0e3a1b2-0123456789abcdef", "thumb", "jpg", a, sizeof(a),
                      e, sizeof(e)));
  CHECK(tg_object_key("dev", at, "0190f0e3a1b2-0123456789abcdef", "thumb", "jpg", b, sizeof(b),
                      e, sizeof(e)));
  CHECK_STREQ(a, b);
  CHECK_STREQ(a, "dev/2024/02/29/0190f0e3a1b2-0123456789abcdef/thumb.jpg");
}

/* the key is refused and the reason starts with "@part:" */
static void refused(const char *env, int64_t at, const char *rid, const char *variant,
                    const char *ext, const char *part, int line) {
  char key[512] = "junk", e[128] = "";
  bool ok = tg_object_key(env, at, rid, variant, ext, key, sizeof(key), e, sizeof(e));
  CHECK_MSG(!ok, "line %d: accepted as \"%s\"", line, key);
  CHECK_MSG(strncmp(e, part, strlen(part)) == 0 && e[strlen(part)] == ':',
            "line %d: reason \"%s\" does not name %s", line, e, part);
  CHECK_MSG(key[0] == '\0', "line %d: buffer not cleared", line);
}

static void test_key_hostile(void) {
  static const char *const hostile[] = {"../x", "a/b", "", "..", ".", "x\ny", "/abs",
                                        "a\\b", "a b", "a%2fb", "a\tb", "\x7f"};
  char big[300];
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  int64_t at = ms_of("2024-05-05T10:00:00Z");
  for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
    const char *h = hostile[i];
    refused(h, at, "r", "full", "jpg", "env", __LINE__);
    refused("dev", at, h, "full", "jpg", "request_id", __LINE__);
    refused("dev", at, "r", h, "jpg", "variant", __LINE__);
    refused("dev", at, "r", "full", h, "ext", __LINE__);
  }
  refused(big, at, "r", "full", "jpg", "env", __LINE__);
  refused("dev", at, big, "full", "jpg", "request_id", __LINE__);
  refused("dev", at, "r", big, "jpg", "variant", __LINE__);
  refused("dev", at, "r", "full", big, "ext", __LINE__);
  refused(NULL, at, "r", "full", "jpg", "env", __LINE__);
  refused("dev", at, NULL, "full", "jpg", "request_id", __LINE__);
  refused("dev", at, "r", NULL, "jpg", "variant", __LINE__);
  refused("dev", at, "r", "full", NULL, "ext", __LINE__);
  /* classes: env and variant lower case, first a letter; request_id has no dot */
  refused("Dev", at, "r", "full", "jpg", "env", __LINE__);
  refused("1dev", at, "r", "full", "jpg", "env", __LINE__);
  refused("dev", at, "r.1", "full", "jpg", "request_id", __LINE__);
  refused("dev", at, "r", "Full", "jpg", "variant", __LINE__);
  refused("dev", at, "r", "-full", "jpg", "variant", __LINE__);
  refused("dev", at, "r", "full", "JPG", "ext", __LINE__);
  refused("dev", at, "r", "full", "exe", "ext", __LINE__);
  refused("dev", at, "r", "full", ".jpg", "ext", __LINE__);
  refused("dev", -1, "r", "full", "jpg", "enqueued_at", __LINE__);
  refused("dev", INT64_MIN, "r", "full", "jpg", "enqueued_at", __LINE__);
  refused("dev", INT64_MAX, "r", "full", "jpg", "enqueued_at", __LINE__);

  /* the longest allowed parts pass; one more character does not */
  char env32[33], rid64[65], var16[17], key[256], e[128];
  memset(env32, 'e', 32), env32[32] = '\0';
  memset(rid64, 'R', 64), rid64[64] = '\0';
  memset(var16, 'v', 16), var16[16] = '\0';
  CHECK(tg_object_key(env32, at, rid64, var16, "webp", key, sizeof(key), e, sizeof(e)));
  CHECK(strlen(key) == 32 + 12 + 64 + 1 + 16 + 5);
  memset(big, 'e', 33), big[33] = '\0';
  refused(big, at, "r", "full", "jpg", "env", __LINE__);
  memset(big, 'R', 65), big[65] = '\0';
  refused("dev", at, big, "full", "jpg", "request_id", __LINE__);
  memset(big, 'v', 17), big[17] = '\0';
  refused("dev", at, "r", big, "jpg", "variant", __LINE__);

  /* a buffer too small is an error, not a truncated key */
  char small[10] = "junk";
  CHECK(!tg_object_key("dev", at, "r", "full", "jpg", small, sizeof(small), e, sizeof(e)));
  CHECK(small[0] == '\0');
  CHECK(strncmp(e, "key:", 4) == 0);
}

/* ---- the key guard: tg_storage_key_ok() -------------------------------- */

/* the guard refuses @key for @env, and its reason does not echo the key */
static void guard_refuses(const char *env, const char *key, int line) {
  char why[256] = "";
  bool ok = tg_storage_key_ok(env, key, why, sizeof(why));
  CHECK_MSG(!ok, "line %d: accepted", line);
  CHECK_MSG(why[0] != '\0', "line %d: no reason", line);
  CHECK_MSG(!strstr(why, "EVIL") && !strstr(why, "2024/"), "line %d: reason echoes the key: %s",
            line, why);
}

static void test_guard_accepts_its_keys(void) {
  char key[256], e[128], why[256];
  int64_t at = ms_of("2024-05-05T10:00:00Z");
  CHECK_MSG(tg_storage_key_ok("test", "test/2024/05/05/r-1/full.jpg", why, sizeof(why)), "%s",
            why);
  /* a request_id that merely says "prod" stays under test/ */
  CHECK(tg_storage_key_ok("test", "test/2024/05/05/prod/thumb.webp", why, sizeof(why)));
  CHECK(tg_storage_key_ok("prod", "prod/1970/01/01/A_b-9/full.png", why, sizeof(why)));
  CHECK(tg_storage_key_ok("prod-eu", "prod-eu/2024/02/29/r/full.jpg", why, sizeof(why)));
  /* every key tg_object_key() makes passes for its env and for no other */
  static const char *const envs[] = {"dev", "test", "prod", "prod-eu", "t"};
  static const char *const rids[] = {"r", "0190f0e3a1b2-0123456789abcdef", "A_b-9", "prod", "_-"};
  static const char *const vars[] = {"full", "thumb", "x", "wide_2", "a-b"};
  static const char *const exts[] = {"jpg", "png", "webp"};
  for (size_t i = 0; i < 5; i++)
    for (size_t j = 0; j < 5; j++)
      for (size_t k = 0; k < 5; k++) {
        const char *ext = exts[(i + j + k) % 3];
        int64_t t = at + (int64_t)(i * 7 + j * 3 + k) * 86400000 * 37;
        CHECK(tg_object_key(envs[i], t, rids[j], vars[k], ext, key, sizeof(key), e, sizeof(e)));
        CHECK_MSG(tg_storage_key_ok(envs[i], key, why, sizeof(why)), "%s: %s", key, why);
        for (size_t o = 0; o < 5; o++)
          if (o != i)
            CHECK_MSG(!tg_storage_key_ok(envs[o], key, why, sizeof(why)),
                      "%s accepted for env %s", key, envs[o]);
      }
  /* the longest parts */
  char env32[33], rid64[65], var16[17];
  memset(env32, 'e', 32), env32[32] = '\0';
  memset(rid64, 'R', 64), rid64[64] = '\0';
  memset(var16, 'v', 16), var16[16] = '\0';
  CHECK(tg_object_key(env32, ms_of("9999-12-31T23:59:59.999Z"), rid64, var16, "webp", key,
                      sizeof(key), e, sizeof(e)));
  CHECK_MSG(tg_storage_key_ok(env32, key, why, sizeof(why)), "%s", why);
}

static void test_guard_refuses(void) {
  /* another env, or no env prefix at all */
  guard_refuses("test", "prod/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "testing/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "tes/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "TEST/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test", __LINE__);
  guard_refuses("test", "test/", __LINE__);
  guard_refuses("test", "", __LINE__);
  guard_refuses("test", NULL, __LINE__);
  /* traversal out of test/ into prod/ */
  guard_refuses("test", "test/../prod/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/prod/../../../../../prod/2024/05/05/EVIL/full.jpg",
                __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/../../../../../prod/x.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/../EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/..", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL../full.jpg", __LINE__);
  guard_refuses("test", "/test/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "//test/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test//2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/./2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/./full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full.jpg/", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full.jpg/.", __LINE__);
  guard_refuses("test", "test\\..\\prod\\2024\\05\\05\\EVIL\\full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL\\..\\..\\prod/full.jpg", __LINE__);
  /* encodings and lookalikes of "." and "/" */
  guard_refuses("test", "test/2024/05/05/%2e%2e/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL%2f..%2f..%2fprod/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL\xe2\x88\x95..\xe2\x88\x95prod/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/\xef\xbc\x8e\xef\xbc\x8e/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/\xc0\xae\xc0\xae/full.jpg", __LINE__);
  guard_refuses("test", "t\xd0\xb5st/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("t\xd0\xb5st", "t\xd0\xb5st/2024/05/05/EVIL/full.jpg", __LINE__);
  /* control bytes, a NUL in disguise (overlong UTF-8), DEL */
  guard_refuses("test", "test/2024/05/05/EVIL\n/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL\x01/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL\xc0\x80/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL\x7f/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full.jpg\r", __LINE__);
  /* not the shape tg_object_key() makes */
  guard_refuses("test", "test/2024/13/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/02/30/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/00/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/24/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/5/05/EVIL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full.exe", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/full.jpg.png", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/Full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL/x/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EV IL/full.jpg", __LINE__);
  guard_refuses("test", "test/2024/05/05/EVIL.x/full.jpg", __LINE__);
  guard_refuses("test", "test/-001/05/05/EVIL/full.jpg", __LINE__);
  /* hostile envs are refused whatever the key */
  guard_refuses("../prod", "../prod/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("prod/..", "prod/../2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("", "/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses(NULL, "test/2024/05/05/EVIL/full.jpg", __LINE__);
  guard_refuses("Test", "Test/2024/05/05/EVIL/full.jpg", __LINE__);
  /* very long */
  char big[2048];
  memset(big, 'a', sizeof(big) - 1), big[sizeof(big) - 1] = '\0';
  memcpy(big, "test/2024/05/05/EVIL", 20);
  guard_refuses("test", big, __LINE__);
  char rid65[96] = "test/2024/05/05/";
  memset(rid65 + 16, 'R', 65), memcpy(rid65 + 81, "/full.jpg", 10);
  guard_refuses("test", rid65, __LINE__);
}

/* a small deterministic generator for the mutation test */
static uint32_t lcg(uint32_t *s) {
  *s = *s * 1664525u + 1013904223u;
  return *s >> 8;
}

/*
 * Mutations of a good key (a hostile byte or piece inserted, a byte
 * replaced or dropped): whatever passes still lies under "test/", holds no
 * dot segment and no byte outside the key alphabet.
 */
static void test_guard_mutations(void) {
  static const char *const pieces[] = {"/", "..", ".", "\\", "%2e", "prod/", "../prod/", "\n",
                                       "\x7f", "\xc0\xae", "//", "\xe2\x88\x95", " ", "a"};
  const char *good = "test/2024/05/05/req-1/full.jpg";
  uint32_t seed = 12345;
  int accepted = 0;
  for (int i = 0; i < 20000; i++) {
    char key[128], why[256];
    size_t len = strlen(good), at = lcg(&seed) % (len + 1);
    int op = (int)(lcg(&seed) % 3);
    const char *piece = pieces[lcg(&seed) % (sizeof(pieces) / sizeof(pieces[0]))];
    if (op == 0) /* insert */
      snprintf(key, sizeof(key), "%.*s%s%s", (int)at, good, piece, good + at);
    else if (op == 1 && at < len) /* replace one byte */
      snprintf(key, sizeof(key), "%.*s%s%s", (int)at, good, piece, good + at + 1);
    else /* drop one byte */
      snprintf(key, sizeof(key), "%.*s%s", (int)at, good, at < len ? good + at + 1 : "");
    if (!tg_storage_key_ok("test", key, why, sizeof(why)))
      continue;
    accepted++;
    CHECK_MSG(strncmp(key, "test/", 5) == 0 && !strstr(key, "..") && !strstr(key, "./") &&
                  !strstr(key, "//") && strspn(key, "abcdefghijklmnopqrstuvwxyz"
                                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./") ==
                                            strlen(key),
              "accepted \"%s\"", key);
  }
  CHECK_MSG(accepted > 0, "no mutation passed: the test proves nothing");
}

/* more hostile parts of tg_object_key(): encodings, lookalikes, "prod/.." */
static void test_key_more_hostile(void) {
  static const char *const hostile[] = {
    "%2e%2e", "%2E%2E%2F", "..%2f", "prod/..", "prod/../x", "../prod", "a/b", "./a", "a/.",
    "\xef\xbc\x8e\xef\xbc\x8e",            /* fullwidth full stops */
    "a\xe2\x88\x95" "b",                   /* division slash */
    "a\xe2\x81\x84" "b",                   /* fraction slash */
    "\xc0\xae\xc0\xae",                    /* overlong "." */
    "a\xc0\x80" "b",                       /* overlong NUL */
    "t\xd0\xb5st",                         /* Cyrillic e */
    "r\xc2\xa0",                           /* no-break space */
    "\xe2\x80\xaetxt.exe",                 /* right-to-left override */
    "a\rb", "a\x1b[31m", " r", "r ", "~r", "r:1", "r;rm", "r*", "r?", "r#", "r&b", "$HOME",
    "`id`", "r\"", "r'", "<r>", "r|b"};
  int64_t at = ms_of("2024-05-05T10:00:00Z");
  for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
    const char *h = hostile[i];
    refused(h, at, "r", "full", "jpg", "env", __LINE__);
    refused("test", at, h, "full", "jpg", "request_id", __LINE__);
    refused("test", at, "r", h, "jpg", "variant", __LINE__);
    refused("test", at, "r", "full", h, "ext", __LINE__);
  }
  /* a NUL ends the C string: what follows it never reaches the key */
  char key[256], e[128], why[256];
  static const char nul_rid[] = "r\0/../../prod";
  CHECK(tg_object_key("test", at, nul_rid, "full", "jpg", key, sizeof(key), e, sizeof(e)));
  CHECK_STREQ(key, "test/2024/05/05/r/full.jpg");
  CHECK(tg_storage_key_ok("test", key, why, sizeof(why)));
  /* very long parts */
  static char huge[1 << 16];
  memset(huge, 'a', sizeof(huge) - 1);
  refused(huge, at, "r", "full", "jpg", "env", __LINE__);
  refused("test", at, huge, "full", "jpg", "request_id", __LINE__);
  refused("test", at, "r", huge, "jpg", "variant", __LINE__);
  /* the reason names the part and does not echo a hostile value */
  CHECK(!tg_object_key("test", at, "EVIL/../../prod", "full", "jpg", key, sizeof(key), e,
                       sizeof(e)));
  CHECK_MSG(!strstr(e, "EVIL"), "echoed: %s", e);
}

/* ---- the file backend -------------------------------------------------- */

static struct tg_worker_conf conf;

static void *file_backend(const char *root, const char *base_url) {
  void *st = NULL;
  char e[256] = "";
  snprintf(conf.storage_root, sizeof(conf.storage_root), "%s", root);
  snprintf(conf.public_base_url, sizeof(conf.public_base_url), "%s", base_url);
  tg_err_t rc = tg_storage_file.create(&conf, &st, e, sizeof(e));
  CHECK_MSG(rc == TG_OK, "create(%s): %s", root, e);
  return rc == TG_OK ? st : NULL;
}

static void test_registry(void) {
  CHECK(tg_storage_find("file") == &tg_storage_file);
  CHECK(tg_storage_find("oss") == &tg_storage_oss);
  CHECK(tg_storage_find("s3") == &tg_storage_s3);
  CHECK(tg_storage_find("ftp") == NULL);
  CHECK(tg_storage_find(NULL) == NULL);
  CHECK_STREQ(tg_storage_file.name, "file");
}

static void test_file_put(void) {
  char tmp[DIR_MAX], root[DIR_MAX + 16], real[PATH_MAX], key[256], e[128];
  make_tmpdir(tmp, sizeof(tmp));
  snprintf(root, sizeof(root), "%s/a/b", tmp); /* missing: made with mkdir -p */
  void *st = file_backend(root, "");
  if (!st)
    goto out;
  CHECK(realpath(root, real) != NULL);

  CHECK(tg_object_key("dev", ms_of("2024-05-05T23:59:59.999Z"), "req-1", "full", "jpg", key,
                      sizeof(key), e, sizeof(e)));
  unsigned char bytes1[] = "first version of the object";
  struct tg_blob b1 = {bytes1, sizeof(bytes1)};
  struct tg_stage_error err = {0};
  char *url = NULL;
  bool ok = tg_storage_file.put(st, key, &b1, "image/jpeg", &url, &err);
  CHECK_MSG(ok, "put: %s", err.message);
  char want[PATH_MAX * 2];
  snprintf(want, sizeof(want), "file://%s/%s", real, key);
  CHECK_STREQ(url, want);
  free(url);

  char path[PATH_MAX * 2];
  snprintf(path, sizeof(path), "%s/%s", real, key);
  size_t len = 0;
  char *got = slurp(path, &len);
  CHECK(got && len == sizeof(bytes1) && memcmp(got, bytes1, len) == 0);
  free(got);
  struct stat sb;
  CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode));

  /* a redelivered job overwrites the same file */
  unsigned char bytes2[] = "second";
  struct tg_blob b2 = {bytes2, sizeof(bytes2)};
  url = NULL;
  CHECK(tg_storage_file.put(st, key, &b2, "image/jpeg", &url, &err));
  CHECK_STREQ(url, want);
  free(url);
  got = slurp(path, &len);
  CHECK(got && len == sizeof(bytes2) && memcmp(got, bytes2, len) == 0);
  free(got);

  /* no temp files left behind */
  snprintf(path, sizeof(path), "%s/dev/2024/05/05/req-1", real);
  CHECK_MSG(entries(path) == 1, "%d entries in %s", entries(path), path);

  /* an empty object is fine */
  struct tg_blob empty = {NULL, 0};
  url = NULL;
  CHECK(tg_storage_file.put(st, "dev/2024/05/05/req-1/thumb.jpg", &empty, "image/jpeg", &url,
                            &err));
  free(url);
  CHECK(entries(path) == 2);
  tg_storage_file.destroy(st);

  /* public_base_url: its trailing slash does not double */
  st = file_backend(root, "https://cdn.example.com/trips/");
  if (st) {
    url = NULL;
    CHECK(tg_storage_file.put(st, key, &b1, "image/jpeg", &url, &err));
    CHECK_STREQ(url, "https://cdn.example.com/trips/dev/2024/05/05/req-1/full.jpg");
    free(url);
    tg_storage_file.destroy(st);
  }

  /* a relative root is made absolute */
  char cwd[PATH_MAX];
  CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
  CHECK(chdir(tmp) == 0);
  st = file_backend("rel/root", "");
  CHECK(chdir(cwd) == 0);
  if (st) {
    url = NULL;
    CHECK(tg_storage_file.put(st, "dev/x.jpg", &b1, "image/jpeg", &url, &err));
    CHECK_MSG(url && strncmp(url, "file:///", 8) == 0 && strstr(url, "/rel/root/dev/x.jpg"),
              "url %s", url ? url : "(null)");
    free(url);
    tg_storage_file.destroy(st);
  }
out:
  rm_rf(tmp);
}

static void test_file_create_errors(void) {
  char tmp[DIR_MAX], path[DIR_MAX + 16], e[256];
  void *st = NULL;
  make_tmpdir(tmp, sizeof(tmp));
  conf.storage_root[0] = '\0';
  CHECK(tg_storage_file.create(&conf, &st, e, sizeof(e)) == TG_ERR_INVAL);
  CHECK(strstr(e, "storage_root"));
  snprintf(path, sizeof(path), "%s/file", tmp);
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f)
    fclose(f);
  snprintf(conf.storage_root, sizeof(conf.storage_root), "%s", path);
  CHECK(tg_storage_file.create(&conf, &st, e, sizeof(e)) != TG_OK);
  snprintf(conf.storage_root, sizeof(conf.storage_root), "%s/file/below", tmp);
  CHECK(tg_storage_file.create(&conf, &st, e, sizeof(e)) != TG_OK);
  snprintf(conf.storage_root, sizeof(conf.storage_root), "/");
  CHECK(tg_storage_file.create(&conf, &st, e, sizeof(e)) == TG_ERR_INVAL);
  CHECK(st == NULL);
  rm_rf(tmp);
}

/* put @key expecting a non-retryable upload_failed */
static void put_refused(void *st, const char *key, int line) {
  unsigned char bytes[] = "x";
  struct tg_blob b = {bytes, 1};
  struct tg_stage_error err = {0};
  char *url = (char *)"unset";
  bool ok = tg_storage_file.put(st, key, &b, "image/jpeg", &url, &err);
  CHECK_MSG(!ok, "line %d: put accepted", line);
  CHECK_MSG(url == NULL, "line %d: url set", line);
  if (ok)
    free(url);
  CHECK_MSG(err.code == TG_CODE_UPLOAD_FAILED, "line %d: code %d", line, (int)err.code);
  CHECK_MSG(!err.retryable, "line %d: retryable: %s", line, err.message);
}

static void test_file_bad_keys(void) {
  char tmp[DIR_MAX], root[DIR_MAX + 16], outside[DIR_MAX + 16];
  make_tmpdir(tmp, sizeof(tmp));
  snprintf(root, sizeof(root), "%s/root", tmp);
  snprintf(outside, sizeof(outside), "%s/outside", tmp);
  CHECK(mkdir(outside, 0755) == 0);
  void *st = file_backend(root, "");
  if (!st)
    goto out;
  static const char *const bad[] = {
    "", "/etc/x.jpg", "../x.jpg", "dev/../../x.jpg", "dev/..", "..", "dev//x.jpg", "dev/",
    "./x.jpg", "dev/./x.jpg", "dev/.", ".", "dev/x\n.jpg", "dev/x\x7f.jpg", "dev/\x01",
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    put_refused(st, bad[i], __LINE__);
  char longkey[400];
  memset(longkey, 'a', sizeof(longkey) - 1);
  longkey[sizeof(longkey) - 1] = '\0';
  put_refused(st, longkey, __LINE__);
  put_refused(st, NULL, __LINE__);
  CHECK(entries(root) == 0);
  CHECK(entries(outside) == 0);

  /* a symlink inside the root that points outside: nothing is made through it */
  char link[PATH_MAX * 2];
  snprintf(link, sizeof(link), "%s/dev", root);
  CHECK(symlink(outside, link) == 0);
  put_refused(st, "dev/2024/05/05/r/full.jpg", __LINE__);
  CHECK_MSG(entries(outside) == 0, "%d entries outside", entries(outside));
  CHECK(unlink(link) == 0);

  /* the same one level down */
  snprintf(link, sizeof(link), "%s/dev", root);
  CHECK(mkdir(link, 0755) == 0);
  snprintf(link, sizeof(link), "%s/dev/2024", root);
  CHECK(mkdir(link, 0755) == 0);
  snprintf(link, sizeof(link), "%s/dev/2024/05", root);
  CHECK(symlink(outside, link) == 0);
  put_refused(st, "dev/2024/05/05/r/full.jpg", __LINE__);
  CHECK(entries(outside) == 0);

  /* a relative symlink climbing out */
  snprintf(link, sizeof(link), "%s/prod", root);
  CHECK(symlink("../outside", link) == 0);
  put_refused(st, "prod/2024/05/05/r/full.jpg", __LINE__);
  CHECK(entries(outside) == 0);

  /* a regular file where a directory belongs */
  snprintf(link, sizeof(link), "%s/test", root);
  FILE *f = fopen(link, "w");
  CHECK(f != NULL);
  if (f)
    fclose(f);
  put_refused(st, "test/2024/05/05/r/full.jpg", __LINE__);

  /* a symlink in the final name is replaced, not followed */
  char victim[PATH_MAX * 2];
  snprintf(victim, sizeof(victim), "%s/victim", outside);
  f = fopen(victim, "w");
  CHECK(f != NULL);
  if (f) {
    fputs("keep me", f);
    fclose(f);
  }
  snprintf(link, sizeof(link), "%s/stage", root);
  CHECK(mkdir(link, 0755) == 0);
  snprintf(link, sizeof(link), "%s/stage/full.jpg", root);
  CHECK(symlink(victim, link) == 0);
  unsigned char bytes[] = "new";
  struct tg_blob b = {bytes, 3};
  struct tg_stage_error err = {0};
  char *url = NULL;
  CHECK(tg_storage_file.put(st, "stage/full.jpg", &b, "image/jpeg", &url, &err));
  free(url);
  size_t len = 0;
  char *got = slurp(victim, &len);
  CHECK(got && len == 7 && memcmp(got, "keep me", 7) == 0);
  free(got);
  struct stat sb;
  CHECK(lstat(link, &sb) == 0 && S_ISREG(sb.st_mode));
  tg_storage_file.destroy(st);
out:
  rm_rf(tmp);
}

static void test_file_io_error(void) {
  char tmp[DIR_MAX], dir[DIR_MAX + 32];
  unsigned char bytes[] = "x";
  struct tg_blob b = {bytes, 1};
  struct tg_stage_error err = {0};
  char *url = NULL;
  make_tmpdir(tmp, sizeof(tmp));
  void *st = file_backend(tmp, "");
  if (!st)
    goto out;

  /* the final name is a non-empty directory: the rename fails, the temp file goes */
  snprintf(dir, sizeof(dir), "%s/dev", tmp);
  CHECK(mkdir(dir, 0755) == 0);
  snprintf(dir, sizeof(dir), "%s/dev/x.jpg", tmp);
  CHECK(mkdir(dir, 0755) == 0);
  snprintf(dir, sizeof(dir), "%s/dev/x.jpg/inner", tmp);
  CHECK(mkdir(dir, 0755) == 0);
  CHECK(!tg_storage_file.put(st, "dev/x.jpg", &b, "image/jpeg", &url, &err));
  CHECK(url == NULL);
  CHECK(err.code == TG_CODE_UPLOAD_FAILED);
  CHECK_MSG(err.retryable, "not retryable: %s", err.message);
  CHECK_MSG(strstr(err.message, strerror(EISDIR)), "message \"%s\"", err.message);
  snprintf(dir, sizeof(dir), "%s/dev", tmp);
  CHECK_MSG(entries(dir) == 1, "%d entries in %s", entries(dir), dir);

  if (geteuid() == 0) {
    fprintf(stderr, "     (running as root: permission test skipped)\n");
    goto done;
  }
  snprintf(dir, sizeof(dir), "%s/prod", tmp);
  CHECK(mkdir(dir, 0555) == 0);
  CHECK(!tg_storage_file.put(st, "prod/2024/05/05/r/full.jpg", &b, "image/jpeg", &url, &err));
  CHECK(url == NULL);
  CHECK(err.code == TG_CODE_UPLOAD_FAILED);
  CHECK_MSG(err.retryable, "not retryable: %s", err.message);
  CHECK_MSG(strstr(err.message, strerror(EACCES)), "message \"%s\"", err.message);
  CHECK(chmod(dir, 0755) == 0);
done:
  tg_storage_file.destroy(st);
out:
  rm_rf(tmp);
}

/* log lines of the object stores name the job by the request_id inside its key */
static void test_key_request_id(void) {
  char rid[80];
  tg_storage_key_request_id("prod/2026/11/25/01a2-x_y/full.jpg", rid, sizeof(rid));
  CHECK_STREQ(rid, "01a2-x_y");
  tg_storage_key_request_id("prod/2026/11/25/01a2", rid, sizeof(rid)); /* no file after it */
  CHECK_STREQ(rid, "-");
  tg_storage_key_request_id("full.jpg", rid, sizeof(rid));
  CHECK_STREQ(rid, "-");
  tg_storage_key_request_id("a/b/c/d/0123456789/x", rid, 5); /* does not fit */
  CHECK_STREQ(rid, "-");
}

int main(void) {
  RUN(test_key_request_id);
  RUN(test_key_dates);
  RUN(test_key_pure);
  RUN(test_key_hostile);
  RUN(test_key_more_hostile);
  RUN(test_guard_accepts_its_keys);
  RUN(test_guard_refuses);
  RUN(test_guard_mutations);
  RUN(test_registry);
  RUN(test_file_put);
  RUN(test_file_create_errors);
  RUN(test_file_bad_keys);
  RUN(test_file_io_error);
  return check_done("test_storage");
}
