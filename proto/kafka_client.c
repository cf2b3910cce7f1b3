/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kafka_client.c - the shared Kafka client of an environment (see
 * kafka_client.h): librdkafka configuration with pass-through properties
 * and secrets from the environment or files, the producer and its
 * delivery-report thread, the group consumer's thread (poll, buffer,
 * pause at the cap, rebalance, commit the finished prefix, or in
 * exactly_once mode run the transactions that carry results and offsets
 * together), and the group-less readers for depth and watch.
 */
#include "kafka_client.h"
#include "kafka_offsets.h"
#include "tg_file.h"
#include "tg_log.h"
#include "tg_time.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR_NOT_BEFORE "tripgen-not-before"
#define HDR_LAST_CODE "tripgen-last-code"
#define COMMIT_EVERY_MS 100
#define TXN_TIMEOUT_MS 30000
#define TXN_TRIES 5

struct kpart {
  enum tg_ktopic topic;
  int32_t partition;
  bool assigned;
  uint64_t epoch;
  struct tg_offsets offs;       /* received, not finished */
  int64_t committed;            /* last offset the group has (-1: unknown) */
  int64_t commit_sent;          /* last offset sent in a commit */
  bool recommit;                /* exactly_once: the plain commit after the transaction failed */
};

struct knode {                  /* a received message waiting for take() */
  struct knode *next;
  struct tg_kmsg m;
};

struct kout {                   /* exactly_once: a finished message's records */
  struct kout *next;
  struct tg_kpos pos;
  int n_recs;
  struct tg_krec recs[2];       /* key and value owned */
};

struct tg_kclient {
  tg_kclient_t *next;           /* the process's clients */
  int refs;
  char key[2048];
  struct tg_transport_conf conf;
  char topics[TG_KT__COUNT][160];

  rd_kafka_t *prod;
  pthread_t prod_thread;
  rd_kafka_t *cons;             /* the group consumer, from the first take() */
  pthread_t cons_thread;
  rd_kafka_t *meta;             /* no subscription: committed offsets, watermarks */
  rd_kafka_t *reader;           /* no group: tripgen watch */
  atomic_bool quit;

  pthread_mutex_t mu;           /* guards everything below */
  pthread_cond_t ready;         /* a message came, or the client broke */
  pthread_cond_t delivered;     /* a delivery report came */
  struct knode *head, *tail;    /* received, not taken */
  struct kpart *parts;
  size_t n_parts;
  int held;                     /* received and not finished: buffered + running */
  uint64_t next_epoch;
  uint64_t assign_gen;          /* bumped by each assignment change */
  bool paused;                  /* consumer thread only */
  uint64_t paused_gen;
  int paused_now;               /* partitions paused, for stats (under mu) */
  int64_t commit_hold_until;    /* monotonic ms: no periodic commit while the group rebalances */
  int assigns_to_wait;          /* assign callbacks that end a cooperative revoke's hold */
  struct kout *outs;            /* exactly_once: records waiting for their transaction */
  bool broken;
  char broken_why[256];
  bool brokers_down;            /* librdkafka said all brokers are down; cleared by a
                                   metadata request that succeeds */
  pthread_mutex_t txn_mu;       /* one transaction at a time */
};

static void kouts_free(struct kout *o) {
  while (o) {
    struct kout *next = o->next;
    for (int i = 0; i < o->n_recs; i++) {
      free((char *)o->recs[i].key);
      free((char *)o->recs[i].value);
    }
    free(o);
    o = next;
  }
}

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static tg_kclient_t *registry;

/* ---- configuration ------------------------------------------------------ */

bool tg_kafka_secret_name(const char *name) {
  static const char *const words[] = {"password", "secret", "token", "jaas",
                                      "oauthbearer.config", "ssl.key.pem"};
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strstr(name, words[i]))
      return true;
  return false;
}

bool tg_kafka_props_from_json(const json_t *obj, const char *path, char *out, size_t size,
                              char *errstr, size_t n) {
  size_t o = 0;
  const char *name;
  json_t *x;
  out[0] = '\0';
  json_object_foreach((json_t *)obj, name, x) {
    const char *val = json_is_string(x) ? json_string_value(x) : NULL;
    if (!val || !*name || strpbrk(name, "=\n;")) {
      snprintf(errstr, n, "%s.%s: expected a string value and a plain property name", path, name);
      return false;
    }
    bool indirect = strncmp(val, "env:", 4) == 0 || strncmp(val, "file:", 5) == 0;
    if (!indirect && tg_kafka_secret_name(name)) {
      snprintf(errstr, n, "%s.%s: secrets come from the environment or a file: write "
                          "\"env:NAME\" or \"file:PATH\"", path, name);
      return false;
    }
    if (strchr(val, '\n')) {
      snprintf(errstr, n, "%s.%s: a value may not hold a newline", path, name);
      return false;
    }
    int w = snprintf(out + o, size - o, "%s=%s\n", name, val);
    if (w < 0 || (size_t)w >= size - o) {
      snprintf(errstr, n, "%s: longer than %zu bytes", path, size - 1);
      return false;
    }
    o += (size_t)w;
  }
  return true;
}

/* A property whose value must never appear in a message (wider: any key). */
static bool secret_property(const char *name) {
  return tg_kafka_secret_name(name) || strstr(name, "key");
}

static bool conf_set(rd_kafka_conf_t *kc, const char *name, const char *value, char *errstr,
                     size_t n) {
  char why[512];
  if (rd_kafka_conf_set(kc, name, value, why, sizeof(why)) == RD_KAFKA_CONF_OK)
    return true;
  if (secret_property(name))
    snprintf(errstr, n, "kafka property %s: librdkafka refused its value", name);
  else
    snprintf(errstr, n, "kafka property %s: %s", name, why);
  return false;
}

