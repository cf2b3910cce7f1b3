#!/usr/bin/python3
"""test_worker.py BUILD_DIR SOURCE_ROOT - tripgen-worker end to end.

Against a real redis-server and the ComfyUI stand-in: the three sample trips
(files at the right keys, sha256 matches), a malformed job (failed result,
the worker goes on), ComfyUI down (retried, then dead-lettered with the last
error), kill -9 mid-job (the same consumer name finishes it; or a second
worker reclaims it) with one final result either way, a redelivery after
midnight (same keys), two envs side by side, SIGTERM drain and hand-back,
/metrics counts, --check-config and --once.
"""
import hashlib
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SAMPLES = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def job_json(request_id, env, enqueued_at, trip_file="may-day-shanghai.json", **extra):
    with open(os.path.join(ROOT, "tests/data/trips", trip_file)) as f:
        trip = json.load(f)
    job = {"v": 1, "request_id": request_id, "generation": 0, "env": env,
           "idempotency_key": trip["trip_id"], "priority": False, "attempt": 1,
           "enqueued_at": enqueued_at, "deadline": None,
           "options": {"size": "768x960", "variants": ["full", "thumb"]}, "trip": trip}
    job.update(extra)
    return json.dumps(job, ensure_ascii=False)


def sink_frames(e, request_id, env="dev"):
    """How many output frames answer request_id."""
    lines = e.redis_cli("XRANGE", "tripgen:{%s}:out" % env, "-", "+").splitlines()
    return sum(1 for a, b in zip(lines, lines[1:]) if a == "request_id" and b == request_id)


def test_three_samples_end_to_end(e):
    e.start_standin("--latency-ms", "50")
    w = e.start_worker()
    before = time.time()
    ids = e.put(*SAMPLES)
    results = {r["request_id"]: r for r in e.results(3)}
    check(set(results) == set(ids), "results answer the puts")
    for rid, r in results.items():
        check(r["status"] == "succeeded", "succeeded: %s" % r)
        check(r["prompt_source"] == "template" and "no cars" in r["prompt"], "template prompt")
        check(r["worker"] == "w1" and r["env"] == "dev", "worker and env")
        img = r["images"][0]
        days = {time.strftime("%Y/%m/%d", time.gmtime(t)) for t in (before, time.time())}
        check(any(img["key"] == "dev/%s/%s/full.jpg" % (d, rid) for d in days),
              "key " + img["key"])
        path = os.path.join(e.storage, img["key"])
        check(img["url"] == "file://" + os.path.realpath(path), "url " + img["url"])
        data = open(path, "rb").read()
        check(hashlib.sha256(data).hexdigest() == img["sha256"], "sha256 of " + path)
        check(len(data) == img["bytes"] and data[:2] == b"\xff\xd8", "a JPEG of the right size")
        check((img["width"], img["height"]) == (768, 960), "size")
        for k in ("queued", "prompt", "diffusion", "postproc", "upload", "total"):
            check(k in r["timings_ms"], "timing " + k)
    d = e.depth()
    check(d["waiting"] == 0 and d["pending"] == 0 and d["dead"] == 0, "queue empty: %s" % d)
    def succeeded():  # counted a moment after the job is acked
        status, body = e.http_get(w, "/metrics")
        m = re.search(r'tripgen_jobs_total\{env="dev",status="succeeded",code=""\} (\d+)', body)
        return status == 200 and m and int(m.group(1)) == 3 and body
    body = e.wait(succeeded, 2, "/metrics to count 3 succeeded")
    check('tripgen_stage_duration_seconds_count{env="dev",stage="diffusion"} 3' in body,
          "diffusion histogram count")
    check(e.http_get(w, "/healthz")[0] == 200, "healthz")
    check(e.http_get(w, "/readyz") == (200, "ready\n"), "readyz")
    check(e.kill(w, signal.SIGTERM) == 0, "exit 0 on SIGTERM")


