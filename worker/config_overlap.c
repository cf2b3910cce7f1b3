/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config_overlap.c - the places a config reads jobs from and writes objects
 * to, in a canonical form that two configs can be compared in: the env on
 * one Redis (host, port, db or socket path, db), and a store plus a key
 * prefix (file: the absolute root + "{env}/"; oss, s3: endpoint host and
 * bucket, storage.prefix + "{env}/"). Two configs overlap when they share a
 * queue or when one's storage prefix contains the other's. Nothing here
 * prints a password or endpoint credentials.
 */
#include "config_overlap.h"

#include "kafka_client.h"
#include "redis_url.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- paths ------------------------------------------------------------- */

/* drop the last component of the absolute path @p (never above "/") */
static void path_pop(char *p) {
  char *slash = strrchr(p, '/');
  if (slash && slash != p)
    *slash = '\0';
  else
    strcpy(p, "/");
}

/*
 * @path made absolute (against the working directory) and canonical: the
 * existing part with symlinks resolved by realpath(), the rest lexically
 * ("." dropped, ".." pops). No trailing '/'.
 */
static bool canon_path(const char *path, char *out, size_t size) {
  char cur[PATH_MAX], cand[PATH_MAX + NAME_MAX + 2], real[PATH_MAX];
  if (path[0] == '/') {
    strcpy(cur, "/");
  } else if (!getcwd(cur, sizeof(cur)) || !realpath(cur, real)) {
    return false;
  } else {
    snprintf(cur, sizeof(cur), "%s", real);
  }
  bool exists = true;
  for (const char *p = path; *p;) {
    while (*p == '/')
      p++;
    size_t len = strcspn(p, "/");
    if (len == 0)
      break;
    if (len == 1 && p[0] == '.') {
      /* nothing */
    } else if (len == 2 && p[0] == '.' && p[1] == '.') {
      path_pop(cur);
    } else {
      int l = snprintf(cand, sizeof(cand), "%s%s%.*s", cur, strcmp(cur, "/") ? "/" : "",
                       (int)len, p);
      if (l < 0 || (size_t)l >= sizeof(cur))
        return false;
      if (exists && realpath(cand, real)) {
        snprintf(cur, sizeof(cur), "%s", real);
      } else {
        exists = false;
        memcpy(cur, cand, (size_t)l + 1);
      }
    }
    p += len;
  }
  int l = snprintf(out, size, "%s", cur);
  return l >= 0 && (size_t)l < size;
}

/* ---- redis ------------------------------------------------------------- */

static bool loopback(const char *host) {
  return strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
         strncmp(host, "127.", 4) == 0;
}

static bool redis_place(const char *url, char *out, size_t size, char *errstr, size_t n) {
  struct tg_redis_url u;
  char why[256], host[sizeof(u.host)];
  if (!tg_redis_url_parse(url, &u, why, sizeof(why))) {
    snprintf(errstr, n, "redis.url: %s", why);
    return false;
  }
  if (u.is_unix) {
    char path[PATH_MAX];
    if (!canon_path(u.host, path, sizeof(path))) {
      snprintf(errstr, n, "redis.url: socket path cannot be resolved");
      return false;
    }
    snprintf(out, size, "redis unix:%s db %d", path, u.db);
    return true;
  }
  size_t i = 0;
  for (; u.host[i] && i + 1 < sizeof(host); i++)
    host[i] = (char)tolower((unsigned char)u.host[i]);
  host[i] = '\0';
  if (loopback(host))
    snprintf(host, sizeof(host), "127.0.0.1");
  bool v6 = strchr(host, ':') != NULL;
  snprintf(out, size, "redis %s%s%s:%d/%d", v6 ? "[" : "", host, v6 ? "]" : "", u.port, u.db);
  return true;
}

