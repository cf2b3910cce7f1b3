#!/usr/bin/python3
"""test_eas_api.py BUILD_DIR SOURCE_ROOT [TEST...] - tripgen-scheduler's EAS queue API.

Drives tripgen-scheduler (with a private redis-server, and for some tests the ComfyUI
stand-in and a tripgen-worker) through eas_client.py, a client written to the official
EAS SDKs' calling conventions, and checks every operation and parameter of
docs/eas-api.md: status codes and bodies, put (tags, priority, sub-path, limits, strict
and non-strict validation, idempotency), get (index, length, timeouts, auto-delete,
filters, long polls), both encodings, attributes, commit and negative commit, delete,
truncate, search, count, end of stream, watch over WebSocket and streaming HTTP (window,
auto-commit, index-only, ping/pong, reconnect, redelivery on drop, groups), auth; and
100 sample trips end to end. Run with Debian's /usr/bin/python3 (python3-requests,
python3-websocket, python3-protobuf).
"""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402
import eas_client  # noqa: E402
from eas_client import (PROTOBUF, HEADER_REQUEST_ID, GoQueueClient, QueueClient,  # noqa: E402
                        QueueError, decode_attributes, decode_frame_list)

import websocket  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SAMPLES = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]
TOKENS = {
    "trip-dev": "tok-dev-5b0f3c1e9a",
    "test_group.qservice": "tok-other-77d2e0a4",
    "trip-strict": "tok-strict-1c9e44",
    "trip-small": "tok-small-a83f10",
}
TOKEN_VARS = {
    "trip-dev": "TRIPGEN_TOKEN_TRIP_DEV",
    "trip-strict": "TRIPGEN_TOKEN_TRIP_STRICT",
    "trip-small": "TRIPGEN_TOKEN_TRIP_SMALL",
}
ATTRIBUTE_KEYS = [
    "meta.name", "meta.backend", "meta.state", "meta.maxPayloadBytes", "meta.header.user",
    "meta.header.group", "meta.header.priority", "meta.header.userIdentifyHeader",
    "meta.header.groupIdentifyHeader", "stream.length", "stream.approxMaxLength",
    "stream.firstEntry", "stream.lastEntry", "consumers.status.total", "consumers.stats.total",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# -- checks ---------------------------------------------------------------------------------
def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: expected %r, got %r" % (what, want, got))


def expect(r, status, body=None, what=""):
    """An HTTP answer with this status (and exactly this body)."""
    if r.status_code != status or (body is not None and r.content != body):
        raise AssertionError("%s%s %s: expected %d %r, got %d %r" % (
            what + ": " if what else "", r.request.method, r.request.url, status, body,
            r.status_code, r.content[:300]))


def idxs(frames):
    return [f.index for f in frames]


# -- sample trips -----------------------------------------------------------------------------
def trip(i, sample=None, **changes):
    """Sample trip i (cycling the samples) with a distinct trip_id, as put bytes."""
    name = sample or SAMPLES[i % len(SAMPLES)]
    with open(os.path.join(ROOT, "tests/data/trips", name)) as f:
        t = json.load(f)
    t["trip_id"] = "%s-eas-%03d" % (t["trip_id"], i)
    t.update(changes)
    return json.dumps(t, ensure_ascii=False).encode("utf-8")


def bad_trip(name="18-weather-number.json"):
    with open(os.path.join(ROOT, "tests/data/bad-trips", name), "rb") as f:
        return f.read()


# -- the harness, extended with the scheduler ----------------------------------------------
class EasEnv(Env):
    """Env (worker_harness) plus tripgen-scheduler and SDK-convention clients."""

    def __init__(self, build, root):
        super().__init__(build, root)
        self.sched = None
        self.port = None
        self.base = None
        self.token_file = os.path.join(self.dir, "other.token")
        with open(self.token_file, "w") as f:
            f.write(TOKENS["test_group.qservice"] + "\n")

    def default_services(self):
        return [
            {"name": "trip-dev", "env": "dev", "token_env": TOKEN_VARS["trip-dev"],
             "strict_put": False, "idempotency_ttl_ms": 600000, "max_watchers": 64,
             "visibility_timeout_ms": 300000, "queue_cap": 100000},
            {"name": "test_group.qservice", "env": "other", "token_file": self.token_file},
            {"name": "trip-strict", "env": "strict", "token_env": TOKEN_VARS["trip-strict"],
             "strict_put": True},
            {"name": "trip-small", "env": "small", "token_env": TOKEN_VARS["trip-small"],
             "queue_cap": 3, "max_watchers": 2, "max_long_polls": 2},
        ]

    def write_config(self, services=None, name="scheduler.json", **top):
        cfg = {"listen": "127.0.0.1:0", "redis": {"url": "redis://127.0.0.1:1"},
               "long_poll_max_ms": 60000,
               "services": services if services is not None else self.default_services()}
        cfg.update(top)
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    def scheduler_env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPGEN_")}
        env["TRIPGEN_REDIS_URL"] = self.url
        for svc, var in TOKEN_VARS.items():
            env[var] = TOKENS[svc]
        return env

    def scheduler_cmd(self, *args):
        return [os.path.join(self.build, "scheduler/tripgen-scheduler"), *args]

    def start_scheduler(self, services=None, **top):
        cfg = self.write_config(services, **top)
        log_path = os.path.join(self.dir, "scheduler-%d.log" % len(self.procs))
        log = open(log_path, "w")
        p = subprocess.Popen(self.scheduler_cmd("--config", cfg), env=self.scheduler_env(),
                             stdout=log, stderr=log, cwd=self.root)
        p.log_path = log_path
        self.procs.append(p)
        m = self.wait(lambda: re.search(r"event=http_listening port=(\d+)", self.log(p)) or
                      p.poll() is not None, 10, "the scheduler to listen")
        if p.poll() is not None:
            raise AssertionError("scheduler exited at start (%d):\n%s" % (p.returncode,
                                                                          self.log(p)))
        self.sched = p
        self.port = int(m.group(1))
        self.base = "http://127.0.0.1:%d" % self.port
        return p

    def client(self, service="trip-dev", sink=False, token=None, **kw):
        return QueueClient(self.base, service + ("/sink" if sink else ""),
                           token=TOKENS.get(service, "") if token is None else token, **kw)

    def go_client(self, service="trip-dev", sink=False):
        return GoQueueClient(self.base, service + ("/sink" if sink else ""),
                             TOKENS[service])


def wait_attr(q, key, want, timeout=5):
    last = {}
    end = time.time() + timeout
    while time.time() < end:
        last = q.attributes()
        if last.get(key) == want:
            return last
        time.sleep(0.05)
    raise AssertionError("attribute %s: expected %r, got %r" % (key, want, last.get(key)))


def put_frames(q, n, prefix="frame", tags=None):
    """n sink puts of small byte strings -> (indexes, request ids, bodies)."""
    out = []
    for k in range(n):
        body = ("%s-%d" % (prefix, k)).encode()
        i, rid = q.put(body, tags)
        out.append((int(i), rid, body))
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]