def test_malformed_job_fails_and_worker_goes_on(e):
    e.start_standin("--latency-ms", "20")
    w = e.start_worker()
    e.put_raw_job('{"v":1,"request_id":"bad-1","trip":', "bad-1")
    e.put_raw_job(job_json("bad-2", "dev", "2026-01-01T00:00:00Z",
                           options={"size": "768x960", "variants": ["poster"]}), "bad-2")
    ids = e.put("winter-harbin-short.json")
    results = {r["request_id"]: r for r in e.results(3)}
    bad = results["bad-1"]
    check(bad["status"] == "failed" and bad["error"]["code"] == "invalid_input", str(bad))
    check("invalid JSON" in bad["error"]["message"] and not bad["error"]["retryable"],
          bad["error"]["message"])
    check(results["bad-2"]["error"]["code"] == "invalid_input" and
          "poster" in results["bad-2"]["error"]["message"], str(results["bad-2"]))
    check(results[ids[0]]["status"] == "succeeded", "the good job still runs")
    frame = e.redis_cli("XRANGE", "tripgen:{dev}:out", "-", "+")
    check("last_code\n400" in frame, "failed frames carry lastCode 400")
    d = e.depth()
    check(d["pending"] == 0 and d["dead"] == 0, "acked, not dead-lettered: %s" % d)
    check(w.poll() is None, "worker alive")


def test_comfyui_down_retried_then_dead_lettered(e):
    e.start_standin("--fail", "http500")
    e.start_worker(retry_max_attempts=3, breaker_failures=0)  # job retries, not the breaker
    ids = e.put("may-day-shanghai.json")
    r = e.results(1)[0]
    check(r["request_id"] == ids[0] and r["status"] == "failed", str(r))
    err = r["error"]
    check(err["code"] == "diffusion_failed" and err["retryable"] and err["stage"] == "diffusion",
          str(err))
    check("HTTP 500" in err["message"] and "attempt 3 of 3" in err["message"], err["message"])
    check(r["attempt"] == 3, "three attempts")
    d = e.depth()
    check(d["dead"] == 1 and d["pending"] == 0 and d["delayed"] == 0, "dead-lettered: %s" % d)
    stats = e.standin_stats()
    # 3 attempts x (1 call + 1 in-stage retry)
    check(stats.get("prompts_http500") == 6, "ComfyUI called 6 times: %s" % stats)
    # nothing reachable at all: a connection error is retried the same way
    e.tripgen("put", "--env", "down", os.path.join(ROOT, "tests/data/trips", SAMPLES[2]))
    e.start_worker(env="down", name="w2", comfyui_url="http://127.0.0.1:9",
                   retry_max_attempts=2)
    r = e.results(1, env="down")[0]
    check(r["error"]["code"] == "diffusion_failed" and r["attempt"] == 2, str(r))