/* "env:NAME" and "file:PATH" values: the secret itself comes from there. */
static bool resolve_value(const char *name, const char *v, char *out, size_t size, char *errstr,
                          size_t n) {
  if (strncmp(v, "env:", 4) == 0) {
    const char *e = getenv(v + 4);
    if (!e || !*e) {
      snprintf(errstr, n, "kafka property %s: environment variable %s is not set", name, v + 4);
      return false;
    }
    snprintf(out, size, "%s", e);
    return true;
  }
  if (strncmp(v, "file:", 5) == 0) {
    char why[256];
    size_t len = 0;
    char *text = tg_read_file(v + 5, size - 1, &len, why, sizeof(why));
    if (!text) {
      snprintf(errstr, n, "kafka property %s: %s: %s", name, v + 5, why);
      return false;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
      text[--len] = '\0';
    snprintf(out, size, "%s", text);
    free(text);
    return true;
  }
  snprintf(out, size, "%s", v);
  return true;
}

/* The user's pass-through properties, "name=value" per line. */
static bool apply_props(rd_kafka_conf_t *kc, const char *props, char *errstr, size_t n) {
  const char *p = props;
  while (*p) {
    const char *eol = strchr(p, '\n');
    size_t l = eol ? (size_t)(eol - p) : strlen(p);
    char line[1024], value[4096];
    if (l >= sizeof(line)) {
      snprintf(errstr, n, "kafka property line too long");
      return false;
    }
    memcpy(line, p, l);
    line[l] = '\0';
    p += l + (eol ? 1 : 0);
    if (!*line)
      continue;
    char *eq = strchr(line, '=');
    if (!eq) {
      snprintf(errstr, n, "kafka property line without '='");
      return false;
    }
    *eq = '\0';
    if (!resolve_value(line, eq + 1, value, sizeof(value), errstr, n) ||
        !conf_set(kc, line, value, errstr, n)) {
      memset(value, 0, sizeof(value));
      return false;
    }
    memset(value, 0, sizeof(value));
  }
  return true;
}

/* librdkafka's own log lines (syslog levels), as logfmt. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  char q[1100];
  int lv = level <= 3 ? TG_ERROR : level <= 4 ? TG_WARN : level <= 6 ? TG_INFO : TG_DEBUG;
  tg_log(lv, "event=kafka_log client=%s facility=%s msg=%s", rk ? rd_kafka_name(rk) : "-", fac,
         tg_logq(q, sizeof(q), buf));
}

/* Settings every client of ours has, then the user's, then what we rely on. */
static rd_kafka_conf_t *client_conf(const tg_kclient_t *c, const char *role,
                                    const char *const *ours, const char *const *enforced,
                                    char *errstr, size_t n) {
  rd_kafka_conf_t *kc = rd_kafka_conf_new();
  rd_kafka_conf_set_log_cb(kc, on_log);
  char id[256];
  snprintf(id, sizeof(id), "tripgen-%s-%s-%s", c->conf.env, role, c->conf.consumer);
  bool ok = conf_set(kc, "bootstrap.servers", c->conf.kafka.brokers, errstr, n) &&
            conf_set(kc, "client.id", id, errstr, n);
  for (const char *const *kv = ours; ok && kv && *kv; kv += 2)
    ok = conf_set(kc, kv[0], kv[1], errstr, n);
  ok = ok && apply_props(kc, c->conf.kafka.props, errstr, n);
  for (const char *const *kv = enforced; ok && kv && *kv; kv += 2)
    ok = conf_set(kc, kv[0], kv[1], errstr, n);
  if (!ok) {
    rd_kafka_conf_destroy(kc);
    return NULL;
  }
  return kc;
}

static void break_client(tg_kclient_t *c, const char *what, const char *detail) {
  pthread_mutex_lock(&c->mu);
  if (!c->broken) {
    c->broken = true;
    snprintf(c->broken_why, sizeof(c->broken_why), "%s: %s", what, detail);
    tg_log(TG_ERROR, "event=kafka_fatal env=%s err=\"%s\"", c->conf.env, c->broken_why);
  }
  pthread_cond_broadcast(&c->ready);
  pthread_mutex_unlock(&c->mu);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  tg_kclient_t *c = opaque;
  char fatal[256];
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
    break_client(c, "fatal kafka error", fatal);
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    pthread_mutex_lock(&c->mu);
    c->brokers_down = true;
    pthread_mutex_unlock(&c->mu);
  }
  tg_log(TG_WARN, "event=kafka_error env=%s client=%s err=%s reason=\"%s\"", c->conf.env,
         rd_kafka_name(rk), rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

/* ---- partitions --------------------------------------------------------- */

static enum tg_ktopic topic_id(const tg_kclient_t *c, const char *name) {
  return *c->topics[TG_KT_RETRY] && strcmp(name, c->topics[TG_KT_RETRY]) == 0 ? TG_KT_RETRY
                                                                                 : TG_KT_IN;
}

/* Under mu. */
static struct kpart *find_part(tg_kclient_t *c, enum tg_ktopic t, int32_t p, bool create) {
  for (size_t i = 0; i < c->n_parts; i++)
    if (c->parts[i].topic == t && c->parts[i].partition == p)
      return &c->parts[i];
  if (!create)
    return NULL;
  struct kpart *parts = realloc(c->parts, (c->n_parts + 1) * sizeof(*parts));
  if (!parts)
    return NULL;
  c->parts = parts;
  struct kpart *x = &parts[c->n_parts++];
  memset(x, 0, sizeof(*x));
  x->topic = t;
  x->partition = p;
  x->committed = x->commit_sent = -1;
  tg_offsets_reset(&x->offs);
  return x;
}

static void kmsg_clear(struct tg_kmsg *m) {
  free(m->key);
  free(m->value);
}

/* Under mu: a partition is no longer ours; what it buffered goes. */
static void drop_partition(tg_kclient_t *c, struct kpart *x) {
  for (struct knode **pp = &c->head; *pp;) {
    struct knode *k = *pp;
    if (k->m.pos.topic == x->topic && k->m.pos.partition == x->partition) {
      *pp = k->next;
      kmsg_clear(&k->m);
      free(k);
    } else {
      pp = &k->next;
    }
  }
  c->tail = NULL;
  for (struct knode *k = c->head; k; k = k->next)
    c->tail = k;
  struct kout *gone = NULL;
  for (struct kout **pp = &c->outs; *pp;) {
    struct kout *o = *pp;
    if (o->pos.topic == x->topic && o->pos.partition == x->partition) {
      *pp = o->next;
      o->next = gone;
      gone = o;
    } else {
      pp = &o->next;
    }
  }
  kouts_free(gone);
  c->held -= (int)tg_offsets_open_count(&x->offs);
  tg_offsets_reset(&x->offs);
  x->assigned = false;
  x->committed = x->commit_sent = -1;
  x->recommit = false;
}

/* ---- producing ---------------------------------------------------------- */

struct dr_slot {                /* one record's delivery report */
  tg_kclient_t *c;
  int *pending;
  rd_kafka_resp_err_t err;
  int64_t offset;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  struct dr_slot *s = m->_private;
  if (!s)
    return;
  tg_kclient_t *c = opaque;
  pthread_mutex_lock(&c->mu);
  s->err = m->err;
  s->offset = m->offset;
  (*s->pending)--;
  pthread_cond_broadcast(&c->delivered);
  pthread_mutex_unlock(&c->mu);
}

static void *producer_main(void *arg) {
  tg_kclient_t *c = arg;
  while (!atomic_load(&c->quit))
    rd_kafka_poll(c->prod, 100);
  return NULL;
}

/* Hand a record to librdkafka (waits while its queue is full). */
static rd_kafka_resp_err_t send_record(tg_kclient_t *c, const struct tg_krec *r,
                                       struct dr_slot *slot) {
  char nb[32], lc[16];
  snprintf(nb, sizeof(nb), "%lld", (long long)r->not_before_ms);
  snprintf(lc, sizeof(lc), "%d", r->last_code);
  rd_kafka_headers_t *h = rd_kafka_headers_new(2);
  if (r->not_before_ms > 0)
    rd_kafka_header_add(h, HDR_NOT_BEFORE, -1, nb, -1);
  if (r->last_code > 0)
    rd_kafka_header_add(h, HDR_LAST_CODE, -1, lc, -1);
  const char *topic = c->topics[r->topic];
  if (r->topic == TG_KT_RETRY && !*topic)
    topic = c->topics[TG_KT_IN];
  for (int tries = 0;; tries++) {
    rd_kafka_resp_err_t err = rd_kafka_producev(
        c->prod, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(r->key, r->key ? strlen(r->key) : 0),
        RD_KAFKA_V_VALUE((void *)r->value, r->len), RD_KAFKA_V_HEADERS(h),
        RD_KAFKA_V_OPAQUE(slot), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return err; /* the headers belong to the message now */
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || tries >= 500) {
      rd_kafka_headers_destroy(h);
      return err;
    }
    tg_sleep_ms(10);
  }
}

tg_err_t tg_kclient_produce(tg_kclient_t *c, const struct tg_krec *recs, int count,
                            int64_t *offsets, tg_err_t *errs, char *errstr, size_t n) {
  if (c->conf.kafka.exactly_once) {
    snprintf(errstr, n, "kafka: an exactly_once client produces only in its transactions");
    return TG_ERR_INVAL;
  }
  struct dr_slot *slots = calloc((size_t)count, sizeof(*slots));
  if (!slots) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int pending = 0;
  tg_err_t first = TG_OK;
  for (int i = 0; i < count; i++) {
    slots[i] = (struct dr_slot){c, &pending, RD_KAFKA_RESP_ERR__IN_PROGRESS, -1};
    pthread_mutex_lock(&c->mu);
    pending++;
    pthread_mutex_unlock(&c->mu);
    rd_kafka_resp_err_t err = send_record(c, &recs[i], &slots[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      pthread_mutex_lock(&c->mu);
      pending--;
      slots[i].err = err;
      pthread_mutex_unlock(&c->mu);
    }
  }
  pthread_mutex_lock(&c->mu); /* message.timeout.ms bounds the wait: every record gets a report */
  while (pending > 0)
    pthread_cond_wait(&c->delivered, &c->mu);
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < count; i++) {
    tg_err_t e = slots[i].err == RD_KAFKA_RESP_ERR_NO_ERROR ? TG_OK : TG_ERR_TRANSPORT;
    if (offsets)
      offsets[i] = e == TG_OK ? slots[i].offset : -1;
    if (errs)
      errs[i] = e;
    if (e != TG_OK && first == TG_OK) {
      first = e;
      snprintf(errstr, n, "kafka produce to %s: %s", c->topics[recs[i].topic],
               rd_kafka_err2str(slots[i].err));
    }
  }
  free(slots);
  return first;
}

/* ---- the group consumer ------------------------------------------------- */

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf, size_t size) {
  rd_kafka_headers_t *h = NULL;
  const void *v;
  size_t l;
  if (rd_kafka_message_headers(m, &h) || !h ||
      rd_kafka_header_get_last(h, name, &v, &l) != RD_KAFKA_RESP_ERR_NO_ERROR || !v ||
      l >= size)
    return NULL;
  memcpy(buf, v, l);
  buf[l] = '\0';
  return buf;
}

static bool kmsg_fill(struct tg_kmsg *out, const rd_kafka_message_t *m, size_t max_len) {
  memset(out, 0, sizeof(*out));
  size_t keep = m->len > max_len ? 0 : m->len; /* too large: only its length is kept */
  out->value = malloc(keep + 1);
  if (!out->value)
    return false;
  if (keep)
    memcpy(out->value, m->payload, keep);
  out->value[keep] = '\0';
  out->len = m->len;
  if (m->key) {
    if (!(out->key = malloc(m->key_len + 1))) {
      free(out->value);
      return false;
    }
    memcpy(out->key, m->key, m->key_len);
    out->key[m->key_len] = '\0';
  }
  out->pos.partition = m->partition;
  out->pos.offset = m->offset;
  rd_kafka_timestamp_type_t tt;
  out->timestamp_ms = rd_kafka_message_timestamp(m, &tt);
  char nb[32];
  if (header(m, HDR_NOT_BEFORE, nb, sizeof(nb)))
    out->not_before_ms = strtoll(nb, NULL, 10);
  return true;
}

static void on_message(tg_kclient_t *c, const rd_kafka_message_t *m) {
  if (m->err) {
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
      tg_log(TG_WARN, "event=kafka_consume_error env=%s err=\"%s\"", c->conf.env,
             rd_kafka_message_errstr(m));
    return;
  }
  struct knode *k = malloc(sizeof(*k));
  if (!k || !kmsg_fill(&k->m, m, TG_MAX_PAYLOAD_BYTES)) {
    free(k); /* a gap the watermark could pass: stop, a restart reads from the commit */
    break_client(c, "kafka consumer", "out of memory while buffering a record");
    return;
  }
  k->next = NULL;
  k->m.pos.topic = topic_id(c, rd_kafka_topic_name(m->rkt));
  pthread_mutex_lock(&c->mu);
  struct kpart *x = find_part(c, k->m.pos.topic, m->partition, false);
  if (!x || !x->assigned || !tg_offsets_add(&x->offs, m->offset)) {
    pthread_mutex_unlock(&c->mu); /* revoked meanwhile, or seen already */
    kmsg_clear(&k->m);
    free(k);
    return;
  }
  k->m.pos.epoch = x->epoch;
  c->held++;
  if (c->tail)
    c->tail->next = k;
  else
    c->head = k;
  c->tail = k;
  pthread_cond_broadcast(&c->ready);
  pthread_mutex_unlock(&c->mu);
}

static rd_kafka_topic_partition_list_t *progress_list(tg_kclient_t *c, bool only_revoked,
                                                      const rd_kafka_topic_partition_list_t *of) {
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
  for (size_t i = 0; i < c->n_parts; i++) {
    struct kpart *x = &c->parts[i];
    if (!x->assigned)
      continue;
    if (only_revoked &&
        !rd_kafka_topic_partition_list_find(of, c->topics[x->topic], x->partition))
      continue;
    int64_t w = tg_offsets_watermark(&x->offs);
    if (w >= 0 && (w > x->commit_sent || x->recommit))
      rd_kafka_topic_partition_list_add(l, c->topics[x->topic], x->partition)->offset = w;
  }
  return l;
}

static void mark_sent(tg_kclient_t *c, const rd_kafka_topic_partition_list_t *l, bool done) {
  for (int i = 0; i < l->cnt; i++) {
    struct kpart *x = find_part(c, topic_id(c, l->elems[i].topic), l->elems[i].partition, false);
    if (x) {
      x->commit_sent = l->elems[i].offset;
      if (done)
        x->committed = l->elems[i].offset;
    }
  }
}

/* exactly_once: whether the plain commit after a transaction must be made
 * again (it failed, e.g. during a rebalance): the next round then runs an
 * offsets-only transaction for those partitions, which changes nothing on a
 * real cluster and lets the mock cluster see the offsets. */
static void mark_recommit(tg_kclient_t *c, const rd_kafka_topic_partition_list_t *l, bool again) {
  for (int i = 0; i < l->cnt; i++) {
    struct kpart *x = find_part(c, topic_id(c, l->elems[i].topic), l->elems[i].partition, false);
    if (x)
      x->recommit = again;
  }
}

static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *l, void *opaque) {
  (void)rk;
  tg_kclient_t *c = opaque;
  if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return;
  pthread_mutex_lock(&c->mu);
  bool rebalancing = err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
                     err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION;
  for (int i = 0; l && i < l->cnt; i++)
    rebalancing = rebalancing || l->elems[i].err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
                  l->elems[i].err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION;
  if (rebalancing) /* a commit with the old generation would make librdkafka drop the
                      whole assignment: wait for the rebalance to finish */
    c->commit_hold_until = tg_mono_ms() + c->conf.kafka.session_timeout_ms;
  for (int i = 0; l && i < l->cnt; i++) {
    struct kpart *x = find_part(c, topic_id(c, l->elems[i].topic), l->elems[i].partition, false);
    if (!x)
      continue;
    if (!err && !l->elems[i].err && l->elems[i].offset > x->committed)
      x->committed = l->elems[i].offset;
    else if (err || l->elems[i].err)
      x->commit_sent = x->committed; /* sent again on the next round */
  }
  pthread_mutex_unlock(&c->mu);
  if (err)
    tg_log(TG_WARN, "event=kafka_commit_failed env=%s err=\"%s\" (retried)", c->conf.env,
           rd_kafka_err2str(err));
}

