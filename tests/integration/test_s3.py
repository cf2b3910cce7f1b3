#!/usr/bin/python3
"""test_s3.py BUILD_DIR SOURCE_ROOT [TEST...] - the s3 storage backend end to end.

tripgen-worker with storage.backend=s3 against a real redis-server, the ComfyUI stand-in and
the S3 stand-in (tests/standins/s3_standin.py), which checks every request's SigV4 with
Debian's python3-botocore, requires x-amz-content-sha256 and stores the objects in a
directory this test reads: jobs upload to prefix + {env}/{yyyy}/{mm}/{dd}/{request_id}/
{variant}.jpg with the bytes the result's sha256 names; the result URL is a pre-signed GET
that serves the same bytes until it expires and is refused (403) after; path style and
virtual-hosted; a wrong secret fails at once (upload_failed, not retryable, the service's
code in the message, one PUT, the secret nowhere); 503 twice then 200 succeeds within the
stage, a hang is retried as a timeout, and a store that stays down makes a retryable job
failure; a session token is signed and checked; public_base_url gives plain URLs; without
credentials the worker refuses to start and names the variables.
"""
import calendar
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from worker_harness import Env, run_tests  # noqa: E402

BUILD, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
AKID = "AKIDTRIPGENTEST"
SECRET = "s3-standin-secret-Zq81x"
BUCKET = "tripgen-test"
REGION = "eu-central-1"
PREFIX = "trips/"
TRIP = "may-day-shanghai.json"
AWS_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# -- the S3 stand-in (started here: worker_harness.py is shared) ------------------------------
def start_s3(e, *extra, session_token=None):
    """Start the S3 stand-in; sets e.s3_port, e.s3_data, e.s3_control; returns the process."""
    port_file = os.path.join(e.dir, "s3.port")
    e.s3_data = os.path.join(e.dir, "s3-data")
    e.s3_control = os.path.join(e.dir, "s3-control.json")
    e.s3_stats_file = os.path.join(e.dir, "s3-stats.json")
    with open(e.s3_control, "w") as f:
        json.dump({}, f)
    args = ["/usr/bin/python3", os.path.join(ROOT, "tests/standins/s3_standin.py"),
            "--port", "0", "--port-file", port_file, "--data-dir", e.s3_data,
            "--region", REGION, "--access-key", AKID, "--secret-key", SECRET,
            "--bucket", BUCKET, "--control-file", e.s3_control,
            "--stats-file", e.s3_stats_file, *extra]
    if session_token:
        args += ["--session-token", session_token]
    log_path = os.path.join(e.dir, "s3-standin.log")
    p = subprocess.Popen(args, stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
    p.log_path = log_path
    e.procs.append(p)
    e.wait(lambda: (os.path.exists(port_file) and open(port_file).read().strip())
           or p.poll() is not None, 10, "the S3 stand-in to listen")
    if p.poll() is not None:
        raise AssertionError("S3 stand-in exited at start:\n" + e.log(p))
    e.s3_port = int(open(port_file).read().strip())
    return p


def s3_set(e, **kv):
    with open(e.s3_control + ".tmp", "w") as f:
        json.dump(kv, f)
    os.replace(e.s3_control + ".tmp", e.s3_control)


def s3_stats(e):
    with urllib.request.urlopen("http://127.0.0.1:%d/_standin/stats" % e.s3_port,
                                timeout=5) as r:
        return json.loads(r.read().decode())


def credentials(access=AKID, secret=SECRET, token=None):
    """Put the credentials in os.environ (the worker inherits it), clearing the others."""
    for k in AWS_VARS:
        os.environ.pop(k, None)
        os.environ.pop(k + "_FILE", None)
    if access is not None:
        os.environ["AWS_ACCESS_KEY_ID"] = access
    if secret is not None:
        os.environ["AWS_SECRET_ACCESS_KEY"] = secret
    if token is not None:
        os.environ["AWS_SESSION_TOKEN"] = token


def s3_worker(e, name="w1", **overrides):
    conf = {"storage_backend": "s3", "storage_endpoint": "http://127.0.0.1:%d" % e.s3_port,
            "storage_addressing": "path", "storage_bucket": BUCKET, "storage_region": REGION,
            "storage_prefix": PREFIX, "storage_timeout_ms": 2000, "storage_retries": 2}
    conf.update(overrides)
    return e.start_worker(name=name, **conf)


def world(e, *extra, session_token=None):
    e.start_standin("--latency-ms", "20")
    start_s3(e, *extra, session_token=session_token)


def fetch(url, host=None):
    """GET url -> (status, body); host: connect to 127.0.0.1 and send this Host header."""
    if host:
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection("127.0.0.1", u.port, timeout=5)
        c.request("GET", u.path + "?" + u.query, headers={"Host": u.netloc})
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as x:
        return x.code, x.read()


def sha(b):
    return hashlib.sha256(b).hexdigest()


def stored(e, key):
    with open(os.path.join(e.s3_data, BUCKET, PREFIX + key), "rb") as f:
        return f.read()


def no_secret_anywhere(e, w, *secrets):
    out = e.redis_cli("XRANGE", "tripgen:{dev}:out", "-", "+")
    for s in secrets:
        check(s not in e.log(w), "a secret in the worker's log")
        check(s not in out, "a secret in a published result")


def expect_signed_ok(e):
    st = s3_stats(e)
    check(st["signature_failures"] == 0 and not st["errors"], "stand-in errors: %s" % st)
    return st


# -- tests -------------------------------------------------------------------------------------
def test_jobs_upload_with_presigned_urls(e):
    world(e)
    credentials()
    w = s3_worker(e)
    before = time.time()
    ids = e.put(TRIP, "winter-harbin-short.json")
    results = {r["request_id"]: r for r in e.results(2)}
    check(set(results) == set(ids), "results answer the puts")
    days = {time.strftime("%Y/%m/%d", time.gmtime(t)) for t in (before, time.time())}
    n_images = 0
    for rid, r in results.items():
        check(r["status"] == "succeeded" and r["attempt"] == 1, str(r))
        for img in r["images"]:
            n_images += 1
            check(any(img["key"] == "dev/%s/%s/%s.jpg" % (d, rid, img["variant"]) for d in days),
                  "key " + img["key"])
            data = stored(e, img["key"])
            check(sha(data) == img["sha256"] and len(data) == img["bytes"], "stored bytes")
            check(data[:2] == b"\xff\xd8", "a JPEG")
            base = "http://127.0.0.1:%d/%s/%s%s?" % (e.s3_port, BUCKET, PREFIX, img["key"])
            check(img["url"].startswith(base), "path-style pre-signed URL: " + img["url"])
            q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(img["url"]).query))
            check(q["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and q["X-Amz-Expires"] == "86400"
                  and q["X-Amz-SignedHeaders"] == "host" and
                  q["X-Amz-Credential"].startswith(AKID + "/") and
                  q["X-Amz-Credential"].endswith("/%s/s3/aws4_request" % REGION), str(q))
            status, body = fetch(img["url"])
            check(status == 200 and sha(body) == img["sha256"], "pre-signed GET: %d" % status)
    st = expect_signed_ok(e)
    check(st["puts"] == n_images and st["presigned_gets"] == n_images, str(st))
    check(all(v == 1 for v in st["puts_by_key"].values()), "one PUT per object")
    check(sorted(st["keys"]) == sorted("%s/%s%s" % (BUCKET, PREFIX, i["key"])
                                       for r in results.values() for i in r["images"]),
          "exactly these objects: %s" % st["keys"])
    check(all(x["auth"] == "header" for x in st["request_log"] if x["method"] == "PUT"),
          "PUTs signed in the Authorization header")
    # a tampered pre-signed URL is refused by botocore's check
    url = results[ids[0]]["images"][0]["url"]
    status, body = fetch(url.replace("X-Amz-Expires=86400", "X-Amz-Expires=86401"))
    check(status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body, body[:200])
    no_secret_anywhere(e, w, SECRET)


def test_presigned_url_expires(e):
    world(e)
    credentials()
    s3_worker(e, storage_presign_expiry_s=5)   # room for a slow machine to fetch in time
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    img = r["images"][0]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(img["url"]).query))
    check(q["X-Amz-Expires"] == "5", str(q))
    signed_at = calendar.timegm(time.strptime(q["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    expiry = signed_at + 5
    status, body = fetch(img["url"])
    fetched_at = time.time()
    check(fetched_at < expiry, "fetched in time (%.2f s left)" % (expiry - fetched_at))
    check(status == 200 and sha(body) == img["sha256"], "served before expiry: %d" % status)
    # the same URL keeps serving the same bytes until it expires, and is refused after
    seen = []
    while time.time() < expiry + 1.5:
        t = time.time()
        status, body = fetch(img["url"])
        t_after = time.time()          # the stand-in looked at its clock in between
        seen.append((t, status))
        check(status in (200, 403), "status %d" % status)
        if status == 200:
            check(sha(body) == img["sha256"] and t <= expiry + 0.1, "valid at %.2f" % t)
        else:
            check(b"<Code>AccessDenied</Code>" in body and b"Request has expired" in body and
                  t_after >= expiry - 0.1, "refused at %.2f: %s" % (t_after, body))
        time.sleep(0.1)
    statuses = [x[1] for x in seen]
    check(statuses[0] == 200 and statuses[-1] == 403 and
          statuses == sorted(statuses), "served, then refused for good: %s" % seen)
    check(s3_stats(e)["errors"] == {"AccessDenied": statuses.count(403)}, "refusals counted")


def test_wrong_secret_fails_without_retry(e):
    world(e)
    wrong = "wrong-secret-Kx93ppQ"
    credentials(secret=wrong)
    w = s3_worker(e, retry_max_attempts=3)
    rid = e.put(TRIP)[0]
    r = e.results(1)[0]
    err = r["error"]
    check(r["request_id"] == rid and r["status"] == "failed", str(r))
    check(err["code"] == "upload_failed" and not err["retryable"] and err["stage"] == "upload",
          str(err))
    check("SignatureDoesNotMatch" in err["message"] and "403" in err["message"], err["message"])
    check(r["attempt"] == 1, "not retried as a job")
    st = s3_stats(e)
    check(st["requests"] == 1 and st["signature_failures"] == 1, "one PUT, no retries: %s" % st)
    check(list(st["puts_by_key"].values()) == [1], str(st["puts_by_key"]))
    check(st["keys"] == [], "nothing stored")
    d = e.depth()
    check(d["delayed"] == 0 and d["pending"] == 0, "not retried later: %s" % d)
    no_secret_anywhere(e, w, wrong, SECRET)
    # an unknown access key: InvalidAccessKeyId, not retried either
    credentials(access="AKIDNOSUCHKEY")
    e.kill(w)
    w2 = s3_worker(e, name="w2")
    e.put(TRIP)
    r = e.results(2)[1]
    check(r["error"]["code"] == "upload_failed" and not r["error"]["retryable"] and
          "InvalidAccessKeyId" in r["error"]["message"], str(r))
    check(s3_stats(e)["requests"] == 2, "one more PUT")
    no_secret_anywhere(e, w2, SECRET)


def test_503_twice_then_200_within_the_stage(e):
    world(e)
    credentials()
    s3_set(e, fail="http503", fail_times=2, fail_methods=["PUT"])
    w = s3_worker(e)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded" and r["attempt"] == 1, "recovered in the stage: %s" % r)
    st = s3_stats(e)
    first = "%s/%s%s" % (BUCKET, PREFIX, r["images"][0]["key"])
    check(st["puts_by_key"][first] == 3, "3 PUTs for the first object: %s" % st["puts_by_key"])
    check(st["faults_fired"] == {"http503": 2}, str(st["faults_fired"]))
    check([x["status"] for x in st["request_log"] if x["method"] == "PUT"][:3] == [503, 503, 200],
          str(st["request_log"]))
    check(sha(stored(e, r["images"][0]["key"])) == r["images"][0]["sha256"], "stored")
    log = e.log(w)
    check(log.count("event=upload_retry") == 2 and "ServiceUnavailable" in log, "retries logged")
    # a hang is a timeout, retried the same way
    s3_set(e, fail="hang", fail_times=1, fail_methods=["PUT"])
    e.put(TRIP)
    r = e.results(2)[1]
    check(r["status"] == "succeeded" and r["attempt"] == 1, "hang retried in the stage: %s" % r)
    check(s3_stats(e)["faults_fired"].get("hang") == 1, "the hang fired")


def test_store_down_is_a_retryable_job_failure(e):
    world(e)
    credentials()
    s3_set(e, fail="slowdown", fail_methods=["PUT"])
    s3_worker(e, storage_retries=1, retry_max_attempts=2)
    e.put(TRIP)
    r = e.results(1)[0]
    err = r["error"]
    check(r["status"] == "failed" and err["code"] == "upload_failed" and err["retryable"],
          str(r))
    check("SlowDown" in err["message"] and r["attempt"] == 2, str(r))
    check(s3_stats(e)["faults_fired"] == {"slowdown": 4}, "2 attempts x (1 + 1 retry)")


def test_session_token_is_signed_and_checked(e):
    token = "FwoGZXIvYXdzEXAMPLE//token+with/odd=chars=="
    world(e, session_token=token)
    credentials(token=token)
    w = s3_worker(e)
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    url = r["images"][0]["url"]
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    check(q.get("X-Amz-Security-Token") == token, "token in the pre-signed URL")
    status, body = fetch(url)
    check(status == 200 and sha(body) == r["images"][0]["sha256"], "pre-signed GET with token")
    st = expect_signed_ok(e)
    check(all(x["token"] for x in st["request_log"]), "every request carried the token")
    # the token is signed: a URL whose token was swapped is refused
    bad = url.replace(urllib.parse.quote(token, safe=""), "other")
    check(bad != url and fetch(bad)[0] == 400, "a swapped token is refused")
    no_secret_anywhere(e, w, SECRET, token)
    # a wrong token: InvalidToken, not retried
    credentials(token="not-the-token")
    e.kill(w)
    s3_worker(e, name="w2")
    e.put(TRIP)
    r = e.results(2)[1]
    check(r["error"]["code"] == "upload_failed" and not r["error"]["retryable"] and
          "InvalidToken" in r["error"]["message"], str(r))


def test_virtual_hosted_addressing(e):
    world(e)
    credentials()
    s3_worker(e, storage_endpoint="http://localhost:%d" % e.s3_port,
              storage_addressing="virtual")
    e.put(TRIP)
    r = e.results(1)[0]
    check(r["status"] == "succeeded", str(r))
    img = r["images"][0]
    check(img["url"].startswith("http://%s.localhost:%d/%s%s?" % (BUCKET, e.s3_port, PREFIX,
                                                                   img["key"])), img["url"])
    check(sha(stored(e, img["key"])) == img["sha256"], "stored under the bucket")
    status, body = fetch(img["url"], host=True)
    check(status == 200 and sha(body) == img["sha256"], "virtual-hosted pre-signed GET")
    expect_signed_ok(e)


def test_public_base_url_gives_plain_urls(e):
    world(e)
    credentials()
    s3_worker(e, storage_public_base_url="https://cdn.example.com/media/")
    e.put(TRIP)
    r = e.results(1)[0]
    img = r["images"][0]
    check(r["status"] == "succeeded" and
          img["url"] == "https://cdn.example.com/media/" + PREFIX + img["key"], img["url"])
    check(sha(stored(e, img["key"])) == img["sha256"], "stored")
    check(s3_stats(e)["puts"] == len(r["images"]), "uploaded")


def test_missing_credentials_refuse_to_start(e):
    world(e)
    credentials(access=None, secret=None)
    try:
        s3_worker(e)
    except AssertionError as x:
        msg = str(x)
    else:
        raise AssertionError("the worker started without credentials")
    check("AWS_ACCESS_KEY_ID" in msg and "AWS_SECRET_ACCESS_KEY" in msg, msg)
    credentials(secret=None)
    try:
        s3_worker(e, name="w2")
    except AssertionError as x:
        msg = str(x)
    else:
        raise AssertionError("the worker started without a secret")
    check("AWS_SECRET_ACCESS_KEY" in msg and AKID not in msg, msg)
    # from files (NAME_FILE)
    credentials(access=None, secret=None)
    try:
        for var, value in (("AWS_ACCESS_KEY_ID", AKID), ("AWS_SECRET_ACCESS_KEY", SECRET)):
            path = os.path.join(e.dir, var.lower())
            with open(path, "w") as f:
                f.write(value + "\n")
            os.environ[var + "_FILE"] = path
        w = s3_worker(e, name="w3")
        e.put(TRIP)
        r = e.results(1)[0]
        check(r["status"] == "succeeded", "credentials read from files: %s" % r)
        no_secret_anywhere(e, w, SECRET)
    finally:
        credentials(access=None, secret=None)


TESTS = [
    test_jobs_upload_with_presigned_urls,
    test_presigned_url_expires,
    test_wrong_secret_fails_without_retry,
    test_503_twice_then_200_within_the_stage,
    test_store_down_is_a_retryable_job_failure,
    test_session_token_is_signed_and_checked,
    test_virtual_hosted_addressing,
    test_public_base_url_gives_plain_urls,
    test_missing_credentials_refuse_to_start,
]


def main():
    try:
        return run_tests(TESTS, lambda: Env(BUILD, ROOT), sys.argv[3:])
    finally:
        credentials(access=None, secret=None)


if __name__ == "__main__":
    sys.exit(main())