def _kill_mid_job(e, same_name):
    e.start_standin("--latency-ms", "1500")
    w = e.start_worker(name="stable-0")
    rid = e.put("national-day-chengdu.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "ComfyUI to get it")
    e.kill(w)  # kill -9 mid-diffusion
    check(e.depth()["pending"] == 1, "the job is pending on the dead consumer")
    e.start_worker(name="stable-0" if same_name else "other-1")
    r = e.results(1, timeout=20)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded", str(r))
    time.sleep(0.5)
    check(sink_frames(e, rid) == 1, "one final result")
    d = e.depth()
    check(d["pending"] == 0 and d["waiting"] == 0, str(d))


def test_kill9_same_consumer_name_finishes(e):
    _kill_mid_job(e, True)


def test_kill9_second_worker_reclaims(e):
    _kill_mid_job(e, False)


def test_several_takers_restart_without_double_delivery(e):
    # queue.take_threads 3 with a stable name: after kill -9 with jobs held, the restarted
    # worker's first taker alone reads the old entries, so each is delivered once more, not
    # once per taker (with max_deliveries 2, a second read would dead-letter them)
    e.start_standin("--latency-ms", "1200")
    w = e.start_worker(name="stable-3", queue_take_threads=3, queue_max_deliveries=2,
                       diffusion_slots=2)
    rids = e.put("may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json")
    e.wait(lambda: e.depth()["pending"] == 3, 10, "all three to be taken")
    e.kill(w)
    e.start_worker(name="stable-3", queue_take_threads=3, queue_max_deliveries=2,
                   diffusion_slots=2)
    frames = e.results(3, timeout=30)
    check(sorted(f["request_id"] for f in frames) == sorted(rids), str(frames))
    check(all(f["status"] == "succeeded" for f in frames), str(frames))
    time.sleep(0.5)
    d = e.depth()
    check(d["dead"] == 0 and d["pending"] == 0 and d["waiting"] == 0, str(d))


def test_restart_after_the_visibility_timeout_delivers_once(e):
    # the worker comes back under the same name after its entries went stale: its keeper's
    # reclaim (which claims stale entries of any consumer) must not race the first taker's
    # read of the consumer's own old entries - each is delivered once more, so
    # max_deliveries 2 dead-letters none of them
    e.start_standin("--latency-ms", "1200")
    conf = dict(name="stable-r", queue_take_threads=2, queue_max_deliveries=2,
                diffusion_slots=2)
    w = e.start_worker(**conf)
    rids = e.put("may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json")
    e.wait(lambda: e.depth()["pending"] == 3, 10, "all three to be taken")
    e.kill(w)
    time.sleep(2.0)  # past the 1.5 s visibility timeout: stale when the worker starts again
    w = e.start_worker(**conf)
    frames = e.results(3, timeout=30)
    got = sorted((f["request_id"], f["status"], (f["error"] or {}).get("message")) for f in frames)
    check(sorted(f["request_id"] for f in frames) == sorted(rids), str(got))
    check(all(f["status"] == "succeeded" for f in frames), str(got))
    check("entries_reclaimed" not in e.log(w), "own entries are read, not reclaimed")
    time.sleep(0.5)
    d = e.depth()
    check(d["dead"] == 0 and d["pending"] == 0 and d["waiting"] == 0, str(d))


def test_redis_stall_does_not_take_running_jobs(e):
    # Redis stalls (SIGSTOP) for longer than the visibility timeout while a job runs: when
    # it answers again, the worker's housekeeping renews its own leases before it reclaims
    # stale entries - it must not reclaim (and, with max_deliveries 1, bury) its own job
    e.start_standin("--latency-ms", "5000")
    w = e.start_worker(queue_max_deliveries=1)
    rid = e.put("may-day-shanghai.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the job to start")
    for _ in range(2):
        os.kill(e.redis.pid, signal.SIGSTOP)
        time.sleep(1.8)
        os.kill(e.redis.pid, signal.SIGCONT)
        time.sleep(0.5)
    r = e.results(1, timeout=20)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded",
          "%s %s" % (r["status"], r["error"]))
    d = e.depth()
    check(d["dead"] == 0 and d["pending"] == 0, str(d))
    log = e.log(w)
    check("entries_reclaimed" not in log and "job_dead_lettered" not in log, log[-1500:])