def recv_either(watchers, timeout):
    """The first frame any of the watchers gets: (which, frame) or (None, None)."""
    end = time.time() + timeout
    while time.time() < end:
        for n, w in enumerate(watchers):
            f = w.recv(0.1)
            if f is not None:
                return n, f
    return None, None


# -- put ---------------------------------------------------------------------------------------
def test_put_answers_index_and_request_id(e):
    e.start_scheduler()
    c = e.client()
    body = trip(0)
    r = c.request("POST", {}, body)
    expect(r, 200)
    check(re.fullmatch(rb"[1-9][0-9]*", r.content), "bare decimal index, no newline: %r"
          % r.content)
    rid = r.headers.get(HEADER_REQUEST_ID)
    check(rid and re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]{16}", rid), "request id %r" % rid)
    i1 = int(r.content)
    i2, rid2 = c.put(trip(1))  # the Python SDK's put
    check(int(i2) > i1 and rid2 != rid, "a new index and request id: %s %s" % (i2, rid2))
    i3, rid3 = e.go_client().put(trip(2))  # Go: strconv.ParseUint(body, 0, 64)
    check(i3 > int(i2) and rid3, "Go put: %s %s" % (i3, rid3))
    f = c.get(index=i1, length=1, timeout="0s", auto_delete=False)
    eq(idxs(f), [i1], "get by index")
    eq(f[0].data, body, "input frames carry the bytes as put")
    eq(f[0].tags.get("requestId"), rid, "requestId tag")
    eq(c.attributes()["stream.length"], "3", "stream.length")
    # a sink put answers the same way
    s = e.client(sink=True)
    r = s.request("POST", {}, b"any bytes \x00\xff")
    expect(r, 200)
    check(re.fullmatch(rb"[1-9][0-9]*", r.content) and r.headers.get(HEADER_REQUEST_ID),
          "sink put: %r %r" % (r.content, r.headers))


def test_put_tags_priority_and_subpath(e):
    e.start_scheduler()
    c = e.client()
    i1, r1 = c.put(trip(0), {"source": "app", "region": "sh"})
    i2, r2 = c.put(trip(1))
    i3, r3 = c.put_priority(trip(2))  # ?_priority_=1
    attrs = c.attributes()
    eq(attrs["meta.header.priority"], "X-EAS-QueueService-Priority", "meta.header.priority")
    i4, r4 = c.put_priority(trip(3), header=attrs["meta.header.priority"])
    i1, i2, i3, i4 = int(i1), int(i2), int(i3), int(i4)
    check(i1 < i2 < i3 < i4, "indexes grow across both streams: %r" % ([i1, i2, i3, i4],))
    f = c.get(index=i1, timeout="0s", auto_delete=False)[0]
    eq(f.tags, {"source": "app", "region": "sh", "requestId": r1}, "tags kept with the frame")
    eq(c.count(), 4, "count")
    eq(c.count(priority=1), 2, "priority count (query and header)")
    eq(c.count(priority=0), 2, "normal count")
    eq(idxs(c.get(index=0, length=10, timeout="0s", auto_delete=False)), [i1, i2, i3, i4],
       "get answers in index order across both streams")
    w = c.watch(0, 10)
    got = w.recv_n(4, 10)
    w.close()
    eq(idxs(got), [i3, i4, i1, i2], "watch: priority frames first, each kind FIFO")
    # a POST to a deeper path of the input queue is a put; the path is kept as _path_
    sub = e.client(path_suffix="a/b")
    i5, r5 = sub.put(trip(4), {"k": "v"})
    f5 = c.get(index=int(i5), timeout="0s", auto_delete=False)[0]
    eq(f5.tags, {"_path_": "/a/b", "k": "v", "requestId": r5}, "sub-path put tags")
    eq(f5.data, trip(4), "sub-path put data")


def test_put_payload_limit_413(e):
    e.start_scheduler()
    c = e.client()
    big = b"x" * 65537
    expect(c.request("POST", {}, big), 413, b"payload too large: 65537 bytes, limit 65536")
    c.attempts = 0
    try:
        c.put(big)
        raise AssertionError("the SDK put of 65537 bytes succeeded")
    except QueueError as q:
        eq(q.status, 413, "SDK put status")
        eq(c.attempts, 6, "the Python SDK sends a non-2xx request 6 times")
    expect(c.request("POST", {}, b"y" * 65536), 200, what="a body of exactly the limit")
    s = e.client(sink=True)
    expect(s.request("POST", {}, big), 413, b"payload too large: 65537 bytes, limit 65536",
           "sink put")
    a = c.attributes()
    eq(a["meta.maxPayloadBytes"], "65536", "meta.maxPayloadBytes")
    eq(a["stream.length"], "1", "only the put within the limit was enqueued")


def test_put_queue_full_429(e):
    e.start_scheduler()
    c = e.client("trip-small")
    eq(c.attributes()["stream.approxMaxLength"], "3", "stream.approxMaxLength = queue_cap")
    first = [int(c.put(trip(k))[0]) for k in range(3)]
    expect(c.request("POST", {}, trip(3)), 429, b"queue full")
    expect(c.request("POST", {"_priority_": "1"}, trip(4)), 429, b"queue full",
           "priority put")
    eq(c.attributes()["stream.length"], "3", "stream.length at the cap")
    eq(c.delete(first[0]), "OK", "delete")
    i, _ = c.put(trip(3))
    check(int(i) > first[-1], "a put after a delete is accepted again")


def test_strict_put_400_and_nonstrict_accepts(e):
    e.start_scheduler()
    c = e.client("trip-strict")
    r = c.request("POST", {}, bad_trip())
    eq(r.status_code, 400, "strict put of an invalid trip")
    check(b"origin.weather: expected string, got number" in r.content and
          not r.content.endswith(b"\n"), "validation message: %r" % r.content)
    r = c.request("POST", {}, b"not json at all")
    eq(r.status_code, 400, "strict put of non-JSON")
    check(r.content, "a reason in the body")
    eq(c.attributes()["stream.length"], "0", "nothing enqueued")
    i, rid = c.put(trip(0))
    check(int(i) > 0 and rid, "a valid trip is accepted")
    # the same bytes on a non-strict service are accepted (any bytes, like EAS)
    d = e.client()
    i1, r1 = d.put(bad_trip())
    i2, r2 = d.put(b"not json at all")
    eq(d.attributes()["stream.length"], "2", "non-strict: enqueued")
    f = d.get(index=int(i2), timeout="0s", auto_delete=False)
    eq(f[0].data, b"not json at all", "the bytes as put")


