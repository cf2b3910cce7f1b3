#!/usr/bin/python3
"""test_kafka.py BUILD_DIR SOURCE_ROOT [TEST...] - tripgen-worker on Kafka topics.

Against librdkafka's mock cluster (3 brokers, in its own process:
tests/kafka/mock_cluster.c) with the ComfyUI stand-in: the sample trips and
plain trip events end to end with committed offsets and no duplicates;
injected faults (produce errors, a broker down and up, the group
coordinator moved); a worker killed mid-batch beside a second one (at least
once: duplicates only for jobs it had taken; exactly_once: none); a
rebalance while jobs run; long jobs with paused partitions and a short
max.poll.interval.ms; retries through the topic and dead letters.
Topics are read with python3-confluent-kafka (Debian's, on librdkafka).
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../integration"))
from worker_harness import Env, run_tests  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
DEBUG = {"kafka_conf": "debug=cgrp"} if os.environ.get("TG_KAFKA_DEBUG") else {}
SAMPLES = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class KafkaEnv(Env):
    """Env plus a mock Kafka cluster in its own process."""

    def start_kafka(self):
        self.mock = subprocess.Popen([os.path.join(BUILD, "tests/kafka/mock-kafka-cluster"), "3"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.procs.append(self.mock)
        line = self.mock.stdout.readline().split()
        check(line and line[0] == "bootstraps", "mock cluster started")
        self.brokers = line[1]
        os.environ.update(TRIPGEN_TRANSPORT="kafka", TRIPGEN_KAFKA_BROKERS=self.brokers)

    def mock_cmd(self, line):
        self.mock.stdin.write(line + "\n")
        self.mock.stdin.flush()
        answer = self.mock.stdout.readline().strip()
        check(answer == "ok", "mock cluster: %s -> %s" % (line, answer))

    def topics(self, env, partitions):
        for kind in ("in", "out", "dlq"):
            self.mock_cmd("topic tripgen-%s-%s %d" % (env, kind, partitions))

    def kworker(self, env="dev", name="w1", **overrides):
        o = {"queue_backend": "kafka", "kafka_brokers": self.brokers,
             "kafka_session_timeout_ms": 6000}
        o.update(overrides)
        return self.start_worker(env=env, name=name, **o)

    # -- reading Kafka directly ---------------------------------------------
    def read_topic(self, topic, partitions):
        """Every committed record of a topic: (key, value, headers) in offset order."""
        c = Consumer({"bootstrap.servers": self.brokers, "group.id": "test-reader",
                      "enable.auto.commit": False, "enable.partition.eof": True,
                      "isolation.level": "read_committed"})
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out, eof, end = [], set(), time.time() + 15
        while len(eof) < partitions and time.time() < end:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    eof.add(m.partition())
                continue
            out.append((m.key().decode() if m.key() else None, m.value().decode(),
                        dict(m.headers() or [])))
        c.close()
        return out

    def results(self, count, env="dev", timeout=60, partitions=None):
        """Wait for @count distinct request_ids on the output topic; return the frames."""
        end = time.time() + timeout
        while True:
            frames = [json.loads(v) for _, v, _ in self.read_topic("tripgen-%s-out" % env,
                                                                  partitions or 1)]
            if len({f["request_id"] for f in frames}) >= count or time.time() > end:
                return frames
            time.sleep(0.5)

    def committed(self, env, partitions):
        c = Consumer({"bootstrap.servers": self.brokers,
                      "group.id": "tripgen-%s-workers" % env, "enable.auto.commit": False})
        tps = c.committed([TopicPartition("tripgen-%s-in" % env, p)
                           for p in range(partitions)], timeout=10)
        highs = [c.get_watermark_offsets(TopicPartition("tripgen-%s-in" % env, p),
                                         timeout=10)[1] for p in range(partitions)]
        c.close()
        # an empty partition has nothing to commit: no offset (-1001) counts as 0 there
        return [tp.offset if tp.offset >= 0 or h else 0 for tp, h in zip(tps, highs)], highs

    def wait_committed_all(self, env, partitions, timeout=15):
        end = time.time() + timeout
        while True:
            got, highs = self.committed(env, partitions)
            if got == highs or time.time() > end:
                return got, highs
            time.sleep(0.3)

    def produce_raw(self, topic, values):
        p = Producer({"bootstrap.servers": self.brokers})
        for v in values:
            p.produce(topic, v)
        check(p.flush(10) == 0, "raw records delivered")

    def put_n(self, n, env="dev"):
        files = [os.path.join(ROOT, "tests/data/trips", SAMPLES[i % 3]) for i in range(n)]
        return self.tripgen("put", *files, env=env).stdout.split()


def taken_by(e, p, before=None):
    """The request_ids a worker took (before the first line holding @before)."""
    log = e.log(p)
    if before and before in log:
        log = log[:log.index(before)]
    return set(re.findall(r"event=job_taken request_id=(\S+)", log))


def counts(frames):
    c = {}
    for f in frames:
        c[f["request_id"]] = c.get(f["request_id"], 0) + 1
    return c


# ---- tests -------------------------------------------------------------------------------

def test_samples_end_to_end(e):
    e.topics("dev", 3)
    e.start_standin("--latency-ms", "50")
    w = e.kworker()
    ids = e.put_n(3)
    trip = open(os.path.join(ROOT, "tests/data/trips", SAMPLES[1]), "rb").read()
    e.produce_raw("tripgen-dev-in", [trip, trip, b'{"trip_id": 5, "user_id": "u"}'])
    frames = e.results(6, partitions=3)
    by = {f["request_id"]: f for f in frames}
    check(len(by) == 6 and all(v == 1 for v in counts(frames).values()),
          "six results, one each: %s" % counts(frames))
    for rid in ids:
        r = by[rid]
        check(r["status"] == "succeeded" and r["env"] == "dev", "succeeded: %s" % r)
        check(os.path.exists(os.path.join(e.storage, r["images"][0]["key"])), "image stored")
    derived = [f for f in frames if f["request_id"].startswith("k")]
    check(len(derived) == 3, "trip events got request_ids from their position")
    ok = [f for f in derived if f["status"] == "succeeded"]
    bad = [f for f in derived if f["status"] == "failed"]
    check(len(ok) == 2 and len(bad) == 1, "two events ran, one was refused")
    check(bad[0]["error"]["code"] == "invalid_input" and "trip_id" in bad[0]["error"]["message"],
          "the bad event's reason: %s" % bad[0]["error"])
    check(ok[0]["images"][0]["key"] != ok[1]["images"][0]["key"], "the same trip twice: two jobs")
    got, highs = e.wait_committed_all("dev", 3)
    check(got == highs, "committed %s == high watermarks %s" % (got, highs))
    depth = json.loads(e.tripgen("depth").stdout)
    check(depth["waiting"] == 0, "no lag: %s" % depth)
    check(e.http_get(w, "/readyz")[0] == 200, "ready")


def test_faults(e):
    e.topics("dev", 2)
    e.start_standin("--latency-ms", "100")
    e.mock_cmd("errors 0 6,7,6,7")  # Produce: NOT_LEADER, REQUEST_TIMED_OUT, twice
    w = e.kworker(kafka_instance_id="pod-0")  # static membership
    ids = e.put_n(4)
    e.wait(lambda: len(taken_by(e, w)) >= 2, 20, "jobs to start")
    e.mock_cmd("down 2")
    time.sleep(2)
    e.mock_cmd("up 2")
    e.mock_cmd("coordinator group tripgen-dev-workers 3")
    ids += e.put_n(4)
    frames = e.results(8, partitions=2)
    c = counts(frames)
    check(set(c) == set(ids) and all(v == 1 for v in c.values()),
          "every job once despite the faults: %s" % c)
    check(all(f["status"] == "succeeded" for f in frames), "all succeeded")
    got, highs = e.wait_committed_all("dev", 2, timeout=20)
    check(got == highs, "committed %s == %s after the coordinator moved" % (got, highs))


def kill_mid_batch(e, exactly_once):
    e.topics("dev", 4)
    e.start_standin("--latency-ms", "300")
    extra = {"kafka_exactly_once": "true"} if exactly_once else {}
    w1 = e.kworker(name="w1", diffusion_slots=2, **extra)
    w2 = e.kworker(name="w2", diffusion_slots=2, **extra)
    e.wait(lambda: re.search(r"kafka_assigned env=dev partitions=[1-9]", e.log(w1)) and
           re.search(r"kafka_assigned env=dev partitions=[1-9]", e.log(w2)), 60,
           "both workers to get partitions")
    ids = e.put_n(16)
    e.wait(lambda: "event=job_succeeded" in e.log(w1) and len(taken_by(e, w1)) >= 3, 60,
           "w1 to finish a job and hold more")
    e.kill(w1)
    in_flight = taken_by(e, w1)
    frames = e.results(16, partitions=4, timeout=90)
    c = counts(frames)
    check(set(c) == set(ids), "every job finished: %d of 16" % len(c))
    dups = {k for k, v in c.items() if v > 1}
    print("  w1 had taken %d jobs when killed; %d duplicate results" % (len(in_flight), len(dups)))
    if exactly_once:
        # The mock cluster ignores transactional offset commits, so the worker also commits
        # each transaction's offsets plainly (README, Queue semantics). When a rebalance
        # refuses that plain commit, the mock loses offsets the transaction did commit and
        # w2 runs those records again: a duplicate only the mock can show (a real cluster
        # keeps the transaction's offsets). Any other duplicate fails the test.
        mock_only = "(after the transaction" in e.log(w2)
        if dups and mock_only:
            print("  (mock only: a refused plain commit after a transaction; %d duplicates)" %
                  len(dups))
        check(not dups or mock_only, "exactly once: no duplicate results, got %s" % dups)
    else:
        check(dups <= in_flight, "duplicates only of jobs w1 had taken: %s" % (dups - in_flight))
    got, highs = e.wait_committed_all("dev", 4, timeout=20)
    check(got == highs, "committed %s == %s" % (got, highs))
    check("kafka_assigned" in e.log(w2), "w2 took the partitions over")


def test_kill_mid_batch_at_least_once(e):
    kill_mid_batch(e, False)


def test_kill_mid_batch_exactly_once(e):
    kill_mid_batch(e, True)


def test_rebalance_in_flight(e):
    e.topics("dev", 4)
    e.start_standin("--latency-ms", "400")
    w1 = e.kworker(name="w1", diffusion_slots=2, **DEBUG)
    ids = e.put_n(20)
    e.wait(lambda: len(taken_by(e, w1)) >= 4, 20, "w1 to hold jobs")
    w2 = e.kworker(name="w2", diffusion_slots=2)
    e.wait(lambda: "event=kafka_revoked" in e.log(w1), 30, "a cooperative rebalance")
    held = taken_by(e, w1, before="event=kafka_revoked")
    # On a slow machine the second (cooperative) round can end after w1 has finished all
    # 20 jobs, so w2 is given work once it holds partitions: a few jobs at a time, until
    # one lands on its partitions (the keys are random request_ids).
    e.wait(lambda: re.search(r"kafka_assigned env=dev partitions=[1-9]", e.log(w2)), 60,
           "w2 to get partitions")
    for _ in range(10):
        ids += e.put_n(4)
        try:
            e.wait(lambda: taken_by(e, w2), 5, "w2 to take a job")
            break
        except AssertionError:
            pass
    frames = e.results(len(ids), partitions=4, timeout=90)
    c = counts(frames)
    check(set(c) == set(ids), "every job finished")
    dups = {k for k, v in c.items() if v > 1}
    check(dups <= held, "duplicates only of jobs w1 held at the rebalance: %s" % (dups - held))
    check(taken_by(e, w2), "w2 got work")
    got, highs = e.wait_committed_all("dev", 4)
    check(got == highs, "committed %s == %s" % (got, highs))
    check(w1.poll() is None and w2.poll() is None, "both still run")


def test_pause_long_jobs(e):
    e.topics("dev", 1)
    e.start_standin("--latency-ms", "2500")
    w = e.kworker(kafka_max_in_flight=2, kafka_max_poll_interval_ms=6000, queue_take_batch=1)
    ids = e.put_n(5)

    def gauge(name):
        m = re.search(r"^%s\{env=\"dev\"\} (\d+)" % name, e.http_get(w, "/metrics")[1], re.M)
        return int(m.group(1)) if m else None
    e.wait(lambda: gauge("tripgen_kafka_records_held") == 2 and
           gauge("tripgen_kafka_partitions_paused") == 1, 20, "/metrics to show the pause")
    check(gauge("tripgen_kafka_partitions_assigned") == 1, "one partition")
    frames = e.results(5, timeout=90)
    c = counts(frames)
    check(set(c) == set(ids) and all(v == 1 for v in c.values()), "each once: %s" % c)
    log = e.log(w)
    check("event=kafka_paused" in log and "event=kafka_resumed" in log, "paused at the cap")
    check("event=kafka_revoked" not in log and "MAX_POLL" not in log,
          "never kicked out of the group while 12 s of jobs ran")


def test_retry_and_dead_letter(e):
    e.topics("dev", 1)
    e.start_standin("--latency-ms", "50")
    e.standin_control(fail="exec_error", fail_times=1)
    w = e.kworker(retry_max_attempts=2)
    ids = e.put_n(1)
    frames = e.results(1)
    check(len(frames) == 1 and frames[0]["status"] == "succeeded" and frames[0]["attempt"] == 2,
          "retried once through the topic: %s" % frames)
    recs = e.read_topic("tripgen-dev-in", 1)
    check(len(recs) == 2 and "tripgen-not-before" in recs[1][2] and recs[1][0] == ids[0],
          "the retry is a record with a not-before header, keyed by request_id")
    e.standin_control(fail="exec_error", fail_times=0)
    ids2 = e.put_n(1)
    e.wait(lambda: any(json.loads(v).get("request_id") == ids2[0]
                       for _, v, _ in e.read_topic("tripgen-dev-out", 1)), 30, "a final result")
    last = [json.loads(v) for _, v, _ in e.read_topic("tripgen-dev-out", 1)][-1]
    check(last["status"] == "failed" and last["error"]["code"] == "diffusion_failed",
          "failed for good: %s" % last)
    dlq = e.read_topic("tripgen-dev-dlq", 1)
    check(len(dlq) == 1 and dlq[0][0] == ids2[0], "one dead letter, keyed by request_id")
    rec = json.loads(dlq[0][1])
    check(rec["job"]["request_id"] == ids2[0] and rec["result"]["status"] == "failed",
          "the dead letter holds the job and its last result")
    got, highs = e.wait_committed_all("dev", 1)
    check(got == highs, "committed past everything: %s %s" % (got, highs))
    check(w.poll() is None, "worker still runs")


def test_scheduler_reports_lag(e):
    """The scheduler's /metrics and /v1/autoscale report a Kafka env's lag."""
    e.topics("dev", 2)
    cfg = {"listen": "127.0.0.1:0", "redis": {"url": "redis://127.0.0.1:1"},
           "control": {"enabled": True, "interval_ms": 200, "lease_ms": 1000},
           "services": [{"name": "trip-kafka", "env": "dev", "token_env": "TG_TEST_TOKEN",
                         "autoscale": {"target_backlog_per_worker": 2, "min_workers": 0,
                                       "max_workers": 10, "active_window_ms": 5000},
                         "kafka": {"brokers": e.brokers,
                                   "conf": {"socket.timeout.ms": "5000"}}}]}
    path = os.path.join(e.dir, "scheduler.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPGEN_")}
    env["TG_TEST_TOKEN"] = "tok-kafka-test"
    log_path = os.path.join(e.dir, "scheduler.log")
    p = subprocess.Popen([os.path.join(BUILD, "scheduler/tripgen-scheduler"), "--config", path],
                         env=env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    p.log_path = log_path
    e.procs.append(p)
    m = e.wait(lambda: re.search(r"event=http_listening port=(\d+)", e.log(p)) or p.poll(), 15,
               "the scheduler to listen")
    check(p.poll() is None, "scheduler runs: " + e.log(p))
    base = "http://127.0.0.1:%d" % int(m.group(1))

    def get(path):
        req = urllib.request.Request(base + path,
                                     headers={"Authorization": "tok-kafka-test"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as ex:
            return ex.code, ex.read().decode()

    def waiting():
        st, body = get("/metrics")
        m = re.search(r'^tripgen_queue_waiting\{[^}]*env="dev"[^}]*\} (\d+)', body, re.M)
        return int(m.group(1)) if st == 200 and m else None

    e.put_n(6)
    e.wait(lambda: waiting() == 6, 15, "the lag of 6 records in /metrics")
    st, body = get("/v1/autoscale/trip-kafka")
    check(st == 200 and json.loads(body)["desired_workers"] == 3, "desired: %s %s" % (st, body))
    st, body = get("/api/predict/trip-kafka")
    check(st == 404 and "Kafka" in body, "no EAS queue API for a Kafka env: %d %s" % (st, body))
    e.start_standin("--latency-ms", "20")
    e.kworker()
    e.wait(lambda: waiting() == 0, 30, "the lag to drain")


def test_check_config_topics(e):
    """--check-config: two envs' configs may not share a topic on the same brokers."""
    def conf(name, env, **kafka):
        path = os.path.join(e.dir, name)
        k = {"brokers": "k2:9092, k1:9092"}
        k.update(kafka)
        with open(path, "w") as f:
            json.dump({"env": env, "queue": {"backend": "kafka"}, "kafka": k,
                       "storage": {"root": os.path.join(e.dir, "images")},
                       "postproc": {"assets_dir": os.path.join(ROOT, "deploy/assets")},
                       "comfyui": {"workflow": os.path.join(ROOT,
                                                            "deploy/workflows/trip-sdxl-api.json")}},
                      f)
        return path

    def run(*files):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPGEN_")}
        return subprocess.run([os.path.join(BUILD, "worker/tripgen-worker"), "--check-config",
                               *files], env=env, capture_output=True, text=True, timeout=30)

    a, b = conf("a.json", "test"), conf("b.json", "prod")
    r = run(a, b)
    check(r.returncode == 0, "default topics differ per env: %s" % r.stderr)
    check('queues="kafka k1:9092,k2:9092 topic tripgen-test-in"' in r.stdout, r.stdout)
    c = conf("c.json", "prod", topic_out="tripgen-test-out", brokers="k1:9092,k2:9092")
    r = run(a, c)
    check(r.returncode == 2 and "topic tripgen-test-out" in r.stderr and "overlap" in r.stderr,
          "a shared output topic is refused: %s" % r.stderr)
    d = conf("d.json", "prod", topic_in="shared-in", brokers="other:9092")
    check(run(conf("e.json", "test", topic_in="shared-in"), d).returncode == 0,
          "the same name on other brokers is another topic")
    r = run(conf("f.json", "prod", topic_in="bad topic"))
    check(r.returncode != 0 and "input topic" in r.stderr, "a bad topic name: %s" % r.stderr)


