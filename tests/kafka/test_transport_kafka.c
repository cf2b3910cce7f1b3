/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_transport_kafka.c - the kafka transport's operations against
 * librdkafka's mock cluster (3 brokers, in its own process: mock_cluster.c):
 * out-of-order completion commits only finished prefixes, retries wait for
 * their not-before time, trip events become jobs with a request_id from
 * their position, bad records become parse errors, depth is the lag, the
 * idempotent producer survives pushed produce errors, and a revoked
 * partition's job is abandoned.
 *
 *   test-transport-kafka MOCK_CLUSTER_EXE SOURCE_ROOT
 */
#include "check.h"
#include "kafka_client.h"
#include "tg_time.h"
#include "tg_transport.h"
#include "tg_trip.h"
#include "transport_int.h"

#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *root;
static char errstr[1024];
static char brokers[512];
static FILE *mock_in, *mock_out;
static pid_t mock_pid;

/* ---- the mock cluster process ------------------------------------------- */

static void mock_start(const char *exe) {
  int to[2], from[2];
  if (pipe(to) || pipe(from))
    exit(1);
  mock_pid = fork();
  if (mock_pid == 0) {
    dup2(to[0], 0);
    dup2(from[1], 1);
    close(to[1]);
    close(from[0]);
    execl(exe, exe, "3", (char *)NULL);
    _exit(127);
  }
  close(to[0]);
  close(from[1]);
  mock_in = fdopen(to[1], "w");
  mock_out = fdopen(from[0], "r");
  char line[600];
  if (!fgets(line, sizeof(line), mock_out) || sscanf(line, "bootstraps %511s", brokers) != 1) {
    fprintf(stderr, "mock cluster did not start\n");
    exit(1);
  }
}

__attribute__((format(printf, 1, 2))) static bool mock(const char *fmt, ...) {
  char line[300];
  va_list ap;
  va_start(ap, fmt);
  vfprintf(mock_in, fmt, ap);
  va_end(ap);
  fputc('\n', mock_in);
  fflush(mock_in);
  return fgets(line, sizeof(line), mock_out) && strncmp(line, "ok", 2) == 0;
}

static void mock_stop(void) {
  fprintf(mock_in, "quit\n");
  fclose(mock_in);
  fclose(mock_out);
  waitpid(mock_pid, NULL, 0);
}

/* ---- helpers ------------------------------------------------------------ */

static tg_transport_t *open_env(const char *env, const char *consumer) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, env);
  snprintf(c.backend, sizeof(c.backend), "kafka");
  snprintf(c.kafka.brokers, sizeof(c.kafka.brokers), "%s", brokers);
  snprintf(c.consumer, sizeof(c.consumer), "%s", consumer);
  c.kafka.session_timeout_ms = 6000;
  tg_transport_t *t = tg_transport_new(&c, errstr, sizeof(errstr));
  CHECK_MSG(t != NULL, "%s", errstr);
  return t;
}

static void topics(const char *env, int partitions) {
  const char *kinds[] = {"in", "out", "dlq"};
  for (int i = 0; i < 3; i++) {
    char name[128];
    snprintf(name, sizeof(name), "tripgen-%s-%s", env, kinds[i]);
    CHECK(mock("topic %s %d", name, partitions));
  }
}

static char *sample(const char *file, size_t *len) {
  char path[700];
  snprintf(path, sizeof(path), "%s/tests/data/trips/%s", root, file);
  FILE *f = fopen(path, "rb");
  if (!f)
    exit(1);
  char *buf = calloc(1, 16384);
  *len = fread(buf, 1, 16383, f);
  fclose(f);
  return buf;
}

