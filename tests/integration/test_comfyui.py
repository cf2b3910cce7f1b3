#!/usr/bin/python3
"""test_comfyui.py BUILD_DIR SOURCE_ROOT [TEST...] - the worker's ComfyUI backend end to end.

Against a real redis-server and the ComfyUI stand-in (tests/standins/comfyui_standin.py), which
speaks ComfyUI's /ws protocol: a job followed over the socket; the socket dropped mid-job (the
job is finished from /history); /ws refused (polling); a SaveImageWebsocket workflow (the image
comes over the socket, no file is written); the job's files deleted from a locally mounted
output folder, other files kept; a deadline while our job runs (a targeted /interrupt) and while
it waits behind another client's job (deleted from ComfyUI's queue, the other job untouched);
two ComfyUI URLs with one slot each (both paint); progress reports in the worker's /metrics.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
SAMPLES = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]
WS_WORKFLOW = os.path.join(ROOT, "deploy/workflows/trip-sdxl-ws-api.json")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# -- helpers of this file (worker_harness.py belongs to the worker's tests) -------------------

def start_second_standin(e, *extra):
    """Another stand-in (another GPU) in e's temp dir; returns (port, output dir)."""
    out = os.path.join(e.dir, "comfyui-out-2")
    port_file = os.path.join(e.dir, "standin-2.port")
    log = open(os.path.join(e.dir, "standin-2.log"), "w")
    p = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "tests/standins/comfyui_standin.py"),
         "--port", "0", "--port-file", port_file, "--output-dir", out, *extra],
        stdout=log, stderr=log)
    e.procs.append(p)
    e.wait(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10,
           "the second ComfyUI stand-in to listen")
    return int(open(port_file).read().strip()), out


