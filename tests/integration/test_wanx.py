#!/usr/bin/python3
"""test_wanx.py BUILD_DIR SOURCE_ROOT [TEST...] - the wanx diffusion backend end to end.

Against a real redis-server and the DashScope stand-in (tests/standins/dashscope_standin.py),
tripgen-worker with diffusion.backend=wanx: a trip painted by an async task and stored; a
FAILED task by cause (moderation: content_rejected, never retried; InternalError.Algo:
retried; InvalidParameter: not retried); UNKNOWN retried; a 429 with Retry-After on submit
recovered within the stage; an exhausted quota not retried; a result host or a redirect
outside the allow-list (exact names, "*.domain") refused, at most 3 redirects; an image over
the byte cap refused; download faults retried within the stage; the breaker opening on
failing polls; the deadline (a best-effort cancel); a size wanx cannot paint refused before
any submission; a missing key refuses the start (and NAME_FILE works); the key never in a
log; limits.wanx.concurrency=1 keeping two workers to one running task (and without it, two).
"""
import hashlib
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SAMPLE = "may-day-shanghai.json"
KEY = "sk-test-standin"   # the stand-in's default Bearer key
UUID0 = "00000000-0000-0000-0000-000000000000"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class WanxEnv(Env):
    """Env whose workers paint with wanx against the DashScope stand-in.

    key: the value of DASHSCOPE_API_KEY in the workers' environment (None: unset).
    """

    key = KEY

    def worker_env(self, env="dev", name="w1", **overrides):
        wanx = {"diffusion_backend": "wanx", "dashscope_url": self.ds_base,
                "wanx_download_hosts": "127.0.0.1", "wanx_poll_ms": 30,
                "wanx_http_timeout_ms": 3000}
        wanx.update(overrides)
        e = super().worker_env(env, name, **wanx)
        for k in [k for k in e if k.startswith("DASHSCOPE_API_KEY")]:
            del e[k]
        if self.key is not None:
            e["DASHSCOPE_API_KEY"] = self.key
        return e


def make_env():
    return WanxEnv(BUILD, ROOT)


def job_json(request_id, env="dev", size="768x960"):
    with open(os.path.join(ROOT, "tests/data/trips", SAMPLE)) as f:
        trip = json.load(f)
    return json.dumps({"v": 1, "request_id": request_id, "generation": 0, "env": env,
                       "idempotency_key": trip["trip_id"] + request_id, "priority": False,
                       "attempt": 1, "enqueued_at": "2026-01-01T00:00:00Z", "deadline": None,
                       "options": {"size": size, "variants": ["full"]}, "trip": trip},
                      ensure_ascii=False)


def put(e, rid, **kw):
    """One job of its own (a unique idempotency key: the same trip twice is two jobs)."""
    e.put_raw_job(job_json(rid, **kw), rid)
    return rid


def requests(e, route):
    return e.ds_stats().get("requests", {}).get(route, 0)


def answered(e, route):
    return e.ds_stats().get("answered", {}).get(route, {})


def no_key_in_logs(e):
    for p in e.procs:
        if hasattr(p, "log_path"):
            check(KEY not in e.log(p), "the API key appears in " + p.log_path)


def result_of(e, rid):
    """The final result of rid (`tripgen watch` replays the sink from its start)."""
    e.n_final = getattr(e, "n_final", 0) + 1
    found = [r for r in e.results(e.n_final) if r["request_id"] == rid]
    check(found, "a result for " + rid)
    return found[-1]


# -- tests ---------------------------------------------------------------------------------

def test_success_end_to_end(e):
    e.start_dashscope()
    e.ds_set(task_ms=1000)
    w = e.start_worker(log_level="debug")
    rid = e.put(SAMPLE)[0]
    r = result_of(e, rid)
    check(r["request_id"] == rid and r["status"] == "succeeded" and r["attempt"] == 1, str(r))
    img = r["images"][0]
    path = os.path.join(e.storage, img["key"])
    data = open(path, "rb").read()
    check(hashlib.sha256(data).hexdigest() == img["sha256"], "sha256 of " + path)
    check((img["width"], img["height"]) == (768, 960), "size %s" % img)
    s = e.ds_stats()
    check(s["requests"].get("submit") == 1 and s["tasks"]["submitted"] == 1, str(s))
    check(s["requests"].get("task", 0) >= 2, "polled until done: %s" % s["requests"])
    check(s["downloads"] == 1 and s["requests"].get("download") == 1, str(s))
    check(s["answered"]["submit"] == {"200": 1}, "async header and key accepted: %s" % s)
    log = e.log(w)
    check("event=wanx_submitted request_id=%s task_id=" % rid in log and
          "dashscope_request_id=" in log, "submitted logged")
    check("event=wanx_done request_id=%s" % rid in log and " ms=" in log, "done logged")
    check("Signature=" not in log, "the signed result URL is not logged")
    no_key_in_logs(e)