def test_sigterm_hands_back(e):
    """SIGTERM: jobs still running after the grace period become retry records (same
    attempt); the rest stay uncommitted; a second worker finishes every job once."""
    import signal
    e.topics("dev", 1)
    e.start_standin("--latency-ms", "3000")
    w1 = e.kworker(shutdown_grace_ms=200)
    ids = e.put_n(3)
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 20, "the first job")
    check(e.kill(w1, signal.SIGTERM) == 0, "exit 0")
    log = e.log(w1)
    check("event=job_handed_back" in log, log[-1500:])
    e.standin_control(latency_ms=20)
    e.kworker(name="w2")
    frames = e.results(3, timeout=40)
    c = counts(frames)
    check(set(c) == set(ids) and all(v == 1 for v in c.values()), "each once: %s" % c)
    check(all(f["status"] == "succeeded" and f["attempt"] == 1 for f in frames),
          "handed back at the same attempt: %s" % [(f["status"], f["attempt"]) for f in frames])
    got, highs = e.wait_committed_all("dev", 1)
    check(got == highs, "committed %s == %s" % (got, highs))


def test_brokers_down_not_ready(e):
    """All brokers down: the worker says so on /readyz, and is ready again once they are back."""
    e.topics("dev", 1)
    e.start_standin("--latency-ms", "20")
    for b in (1, 2, 3):
        e.mock_cmd("down %d" % b)
    w = e.kworker()
    e.wait(lambda: "queue unreachable" in e.http_get(w, "/readyz")[1], 20, "/readyz to say why")
    check(e.http_get(w, "/readyz")[0] == 503, "not ready")
    for b in (1, 2, 3):
        e.mock_cmd("up %d" % b)
    e.wait(lambda: e.http_get(w, "/readyz")[0] == 200, 30, "ready again")
    ids = e.put_n(1)
    frames = e.results(1, timeout=30)
    check(frames and frames[0]["request_id"] == ids[0], "a job runs after the outage")


TESTS = [test_samples_end_to_end, test_faults, test_kill_mid_batch_at_least_once,
         test_kill_mid_batch_exactly_once, test_rebalance_in_flight, test_pause_long_jobs,
         test_retry_and_dead_letter, test_scheduler_reports_lag,
         test_check_config_topics, test_sigterm_hands_back, test_brokers_down_not_ready]


def make_env():
    e = KafkaEnv(BUILD, ROOT)
    e.start_kafka()
    return e


if __name__ == "__main__":
    sys.exit(run_tests(TESTS, make_env, only=sys.argv[3:]))
