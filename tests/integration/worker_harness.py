"""worker_harness - processes for the worker's integration tests.

Starts and stops, each in a private temp directory: a redis-server on a unix
socket (AOF, fsync always), the ComfyUI and DashScope stand-ins
(tests/standins/), and tripgen-worker processes with fast timeouts; and runs
the `tripgen` CLI.
Only the Python standard library; run with /usr/bin/python3.
"""
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import traceback
import urllib.request


class Env:
    """One test's world: a temp dir, a redis-server, a stand-in, workers."""

    def __init__(self, build, root):
        self.build, self.root = build, root
        self.dir = tempfile.mkdtemp(prefix="tripgen-worker-test-")
        self.procs = []
        self.redis = None
        self.sock = os.path.join(self.dir, "redis.sock")
        self.url = "unix://" + self.sock
        self.storage = os.path.join(self.dir, "images")
        self.standin_port = None
        self.ds_port = None
        self.ds_base = None

    # -- servers -----------------------------------------------------------
    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock, "--unixsocketperm", "700",
             "--dir", self.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--loglevel", "warning"], stdout=subprocess.DEVNULL)
        self.wait(lambda: self.redis_cli("PING") == "PONG", 5, "redis-server to answer")

    def redis_cli(self, *args):
        r = subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True, text=True)
        return r.stdout.strip()

    def start_standin(self, *extra):
        out = os.path.join(self.dir, "comfyui-out")
        port_file = os.path.join(self.dir, "standin.port")
        self.control = os.path.join(self.dir, "standin-control.json")
        with open(self.control, "w") as f:
            json.dump({}, f)
        log = open(os.path.join(self.dir, "standin.log"), "w")
        p = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(self.root, "tests/standins/comfyui_standin.py"),
             "--port", "0", "--port-file", port_file, "--output-dir", out,
             "--control-file", self.control, *extra], stdout=log, stderr=log)
        self.procs.append(p)
        self.wait(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10,
                  "the ComfyUI stand-in to listen")
        self.standin_port = int(open(port_file).read().strip())
        self.standin_stats_file = os.path.join(out, ".stats.json")
        return p

    def standin_control(self, **kv):
        with open(self.control + ".tmp", "w") as f:
            json.dump(kv, f)
        os.replace(self.control + ".tmp", self.control)

    def standin_stats(self):
        try:
            with open(self.standin_stats_file) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def start_dashscope(self, *extra, api_key="sk-test-standin"):
        """Start the DashScope/OpenAI stand-in; sets ds_port and ds_base, returns the process."""
        port_file = os.path.join(self.dir, "dashscope.port")
        if os.path.exists(port_file):      # a second start must not read the old port
            os.unlink(port_file)
        self.ds_control = os.path.join(self.dir, "dashscope-control.json")
        self.ds_stats_file = os.path.join(self.dir, "dashscope-stats.json")
        with open(self.ds_control, "w") as f:
            json.dump({}, f)
        log_path = os.path.join(self.dir, "dashscope-standin.log")
        log = open(log_path, "w")
        p = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(self.root, "tests/standins/dashscope_standin.py"),
             "--port", "0", "--port-file", port_file, "--api-key", api_key,
             "--control-file", self.ds_control, "--stats-file", self.ds_stats_file, *extra],
            stdout=log, stderr=log)
        p.log_path = log_path
        self.procs.append(p)
        self.wait(lambda: (os.path.exists(port_file) and open(port_file).read().strip())
                  or p.poll() is not None, 10, "the DashScope stand-in to listen")
        if p.poll() is not None:
            raise AssertionError("DashScope stand-in exited at start:\n" + self.log(p))
        self.ds_port = int(open(port_file).read().strip())
        self.ds_base = "http://127.0.0.1:%d" % self.ds_port
        return p

    def ds_set(self, **kv):
        """Replace the DashScope stand-in's control file (atomically) with kv."""
        with open(self.ds_control + ".tmp", "w") as f:
            json.dump(kv, f)
        os.replace(self.ds_control + ".tmp", self.ds_control)

    def ds_stats(self):
        """The DashScope stand-in's statistics (GET /_standin/stats), parsed."""
        with urllib.request.urlopen(self.ds_base + "/_standin/stats", timeout=5) as r:
            return json.loads(r.read().decode())

    # -- workers -----------------------------------------------------------
    def worker_env(self, env="dev", name="w1", **overrides):
        e = dict(os.environ)
        for k in list(e):
            if k.startswith("TRIPGEN_"):
                del e[k]
        e.update({
            "TRIPGEN_ENV": env,
            "TRIPGEN_WORKER_NAME": name,
            "TRIPGEN_REDIS_URL": self.url,
            "TRIPGEN_COMFYUI_URL": "http://127.0.0.1:%d" % (self.standin_port or 9),
            "TRIPGEN_COMFYUI_WORKFLOW": os.path.join(self.root,
                                                     "deploy/workflows/trip-sdxl-api.json"),
            "TRIPGEN_COMFYUI_POLL_MS": "30",
            "TRIPGEN_COMFYUI_HTTP_TIMEOUT_MS": "2000",
            "TRIPGEN_COMFYUI_HTTP_RETRIES": "1",
            "TRIPGEN_STORAGE_ROOT": self.storage,
            "TRIPGEN_HTTP_LISTEN": "127.0.0.1:0",
            "TRIPGEN_QUEUE_VISIBILITY_TIMEOUT_MS": "1500",
            "TRIPGEN_QUEUE_HOUSEKEEPING_INTERVAL_MS": "100",
            "TRIPGEN_RETRY_BACKOFF_BASE_MS": "100",
            "TRIPGEN_RETRY_BACKOFF_MAX_MS": "400",
            "TRIPGEN_SHUTDOWN_GRACE_MS": "5000",
            "TRIPGEN_DIFFUSION_TIMEOUT_MS": "10000",
        })
        for k, v in overrides.items():
            e["TRIPGEN_" + k.upper()] = str(v)
        return e

    def start_worker(self, env="dev", name="w1", **overrides):
        log_path = os.path.join(self.dir, "worker-%s-%s-%d.log" % (env, name, len(self.procs)))
        log = open(log_path, "w")
        p = subprocess.Popen([os.path.join(self.build, "worker/tripgen-worker")],
                             env=self.worker_env(env, name, **overrides), stdout=log,
                             stderr=log, cwd=self.root)
        p.log_path = log_path
        self.procs.append(p)
        self.wait(lambda: "event=worker_started" in self.log(p) or p.poll() is not None, 10,
                  "the worker to start")
        if p.poll() is not None:
            raise AssertionError("worker exited at start:\n" + self.log(p))
        m = re.search(r"event=http_listening port=(\d+)", self.log(p))
        p.http_port = int(m.group(1)) if m else None
        return p

    @staticmethod
    def log(p):
        with open(p.log_path) as f:
            return f.read()

    def http_get(self, p, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (p.http_port, path),
                                        timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    # -- the CLI -----------------------------------------------------------
    def tripgen(self, *args, env="dev", check=True, timeout=30):
        e = dict(os.environ, TRIPGEN_REDIS_URL=self.url, TRIPGEN_ENV=env)
        r = subprocess.run([os.path.join(self.build, "proto/cli/tripgen"), *args], env=e,
                           capture_output=True, text=True, cwd=self.root, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("tripgen %s -> %d: %s" % (" ".join(args), r.returncode,
                                                          r.stderr))
        return r

    def put(self, *files, env="dev"):
        r = self.tripgen("put", *[os.path.join(self.root, "tests/data/trips", f) for f in files],
                         env=env)
        return r.stdout.split()

    def results(self, count, env="dev", timeout=30):
        r = self.tripgen("watch", "--count", str(count), "--timeout", str(timeout), env=env,
                         check=False, timeout=timeout + 10)
        frames = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        if len(frames) < count:
            raise AssertionError("expected %d results, got %d: %s" % (count, len(frames),
                                                                      r.stderr))
        return frames

    def depth(self, env="dev"):
        return json.loads(self.tripgen("depth", env=env).stdout)

    def put_raw_job(self, job_json, request_id, env="dev"):
        """XADD a job the way tripgen's put script does (index scheme 0-<n>)."""
        idx = self.redis_cli("INCR", "tripgen:{%s}:seq" % env)
        self.redis_cli("XADD", "tripgen:{%s}:in" % env, "0-" + idx, "request_id", request_id,
                       "job", job_json, "enqueued_at", "0")
        return int(idx)

    # -- helpers -----------------------------------------------------------
    @staticmethod
    def wait(cond, timeout, what):
        end = time.time() + timeout
        while time.time() < end:
            v = cond()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("timed out waiting for " + what)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.redis and self.redis.poll() is None:
            self.redis.kill()
            self.redis.wait()
        subprocess.run(["rm", "-rf", self.dir])

    def kill(self, p, sig=signal.SIGKILL):
        p.send_signal(sig)
        return p.wait(timeout=30)


def run_tests(tests, make_env, only=()):
    """Run test functions, each in a fresh environment with its own redis-server.

    Prints `ok NAME (s)` or `FAIL NAME` with the traceback and the logs of the
    processes it started, then `N passed, N failed`. Returns the exit status.
    """
    unknown = [n for n in only if n not in {t.__name__ for t in tests}]
    if unknown:
        print("unknown tests: %s" % " ".join(unknown))
        return 2
    passed = failed = 0
    for t in tests:
        if only and t.__name__ not in only:
            continue
        e = make_env()
        t0 = time.time()
        try:
            e.start_redis()
            t(e)
            passed += 1
            print("ok   %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
            traceback.print_exc()
            for p in e.procs:
                if hasattr(p, "log_path"):
                    print("---- %s" % p.log_path)
                    print(e.log(p)[-3000:])
        finally:
            e.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