def test_moderation_failed_task_not_retried(e):
    e.start_dashscope()
    e.ds_set(task_ms=300, fail="moderation", fail_routes=["task"])
    e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-1")
    r = result_of(e, rid)
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "content_rejected" and
          not err["retryable"] and r["attempt"] == 1, str(r))
    check(err["message"].startswith("wanx task ") and
          "failed: DataInspectionFailed: Output data may contain inappropriate content." in
          err["message"], err["message"])
    check(requests(e, "submit") == 1, "exactly one submission")
    check(e.depth()["delayed"] == 0, "not scheduled again")
    no_key_in_logs(e)


def test_failed_task_by_cause(e):
    e.start_dashscope()
    # a failure inside the service: retried with a new task
    e.ds_set(task_ms=200, fail="task_failed", fail_routes=["task"], fail_times=1)
    w = e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-2")
    r = result_of(e, rid)
    check(r["status"] == "succeeded" and r["attempt"] == 2, str(r))
    check(requests(e, "submit") == 2, "a second task")
    check("failed: InternalError.Algo: Algorithm process error." in e.log(w), "logged cause")
    # a bad request: the next task would fail the same way
    e.ds_set(task_ms=200, fail="task_failed", fail_routes=["task"],
             task_error_code="InvalidParameter.Prompt", task_error_message="Prompt too odd.")
    rid = put(e, "j-3")
    r = result_of(e, rid)
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "diffusion_failed" and
          not err["retryable"] and r["attempt"] == 1, str(r))
    check("failed: InvalidParameter.Prompt: Prompt too odd." in err["message"], err["message"])
    check(requests(e, "submit") == 3, "one more submission only")
    no_key_in_logs(e)


def test_unknown_task_retried(e):
    e.start_dashscope()
    e.ds_set(task_ms=200, fail="task_unknown", fail_routes=["task"], fail_times=1)
    w = e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-4")
    r = result_of(e, rid)
    check(r["status"] == "succeeded" and r["attempt"] == 2, str(r))
    check(requests(e, "submit") == 2, "submitted again")
    check("expired or unknown" in e.log(w), "the UNKNOWN cause logged")


def test_throttled_submit_recovers_within_stage(e):
    e.start_dashscope()
    e.ds_set(task_ms=100, fail="throttle", fail_routes=["submit"], fail_times=1,
             retry_after="1")
    e.start_worker()
    rid = put(e, "j-5")
    r = result_of(e, rid)
    check(r["status"] == "succeeded" and r["attempt"] == 1, "within the stage: %s" % r)
    s = e.ds_stats()
    log = [x for x in s["request_log"] if x["route"] == "submit"]
    check([x["status"] for x in log] == [429, 200], "429 then 200: %s" % log)
    check(log[1]["t"] - log[0]["t_done"] >= 0.9, "Retry-After: 1 honoured: %s" % log)
    check(s["tasks"]["submitted"] == 1, "one task")


def test_quota_exhausted_not_retried(e):
    e.start_dashscope()
    e.ds_set(fail="quota", fail_routes=["submit"])
    e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-6")
    r = result_of(e, rid)
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "diffusion_failed" and
          not err["retryable"] and r["attempt"] == 1, str(r))
    check("Throttling.AllocationQuota" in err["message"] and
          "Allocated quota exceeded" in err["message"], err["message"])
    check(requests(e, "submit") == 1, "one call, no in-stage retry")
    no_key_in_logs(e)


def test_result_host_outside_allow_list(e):
    e.start_dashscope()
    e.ds_set(task_ms=100, result_host="localhost:%d" % e.ds_port)
    e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-7")
    r = result_of(e, rid)
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "diffusion_failed" and
          not err["retryable"] and r["attempt"] == 1, str(r))
    check("host localhost is not in wanx.download_hosts" in err["message"], err["message"])
    check("Signature" not in err["message"], "no signed URL in the message")
    check(requests(e, "download") == 0, "nothing fetched from outside the list")


