/* SPDX-License-Identifier: Apache-2.0 */
/*
 * file.c - the "file" storage backend: objects are files below a local
 * root directory (the default for dev and the demo).
 *
 * A put is atomic and idempotent: the bytes go to a temporary file in the
 * object's directory, are fsync()ed, and are renamed over the final name,
 * so a reader sees the old object or the new one and a redelivered job
 * overwrites its own file. Keys come from tg_object_key() and are checked
 * again here (relative, no "..", no empty or "." segment, no control
 * characters). Directories below the root are created and opened one at a
 * time without following symlinks, so no file or directory is ever made
 * outside the root; the resolved parent is also checked to lie inside the
 * root before the rename. URLs are public_base_url + "/" + key when that is
 * set, else file:// URLs of the absolute path.
 */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* the last segment of a key, leaving room in NAME_MAX for the temp suffix */
#define LEAF_MAX 200

struct file_state {
  char root[PATH_MAX];            /* absolute, resolved, no trailing '/' */
  size_t root_len;
  char base_url[TG_CONF_STR];     /* without trailing '/'; "" = file:// URLs */
};

/* ---- create ------------------------------------------------------------ */

/* mkdir -p @path with mode 0755 */
static bool mkdir_p(const char *path, char *errstr, size_t n) {
  char buf[PATH_MAX];
  size_t len = strlen(path);
  if (len >= sizeof(buf)) {
    snprintf(errstr, n, "storage_root: path too long");
    return false;
  }
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != '\0')
      continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
      snprintf(errstr, n, "storage_root: mkdir %s: %s", buf, strerror(errno));
      return false;
    }
    buf[i] = c;
  }
  return true;
}

static tg_err_t file_create(const struct tg_worker_conf *conf, void **state, char *errstr,
                            size_t n) {
  const char *root = conf->storage_root;
  char abs[PATH_MAX];
  struct stat st;
  if (!root[0]) {
    snprintf(errstr, n, "storage_root: empty");
    return TG_ERR_INVAL;
  }
  if (!mkdir_p(root, errstr, n))
    return TG_ERR_IO;
  if (!realpath(root, abs)) {
    snprintf(errstr, n, "storage_root: %s: %s", root, strerror(errno));
    return TG_ERR_IO;
  }
  if (stat(abs, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(errstr, n, "storage_root: %s: not a directory", abs);
    return TG_ERR_INVAL;
  }
  if (strcmp(abs, "/") == 0) {
    snprintf(errstr, n, "storage_root: refusing to store objects in /");
    return TG_ERR_INVAL;
  }
  if (access(abs, W_OK | X_OK) != 0) {
    snprintf(errstr, n, "storage_root: %s: %s", abs, strerror(errno));
    return TG_ERR_IO;
  }
  struct file_state *s = calloc(1, sizeof(*s));
  if (!s) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  s->root_len = strlen(abs);
  memcpy(s->root, abs, s->root_len + 1);
  snprintf(s->base_url, sizeof(s->base_url), "%s", conf->public_base_url);
  for (size_t l = strlen(s->base_url); l > 0 && s->base_url[l - 1] == '/'; l--)
    s->base_url[l - 1] = '\0';
  *state = s;
  return TG_OK;
}

static void file_destroy(void *state) {
  free(state);
}

/* ---- put --------------------------------------------------------------- */

/* Defence in depth: the key must be a plain relative path of safe segments. */
static bool key_safe(const struct file_state *s, const char *key, char *why, size_t n) {
  if (!key || !key[0]) {
    snprintf(why, n, "empty");
    return false;
  }
  size_t len = strlen(key);
  if (s->root_len + 1 + len >= PATH_MAX) {
    snprintf(why, n, "too long");
    return false;
  }
  if (key[0] == '/') {
    snprintf(why, n, "not relative");
    return false;
  }
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      snprintf(why, n, "contains a control character");
      return false;
    }
  }
  if (strstr(key, "..")) {
    snprintf(why, n, "contains \"..\"");
    return false;
  }
  if (strstr(key, "//") || key[len - 1] == '/') {
    snprintf(why, n, "has an empty segment");
    return false;
  }
  if (strcmp(key, ".") == 0 || strncmp(key, "./", 2) == 0 || strstr(key, "/./") ||
      (len >= 2 && strcmp(key + len - 2, "/.") == 0)) {
    snprintf(why, n, "has a \".\" segment");
    return false;
  }
  const char *leaf = strrchr(key, '/');
  if (strlen(leaf ? leaf + 1 : key) > LEAF_MAX) {
    snprintf(why, n, "last segment longer than %d", LEAF_MAX);
    return false;
  }
  return true;
}

/* What went wrong in a put: a message, and whether a retry may help. */
struct put_err {
  bool retryable;
  char msg[384];
};

__attribute__((format(printf, 3, 4)))
static bool put_fail(struct put_err *e, bool retryable, const char *fmt, ...) {
  va_list ap;
  e->retryable = retryable;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  return false;
}

/*
 * Open the directory of @key below the root, creating missing ones, one
 * segment at a time and never through a symlink. *dfd is -1 or an open fd.
 */
