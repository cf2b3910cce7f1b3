#!/usr/bin/python3
"""test_control.py BUILD_DIR SOURCE_ROOT [TEST...] - the scheduler's control loops (issue 5).

Against a private redis-server, tripgen-scheduler replicas, and for some tests the ComfyUI
stand-in and tripgen-workers with their own housekeeping off (so only the scheduler
promotes, reclaims and dead-letters): two schedulers and the control lease (failover after
kill -9 within lease_ms, release on SIGTERM, the new leader runs the loops), a killed
worker's jobs parked and finished exactly once by another worker, max_deliveries
dead-lettering by the scheduler (real workers killed twice, and simulated deliveries with
no worker at all), `tripgen dlq replay` giving a new generation's frame, desired_workers for
scripted backlogs (0, 1, 10x target, min/max, after EAS deletes, heartbeats), consumer
hygiene, and 503 / leader 0 while Redis is down. Standard library only; run with Debian's
/usr/bin/python3.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SAMPLES = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]
TOKEN_VAR, TOKEN = "TRIPGEN_TOKEN_CONTROL_TEST", "tok-control-4e1d9b07"
PARKED = "tripgen-reclaimed"  # TG_TRANSPORT_PARKED_CONSUMER
GROUP = "workers"

# short control timings (the config's minimums are 50 ms and 3 x interval)
INTERVAL_MS, LEASE_MS, VISIBILITY_MS = 100, 1500, 1500
# what a loaded 2-core machine (or the sanitizer build) may add to a bound
SLACK_S = 1.5


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


def now_ms():
    return int(time.time() * 1000)


def key(env, name):
    return "tripgen:{%s}:%s" % (env, name)


# -- a minimal RESP client (redis-cli's text output loses nil and embedded newlines) -------
class RedisError(Exception):
    pass


def redis_call(sock_path, *args, timeout=10):
    """One command on a fresh connection; the reply as Python values (bulk strings as str)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode("utf-8")
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        s.sendall(b"".join(out))
        f = s.makefile("rb")
        return _read_reply(f)
    finally:
        s.close()