/* What is left of a transaction's time budget for one call, at most
 * TXN_TIMEOUT_MS (0: none left). */
static int txn_wait(int64_t until) {
  int64_t left = until - tg_mono_ms();
  return left <= 0 ? 0 : left > TXN_TIMEOUT_MS ? TXN_TIMEOUT_MS : (int)left;
}

/* exactly_once: produce the records of finished messages below the
 * watermark and commit the watermark, in one transaction. */
static void run_transaction(tg_kclient_t *c, bool only_revoked,
                            const rd_kafka_topic_partition_list_t *of) {
  pthread_mutex_lock(&c->txn_mu);
  pthread_mutex_lock(&c->mu);
  rd_kafka_topic_partition_list_t *l = progress_list(c, only_revoked, of);
  struct kout *take = NULL, **tail = &take;
  for (struct kout **pp = &c->outs; *pp;) { /* the records of offsets below the watermark */
    struct kout *o = *pp;
    rd_kafka_topic_partition_t *e =
        rd_kafka_topic_partition_list_find(l, c->topics[o->pos.topic], o->pos.partition);
    if (e && o->pos.offset < e->offset) {
      *pp = o->next;
      o->next = NULL;
      *tail = o;
      tail = &o->next;
    } else {
      pp = &o->next;
    }
  }
  bool broken = c->broken;
  pthread_mutex_unlock(&c->mu);
  if (l->cnt == 0 || broken) {
    rd_kafka_topic_partition_list_destroy(l);
    pthread_mutex_lock(&c->mu); /* put back what was taken (nothing when l is empty) */
    *tail = c->outs;
    c->outs = take;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->txn_mu);
    return;
  }
  /* the whole round, retries included, stays well inside max.poll.interval.ms:
   * this thread is the one that polls */
  int64_t until = tg_mono_ms() + c->conf.kafka.max_poll_interval_ms / 3;
  rd_kafka_error_t *e = rd_kafka_begin_transaction(c->prod);
  bool begun = !e, committing = false;
  int records = 0;
  for (struct kout *o = take; !e && o; o = o->next)
    for (int i = 0; i < o->n_recs; i++, records++)
      if (!e && send_record(c, &o->recs[i], NULL) != RD_KAFKA_RESP_ERR_NO_ERROR)
        e = rd_kafka_error_new(RD_KAFKA_RESP_ERR__STATE, "produce refused");
  rd_kafka_consumer_group_metadata_t *md = e ? NULL : rd_kafka_consumer_group_metadata(c->cons);
  for (int tries = 0; !e; tries++) { /* a retriable error: call again while time is left */
    e = rd_kafka_send_offsets_to_transaction(c->prod, l, md, txn_wait(until));
    if (!e || !rd_kafka_error_is_retriable(e) || tries + 1 >= TXN_TRIES || !txn_wait(until))
      break;
    rd_kafka_error_destroy(e);
    e = NULL;
  }
  if (md)
    rd_kafka_consumer_group_metadata_destroy(md);
  for (int tries = 0; !e; tries++) {
    committing = true;
    e = rd_kafka_commit_transaction(c->prod, txn_wait(until));
    if (!e || !rd_kafka_error_is_retriable(e) || tries + 1 >= TXN_TRIES || !txn_wait(until))
      break;
    rd_kafka_error_destroy(e);
    e = NULL;
  }
  if (!e) {
    pthread_mutex_lock(&c->mu);
    mark_sent(c, l, true);
    pthread_mutex_unlock(&c->mu);
    /* The same offsets once more, outside the transaction: on a real cluster
     * this rewrites what the transaction committed; librdkafka 2.0.2's mock
     * cluster ignores transactional offset commits, and the tests need them */
    rd_kafka_resp_err_t ce = rd_kafka_commit(c->cons, l, 0);
    pthread_mutex_lock(&c->mu);
    mark_recommit(c, l, ce != RD_KAFKA_RESP_ERR_NO_ERROR);
    pthread_mutex_unlock(&c->mu);
    if (ce)
      tg_log(TG_WARN, "event=kafka_commit_failed env=%s err=\"%s\" (after the transaction; "
             "made again next round)", c->conf.env, rd_kafka_err2str(ce));
    kouts_free(take);
    tg_log(TG_DEBUG, "event=kafka_transaction_committed env=%s records=%d partitions=%d",
           c->conf.env, records, l->cnt);
  } else {
    tg_log(TG_WARN, "event=kafka_transaction_failed env=%s err=\"%s\"", c->conf.env,
           rd_kafka_error_string(e));
    /* Aborted, the records wait for the next round. A commit whose outcome
     * is unknown (retries ran out) must not be aborted nor repeated with
     * these records: the client stops, and a restart's init_transactions
     * settles it (the records' jobs run again if it did not commit). mu is
     * not held here: an abort flushes, which serves callbacks that take it. */
    bool settled = false;
    if (!rd_kafka_error_is_fatal(e) && begun && !(committing && rd_kafka_error_is_retriable(e))) {
      rd_kafka_error_t *a = NULL;
      int64_t abort_until = tg_mono_ms() + TXN_TIMEOUT_MS;
      for (int tries = 0; tries < TXN_TRIES; tries++) {
        if (a)
          rd_kafka_error_destroy(a);
        if (!(a = rd_kafka_abort_transaction(c->prod, txn_wait(abort_until))) ||
            !rd_kafka_error_is_retriable(a) || !txn_wait(abort_until))
          break;
      }
      settled = !a;
      if (a) {
        tg_log(TG_WARN, "event=kafka_abort_failed env=%s err=\"%s\"", c->conf.env,
               rd_kafka_error_string(a));
        rd_kafka_error_destroy(a);
      }
    } else if (!begun && !rd_kafka_error_is_fatal(e)) {
      settled = true; /* nothing was begun: nothing to undo */
    }
    if (settled) {
      pthread_mutex_lock(&c->mu);
      *tail = c->outs;
      c->outs = take;
      pthread_mutex_unlock(&c->mu);
    } else {
      kouts_free(take);
      break_client(c, "kafka transaction", rd_kafka_error_string(e));
    }
    rd_kafka_error_destroy(e);
  }
  rd_kafka_topic_partition_list_destroy(l);
  pthread_mutex_unlock(&c->txn_mu);
}