def test_nonstrict_invalid_put_fails_in_worker(e):
    e.start_scheduler()
    c = e.client()
    _, r1 = c.put(b"this is not a trip")
    _, r2 = c.put(bad_trip())
    e.start_standin("--latency-ms", "20")
    e.start_worker()
    s = e.client(sink=True, timeout_ms=15000)
    # the worker reports the trip's own validation error, not a job-parsing one
    reasons = {r1: "payload: invalid JSON", r2: "origin.weather: expected string, got number"}
    for rid in (r1, r2):
        end = time.time() + 30
        frames = []
        while not frames and time.time() < end:
            frames = s.get(request_id=rid, timeout="10s", auto_delete=False)
        check(frames, "a failed result for %s" % rid)
        f = frames[0]
        eq(f.tags.get("requestId"), rid, "requestId of the result")
        eq(f.tags.get("lastCode"), "400", "lastCode of an invalid input")
        res = json.loads(f.data)
        eq((res["request_id"], res["status"], res["error"]["code"]),
           (rid, "failed", "invalid_input"), "the result")
        check(res["error"]["message"].startswith(reasons[rid]),
              "the trip's reason in the failed result: %r" % res["error"]["message"])


def test_put_idempotent_repeat(e):
    e.start_scheduler()
    c = e.client()
    body = trip(0)
    a = c.request("POST", {}, body)
    b = c.request("POST", {}, body)
    expect(a, 200)
    expect(b, 200, a.content, "a repeat answers the first put's index")
    eq(b.headers.get(HEADER_REQUEST_ID), a.headers.get(HEADER_REQUEST_ID),
       "a repeat answers the first put's request id")
    i, rid = c.put(json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode())
    eq((i, rid), (a.content.decode(), a.headers[HEADER_REQUEST_ID]),
       "the same trip_id in other bytes")
    eq(c.attributes()["stream.length"], "1", "enqueued once")
    i2, rid2 = c.put(trip(1))
    check(int(i2) > int(i) and rid2 != rid, "another trip is a new put")


# -- get ----------------------------------------------------------------------------------------
def test_get_index_length_auto_delete(e):
    e.start_scheduler()
    s = e.client("test_group.qservice", sink=True)
    idx, rids, bodies = put_frames(s, 5)
    eq(idxs(s.get(index=0, length=1, timeout="0s", auto_delete=False)), idx[:1],
       "_index_=0 is the head")
    eq(idxs(s.get(index=idx[2], length=2, timeout="0s", auto_delete=False)), idx[2:4],
       "_index_ and _length_")
    fs = s.get(index=0, length=10, timeout="0s", auto_delete=False)
    eq(idxs(fs), idx, "all frames")
    eq([f.data for f in fs], bodies, "data")
    eq([f.tags.get("requestId") for f in fs], rids, "requestId tags")
    r = s.request("GET", {"_index_": idx[1], "_timeout_": "0s", "_auto_delete_": "false"},
                  accept=PROTOBUF)
    expect(r, 200)
    eq(idxs(decode_frame_list(r.content)), [idx[1]], "_length_ defaults to 1")
    eq(idxs(s.get(index=idx[1], length=1, timeout="0s", auto_delete=True)), [idx[1]],
       "auto-delete get")
    eq(s.attributes()["stream.length"], "4", "auto-deleted")
    eq(idxs(s.get(index=idx[1], length=1, timeout="0s", auto_delete=False)), [idx[2]],
       "from the index on")
    r = s.request("GET", {"_index_": idx[4] + 100, "_length_": 1, "_timeout_": "0s"},
                  accept=PROTOBUF)
    expect(r, 204, b"", "nothing from that index on")
    eq(s.get(index=idx[4] + 100, timeout="0s"), [], "the SDK reads a 204 as no frames")
    for q, what in (({"_index_": "x"}, "_index_=x"), ({"_index_": "0", "_length_": "abc"},
                                                          "_length_=abc")):
        r = s.request("GET", q, accept=PROTOBUF)
        eq(r.status_code, 400, what)
        check(r.content and not r.content.endswith(b"\n"), "%s: a reason: %r" % (what,
                                                                               r.content))


def test_get_timeout_formats(e):
    e.start_scheduler()
    s = e.client(sink=True, timeout_ms=15000)
    i, _ = s.put(b"present")
    i = int(i)
    for t in ("5s", "1m0s", "1.5s", "500ms", "5", "0s"):
        t0 = time.time()
        eq(idxs(s.get(index=i, timeout=t, auto_delete=False)), [i], "_timeout_=%s" % t)
        check(time.time() - t0 < 1.0, "a present frame is answered at once (%s)" % t)
    miss = i + 1000
    for t, lo, hi in (("0s", 0.0, 0.5), ("500ms", 0.3, 0.85), ("1", 0.6, 2.0),
                      ("1.5s", 1.0, 2.5), ("5s", 3.5, 4.95)):
        t0 = time.time()
        r = s.request("GET", {"_index_": miss, "_length_": 1, "_timeout_": t,
                              "_auto_delete_": "false"}, accept=PROTOBUF, timeout=15)
        el = time.time() - t0
        expect(r, 204, b"", "miss with _timeout_=%s" % t)
        check(lo <= el <= hi, "_timeout_=%s: 204 after %.2fs, expected %.2f-%.2f" %
              (t, el, lo, hi))
    # the SDK's default: _timeout_=5s with its own 5 s socket timeout -> 204 before it fires
    sdk = e.client(sink=True)
    t0 = time.time()
    eq(sdk.get(index=miss), [], "SDK get with the defaults")
    check(time.time() - t0 < 5.0, "answered before the SDK's socket timeout")
    r = s.request("GET", {"_index_": 0, "_timeout_": "abc"}, accept=PROTOBUF)
    eq(r.status_code, 400, "_timeout_=abc")
    r = s.request("GET", {"_index_": 0, "_timeout_": "5parsecs"}, accept=PROTOBUF)
    eq(r.status_code, 400, "_timeout_=5parsecs")


def test_get_long_poll_returns_on_arrival(e):
    e.start_scheduler()
    poller = e.client(sink=True, timeout_ms=70000)
    writer = e.client(sink=True)
    res = {}

    def poll(key, **kw):
        try:
            res[key] = poller_for[key].get(timeout="1m0s", auto_delete=False, **kw)
        except Exception as ex:  # noqa: BLE001
            res[key] = ex
        res[key + "_t"] = time.time()

    poller_for = {"any": poller, "rid": e.client(sink=True, timeout_ms=70000)}
    th = threading.Thread(target=poll, args=("any",), kwargs={"index": 0})
    th.start()
    time.sleep(1.0)
    check(th.is_alive(), "the long poll waits while the queue is empty")
    t_put = time.time()
    i, rid = writer.put(b"arrived")
    th.join(15)
    check(not th.is_alive(), "the long poll answered")
    check(not isinstance(res["any"], Exception), "long poll: %r" % res.get("any"))
    eq(idxs(res["any"]), [int(i)], "the frame that arrived")
    check(res["any_t"] - t_put < 5.0, "answered %.2fs after the put" % (res["any_t"] - t_put))
    # by requestId: a frame of another request does not answer it
    th = threading.Thread(target=poll, args=("rid",), kwargs={"request_id": "req-42"})
    th.start()
    time.sleep(0.5)
    writer.put(b"someone else", {"requestId": "req-41"})
    time.sleep(1.0)
    check(th.is_alive(), "a frame of another request does not answer the poll")
    t_put = time.time()
    writer.put(b"mine", {"requestId": "req-42"})
    th.join(15)
    check(not th.is_alive() and not isinstance(res["rid"], Exception),
          "the requestId poll answered: %r" % res.get("rid"))
    eq([(f.data, f.tags.get("requestId")) for f in res["rid"]], [(b"mine", "req-42")],
       "the frame of that request")
    check(res["rid_t"] - t_put < 5.0, "answered %.2fs after the put" % (res["rid_t"] - t_put))


