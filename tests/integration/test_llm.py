#!/usr/bin/python3
"""test_llm.py BUILD_DIR SOURCE_ROOT [TEST...] - the LLM prompt backends end to end.

tripgen-worker against a real redis-server, the DashScope/OpenAI stand-in
(tests/standins/dashscope_standin.py) and the ComfyUI stand-in: qwen on the
native API and on compatible mode, an OpenAI endpoint without a key, every
error class (throttling recovers by retry with Retry-After, moderation gives
content_rejected without retries, an exhausted quota and a bad key are not
retried, 5xx and hangs are, malformed JSON), the template fallback, job
retries, the key kept out of logs, the fleet-wide rate and concurrency limits
held by three workers, the breaker opening and closing, and seed policies.
"""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
KEY = "sk-test-standin"
TRIP = "may-day-shanghai.json"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def llm_worker(e, backend="dashscope", name="w1", key=KEY, **overrides):
    """A worker whose prompt stage is an LLM backend on the stand-in."""
    if key is None:
        os.environ.pop("DASHSCOPE_API_KEY", None)
    else:
        os.environ["DASHSCOPE_API_KEY"] = key
    conf = {"prompt_backend": backend, "dashscope_url": e.ds_base,
            "openai_url": e.ds_base + "/compatible-mode/v1",
            "openai_api_key_env": "DASHSCOPE_API_KEY",
            "llm_timeout_ms": 3000, "llm_retries": 2, "provider_max_retry_after_ms": 5000}
    conf.update(overrides)
    return e.start_worker(name=name, **conf)


def requests(e, route):
    return e.ds_stats().get("requests", {}).get(route, 0)


def worlds(e, comfy_latency="20"):
    e.start_standin("--latency-ms", comfy_latency)
    e.start_dashscope()


def test_dashscope_native_prompt(e):
    worlds(e)
    e.ds_set(answer_style="labelled")
    w = llm_worker(e)
    rid = e.put(TRIP)[0]
    r = e.results(1)[0]
    check(r["request_id"] == rid and r["status"] == "succeeded", str(r))
    check(r["prompt_source"] == "dashscope", r["prompt_source"])
    p = r["prompt"]
    check(p and not p.lower().startswith("prompt") and not p.startswith('"'), "cleaned: " + p)
    u = r["prompt_usage"]
    check(u["model"] == "qwen-max" and u["input_tokens"] > 0 and u["output_tokens"] > 0, str(u))
    log = e.ds_stats()["request_log"]
    check(len(log) == 1 and log[0]["route"] == "native" and log[0]["auth"], str(log))
    check(u["request_id"] and re.match(r"^[0-9a-f-]{36}$", u["request_id"]), str(u))
    check(r["seed_policy"] == "request" and isinstance(r["seed"], int), str(r))
    check(KEY not in e.log(w), "the key is not logged")


def test_compatible_mode_and_openai_without_key(e):
    worlds(e)
    e.ds_set(answer_style="fenced")
    w1 = llm_worker(e, backend="openai")
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["prompt_source"] == "openai", str(r))
    check("```" not in r["prompt"], "fences stripped: " + r["prompt"])
    check(r["prompt_usage"]["request_id"], "compatible mode's request id kept")
    check(requests(e, "compatible") == 1, str(e.ds_stats()["requests"]))
    # a local server (vLLM, Ollama) takes no key: no Authorization header is sent
    e.ds_set(no_auth_routes=["openai"])
    check(e.kill(w1, signal.SIGTERM) == 0, "first worker drained")
    w2 = llm_worker(e, backend="openai", name="w2", key=None,
                    openai_url=e.ds_base + "/v1", openai_api_key_env="NO_SUCH_KEY_VAR")
    e.put(TRIP)
    e.wait(lambda: requests(e, "openai") == 1, 20, "the openai route to be called")
    log = [x for x in e.ds_stats()["request_log"] if x["route"] == "openai"]
    check(log and not log[0]["auth"] and log[0]["status"] == 200, str(log))
    check(w2.poll() is None, "worker alive")


def test_throttling_recovers_by_retry_after(e):
    worlds(e)
    e.ds_set(fail="throttle", fail_times=2, retry_after="1")
    w = llm_worker(e)
    t0 = time.time()
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["prompt_source"] == "dashscope", str(r))
    check(r["attempt"] == 1, "recovered within the stage, not by a job retry")
    log = e.ds_stats()["request_log"]
    check([x["status"] for x in log] == [429, 429, 200], str(log))
    # Retry-After: 1 was honoured between the attempts (the backoff alone is 200 + 400 ms)
    check(log[1]["t"] - log[0]["t_done"] >= 0.95 and log[2]["t"] - log[1]["t_done"] >= 0.95,
          "waited Retry-After: %s" % log)
    check(time.time() - t0 < 15, "not left to the job backoff")
    check("event=provider_retry" in e.log(w) and "Throttling.RateQuota" in e.log(w),
          "retries logged with the provider's code")


