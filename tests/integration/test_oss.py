#!/usr/bin/python3
"""test_oss.py BUILD_DIR SOURCE_ROOT [TEST...] - the "oss" storage backend end to end.

tripgen-worker against a real redis-server, the ComfyUI stand-in and the OSS stand-in
(tests/standins/oss_standin.py, which checks every V1/V4 signature with its own
implementation of Alibaba's documented algorithms): V4 and V1 jobs store each variant at
prefix + env/yyyy/mm/dd/request_id/variant.jpg with one PUT each and the result's sha256;
the pre-signed GET URL returns the same bytes until it expires and is refused after; a wrong
secret is upload_failed, not retried, with the service's code; 503 twice then 200 succeeds
within the stage; ACL and forbid-overwrite headers are sent and a redelivery with
forbid-overwrite still succeeds; missing credentials refuse the start; the secret never
shows in logs or results.
"""
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
TRIP = "may-day-shanghai.json"
BUCKET, REGION = "trip-images", "cn-shanghai"
KEY_ID = "LTAI5tTestStandinKeyId"
SECRET = "oss-secret-Xy9zQ7wV3uT1sR5pO2nM"
PREFIX = "tripgen/"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def start_oss(e, *extra):
    """Start the OSS stand-in for this test; sets e.oss_base, e.oss_data, e.oss_control."""
    e.oss_data = os.path.join(e.dir, "oss-data")
    port_file = os.path.join(e.dir, "oss.port")
    e.oss_control = os.path.join(e.dir, "oss-control.json")
    with open(e.oss_control, "w") as f:
        json.dump({}, f)
    log = open(os.path.join(e.dir, "oss-standin.log"), "w")
    p = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "tests/standins/oss_standin.py"),
         "--port", "0", "--port-file", port_file, "--data-dir", e.oss_data,
         "--bucket", BUCKET, "--region", REGION, "--access-key-id", KEY_ID,
         "--access-key-secret", SECRET, "--control-file", e.oss_control, *extra],
        stdout=log, stderr=log)
    p.log_path = log.name
    e.procs.append(p)
    e.wait(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 10,
           "the OSS stand-in to listen")
    e.oss_base = "http://127.0.0.1:%d" % int(open(port_file).read())
    return p


def oss_set(e, **kv):
    with open(e.oss_control + ".tmp", "w") as f:
        json.dump(kv, f)
    os.replace(e.oss_control + ".tmp", e.oss_control)


def oss_stats(e):
    with urllib.request.urlopen(e.oss_base + "/_standin/stats", timeout=5) as r:
        return json.loads(r.read().decode())


def oss_worker(e, name="w1", key_id=KEY_ID, secret=SECRET, **overrides):
    """A worker whose storage stage is the oss backend on the stand-in."""
    for var, val in (("OSS_ACCESS_KEY_ID", key_id), ("OSS_ACCESS_KEY_SECRET", secret)):
        if val is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = val
    conf = {"storage_backend": "oss", "storage_endpoint": e.oss_base,
            "storage_addressing": "path", "storage_bucket": BUCKET, "storage_region": REGION,
            "storage_prefix": PREFIX, "storage_timeout_ms": 2000, "storage_retries": 2}
    conf.update(overrides)
    return e.start_worker(name=name, **conf)