def test_stalled_worker_hands_back_nothing_it_lost(e):
    # w1 stalls (SIGSTOP) past the visibility timeout, w2 reclaims the job and runs it;
    # w1 then gets SIGTERM with a short grace: its hand-back must leave w2's delivery alone
    # (acking it and queueing a retry would make the job run a third time)
    # (the stand-in paints one prompt at a time: w2's waits for w1's, hence the long timeout)
    e.start_standin("--latency-ms", "5000")
    w1 = e.start_worker(name="w1", shutdown_grace_ms=200, diffusion_timeout_ms=30000)
    rid = e.put("may-day-shanghai.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the job to start")
    w2 = e.start_worker(name="w2", diffusion_timeout_ms=30000)
    w1.send_signal(signal.SIGSTOP)
    e.wait(lambda: "event=entries_reclaimed" in e.log(w2), 10, "w2 to reclaim the job")
    w1.send_signal(signal.SIGCONT)
    check(e.kill(w1, signal.SIGTERM) == 0, "w1 exits 0")
    r = e.results(1, timeout=40)[0]
    # (on a slow machine w1 may finish its copy first: one final result either way)
    check(r["request_id"] == rid and r["status"] == "succeeded", str(r))
    time.sleep(1.0)
    log = e.log(w1)
    check("event=job_handed_back" not in log and "handed_back=0" in log, log[-1500:])
    d = e.depth()
    check(d["pending"] == 0 and d["delayed"] == 0 and d["waiting"] == 0, str(d))
    check(e.standin_stats().get("prompts_received") == 2, "painted twice (w1, then w2), not "
          "three times: %s" % e.standin_stats().get("prompts_received"))


def test_long_job_keeps_its_lease(e):
    # diffusion takes longer than the visibility timeout: the lease refresh keeps the job
    # with its worker, and a second worker running beside it never reclaims it
    e.start_standin("--latency-ms", "2500")
    w1 = e.start_worker(name="w1")
    rid = e.put("may-day-shanghai.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the job to start")
    w2 = e.start_worker(name="w2")
    r = e.results(1, timeout=20)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded" and r["worker"] == "w1", str(r))
    check(e.standin_stats().get("prompts_received") == 1, "painted once")
    check("entries_reclaimed" not in e.log(w2) and "lease_lost" not in e.log(w1),
          e.log(w2)[-1000:])


def test_stalled_readiness_probe_keeps_the_lease(e):
    # ComfyUI's /system_stats stalls (each readiness probe waits 2 s) while a job runs longer
    # than the visibility timeout (1.5 s): the lease is still renewed every 0.5 s - the
    # pending entry's idle time, sampled in Redis, stays under the visibility timeout
    # (renewals held by each 2 s probe would show ~2000 ms)
    e.start_standin("--latency-ms", "5000")
    e.standin_control(fail="stats_hang")
    w = e.start_worker()
    rid = e.put("may-day-shanghai.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the job to start")
    max_idle, end = 0, time.time() + 20
    while time.time() < end and e.standin_stats().get("executed", 0) < 1:
        rows = e.redis_cli("XPENDING", "tripgen:{dev}:in", "workers", "-", "+", "10").split()
        if len(rows) >= 4:
            max_idle = max(max_idle, int(rows[2]))
        time.sleep(0.05)
    r = e.results(1, timeout=20)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded", str(r))
    check(0 < max_idle < 1500, "renewed while the probe stalled: max idle %d ms" % max_idle)
    check(e.standin_stats().get("stats_hung", 0) >= 1, "the probe did stall")
    check("lease_lost" not in e.log(w), e.log(w)[-1000:])
    status, body = e.http_get(w, "/readyz")
    check(status == 503 and "unreachable" in body, "not ready: %d %s" % (status, body))


def test_deadline_exceeded(e):
    # a job whose deadline passes while ComfyUI paints: deadline_exceeded, not retried
    e.start_standin("--latency-ms", "3000")
    e.start_worker()
    r = e.tripgen("put", "--deadline", "1", os.path.join(ROOT, "tests/data/trips", SAMPLES[0]))
    rid = r.stdout.split()[0]
    res = e.results(1, timeout=20)[0]
    check(res["request_id"] == rid and res["status"] == "failed", str(res))
    check(res["error"]["code"] == "deadline_exceeded" and not res["error"]["retryable"],
          str(res["error"]))
    d = e.depth()
    check(d["delayed"] == 0 and d["dead"] == 0 and d["pending"] == 0, "not retried: %s" % d)
    # one already past its deadline when taken is refused before any stage runs
    e.put_raw_job(job_json("late-1", "dev", "2026-01-01T00:00:00Z",
                           deadline="2026-01-01T00:00:01Z"), "late-1")
    res = [x for x in e.results(2) if x["request_id"] == "late-1"][0]
    check(res["error"]["code"] == "deadline_exceeded" and res["error"]["stage"] == "input" and
          res["timings_ms"]["diffusion"] == 0, str(res))


