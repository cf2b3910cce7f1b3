#!/usr/bin/python3
"""queue_bench.py - the orchestrator behind `scripts/bench queue`.

Starts one private redis-server (unix socket only, no persistence) and runs
four measurements against it in one go, with FLUSHALL between them:

  1. put: EAS puts over HTTP through tripgen-scheduler, wrk with keep-alive
     (tests/bench/put.lua; each put a different trip_id): requests/s, p50, p99;
  2. tripgen: N jobs enqueued in bulk with tripgen's transport library
     (tripgen-bench-enqueue), then one tripgen-worker-noop (the real worker
     with stages that do nothing, tests/bench/noop-worker.json), timed from
     its start until the sink holds N results; the worker's peak RSS (VmHWM)
     and CPU time, and the CPU time redis-server spent meanwhile;
  3. bullmq: the same workload with BullMQ (tests/bench/bullmq_bench.mjs:
     addBulk, then one Worker, concurrency 50, no-op processor; the Worker is
     timed from its creation, after node has started), the same figures;
  4. redis: redis-benchmark XADD, unpipelined and with -P 16, as the ceiling.

Parts 2 and 3 alternate for --rounds rounds (default 3) and report medians
(peak RSS: the largest), since single runs of a few seconds are noisy. Both
queues reach redis over the same unix socket. Results are printed as
name=value lines on stdout (progress and problems on stderr), among them
ratio_vs_bullmq = tripgen jobs/s / BullMQ jobs/s (medians). Every process this
starts is stopped on exit, on error and on Ctrl-C. Python standard library only.

  queue_bench.py [--build build] [--jobs 20000] [--duration 10] [--rounds 3]
                 [--parts 1,2,3,4]
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tests" / "bench"
ENV = "bench"                      # the env of noop-worker.json and scheduler-bench.json
SERVICE = "trip-bench"             # the service of scheduler-bench.json
TOKEN = "bench-token-" + os.urandom(8).hex()

_children = []                     # every process started, stopped in stop_all()
_libc = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def emit(name, value):
    print(f"{name}={value}", flush=True)


def _die_with_parent():
    """In the child: get SIGTERM if the orchestrator dies (PR_SET_PDEATHSIG)."""
    _libc.prctl(1, int(signal.SIGTERM))


def spawn(argv, log_path=None, env=None, **kw):
    """Start a child in its own session (Ctrl-C reaches only us; we stop it)."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    try:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True, preexec_fn=_die_with_parent, **kw)
    except OSError as e:
        raise BenchError(f"cannot start {argv[0]}: {e}") from e
    finally:
        if log_path:
            out.close()
    _children.append(p)
    return p


def stop(p, timeout=10.0):
    """SIGTERM, then SIGKILL after timeout; returns the exit status."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    if p in _children:
        _children.remove(p)
    return p.returncode


def stop_all():
    for p in reversed(list(_children)):   # redis, started first, goes last
        stop(p, 5.0)


def run(argv, timeout, env=None, what=None):
    """Run to completion; BenchError with the output's tail on failure."""
    what = what or Path(argv[0]).name
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                           preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"{what} did not finish within {timeout} s") from e
    except OSError as e:
        raise BenchError(f"cannot run {what}: {e}") from e
    if r.returncode != 0:
        raise BenchError(f"{what} exited {r.returncode}:\n{tail(r.stdout + r.stderr)}")
    return r


def tail(text, lines=20):
    return "\n".join(text.strip().splitlines()[-lines:])


def file_tail(path, lines=20):
    try:
        return tail(Path(path).read_text(errors="replace"), lines)
    except OSError:
        return "(no log)"


def values(text):
    """name=value lines of a tool's output as a dict."""
    return dict(m.groups() for m in re.finditer(r"^([a-z0-9_]+)=(\S*)$", text, re.M))