def test_moderation_is_content_rejected_without_retries(e):
    worlds(e)
    e.ds_set(fail="moderation")
    llm_worker(e, prompt_fallback="template")  # moderation is never papered over
    e.put(TRIP)
    r = e.results(1)[0]
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "content_rejected", str(r))
    check(not err["retryable"] and err["stage"] == "prompt" and r["attempt"] == 1, str(err))
    check("DataInspectionFailed" in err["message"], err["message"])
    check(requests(e, "native") == 1, "one call, no retries: %s" % e.ds_stats()["requests"])
    d = e.depth()
    check(d["dead"] == 0 and d["delayed"] == 0 and d["pending"] == 0, str(d))


def test_fallback_template_when_llm_fails_for_good(e):
    worlds(e)
    e.ds_set(fail="http500")
    w = llm_worker(e, prompt_fallback="template", llm_retries=1)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["prompt_source"] == "template", str(r))
    check("no cars" in r["prompt"] and r.get("prompt_usage") is None, str(r))
    check(requests(e, "native") == 2, "one call and one retry: %s" % e.ds_stats()["requests"])
    check("event=prompt_fallback" in e.log(w) and "InternalError" in e.log(w), "logged")


def test_without_fallback_the_job_is_retried(e):
    worlds(e)
    e.ds_set(fail="http500", fail_times=4)
    llm_worker(e, llm_retries=1)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["prompt_source"] == "dashscope", str(r))
    check(r["attempt"] == 3, "two failed attempts of two calls each, then success: %s" % r)
    check(requests(e, "native") == 5, str(e.ds_stats()["requests"]))


def test_not_retryable_failures(e):
    worlds(e)
    e.ds_set(fail="quota")
    w1 = llm_worker(e)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "failed" and not r["error"]["retryable"], str(r))
    check("Throttling.AllocationQuota" in r["error"]["message"], r["error"]["message"])
    check(requests(e, "native") == 1, "an exhausted quota is not retried")
    # a wrong key: InvalidApiKey, not retried, and the key shows nowhere
    e.ds_set()
    check(e.kill(w1, signal.SIGTERM) == 0, "first worker drained")
    w2 = llm_worker(e, name="w2", key="sk-wrong-key-123456")
    e.put(TRIP)
    r = e.results(2)[1]
    err = r["error"]
    check(err["code"] == "prompt_failed" and not err["retryable"], str(err))
    check("InvalidApiKey" in err["message"] and "sk-wrong" not in err["message"], str(err))
    check("sk-wrong" not in e.log(w2), "the key is not logged")
    check("sk-wrong" not in e.redis_cli("XRANGE", "tripgen:{dev}:out", "-", "+"),
          "nor published")


def test_missing_key_refuses_to_start(e):
    worlds(e)
    try:
        llm_worker(e, key=None)
    except AssertionError as x:
        msg = str(x)
    else:
        raise AssertionError("the worker started without a key")
    check("DASHSCOPE_API_KEY" in msg and "no API key" in msg, msg)
    # from a file
    path = os.path.join(e.dir, "key")
    with open(path, "w") as f:
        f.write(KEY + "\n")
    os.environ["DASHSCOPE_API_KEY_FILE"] = path
    try:
        llm_worker(e, key=None)
        e.put(TRIP)
        check(e.results(1)[0]["prompt_source"] == "dashscope", "key read from the file")
    finally:
        del os.environ["DASHSCOPE_API_KEY_FILE"]


def test_hang_and_malformed_answers_are_retried(e):
    worlds(e)
    e.ds_set(fail="hang", fail_times=1)
    llm_worker(e, llm_timeout_ms=1500, llm_retries=1)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["attempt"] == 1, "timeout retried in stage: %s" % r)
    e.ds_set(fail="malformed", fail_times=1)
    e.put(TRIP)
    r = e.results(2)[1]
    check(r["status"] == "succeeded" and r["prompt_source"] == "dashscope", str(r))
    statuses = [x["status"] for x in e.ds_stats()["request_log"]]
    check(statuses.count(200) >= 3, "malformed 200, then a good one: %s" % statuses)


def test_deadline_during_the_llm_call(e):
    # the job's deadline cuts a hung LLM call short: deadline_exceeded in the prompt stage
    # on the first attempt (not a retryable "timed out after 1998 ms", retried to no end)
    worlds(e)
    e.ds_set(fail="hang")
    llm_worker(e, llm_timeout_ms=30000, llm_retries=2)
    r = e.tripgen("put", "--deadline", "2", os.path.join(ROOT, "tests/data/trips", TRIP))
    rid = r.stdout.split()[0]
    res = e.results(1, timeout=20)[0]
    err = res["error"]
    check(res["request_id"] == rid and err["code"] == "deadline_exceeded" and
          not err["retryable"] and err["stage"] == "prompt" and res["attempt"] == 1, str(res))
    check(requests(e, "native") == 1, "one call, cut short: %s" % e.ds_stats()["requests"])