static void put_jobs(tg_transport_t *t, const char *env, int count, char rids[][80]) {
  size_t len;
  char *trip_json = sample("may-day-shanghai.json", &len);
  for (int i = 0; i < count; i++) {
    tg_trip_t *trip = tg_trip_parse(trip_json, len, errstr, sizeof(errstr));
    tg_job_t *job = tg_job_new(trip, env, NULL, tg_now_ms(), errstr, sizeof(errstr));
    uint64_t index = 0;
    tg_err_t err = tg_transport_put(t, job, &index, errstr, sizeof(errstr));
    CHECK_MSG(err == TG_OK && index == (uint64_t)i + 1, "put %d: %s (index %llu)", i, errstr,
              (unsigned long long)index);
    if (rids)
      snprintf(rids[i], 80, "%s", job->request_id);
    tg_job_destroy(job);
  }
  free(trip_json);
}

/* Take until @want deliveries came (or 20 s passed). */
static int take_all(tg_transport_t *t, tg_delivery_t *out, int want) {
  int got = 0;
  int64_t until = tg_mono_ms() + 20000;
  while (got < want && tg_mono_ms() < until) {
    tg_delivery_t *d;
    int nd;
    CHECK(tg_transport_take(t, want - got, 500, &d, &nd, errstr, sizeof(errstr)) == TG_OK);
    for (int i = 0; i < nd; i++)
      out[got++] = d[i];
    free(d);
  }
  return got;
}

static bool complete(tg_transport_t *t, const tg_delivery_t *d) {
  tg_result_t *r = tg_result_for_job(d->job);
  r->worker = strdup("test");
  bool published = false;
  tg_err_t err = tg_transport_complete(t, d, r, &published, errstr, sizeof(errstr));
  tg_result_destroy(r);
  return err == TG_OK && published;
}

/* The group's committed offset of partition 0 of the input (-1: none). */
static int64_t committed(const char *env) {
  char group[128], topic[128];
  snprintf(group, sizeof(group), "tripgen-%s-workers", env);
  snprintf(topic, sizeof(topic), "tripgen-%s-in", env);
  rd_kafka_conf_t *kc = rd_kafka_conf_new();
  rd_kafka_conf_set(kc, "bootstrap.servers", brokers, NULL, 0);
  rd_kafka_conf_set(kc, "group.id", group, NULL, 0);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
  rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic, 0);
  int64_t off = -1;
  if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].offset >= 0)
    off = l->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk);
  return off;
}

static int64_t committed_within(const char *env, int64_t want, int ms) {
  int64_t until = tg_mono_ms() + ms, got;
  while ((got = committed(env)) != want && tg_mono_ms() < until)
    tg_sleep_ms(100);
  return got;
}

/* ---- tests -------------------------------------------------------------- */