class Redis:
    """A minimal RESP client on one persistent unix-socket connection."""

    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.f = self.sock.makefile("rb")

    def __call__(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self):
        line = self.f.readline()
        if not line:
            raise BenchError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise BenchError(f"redis: {rest.decode()}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise BenchError(f"redis: unexpected reply {line!r}")

    def close(self):
        self.f.close()
        self.sock.close()


def wait_for(what, check, timeout, interval=0.05, proc=None, log_path=None):
    """Poll check() until true; BenchError after timeout or when proc exits."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except (OSError, BenchError):
            pass
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{what}: process exited {proc.returncode}:\n{file_tail(log_path)}")
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not ready within {timeout} s\n{file_tail(log_path)}")
        time.sleep(interval)


def start_redis(tmp):
    sock, logf = tmp / "redis.sock", tmp / "redis.log"
    p = spawn(["redis-server", "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
               "--save", "", "--appendonly", "no", "--dir", str(tmp), "--logfile", str(logf)],
              log_path=tmp / "redis.out")
    def pong():
        c = Redis(str(sock), 1.0)
        try:
            return c("PING") == "PONG"
        finally:
            c.close()
    wait_for("redis-server", pong, 10, proc=p, log_path=logf)
    return str(sock)


def cpu_busy_pct(secs=1.0):
    """Share of all CPUs busy over the next secs, from /proc/stat."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]          # total, idle + iowait
    t0, i0 = sample()
    time.sleep(secs)
    t1, i1 = sample()
    return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def part_put(args, tmp, sock, r):
    """1: wrk against the scheduler's EAS put."""
    exe = args.build / "scheduler" / "tripgen-scheduler"
    if not exe.exists():
        raise BenchError(f"{exe} is missing: build first (scripts/bench builds build/)")
    port = free_port()
    env = dict(os.environ, TRIPGEN_REDIS_URL=f"unix://{sock}",
               TRIPGEN_SCHEDULER_LISTEN=f"127.0.0.1:{port}", TRIPGEN_BENCH_TOKEN=TOKEN)
    logf = tmp / "scheduler.log"
    p = spawn([str(exe), "--config", str(BENCH / "scheduler-bench.json")], log_path=logf, env=env)

    def healthy():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
            return resp.status == 200
    wait_for("tripgen-scheduler /healthz", healthy, 15, proc=p, log_path=logf)
    url = f"http://127.0.0.1:{port}/api/predict/{SERVICE}"
    log(f"part 1: wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s POST {url}")
    w = run(["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}s",
             "--timeout", "5s", "--latency", "-s", str(BENCH / "put.lua"), url, "--",
             str(args.trip)], timeout=args.duration + 60, env=env, what="wrk")
    v = values(w.stdout)
    if "put_requests_per_s" not in v:
        raise BenchError(f"wrk printed no results:\n{tail(w.stdout + w.stderr)}")
    for k in ("put_requests_per_s", "put_p50_ms", "put_p99_ms", "put_errors"):
        emit(k, v[k])
    emit("put_enqueued", r("XLEN", f"tripgen:{{{ENV}}}:in"))
    if int(v["put_errors"]) > 0:
        log("part 1: wrk counted errors; its output:\n" + w.stdout.strip())
    rc = stop(p)
    if rc != 0:
        log(f"part 1: tripgen-scheduler exited {rc}:\n{file_tail(logf)}")


def proc_usage(pid):
    """(peak RSS in MiB from VmHWM, CPU seconds) of a live process."""
    with open(f"/proc/{pid}/status") as f:
        hwm = next((int(l.split()[1]) for l in f if l.startswith("VmHWM:")), None)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    if hwm is None:
        raise BenchError(f"no VmHWM for pid {pid}")
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return hwm / 1024, cpu


def redis_cpu(r):
    """CPU seconds redis-server has used so far (user + system)."""
    info = r("INFO", "cpu").decode()
    return sum(float(m) for m in re.findall(r"^used_cpu_(?:sys|user):([\d.]+)", info, re.M))


def count_unsucceeded(r, key):
    """Results on the sink whose status is not succeeded (a sanity check)."""
    bad, start = 0, "-"
    while True:
        batch = r("XRANGE", key, start, "+", "COUNT", 5000)
        for _id, fields in batch:
            result = dict(zip(fields[::2], fields[1::2])).get(b"result", b"")
            bad += b'"status":"succeeded"' not in result
        if len(batch) < 5000:
            return bad
        start = b"(" + batch[-1][0]


def tripgen_paths(args):
    return (args.build / "tests" / "bench" / "tripgen-bench-enqueue",
            args.build / "tests" / "bench" / "tripgen-worker-noop",
            BENCH / "noop-worker.json")


def round_tripgen(args, tmp, sock, r):
    """2: tripgen enqueue in bulk, then the no-op worker until the sink holds N."""
    enq, worker, conf = tripgen_paths(args)
    url = f"unix://{sock}"
    e = values(run([str(enq), "--redis", url, "--env", ENV, "--count", str(args.jobs),
                    "--trip", str(args.trip)], timeout=120, what="tripgen-bench-enqueue").stdout)
    if e.get("enqueue_jobs") != str(args.jobs):
        raise BenchError(f"tripgen-bench-enqueue: unexpected output {e}")
    queued = r("XLEN", f"tripgen:{{{ENV}}}:in")
    if queued != args.jobs:
        raise BenchError(f"{queued} jobs in tripgen:{{{ENV}}}:in after enqueue, expected {args.jobs}")

    out_key = f"tripgen:{{{ENV}}}:out"
    env = dict(os.environ, TRIPGEN_REDIS_URL=url,
               TRIPGEN_QUEUE_SINK_MAX_LEN=str(max(100000, 2 * args.jobs)))
    logf = tmp / "worker.log"
    timeout = 30 + args.jobs / 200
    cpu0 = redis_cpu(r)
    t0 = time.monotonic()
    p = spawn([str(worker), "--config", str(conf)], log_path=logf, env=env)
    while (n := r("XLEN", out_key)) < args.jobs:
        if p.poll() is not None:
            raise BenchError(f"tripgen-worker-noop exited {p.returncode} with {n} results:\n"
                             f"{file_tail(logf)}")
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"tripgen: only {n} of {args.jobs} results after {timeout:.0f} s:\n"
                             f"{file_tail(logf)}")
        time.sleep(0.01)
    secs = time.monotonic() - t0
    rss, cpu = proc_usage(p.pid)
    rcpu = redis_cpu(r) - cpu0
    rc = stop(p, 30.0)
    if rc != 0:
        log(f"tripgen-worker-noop exited {rc} after SIGTERM:\n{file_tail(logf)}")
    if n != args.jobs:
        log(f"tripgen: the sink holds {n} results, more than the {args.jobs} jobs")
    dead = r("XLEN", f"tripgen:{{{ENV}}}:dlq")
    if dead:
        log(f"tripgen: {dead} jobs were dead-lettered")
    bad = count_unsucceeded(r, out_key)
    if bad:
        log(f"tripgen: {bad} of the results on the sink are not status succeeded")
    return {"enqueue_seconds": float(e["enqueue_seconds"]),
            "enqueue_jobs_per_s": float(e["enqueue_jobs_per_s"]),
            "seconds": secs, "jobs_per_s": args.jobs / secs, "peak_rss_mb": rss,
            "worker_cpu_s": cpu, "redis_cpu_s": rcpu}