def test_get_filters(e):
    e.start_scheduler()
    s = e.client(sink=True)
    a, ra = s.put(b"red-1", {"color": "red"})
    b, rb = s.put(b"blue-1", {"color": "blue"})
    c, rc = s.put(b"red-2", {"color": "red", "size": "L"})
    a, b, c = int(a), int(b), int(c)
    eq(idxs(s.get(index=0, length=10, timeout="0s", auto_delete=False,
                  tags={"color": "red"})), [a, c], "tag filter")
    eq(idxs(s.get(index=0, length=10, timeout="0s", auto_delete=False,
                  tags={"color": "red", "size": "L"})), [c], "two tags")
    eq(idxs(s.get(request_id=rb, length=10, timeout="0s", auto_delete=False)), [b],
       "requestId filter")
    r = s.request("GET", {"_index_": 0, "_length_": 10, "_timeout_": "0s",
                          "requestId": "no-such-request"}, accept=PROTOBUF)
    expect(r, 204, b"", "no frame of that request")
    r = s.request("GET", {"_index_": 0, "_length_": 10, "_timeout_": "0s", "color": "green"},
                  accept=PROTOBUF)
    expect(r, 204, b"", "no frame with that tag")
    # the input queue: the requestId of the put's header finds the frame
    q = e.client()
    i1, r1 = q.put(trip(0), {"batch": "7"})
    q.put(trip(1), {"batch": "8"})
    eq(idxs(q.get(request_id=r1, length=10, timeout="0s", auto_delete=False)), [int(i1)],
       "input get by requestId")
    eq(idxs(q.get(length=10, timeout="0s", auto_delete=False, tags={"batch": "7"})),
       [int(i1)], "input get by tag")


def test_json_and_protobuf_encodings(e):
    e.start_scheduler()
    s = e.client(sink=True)
    data = bytes(range(256))
    i, rid = s.put(data, {"k": "v"})
    i = int(i)
    q = {"_index_": i, "_length_": 1, "_timeout_": "0s", "_auto_delete_": "false"}
    for accept in (None, "application/json"):
        r = s.request("GET", q, accept=accept)
        expect(r, 200)
        frames = json.loads(r.content)
        eq(len(frames), 1, "one JSON frame")
        f = frames[0]
        eq(set(f), {"index", "tags", "data", "message"}, "JSON frame keys")
        check(isinstance(f["index"], int) and f["index"] == i, "JSON index %r" % f["index"])
        eq(base64.b64decode(f["data"]), data, "JSON data is base64")
        eq(f["tags"], {"k": "v", "requestId": rid}, "JSON tags")
        eq(f["message"], "", "JSON message")
    r = s.request("GET", q, accept=PROTOBUF)
    expect(r, 200)
    pf = decode_frame_list(r.content)
    eq([(f.index, f.data, f.tags) for f in pf], [(i, data, {"k": "v", "requestId": rid})],
       "protobuf frame list")
    eq(eas_client.decode_frame_list_json(s.request("GET", q).content)[0].data, data,
       "JSON and protobuf agree")
    ja = json.loads(s.request("GET", {"_attrs_": "true"}).content)
    pr = s.request("GET", {"_attrs_": "true"}, accept=PROTOBUF)
    expect(pr, 200)
    pa = decode_attributes(pr.content)
    check(all(isinstance(v, str) for v in ja.values()), "JSON attribute values are strings")
    eq(sorted(pa), sorted(ja), "the same attribute keys in both encodings")
    for k in ja:
        if k.startswith(("meta.", "stream.")):
            eq(pa[k], ja[k], "attribute %s in both encodings" % k)


# -- attributes, search, count ----------------------------------------------------------
def test_attributes_keys(e):
    e.start_scheduler()
    c = e.client()
    a = c.attributes()
    eq(a.get("stream.length"), "0", "an empty queue")
    i1, _ = c.put(trip(0))
    i2, _ = c.put(trip(1))
    a = c.attributes()
    eq([k for k in ATTRIBUTE_KEYS if k not in a], [], "attribute keys")
    check(all(isinstance(v, str) for v in a.values()), "all values strings")
    check("trip-dev" in a["meta.name"], "meta.name %r" % a["meta.name"])
    eq(a["meta.backend"], "redis", "meta.backend")
    eq(a["meta.state"], "Running", "meta.state")
    eq(a["meta.maxPayloadBytes"], "65536", "meta.maxPayloadBytes")
    eq(a["meta.header.user"], "X-EAS-QueueService-Redis-Uid", "meta.header.user")
    eq(a["meta.header.group"], "X-EAS-QueueService-Redis-Gid", "meta.header.group")
    eq(a["meta.header.priority"], "X-EAS-QueueService-Priority", "meta.header.priority")
    eq(a["meta.header.userIdentifyHeader"], a["meta.header.user"], "userIdentifyHeader")
    eq(a["meta.header.groupIdentifyHeader"], a["meta.header.group"], "groupIdentifyHeader")
    eq(a["stream.length"], "2", "stream.length")
    eq(a["stream.approxMaxLength"], "100000", "stream.approxMaxLength = queue_cap")
    eq(a["stream.firstEntry"], i1, "stream.firstEntry")
    eq(a["stream.lastEntry"], i2, "stream.lastEntry")
    check(re.fullmatch(r"\d+", a["consumers.status.total"]) and
          re.fullmatch(r"\d+", a["consumers.stats.total"]), "consumer totals")
    s = e.client(sink=True)
    a = s.attributes()
    eq([k for k in ATTRIBUTE_KEYS if k not in a], [], "sink attribute keys")
    eq(a["stream.length"], "0", "empty sink")
    # a watcher shows up in consumers.list.[i] and groups.list.[i]
    wc = e.client(uid="attr-u1", gid="attr-g")
    w = wc.watch(0, 10)
    eq(len(w.recv_n(2, 5)), 2, "the watcher's frames")
    end = time.time() + 5
    while time.time() < end:
        a = c.attributes()
        if any(k.startswith("consumers.list.[") for k in a):
            break
        time.sleep(0.1)
    cons = {k: v for k, v in a.items() if k.startswith("consumers.list.[")}
    groups = {k: v for k, v in a.items() if k.startswith("groups.list.[")}
    check("consumers.list.[0]" in cons and any("attr-u1" in v for v in cons.values()),
          "consumers.list: %r" % cons)
    check("groups.list.[0]" in groups and any("attr-g" in v for v in groups.values()),
          "groups.list: %r" % groups)
    check(int(a["consumers.stats.total"]) >= 1, "consumers.stats.total %r" %
          a["consumers.stats.total"])
    w.close()
    # the Go SDK reads the same attributes as AttributesProto
    ga = e.go_client().obtain_attr()
    eq([k for k in ATTRIBUTE_KEYS if k not in ga], [], "Go (protobuf) attribute keys")
    eq(ga["meta.header.user"], "X-EAS-QueueService-Redis-Uid", "Go meta.header.user")
    eq(ga["stream.lastEntry"], i2, "Go stream.lastEntry")


