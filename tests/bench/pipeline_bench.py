#!/usr/bin/python3
"""pipeline_bench.py - the orchestrator behind `scripts/bench pipeline`.

Does the staged worker keep the diffusion stage busy? One run, two phases,
each against a private redis-server and fresh stand-ins at realistic
latencies (tests/standins/): an LLM that answers in --llm-ms (1500 ms) and
allows --llm-concurrency (8) calls at once (the stand-in answers 429 above
that), and a ComfyUI with one GPU that paints in --diffusion-ms (400 ms),
one job at a time. Post-process (the CPU backend) and upload (the file
backend) are the real ones.

  pipelined   --jobs (200) jobs backlogged before one worker starts with
              prompt.concurrency = --llm-concurrency, diffusion.slots 2 and
              comfyui.slots 2 (the next job waits in ComfyUI's queue while one
              paints), max_in_flight 16;
  sequential  --seq-jobs (20) jobs with every concurrency at 1 and one job in
              flight: the seed's one-request-at-a-time flow.

Printed (name=value on stdout): jobs_per_s (pipelined, from the worker's
start until `tripgen watch` has seen the last result), the stage times measured by the servers (LLM answer time,
GPU execution time) and by the worker (post-process, upload: means from the
sequential phase, where nothing competes), bound_jobs_per_s = min over stages
of concurrency / stage time, efficiency = jobs_per_s / bound, the GPU's busy
fraction between its first start and last finish, p50/p99 queue-to-result
latency (timings_ms.total), sequential_jobs_per_s and
speedup_vs_sequential. Standard library only; run with /usr/bin/python3.

  pipeline_bench.py [--build build] [--jobs 200] [--seq-jobs 20] [--llm-ms 1500]
                    [--llm-concurrency 8] [--diffusion-ms 400]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from worker_harness import Env  # noqa: E402

KEY = "sk-bench-" + os.urandom(6).hex()
TRIPS = ["may-day-shanghai.json", "national-day-chengdu.json", "winter-harbin-short.json"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def emit(name, value):
    print("%s=%s" % (name, value), flush=True)


def pct(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def start_world(e, args):
    e.start_redis()
    e.start_standin("--latency-ms", str(args.diffusion_ms))
    e.start_dashscope(api_key=KEY)
    e.ds_set(latency_ms=args.llm_ms, max_concurrency=args.llm_concurrency)


def start_worker(e, **conf):
    os.environ["DASHSCOPE_API_KEY"] = KEY
    base = {"prompt_backend": "dashscope", "dashscope_url": e.ds_base, "llm_timeout_ms": 30000,
            "diffusion_timeout_ms": 120000,
            "queue_visibility_timeout_ms": 300000}
    base.update(conf)
    return e.start_worker(**base)


def phase(args, jobs, name, **conf):
    e = Env(str(Path(args.build).resolve()), str(ROOT))
    try:
        start_world(e, args)
        log("%s: %d jobs" % (name, jobs))
        files = [TRIPS[i % len(TRIPS)] for i in range(jobs)]
        for i in range(0, len(files), 50):
            e.put(*files[i:i + 50])
        t0 = time.time()
        start_worker(e, **conf)
        results = e.results(jobs, timeout=max(120, jobs * 5))  # returns as the last lands
        span = time.time() - t0
        bad = [r for r in results if r["status"] != "succeeded"]
        if bad:
            raise SystemExit("bench: %s: %d jobs failed, e.g. %s" % (name, len(bad),
                                                                     bad[0]["error"]))
        comfy = e.standin_stats()
        ds = e.ds_stats()
        return {"results": results, "span": span, "jobs_per_s": jobs / span,
                "executions": comfy.get("executions", []),
                "llm_log": [x for x in ds.get("request_log", []) if x.get("status") == 200],
                "over_concurrency": ds.get("faults_fired", {}).get("over_concurrency", 0)}
    finally:
        e.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--seq-jobs", type=int, default=20)
    ap.add_argument("--llm-ms", type=int, default=1500)
    ap.add_argument("--llm-concurrency", type=int, default=8)
    ap.add_argument("--diffusion-ms", type=int, default=400)
    args = ap.parse_args()
    if not os.path.exists(os.path.join(args.build, "worker", "tripgen-worker")):
        raise SystemExit("bench: no worker in %s: build first" % args.build)

    common = {"queue_take_batch": 4, "storage_concurrency": 2, "postproc_concurrency": 2}
    pipe = phase(args, args.jobs, "pipelined", prompt_concurrency=args.llm_concurrency,
                 diffusion_slots=2, comfyui_slots=2, queue_max_in_flight=16, **common)
    seq = phase(args, args.seq_jobs, "sequential", prompt_concurrency=1, diffusion_slots=1,
                comfyui_slots=1, queue_max_in_flight=1, queue_take_batch=1,
                storage_concurrency=1, postproc_concurrency=1)

    # stage times: what the servers took (LLM answer, GPU execution) in the pipelined
    # phase; post-process and upload from the sequential phase (nothing competes there)
    llm_s = statistics.mean(x["t_done"] - x["t"] for x in pipe["llm_log"])
    ex = pipe["executions"]
    gpu_s = statistics.mean(b - a for a, b in ex)
    post_s = statistics.mean(r["timings_ms"]["postproc"] for r in seq["results"]) / 1000.0
    up_s = statistics.mean(r["timings_ms"]["upload"] for r in seq["results"]) / 1000.0
    stages = {"prompt": (args.llm_concurrency, llm_s), "diffusion": (1, gpu_s),
              "postproc": (2, post_s), "upload": (2, up_s)}
    bound_stage, (conc, secs) = min(stages.items(), key=lambda kv: kv[1][0] / max(kv[1][1], 1e-6))
    bound = conc / max(secs, 1e-6)
    busy = sum(b - a for a, b in ex) / (max(b for _, b in ex) - min(a for a, _ in ex))
    lat = [r["timings_ms"]["total"] / 1000.0 for r in pipe["results"]]

    emit("jobs", args.jobs)
    emit("jobs_per_s", "%.3f" % pipe["jobs_per_s"])
    emit("wall_s", "%.2f" % pipe["span"])
    for name, (c, s) in stages.items():
        emit("stage_%s_s" % name, "%.3f" % s)
        emit("stage_%s_concurrency" % name, c)
    emit("bound_stage", bound_stage)
    emit("bound_jobs_per_s", "%.3f" % bound)
    emit("efficiency", "%.3f" % (pipe["jobs_per_s"] / bound))
    emit("diffusion_busy_fraction", "%.3f" % busy)
    emit("latency_p50_s", "%.2f" % pct(lat, 0.50))
    emit("latency_p99_s", "%.2f" % pct(lat, 0.99))
    emit("llm_over_concurrency_429", pipe["over_concurrency"])
    emit("sequential_jobs", args.seq_jobs)
    emit("sequential_jobs_per_s", "%.3f" % seq["jobs_per_s"])
    emit("speedup_vs_sequential", "%.2f" % (pipe["jobs_per_s"] / seq["jobs_per_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
