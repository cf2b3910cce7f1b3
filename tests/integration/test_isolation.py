#!/usr/bin/python3
"""test_isolation.py BUILD_DIR SOURCE_ROOT - environments never share queues or storage.

(a) `tripgen-worker --check-config FILE FILE...`: deploy/config/*.json pass together;
    pairs that would share a queue (same env on the same Redis, however the URL is
    written) or storage (same file root or bucket with one env prefix inside the
    other's, storage.prefix "prod/" in a test config, a file root inside another env's
    directory, through a symlink) are refused, exit 2, naming both files and what they
    share, with no secret in the message; neighbours that merely look alike pass.
(b) a `test` and a `prod` worker sharing ONE storage (one file root; then one S3
    stand-in bucket when tests/standins/s3_standin.py exists): 100 jobs each, every
    object lies under its env's prefix, no key appears under both, and every stored
    object is the one its result describes (nothing overwritten by the other env).
(c) jobs with hostile request_ids, variants, envs, dates and trip fields, put raw on
    the test env's stream, never write outside test/: refused at the edge (job
    validation) or by the storage guard, while a control job beside them succeeds.

Real redis-server and the ComfyUI stand-in (tests/standins/), via worker_harness.
Only the Python standard library; run with /usr/bin/python3.
"""
import hashlib
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
WORKER = os.path.join(BUILD, "worker/tripgen-worker")
S3_STANDIN = os.path.join(ROOT, "tests/standins/s3_standin.py")
JOBS = 100


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- (a) --check-config with several files ---------------------------------