def test_fleet_rate_limit_holds_with_three_workers(e):
    worlds(e, comfy_latency="1")
    rps = 4
    for i in range(3):
        llm_worker(e, name="w%d" % i, prompt_concurrency=4, limits_llm_rps=rps,
                   limits_llm_burst=1, llm_timeout_ms=10000)
    n = 18
    trips = [TRIP] * n
    e.put(*trips)
    e.results(n, timeout=60)
    log = sorted(x["t"] for x in e.ds_stats()["request_log"] if x["route"] == "native")
    check(len(log) == n, "one call per job: %d" % len(log))
    # the limiter grants rps + burst tokens in any second; calls reach the stand-in a little
    # after their grants, and on a loaded machine a few late ones can bunch up: allow 2 * rps
    # (a fleet without a shared limit sends a dozen at once); the span checks the mean rate
    worst = max(sum(1 for t in log if s <= t < s + 1.0) for s in log)
    check(worst <= 2 * rps, "at most 2 * rps calls in any second: %d" % worst)
    span = log[-1] - log[0]
    check(span >= (n - 1 - 1) / rps * 0.9, "the calls were spread: %.2f s" % span)


def test_fleet_concurrency_limit_holds_with_three_workers(e):
    worlds(e, comfy_latency="1")
    e.ds_set(latency_ms=300)
    for i in range(3):
        llm_worker(e, name="w%d" % i, prompt_concurrency=4, limits_llm_concurrency=2,
                   llm_timeout_ms=10000)
    n = 12
    e.put(*([TRIP] * n))
    e.results(n, timeout=60)
    st = e.ds_stats()
    check(st["requests"]["native"] == n, str(st["requests"]))
    check(st["max_concurrency"]["native"] == 2, "two calls at once fleet-wide: %s" %
          st["max_concurrency"])


def metric(e, w, name, backend):
    body = e.http_get(w, "/metrics")[1]
    m = re.search(r'%s\{env="dev",backend="%s"\} ([0-9.]+)' % (name, backend), body)
    return float(m.group(1)) if m else None


def test_breaker_opens_and_closes(e):
    worlds(e, comfy_latency="1")
    e.ds_set(fail="http500")
    w = llm_worker(e, prompt_fallback="template", llm_retries=0, breaker_failures=3,
                   breaker_open_ms=4000, prompt_concurrency=1)
    e.put(*([TRIP] * 6))
    rs = e.results(6)
    check(all(r["status"] == "succeeded" and r["prompt_source"] == "template" for r in rs),
          "the template stood in")
    check(requests(e, "native") == 3, "three failures, then no calls while open: %s" %
          e.ds_stats()["requests"])
    check(metric(e, w, "tripgen_breaker_state", "dashscope") == 1, "open")
    check(metric(e, w, "tripgen_breaker_opened_total", "dashscope") == 1, "opened once")
    e.ds_set()  # the provider is back
    time.sleep(4.1)
    e.put(TRIP, TRIP)
    rs = e.results(8)[6:]
    check(all(r["prompt_source"] == "dashscope" for r in rs), "the probe closed it: %s" %
          [r["prompt_source"] for r in rs])
    check(metric(e, w, "tripgen_breaker_state", "dashscope") == 0, "closed")
    log = e.log(w)
    check("event=breaker_opened" in log and "event=breaker_closed" in log, "logged")


def test_seed_policies(e):
    e.start_standin("--latency-ms", "1")
    e.start_worker(name="trip", diffusion_seed_policy="trip")
    e.put(TRIP, TRIP)
    a, b = e.results(2)
    check(a["seed"] == b["seed"] and a["seed_policy"] == "trip", "%s %s" % (a, b))
    e.start_worker(env="fix", name="fixed", diffusion_seed_policy="fixed", diffusion_seed=7)
    e.tripgen("put", os.path.join(ROOT, "tests/data/trips", TRIP), env="fix")
    r = e.results(1, env="fix")[0]
    check(r["seed"] == 7 and r["seed_policy"] == "fixed", str(r))
    e.start_worker(env="rnd", name="random", diffusion_seed_policy="random")
    e.tripgen("put", os.path.join(ROOT, "tests/data/trips", TRIP), env="rnd")
    e.tripgen("put", os.path.join(ROOT, "tests/data/trips", TRIP), env="rnd")
    x, y = e.results(2, env="rnd")
    check(x["seed_policy"] == "random" and x["seed"] != y["seed"], "%s %s" % (x, y))


TESTS = [
    test_dashscope_native_prompt,
    test_compatible_mode_and_openai_without_key,
    test_throttling_recovers_by_retry_after,
    test_moderation_is_content_rejected_without_retries,
    test_fallback_template_when_llm_fails_for_good,
    test_without_fallback_the_job_is_retried,
    test_not_retryable_failures,
    test_missing_key_refuses_to_start,
    test_hang_and_malformed_answers_are_retried,
    test_deadline_during_the_llm_call,
    test_fleet_rate_limit_holds_with_three_workers,
    test_fleet_concurrency_limit_holds_with_three_workers,
    test_breaker_opens_and_closes,
    test_seed_policies,
]


def main():
    return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