static bool open_parent(const struct file_state *s, const char *key, int *dfd,
                        const char **leaf, struct put_err *e) {
  char seg[NAME_MAX + 1];
  const char *p = key, *slash;
  *dfd = open(s->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (*dfd < 0)
    return put_fail(e, true, "open %s: %s", s->root, strerror(errno));
  while ((slash = strchr(p, '/'))) {
    size_t len = (size_t)(slash - p);
    if (len > NAME_MAX)
      return put_fail(e, false, "key %s: %s", key, "segment too long");
    memcpy(seg, p, len);
    seg[len] = '\0';
    if (mkdirat(*dfd, seg, 0755) != 0 && errno != EEXIST)
      return put_fail(e, true, "mkdir %s: %s", seg, strerror(errno));
    int next = openat(*dfd, seg, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR))
      return put_fail(e, false, "key %s: \"%s\" is a symlink or not a directory", key, seg);
    if (next < 0)
      return put_fail(e, true, "open %s: %s", seg, strerror(errno));
    close(*dfd);
    *dfd = next;
    p = slash + 1;
  }
  *leaf = p;
  return true;
}

/* The resolved directory of @key must lie inside the root. */
static bool parent_inside_root(const struct file_state *s, const char *key, const char *leaf,
                               struct put_err *e) {
  char path[PATH_MAX], real[PATH_MAX];
  int len = snprintf(path, sizeof(path), "%s/%.*s", s->root, (int)(leaf - key), key);
  if (len < 0 || (size_t)len >= sizeof(path))
    return put_fail(e, false, "key %s: %s", key, "too long");
  if (!realpath(path, real))
    return put_fail(e, true, "resolve %s: %s", path, strerror(errno));
  if (strncmp(real, s->root, s->root_len) != 0 || real[s->root_len] != '/')
    return put_fail(e, false, "key %s: resolves to %s, outside the storage root", key, real);
  return true;
}

static bool write_all(int fd, const unsigned char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    len -= (size_t)w;
  }
  return true;
}

/* Create ".{leaf}.tmp-{pid}-{random}" exclusively in @dfd. */
static int open_temp(int dfd, const char *leaf, char *name, size_t size) {
  for (int tries = 0; tries < 8; tries++) {
    unsigned long long r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      r = (unsigned long long)ts.tv_nsec * 2654435761u + (unsigned long long)tries;
    }
    snprintf(name, size, ".%s.tmp-%ld-%016llx", leaf, (long)getpid(), r);
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST)
      return fd;
  }
  errno = EEXIST;
  return -1;
}

/* Write @data under @leaf in @dfd through a temp file, fsync and rename. */
static bool write_atomic(int dfd, const char *leaf, const struct tg_blob *data,
                         struct put_err *e) {
  char tmp[NAME_MAX + 1];
  int fd = open_temp(dfd, leaf, tmp, sizeof(tmp));
  if (fd < 0)
    return put_fail(e, true, "create temp file for %s: %s", leaf, strerror(errno));
  bool ok = write_all(fd, data->data, data->len) && fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && renameat(dfd, tmp, dfd, leaf) != 0) {
    ok = false;
    saved = errno;
  }
  if (!ok) {
    unlinkat(dfd, tmp, 0);
    return put_fail(e, true, "write %s: %s", leaf, strerror(saved));
  }
  /* make the rename durable; some filesystems cannot fsync a directory */
  if (fsync(dfd) != 0 && errno != EINVAL && errno != ENOTSUP)
    return put_fail(e, true, "fsync directory of %s: %s", leaf, strerror(errno));
  return true;
}

/* append @s to @out, %XX-encoding every byte but unreserved ones and '/' */
static char *pct_append(char *out, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        strchr("-._~/", c)) {
      *out++ = (char)c;
    } else {
      *out++ = '%';
      *out++ = hex[c >> 4];
      *out++ = hex[c & 15];
    }
  }
  *out = '\0';
  return out;
}

/* base_url + "/" + key, or file:// + root + "/" + key; NULL when out of memory */
static char *make_url(const struct file_state *s, const char *key) {
  const char *prefix = s->base_url[0] ? s->base_url : "file://";
  size_t len = strlen(prefix) + 3 * (s->root_len + strlen(key)) + 2;
  char *url = malloc(len);
  if (!url)
    return NULL;
  char *p = url + strlen(prefix);
  memcpy(url, prefix, strlen(prefix));
  if (!s->base_url[0])
    p = pct_append(p, s->root);
  *p++ = '/';
  pct_append(p, key);
  return url;
}

static bool file_put(void *state, const char *key, const struct tg_blob *data,
                     const char *content_type, char **url, struct tg_stage_error *err) {
  const struct file_state *s = state;
  struct put_err e = {0};
  char why[64];
  const char *leaf = NULL;
  int dfd = -1;
  (void)content_type; /* a file has no content type; its extension says it */
  *url = NULL;

  if (!data || (!data->data && data->len)) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "file storage: no data to store");
    return false;
  }
  if (!key_safe(s, key, why, sizeof(why))) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, false, "object key: %s", why);
    return false;
  }
  bool ok = open_parent(s, key, &dfd, &leaf, &e) && parent_inside_root(s, key, leaf, &e) &&
            write_atomic(dfd, leaf, data, &e);
  if (dfd >= 0)
    close(dfd);
  if (!ok) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, e.retryable, "file storage: %s", e.msg);
    return false;
  }
  *url = make_url(s, key);
  if (!*url) {
    tg_stage_fail(err, TG_CODE_UPLOAD_FAILED, true, "file storage: out of memory");
    return false;
  }
  return true;
}

const struct tg_storage_ops tg_storage_file = {
  .name = "file",
  .create = file_create,
  .destroy = file_destroy,
  .put = file_put,
};