/* Commit the finished prefix of every partition (or only of @of). */
static void commit_progress(tg_kclient_t *c, bool sync, const rd_kafka_topic_partition_list_t *of) {
  if (c->conf.kafka.exactly_once) {
    run_transaction(c, of != NULL, of);
    return;
  }
  pthread_mutex_lock(&c->mu);
  rd_kafka_topic_partition_list_t *l = progress_list(c, of != NULL, of);
  if (l->cnt)
    mark_sent(c, l, false);
  pthread_mutex_unlock(&c->mu);
  if (l->cnt) {
    rd_kafka_resp_err_t err = rd_kafka_commit(c->cons, l, sync ? 0 : 1);
    if (sync) {
      pthread_mutex_lock(&c->mu);
      if (!err)
        mark_sent(c, l, true);
      pthread_mutex_unlock(&c->mu);
      if (err)
        tg_log(TG_WARN, "event=kafka_commit_failed env=%s err=\"%s\"", c->conf.env,
               rd_kafka_err2str(err));
    }
  }
  rd_kafka_topic_partition_list_destroy(l);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  tg_kclient_t *c = opaque;
  bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  /* Commits carry the group generation; one sent while the group rebalances
   * fails with ILLEGAL_GENERATION, and librdkafka 2.0.2 then drops the whole
   * assignment. So the periodic commit pauses from a refused commit or a
   * cooperative revoke (a second join follows it) until partitions come. */
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS &&
      (!coop || c->assigns_to_wait <= 0 || --c->assigns_to_wait == 0))
    c->commit_hold_until = 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < parts->cnt; i++) {
      struct kpart *x =
          find_part(c, topic_id(c, parts->elems[i].topic), parts->elems[i].partition, true);
      if (x) {
        if (x->assigned)
          drop_partition(c, x);
        x->assigned = true;
        x->epoch = ++c->next_epoch;
      }
    }
    c->assign_gen++;
    pthread_mutex_unlock(&c->mu);
    rd_kafka_error_t *e = NULL;
    if (coop)
      e = rd_kafka_incremental_assign(rk, parts);
    else
      rd_kafka_assign(rk, parts);
    /* a pause from before an unassign stays on the partition: start clean,
     * apply_pause pauses them again when the client is at its cap */
    rd_kafka_resume_partitions(rk, parts);
    if (e) {
      tg_log(TG_WARN, "event=kafka_assign_failed err=\"%s\"", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
    }
    tg_log(TG_INFO, "event=kafka_assigned env=%s partitions=%d protocol=%s", c->conf.env,
           parts->cnt, coop ? "cooperative" : "eager");
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    /* what is finished is committed; running jobs of these partitions are
     * abandoned (their lease checks fail) and never committed past */
    if (!rd_kafka_assignment_lost(rk))
      commit_progress(c, true, parts);
    int abandoned = 0;
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < parts->cnt; i++) {
      struct kpart *x =
          find_part(c, topic_id(c, parts->elems[i].topic), parts->elems[i].partition, false);
      if (x && x->assigned) {
        abandoned += (int)tg_offsets_open_count(&x->offs);
        drop_partition(c, x);
      }
    }
    c->assign_gen++;
    pthread_mutex_unlock(&c->mu);
    tg_log(TG_INFO, "event=kafka_revoked env=%s partitions=%d abandoned=%d", c->conf.env,
           parts->cnt, abandoned);
    if (coop) { /* the same round's (empty) assign, then the rejoin's */
      c->commit_hold_until = tg_mono_ms() + c->conf.kafka.session_timeout_ms;
      c->assigns_to_wait = 2;
      rd_kafka_error_t *e = rd_kafka_incremental_unassign(rk, parts);
      if (e)
        rd_kafka_error_destroy(e);
    } else {
      rd_kafka_assign(rk, NULL);
    }
    return;
  }
  tg_log(TG_WARN, "event=kafka_rebalance_error env=%s err=\"%s\"", c->conf.env,
         rd_kafka_err2str(err));
  rd_kafka_assign(rk, NULL);
}