def test_redelivery_after_midnight_writes_same_keys(e):
    e.start_standin("--latency-ms", "20")
    w = e.start_worker()
    rid = "late-night-1"
    e.put_raw_job(job_json(rid, "dev", "2024-12-31T23:59:59.900Z"), rid)
    first = e.results(1)[0]
    keys = sorted(i["key"] for i in first["images"])
    check(keys == ["dev/2024/12/31/late-night-1/full.jpg", "dev/2024/12/31/late-night-1/thumb.jpg"],
          str(keys))
    check(first["images"][1]["width"] == 384, "thumb is half size")
    # the first run uploaded but "died" before its result counted: drop the record, redeliver
    e.redis_cli("DEL", "tripgen:{dev}:result:" + rid)
    e.put_raw_job(job_json(rid, "dev", "2024-12-31T23:59:59.900Z"), rid)
    frames = e.results(2)
    second = frames[1]
    check(sorted(i["key"] for i in second["images"]) == keys, "same keys after midnight")
    check([i["sha256"] for i in second["images"]] == [i["sha256"] for i in first["images"]],
          "same seed, same image")
    days = os.listdir(os.path.join(e.storage, "dev/2024/12"))
    check(days == ["31"], "nothing written under another date: %s" % days)
    # a third delivery while the result exists: acked, nothing new published
    e.put_raw_job(job_json(rid, "dev", "2024-12-31T23:59:59.900Z"), rid)
    e.wait(lambda: e.depth()["waiting"] == 0 and e.depth()["pending"] == 0, 10, "the duplicate")
    time.sleep(0.3)
    check(sink_frames(e, rid) == 2, "a duplicate delivery publishes nothing")
    check("event=job_duplicate request_id=late-night-1" in e.log(w), "logged as duplicate")


def test_two_envs_side_by_side(e):
    e.start_standin("--latency-ms", "20")
    wa = e.start_worker(env="alpha", name="a1")
    wb = e.start_worker(env="beta", name="b1")
    ra = e.put("may-day-shanghai.json", env="alpha")[0]
    rb = e.put("winter-harbin-short.json", env="beta")[0]
    a = e.results(1, env="alpha")[0]
    b = e.results(1, env="beta")[0]
    check(a["request_id"] == ra and a["env"] == "alpha" and a["images"][0]["key"].startswith("alpha/"),
          str(a))
    check(b["request_id"] == rb and b["env"] == "beta" and b["images"][0]["key"].startswith("beta/"),
          str(b))
    check(rb not in e.log(wa) and ra not in e.log(wb), "no worker saw the other env's job")
    check(sorted(os.listdir(e.storage)) == ["alpha", "beta"], "one storage prefix per env")
    # a job of another env smuggled into alpha's stream is refused, not run
    e.put_raw_job(job_json("smuggled-1", "beta", "2026-01-01T00:00:00Z"), "smuggled-1", env="alpha")
    r = [x for x in e.results(2, env="alpha") if x["request_id"] == "smuggled-1"][0]
    check(r["error"]["code"] == "env_mismatch", str(r))


def test_sigterm_drains_in_flight_jobs(e):
    e.start_standin("--latency-ms", "800")
    w = e.start_worker(shutdown_grace_ms=30000)
    ids = e.put("may-day-shanghai.json", "winter-harbin-short.json")
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the first job")
    e.wait(lambda: e.depth()["pending"] == 2, 10, "both jobs taken")
    check(e.kill(w, signal.SIGTERM) == 0, "exit 0")
    log = e.log(w)
    check("event=draining" in log and "event=worker_stopped handed_back=0" in log, log[-2000:])
    results = {r["request_id"]: r for r in e.results(len(ids), timeout=5)}
    check(all(results[i]["status"] == "succeeded" for i in ids), "in-flight jobs finished")