def round_bullmq(args, tmp, sock, r):
    """3: BullMQ addBulk, then one Worker with concurrency 50."""
    script = BENCH / "bullmq_bench.mjs"
    common = ["--socket", sock, "--jobs", str(args.jobs)]
    e = values(run(["node", str(script), "enqueue", *common, "--trip", str(args.trip)],
                   timeout=120, what="bullmq_bench.mjs enqueue").stdout)
    timeout = int(30 + args.jobs / 200)
    cpu0 = redis_cpu(r)
    w = run(["node", str(script), "work", *common, "--concurrency", str(args.concurrency),
             "--timeout", str(timeout)], timeout=timeout + 30, what="bullmq_bench.mjs work")
    rcpu = redis_cpu(r) - cpu0
    v = values(w.stdout)
    if w.stderr.strip():
        log("BullMQ said:\n" + tail(w.stderr))
    args.bullmq_version = e.get("bullmq_version", "?")
    return {"enqueue_seconds": float(e["bullmq_enqueue_seconds"]),
            "enqueue_jobs_per_s": float(e["bullmq_enqueue_jobs_per_s"]),
            "seconds": float(v["bullmq_seconds"]), "jobs_per_s": args.jobs / float(v["bullmq_seconds"]),
            "peak_rss_mb": float(v["bullmq_peak_rss_mb"]),
            "worker_cpu_s": float(v["bullmq_worker_cpu_s"]), "redis_cpu_s": rcpu}


def emit_rounds(prefix, rounds):
    """Medians over the rounds (peak RSS: the largest), and jobs/s of each round."""
    def med(k):
        return statistics.median(x[k] for x in rounds)
    emit(f"{prefix}_enqueue_seconds", f"{med('enqueue_seconds'):.3f}")
    emit(f"{prefix}_enqueue_jobs_per_s", f"{med('enqueue_jobs_per_s'):.0f}")
    emit(f"{prefix}_seconds", f"{med('seconds'):.3f}")
    emit(f"{prefix}_jobs_per_s", f"{med('jobs_per_s'):.0f}")
    emit(f"{prefix}_jobs_per_s_rounds", ",".join(f"{x['jobs_per_s']:.0f}" for x in rounds))
    emit(f"{prefix}_peak_rss_mb", f"{max(x['peak_rss_mb'] for x in rounds):.1f}")
    emit(f"{prefix}_worker_cpu_s", f"{med('worker_cpu_s'):.2f}")
    emit(f"{prefix}_redis_cpu_s", f"{med('redis_cpu_s'):.2f}")
    return med("jobs_per_s")