static bool at_cap(tg_kclient_t *c) {
  pthread_mutex_lock(&c->mu);
  bool full = c->held >= c->conf.kafka.max_in_flight;
  pthread_mutex_unlock(&c->mu);
  return full;
}

/* Pause every assigned partition while the client holds max_in_flight
 * messages, resume when room frees: polling goes on either way. */
static void apply_pause(tg_kclient_t *c) {
  pthread_mutex_lock(&c->mu);
  bool want = c->held >= c->conf.kafka.max_in_flight;
  bool act = want != c->paused || c->paused_gen != c->assign_gen;
  int held = c->held;
  uint64_t gen = c->assign_gen;
  pthread_mutex_unlock(&c->mu);
  if (!act)
    return;
  rd_kafka_topic_partition_list_t *l = NULL;
  if (rd_kafka_assignment(c->cons, &l) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return;
  if (want)
    rd_kafka_pause_partitions(c->cons, l);
  else
    rd_kafka_resume_partitions(c->cons, l);
  if (want != c->paused)
    tg_log(TG_INFO, "event=kafka_%s env=%s held=%d partitions=%d", want ? "paused" : "resumed",
           c->conf.env, held, l->cnt);
  pthread_mutex_lock(&c->mu);
  c->paused_now = want ? l->cnt : 0;
  pthread_mutex_unlock(&c->mu);
  rd_kafka_topic_partition_list_destroy(l);
  c->paused = want;
  c->paused_gen = gen;
}

/* While all brokers are down, ask for metadata now and then: an answer
 * means they are back (take() fails meanwhile, so the worker is not ready). */
static void check_brokers(tg_kclient_t *c, int64_t *next_check) {
  pthread_mutex_lock(&c->mu);
  bool down = c->brokers_down;
  pthread_mutex_unlock(&c->mu);
  int64_t now = tg_mono_ms();
  if (!down || now < *next_check)
    return;
  *next_check = now + 1000;
  const struct rd_kafka_metadata *md = NULL;
  if (rd_kafka_metadata(c->cons, 0, NULL, &md, 1000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return;
  rd_kafka_metadata_destroy(md);
  pthread_mutex_lock(&c->mu);
  c->brokers_down = false;
  pthread_mutex_unlock(&c->mu);
  tg_log(TG_INFO, "event=kafka_brokers_up env=%s", c->conf.env);
}

static void *consumer_main(void *arg) {
  tg_kclient_t *c = arg;
  int64_t next_commit = 0, next_broker_check = 0;
  while (!atomic_load(&c->quit)) {
    check_brokers(c, &next_broker_check);
    /* every message polled is recorded (librdkafka's position has passed it);
     * a batch stops at 256 or at the cap, where the partitions pause */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->cons, 50);
    for (int i = 0; m; i++) {
      on_message(c, m);
      rd_kafka_message_destroy(m);
      m = i + 1 < 256 && !at_cap(c) ? rd_kafka_consumer_poll(c->cons, 0) : NULL;
    }
    apply_pause(c);
    int64_t now = tg_mono_ms();
    if (now >= next_commit && now >= c->commit_hold_until) {
      commit_progress(c, false, NULL);
      next_commit = now + COMMIT_EVERY_MS;
    }
  }
  return NULL;
}

static bool start_consumer(tg_kclient_t *c, char *errstr, size_t n) {
  pthread_mutex_lock(&registry_mu); /* guards the lazy start */
  if (c->cons) {
    pthread_mutex_unlock(&registry_mu);
    return true;
  }
  const struct tg_kafka_conf *k = &c->conf.kafka;
  char group[160], session[24], poll[24], hb[24];
  snprintf(group, sizeof(group), "tripgen-%s-%s", c->conf.env, c->conf.group);
  snprintf(session, sizeof(session), "%lld", (long long)k->session_timeout_ms);
  snprintf(poll, sizeof(poll), "%lld", (long long)k->max_poll_interval_ms);
  snprintf(hb, sizeof(hb), "%lld",
           (long long)(k->session_timeout_ms / 3 < 3000 ? k->session_timeout_ms / 3 : 3000));
  const char *ours[] = {"partition.assignment.strategy", "cooperative-sticky",
                        "auto.offset.reset", "earliest", "session.timeout.ms", session,
                        "heartbeat.interval.ms", hb, "max.poll.interval.ms", poll, NULL};
  const char *enforced[] = {"group.id", group, "enable.auto.commit", "false",
                            "enable.auto.offset.store", "false", "isolation.level",
                            "read_committed", "enable.partition.eof", "false",
                            *k->instance_id ? "group.instance.id" : NULL, k->instance_id, NULL};
  rd_kafka_conf_t *kc = client_conf(c, "consumer", ours, enforced, errstr, n);
  if (!kc) {
    pthread_mutex_unlock(&registry_mu);
    return false;
  }
  rd_kafka_conf_set_opaque(kc, c);
  rd_kafka_conf_set_rebalance_cb(kc, on_rebalance);
  rd_kafka_conf_set_offset_commit_cb(kc, on_commit);
  rd_kafka_conf_set_error_cb(kc, on_error);
  char why[512];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
  if (!rk) {
    rd_kafka_conf_destroy(kc);
    snprintf(errstr, n, "kafka consumer: %s", why);
    pthread_mutex_unlock(&registry_mu);
    return false;
  }
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
  rd_kafka_topic_partition_list_add(topics, c->topics[TG_KT_IN], RD_KAFKA_PARTITION_UA);
  if (*c->topics[TG_KT_RETRY])
    rd_kafka_topic_partition_list_add(topics, c->topics[TG_KT_RETRY], RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (err) {
    snprintf(errstr, n, "kafka subscribe: %s", rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
    pthread_mutex_unlock(&registry_mu);
    return false;
  }
  c->cons = rk; /* before the thread that polls it */
  if (pthread_create(&c->cons_thread, NULL, consumer_main, c) != 0) {
    c->cons = NULL;
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    snprintf(errstr, n, "kafka consumer: cannot start its thread");
    pthread_mutex_unlock(&registry_mu);
    return false;
  }
  pthread_mutex_unlock(&registry_mu);
  tg_log(TG_INFO, "event=kafka_consumer_started env=%s group=%s topic=%s exactly_once=%s",
         c->conf.env, group, c->topics[TG_KT_IN], k->exactly_once ? "true" : "false");
  return true;
}

tg_err_t tg_kclient_take(tg_kclient_t *c, int max, int timeout_ms, struct tg_kmsg **out,
                         int *n_out, char *errstr, size_t n) {
  *out = NULL;
  *n_out = 0;
  if (!start_consumer(c, errstr, n))
    return TG_ERR_TRANSPORT;
  struct tg_kmsg *arr = calloc((size_t)max, sizeof(*arr));
  if (!arr) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int64_t until = tg_mono_ms() + timeout_ms;
  int got = 0;
  pthread_mutex_lock(&c->mu);
  for (;;) {
    if (c->broken) {
      snprintf(errstr, n, "%s", c->broken_why);
      pthread_mutex_unlock(&c->mu);
      free(arr);
      return TG_ERR_TRANSPORT;
    }
    int64_t now = tg_now_ms(), soonest = 0;
    c->tail = NULL;
    for (struct knode **pp = &c->head; *pp;) {
      struct knode *k = *pp;
      if (got < max && k->m.not_before_ms <= now) {
        *pp = k->next;
        arr[got++] = k->m;
        free(k);
        continue;
      }
      if (k->m.not_before_ms > now && (!soonest || k->m.not_before_ms < soonest))
        soonest = k->m.not_before_ms;
      c->tail = k;
      pp = &k->next;
    }
    int64_t left = until - tg_mono_ms();
    if (got > 0 || left <= 0)
      break;
    if (c->brokers_down) {
      snprintf(errstr, n, "kafka: all brokers are down (%s)", c->conf.kafka.brokers);
      pthread_mutex_unlock(&c->mu);
      free(arr);
      return TG_ERR_TRANSPORT;
    }
    if (soonest && soonest - now < left)
      left = soonest - now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&c->ready, &c->mu, &ts);
  }
  pthread_mutex_unlock(&c->mu);
  if (!got) {
    free(arr);
    arr = NULL;
  }
  *out = arr;
  *n_out = got;
  return TG_OK;
}

void tg_kmsgs_free(struct tg_kmsg *m, int n) {
  for (int i = 0; m && i < n; i++)
    kmsg_clear(&m[i]);
  free(m);
}

bool tg_kclient_current(tg_kclient_t *c, const struct tg_kpos *pos) {
  pthread_mutex_lock(&c->mu);
  struct kpart *x = find_part(c, pos->topic, pos->partition, false);
  bool ok = x && x->assigned && x->epoch == pos->epoch && !c->broken;
  pthread_mutex_unlock(&c->mu);
  return ok;
}

/* Under mu: the offset is finished (false: its partition moved on). */
static bool mark_done(tg_kclient_t *c, const struct tg_kpos *pos) {
  struct kpart *x = find_part(c, pos->topic, pos->partition, false);
  if (!x || !x->assigned || x->epoch != pos->epoch)
    return false;
  if (tg_offsets_done(&x->offs, pos->offset))
    c->held--;
  return true;
}

static tg_err_t queue_outputs(tg_kclient_t *c, const struct tg_kpos *pos,
                              const struct tg_krec *recs, int n_recs) {
  struct kout *o = calloc(1, sizeof(*o));
  if (!o)
    return TG_ERR_NOMEM;
  o->pos = *pos;
  for (int i = 0; i < n_recs && i < 2; i++) { /* own copies, which kouts_free frees */
    struct tg_krec *r = &o->recs[o->n_recs++];
    *r = recs[i];
    r->key = recs[i].key ? strdup(recs[i].key) : NULL;
    char *v = malloc(recs[i].len + 1);
    if (v) {
      memcpy(v, recs[i].value, recs[i].len);
      v[recs[i].len] = '\0';
    }
    r->value = v;
    if (!v || (recs[i].key && !r->key)) {
      kouts_free(o);
      return TG_ERR_NOMEM;
    }
  }
  pthread_mutex_lock(&c->mu);
  if (!mark_done(c, pos)) {
    pthread_mutex_unlock(&c->mu);
    kouts_free(o);
    return TG_ERR_NOT_FOUND;
  }
  o->next = c->outs;
  c->outs = o;
  pthread_mutex_unlock(&c->mu);
  return TG_OK;
}

tg_err_t tg_kclient_finish(tg_kclient_t *c, const struct tg_kpos *pos,
                           const struct tg_krec *const *recs, const int *n_recs, int count,
                           tg_err_t *errs, char *errstr, size_t n) {
  tg_err_t first = TG_OK;
  char why[512] = "";
  if (c->conf.kafka.exactly_once) {
    for (int i = 0; i < count; i++) {
      errs[i] = queue_outputs(c, &pos[i], recs[i], n_recs[i]);
      if (errs[i] != TG_OK && first == TG_OK) {
        first = errs[i];
        snprintf(why, sizeof(why), "%s",
                 errs[i] == TG_ERR_NOT_FOUND ? "partition revoked: the job is abandoned"
                                             : "out of memory");
      }
    }
    if (first != TG_OK)
      snprintf(errstr, n, "%s", why);
    return first;
  }
  int total = 0;
  for (int i = 0; i < count; i++)
    total += n_recs[i];
  struct tg_krec *flat = calloc((size_t)total + 1, sizeof(*flat));
  tg_err_t *rerr = calloc((size_t)total + 1, sizeof(*rerr));
  int *live = calloc((size_t)count, sizeof(*live));
  if (!flat || !rerr || !live) {
    free(flat);
    free(rerr);
    free(live);
    snprintf(errstr, n, "out of memory");
    for (int i = 0; i < count; i++)
      errs[i] = TG_ERR_NOMEM;
    return TG_ERR_NOMEM;
  }
  int k = 0;
  for (int i = 0; i < count; i++) { /* a revoked partition's job publishes nothing */
    live[i] = tg_kclient_current(c, &pos[i]);
    for (int j = 0; live[i] && j < n_recs[i]; j++)
      flat[k++] = recs[i][j];
  }
  if (k > 0)
    tg_kclient_produce(c, flat, k, NULL, rerr, why, sizeof(why));
  k = 0;
  for (int i = 0; i < count; i++) {
    tg_err_t e = live[i] ? TG_OK : TG_ERR_NOT_FOUND;
    for (int j = 0; live[i] && j < n_recs[i]; j++, k++)
      if (rerr[k] != TG_OK)
        e = rerr[k];
    if (e == TG_OK) {
      pthread_mutex_lock(&c->mu);
      if (!mark_done(c, &pos[i]))
        e = TG_ERR_NOT_FOUND; /* revoked while delivering: its next owner runs it again */
      pthread_mutex_unlock(&c->mu);
    }
    errs[i] = e;
    if (e != TG_OK && first == TG_OK) {
      first = e;
      snprintf(errstr, n, "%s",
               e == TG_ERR_NOT_FOUND ? "partition revoked: the job is abandoned" : why);
    }
  }
  free(flat);
  free(rerr);
  free(live);
  return first;
}

/* ---- group-less readers ------------------------------------------------- */

static rd_kafka_t *plain_consumer(tg_kclient_t *c, const char *role, char *errstr, size_t n) {
  char group[200];
  snprintf(group, sizeof(group), "tripgen-%s-%s", c->conf.env, c->conf.group);
  const char *enforced[] = {"group.id", group, "enable.auto.commit", "false",
                            "enable.auto.offset.store", "false", "isolation.level",
                            "read_committed", "enable.partition.eof", "false", NULL};
  rd_kafka_conf_t *kc = client_conf(c, role, NULL, enforced, errstr, n);
  if (!kc)
    return NULL;
  rd_kafka_conf_set_opaque(kc, c);
  char why[512];
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, why, sizeof(why));
  if (!rk) {
    rd_kafka_conf_destroy(kc);
    snprintf(errstr, n, "kafka %s: %s", role, why);
  }
  return rk;
}

/* The partitions of a topic. */
static int partitions_of(tg_kclient_t *c, rd_kafka_t *rk, const char *topic, char *errstr,
                         size_t n) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t err =
      rkt ? rd_kafka_metadata(rk, 0, rkt, &md, (int)c->conf.command_timeout_ms)
          : RD_KAFKA_RESP_ERR__INVALID_ARG;
  int count = -1;
  if (!err && md->topic_cnt == 1 && !md->topics[0].err)
    count = md->topics[0].partition_cnt;
  else
    snprintf(errstr, n, "kafka metadata of %s: %s", topic,
             rd_kafka_err2str(err ? err : md->topic_cnt ? md->topics[0].err
                                                        : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
  if (md)
    rd_kafka_metadata_destroy(md);
  if (rkt)
    rd_kafka_topic_destroy(rkt);
  return count;
}

tg_err_t tg_kclient_lag(tg_kclient_t *c, enum tg_ktopic t, bool group, int64_t *out,
                        char *errstr, size_t n) {
  *out = 0;
  const char *topic = c->topics[t];
  if (!*topic)
    return TG_OK;
  pthread_mutex_lock(&registry_mu);
  if (!c->meta && !(c->meta = plain_consumer(c, "meta", errstr, n))) {
    pthread_mutex_unlock(&registry_mu);
    return TG_ERR_TRANSPORT;
  }
  pthread_mutex_unlock(&registry_mu);
  int parts = partitions_of(c, c->meta, topic, errstr, n);
  if (parts < 0)
    return TG_ERR_TRANSPORT;
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; p++)
    rd_kafka_topic_partition_list_add(l, topic, p);
  rd_kafka_resp_err_t err =
      group ? rd_kafka_committed(c->meta, l, (int)c->conf.command_timeout_ms) : 0;
  for (int i = 0; !err && i < l->cnt; i++) {
    int64_t lo, hi;
    err = rd_kafka_query_watermark_offsets(c->meta, topic, l->elems[i].partition, &lo, &hi,
                                           (int)c->conf.command_timeout_ms);
    int64_t from = group && l->elems[i].offset >= 0 ? l->elems[i].offset : lo;
    if (!err && hi > from)
      *out += hi - from;
  }
  rd_kafka_topic_partition_list_destroy(l);
  if (err) {
    snprintf(errstr, n, "kafka offsets of %s: %s", topic, rd_kafka_err2str(err));
    return TG_ERR_TRANSPORT;
  }
  return TG_OK;
}

tg_err_t tg_kclient_read(tg_kclient_t *c, enum tg_ktopic t, bool beginning, int max,
                         int timeout_ms, struct tg_kmsg **out, int *n_out, char *errstr,
                         size_t n) {
  *out = NULL;
  *n_out = 0;
  if (!c->reader) {
    if (!(c->reader = plain_consumer(c, "reader", errstr, n)))
      return TG_ERR_TRANSPORT;
    int parts = partitions_of(c, c->reader, c->topics[t], errstr, n);
    if (parts < 0) {
      rd_kafka_destroy(c->reader);
      c->reader = NULL;
      return TG_ERR_TRANSPORT;
    }
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(parts);
    for (int p = 0; p < parts; p++)
      rd_kafka_topic_partition_list_add(l, c->topics[t], p)->offset =
          beginning ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
    rd_kafka_assign(c->reader, l);
    rd_kafka_topic_partition_list_destroy(l);
  }
  struct tg_kmsg *arr = calloc((size_t)max, sizeof(*arr));
  if (!arr) {
    snprintf(errstr, n, "out of memory");
    return TG_ERR_NOMEM;
  }
  int got = 0;
  int64_t until = tg_mono_ms() + timeout_ms;
  while (got < max) {
    int64_t left = until - tg_mono_ms();
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->reader, got ? 0 : left > 0 ? (int)left : 0);
    if (!m)
      break;
    if (!m->err && kmsg_fill(&arr[got], m, TG_MAX_RESULT_BYTES)) {
      arr[got].pos.topic = t;
      got++;
    }
    rd_kafka_message_destroy(m);
  }
  if (!got) {
    free(arr);
    arr = NULL;
  }
  *out = arr;
  *n_out = got;
  return TG_OK;
}

void tg_kclient_break(tg_kclient_t *c, const char *why) { break_client(c, "kafka", why); }

bool tg_kclient_stats(tg_kclient_t *c, struct tg_transport_stats *out) {
  pthread_mutex_lock(&c->mu);
  out->held = c->held;
  out->partitions = 0;
  for (size_t i = 0; i < c->n_parts; i++)
    out->partitions += c->parts[i].assigned;
  out->paused = c->paused_now < out->partitions ? c->paused_now : out->partitions;
  pthread_mutex_unlock(&c->mu);
  return c->cons != NULL;
}

bool tg_kclient_healthy(tg_kclient_t *c, char *errstr, size_t n) {
  pthread_mutex_lock(&c->mu);
  bool ok = !c->broken;
  if (!ok)
    snprintf(errstr, n, "%s", c->broken_why);
  pthread_mutex_unlock(&c->mu);
  return ok;
}

/* ---- life --------------------------------------------------------------- */

const char *tg_kclient_topic(const tg_kclient_t *c, enum tg_ktopic t) { return c->topics[t]; }

bool tg_kafka_topic_name(const char *pattern, const char *env, char *out, size_t size,
                        const char *what, char *errstr, size_t n) {
  char buf[1024];
  size_t o = 0;
  for (const char *p = pattern; *p && o < sizeof(buf) - 64; p++) {
    if (strncmp(p, "{env}", 5) == 0) {
      o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s", env);
      p += 4;
    } else {
      buf[o++] = *p;
    }
  }
  buf[o] = '\0';
  if (o >= size || o > 249) {
    snprintf(errstr, n, "kafka %s topic: name too long (at most 249 characters)", what);
    return false;
  }
  if (!o && strcmp(what, "retry") != 0) {
    snprintf(errstr, n, "kafka %s topic: empty name", what);
    return false;
  }
  if (strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != o) {
    snprintf(errstr, n, "kafka %s topic \"%s\": only letters, digits, '.', '_' and '-'", what,
             buf);
    return false;
  }
  memcpy(out, buf, o + 1);
  return true;
}

static void client_free(tg_kclient_t *c) {
  atomic_store(&c->quit, true);
  if (c->cons) {
    pthread_join(c->cons_thread, NULL);
    commit_progress(c, true, NULL); /* what finished is committed before leaving */
    rd_kafka_consumer_close(c->cons);
    rd_kafka_destroy(c->cons);
  }
  if (c->prod) {
    rd_kafka_flush(c->prod, 10000);
    pthread_join(c->prod_thread, NULL);
    rd_kafka_destroy(c->prod);
  }
  if (c->meta)
    rd_kafka_destroy(c->meta);
  if (c->reader) {
    rd_kafka_consumer_close(c->reader);
    rd_kafka_destroy(c->reader);
  }
  for (size_t i = 0; i < c->n_parts; i++)
    drop_partition(c, &c->parts[i]);
  for (struct knode *k = c->head, *next; k; k = next) {
    next = k->next;
    kmsg_clear(&k->m);
    free(k);
  }
  free(c->parts);
  pthread_mutex_destroy(&c->mu);
  pthread_mutex_destroy(&c->txn_mu);
  pthread_cond_destroy(&c->ready);
  pthread_cond_destroy(&c->delivered);
  free(c);
}

static tg_kclient_t *client_new(const struct tg_transport_conf *conf, const char *key,
                                char *errstr, size_t n) {
  tg_kclient_t *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(errstr, n, "out of memory");
    return NULL;
  }
  c->conf = *conf;
  snprintf(c->key, sizeof(c->key), "%s", key);
  pthread_mutex_init(&c->mu, NULL);
  pthread_mutex_init(&c->txn_mu, NULL);
  pthread_cond_init(&c->ready, NULL);
  pthread_cond_init(&c->delivered, NULL);
  const struct tg_kafka_conf *k = &conf->kafka;
  const char *patterns[TG_KT__COUNT] = {k->topic_in, k->topic_retry, k->topic_out, k->topic_dlq};
  const char *what[TG_KT__COUNT] = {"input", "retry", "output", "dead-letter"};
  for (int t = 0; t < TG_KT__COUNT; t++)
    if (!tg_kafka_topic_name(patterns[t], conf->env, c->topics[t], sizeof(c->topics[t]), what[t],
                             errstr, n)) {
      client_free(c);
      return NULL;
    }
  char timeout[24], txn_id[300], txn_timeout[24];
  int64_t mt = conf->reconnect_max_ms + conf->command_timeout_ms;
  snprintf(timeout, sizeof(timeout), "%lld", (long long)(mt < 10000 ? 10000 : mt));
  snprintf(txn_id, sizeof(txn_id), "tripgen-%s-%s-%s", conf->env, conf->group, conf->consumer);
  snprintf(txn_timeout, sizeof(txn_timeout), "%d", TXN_TIMEOUT_MS * 2);
  const char *ours[] = {"linger.ms", "5", "message.timeout.ms", timeout, NULL};
  const char *enforced[] = {"enable.idempotence", "true",
                            k->exactly_once ? "transactional.id" : NULL, txn_id,
                            "transaction.timeout.ms", txn_timeout, NULL};
  rd_kafka_conf_t *kc = client_conf(c, "producer", ours, enforced, errstr, n);
  if (!kc) {
    client_free(c);
    return NULL;
  }
  rd_kafka_conf_set_opaque(kc, c);
  rd_kafka_conf_set_dr_msg_cb(kc, on_delivery);
  rd_kafka_conf_set_error_cb(kc, on_error);
  char why[512];
  if (!(c->prod = rd_kafka_new(RD_KAFKA_PRODUCER, kc, why, sizeof(why)))) {
    rd_kafka_conf_destroy(kc);
    snprintf(errstr, n, "kafka producer: %s", why);
    client_free(c);
    return NULL;
  }
  if (pthread_create(&c->prod_thread, NULL, producer_main, c) != 0) {
    rd_kafka_destroy(c->prod);
    c->prod = NULL;
    snprintf(errstr, n, "kafka producer: cannot start its thread");
    client_free(c);
    return NULL;
  }
  if (k->exactly_once) {
    rd_kafka_error_t *e = rd_kafka_init_transactions(c->prod, (int)(mt < 10000 ? 10000 : mt));
    if (e) {
      snprintf(errstr, n, "kafka init_transactions: %s", rd_kafka_error_string(e));
      rd_kafka_error_destroy(e);
      client_free(c);
      return NULL;
    }
  }
  return c;
}

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER; /* one creation at a time */