def fetch(url):
    """(status, body, error code) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read(), ""
    except urllib.error.HTTPError as x:
        body = x.read()
        code = body.split(b"<Code>")[1].split(b"</Code>")[0].decode() if b"<Code>" in body else ""
        return x.code, body, code


def stored(e, full_key):
    with open(os.path.join(e.oss_data, BUCKET, full_key), "rb") as f:
        return f.read()


def no_secret(e, *procs):
    for p in procs:
        check(SECRET not in e.log(p), "the secret is not logged")
    out = e.redis_cli("XRANGE", "tripgen:{dev}:out", "-", "+")
    check(SECRET not in out, "nor published")


def check_job(e, r, scheme):
    """A succeeded job: every variant stored under prefix+key with one PUT, sha256 right,
    its URL pre-signed with @scheme and serving the same bytes."""
    check(r["status"] == "succeeded", str(r))
    imgs = r["images"]
    check(imgs, "images")
    days = {time.strftime("%Y/%m/%d", time.gmtime(t)) for t in (time.time() - 60, time.time())}
    puts = oss_stats(e)["puts"]
    for img in imgs:
        check(any(img["key"] == "dev/%s/%s/%s.jpg" % (d, r["request_id"], img["variant"])
                  for d in days), img["key"])
        full = PREFIX + img["key"]
        data = stored(e, full)
        check(hashlib.sha256(data).hexdigest() == img["sha256"], "sha256 of " + full)
        mine = [p for p in puts if p["key"] == full]
        check(len(mine) == 1 and mine[0]["status"] == 200 and mine[0]["auth"] == scheme and
              mine[0]["content_type"] == "image/jpeg" and mine[0]["content_md5"], str(mine))
        url = img["url"]
        check(url.startswith("%s/%s/%s?" % (e.oss_base, BUCKET, full)), url)
        if scheme == "v4":
            check("x-oss-signature=" in url and "x-oss-expires=" in url and
                  "x-oss-credential=" + KEY_ID in url, url)
        else:
            check("OSSAccessKeyId=" + KEY_ID in url and "Expires=" in url and
                  "Signature=" in url, url)
        check(SECRET not in url, "no secret in the URL")
    check(len(puts) == len(imgs), "one PUT per variant: %s" % puts)
    return imgs


def check_url_expires(e, imgs):
    """The pre-signed URLs serve the stored bytes, then are refused once expired."""
    for img in imgs:
        status, body, _ = fetch(img["url"])
        check(status == 200 and hashlib.sha256(body).hexdigest() == img["sha256"],
              "pre-signed GET returns the same bytes (%d)" % status)
    refused = e.wait(lambda: fetch(imgs[0]["url"])[0] == 403 and fetch(imgs[0]["url"]), 12,
                     "the pre-signed URL to expire")
    check(refused[2] == "AccessDenied" and b"Request has expired." in refused[1], str(refused))


def test_v4_job_end_to_end(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    w = oss_worker(e, storage_presign_expiry_s=4)
    rid = e.put(TRIP)[0]
    r = e.results(1)[0]
    check(r["request_id"] == rid, str(r))
    imgs = check_job(e, r, "v4")
    check_url_expires(e, imgs)
    s = oss_stats(e)
    check(s["auth"].get("v4") == len(imgs) and s["auth"].get("v4-url", 0) >= len(imgs), str(s))
    no_secret(e, w)


def test_v1_job_end_to_end(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    w = oss_worker(e, oss_signature="v1", storage_presign_expiry_s=4)
    e.put(TRIP)
    r = e.results(1)[0]
    imgs = check_job(e, r, "v1")
    check_url_expires(e, imgs)
    s = oss_stats(e)
    check(s["auth"].get("v1") == len(imgs) and s["auth"].get("v1-url", 0) >= len(imgs), str(s))
    no_secret(e, w)


def test_wrong_secret_fails_without_retry(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    wrong = "oss-wrong-secret-Aa1Bb2Cc3"
    w = oss_worker(e, secret=wrong)
    e.put(TRIP)
    r = e.results(1)[0]
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "upload_failed" and not err["retryable"],
          str(r))
    check("SignatureDoesNotMatch" in err["message"], err["message"])
    check(wrong not in err["message"] and SECRET not in err["message"], "no secret in it")
    s = oss_stats(e)
    check(s["requests"].get("PUT") == 1, "one PUT, not retried: %s" % s["requests"])
    check(s["errors"].get("SignatureDoesNotMatch") == 1, str(s["errors"]))
    d = e.depth()
    check(d["delayed"] == 0 and d["pending"] == 0, "the job is not retried: %s" % d)
    check(wrong not in e.log(w), "the secret is not logged")
    out = e.redis_cli("XRANGE", "tripgen:{dev}:out", "-", "+")
    check(wrong not in out, "nor published")
    # an unknown access key id: InvalidAccessKeyId, not retried either
    e.kill(w)
    w2 = oss_worker(e, name="w2", key_id="LTAIunknown")
    e.put(TRIP)
    r = e.results(2)[1]
    check(r["error"]["code"] == "upload_failed" and not r["error"]["retryable"] and
          "InvalidAccessKeyId" in r["error"]["message"], str(r))
    no_secret(e, w2)


def test_503_twice_then_ok_within_the_stage(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    oss_set(e, fail="http503", fail_times=2, fail_methods=["PUT"])
    w = oss_worker(e)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["attempt"] == 1, "recovered within the stage: %s" % r)
    s = oss_stats(e)
    n = len(r["images"])
    check(s["faults_fired"].get("http503") == 2, str(s["faults_fired"]))
    check(s["requests"].get("PUT") == n + 2, "two retried PUTs: %s" % s["requests"])
    check("event=upload_retry" in e.log(w), "the retries are logged")
    for img in r["images"]:
        check(hashlib.sha256(stored(e, PREFIX + img["key"])).hexdigest() == img["sha256"],
              "stored")
    no_secret(e, w)


def test_503_for_good_is_a_retryable_failure(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    oss_set(e, fail="http503", fail_methods=["PUT"])
    w = oss_worker(e, storage_retries=1, retry_max_attempts=2)
    e.put(TRIP)
    r = e.results(1)[0]
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "upload_failed" and err["retryable"] and
          "ServiceUnavailable" in err["message"] and r["attempt"] == 2, str(r))
    check("event=job_retry" in e.log(w) and "code=upload_failed" in e.log(w),
          "the first failure retried the job")
    check(oss_stats(e)["requests"].get("PUT") == 4, "a try and a retry in each of 2 attempts")
    no_secret(e, w)


def job_json(request_id, enqueued_at):
    with open(os.path.join(ROOT, "tests/data/trips", TRIP)) as f:
        trip = json.load(f)
    return json.dumps({"v": 1, "request_id": request_id, "generation": 0, "env": "dev",
                       "idempotency_key": trip["trip_id"], "priority": False, "attempt": 1,
                       "enqueued_at": enqueued_at, "deadline": None,
                       "options": {"size": "768x960", "variants": ["full", "thumb"]},
                       "trip": trip}, ensure_ascii=False)


def test_acl_forbid_overwrite_and_redelivery(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    w = oss_worker(e, oss_acl="public-read", oss_forbid_overwrite="true",
                   storage_public_base_url="https://img.example.com/")
    rid = "oss-redeliver-1"
    e.put_raw_job(job_json(rid, "2024-12-31T23:59:59.900Z"), rid)
    first = e.results(1)[0]
    check(first["status"] == "succeeded", str(first))
    keys = sorted(i["key"] for i in first["images"])
    check(keys == ["dev/2024/12/31/%s/full.jpg" % rid, "dev/2024/12/31/%s/thumb.jpg" % rid],
          str(keys))
    for img in first["images"]:
        check(img["url"] == "https://img.example.com/" + PREFIX + img["key"], img["url"])
    puts = oss_stats(e)["puts"]
    check(len(puts) == 2 and all(p["acl"] == "public-read" and p["forbid_overwrite"] == "true"
                                 for p in puts), str(puts))
    before = {k: stored(e, PREFIX + k) for k in keys}
    # the result was lost before it counted: redelivered, the objects exist, 409 = done
    e.redis_cli("DEL", "tripgen:{dev}:result:" + rid)
    e.put_raw_job(job_json(rid, "2024-12-31T23:59:59.900Z"), rid)
    second = e.results(2)[1]
    check(second["status"] == "succeeded", "a redelivery with forbid_overwrite succeeds: %s"
          % second)
    check(sorted(i["key"] for i in second["images"]) == keys, "same keys")
    s = oss_stats(e)
    check(s["errors"].get("FileAlreadyExists") == 2 and s["requests"].get("PUT") == 4, str(s))
    check(all(stored(e, PREFIX + k) == before[k] for k in keys), "objects kept")
    no_secret(e, w)


def test_missing_credentials_refuse_start(e):
    e.start_standin("--latency-ms", "20")
    start_oss(e)
    try:
        oss_worker(e, secret=None)
    except AssertionError as x:
        msg = str(x)
    else:
        raise AssertionError("the worker started without a secret")
    check("OSS_ACCESS_KEY_SECRET" in msg and "OSS_ACCESS_KEY_ID" in msg, msg)
    check(SECRET not in msg, "no value in the message")
    # from files
    path = os.path.join(e.dir, "oss-secret")
    with open(path, "w") as f:
        f.write(SECRET + "\n")
    os.environ["OSS_ACCESS_KEY_SECRET_FILE"] = path
    try:
        w = oss_worker(e, secret=None)
        e.put(TRIP)
        r = e.results(1)[0]
        check(r["status"] == "succeeded", "secret read from the file: %s" % r)
        no_secret(e, w)
    finally:
        del os.environ["OSS_ACCESS_KEY_SECRET_FILE"]


TESTS = [
    test_v4_job_end_to_end,
    test_v1_job_end_to_end,
    test_wrong_secret_fails_without_retry,
    test_503_twice_then_ok_within_the_stage,
    test_503_for_good_is_a_retryable_failure,
    test_acl_forbid_overwrite_and_redelivery,
    test_missing_credentials_refuse_start,
]


def main():
    try:
        return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])
    finally:
        for var in ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"):
            os.environ.pop(var, None)


if __name__ == "__main__":
    sys.exit(main())