def test_search(e):
    e.start_scheduler()
    c = e.client()
    i1, i2, i3 = [int(c.put(trip(k))[0]) for k in range(3)]
    eq(c.search(i1), {"IsPending": False, "WaitCount": 0}, "search the head")
    eq(c.search(i3), {"IsPending": False, "WaitCount": 2}, "search the third")
    eq(c.search(i3 + 1000)["WaitCount"], -1, "no such frame")
    r = c.request("GET", {"_search_": "true", "_index_": i2})
    expect(r, 200)
    eq(json.loads(r.content), {"IsPending": False, "WaitCount": 1}, "raw search body")
    # a worker takes the head (what tripgen-worker's read does, on the workers' group)
    e.redis_cli("XGROUP", "CREATE", "tripgen:{dev}:in", "workers", "0", "MKSTREAM")
    e.redis_cli("XREADGROUP", "GROUP", "workers", "sim-worker", "COUNT", "1", "STREAMS",
                "tripgen:{dev}:in", ">")
    eq(c.search(i1), {"IsPending": True, "WaitCount": 0}, "a taken frame is pending")
    eq(c.search(i3), {"IsPending": False, "WaitCount": 1}, "one undelivered frame ahead")
    eq(c.search(0), {}, "the SDK sends no search for index 0")
    eq(c.request("GET", {"_search_": "true", "_index_": "x"}).status_code, 400, "bad index")


def test_count(e):
    e.start_scheduler()
    c = e.client()
    c.put(trip(0), {"a": "1"})
    c.put(trip(1), {"a": "1"})
    c.put_priority(trip(2), {"a": "1"})
    c.put(trip(3), {"a": "2"})
    eq(c.count(), 4, "count")
    eq(c.count(priority=1), 1, "_priority_=1")
    eq(c.count(priority=0), 3, "_priority_=0")
    eq(c.count({"a": "1"}), 3, "a tag")
    eq(c.count({"a": "1"}, priority=1), 1, "a tag and _priority_=1")
    eq(c.count({"a": "3"}), 0, "no match")
    expect(c.request("GET", {"_count_": "true"}), 200, b"4", "bare decimal")
    s = e.client(sink=True)
    put_frames(s, 2, tags={"x": "y"})
    s.put(b"other")
    eq(s.count(), 3, "sink count")
    eq(s.count({"x": "y"}), 2, "sink count by tag")


# -- commit, negative commit, delete, truncate, end of stream -------------------------
def test_commit_and_negative_commit(e):
    e.start_scheduler()
    svc = "test_group.qservice"
    s = e.client(svc, sink=True)
    idx, _, _ = put_frames(s, 3)
    a = e.client(svc, sink=True, uid="cons-a", gid="g1")
    wa = a.watch(0, 3)
    eq(idxs(wa.recv_n(3, 5)), idx, "consumer a gets the frames")
    b = e.client(svc, sink=True, uid="cons-b", gid="g1")
    wb = b.watch(0, 10)
    check(wb.recv(1.0) is None, "consumer b gets nothing: all are pending on a")
    r = a.request("PUT", {"_indexes_": idx[0]})
    expect(r, 200, b"OK", "commit")
    eq(s.attributes()["stream.length"], "2", "a committed frame is deleted")
    r = a.request("PUT", {"_indexes_": idx[1], "_negative_": "true"},
                  body="_code_=Shutdown&_reason_=going+away", headers=FORM)
    expect(r, 200, b"OK", "negative commit")
    which, f = recv_either([wb, wa], 5)
    check(f is not None and f.index == idx[1],
          "a negatively committed frame is delivered again in the group: %r" % f)
    eq(s.attributes()["stream.length"], "2", "a negatively committed frame is kept")
    check(which == 0, "the refused frame goes to another consumer of the group (b), not "
          "back to the consumer that refused it (a)")
    b.commit(idx[1])
    eq(s.attributes()["stream.length"], "1", "committed after redelivery")
    # the Go SDK's Commit needs exactly 200; several indexes at once
    eq(e.go_client(svc, sink=True).commit(idx[2]).status_code, 200, "Go commit")
    eq(s.attributes()["stream.length"], "0", "all committed")
    wa.close()
    wb.close()
    r = a.request("PUT", {"_indexes_": "1,x"})
    eq(r.status_code, 400, "bad _indexes_")


def test_delete_and_truncate(e):
    e.start_scheduler()
    s = e.client("test_group.qservice", sink=True)
    idx, _, _ = put_frames(s, 5)
    eq(s.delete([idx[1], idx[3]]), "OK", "delete two")
    eq(s.attributes()["stream.length"], "3", "deleted")
    eq(idxs(s.get(index=0, length=10, timeout="0s", auto_delete=False)),
       [idx[0], idx[2], idx[4]], "what is left")
    eq(s.truncate(idx[4]), b"OK", "truncate below the last")
    a = s.attributes()
    eq((a["stream.length"], a["stream.firstEntry"]), ("1", str(idx[4])), "truncated")
    s.truncate(int(a["stream.lastEntry"]) + 1)
    eq(s.attributes()["stream.length"], "0", "truncate(lastEntry+1) empties the queue")
    eq(s.request("DELETE", {"_indexes_": "x"}).status_code, 400, "bad _indexes_")
    eq(s.request("DELETE", {"_index_": "x", "_trunc_": "true"}).status_code, 400,
       "bad truncate index")
    # on the input queue, delete and truncate ack for the workers too: depth stays right
    c = e.client()
    ins = [int(c.put(trip(k))[0]) for k in range(4)]
    eq(e.depth()["waiting"], 4, "depth after puts")
    eq(c.delete(ins[0]), "OK", "input delete")
    eq(e.depth()["waiting"], 3, "depth after a delete")
    e.go_client().truncate(ins[2])  # Go: Truncate needs exactly 200
    d = e.depth()
    eq((d["waiting"], d["pending"]), (2, 0), "depth after a truncate")
    a = c.attributes()
    c.truncate(int(a["stream.lastEntry"]) + 1)
    d = e.depth()
    eq((d["waiting"], d["pending"]), (0, 0), "depth after truncate(lastEntry+1)")
    eq(c.attributes()["stream.length"], "0", "input stream.length")
    log = e.log(e.sched)
    check(re.search(r"event=queue_delete .*caller=", log), "deletes are logged with the caller")