def test_sigterm_hands_back_after_grace(e):
    e.start_standin("--latency-ms", "3000")
    w = e.start_worker(shutdown_grace_ms=200)
    rid = e.put("may-day-shanghai.json")[0]
    e.wait(lambda: e.standin_stats().get("prompts_accepted", 0) >= 1, 10, "the job")
    check(e.kill(w, signal.SIGTERM) == 0, "exit 0")
    check("event=job_handed_back request_id=" + rid in e.log(w), e.log(w)[-1500:])
    e.standin_control(latency_ms=20)
    e.start_worker(name="w2")
    r = e.results(1, timeout=20)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded" and r["attempt"] == 1, str(r))


def test_check_config_and_once(e):
    import subprocess
    exe = os.path.join(BUILD, "worker/tripgen-worker")
    env = e.worker_env(redis_url="redis://:S3cretPw@127.0.0.1:6379")
    r = subprocess.run([exe, "--check-config"], env=env, capture_output=True, text=True,
                       cwd=ROOT)
    check(r.returncode == 0 and "S3cretPw" not in r.stdout and "***" in r.stdout, r.stdout)
    prod = [exe, "--check-config", "--config", os.path.join(ROOT, "deploy/config/prod.json")]
    r = subprocess.run(prod, env=dict(env, TRIPGEN_ENV="prod", DASHSCOPE_API_KEY="sk-check-1"),
                       capture_output=True, text=True, cwd=ROOT)
    check(r.returncode == 0 and "sk-check-1" not in r.stdout + r.stderr, r.stderr)
    noenv = {k: v for k, v in env.items() if not k.startswith("DASHSCOPE_API_KEY")}
    r = subprocess.run(prod, env=dict(noenv, TRIPGEN_ENV="prod"), capture_output=True,
                       text=True, cwd=ROOT)
    check(r.returncode == 2 and "DASHSCOPE_API_KEY" in r.stderr, "a missing key: " + r.stderr)
    bad = dict(env, TRIPGEN_DIFFUSION_SLOTS="0")
    r = subprocess.run([exe, "--check-config"], env=bad, capture_output=True, text=True, cwd=ROOT)
    check(r.returncode == 2 and "diffusion.slots" in r.stderr, r.stderr)
    cfg = os.path.join(e.dir, "bad.json")
    with open(cfg, "w") as f:
        json.dump({"queue": {"max_delivery": 3}}, f)
    r = subprocess.run([exe, "--check-config", "--config", cfg], env=env, capture_output=True,
                       text=True, cwd=ROOT)
    check(r.returncode == 2 and "queue.max_delivery: unknown key" in r.stderr, r.stderr)
    with open(cfg, "w") as f:
        json.dump({"redis": {"url": "redis://:pw@h:1"}}, f)
    r = subprocess.run([exe, "--check-config", "--config", cfg], env=env, capture_output=True,
                       text=True, cwd=ROOT)
    check(r.returncode == 2 and "password" in r.stderr and "pw@" not in r.stderr, r.stderr)
    r = subprocess.run([exe, "--check-config"], env=dict(env, TRIPGEN_COMFYUI_BIND_SEED="3.sead"),
                       capture_output=True, text=True, cwd=ROOT)
    check(r.returncode == 2 and "no input sead on node 3" in r.stderr, r.stderr)
    e.start_standin("--latency-ms", "20")
    env = e.worker_env()
    r = subprocess.run([exe, "--once", os.path.join(ROOT, "tests/data/trips", SAMPLES[1])],
                       env=env, capture_output=True, text=True, cwd=ROOT)
    check(r.returncode == 0, r.stderr)
    res = json.loads(r.stdout)
    check(res["status"] == "succeeded" and os.path.exists(os.path.join(e.storage,
                                                                       res["images"][0]["key"])),
          r.stdout)


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