def stats_of(out_dir):
    try:
        with open(os.path.join(out_dir, ".stats.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def standin_out(e):
    return os.path.join(e.dir, "comfyui-out")


def files_under(d):
    """Image files under d (the stand-in's own .stats.json left out)."""
    found = []
    for root, _, names in os.walk(d):
        for n in names:
            if not n.startswith(".stats.json"):
                found.append(os.path.relpath(os.path.join(root, n), d))
    return sorted(found)


def post_prompt(port, client_id, seed):
    """Queue a prompt as another ComfyUI client would."""
    with open(os.path.join(ROOT, "deploy/workflows/trip-sdxl-api.json")) as f:
        wf = json.load(f)
    wf["6"]["inputs"]["text"] = "another client's picture"
    wf["3"]["inputs"]["seed"] = seed
    wf["9"]["inputs"]["filename_prefix"] = "other-client"
    body = json.dumps({"prompt": wf, "client_id": client_id}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/prompt" % port, data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())["prompt_id"]


def get_json(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return json.loads(r.read())


def metric(body, name):
    m = re.search(r"^%s\{[^}]*\} (\S+)$" % re.escape(name), body, re.M)
    return float(m.group(1)) if m else None


# -- tests ------------------------------------------------------------------------------------

def test_ws_follow_succeeds(e):
    e.start_standin("--latency-ms", "300")
    w = e.start_worker(comfyui_follow="ws")
    ids = e.put(SAMPLES[0])
    r = e.results(1)[0]
    check(r["request_id"] == ids[0] and r["status"] == "succeeded", str(r))
    st = e.standin_stats()
    check(st.get("ws_connections", 0) >= 1, "the worker opened a socket: %s" % st)
    check(st.get("executed") == 1 and st.get("ws_messages", 0) > 0, "followed: %s" % st)
    log = e.log(w)
    check("event=comfyui_ws_fallback" not in log, "no fallback to polling:\n" + log)
    check(st.get("history_polls", 0) <= 2, "one history read, no polling: %s" % st)


def test_progress_in_metrics(e):
    e.start_standin("--latency-ms", "400")
    w = e.start_worker()
    e.put(SAMPLES[1])
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    status, body = e.http_get(w, "/metrics")
    check(status == 200, "metrics served")
    n = metric(body, "tripgen_diffusion_progress_reports_total")
    check(n is not None and n > 0, "progress reports counted: %s" % n)
    ratio = metric(body, "tripgen_diffusion_progress_ratio")
    check(ratio is not None and 0 < ratio <= 1, "last progress ratio: %s" % ratio)


def test_ws_drop_falls_back_to_history(e):
    e.start_standin("--latency-ms", "500")
    e.standin_control(fail="ws_drop")
    w = e.start_worker()
    ids = e.put(SAMPLES[0])
    r = e.results(1)[0]
    check(r["request_id"] == ids[0] and r["status"] == "succeeded", str(r))
    check(r["attempt"] == 1, "no retry of the job: %s" % r)
    st = e.standin_stats()
    check(st.get("ws_dropped", 0) >= 1 and st.get("history_polls", 0) >= 1,
          "dropped, then polled: %s" % st)
    check("event=comfyui_ws_fallback" in e.log(w), "fallback logged")


def test_ws_refused_polls(e):
    e.start_standin("--latency-ms", "200")
    e.standin_control(fail="ws_refuse")
    w = e.start_worker()
    e.put(SAMPLES[2])
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    st = e.standin_stats()
    check(st.get("ws_refused", 0) >= 1 and st.get("ws_connections", 0) == 0, str(st))
    check(st.get("history_polls", 0) >= 2, "polled: %s" % st)
    check("event=comfyui_ws_fallback" in e.log(w), "fallback logged")


def test_save_image_websocket_writes_no_file(e):
    e.start_standin("--latency-ms", "200")
    # a fixed seed: the second job is the same prompt, which ComfyUI serves from its cache;
    # SaveImageWebsocket still runs (IS_CHANGED) and sends the image again
    w = e.start_worker(comfyui_workflow=WS_WORKFLOW, comfyui_bind_prefix="",
                       diffusion_seed_policy="fixed")
    ids = e.put(SAMPLES[0], SAMPLES[0])
    results = {r["request_id"]: r for r in e.results(2)}
    for rid in ids:
        r = results[rid]
        check(r["status"] == "succeeded", str(r))
        img = r["images"][0]
        check((img["width"], img["height"]) == (768, 960), "the socket's PNG decoded: %s" % img)
    st = e.standin_stats()
    check(st.get("ws_binary_frames") == 2 and st.get("images_written") == 0, str(st))
    check(st.get("executed") == 1 and st.get("cached_hits") == 1, "one cache hit: %s" % st)
    check(files_under(standin_out(e)) == [], "no files: %s" % files_under(standin_out(e)))
    check("event=comfyui_ws_fallback" not in e.log(w), "no fallback")


def test_odd_frames_are_skipped(e):
    # a ping, frames that are not ComfyUI's, and a preview image sent while the sampler (not
    # the SaveImageWebsocket node) runs: the job still gets the right image
    e.start_standin("--latency-ms", "300")
    e.standin_control(fail="ws_garbage")
    w = e.start_worker(comfyui_workflow=WS_WORKFLOW, comfyui_bind_prefix="")
    e.put(SAMPLES[2])
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    img = r["images"][0]
    check((img["width"], img["height"]) == (768, 960), "not the preview: %s" % img)
    check(e.standin_stats().get("faults_fired") == 1, "garbage sent")
    check(w.poll() is None and "event=comfyui_ws_fallback" not in e.log(w), "no fallback")


def test_save_image_websocket_without_socket_fails_retryably(e):
    e.start_standin("--latency-ms", "50")
    e.standin_control(fail="ws_refuse")
    e.start_worker(comfyui_workflow=WS_WORKFLOW, comfyui_bind_prefix="", retry_max_attempts=1)
    e.put(SAMPLES[0])
    r = e.results(1)[0]
    check(r["status"] == "failed" and r["error"]["code"] == "diffusion_failed" and
          r["error"]["retryable"] and "SaveImageWebsocket" in r["error"]["message"], str(r))
    check(e.standin_stats().get("prompts_received", 0) == 0, "nothing queued in vain")


def test_output_dir_cleanup(e):
    e.start_standin("--latency-ms", "100")
    out = standin_out(e)
    os.makedirs(os.path.join(out, "tripgen", "dev"), exist_ok=True)
    keep = [os.path.join("tripgen", "dev", "someone-else_00001_.png"), "ComfyUI_00001_.png"]
    for k in keep:
        with open(os.path.join(out, k), "wb") as f:
            f.write(b"not ours")
    w = e.start_worker(comfyui_output_dir=out)
    ids = e.put(SAMPLES[0], SAMPLES[2])
    results = {r["request_id"]: r for r in e.results(2)}
    check(all(results[i]["status"] == "succeeded" for i in ids), str(results))
    st = e.standin_stats()
    check(st.get("images_written") == 2 and st.get("views_served") == 2, str(st))
    left = files_under(out)
    check(left == sorted(keep), "the jobs' files deleted, others kept: %s" % left)
    check(len(re.findall(r"event=comfyui_output_deleted \S+ \S+ count=1", e.log(w))) == 2,
          "deletions logged:\n" + e.log(w))


def test_output_dir_cleanup_with_polling(e):
    e.start_standin("--latency-ms", "50")
    out = standin_out(e)
    e.start_worker(comfyui_output_dir=out + "/", comfyui_follow="poll")
    e.put(SAMPLES[1])
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    check(e.standin_stats().get("images_written") == 1 and files_under(out) == [],
          "deleted: %s" % files_under(out))


def test_each_attempt_saves_anew(e):
    # the first /view answers garbage: postproc fails retryably and the job paints again with
    # the same seed; the nonce in filename_prefix makes ComfyUI run the save node again instead
    # of handing back the first attempt's (already deleted) file from its cache
    e.start_standin("--latency-ms", "50")
    e.standin_control(fail="bad_png", fail_times=1)
    out = standin_out(e)
    e.start_worker(comfyui_output_dir=out)
    e.put(SAMPLES[0])
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["attempt"] == 2, str(r))
    st = e.standin_stats()
    check(st.get("images_written") == 2 and st.get("views_missing") == 0 and
          st.get("views_bad") == 1, str(st))
    check(files_under(out) == [], "both attempts' files deleted: %s" % files_under(out))


def test_deadline_interrupts_our_running_job(e):
    e.start_standin("--latency-ms", "100")
    e.standin_control(fail="hang", fail_times=1)
    e.start_worker(diffusion_timeout_ms=1500, retry_max_attempts=1)
    e.put(SAMPLES[0])
    r = e.results(1, timeout=20)[0]
    check(r["status"] == "failed" and r["error"]["code"] == "diffusion_failed" and
          r["error"]["retryable"] and "not finished within" in r["error"]["message"], str(r))
    e.wait(lambda: e.standin_stats().get("interrupted") == 1, 5, "the job to be interrupted")
    st = e.standin_stats()
    targets = st.get("interrupt_targets")
    check(len(targets) == 1 and targets[0], "one interrupt, aimed at our prompt: %s" % st)
    check(st.get("queue_deletes") == 0, str(st))
    hist = get_json(e.standin_port, "/history")
    check(list(hist) == [targets[0]], "the interrupted prompt was ours: %s" % list(hist))


def test_deadline_during_a_stalled_poll(e):
    # the deadline comes while a /history poll waits for its answer: the job fails as a
    # prompt not finished in time, not as a call that timed out after a few milliseconds
    e.start_standin("--latency-ms", "3000")
    e.standin_control(fail="history_hang", fail_times=1)
    e.start_worker(diffusion_timeout_ms=1500, retry_max_attempts=1, comfyui_follow="poll")
    e.put(SAMPLES[0])
    r = e.results(1, timeout=20)[0]
    msg = r["error"]["message"]
    check(r["status"] == "failed" and r["error"]["code"] == "diffusion_failed" and
          r["error"]["retryable"] and "not finished within the diffusion timeout" in msg and
          "it came during GET /history/" in msg, str(r))
    check(e.standin_stats().get("history_hung") == 1, "the poll stalled")
    e.wait(lambda: e.standin_stats().get("interrupted") == 1, 5, "the job to be interrupted")


def test_deadline_deletes_our_queued_job(e):
    e.start_standin("--latency-ms", "100")
    e.standin_control(fail="hang", fail_times=1)
    other = post_prompt(e.standin_port, "someone-else", 7)
    e.wait(lambda: e.standin_stats().get("queue_running") == 1, 5, "the other job to run")
    e.start_worker(diffusion_timeout_ms=1500, retry_max_attempts=1)
    e.put(SAMPLES[1])
    r = e.results(1, timeout=20)[0]
    check(r["status"] == "failed" and r["error"]["retryable"] and
          "not finished within" in r["error"]["message"], str(r))
    e.wait(lambda: e.standin_stats().get("queue_deletes") == 1, 5, "our job to be deleted")
    st = e.standin_stats()
    check(st.get("interrupts") == 0 and st.get("interrupted") == 0,
          "the other client's job is not interrupted: %s" % st)
    q = get_json(e.standin_port, "/queue")
    check([x[1] for x in q["queue_running"]] == [other] and q["queue_pending"] == [],
          "the other job still runs, ours is gone: %s" % q)


def test_two_urls_one_slot_each(e):
    e.start_standin("--latency-ms", "600")
    port2, out2 = start_second_standin(e, "--latency-ms", "600")
    urls = "http://127.0.0.1:%d,http://127.0.0.1:%d/" % (e.standin_port, port2)
    e.start_worker(comfyui_url=urls, comfyui_slots=1, diffusion_slots=2)
    ids = e.put(*SAMPLES, "may-day-shanghai.json")
    results = e.results(4, timeout=40)
    check(all(r["status"] == "succeeded" for r in results), str(results))
    check(len({r["request_id"] for r in results}) == len(ids), "all answered")
    a, b = e.standin_stats(), stats_of(out2)
    check(a.get("executed", 0) >= 1 and b.get("executed", 0) >= 1,
          "both ComfyUIs painted: %s / %s" % (a.get("executed"), b.get("executed")))
    check(a.get("executed", 0) + b.get("executed", 0) == 4, "four paints in all")
    for s in (a, b):
        ex = sorted(s.get("executions", []))
        overlap = any(x[0] < y[1] - 1e-3 and y[0] < x[1] - 1e-3 for x, y in zip(ex, ex[1:]))
        check(not overlap and s.get("queue_pending", 0) == 0, "one job at a time: %s" % ex)
    # with one slot per ComfyUI, nothing ever waited in a ComfyUI queue: both were busy at once
    ea, eb = a["executions"], b["executions"]
    check(any(x[0] < y[1] and y[0] < x[1] for x in ea for y in eb), "the GPUs worked in parallel")


def test_second_url_down_first_takes_over(e):
    e.start_standin("--latency-ms", "100")
    urls = "http://127.0.0.1:9,http://127.0.0.1:%d" % e.standin_port
    w = e.start_worker(comfyui_url=urls, comfyui_slots=1, diffusion_slots=1, breaker_failures=2,
                   comfyui_http_retries=0, retry_max_attempts=5)
    ids = e.put(*SAMPLES)
    results = e.results(3, timeout=40)
    check(all(r["status"] == "succeeded" for r in results), str(results))
    check(e.standin_stats().get("executed") == 3 and len(ids) == 3,
          "the live ComfyUI painted all")
    # two failures open the dead one's breaker; from then on it is passed over, not refused
    failed = [l for l in e.log(w).splitlines() if "event=stage_failed" in l]
    check(len(failed) == 2 and all("127.0.0.1:9:" in l for l in failed), "\n".join(failed))


def test_ws_connect_that_hangs_is_bounded(e):
    """A /ws that accepts and never upgrades costs at most the connect bound, not
    civetweb's 30 s: the job is followed by polling and succeeds long before."""
    e.start_standin("--latency-ms", "50")
    e.standin_control(fail="ws_hang")
    w = e.start_worker(comfyui_http_timeout_ms=1000, diffusion_timeout_ms=20000)
    t0 = time.time()
    e.put(SAMPLES[0])
    r = e.results(1, timeout=20)[0]
    check(r["status"] == "succeeded", str(r))
    check(time.time() - t0 < 8, "bounded: %.1f s" % (time.time() - t0))
    check("event=comfyui_ws_fallback" in e.log(w) and "did not finish in time" in e.log(w),
          "fell back to polling")
    check(e.standin_stats().get("ws_hung", 0) >= 1, "the socket hung")


def test_dead_url_is_passed_over_with_two_slots(e):
    """Two diffusion slots, one URL dead: once its breaker is open, jobs wait for the live
    URL instead of being sent to the dead one and failing."""
    e.start_standin("--latency-ms", "100")
    urls = "http://127.0.0.1:9,http://127.0.0.1:%d" % e.standin_port
    w = e.start_worker(comfyui_url=urls, comfyui_slots=1, diffusion_slots=2, breaker_failures=1,
                       breaker_open_ms=60000, comfyui_http_retries=0, retry_max_attempts=5)
    e.put(*(SAMPLES * 3))
    results = e.results(9, timeout=60)
    check(all(r["status"] == "succeeded" for r in results), str(results))
    failed = [l for l in e.log(w).splitlines() if "event=stage_failed" in l]
    check(len(failed) <= 2 and all("127.0.0.1:9:" in l for l in failed),
          "at most the failures before the breaker opened:\n" + "\n".join(failed))
    check("circuit breaker" not in e.log(w), "no job was sent to the open breaker")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