def test_end_of_stream(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, _, _ = put_frames(s, 2)
    expect(s.request("POST", {"_eos_": "true"}), 200, b"OK", "end of stream")
    eq(s.attributes()["meta.state"], "EOS", "meta.state after end of stream")
    # the SDK's manual-commit pattern: receive, commit, until the stream ends
    w = s.watch(0, 10)
    got = []
    for _ in range(2):
        f = w.recv(5)
        check(f is not None, "a frame before the end")
        got.append(f.index)
        s.commit(f.index)
    eq(got, idx, "the frames before the end")
    try:
        f = w.recv(5)
        raise AssertionError("the watch went on after the end of stream: %r" % f)
    except EOFError:
        pass
    idx, _, _ = put_frames(s, 2)
    hc = e.client(sink=True, gid="eos-http")
    h = hc.watch_http(0, 10)
    eq(h.status, 200, "HTTP watch")
    for want in idx:
        f = h.recv()
        eq(f.index, want, "HTTP watch: a frame before the end")
        hc.commit(f.index)
    try:
        h.recv()
        raise AssertionError("the HTTP watch went on after the end of stream")
    except EOFError:
        pass
    h.close()
    o = e.client("test_group.qservice", sink=True)
    expect(o.request("POST", {"_eos_": "true", "_force_": "true"}), 200, b"OK", "forced eos")
    eq(e.go_client("trip-dev").end().status_code, 200, "Go End on the input queue")


# -- watch ------------------------------------------------------------------------------------
def test_watch_window_and_commit(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, rids, bodies = put_frames(s, 5)
    c = e.client(sink=True, uid="win-u1", gid="wg")
    w = c.watch(0, 2)
    fs = w.recv_n(2, 5)
    eq(idxs(fs), idx[:2], "a window of 2: two frames")
    eq([(f.data, f.tags.get("requestId")) for f in fs], list(zip(bodies[:2], rids[:2])),
       "frame data and requestId")
    check(w.recv(1.5) is None, "no third frame while two are uncommitted")
    c.commit(fs[0].index)
    eq(idxs(w.recv_n(1, 5)), [idx[2]], "a commit frees one slot")
    check(w.recv(1.0) is None, "window full again")
    c.commit([idx[1], idx[2]])
    eq(idxs(w.recv_n(2, 5)), idx[3:], "the rest")
    w.close()


def test_watch_auto_commit_and_index_only(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, _, _ = put_frames(s, 5, tags={"t": "1"})
    w = e.client(sink=True, gid="ac").watch(0, 2, auto_commit=True)
    eq(idxs(w.recv_n(5, 10)), idx, "auto-commit: the window never fills")
    w.close()
    wait_attr(s, "stream.length", "0")
    idx, _, _ = put_frames(s, 3)
    w = e.client(sink=True, gid="io").watch(0, 10, index_only=True)
    fs = w.recv_n(3, 5)
    eq(idxs(fs), idx, "index-only frames")
    eq([f.data for f in fs], [b"", b"", b""], "index-only frames carry no data")
    w.close()


def test_watch_tags_and_start_index(e):
    e.start_scheduler()
    s = e.client(sink=True)
    r1, _ = s.put(b"r1", {"color": "red"})
    b1, _ = s.put(b"b1", {"color": "blue"})
    r2, _ = s.put(b"r2", {"color": "red"})
    w = e.client(sink=True, gid="reds").watch(0, 10, tags={"color": "red"})
    eq(idxs(w.recv_n(2, 5)), [int(r1), int(r2)], "a tag filter")
    check(w.recv(1.0) is None, "no blue frame")
    w.close()
    w = e.client(sink=True, gid="late").watch(int(b1), 10)
    eq(idxs(w.recv_n(2, 5)), [int(b1), int(r2)], "a new group from _index_")
    w.close()


def test_watch_ping_pong(e):
    e.start_scheduler()
    s = e.client(sink=True)
    w = s.watch(0, 10)
    w.ws.ping("hello")
    end = time.time() + 5
    pong = None
    while time.time() < end and pong is None:
        got = w.recv_control(max(0.05, end - time.time()))
        if got and got[0] == websocket.ABNF.OPCODE_PONG:
            pong = got[1]
    eq(pong, b"hello", "the server answers a ping with its payload")
    time.sleep(5)
    check(w.pings_sent >= 2, "the SDK's pinger ran")
    i, _ = s.put(b"after pings")
    eq(idxs(w.recv_n(1, 5)), [int(i)], "the watch lives on through the SDK's pings")
    w.close()
    quiet = e.client(sink=True, gid="quiet").watch(0, 10, ping=False)
    quiet.recv_n(1, 5)
    end = time.time() + 15
    ping = None
    while time.time() < end and ping is None:
        got = quiet.recv_control(max(0.05, end - time.time()))
        if got and got[0] == websocket.ABNF.OPCODE_PING:
            ping = got
    check(ping is not None, "the server pings an idle client within ~10 s")
    quiet.close()


def test_watch_reconnect_same_uid_resumes(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, _, _ = put_frames(s, 4)
    c = e.client(sink=True, uid="resume-u", gid="rg")
    w = c.watch(0, 2)
    eq(idxs(w.recv_n(2, 5)), idx[:2], "first connection")
    w.close()  # the SDK's close: abort; its reconnect is immediate
    w = c.watch(0, 2)
    eq(sorted(idxs(w.recv_n(2, 5))), idx[:2], "the same uid resumes its uncommitted frames")
    check(w.recv(1.0) is None, "and its window is full again")
    c.commit(idx[:2])
    eq(idxs(w.recv_n(2, 5)), idx[2:], "then new frames")
    w.close()


def test_watch_dropped_connection_goes_to_other_uid(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, _, _ = put_frames(s, 3)
    a = e.client(sink=True, uid="drop-a", gid="dg")
    wa = a.watch(0, 3)
    eq(idxs(wa.recv_n(3, 5)), idx, "a holds every frame")
    wb = e.client(sink=True, uid="drop-b", gid="dg").watch(0, 10)
    check(wb.recv(1.0) is None, "b gets nothing while a holds them")
    t0 = time.time()
    wa.close()
    got = wb.recv_n(3, 10)
    eq(sorted(idxs(got)), idx, "a's uncommitted frames go to b when a drops")
    check(time.time() - t0 < 10, "at once, not after the visibility timeout")
    wb.close()


def test_watch_groups(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, _, _ = put_frames(s, 4)
    w1 = e.client(sink=True, gid="g1").watch(0, 10)
    w2 = e.client(sink=True, gid="g2").watch(0, 10)
    eq(idxs(w1.recv_n(4, 5)), idx, "group g1 sees every frame")
    eq(idxs(w2.recv_n(4, 5)), idx, "group g2 sees every frame")
    c1 = e.client(sink=True, uid="lb-1", gid="g3").watch(0, 2)
    c2 = e.client(sink=True, uid="lb-2", gid="g3").watch(0, 2)
    f1, f2 = c1.recv_n(2, 5), c2.recv_n(2, 5)
    eq(sorted(idxs(f1) + idxs(f2)), idx, "one group's consumers share the frames")
    eq(len(set(idxs(f1)) & set(idxs(f2))), 0, "each frame to one consumer of the group")
    for w in (w1, w2, c1, c2):
        w.close()


def test_watch_http_streaming(e):
    e.start_scheduler()
    s = e.client(sink=True)
    idx, rids, bodies = put_frames(s, 3)
    h = e.client(sink=True, gid="hg").watch_http(0, 10)
    eq(h.status, 200, "HTTP watch status")
    check("chunked" in h.resp.headers.get("Transfer-Encoding", "").lower(),
          "a chunked response: %r" % dict(h.resp.headers))
    fs = [h.recv() for _ in range(3)]
    eq([(f.index, f.data, f.tags.get("requestId")) for f in fs], list(zip(idx, bodies, rids)),
       "length-prefixed DataFrameProto records")
    time.sleep(3)  # idle: whatever the server sends meanwhile must not end a Go reader
    i4, _ = s.put(b"later")
    eq(h.recv().index, int(i4), "a frame put after 3 s idle is streamed")
    h.close()
    h2 = e.client(sink=True, gid="hg2").watch_http(0, 2, read_timeout=3)
    eq([h2.recv().index for _ in range(2)], idx[:2], "window 2: two records")
    try:
        f = h2.recv()
        raise AssertionError("a third record beyond the window: %r" % f)
    except EOFError:
        raise AssertionError("the stream ended instead of waiting")
    except AssertionError:
        raise
    except Exception:  # noqa: BLE001 - the read timed out: the window holds
        pass
    h2.close()


def test_watch_http_dropped_goes_to_other_uid(e):
    # an HTTP watcher that drops on an idle queue: its frames go to the group at once,
    # and its watcher slot is freed (the SDK's HTTP watch has no pings to notice it by)
    e.start_scheduler()
    s = e.client("trip-small", sink=True)
    idx, _, _ = put_frames(s, 2)
    a = e.client("trip-small", sink=True, uid="hdrop-a", gid="hd")
    h = a.watch_http(0, 2)
    eq([h.recv().index for _ in range(2)], idx, "a holds the frames")
    h.close()
    wb = e.client("trip-small", sink=True, uid="hdrop-b", gid="hd").watch(0, 10)
    got = wb.recv_n(2, 10)
    eq(sorted(idxs(got)), idx, "a dropped HTTP watcher's frames go to b")
    end = time.time() + 5  # a's slot is freed a moment after its frames are released
    while True:
        wc = e.client("trip-small", sink=True, uid="hdrop-c", gid="hd2").watch_http(
            0, 10, read_timeout=2)
        if wc.status == 200 or time.time() > end:
            break
        wc.close()
        time.sleep(0.1)
    eq(wc.status, 200, "a's slot was freed (max_watchers 2)")
    wc.close()
    wb.close()


def test_long_polls_bounded_and_identities_checked(e):
    e.start_scheduler()
    c = e.client("trip-small", sink=True)
    results = []
    def poll():
        r = c.request("GET", {"_index_": "0", "_timeout_": "6s"}, timeout=15)
        results.append((r.status_code, r.content))
    threads = [threading.Thread(target=poll) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.5)  # both are waiting now (on a slow machine one may come after the third)
    r = c.request("GET", {"_index_": "0", "_timeout_": "3s"}, timeout=15)
    results.append((r.status_code, r.content))
    expect(c.request("GET", {"_index_": "0"}), 204, b"", "a get that does not wait still works")
    for t in threads:
        t.join()
    eq(sorted(results), [(204, b""), (204, b""), (429, b"too many waiting requests")],
       "three long polls at once (max_long_polls 2): two wait, one is refused")
    # identities reach Redis and the logs: plain names only
    bad = e.client(sink=True, uid="a b=c")
    expect(bad.request("GET", {"_index_": "0"}), 400, None, "a uid with a space")
    expect(e.client(sink=True).request("GET", {"_index_": "0", "requestId": "x" * 65}), 400,
           None, "an over-long requestId filter")
    # a watcher that leaves with nothing uncommitted does not linger as a consumer
    s = e.client(sink=True, uid="leaves-clean", gid="lc")
    w = s.watch(0, 5)
    check(w.recv(0.5) is None, "nothing to send")
    w.close()
    end = time.time() + 5
    while time.time() < end and int(s.attributes()["consumers.status.total"]) != 0:
        time.sleep(0.1)
    eq(s.attributes()["consumers.status.total"], "0", "the consumer is gone")


def test_too_many_watchers_429(e):
    e.start_scheduler()
    ws = [e.client("trip-small", uid="tw-%d" % k).watch(0, 1) for k in range(2)]
    try:
        h = e.client("trip-small", uid="tw-4").watch_http(0, 1)
        eq((h.status, h.resp.content), (429, b"too many watchers"),
           "HTTP watch beyond the limit")
        ws[0].close()
        end = time.time() + 5
        while True:
            try:
                ws.append(e.client("trip-small", uid="tw-5").watch(0, 1))
                break
            except websocket.WebSocketException:
                check(time.time() < end, "a watcher slot is freed when one drops")
                time.sleep(0.2)
        try:
            e.client("trip-small", uid="tw-3").watch(0, 1).close()
            raise AssertionError("a third watcher was accepted (max_watchers 2)")
        except websocket.WebSocketBadStatusException as ex:
            eq(ex.status_code, 429, "WebSocket handshake of a watcher too many")
        except websocket.WebSocketException as ex:
            raise AssertionError("WebSocket watch beyond the limit: no HTTP status, the "
                                 "connection was closed (%s: %s)" % (type(ex).__name__, ex))
    finally:
        for w in ws:
            w.close()


# -- auth, errors, config ------------------------------------------------------------------
def test_auth_and_not_found(e):
    e.start_scheduler()
    c = e.client()
    q = {"_attrs_": "true"}
    expect(c.request("GET", q, headers={"Authorization": None}), 401, b"unauthorized",
           "missing token")
    expect(c.request("GET", q, headers={"Authorization": ""}), 401, b"unauthorized",
           "empty token")
    expect(c.request("GET", q, headers={"Authorization": "wrong"}), 401, b"unauthorized",
           "wrong token")
    expect(c.request("GET", q, headers={"Authorization": "Bearer " + TOKENS["trip-dev"]}),
           401, b"unauthorized", "a scheme before the token")
    expect(c.request("GET", q, headers={"Authorization": TOKENS["trip-strict"]}), 401,
           b"unauthorized", "another service's token")
    expect(c.request("POST", {}, trip(0), headers={"Authorization": "wrong"}), 401,
           b"unauthorized", "put with a wrong token")
    expect(e.client(sink=True, token="wrong").request("GET", q), 401, b"unauthorized",
           "sink with a wrong token")
    bad = e.client(token="wrong")
    bad.attempts = 0
    try:
        bad.put(trip(0))
        raise AssertionError("a put with a wrong token succeeded")
    except QueueError as ex:
        eq((ex.status, bad.attempts), (401, 6), "the SDK's retried 401")
    eq(c.attributes()["stream.length"], "0", "nothing enqueued by unauthorized puts")
    expect(e.client(token="wrong").watch_http(0, 1).resp, 401, b"unauthorized",
           "HTTP watch with a wrong token")
    u = QueueClient(e.base, "no-such-service", token=TOKENS["trip-dev"])
    expect(u.request("GET", q), 404, b"no such service", "unknown service")
    expect(u.request("POST", {}, trip(0)), 404, b"no such service", "put to unknown service")
    expect(QueueClient(e.base, "no-such-service/sink", token="x").request("GET", q), 404,
           b"no such service", "unknown service's sink")
    expect(u.watch_http(0, 1).resp, 404, b"no such service", "HTTP watch of an unknown service")
    r = c.session.get(e.base + "/nothing/here", timeout=5)
    expect(r, 404, b"not found", "unknown path")
    expect(c.request("PATCH", {}), 405, b"method not allowed", "PATCH")
    eq(e.client("test_group.qservice").attributes()["meta.state"], "Running",
       "a token from token_file")
    # a refused WebSocket upgrade answers with the status, as a plain request would
    for who, q, status in (("a wrong token", e.client(token="wrong"), 401),
                           ("an unknown service", u, 404)):
        try:
            q.watch(0, 1).close()
            raise AssertionError("a watch with %s was accepted" % who)
        except websocket.WebSocketBadStatusException as ex:
            eq(ex.status_code, status, "WebSocket watch with %s" % who)
        except websocket.WebSocketException as ex:
            raise AssertionError("WebSocket watch with %s: no HTTP status, the connection "
                                 "was closed (%s: %s)" % (who, type(ex).__name__, ex))


def test_redis_down_503(e):
    e.start_scheduler()
    c = e.client()
    c.put(trip(0))
    e.redis.kill()
    e.redis.wait()
    r = c.request("POST", {}, trip(1), timeout=60)
    expect(r, 503, b"queue unavailable", "put while Redis is down")
    r = c.request("GET", {"_attrs_": "true"}, timeout=60)
    expect(r, 503, b"queue unavailable", "attributes while Redis is down")


def test_check_config_and_sigterm(e):
    env = e.scheduler_env()
    cfg = e.write_config()
    r = subprocess.run(e.scheduler_cmd("--check-config", "--config", cfg), env=env,
                       capture_output=True, text=True, cwd=ROOT, timeout=30)
    eq(r.returncode, 0, "--check-config: " + r.stderr)
    leaked = [t for t in TOKENS.values() if t in r.stdout + r.stderr]
    eq(leaked, [], "tokens masked in --check-config")
    for what, services in (
            ("a service without a token",
             [{"name": "trip-dev", "env": "dev"}]),
            ("a bad service name",
             [{"name": "bad/name", "env": "dev", "token_env": TOKEN_VARS["trip-dev"]}]),
            ("two services for one env",
             [{"name": "a1", "env": "dev", "token_env": TOKEN_VARS["trip-dev"]},
              {"name": "a2", "env": "dev", "token_env": TOKEN_VARS["trip-strict"]}]),
            ("a token variable that is not set",
             [{"name": "trip-dev", "env": "dev", "token_env": "TRIPGEN_TOKEN_UNSET_X"}])):
        bad = e.write_config(services, name="bad.json")
        r = subprocess.run(e.scheduler_cmd("--check-config", "--config", bad), env=env,
                           capture_output=True, text=True, cwd=ROOT, timeout=30)
        check(r.returncode != 0 and r.stderr.strip(), "%s is refused: rc %d %r" %
              (what, r.returncode, r.stderr))
        r = subprocess.run(e.scheduler_cmd("--config", bad), env=env, capture_output=True,
                           text=True, cwd=ROOT, timeout=30)
        check(r.returncode != 0, "%s: refused at start too (rc %d)" % (what, r.returncode))
    p = e.start_scheduler()
    e.client().put(trip(0))
    eq(e.kill(p, signal.SIGTERM), 0, "exit 0 on SIGTERM")


def test_go_sdk_conventions(e):
    e.start_scheduler()
    g = e.go_client()
    attrs = g.obtain_attr()
    check(attrs.get("meta.header.user"), "Go needs meta.header.user")
    i, rid = g.put(trip(0), {"src": "go"})
    fs = g.get(i, 1, 0, False)
    eq([(f.index, f.data, f.tags.get("src")) for f in fs], [(i, trip(0), "go")], "Go get")
    gs = e.go_client(sink=True)
    ws = gs.watch(0, 10)
    si, srid = gs.put(b"to the sink", {"requestId": rid})
    ws.settimeout(5)
    opcode, data = ws.recv_data()
    eq(opcode, websocket.ABNF.OPCODE_BINARY, "binary message")
    f = eas_client.decode_frame(data)
    eq((f.index, f.data, f.tags.get("requestId")), (si, b"to the sink", rid),
       "Go websocket watch")
    ws.close()
    eq(gs.commit(si).status_code, 200, "Go Commit")
    eq(g.truncate(i + 1).status_code, 200, "Go Truncate")
    eq(g.obtain_attr()["stream.length"], "0", "truncated")
    eq(idxs(g.get(0, 1, 0.5, True)), [], "Go get of an empty queue (500ms)")


# -- end to end ------------------------------------------------------------------------------
def test_end_to_end_100_trips(e):
    e.start_scheduler()
    e.start_standin("--latency-ms", "5")
    e.start_worker(diffusion_slots=4, postproc_concurrency=4, storage_concurrency=4)
    sink = e.client(sink=True, uid="e2e-sink", gid="e2e")
    w = sink.watch(0, 200)  # window > 100: nothing is committed before the end
    client = e.client()
    puts = {}
    for k in range(100):
        body = trip(k)
        idx, rid = client.put(body)
        check(re.fullmatch(r"[1-9][0-9]*", idx), "index %r" % idx)
        puts[rid] = json.loads(body)["trip_id"]
    eq(len(puts), 100, "100 distinct request ids")
    seen = {}
    end = time.time() + 180
    while len(seen) < 100 and time.time() < end:
        f = w.recv(5)
        if f is None:
            continue
        rid = f.tags.get("requestId")
        check(rid in puts, "a result for a request we put: %r" % f)
        res = json.loads(f.data)
        check(res["status"] == "succeeded" and res["request_id"] == rid and
              res["trip_id"] == puts[rid] and "lastCode" not in f.tags, "result %r" % res)
        check(rid not in seen, "one result per request: %s" % rid)
        seen[rid] = f.index
    eq(len(seen), 100, "results seen by the sink watcher")
    w.close()
    ai, asink = client.attributes(), sink.attributes()
    eq(asink["stream.length"], "100", "sink holds the 100 results")
    eq(ai["stream.length"], "0", "the input queue is drained by the worker")
    for q, a in ((client, ai), (sink, asink)):
        if "stream.lastEntry" in a and int(a["stream.lastEntry"]) > 0:
            eq(q.truncate(int(a["stream.lastEntry"]) + 1), b"OK", "truncate")
    eq(client.attributes()["stream.length"], "0", "input stream.length after truncate")
    eq(sink.attributes()["stream.length"], "0", "sink stream.length after truncate")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, lambda: EasEnv(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