def test_allow_list_wildcards(e):
    # "*.localhost" matches names below localhost at any depth, any case (libcurl resolves
    # *.localhost to the loopback itself), but not localhost itself
    e.start_dashscope()
    e.start_worker(wanx_download_hosts=" 127.0.0.2 , *.localhost")
    e.ds_set(task_ms=100, result_host="img.Bucket.LOCALHOST:%d" % e.ds_port)
    rid = put(e, "wild-1")
    r = result_of(e, rid)
    check(r["status"] == "succeeded", str(r))
    e.ds_set(task_ms=100, result_host="localhost:%d" % e.ds_port)
    rid = put(e, "wild-2")
    err = result_of(e, rid)["error"]
    check(not err["retryable"] and "host localhost is not in wanx.download_hosts" in
          err["message"], str(err))
    check(requests(e, "download") == 1, "only the first was fetched")
    # an entry with a port (the port never takes part) or a scheme is a config error
    exe = os.path.join(BUILD, "worker/tripgen-worker")
    for bad in ("127.0.0.1:8080", "https://x.aliyuncs.com", "*"):
        env = e.worker_env(wanx_download_hosts=bad)
        r = subprocess.run([exe], env=env, capture_output=True, text=True, cwd=ROOT, timeout=30)
        check(r.returncode != 0 and "wanx.download_hosts" in r.stderr and bad in r.stderr,
              "%s refused: %d %s" % (bad, r.returncode, r.stderr))


def test_redirects_checked(e):
    e.start_dashscope()
    port = e.ds_port
    e.ds_set(task_ms=100, download_redirect="http://LocalHost:%d/results/x.png" % port)
    e.start_worker(retry_max_attempts=3)
    rid = put(e, "j-8")
    err = result_of(e, rid)["error"]
    check(err["code"] == "diffusion_failed" and not err["retryable"], str(err))
    check("redirect (HTTP 302) refused: host LocalHost is not in wanx.download_hosts" in
          err["message"], err["message"])
    check(requests(e, "download") == 1, "the redirect target was not fetched")
    # inside the list, but without end: at most 3 redirects are followed
    e.ds_set(task_ms=100, download_redirect="/results/%s.png" % UUID0)
    rid = put(e, "j-9")
    err = result_of(e, rid)["error"]
    check(not err["retryable"] and "more than 3 redirects" in err["message"], str(err))
    check(requests(e, "download") == 1 + 4, "the first URL and 3 redirects")


def test_image_over_cap(e):
    e.start_dashscope()
    e.ds_set(task_ms=100, image_pad_bytes=300000)
    e.start_worker(retry_max_attempts=3, diffusion_max_image_bytes=200000)
    rid = put(e, "j-10")
    r = result_of(e, rid)
    err = r["error"]
    check(err["code"] == "diffusion_failed" and not err["retryable"] and r["attempt"] == 1,
          str(r))
    check("larger than diffusion.max_image_bytes (200000 bytes)" in err["message"],
          err["message"])


def test_download_faults_retried_within_stage(e):
    e.start_dashscope()
    e.ds_set(task_ms=100, fail="http500", fail_routes=["download"], fail_times=1)
    w = e.start_worker()
    rid = put(e, "dl-1")
    r = result_of(e, rid)
    check(r["status"] == "succeeded" and r["attempt"] == 1, str(r))
    check(answered(e, "download") == {"500": 1, "200": 1}, str(answered(e, "download")))
    check("event=wanx_download_retry request_id=dl-1" in e.log(w), "retry logged")
    # a connection reset: the same
    e.ds_set(task_ms=100, fail="reset", fail_routes=["download"], fail_times=1)
    rid = put(e, "dl-2")
    check(result_of(e, rid)["status"] == "succeeded", "recovered from a reset")
    check(requests(e, "download") == 4, "one retry each")


def test_breaker_opens_on_failing_polls(e):
    e.start_dashscope()
    e.ds_set(task_ms=100, fail="http500", fail_routes=["task"])
    e.start_worker(retry_max_attempts=1, breaker_failures=2, breaker_open_ms=60000,
                   wanx_http_retries=3)
    rid = put(e, "br-1")
    err = result_of(e, rid)["error"]
    check(err["code"] == "diffusion_failed" and err["retryable"] and
          "breaker is open" in err["message"], str(err))
    check(requests(e, "task") == 2, "the third poll was not made: %d" % requests(e, "task"))
    rid = put(e, "br-2")
    err = result_of(e, rid)["error"]
    check("breaker is open" in err["message"] and requests(e, "submit") == 1,
          "no submission while open: %s" % err)