def _read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RedisError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:n]
        return data.decode("utf-8", "replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise RedisError("unexpected reply %r" % line)


def pairs(flat):
    """[k1, v1, k2, v2, ...] -> dict."""
    return dict(zip(flat[0::2], flat[1::2]))


# -- the harness, extended with scheduler replicas ---------------------------------------
def service(name="trip-dev", env="dev", autoscale=None, **kw):
    s = {"name": name, "env": env, "token_env": TOKEN_VAR,
         "visibility_timeout_ms": VISIBILITY_MS, "max_deliveries": 5,
         "consumer_idle_ms": 3600000,
         "autoscale": {"target_backlog_per_worker": 4, "min_workers": 0, "max_workers": 20,
                       "active_window_ms": 5000}}
    if autoscale:
        s["autoscale"].update(autoscale)
    s.update(kw)
    return s


class ControlEnv(Env):
    """Env (worker_harness) plus tripgen-scheduler replicas on the same redis."""

    def r(self, *args):
        return redis_call(self.sock, *args)

    def write_config(self, services, name, interval_ms=INTERVAL_MS, lease_ms=LEASE_MS,
                     enabled=True):
        cfg = {"listen": "127.0.0.1:0", "redis": {"url": "redis://127.0.0.1:1"},
               "log": {"level": "info"}, "long_poll_max_ms": 10000, "threads": 8,
               "control": {"enabled": enabled, "interval_ms": interval_ms,
                           "lease_ms": lease_ms},
               "services": services}
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    def start_scheduler(self, services=None, config=None, **control):
        """A scheduler replica; .port, .base and .holder (its name in the leases) set."""
        if config is None:
            config = self.write_config(services or [service()],
                                       "scheduler-%d.json" % len(self.procs), **control)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPGEN_")}
        env["TRIPGEN_REDIS_URL"] = self.url
        env[TOKEN_VAR] = TOKEN
        log_path = os.path.join(self.dir, "scheduler-%d.log" % len(self.procs))
        log = open(log_path, "w")
        p = subprocess.Popen([os.path.join(self.build, "scheduler/tripgen-scheduler"),
                              "--config", config], env=env, stdout=log, stderr=log,
                             cwd=self.root)
        p.log_path = log_path
        p.config = config
        self.procs.append(p)
        m = self.wait(lambda: re.search(r"event=http_listening port=(\d+)", self.log(p)) or
                      p.poll() is not None, 15, "the scheduler to listen")
        if p.poll() is not None:
            raise AssertionError("scheduler exited at start (%d):\n%s" % (p.returncode,
                                                                          self.log(p)))
        p.port = int(m.group(1))
        p.base = "http://127.0.0.1:%d" % p.port
        h = re.search(r"event=control_started holder=(\S+)", self.log(p))
        p.holder = h.group(1) if h else None
        return p

    # -- HTTP ---------------------------------------------------------------------------
    @staticmethod
    def http(p, path, method="GET", headers=None, timeout=10):
        req = urllib.request.Request(p.base + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as ex:
            return ex.code, ex.read().decode()

    def metrics(self, p):
        """/metrics as {(name, frozenset(labels)): value}."""
        status, body = self.http(p, "/metrics")
        eq(status, 200, "GET /metrics")
        out = {}
        for line in body.splitlines():
            m = re.match(r'^(\w+)\{([^}]*)\} (\S+)$', line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def metric(self, p, name, **labels):
        """One sample of /metrics (labels: env=..., and service=... for the gauges)."""
        return self.metrics(p).get((name, frozenset(labels.items())))

    def leader(self, p, env="dev"):
        return self.metric(p, "tripgen_scheduler_leader", env=env)

    def autoscale(self, p, svc="trip-dev"):
        status, body = self.http(p, "/v1/autoscale" + ("/" + svc if svc else ""))
        return status, (json.loads(body) if body.startswith("{") else body)

    def wait_autoscale(self, p, what, cond, svc="trip-dev", timeout=15):
        """Poll /v1/autoscale/<svc> until cond(doc) holds; the doc."""
        last = [None]

        def ok():
            status, doc = self.autoscale(p, svc)
            last[0] = (status, doc)
            return status == 200 and cond(doc) and doc
        try:
            return self.wait(ok, timeout, what)
        except AssertionError:
            raise AssertionError("timed out waiting for %s; last /v1/autoscale/%s: %r" %
                                 (what, svc, last[0]))

    def eas(self, p, method, svc, query):
        """An EAS queue request with the service's token (docs/eas-api.md)."""
        return self.http(p, "/api/predict/%s?%s" % (svc, query), method=method, headers={
            "Authorization": TOKEN, "X-EAS-QueueService-Redis-Uid": str(uuid.uuid4()),
            "X-EAS-QueueService-Redis-Gid": "eas"})

    # -- queue state ----------------------------------------------------------------------
    def pending_entries(self, env="dev"):
        """[(entry id, consumer, deliveries)] of the workers' group on the input stream."""
        try:
            rows = self.r("XPENDING", key(env, "in"), GROUP, "-", "+", "1000")
        except RedisError:
            return []
        return [(row[0], row[1], row[3]) for row in rows]

    def sink(self, env="dev"):
        """Every result on the env's output stream, as dicts (the frame's result JSON)."""
        out = []
        for _id, fields in self.r("XRANGE", key(env, "out"), "-", "+") or []:
            f = pairs(fields)
            res = json.loads(f["result"])
            res["_frame_request_id"] = f.get("request_id")
            out.append(res)
        return out

    def dlq(self, env="dev"):
        r = self.tripgen("dlq", "list", "--json", env=env)
        return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]

    def put_files(self, files, env="dev"):
        return self.tripgen("put", *[os.path.join(self.root, "tests/data/trips", f)
                                     for f in files], env=env).stdout.split()


def wait_leader(e, scheds, timeout=15, env="dev"):
    """Wait until exactly one of scheds reports leader 1; that one."""
    def one():
        ls = [s for s in scheds if e.leader(s, env) == 1]
        return ls[0] if len(ls) == 1 and all(e.leader(s, env) == 0 for s in scheds
                                             if s is not ls[0]) else None
    return e.wait(one, timeout, "exactly one leader")


# -- 1. leadership ------------------------------------------------------------------------
def test_leader_failover(e):
    cfg = e.write_config([service()], "shared.json")
    a = e.start_scheduler(config=cfg)
    b = e.start_scheduler(config=cfg)
    check(a.holder and b.holder and a.holder != b.holder, "distinct holders %r %r" %
          (a.holder, b.holder))
    lead = wait_leader(e, [a, b])
    other = b if lead is a else a
    eq(e.r("GET", key("dev", "lease:control")), lead.holder, "the lease names the leader")
    for _ in range(10):  # stays put while the leader lives: one leader, every time
        eq((e.leader(lead), e.leader(other)), (1.0, 0.0), "leader / follower")
        time.sleep(INTERVAL_MS / 1000)
    eq(e.r("GET", key("dev", "lease:control")), lead.holder, "the lease still names it")

    # kill -9: nobody releases the lease; the other takes it once it expires
    t_kill = time.time()
    e.kill(lead)
    held_by = e.r("GET", key("dev", "lease:control"))
    t_read = time.time()  # the lease cannot be taken before t_read + pttl
    pttl = e.r("PTTL", key("dev", "lease:control"))
    e.wait(lambda: e.leader(other) == 1, (LEASE_MS + 2 * INTERVAL_MS) / 1000 + 10,
           "the follower to take the lease")
    t_new = time.time()
    took = t_new - t_kill
    print("failover after kill -9: %.2fs (lease_ms %d, interval_ms %d)" %
          (took, LEASE_MS, INTERVAL_MS), flush=True)
    bound = (LEASE_MS + 2 * INTERVAL_MS) / 1000 + SLACK_S
    check(took <= bound, "failover took %.2fs, bound lease_ms + 2 intervals + slack = %.2fs" %
          (took, bound))
    if held_by == lead.holder and pttl > 0:  # not before the dead leader's lease expired
        check(t_new - t_read >= pttl / 1000 - 0.02,
              "taken %.3fs after the read, while the dead leader's lease had %d ms left" %
              (t_new - t_read, pttl))
    eq(e.r("GET", key("dev", "lease:control")), other.holder, "the lease names the new leader")
    e.wait(lambda: "event=lease_taken" in e.log(other), 2, "the new leader to log lease_taken")

    # the new leader runs the loops: a due retry goes back to the input stream
    rid = e.put_files([SAMPLES[0]])[0]
    [(entry_id, fields)] = e.r("XRANGE", key("dev", "in"), "-", "+")
    f = pairs(fields)
    eq(f["request_id"], rid, "the entry put")
    eq(e.r("XDEL", key("dev", "in"), entry_id), 1, "XDEL")
    member = "n\t%s\t%s\t%s" % (rid, f["enqueued_at"], f["job"])
    # due a little later, so the depth read sees it delayed before the leader promotes it
    e.r("ZADD", key("dev", "delayed"), str(now_ms() + 3000), member)
    eq(e.depth()["delayed"], 1, "the retry is delayed")
    e.wait(lambda: e.r("XLEN", key("dev", "in")) == 1 and
           e.r("ZCARD", key("dev", "delayed")) == 0, 10, "the new leader to promote it")
    [(_, fields)] = e.r("XRANGE", key("dev", "in"), "-", "+")
    eq(pairs(fields)["job"], f["job"], "the same job back in the input stream")
    d = e.depth()
    eq((d["waiting"], d["delayed"]), (1, 0), "depth after the promotion")
    e.wait(lambda: (e.metric(other, "tripgen_control_promoted_total", env="dev") or 0) >= 1,
           5, "promoted_total on the new leader")

    # SIGTERM: the leader gives the lease up at once, a third replica takes it next round
    c = e.start_scheduler(config=cfg)
    e.wait(lambda: e.metric(c, "tripgen_depth_ok", service="trip-dev", env="dev") == 1, 10,
           "the third replica to read the depth")
    eq(wait_leader(e, [other, c]), other, "the leader stays the leader")
    t_term = time.time()
    other.send_signal(signal.SIGTERM)
    eq(other.wait(timeout=30), 0, "exit 0 on SIGTERM")
    t_exit = time.time()
    held_by = e.r("GET", key("dev", "lease:control"))
    check(held_by in (None, c.holder), "released on SIGTERM: the lease names %r" % held_by)
    check("event=lease_released" in e.log(other), "lease_released logged")
    e.wait(lambda: e.leader(c) == 1, 10, "the third replica to take the released lease")
    t_c = time.time()
    print("handover after SIGTERM: %.2fs from the signal, %.2fs from the exit" %
          (t_c - t_term, t_c - t_exit), flush=True)
    check(t_c - t_exit < LEASE_MS / 1000 * 0.8,
          "taken %.2fs after the old leader exited: not released (lease_ms %d)?" %
          (t_c - t_exit, LEASE_MS))
    eq(e.r("GET", key("dev", "lease:control")), c.holder, "the lease names the third replica")


# -- 2. a killed worker's jobs --------------------------------------------------------------
def test_killed_worker_jobs_reclaimed_once(e):
    sched = e.start_scheduler()
    e.start_standin("--latency-ms", "2500")
    w1 = e.start_worker(name="w1", queue_housekeeping="false", diffusion_slots=2)
    ids = e.put_files(SAMPLES)
    eq(len(set(ids)), 3, "three request ids")
    e.wait(lambda: [c for _, c, _ in e.pending_entries()] == ["w1"] * 3, 15,
           "w1 to take all three")
    e.kill(w1)
    # only the scheduler reclaims: the entries go to the parked consumer after the
    # visibility timeout, with their delivery count unchanged
    e.wait(lambda: [c for _, c, _ in e.pending_entries()] == [PARKED] * 3, 15,
           "the scheduler to park the three entries")
    check(all(n == 1 for _, _, n in e.pending_entries()), "parking is no delivery: %r" %
          e.pending_entries())
    check((e.metric(sched, "tripgen_control_reclaimed_total", env="dev") or 0) >= 3,
          "reclaimed_total >= 3")
    st, doc = e.autoscale(sched)
    eq(st, 200, "autoscale")
    check(doc["pending"] == 3 and doc["desired_workers"] >= 1,
          "parked jobs keep a worker wanted: %r" % doc)
    w2 = e.start_worker(name="w2", queue_housekeeping="false", diffusion_slots=2)
    e.wait(lambda: len(e.sink()) >= 3, 40, "three results")
    e.wait(lambda: (lambda d: d["pending"] == 0 and d["waiting"] == 0)(e.depth()), 10,
           "the queue to empty")
    # no second result may follow: wait past another visibility timeout and a few rounds
    time.sleep(VISIBILITY_MS / 1000 + 5 * INTERVAL_MS / 1000)
    frames = e.sink()
    eq(len(frames), 3, "exactly three frames on the sink")
    eq(sorted(f["request_id"] for f in frames), sorted(ids), "one result per request")
    for f in frames:
        eq((f["status"], f["worker"], f["_frame_request_id"]),
           ("succeeded", "w2", f["request_id"]), "result of " + f["request_id"])
    check("event=parked_claimed" in e.log(w2), "w2 claimed the parked entries")
    d = e.depth()
    eq((d["waiting"], d["pending"], d["delayed"], d["dead"]), (0, 0, 0, 0), "depth at the end")
    check((e.metric(sched, "tripgen_control_reclaimed_total", env="dev") or 0) >= 3,
          "reclaimed_total on the leader")
    eq(e.leader(sched), 1.0, "the only scheduler leads")
    check(w2.poll() is None, "w2 alive")


# -- 3. max_deliveries ----------------------------------------------------------------------
def test_max_deliveries_dead_letters(e):
    # dev: real workers, killed after each take; sim: simulated deliveries, no worker at all
    sched = e.start_scheduler([service(max_deliveries=2),
                               service("trip-sim", "sim", max_deliveries=2)])
    e.start_standin("--latency-ms", "8000")
    rid = e.put_files([SAMPLES[1]])[0]
    sim_rid = e.put_files([SAMPLES[2]], env="sim")[0]
    # sim, delivery 1: a fake consumer reads it and "dies"
    [[_, [[sim_id, _]]]] = e.r("XREADGROUP", "GROUP", GROUP, "fake-1", "COUNT", "1",
                               "STREAMS", key("sim", "in"), ">")

    w1 = e.start_worker(name="w1", queue_housekeeping="false", queue_max_deliveries=2)
    e.wait(lambda: e.pending_entries() and e.pending_entries()[0][1] == "w1", 15,
           "w1 to take the job")
    e.kill(w1)
    e.wait(lambda: e.pending_entries() and e.pending_entries()[0][1] == PARKED, 15,
           "the scheduler to park w1's job")
    eq(e.pending_entries()[0][2], 1, "one delivery so far")
    w2 = e.start_worker(name="w2", queue_housekeeping="false", queue_max_deliveries=2)
    e.wait(lambda: e.pending_entries() and e.pending_entries()[0][1] == "w2", 15,
           "w2 to claim the parked job")
    eq(e.pending_entries()[0][2], 2, "two deliveries")
    e.kill(w2)

    # sim, delivery 2: once parked, a second fake consumer claims it the way take() does
    e.wait(lambda: [c for _, c, _ in e.pending_entries("sim")] == [PARKED], 15,
           "the scheduler to park the simulated delivery")
    e.r("XCLAIM", key("sim", "in"), GROUP, "fake-2", "0", sim_id)
    eq([(c, n) for _, c, n in e.pending_entries("sim")], [("fake-2", 2)], "two deliveries")

    for env, r_id in (("dev", rid), ("sim", sim_rid)):
        e.wait(lambda: e.depth(env)["dead"] == 1, 20, "the scheduler to dead-letter (%s)" % env)
        d = e.depth(env)
        eq((d["waiting"], d["pending"], d["dead"]), (0, 0, 1), "depth of %s" % env)
        [dl] = e.dlq(env)
        eq(dl["request_id"], r_id, "dead letter of %s" % env)
        check(dl["deliveries"] >= 2, "deliveries recorded: %r" % dl["deliveries"])
        eq((dl["result"]["status"], dl["result"]["error"]["code"]), ("failed", "internal"),
           "the dead letter's result")
        check(r_id in e.tripgen("dlq", "list", env=env).stdout, "tripgen dlq list shows it")
        frames = [f for f in e.sink(env) if f["request_id"] == r_id]
        eq(len(frames), 1, "one result on the %s sink" % env)
        eq((frames[0]["status"], frames[0]["error"]["code"]), ("failed", "internal"),
           "the failed result")
        print("%s: dead letter after %d deliveries: %s" % (env, dl["deliveries"],
                                                           frames[0]["error"]["message"]))
        e.wait(lambda: (e.metric(sched, "tripgen_control_dead_lettered_total", env=env) or 0)
               >= 1, 2, "dead_lettered_total (%s)" % env)
    # the workers never dead-lettered it themselves
    for w in (w1, w2):
        check("job_dead_lettered" not in e.log(w), "worker %s dead-lettered" % w.log_path)
    eq(e.r("XLEN", key("dev", "in")) + e.r("XLEN", key("sim", "in")), 0, "inputs empty")


# -- 4. replay ------------------------------------------------------------------------------
def test_replay_new_generation(e):
    e.start_scheduler()
    e.start_standin("--fail", "http500")
    e.start_worker(name="w1", queue_housekeeping="false", retry_max_attempts=1)
    rid = e.put_files([SAMPLES[0]])[0]
    e.wait(lambda: e.depth()["dead"] == 1, 20, "the job to be dead-lettered")
    [first] = e.sink()
    eq((first["request_id"], first["generation"], first["status"]), (rid, 0, "failed"),
       "generation 0 failed")
    eq((first["error"]["code"], first["error"]["retryable"]), ("diffusion_failed", True),
       "a retryable error, out of attempts")
    [dl] = e.dlq()
    eq((dl["request_id"], dl["generation"]), (rid, 0), "the dead letter")
    line = e.tripgen("dlq", "list").stdout.split()
    eq(line[:3], [str(dl["dlq_index"]), rid, "0"], "tripgen dlq list")

    e.standin_control(fail="none")
    out = e.tripgen("dlq", "replay", str(dl["dlq_index"])).stdout.split()
    eq(out[:2], [rid, "1"], "replay prints REQUEST_ID GENERATION INDEX")
    e.wait(lambda: len(e.sink()) >= 2, 20, "the replayed job's result")
    frames = [f for f in e.sink() if f["request_id"] == rid]
    eq([(f["generation"], f["status"]) for f in frames], [(0, "failed"), (1, "succeeded")],
       "two frames for the request: generation 0 failed, generation 1 succeeded")
    got = json.loads(e.tripgen("get", rid).stdout)
    eq((got["request_id"], got["generation"], got["status"]), (rid, 1, "succeeded"),
       "tripgen get returns the new generation")
    eq(e.dlq(), [], "the dead letters are empty")
    e.wait(lambda: (lambda d: (d["dead"], d["pending"], d["waiting"]) == (0, 0, 0))(e.depth()),
           10, "an empty queue")
    time.sleep(0.5)
    eq(len(e.sink()), 2, "no other frame")


# -- 5. desired_workers ----------------------------------------------------------------------
def test_desired_workers_scripted(e):
    # two replicas over one queue with different autoscale settings (no worker runs)
    vis = 300000  # nothing gets parked here
    s8 = e.start_scheduler([service(visibility_timeout_ms=vis, autoscale={
        "target_backlog_per_worker": 4, "min_workers": 0, "max_workers": 8,
        "active_window_ms": 10000})])
    s20 = e.start_scheduler([service(visibility_timeout_ms=vis, autoscale={
        "target_backlog_per_worker": 4, "min_workers": 2, "max_workers": 20,
        "active_window_ms": 10000})], enabled=False)  # control off: depth only, no lease

    def both(what, cond8, cond20):
        return (e.wait_autoscale(s8, what + " (max 8)", cond8),
                e.wait_autoscale(s20, what + " (min 2, max 20)", cond20))

    # empty queue: min_workers
    a, b = both("an empty queue", lambda d: d["waiting"] == 0, lambda d: d["waiting"] == 0)
    eq((a["waiting"], a["pending"], a["desired_workers"], a["backlog_per_worker"],
        a["oldest_waiting_age_seconds"]), (0, 0, 0, 0, 0), "empty, min 0")
    eq((b["desired_workers"], b["min_workers"], b["max_workers"]), (2, 2, 20), "empty, min 2")
    eq((a["service"], a["env"], a["target_backlog_per_worker"]), ("trip-dev", "dev", 4),
       "echoed settings")

    # one job: scale from zero
    e.put_files([SAMPLES[0]])
    a, b = both("one waiting job", lambda d: d["waiting"] == 1, lambda d: d["waiting"] == 1)
    eq(a["desired_workers"], 1, "one job, min 0: desired 1")
    eq(b["desired_workers"], 2, "one job, min 2: desired 2")
    check(a["oldest_waiting_age_seconds"] >= 0, "age %r" % a["oldest_waiting_age_seconds"])

    # 40 jobs = 10 x target: clamped to max
    e.put_files([SAMPLES[k % 3] for k in range(39)])
    a, b = both("40 waiting jobs", lambda d: d["waiting"] == 40, lambda d: d["waiting"] == 40)
    eq(a["desired_workers"], 8, "40 jobs, max 8")
    eq(b["desired_workers"], 10, "40 jobs, max 20")
    check(a["oldest_waiting_age_seconds"] > 0, "the oldest job has an age")
    m = e.metrics(s8)
    lab = frozenset({"service": "trip-dev", "env": "dev"}.items())
    eq((m[("tripgen_desired_workers", lab)], m[("tripgen_queue_waiting", lab)],
        m[("tripgen_autoscale_max_workers", lab)]), (8, 40, 8), "the same numbers on /metrics")
    st, all_ = e.autoscale(s20, None)
    eq((st, [s["service"] for s in all_["services"]]), (200, ["trip-dev"]), "/v1/autoscale")
    eq(e.autoscale(s20, "no-such-service")[0], 404, "unknown service")

    # 5 delivered to a consumer (pending), then 18 never-delivered ones deleted through EAS
    e.r("XREADGROUP", "GROUP", GROUP, "fake-1", "COUNT", "5", "STREAMS", key("dev", "in"), ">")
    ids = [i for i, _ in e.r("XRANGE", key("dev", "in"), "-", "+")]
    eq(ids[:2], ["0-1", "0-2"], "input indexes")
    gone = [i.split("-")[1] for i in ids[5:23]]
    st, body = e.eas(s8, "DELETE", "trip-dev", "_indexes_=" + ",".join(gone))
    eq((st, body), (200, "OK"), "EAS delete")
    lag = pairs(e.r("XINFO", "GROUPS", key("dev", "in"))[0]).get("lag")
    print("XINFO GROUPS lag after deleting undelivered entries: %r (nil on Redis 7.0)" % lag)
    a, b = both("after deletes", lambda d: d["waiting"] == 17 and d["pending"] == 5,
                lambda d: d["waiting"] == 17 and d["pending"] == 5)
    eq((a["desired_workers"], b["desired_workers"]), (6, 6), "ceil(22 / 4) after deletes")
    eq(a["backlog_per_worker"], 22, "no heartbeat: divided by 1")

    # heartbeats: two fresh ones count, an old one does not
    t = now_ms()
    e.r("ZADD", key("dev", "workers"), str(t), "a", str(t), "b", str(t - 60000), "c")
    a, b = both("two active workers", lambda d: d["active_workers"] == 2,
                lambda d: d["active_workers"] == 2)
    eq((a["backlog_per_worker"], a["desired_workers"]), (11, 6), "(17 + 5) / 2")
    eq(b["backlog_per_worker"], 11, "the same on the other replica")

    # truncate everything (EAS acks for the workers too): back to min_workers
    last = int(ids[-1].split("-")[1])
    st, _ = e.eas(s20, "DELETE", "trip-dev", "_index_=%d&_trunc_=true" % (last + 1))
    eq(st, 200, "EAS truncate")
    a, b = both("an emptied queue", lambda d: d["waiting"] + d["pending"] == 0,
                lambda d: d["waiting"] + d["pending"] == 0)
    eq((a["desired_workers"], b["desired_workers"]), (0, 2), "emptied: min_workers")
    eq((a["backlog_per_worker"], a["oldest_waiting_age_seconds"]), (0, 0), "emptied")
    eq((a["leader"], b["leader"]), (True, False), "only the replica with control on leads")
    eq(e.r("GET", key("dev", "lease:control")), s8.holder, "the lease names it")
    check("event=lease_taken" not in e.log(s20), "control off: the lease is never taken")


# -- 6. consumer hygiene ----------------------------------------------------------------------
def test_consumer_hygiene(e):
    idle_ms, vis = 1000, 60000  # the entry goes stale only when the test makes it so
    svc = [service(consumer_idle_ms=idle_ms, visibility_timeout_ms=vis)]
    cfg = e.write_config(svc, "hygiene.json")
    e.put_files([SAMPLES[0]])
    inp = key("dev", "in")
    eq(e.r("XGROUP", "CREATECONSUMER", inp, GROUP, "ghost"), 1, "ghost created")
    [[_, [[entry, _]]]] = e.r("XREADGROUP", "GROUP", GROUP, "holder", "COUNT", "1",
                              "STREAMS", inp, ">")
    t = now_ms()
    e.r("ZADD", key("dev", "workers"), str(t - 60000), "old-worker", str(t + 60000), "live")

    def consumers():
        return {pairs(c)["name"]: pairs(c) for c in e.r("XINFO", "CONSUMERS", inp, GROUP)}

    eq(set(consumers()), {"ghost", "holder"}, "consumers before")
    time.sleep(idle_ms / 1000 + 0.3)  # both idle longer than consumer_idle_ms
    # the first leading round prunes (later ones every 30 s)
    s1 = e.start_scheduler(config=cfg)
    e.wait(lambda: "ghost" not in consumers(), 10, "the ghost consumer to go")
    eq(set(consumers()), {"holder"}, "the consumer that owns an entry stays")
    eq(e.pending_entries(), [(entry, "holder", 1)], "its entry is still its own")
    # the counter and the log line follow the deletion a moment later
    e.wait(lambda: re.search(r"event=consumers_removed .*count=1", e.log(s1)), 2,
           "consumers_removed logged")
    eq(e.metric(s1, "tripgen_control_consumers_removed_total", env="dev"), 1, "removed_total")
    eq(e.r("ZRANGE", key("dev", "workers"), "0", "-1"), ["live"], "old heartbeats forgotten")

    # the holder's entry goes stale (its idle time set past the visibility timeout, no new
    # delivery counted): parked; only then may the consumer go (next prune: the first
    # leading round of another replica). The claim makes the holder active again, so the
    # next replica starts once it is idle past consumer_idle_ms.
    e.r("XCLAIM", inp, GROUP, "holder", "0", entry, "IDLE", str(vis + 1000), "JUSTID")
    t_claim = time.time()
    e.wait(lambda: e.pending_entries() == [(entry, PARKED, 1)], 15, "the entry to be parked")
    check("holder" in consumers(), "the holder stays until a prune runs")
    eq(e.kill(s1, signal.SIGTERM), 0, "exit 0 on SIGTERM")
    time.sleep(max(0.0, t_claim + idle_ms / 1000 + 0.3 - time.time()))
    s2 = e.start_scheduler(config=cfg)
    e.wait(lambda: "holder" not in consumers(), 10, "the holder consumer to go")
    eq(set(consumers()), {PARKED}, "the parked consumer is never removed")
    eq(e.pending_entries(), [(entry, PARKED, 1)], "the parked entry is untouched")
    e.wait(lambda: e.metric(s2, "tripgen_control_consumers_removed_total", env="dev") == 1, 2,
           "removed_total 1")
    eq(e.depth()["pending"], 1, "still pending, for the next worker")


# -- 7. Redis down ----------------------------------------------------------------------------
def test_autoscale_503_when_redis_down(e):
    s = e.start_scheduler()
    e.wait(lambda: e.autoscale(s)[0] == 200 and e.leader(s) == 1, 10, "200 and leader 1")
    e.put_files(SAMPLES[:2])
    e.wait_autoscale(s, "two waiting jobs", lambda d: d["waiting"] == 2)
    e.redis.kill()
    e.redis.wait()
    t0 = time.time()
    e.wait(lambda: e.autoscale(s)[0] == 503, 10, "/v1/autoscale to answer 503")
    print("503 after %.2fs" % (time.time() - t0), flush=True)
    # a round that renewed the lease just before Redis went away still says leader: true;
    # the next round drops it
    st, doc = e.wait(lambda: (lambda r: r if r[0] == 503 and r[1]["leader"] is False else None)(
        e.autoscale(s)), 10, "a 503 answer with leader false")
    eq(st, 503, "one service")
    # the last numbers, so an autoscaler keeps its last decision; not re-measured
    eq((doc["waiting"], doc["desired_workers"], doc["leader"]), (2, 1, False),
       "the 503 answer's numbers")
    time.sleep(3 * INTERVAL_MS / 1000)
    eq(e.autoscale(s)[1]["measured_at"], doc["measured_at"], "measured_at stands still")
    check(e.metric(s, "tripgen_depth_age_seconds", service="trip-dev", env="dev") > 0,
          "depth_age_seconds grows")
    eq(e.autoscale(s, None)[0], 503, "every service")
    e.wait(lambda: e.metric(s, "tripgen_depth_ok", service="trip-dev", env="dev") == 0 and
           e.leader(s) == 0, 10, "depth_ok 0 and leader 0")
    check(re.search(r"event=control_step_failed .*service=trip-dev", e.log(s)),
          "the failure is logged")
    eq(e.http(s, "/healthz")[0], 200, "still alive")
    e.start_redis()  # same socket, same AOF
    e.wait(lambda: e.autoscale(s)[0] == 200, 15, "/v1/autoscale to answer 200 again")
    e.wait(lambda: e.leader(s) == 1, 15, "leader 1 again")
    eq(e.metric(s, "tripgen_depth_ok", service="trip-dev", env="dev"), 1, "depth_ok 1")
    eq(e.autoscale(s)[1]["waiting"], 2, "the jobs are still there (AOF)")
    e.wait(lambda: "event=control_recovered" in e.log(s), 2, "control_recovered logged")
    eq(e.kill(s, signal.SIGTERM), 0, "exit 0 on SIGTERM")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, lambda: ControlEnv(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