/* Jobs 2 and 3 finish before job 1: the commit waits for job 1. */
static void test_out_of_order_commit(void) {
  topics("ooo", 1);
  tg_transport_t *t = open_env("ooo", "c1");
  put_jobs(t, "ooo", 3, NULL);
  tg_delivery_t d[3];
  memset(d, 0, sizeof(d));
  if (take_all(t, d, 3) != 3) {
    CHECK_MSG(false, "three jobs were not taken");
    tg_transport_destroy(t);
    return;
  }
  CHECK(d[0].index == 1 && d[1].index == 2 && d[2].index == 3);
  CHECK(complete(t, &d[2]));
  CHECK(complete(t, &d[1]));
  tg_sleep_ms(800); /* several commit rounds */
  int64_t c = committed("ooo");
  CHECK_MSG(c == -1 || c == 0, "committed %lld past an unfinished job", (long long)c);
  struct tg_depth dep;
  CHECK(tg_transport_depth(t, &dep, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(dep.waiting == 3, "lag %lld (nothing committed past job 1)", (long long)dep.waiting);
  CHECK(complete(t, &d[0]));
  CHECK_MSG(committed_within("ooo", 3, 5000) == 3, "committed %lld", (long long)committed("ooo"));
  CHECK(tg_transport_depth(t, &dep, errstr, sizeof(errstr)) == TG_OK && dep.waiting == 0);
  tg_deliveries_free(NULL, 0);
  for (int i = 0; i < 3; i++) {
    free(d[i].payload);
    tg_job_destroy(d[i].job);
  }
  tg_transport_destroy(t);
}

/* A retry comes back as a new record, not before its due time. */
static void test_retry_not_before(void) {
  topics("rty", 1);
  tg_transport_t *t = open_env("rty", "c1");
  char rid[1][80];
  put_jobs(t, "rty", 1, rid);
  tg_delivery_t d[1], again[1];
  memset(d, 0, sizeof(d));
  memset(again, 0, sizeof(again));
  if (take_all(t, d, 1) != 1) {
    CHECK_MSG(false, "the job was not taken");
    tg_transport_destroy(t);
    return;
  }
  d[0].job->attempt++;
  int64_t due = tg_now_ms() + 1500;
  CHECK(tg_transport_retry_later(t, &d[0], d[0].job, due, errstr, sizeof(errstr)) == TG_OK);
  CHECK(take_all(t, again, 1) == 1);
  CHECK_MSG(tg_now_ms() >= due, "taken %lld ms before its due time", (long long)(due - tg_now_ms()));
  CHECK_STREQ(again[0].request_id, rid[0]);
  CHECK(again[0].job && again[0].job->attempt == 2 && again[0].index == 2);
  CHECK(again[0].job && complete(t, &again[0]));
  CHECK(committed_within("rty", 2, 5000) == 2);
  for (int i = 0; i < 1; i++) {
    free(d[i].payload);
    tg_job_destroy(d[i].job);
    free(again[i].payload);
    tg_job_destroy(again[i].job);
  }
  tg_transport_destroy(t);
}

/* Plain trip events become jobs; a bad record a parse error; redelivery
 * derives the same request_id. */
static void test_trip_events(void) {
  topics("evt", 1);
  rd_kafka_conf_t *kc = rd_kafka_conf_new();
  rd_kafka_conf_set(kc, "bootstrap.servers", brokers, NULL, 0);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
  size_t len;
  char *trip = sample("national-day-chengdu.json", &len);
  rd_kafka_producev(p, RD_KAFKA_V_TOPIC("tripgen-evt-in"), RD_KAFKA_V_VALUE(trip, len),
                    RD_KAFKA_V_TIMESTAMP(1714900000000LL), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_END);
  rd_kafka_producev(p, RD_KAFKA_V_TOPIC("tripgen-evt-in"), RD_KAFKA_V_VALUE("{\"trip_id\":", 11),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
  CHECK(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(p);
  free(trip);

  char first_rid[80] = "";
  for (int round = 0; round < 2; round++) {
    tg_transport_t *t = open_env("evt", "c1");
    tg_delivery_t d[2];
    memset(d, 0, sizeof(d));
    if (take_all(t, d, 2) != 2) {
      CHECK_MSG(false, "round %d: the two records were not taken", round);
      tg_transport_destroy(t);
      return;
    }
    CHECK_MSG(d[0].job != NULL, "%s", d[0].parse_error);
    if (d[0].job) {
      CHECK(strncmp(d[0].request_id, "k", 1) == 0 && strstr(d[0].request_id, "-0-0"));
      CHECK_STREQ(d[0].job->request_id, d[0].request_id);
      CHECK(d[0].job->enqueued_at_ms == 1714900000000LL);
      CHECK_STREQ(d[0].job->env, "evt");
    }
    if (round == 0)
      snprintf(first_rid, sizeof(first_rid), "%s", d[0].request_id);
    else
      CHECK_STREQ(d[0].request_id, first_rid); /* the same request on redelivery */
    CHECK(d[1].job == NULL && strstr(d[1].parse_error, "trip event"));
    CHECK(strstr(d[1].request_id, "-0-1") != NULL);
    if (round == 1) {
      CHECK(complete(t, &d[0]));
      tg_result_t *r = tg_result_new(d[1].request_id, 0, "evt");
      r->worker = strdup("test");
      tg_result_fail(r, TG_CODE_INVALID_INPUT, "input", false, "%s", d[1].parse_error);
      bool pub;
      CHECK(tg_transport_complete(t, &d[1], r, &pub, errstr, sizeof(errstr)) == TG_OK);
      tg_result_destroy(r);
      CHECK(committed_within("evt", 2, 5000) == 2);
    }
    for (int i = 0; i < 2; i++) {
      free(d[i].payload);
      tg_job_destroy(d[i].job);
    }
    tg_transport_destroy(t); /* round 0: nothing done, nothing committed: read again */
  }
}

/* Produce requests fail a few times: the idempotent producer retries, each
 * job is in the topic once. */
static void test_produce_errors(void) {
  topics("perr", 1);
  tg_transport_t *t = open_env("perr", "c1");
  CHECK(mock("errors 0 6,7,6")); /* Produce: NOT_LEADER, REQUEST_TIMED_OUT, NOT_LEADER */
  put_jobs(t, "perr", 4, NULL);
  struct tg_depth dep;
  CHECK(tg_transport_depth(t, &dep, errstr, sizeof(errstr)) == TG_OK);
  CHECK_MSG(dep.waiting == 4, "%lld records for 4 puts", (long long)dep.waiting);
  tg_transport_destroy(t);
}

/* Unsupported operations say so by name. */
static void test_refusals(void) {
  tg_transport_t *t = open_env("ooo", "c2");
  char *json = NULL;
  CHECK(tg_transport_get_result(t, "x", &json, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  CHECK(strstr(errstr, "kafka") && strstr(errstr, "output topic"));
  struct tg_dlq_entry *e;
  int ne;
  CHECK(tg_transport_dlq_list(t, 0, 10, &e, &ne, errstr, sizeof(errstr)) == TG_ERR_INVAL);
  tg_transport_destroy(t);
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, "dev");
  snprintf(c.backend, sizeof(c.backend), "kafka");
  snprintf(c.kafka.brokers, sizeof(c.kafka.brokers), "%s", brokers);
  snprintf(c.kafka.topic_in, sizeof(c.kafka.topic_in), "bad topic {env}");
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL && strstr(errstr, "input topic"));
  tg_transport_conf_init(&c, "dev");
  snprintf(c.backend, sizeof(c.backend), "kafka");
  snprintf(c.kafka.props, sizeof(c.kafka.props), "sasl.password=env:TG_TEST_UNSET_SECRET\n");
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL &&
        strstr(errstr, "TG_TEST_UNSET_SECRET is not set"));
  setenv("TG_TEST_SECRET", "hunter2-secret", 1);
  snprintf(c.kafka.props, sizeof(c.kafka.props), "ssl.key.password=env:TG_TEST_SECRET\nacks=bogus\n");
  CHECK(tg_transport_new(&c, errstr, sizeof(errstr)) == NULL && strstr(errstr, "acks"));
  CHECK(!strstr(errstr, "hunter2"));
  /* a client that failed for good says so, and take fails from then on */
  tg_transport_t *b = open_env("ooo", "c3");
  char why[300];
  CHECK(b && !tg_transport_broken(b, why, sizeof(why)));
  tg_kclient_break(b->backend, "a test breaks it");
  CHECK(tg_transport_broken(b, why, sizeof(why)) && strstr(why, "a test breaks it"));
  tg_delivery_t *d = NULL;
  int nd = 0;
  CHECK(tg_transport_take(b, 1, 100, &d, &nd, errstr, sizeof(errstr)) == TG_ERR_TRANSPORT &&
        strstr(errstr, "a test breaks it"));
  tg_transport_destroy(b);
}


/* ---- the shared client directly ------------------------------------------ */

static tg_kclient_t *client(const char *env, int cap, bool exactly_once) {
  struct tg_transport_conf c;
  tg_transport_conf_init(&c, env);
  snprintf(c.backend, sizeof(c.backend), "kafka");
  snprintf(c.kafka.brokers, sizeof(c.kafka.brokers), "%s", brokers);
  snprintf(c.consumer, sizeof(c.consumer), "c1");
  c.kafka.max_in_flight = cap;
  c.kafka.exactly_once = exactly_once;
  c.kafka.session_timeout_ms = 6000;
  tg_kclient_t *k = tg_kclient_get(&c, errstr, sizeof(errstr));
  CHECK_MSG(k != NULL, "%s", errstr);
  return k;
}

static void produce_raw(const char *topic, int count, int partitions) {
  rd_kafka_conf_t *kc = rd_kafka_conf_new();
  rd_kafka_conf_set(kc, "bootstrap.servers", brokers, NULL, 0);
  rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, kc, errstr, sizeof(errstr));
  for (int i = 0; i < count; i++)
    while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(i % partitions),
                             RD_KAFKA_V_VALUE("{}", 2), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END))
      rd_kafka_poll(p, 10);
  CHECK(rd_kafka_flush(p, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(p);
}

static bool finish_with_result(tg_kclient_t *k, const struct tg_kpos *pos) {
  struct tg_krec r = {.topic = TG_KT_OUT, .key = "k", .value = "r", .len = 1};
  const struct tg_krec *rp = &r;
  int one = 1;
  tg_err_t e;
  return tg_kclient_finish(k, pos, &rp, &one, 1, &e, errstr, sizeof(errstr)) == TG_OK;
}

/* Take (and finish) until @want came or @ms passed; counts offset gaps. */
static int drain(tg_kclient_t *k, int want, int ms, int *gaps) {
  int got = 0;
  int64_t until = tg_mono_ms() + ms, last[8];
  for (int i = 0; i < 8; i++)
    last[i] = -1;
  while (got < want && tg_mono_ms() < until) {
    struct tg_kmsg *m;
    int nm;
    tg_kclient_take(k, 1000, 200, &m, &nm, errstr, sizeof(errstr));
    for (int i = 0; i < nm; i++) {
      int p = m[i].pos.partition & 7;
      if (gaps && last[p] >= 0 && m[i].pos.offset != last[p] + 1)
        (*gaps)++;
      last[p] = m[i].pos.offset;
      got += finish_with_result(k, &m[i].pos);
    }
    tg_kmsgs_free(m, nm);
  }
  return got;
}

/* More records than one poll batch: none is skipped, and the commit passes
 * only what was taken. */
static void test_big_batches_no_gaps(void) {
  CHECK(mock("topic tripgen-big-in 1") && mock("topic tripgen-big-out 1"));
  produce_raw("tripgen-big-in", 1200, 1);
  tg_kclient_t *k = client("big", 100000, false);
  int gaps = 0;
  CHECK_MSG(drain(k, 1200, 30000, &gaps) == 1200 && gaps == 0, "gaps %d", gaps);
  int64_t lag = -1; /* the commit lands soon after: wait for it, up to 10 s */
  for (int i = 0; i < 100 && lag != 0; i++) {
    tg_sleep_ms(100);
    CHECK(tg_kclient_lag(k, TG_KT_IN, true, &lag, errstr, sizeof(errstr)) == TG_OK);
  }
  CHECK_MSG(lag == 0, "lag %" PRId64 "", lag);
  tg_kclient_put(k);
}

/* At the cap (paused) when the assignment is lost: the partitions come back
 * unpaused, and every record is taken. */
static void test_paused_assignment_lost(void) {
  CHECK(mock("topic tripgen-lost-in 2") && mock("topic tripgen-lost-out 1"));
  produce_raw("tripgen-lost-in", 10, 2);
  tg_kclient_t *k = client("lost", 1, false);
  struct tg_kmsg *m = NULL;
  int nm = 0;
  int64_t until = tg_mono_ms() + 15000;
  while (!nm && tg_mono_ms() < until) /* one held, unfinished: paused */
    tg_kclient_take(k, 1, 500, &m, &nm, errstr, sizeof(errstr));
  CHECK(nm == 1);
  tg_kmsgs_free(m, nm);
  tg_sleep_ms(1000);
  CHECK(mock("errors 12 25")); /* Heartbeat: UNKNOWN_MEMBER_ID, the assignment is lost */
  int got = drain(k, 10, 40000, NULL);
  CHECK_MSG(got == 10, "%d of 10 records after the lost assignment", got);
  produce_raw("tripgen-lost-in", 4, 2);
  CHECK_MSG((got = drain(k, 4, 10000, NULL)) == 4, "%d of 4 new records", got);
  tg_kclient_put(k);
}

/* exactly_once: EndTxn answered with retriable errors (librdkafka retries
 * them) and a transaction that must be aborted: its records wait for the
 * next one, nothing jams, every result becomes visible once. */
static void test_transaction_retried(void) {
  CHECK(mock("topic tripgen-etx-in 1") && mock("topic tripgen-etx-out 1"));
  produce_raw("tripgen-etx-in", 6, 1);
  tg_kclient_t *k = client("etx", 16, true);
  CHECK(mock("errors 26 15,15,15")); /* EndTxn: COORDINATOR_NOT_AVAILABLE three times */
  CHECK(mock("errors 24 29"));       /* AddPartitionsToTxn: TOPIC_AUTHORIZATION_FAILED: abort */
  CHECK(drain(k, 6, 15000, NULL) == 6);
  int64_t lag = -1;
  int64_t until = tg_mono_ms() + 15000;
  while (tg_mono_ms() < until &&
         (tg_kclient_lag(k, TG_KT_IN, true, &lag, errstr, sizeof(errstr)) != TG_OK || lag))
    tg_sleep_ms(200);
  CHECK_MSG(lag == 0, "lag %lld after every job finished", (long long)lag);
  int total = 0;
  for (int r = 0; r < 5; r++) {
    struct tg_kmsg *o;
    int no;
    tg_kclient_read(k, TG_KT_OUT, true, 100, 500, &o, &no, errstr, sizeof(errstr));
    total += no;
    tg_kmsgs_free(o, no);
  }
  CHECK_MSG(total == 6, "%d results for 6 jobs", total);
  char why[200];
  CHECK(tg_kclient_healthy(k, why, sizeof(why)));
  tg_kclient_put(k);
}

/* exactly_once: the plain commit made after a transaction (the mock cluster
 * sees only those) refused during a rebalance is made again, so the group's
 * committed offsets still reach the end. */
static void test_commit_after_transaction_refused(void) {
  CHECK(mock("topic tripgen-ctx-in 1") && mock("topic tripgen-ctx-out 1"));
  produce_raw("tripgen-ctx-in", 4, 1);
  tg_kclient_t *k = client("ctx", 16, true);
  CHECK(mock("errors 8 27")); /* OffsetCommit: REBALANCE_IN_PROGRESS once */
  CHECK(drain(k, 4, 15000, NULL) == 4);
  int64_t lag = -1;
  int64_t until = tg_mono_ms() + 20000; /* the refusal holds commits for the session timeout */
  while (tg_mono_ms() < until &&
         (tg_kclient_lag(k, TG_KT_IN, true, &lag, errstr, sizeof(errstr)) != TG_OK || lag))
    tg_sleep_ms(200);
  CHECK_MSG(lag == 0, "lag %lld: the refused commit was not made again", (long long)lag);
  tg_kclient_put(k);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test-transport-kafka MOCK_CLUSTER_EXE SOURCE_ROOT\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  root = argv[2];
  mock_start(argv[1]);
  RUN(test_out_of_order_commit);
  RUN(test_retry_not_before);
  RUN(test_trip_events);
  RUN(test_produce_errors);
  RUN(test_refusals);
  RUN(test_big_batches_no_gaps);
  RUN(test_paused_assignment_lost);
  RUN(test_transaction_retried);
  RUN(test_commit_after_transaction_refused);
  mock_stop();
  return check_done("transport_kafka");
}