def part_redis(args, tmp, sock, r):
    """4: redis-benchmark XADD, the ceiling."""
    for name, pipeline in (("redis_xadd_per_s", 1), ("redis_xadd_pipelined_per_s", 16)):
        log(f"part 4: redis-benchmark XADD -P {pipeline}")
        b = run(["redis-benchmark", "-s", sock, "-n", str(args.redis_requests), "-P",
                 str(pipeline), "--csv", "XADD", "bench:xadd", "*", "f", "v"], timeout=120,
                what="redis-benchmark")
        m = re.search(r'^"XADD[^"]*","([\d.]+)"', b.stdout, re.M)
        if not m:
            raise BenchError(f"redis-benchmark: no result in:\n{tail(b.stdout + b.stderr)}")
        emit(name, f"{float(m.group(1)):.0f}")
        r("DEL", "bench:xadd")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=Path, default=ROOT / "build", help="meson build directory")
    ap.add_argument("--jobs", type=int, default=20000, help="jobs of parts 2 and 3")
    ap.add_argument("--duration", type=int, default=10, help="seconds of the wrk run (part 1)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of parts 2 and 3 (medians)")
    ap.add_argument("--connections", type=int, default=32, help="wrk connections")
    ap.add_argument("--wrk-threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--concurrency", type=int, default=50, help="BullMQ worker concurrency")
    ap.add_argument("--redis-requests", type=int, default=200000, help="redis-benchmark -n")
    ap.add_argument("--trip", type=Path, default=ROOT / "tests/data/trips/may-day-shanghai.json")
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 2,3")
    args = ap.parse_args()
    parts = {int(x) for x in args.parts.split(",") if x}
    if min(args.jobs, args.duration, args.rounds) < 1 or not parts <= {1, 2, 3, 4}:
        ap.error("--jobs, --duration and --rounds must be positive; --parts from 1,2,3,4")
    args.build, args.trip = args.build.resolve(), args.trip.resolve()
    for tool in ("redis-server", "wrk", "redis-benchmark", "node"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is not installed (scripts/bench installs it)")

    # Ctrl-C, SIGTERM and SIGHUP end us through the finally below (SIGINT
    # too when a shell started us in the background with it ignored)
    def on_signal(sig, _frame):
        raise KeyboardInterrupt
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="tripgen-bench-"))
    r = None
    try:
        sock = start_redis(tmp)
        r = Redis(sock, timeout=10.0)
        info = r("INFO", "server").decode()
        emit("machine_cores", os.cpu_count())
        busy = cpu_busy_pct()
        emit("machine_busy_pct", f"{busy:.0f}")
        if busy > 20:
            log(f"the machine is not idle ({busy:.0f} % CPU busy before the start): "
                "expect noisy numbers")
        emit("redis_version", re.search(r"redis_version:(\S+)", info).group(1))
        emit("redis_connection", "unix_socket")
        emit("jobs", args.jobs)
        emit("node_version", run(["node", "--version"], 30).stdout.strip())
        if 1 in parts:
            r("FLUSHALL")
            part_put(args, tmp, sock, r)
        # parts 2 and 3 alternate, round by round; medians are reported
        do_tripgen, do_bullmq = 2 in parts, 3 in parts
        if do_tripgen and not all(x.exists() for x in tripgen_paths(args)):
            log("part 2 SKIPPED: missing " +
                ", ".join(str(x) for x in tripgen_paths(args) if not x.exists()))
            emit("tripgen_skipped", "missing_binaries")
            do_tripgen = False
        if do_bullmq and not (BENCH / "node_modules" / "bullmq").is_dir():
            raise BenchError("tests/bench/node_modules/bullmq is missing: run scripts/bench "
                             "(it runs npm ci in tests/bench)")
        tg, bq = [], []
        for i in range(1, args.rounds + 1):
            if do_tripgen:
                log(f"part 2, round {i}/{args.rounds}: tripgen, {args.jobs} jobs")
                r("FLUSHALL")
                tg.append(round_tripgen(args, tmp, sock, r))
            if do_bullmq:
                log(f"part 3, round {i}/{args.rounds}: BullMQ, {args.jobs} jobs")
                r("FLUSHALL")
                bq.append(round_bullmq(args, tmp, sock, r))
        emit("rounds", args.rounds)
        tripgen = emit_rounds("tripgen", tg) if tg else None
        if bq:
            emit("bullmq_version", args.bullmq_version)
        bullmq = emit_rounds("bullmq", bq) if bq else None
        if 4 in parts:
            r("FLUSHALL")
            part_redis(args, tmp, sock, r)
        if tripgen and bullmq:
            emit("ratio_vs_bullmq", f"{tripgen / bullmq:.2f}")
            emit("ratio_target", "2.0")
        elif 2 in parts and 3 in parts:
            emit("ratio_vs_bullmq", "n/a")
        return 0
    except BenchError as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if r:
            r.close()
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log(f"FAILED: {e}")
        sys.exit(1)