/* ---- object stores ----------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* the host[:port] of an http(s) URL, lower-cased, no credentials, no default port */
static bool url_authority(const char *url, char *out, size_t size) {
  bool https = strncmp(url, "https://", 8) == 0;
  const char *p = strstr(url, "://");
  if (!p)
    return false;
  p += 3;
  size_t len = strcspn(p, "/?#");
  const char *at = NULL; /* the last '@' of user:password@host */
  for (size_t i = 0; i < len; i++)
    if (p[i] == '@')
      at = p + i;
  if (at) {
    len -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  if (len == 0 || len >= size)
    return false;
  for (size_t i = 0; i < len; i++)
    out[i] = (char)tolower((unsigned char)p[i]);
  out[len] = '\0';
  const char *dflt = https ? ":443" : ":80";
  if (ends_with(out, dflt))
    out[len - strlen(dflt)] = '\0';
  /* loopback names as 127.0.0.1, the port kept */
  char *colon = out[0] == '[' ? strstr(out, "]:") : strrchr(out, ':');
  char port[16] = "";
  if (colon && strlen(colon) < sizeof(port)) {
    snprintf(port, sizeof(port), "%s", colon + (out[0] == '[' ? 1 : 0));
    colon[out[0] == '[' ? 1 : 0] = '\0';
  }
  if (loopback(out) || strcmp(out, "[::1]") == 0)
    snprintf(out, size, "127.0.0.1");
  if (strlen(out) + strlen(port) >= size)
    return false;
  strcat(out, port);
  return out[0] != '\0';
}

static bool store_place(const struct tg_worker_conf *c, char *out, size_t size, char *errstr,
                        size_t n) {
  char host[TG_CONF_STR];
  bool oss = strcmp(c->storage_backend, "oss") == 0;
  if (*c->storage_endpoint) {
    if (!url_authority(c->storage_endpoint, host, sizeof(host))) {
      snprintf(errstr, n, "storage.endpoint: no host");
      return false;
    }
  } else {
    snprintf(host, sizeof(host), oss ? "oss-%s.aliyuncs.com" : "s3.%s.amazonaws.com",
             c->storage_region);
  }
  /* a fully qualified name's trailing dot names the same host */
  size_t hl = strlen(host);
  while (hl > 1 && host[hl - 1] == '.')
    host[--hl] = '\0';
  /* a provider's bucket names are global: any of its endpoints reaches the same bucket */
  const char *colon = strrchr(host, ':');
  if (colon && strspn(colon + 1, "0123456789") == strlen(colon + 1))
    ; /* a host with an explicit port is nobody's public endpoint */
  else if (ends_with(host, ".aliyuncs.com"))
    snprintf(host, sizeof(host), "Alibaba OSS");
  else if (ends_with(host, ".amazonaws.com"))
    snprintf(host, sizeof(host), "AWS S3");
  snprintf(out, size, "object store %s bucket %s", host, c->storage_bucket);
  return true;
}

/* ---- kafka ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The brokers as a sorted list, and each topic's name on them. */
static bool kafka_places(const struct tg_worker_conf *c, struct tg_conf_places *out,
                         char *errstr, size_t n) {
  char list[sizeof(c->queue.kafka.brokers)], brokers[sizeof(c->queue.kafka.brokers) + 8] = "";
  snprintf(list, sizeof(list), "%s", c->queue.kafka.brokers);
  const char *parts[64];
  int k = 0;
  for (char *save = NULL, *p = strtok_r(list, ", ", &save); p && k < 64;
       p = strtok_r(NULL, ", ", &save))
    parts[k++] = p;
  qsort(parts, (size_t)k, sizeof(parts[0]), cmp_str);
  for (int i = 0; i < k; i++) {
    size_t l = strlen(brokers);
    snprintf(brokers + l, sizeof(brokers) - l, "%s%s", i ? "," : "", parts[i]);
  }
  const char *patterns[4] = {c->queue.kafka.topic_in, c->queue.kafka.topic_retry,
                             c->queue.kafka.topic_out, c->queue.kafka.topic_dlq};
  const char *what[4] = {"input", "retry", "output", "dead-letter"};
  for (int t = 0; t < 4; t++) {
    char name[256], why[300];
    if (!tg_kafka_topic_name(patterns[t], c->env, name, sizeof(name), what[t], why,
                             sizeof(why))) {
      snprintf(errstr, n, "%s", why);
      return false;
    }
    if (*name)
      snprintf(out->kafka[t], sizeof(out->kafka[t]), "kafka %s topic %s", brokers, name);
  }
  return true;
}

/* ---- public ------------------------------------------------------------ */

tg_err_t tg_worker_conf_places(const struct tg_worker_conf *c, struct tg_conf_places *out,
                               char *errstr, size_t n) {
  memset(out, 0, sizeof(*out));
  snprintf(out->env, sizeof(out->env), "%s", c->env);
  if (strcmp(c->queue.backend, "kafka") == 0) {
    if (!kafka_places(c, out, errstr, n))
      return TG_ERR_INVAL;
  } else if (!redis_place(c->queue.redis_url, out->redis, sizeof(out->redis), errstr, n)) {
    return TG_ERR_INVAL;
  }
  if (strcmp(c->storage_backend, "file") == 0) {
    char root[PATH_MAX];
    if (!canon_path(c->storage_root, root, sizeof(root))) {
      snprintf(errstr, n, "storage.root: cannot be made absolute");
      return TG_ERR_INVAL;
    }
    snprintf(out->store, sizeof(out->store), "file");
    snprintf(out->prefix, sizeof(out->prefix), "%s%s%s/", root, strcmp(root, "/") ? "/" : "",
             c->env);
    return TG_OK;
  }
  if (!store_place(c, out->store, sizeof(out->store), errstr, n))
    return TG_ERR_INVAL;
  snprintf(out->prefix, sizeof(out->prefix), "%s%s/", c->storage_prefix, c->env);
  return TG_OK;
}

bool tg_worker_conf_overlap(const struct tg_conf_places *a, const struct tg_conf_places *b,
                            char *why, size_t n) {
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (*a->kafka[i] && strcmp(a->kafka[i], b->kafka[j]) == 0 &&
          strcmp(a->env, b->env) != 0) {
        snprintf(why, n, "envs \"%s\" and \"%s\" share %s", a->env, b->env, a->kafka[i]);
        return true;
      }
  if (*a->redis && strcmp(a->env, b->env) == 0 && strcmp(a->redis, b->redis) == 0) {
    snprintf(why, n, "both serve env \"%s\" on %s: they would share the queues tripgen:{%s}:... "
             "(whatever queue.group says)", a->env, a->redis, a->env);
    return true;
  }
  if (strcmp(a->store, b->store) != 0)
    return false;
  size_t la = strlen(a->prefix), lb = strlen(b->prefix);
  const struct tg_conf_places *outer = la <= lb ? a : b, *inner = la <= lb ? b : a;
  if (strncmp(outer->prefix, inner->prefix, strlen(outer->prefix)) != 0)
    return false;
  if (la == lb)
    snprintf(why, n, "both store under %s%s%s (envs \"%s\" and \"%s\")",
             strcmp(a->store, "file") ? a->store : "", strcmp(a->store, "file") ? " " : "",
             a->prefix, a->env, b->env);
  else
    snprintf(why, n, "the storage prefix %s of env \"%s\" lies inside %s of env \"%s\"%s%s",
             inner->prefix, inner->env, outer->prefix, outer->env,
             strcmp(a->store, "file") ? " in " : "", strcmp(a->store, "file") ? a->store : "");
  return true;
}