def timed_out_and_canceled(e, rid, **standin):
    """A job whose task is still PENDING at its 1.5 s diffusion timeout fails retryably as
    not finished, and the worker cancels the task; returns the task id."""
    e.start_dashscope()
    e.ds_set(task_ms=60000, **standin)
    w = e.start_worker(retry_max_attempts=1, diffusion_timeout_ms=1500)
    r = result_of(e, put(e, rid))
    err = r["error"]
    check(err["code"] == "diffusion_failed" and err["retryable"], str(r))
    check("not finished within the diffusion timeout (still PENDING)" in err["message"],
          err["message"])
    task_id = err["message"].split()[2]
    check("event=wanx_cancel request_id=%s task_id=%s status=200" % (rid, task_id) in e.log(w),
          "the cancel logged")
    check(answered(e, "cancel") == {"200": 1}, "the pending task was canceled")
    return task_id


def test_deadline_gives_up_and_cancels(e):
    task_id = timed_out_and_canceled(e, "slow-1")
    with open(os.path.join(e.dir, "dashscope-standin.log")) as f:
        check("POST /api/v1/tasks/%s/cancel" % task_id in f.read(), "a cancel was sent")


def test_deadline_during_a_hung_poll(e):
    # the deadline comes while a poll is waiting for its answer: the job fails as a task
    # not finished in time, not as a poll that timed out after a few milliseconds
    timed_out_and_canceled(e, "hung-1", fail="hang", fail_routes=["task"])


def test_size_outside_wanx_range(e):
    e.start_dashscope()
    e.start_worker()
    rid = put(e, "big-1", size="2048x1024")
    r = result_of(e, rid)
    err = r["error"]
    check(err["code"] == "invalid_input" and not err["retryable"], str(r))
    check("2048x1024" in err["message"] and "512..1440" in err["message"], err["message"])
    check(requests(e, "submit") == 0, "nothing submitted")


def test_missing_key_refuses_start(e):
    e.start_dashscope()
    exe = os.path.join(BUILD, "worker/tripgen-worker")
    e.key = None
    env = e.worker_env(dashscope_api_key_env="TRIPGEN_TEST_DS_KEY")
    env["DASHSCOPE_API_KEY"] = "sk-not-this-one-0123456789"   # set, but not the one named
    r = subprocess.run([exe], env=env, capture_output=True, text=True, cwd=ROOT, timeout=30)
    out = r.stdout + r.stderr
    check(r.returncode != 0, "refused to start: %d %s" % (r.returncode, out))
    check("TRIPGEN_TEST_DS_KEY" in out and "API key" in out, out)
    check("sk-not-this-one" not in out, "no key value in the message")
    # the key from a file works (NAME_FILE), and its value is not printed either
    kf = os.path.join(e.dir, "ds.key")
    with open(kf, "w") as f:
        f.write(KEY + "\n")
    env = e.worker_env()
    env["DASHSCOPE_API_KEY_FILE"] = kf
    log_path = os.path.join(e.dir, "worker-file-key.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen([exe], env=env, stdout=log, stderr=log, cwd=ROOT)
    p.log_path = log_path
    e.procs.append(p)
    e.wait(lambda: "event=worker_started" in e.log(p) or p.poll() is not None, 10,
           "the worker to start")
    check(p.poll() is None, "started with the key from a file: " + e.log(p))
    e.ds_set(task_ms=100)
    rid = put(e, "j-11")
    check(result_of(e, rid)["status"] == "succeeded", "painted with the key from the file")
    no_key_in_logs(e)


def test_fleet_concurrency_one_task_at_a_time(e):
    e.start_dashscope()
    e.ds_set(task_ms=400)
    e.start_worker(name="w1", limits_wanx_concurrency=1)
    e.start_worker(name="w2", limits_wanx_concurrency=1)
    for i in range(4):
        put(e, "c-%d" % i)
    rs = e.results(4)
    check(all(r["status"] == "succeeded" for r in rs), str(rs))
    check({r["worker"] for r in rs} == {"w1", "w2"}, "both workers painted: %s" %
          [r["worker"] for r in rs])
    t = e.ds_stats()["tasks"]
    check(t["submitted"] == 4 and t["max_running"] == 1, "one task at a time: %s" % t)


def test_without_limit_tasks_overlap(e):
    # the control for the test above: the same two workers run tasks side by side
    e.start_dashscope()
    e.ds_set(task_ms=2000)
    e.start_worker(name="w1")
    e.start_worker(name="w2")
    put(e, "o-1")
    put(e, "o-2")
    rs = e.results(2)
    check(all(r["status"] == "succeeded" for r in rs), str(rs))
    t = e.ds_stats()["tasks"]
    check(t["max_running"] == 2, "two tasks at once: %s" % t)


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, make_env, sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