def clean_env(**extra):
    """The process environment without TRIPGEN_* (they would apply to every file)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("TRIPGEN_")}
    e.update({"DASHSCOPE_API_KEY": "sk-isolation-check", "AWS_ACCESS_KEY_ID": "AKIDISOLATION",
              "AWS_SECRET_ACCESS_KEY": "isolation-secret", "OSS_ACCESS_KEY_ID": "LTAIisolation",
              "OSS_ACCESS_KEY_SECRET": "isolation-oss-secret"})
    e.update(extra)
    return e


def check_config(files, cwd=ROOT, **extra):
    return subprocess.run([WORKER, "--check-config", *files], env=clean_env(**extra),
                          capture_output=True, text=True, cwd=cwd, timeout=30)


def write_conf(e, name, base, **keys):
    """A config like deploy/config/BASE.json with dotted keys replaced; returns its path."""
    with open(os.path.join(ROOT, "deploy/config", base + ".json")) as f:
        conf = json.load(f)
    for dotted, v in keys.items():
        node = conf
        parts = dotted.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    for rel in (("comfyui", "workflow"), ("prompt", "system_prompt_file")):
        if rel[1] in conf.get(rel[0], {}):
            conf[rel[0]][rel[1]] = os.path.join(ROOT, conf[rel[0]][rel[1]])
    # the asset catalogue's default is relative to the source tree, like the workflow's
    conf.setdefault("postproc", {}).setdefault("assets_dir", "deploy/assets")
    conf["postproc"]["assets_dir"] = os.path.join(ROOT, conf["postproc"]["assets_dir"])
    path = os.path.join(e.dir, name)
    with open(path, "w") as f:
        json.dump(conf, f)
    return path


def refused(files, words, cwd=ROOT, **extra):
    r = check_config(files, cwd=cwd, **extra)
    msg = "check-config %s -> %d\n%s" % (" ".join(os.path.basename(f) for f in files),
                                         r.returncode, r.stderr)
    check(r.returncode == 2, msg)
    lines = [ln for ln in r.stderr.splitlines() if " overlap: " in ln]
    check(len(lines) == 1, "one overlap named: " + msg)
    check(files[0] in lines[0] and files[1] in lines[0], "both files named: " + msg)
    for w in words:
        check(w in lines[0], "%r in the reason: %s" % (w, msg))
    check(r.stdout == "", "no place lines when refused: " + r.stdout)
    return lines[0]


def passes(files, cwd=ROOT, **extra):
    r = check_config(files, cwd=cwd, **extra)
    check(r.returncode == 0, "check-config %s -> %d\n%s" % (" ".join(files), r.returncode,
                                                            r.stderr))
    check("configs ok, no shared queues or storage" in r.stderr, r.stderr)
    places = {}
    for line in r.stdout.splitlines():
        m = re.match(r'(\S+) env=(\S+) queues="([^"]*)" storage="([^"]*)"$', line)
        check(m, "place line: " + line)
        places[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    check(sorted(places) == sorted(files), "one place line per file: " + r.stdout)
    return places


def test_check_config_deploy_configs_pass_together(e):
    deploy = sorted(os.path.join("deploy/config", f)
                    for f in os.listdir(os.path.join(ROOT, "deploy/config")) if f.endswith(".json"))
    check(len(deploy) >= 3, "deploy configs: %s" % deploy)
    # their roots (/var/lib/... for test and prod) need not exist here: one shared root
    # stands in for them; env prefixes keep them apart even then
    store = os.path.join(e.dir, "shared-root")
    places = passes(deploy, TRIPGEN_STORAGE_ROOT=store)
    prefixes = {p[0]: p[2] for p in places.values()}
    check(prefixes.get("test") == os.path.realpath(store) + "/test/"
          and prefixes.get("prod") == os.path.realpath(store) + "/prod/", str(places))
    # as written: every root rebased under a temp dir (relative roots stay relative)
    os.makedirs(os.path.join(e.dir, "deploy"))
    rebased = []
    for f in deploy:
        with open(os.path.join(ROOT, f)) as fh:
            root = json.load(fh)["storage"]["root"]
        name = "deploy/" + os.path.basename(f)
        write_conf(e, name, os.path.basename(f)[:-5],
                   storage__root=root if not root.startswith("/") else e.dir + root)
        rebased.append(name)
    places = passes(rebased, cwd=e.dir)
    check(len({p[2] for p in places.values()}) == len(rebased), "distinct prefixes: %s" % places)
    # the single-file forms are unchanged: --check-config FILE is --check-config --config FILE
    r = check_config([rebased[0]], cwd=e.dir)
    check(r.returncode == 0 and json.loads(r.stdout)["env"] == "dev", r.stderr)
    r = subprocess.run([WORKER, "--check-config", "--config", rebased[0]], env=clean_env(),
                       capture_output=True, text=True, cwd=e.dir)
    check(r.returncode == 0 and json.loads(r.stdout)["env"] == "dev", r.stderr)
    r = subprocess.run([WORKER, "--check-config", "--config", rebased[0], rebased[1]],
                       env=clean_env(), capture_output=True, text=True, cwd=e.dir)
    check(r.returncode == 2 and "usage" in r.stderr, "--config with files: " + r.stderr)
    # an invalid file among several: named, exit 2, the others still checked
    bad = write_conf(e, "bad.json", "test", queue__max_delivery=3)
    r = check_config([rebased[0], bad])
    check(r.returncode == 2 and bad in r.stderr and "queue.max_delivery" in r.stderr, r.stderr)


def test_check_config_same_env_same_redis_refused(e):
    root = os.path.join(e.dir, "r")
    a = write_conf(e, "test-a.json", "test", storage__root=root + "/a")
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b")
    refused([a, b], ['env "test"', "tripgen:{test}:", "127.0.0.1:6379/0"])
    # another consumer group does not separate the streams
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b",
                   queue__group="other-workers")
    refused([a, b], ['env "test"'])
    # the same Redis written otherwise: localhost, default port and db
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b",
                   redis__url="redis://LocalHost")
    refused([a, b], ['env "test"'])
    # the same socket through a symlinked directory
    os.makedirs(os.path.join(e.dir, "run"))
    os.symlink(os.path.join(e.dir, "run"), os.path.join(e.dir, "run-link"))
    a = write_conf(e, "test-a.json", "test", storage__root=root + "/a",
                   redis__url="unix://%s/run/r.sock" % e.dir)
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b",
                   redis__url="unix://%s/run-link/r.sock?db=0" % e.dir)
    refused([a, b], ['env "test"', "/run/r.sock"])
    # a password in TRIPGEN_REDIS_URL (it applies to both) is never shown
    a = write_conf(e, "test-a.json", "test", storage__root=root + "/a")
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b")
    line = refused([a, b], ['env "test"'], TRIPGEN_REDIS_URL="redis://:S3cretPw@127.0.0.1:6379/2")
    check("S3cretPw" not in line, line)
    # neighbours: another db, another host, another env: each passes
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b",
                   redis__url="redis://127.0.0.1:6379/1")
    passes([a, b])
    b = write_conf(e, "test-b.json", "test", storage__root=root + "/b",
                   redis__url="redis://redis-test-2:6379/0")
    passes([a, b])
    b = write_conf(e, "prod-b.json", "prod", storage__root=root + "/b",
                   redis__url="redis://127.0.0.1:6379/0")
    passes([a, b])


def test_check_config_storage_overlaps_refused(e):
    r = os.path.join(e.dir, "images")
    # the same env on two Redis servers writing one root: the very same keys
    a = write_conf(e, "test-1.json", "test", storage__root=r)
    b = write_conf(e, "test-2.json", "test", storage__root=r + "/.",
                   redis__url="redis://redis-test-2:6379/0")
    refused([a, b], ["both store under %s/test/" % os.path.realpath(r)])
    # a file root inside another env's directory
    t = write_conf(e, "test.json", "test", storage__root=r)
    p = write_conf(e, "prod.json", "prod", storage__root=r + "/test/sub")
    refused([t, p], ["%s/test/sub/prod/" % os.path.realpath(r), "inside %s/test/" %
                     os.path.realpath(r)])
    # ... also when written relative, or through a symlink
    os.makedirs(r, exist_ok=True)
    os.symlink(r, os.path.join(e.dir, "images-link"))
    p = write_conf(e, "prod.json", "prod", storage__root="images-link/test/../test/x")
    refused([t, p], ["inside %s/test/" % os.path.realpath(r)], cwd=e.dir)
    # neighbours that only look alike: a sibling "testdata" root, one root, another root
    p = write_conf(e, "prod.json", "prod", storage__root=r + "/testdata")
    passes([t, p])
    p = write_conf(e, "prod.json", "prod", storage__root=r)
    passes([t, p])
    # object stores: storage.prefix "prod/" in a test config, same endpoint and bucket
    s3 = dict(storage__backend="s3", storage__bucket="trips", storage__addressing="path",
              storage__endpoint="http://127.0.0.1:9000")
    t = write_conf(e, "test-s3.json", "test", storage__prefix="prod/", **s3)
    p = write_conf(e, "prod-s3.json", "prod", **s3)
    refused([t, p], ["prod/test/", "inside prod/", "bucket trips"])
    # the endpoint written otherwise: upper case, a trailing /, localhost
    p = write_conf(e, "prod-s3.json", "prod",
                   **dict(s3, storage__endpoint="http://LocalHost:9000/"))
    refused([t, p], ["inside prod/", "object store 127.0.0.1:9000 bucket trips"])
    t2 = write_conf(e, "test-s3-2.json", "test", storage__prefix="prod/",
                    **dict(s3, storage__endpoint="http://minio.example:80"))
    p = write_conf(e, "prod-s3.json", "prod", **dict(s3, storage__endpoint="http://MINIO.example/"))
    refused([t2, p], ["inside prod/", "object store minio.example bucket trips"])
    # credentials in an endpoint are refused, and not echoed
    p = write_conf(e, "prod-s3.json", "prod",
                   **dict(s3, storage__endpoint="http://minio:Pw0rdInUrl@127.0.0.1:9000"))
    res = check_config([t, p])
    check(res.returncode == 2 and "Pw0rdInUrl" not in res.stderr + res.stdout, res.stderr)
    # another bucket, another endpoint, or prefixes side by side: pass
    p = write_conf(e, "prod-s3.json", "prod", **dict(s3, storage__bucket="trips-prod"))
    passes([t, p])
    p = write_conf(e, "prod-s3.json", "prod", **dict(s3, storage__endpoint="http://127.0.0.1:9001"))
    passes([t, p])
    t = write_conf(e, "test-s3.json", "test", storage__prefix="tripgen/", **s3)
    p = write_conf(e, "prod-s3.json", "prod", storage__prefix="tripgen/", **s3)
    passes([t, p])
    # a file root and a bucket never meet
    f = write_conf(e, "prod-file.json", "prod", storage__root=r)
    passes([t, f])
    # OSS bucket names are global: a region and an endpoint of another region still meet
    oss = dict(storage__backend="oss", storage__bucket="trips-oss")
    t = write_conf(e, "test-oss.json", "test", storage__region="cn-hangzhou",
                   storage__prefix="prod/", **oss)
    p = write_conf(e, "prod-oss.json", "prod", storage__region="cn-shanghai",
                   storage__endpoint="https://oss-cn-shanghai-internal.aliyuncs.com", **oss)
    refused([t, p], ["inside prod/", "Alibaba OSS", "bucket trips-oss"])
    # three files: every overlapping pair is named, the clean ones are not
    a = write_conf(e, "a.json", "test", storage__root=r)
    b = write_conf(e, "b.json", "prod", storage__root=r + "/test/deep")
    c = write_conf(e, "c.json", "dev", storage__root=os.path.join(e.dir, "elsewhere"))
    res = check_config([a, b, c])
    lines = [ln for ln in res.stderr.splitlines() if " overlap: " in ln]
    check(res.returncode == 2 and len(lines) == 1 and a in lines[0] and b in lines[0]
          and c not in lines[0], res.stderr)


# ---- (b) test and prod workers sharing one storage --------------------------

def make_trips(e, env, n):
    """n trip files with distinct trip_ids; returns their paths."""
    with open(os.path.join(ROOT, "tests/data/trips/winter-harbin-short.json")) as f:
        trip = json.load(f)
    d = os.path.join(e.dir, "trips-" + env)
    os.makedirs(d)
    paths = []
    for i in range(n):
        trip["trip_id"] = "iso-%s-%03d" % (env, i)
        p = os.path.join(d, "%03d.json" % i)
        with open(p, "w") as f:
            json.dump(trip, f, ensure_ascii=False)
        paths.append(p)
    return paths


def run_two_envs(e, list_objects, **overrides):
    """100 jobs each through a test and a prod worker on one storage; check the keys.

    list_objects() -> {key: bytes} of everything in the shared storage.
    """
    e.start_standin("--latency-ms", "5")
    workers = {env: e.start_worker(env=env, name=env + "-w", diffusion_slots=4,
                                   comfyui_slots=4, postproc_concurrency=2, **overrides)
               for env in ("test", "prod")}
    ids = {env: e.put(*make_trips(e, env, JOBS), env=env) for env in ("test", "prod")}
    results = {env: {r["request_id"]: r for r in e.results(JOBS, env=env, timeout=120)}
               for env in ("test", "prod")}
    objects = list_objects()
    stripped = {}
    for env in ("test", "prod"):
        rs = results[env]
        check(set(rs) == set(ids[env]), "%s: results answer the puts" % env)
        bad = [r for r in rs.values() if r["status"] != "succeeded"]
        check(not bad, "%s: all succeeded: %s" % (env, bad[:2]))
        other = "prod" if env == "test" else "test"
        check(ids[env] and not (set(ids[env]) & set(ids[other])), "distinct request_ids")
        described = {}
        for r in rs.values():
            check(r["env"] == env, "result env")
            for img in r["images"]:
                check(img["key"].startswith(env + "/") and r["request_id"] in img["key"],
                      "key %s" % img["key"])
                described[img["key"]] = img["sha256"]
        mine = {k: v for k, v in objects.items() if k.startswith(env + "/")}
        check(set(mine) == set(described),
              "%s: stored keys == result keys (%d vs %d)" % (env, len(mine), len(described)))
        for k, sha in described.items():
            check(hashlib.sha256(mine[k]).hexdigest() == sha, "%s: the object its result "
                  "describes, not overwritten" % k)
        stripped[env] = {k.split("/", 1)[1] for k in mine}
        check(len(stripped[env]) == len(mine) and len(mine) >= JOBS, "%s: %d objects" %
              (env, len(mine)))
    stray = [k for k in objects if not (k.startswith("test/") or k.startswith("prod/"))]
    check(not stray, "objects outside the env prefixes: %s" % stray[:5])
    both = stripped["test"] & stripped["prod"]
    check(not both, "keys under both envs: %s" % sorted(both)[:5])
    for env, w in workers.items():
        other = "prod" if env == "test" else "test"
        log = e.log(w)
        check(not any(rid in log for rid in ids[other]), "%s worker saw no %s job" % (env, other))
    return results


def test_file_backend_test_and_prod_share_one_root(e):
    def list_objects():
        out = {}
        for d, _, files in os.walk(e.storage):
            for f in files:
                p = os.path.join(d, f)
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, e.storage)] = fh.read()
        return out
    run_two_envs(e, list_objects)
    check(sorted(os.listdir(e.storage)) == ["prod", "test"], "one directory per env")


def start_s3_standin(e, bucket):
    """One S3 stand-in (tests/standins/s3_standin.py); returns (port, data_dir)."""
    port_file = os.path.join(e.dir, "s3.port")
    data_dir = os.path.join(e.dir, "s3-data")
    log_path = os.path.join(e.dir, "s3-standin.log")
    log = open(log_path, "w")
    p = subprocess.Popen(["/usr/bin/python3", S3_STANDIN, "--port", "0", "--port-file", port_file,
                          "--data-dir", data_dir, "--region", "us-east-1", "--access-key",
                          S3_KEY, "--secret-key", S3_SECRET, "--bucket", bucket],
                         stdout=log, stderr=log)
    p.log_path = log_path
    e.procs.append(p)
    e.wait(lambda: (os.path.exists(port_file) and open(port_file).read().strip())
           or p.poll() is not None, 10, "the S3 stand-in to listen")
    if p.poll() is not None:
        raise AssertionError("S3 stand-in exited at start:\n" + e.log(p))
    return int(open(port_file).read().strip()), data_dir


S3_KEY, S3_SECRET = "AKIDISOLATIONTEST", "isolation-test-secret"


def test_s3_standin_test_and_prod_share_one_bucket(e):
    if not os.path.exists(S3_STANDIN):
        print("     (tests/standins/s3_standin.py not present: the S3 part skipped)")
        return
    bucket = "tripgen-shared"
    port, data_dir = start_s3_standin(e, bucket)

    def list_objects():
        out, top = {}, os.path.join(data_dir, bucket)
        for d, _, files in os.walk(top):
            for f in files:
                check(".tmp-" not in f, "a half-written object: " + f)
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), top)] = fh.read()
        return out
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    os.environ.update(AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
    try:   # worker_env() copies os.environ: both workers get the keys
        run_two_envs(e, list_objects, storage_backend="s3", storage_bucket=bucket,
                     storage_endpoint="http://127.0.0.1:%d" % port, storage_addressing="path",
                     storage_region="us-east-1")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    check(sorted(os.listdir(data_dir)) == [bucket], "one bucket: %s" % os.listdir(data_dir))
    check(sorted(os.listdir(os.path.join(data_dir, bucket))) == ["prod", "test"],
          "one prefix per env in the bucket")
    check(not os.path.exists(e.storage) or not os.listdir(e.storage), "nothing in the file root")


# ---- (c) hostile jobs --------------------------------------------------------

def job_json(request_id, env="test", enqueued_at="2026-03-01T10:00:00Z", trip=None, **extra):
    if trip is None:
        with open(os.path.join(ROOT, "tests/data/trips/may-day-shanghai.json")) as f:
            trip = json.load(f)
    job = {"v": 1, "request_id": request_id, "generation": 0, "env": env,
           "idempotency_key": trip.get("trip_id", "x"), "priority": False, "attempt": 1,
           "enqueued_at": enqueued_at, "deadline": None,
           "options": {"size": "768x960", "variants": ["full", "thumb"]}, "trip": trip}
    job.update(extra)
    return json.dumps(job, ensure_ascii=False)


HOSTILE_IDS = ["../prod/x", "..", ".", "%2e%2e", "..%2f..%2fprod", "a/b", "prod/..",
               "prod/../../etc", "r\\..\\prod", "\u2215prod\u2215x", "\uff0e\uff0e",
               "r\u0000/../prod", "r\n", "r x", "x" * 300, "", "t\u0435st-r", "/abs"]


def test_hostile_jobs_never_write_outside_their_env(e):
    e.start_standin("--latency-ms", "5")
    w = e.start_worker(env="test", name="t1")
    with open(os.path.join(ROOT, "tests/data/trips/may-day-shanghai.json")) as f:
        base = json.load(f)
    n = 0
    # hostile request_ids (the stream field carries a NUL-free copy)
    for rid in HOSTILE_IDS:
        e.put_raw_job(job_json(rid), rid.replace("\u0000", "") or "x", env="test")
        n += 1
    # hostile variants, envs, dates
    e.put_raw_job(job_json("hv-1", options={"size": "768x960",
                                            "variants": ["../../prod/x", "full"]}), "hv-1",
                  env="test")
    e.put_raw_job(job_json("hv-2", options={"size": "768x960", "variants": ["full/.."]}),
                  "hv-2", env="test")
    e.put_raw_job(job_json("he-1", env="prod"), "he-1", env="test")
    e.put_raw_job(job_json("he-2", env="test/../prod"), "he-2", env="test")
    e.put_raw_job(job_json("he-3", env="../prod"), "he-3", env="test")
    e.put_raw_job(job_json("hd-1", enqueued_at="1969-12-31T23:59:59Z"), "hd-1", env="test")
    e.put_raw_job(job_json("hd-2", enqueued_at="../../prod"), "hd-2", env="test")
    n += 7
    # hostile trip fields: path-like ids and places, lookalikes, controls, huge text
    trips = []
    for k, v in [("trip_id", "../../prod/2026/03/01/x"), ("trip_id", "prod/.."),
                 ("user_id", "../prod"), ("tag", "../../prod/\u2215"),
                 ("text", "../../../prod/" * 20 + "\u202etxt.exe"),
                 ("trip_id", "t\u0000/../prod"), ("text", "x" * 100000)]:
        t = dict(base)
        t[k] = v
        trips.append(t)
    t = json.loads(json.dumps(base))
    t["origin"]["city"] = "../../prod"
    t["destination"]["address"] = "prod/../../../etc/passwd"
    t["vehicle"]["model"] = "..\\..\\prod"
    trips.append(t)
    for i, t in enumerate(trips):
        e.put_raw_job(job_json("ht-%d" % i, trip=t), "ht-%d" % i, env="test")
        n += 1
    # a control job: proves the worker ran and wrote beside them
    e.put_raw_job(job_json("control-1"), "control-1", env="test")
    n += 1
    def frames():
        out = e.redis_cli("XRANGE", "tripgen:{test}:out", "-", "+").splitlines()
        return [json.loads(ln) for ln in out if ln.startswith("{")]
    e.wait(lambda: len(frames()) >= n, 60, "a result for each of the %d jobs" % n)
    d = e.depth(env="test")
    check(d["waiting"] == 0 and d["pending"] == 0 and d["dead"] == 0, "queue empty: %s" % d)
    results = frames()
    check(len(results) == n, "one result per job: %d of %d" % (len(results), n))
    by_id = {r["request_id"]: r for r in results}
    # refused at the edge: hostile ids, variants, envs and dates never ran
    for r in results:
        rid = r["request_id"]
        if rid.startswith(("ht-", "control-")):
            continue
        check(r["status"] == "failed" and r["error"]["code"] in ("invalid_input", "env_mismatch")
              and not r.get("images"), "refused: %s" % r)
    check(by_id["he-1"]["error"]["code"] == "env_mismatch", str(by_id["he-1"]))
    # hostile trip fields: refused, or painted and stored under test/{date}/{request_id}/
    stored_ok = 0
    for i in range(len(trips)):
        r = by_id["ht-%d" % i]
        if r["status"] != "succeeded":
            check(r["error"]["code"] == "invalid_input", str(r))
            continue
        stored_ok += 1
        for img in r["images"]:
            check(img["key"] in ("test/2026/03/01/ht-%d/full.jpg" % i,
                                 "test/2026/03/01/ht-%d/thumb.jpg" % i), "key " + img["key"])
    check(stored_ok >= 2, "some hostile trip texts are legal and were painted: %d" % stored_ok)
    control = by_id["control-1"]
    check(control["status"] == "succeeded", str(control))
    check(all(i["key"].startswith("test/2026/03/01/control-1/") for i in control["images"]),
          str(control["images"]))
    # nothing anywhere in this test's directory outside storage/test/, and no prod/
    stored = []
    for d, dirs, files in os.walk(e.dir):
        check("prod" not in dirs, "a prod directory under %s" % d)
        for f in files:
            p = os.path.join(d, f)
            if p.startswith(e.storage + os.sep):
                stored.append(os.path.relpath(p, e.storage))
            elif f.endswith((".jpg", ".png", ".webp")) and "comfyui-out" not in p:
                raise AssertionError("an image outside the storage root: " + p)
    check(stored and all(s.startswith("test/") for s in stored), "stored: %s" % stored[:5])
    check(os.listdir(e.storage) == ["test"], "only test/: %s" % os.listdir(e.storage))
    check(not os.path.exists(os.path.join(os.path.dirname(e.storage), "prod")), "no sibling prod")
    check(w.poll() is None, "the worker survived them all")


TESTS = [v for k, v in list(globals().items()) if k.startswith("test_")]


def main():
    return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