tg_kclient_t *tg_kclient_get(const struct tg_transport_conf *conf, char *errstr, size_t n) {
  const struct tg_kafka_conf *k = &conf->kafka;
  if (!*k->brokers) {
    snprintf(errstr, n, "kafka: no brokers configured");
    return NULL;
  }
  if (k->max_in_flight < 1 || k->max_in_flight > 100000) {
    snprintf(errstr, n, "kafka max_in_flight: %d is out of range [1, 100000]", k->max_in_flight);
    return NULL;
  }
  char key[2048];
  snprintf(key, sizeof(key), "%s|%s|%s|%s|%s|%s|%s|%s|%d|%s|%d", k->brokers, conf->env,
           conf->group, conf->consumer, k->topic_in, k->topic_retry, k->topic_out, k->topic_dlq,
           k->exactly_once, k->instance_id, k->max_in_flight);
  /* two clients for the same settings would be two group members (and, with
   * exactly_once, fence each other's transactional.id): look up and create
   * under one lock */
  pthread_mutex_lock(&create_mu);
  pthread_mutex_lock(&registry_mu);
  for (tg_kclient_t *c = registry; c; c = c->next)
    if (strcmp(c->key, key) == 0 && strcmp(c->conf.kafka.props, k->props) == 0) {
      c->refs++;
      pthread_mutex_unlock(&registry_mu);
      pthread_mutex_unlock(&create_mu);
      return c;
    }
  pthread_mutex_unlock(&registry_mu);
  tg_kclient_t *c = client_new(conf, key, errstr, n);
  if (c) {
    pthread_mutex_lock(&registry_mu);
    c->refs = 1;
    c->next = registry;
    registry = c;
    pthread_mutex_unlock(&registry_mu);
  }
  pthread_mutex_unlock(&create_mu);
  return c;
}

void tg_kclient_put(tg_kclient_t *c) {
  if (!c)
    return;
  pthread_mutex_lock(&registry_mu);
  bool last = --c->refs == 0;
  if (last)
    for (tg_kclient_t **pp = &registry; *pp; pp = &(*pp)->next)
      if (*pp == c) {
        *pp = c->next;
        break;
      }
  pthread_mutex_unlock(&registry_mu);
  if (last)
    client_free(c);
}
