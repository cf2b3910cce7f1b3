#!/usr/bin/python3
"""Stand-in S3 server: TEST EQUIPMENT for tripgen, never shipped in the product.

A stdlib HTTP/1.1 server that stores objects (PutObject, GetObject) and checks every request's
AWS Signature Version 4 with an implementation tripgen did not write: Debian's python3-botocore
(botocore.auth.S3SigV4Auth for the Authorization header, botocore.auth.S3SigV4QueryAuth for
pre-signed URLs). Run it with Debian's /usr/bin/python3:

    s3_standin.py --port 0 --port-file PATH --data-dir DIR [--region us-east-1]
                  [--access-key AKID] [--secret-key SECRET] [--session-token TOKEN]
                  [--bucket NAME]... [--domain localhost]
                  [--control-file PATH] [--stats-file PATH]

Addressing: path style (/{bucket}/{key}) and virtual-hosted ({bucket}.{domain}[:port]/{key},
from the Host header). Objects are files under DIR/{bucket}/{key}, so a test can list them.

How a request is judged, as S3 does (the error bodies are S3's XML: Code, Message, RequestId,
HostId and, for signature errors, the StringToSign and CanonicalRequest the server computed):
  * no Authorization header and no X-Amz-Algorithm query -> 403 AccessDenied;
  * a malformed Authorization / Credential, a wrong region or service ->
    400 AuthorizationHeaderMalformed (AuthorizationQueryParametersError for query auth);
  * an unknown access key -> 403 InvalidAccessKeyId;
  * a missing, wrong or unexpected session token -> 400 InvalidToken;
  * header auth: x-amz-date missing or more than 15 minutes off -> 403 RequestTimeTooSkewed
    (AccessDenied when missing); host or x-amz-date unsigned, or any x-amz-* header present but
    unsigned -> 403 AccessDenied; x-amz-content-sha256 missing -> 400 InvalidRequest, not the
    body's SHA-256 (and not UNSIGNED-PAYLOAD) -> 400 XAmzContentSHA256Mismatch;
  * pre-signed: X-Amz-Date + X-Amz-Expires in the past -> 403 AccessDenied "Request has
    expired"; X-Amz-Expires over 604800 -> 400 AuthorizationQueryParametersError;
  * a signature that botocore computes differently -> 403 SignatureDoesNotMatch;
  * then NoSuchBucket (404) for a bucket not given with --bucket, NoSuchKey (404) on GET.

Fault injection: the control file is JSON, re-read on every request, e.g.
{"fail": "http503", "fail_times": 2}. Modes: http503 (503 ServiceUnavailable), slowdown
(503 SlowDown), http500 (500 InternalError), reset (connection dropped without an answer),
hang (no answer until the client goes away, at most 120 s). "fail_times" N > 0 fires N times
(the count restarts when the settings change); "fail_methods" limits it (default PUT and GET).
Faults fire before authentication, like a load balancer in front of the service.

Statistics at GET /_standin/stats (POST /_standin/reset zeroes them) and in --stats-file,
rewritten atomically before each answer goes out: requests, puts, gets, presigned_gets,
faults_fired (per mode), signature_failures, errors (per code), keys ("bucket/key" stored),
puts_by_key, and request_log (the last 2000: method, bucket, key, status, code, auth "header",
"query" or "none", token (a session token was presented), fault).
Logs one line per request to stderr: never a query string, header or secret.
"""

import argparse
import datetime
import hashlib
import hmac
import http.server
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

SKEW_S = 15 * 60
MAX_EXPIRES = 604800
HANG_MAX_S = 120
LOG_KEEP = 2000
UNSIGNED = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
AMZ_FMT = "%Y%m%dT%H%M%SZ"


def log(msg):
    sys.stderr.write("s3-standin: %s\n" % msg)
    sys.stderr.flush()


class S3Error(Exception):
    """An S3 error answer: status, Code, Message and extra XML fields."""

    def __init__(self, status, code, message, **extra):
        super().__init__(code)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class NoAnswer(Exception):
    """The request is not answered (hang, reset)."""


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def error_xml(err, resource, request_id):
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<Error>',
             "<Code>%s</Code>" % xml_escape(err.code),
             "<Message>%s</Message>" % xml_escape(err.message)]
    for k, v in err.extra.items():
        parts.append("<%s>%s</%s>" % (k, xml_escape(v), k))
    parts.append("<Resource>%s</Resource>" % xml_escape(resource))
    parts.append("<RequestId>%s</RequestId>" % request_id)
    parts.append("<HostId>%s</HostId>" % hashlib.sha256(request_id.encode()).hexdigest()[:32])
    parts.append("</Error>")
    return "".join(parts).encode("utf-8")


def parse_amz_date(s):
    try:
        return datetime.datetime.strptime(s, AMZ_FMT).replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


class Standin:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.stopping = threading.Event()
        self.fault_sig = None
        self.fault_count = 0
        self.content_types = {}
        self.buckets = set(args.bucket or ["tripgen-test"])
        self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": 0, "puts": 0, "gets": 0, "presigned_gets": 0,
                          "faults_fired": {}, "signature_failures": 0, "errors": {},
                          "puts_by_key": {}, "request_log": []}

    def control(self):
        path = self.args.control_file
        if not path:
            return {}
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
            data = json.loads(text) if text.strip() else {}
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def fires(self, c, method):
        mode = c.get("fail")
        if not mode or mode == "none":
            return None
        methods = c.get("fail_methods") or ["PUT", "GET"]
        if method not in methods:
            return None
        try:
            times = int(c.get("fail_times") or 0)
        except (TypeError, ValueError):
            times = 0
        with self.lock:
            sig = json.dumps([mode, methods, times])
            if sig != self.fault_sig:
                self.fault_sig, self.fault_count = sig, 0
            if times > 0 and self.fault_count >= times:
                return None
            self.fault_count += 1
            ff = self.stats["faults_fired"]
            ff[mode] = ff.get(mode, 0) + 1
        return mode

    def keys(self):
        out = []
        root = self.args.data_dir
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                if ".tmp-" in f:
                    continue
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
        return sorted(out)

    def snapshot(self):
        with self.lock:
            s = dict(self.stats)
            s["keys"] = self.keys()
            return json.dumps(s)

    def write_stats(self):
        path = self.args.stats_file
        if not path:
            return
        with self.write_lock:
            text = self.snapshot()
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)

    def credentials(self):
        a = self.args
        return Credentials(a.access_key, a.secret_key, a.session_token or None)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "s3-standin/1.0"
    st = None

    def log_message(self, fmt, *args):
        log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # ---- plumbing ------------------------------------------------------------------------
    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(8)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body=b"", ctype="application/xml", headers=None):
        self.entry["status"] = code
        self.settle()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amz-request-id", self.request_id)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def settle(self):
        if self.settled:
            return
        self.settled = True
        st = self.st
        e = self.entry
        with st.lock:
            s = st.stats
            if e["code"]:
                s["errors"][e["code"]] = s["errors"].get(e["code"], 0) + 1
            if e["code"] == "SignatureDoesNotMatch":
                s["signature_failures"] += 1
            if e["method"] == "PUT" and e["bucket"] and e["key"]:
                k = "%s/%s" % (e["bucket"], e["key"])
                s["puts_by_key"][k] = s["puts_by_key"].get(k, 0) + 1
            s["request_log"].append(e)
            if len(s["request_log"]) > LOG_KEEP:
                del s["request_log"][:len(s["request_log"]) - LOG_KEEP]
        st.write_stats()

    def hang(self):
        end = time.time() + HANG_MAX_S
        sock = self.connection
        while time.time() < end and not self.st.stopping.is_set():
            try:
                r, _, _ = select.select([sock], [], [], 0.1)
                if r and not sock.recv(1, socket.MSG_PEEK):
                    break
            except OSError:
                break
            if r:
                time.sleep(0.1)
        self.close_connection = True
        raise NoAnswer()

    def reset(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        raise NoAnswer()

    # ---- addressing ----------------------------------------------------------------------
    def locate(self, path):
        """(bucket, key) of the request from the Host header and the path (decoded)."""
        host = (self.headers.get("Host") or "").strip().lower()
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host
        domain = "." + self.st.args.domain
        raw = urllib.parse.unquote(path)
        if hostname.endswith(domain) and len(hostname) > len(domain):
            return hostname[:-len(domain)], raw.lstrip("/")
        parts = raw.lstrip("/").split("/", 1)
        return parts[0], (parts[1] if len(parts) > 1 else "")

    # ---- authentication ------------------------------------------------------------------
    def check_token(self, presented):
        want = self.st.args.session_token
        if (want or presented) and not hmac.compare_digest(presented or "", want or ""):
            raise S3Error(400, "InvalidToken", "The provided token is malformed or otherwise "
                          "invalid.")

    def check_scope(self, scope_parts, amz_date, code):
        a = self.st.args
        if len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
            raise S3Error(400, code, "the Credential is mal-formed; expecting "
                          "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
        akid, day, region, service = scope_parts[:4]
        if akid != a.access_key:
            raise S3Error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does "
                          "not exist in our records.", AWSAccessKeyId=akid)
        if region != a.region:
            raise S3Error(400, code, "the region '%s' is wrong; expecting '%s'" %
                          (region, a.region), Region=a.region)
        if service != "s3":
            raise S3Error(400, code, "the service '%s' is wrong; expecting 's3'" % service)
        if not amz_date or day != amz_date[:8]:
            raise S3Error(400, code, "the date in the Credential scope does not match the "
                          "request date")

    def verify_header_auth(self, method, raw_path, query, body):
        """Authorization-header SigV4, checked with botocore's S3SigV4Auth."""
        authz = self.headers.get("Authorization") or ""
        if not authz.startswith("AWS4-HMAC-SHA256 "):
            raise S3Error(400, "InvalidArgument", "Unsupported Authorization Type")
        fields = {}
        for part in authz[len("AWS4-HMAC-SHA256 "):].split(","):
            k, _, v = part.strip().partition("=")
            fields[k] = v
        if not all(fields.get(k) for k in ("Credential", "SignedHeaders", "Signature")):
            raise S3Error(400, "AuthorizationHeaderMalformed", "The authorization header is "
                          "malformed; it must have Credential, SignedHeaders and Signature.")
        amz_date = self.headers.get("x-amz-date")
        self.check_scope(fields["Credential"].split("/"), amz_date, "AuthorizationHeaderMalformed")
        self.entry["token"] = "x-amz-security-token" in self.headers
        self.check_token(self.headers.get("x-amz-security-token"))
        t = parse_amz_date(amz_date)
        if t is None:
            raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or "
                          "x-amz-date header")
        if abs(time.time() - t) > SKEW_S:
            raise S3Error(403, "RequestTimeTooSkewed", "The difference between the request "
                          "time and the current time is too large.", RequestTime=amz_date,
                          ServerTime=time.strftime(AMZ_FMT, time.gmtime()))
        signed = fields["SignedHeaders"].split(";")
        present = {k.lower() for k in self.headers.keys()}
        unsigned = sorted(h for h in present if h.startswith("x-amz-") and h not in signed)
        if "host" not in signed or "x-amz-date" not in signed or unsigned:
            raise S3Error(403, "AccessDenied", "There were headers present in the request "
                          "which were not signed", HeadersNotSigned=", ".join(
                              unsigned or ["host", "x-amz-date"]))
        content_sha = self.headers.get("x-amz-content-sha256")
        if not content_sha:
            raise S3Error(400, "InvalidRequest", "Missing required header for this request: "
                          "x-amz-content-sha256")
        actual = hashlib.sha256(body).hexdigest()
        if content_sha not in UNSIGNED and content_sha != actual:
            raise S3Error(400, "XAmzContentSHA256Mismatch", "The provided "
                          "'x-amz-content-sha256' header does not match what was computed.",
                          ClientComputedContentSHA256=content_sha,
                          S3ComputedContentSHA256=actual)
        # the copy botocore signs: the same method, URL and signed headers, the request's time
        headers = {}
        for name in signed:
            values = self.headers.get_all(name)
            if values is None:
                raise S3Error(403, "SignatureDoesNotMatch", "SignedHeaders names %s, which "
                              "the request does not carry" % name)
            headers[name] = ",".join(values)
        url = "http://%s%s" % (self.headers.get("Host"), raw_path + ("?" + query if query else ""))
        copy = AWSRequest(method=method, url=url, headers=headers, data=body)
        copy.context["timestamp"] = amz_date
        signer = S3SigV4Auth(self.st.credentials(), "s3", self.st.args.region)
        canonical = signer.canonical_request(copy)
        sts = signer.string_to_sign(copy, canonical)
        expected = signer.signature(sts, copy)
        if not hmac.compare_digest(expected, fields["Signature"]):
            raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                          "does not match the signature you provided. Check your key and "
                          "signing method.", AWSAccessKeyId=self.st.args.access_key,
                          StringToSign=sts, CanonicalRequest=canonical)

    def verify_query_auth(self, method, raw_path, query):
        """A pre-signed URL, checked with botocore's S3SigV4QueryAuth."""
        code = "AuthorizationQueryParametersError"
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        q = dict(pairs)
        need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                "X-Amz-SignedHeaders", "X-Amz-Signature")
        if q.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256" or not all(q.get(k) for k in need):
            raise S3Error(400, code, "Query-string authentication version 4 requires the "
                          "X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, "
                          "X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
        amz_date = q["X-Amz-Date"]
        self.check_scope(q["X-Amz-Credential"].split("/"), amz_date, code)
        self.entry["token"] = "X-Amz-Security-Token" in q
        self.check_token(q.get("X-Amz-Security-Token"))
        t = parse_amz_date(amz_date)
        try:
            expires = int(q["X-Amz-Expires"])
        except ValueError:
            expires = -1
        if t is None or expires < 0:
            raise S3Error(400, code, "X-Amz-Date or X-Amz-Expires is malformed.")
        if expires > MAX_EXPIRES:
            raise S3Error(400, code, "X-Amz-Expires must be less than a week (in seconds) "
                          "that is; the given X-Amz-Expires must be less than 604800 seconds")
        now = time.time()
        if now > t + expires:
            raise S3Error(403, "AccessDenied", "Request has expired", **{
                "X-Amz-Expires": str(expires),
                "Expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + expires)),
                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))})
        if t > now + SKEW_S:
            raise S3Error(403, "AccessDenied", "Request is not valid yet")
        signed = q["X-Amz-SignedHeaders"].split(";")
        headers = {}
        for name in signed:
            v = self.headers.get(name)
            if v is None:
                raise S3Error(403, "SignatureDoesNotMatch", "X-Amz-SignedHeaders names %s, "
                              "which the request does not carry" % name)
            headers[name] = v
        # botocore adds the X-Amz-* parameters itself; the rest of the query stays in the URL
        rest = [(k, v) for k, v in pairs if not k.startswith("X-Amz-")]
        url = "http://%s%s" % (self.headers.get("Host"), raw_path)
        if rest:
            url += "?" + urllib.parse.urlencode(rest, quote_via=urllib.parse.quote)
        copy = AWSRequest(method=method, url=url, headers=headers)
        copy.context["timestamp"] = amz_date
        signer = S3SigV4QueryAuth(self.st.credentials(), "s3", self.st.args.region,
                                  expires=expires)
        signer._modify_request_before_signing(copy)   # what add_auth() does before signing
        canonical = signer.canonical_request(copy)
        sts = signer.string_to_sign(copy, canonical)
        expected = signer.signature(sts, copy)
        if not hmac.compare_digest(expected, q["X-Amz-Signature"]):
            raise S3Error(403, "SignatureDoesNotMatch", "The request signature we calculated "
                          "does not match the signature you provided. Check your key and "
                          "signing method.", AWSAccessKeyId=self.st.args.access_key,
                          StringToSign=sts, CanonicalRequest=canonical)

    # ---- the request ---------------------------------------------------------------------
    def dispatch(self, method):
        st = self.st
        t0 = time.time()
        self.request_id = uuid.uuid4().hex[:16].upper()
        raw_path, _, query = self.path.partition("?")
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        self.entry = {"method": method, "bucket": None, "key": None, "t": t0, "status": 0,
                      "code": None, "auth": "none", "token": False, "fault": None}
        self.settled = False
        if raw_path in ("/_standin/stats", "/_standin/reset"):
            self.settled = True         # not counted
            if raw_path.endswith("reset") and method == "POST":
                st.reset_stats()
                st.write_stats()
                return self.send_plain(200, b'{"ok": true}')
            if raw_path.endswith("stats") and method == "GET":
                return self.send_plain(200, st.snapshot().encode())
            return self.send_plain(405, b'{"error": "method"}')
        with st.lock:
            st.stats["requests"] += 1
        bucket, key = self.locate(raw_path)
        self.entry["bucket"], self.entry["key"] = bucket or None, key or None
        resource = "/%s/%s" % (bucket, key)
        try:
            mode = st.fires(st.control(), method)
            if mode:
                self.entry["fault"] = mode
                if mode == "hang":
                    self.hang()
                if mode == "reset":
                    self.reset()
                if mode == "slowdown":
                    raise S3Error(503, "SlowDown", "Please reduce your request rate.")
                if mode == "http500":
                    raise S3Error(500, "InternalError", "We encountered an internal error. "
                                  "Please try again.")
                raise S3Error(503, "ServiceUnavailable", "Service is unable to handle "
                              "request.")
            qnames = {k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)}
            if "X-Amz-Algorithm" in qnames or "X-Amz-Signature" in qnames:
                self.entry["auth"] = "query"
                self.verify_query_auth(method, raw_path, query)
            elif "Authorization" in self.headers:
                self.entry["auth"] = "header"
                self.verify_header_auth(method, raw_path, query, body)
            else:
                raise S3Error(403, "AccessDenied", "Access Denied")
            if not bucket or bucket not in st.buckets:
                raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist",
                              BucketName=bucket)
            if method == "PUT" and key:
                self.put_object(bucket, key, body)
            elif method in ("GET", "HEAD") and key:
                self.get_object(bucket, key)
            else:
                raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed "
                              "against this resource.", Method=method)
        except S3Error as err:
            self.entry["code"] = err.code
            self.close_connection = err.status >= 500 or self.close_connection
            self.send(err.status, error_xml(err, resource, self.request_id))
        except NoAnswer:
            self.settle()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.settle()
        finally:
            e = self.entry
            log("%s %s %s/%s status=%s code=%s auth=%s fault=%s ms=%d" % (
                self.address_string(), method, bucket or "-", key or "-", e["status"] or "-",
                e["code"] or "-", e["auth"], e["fault"] or "-", (time.time() - t0) * 1000))

    def send_plain(self, code, body):
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def object_path(self, bucket, key):
        segs = key.split("/")
        if any(s in ("", ".", "..") for s in segs) or "\0" in key:
            raise S3Error(400, "InvalidArgument", "This stand-in refuses empty, . and .. "
                          "key segments")
        return os.path.join(self.st.args.data_dir, bucket, *segs)

    def put_object(self, bucket, key, body):
        path = self.object_path(bucket, key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = "%s.tmp-%s" % (path, uuid.uuid4().hex)
        with open(tmp, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
        with self.st.lock:
            self.st.stats["puts"] += 1
            self.st.content_types[(bucket, key)] = (self.headers.get("Content-Type") or
                                                    "binary/octet-stream")
        etag = '"%s"' % hashlib.md5(body).hexdigest()
        self.send(200, b"", "application/xml", {"ETag": etag})

    def get_object(self, bucket, key):
        path = self.object_path(bucket, key)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        with self.st.lock:
            self.st.stats["gets"] += 1
            if self.entry["auth"] == "query":
                self.st.stats["presigned_gets"] += 1
            ctype = self.st.content_types.get((bucket, key), "binary/octet-stream")
        self.send(200, data, ctype, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="S3 stand-in (test equipment)")
    ap.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    ap.add_argument("--port-file", help="the chosen port is written here once listening")
    ap.add_argument("--data-dir", required=True, help="objects are stored here")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--access-key", default="AKIDSTANDIN")
    ap.add_argument("--secret-key", default="standin-secret-key")
    ap.add_argument("--session-token", default="", help="when set, every request needs it")
    ap.add_argument("--bucket", action="append", help="a bucket that exists (repeatable)")
    ap.add_argument("--domain", default="localhost",
                    help="virtual-hosted requests come as {bucket}.{domain}")
    ap.add_argument("--control-file", help="JSON re-read on every request")
    ap.add_argument("--stats-file", help="statistics JSON, rewritten after every request")
    args = ap.parse_args(argv)
    args.domain = args.domain.lower()
    os.makedirs(args.data_dir, exist_ok=True)

    st = Standin(args)
    Handler.st = st
    httpd = Server(("127.0.0.1", args.port), Handler)
    port = httpd.server_address[1]
    st.write_stats()
    serve = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="http", daemon=True)
    serve.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    log("listening on http://127.0.0.1:%d region=%s buckets=%s" % (
        port, args.region, ",".join(sorted(st.buckets))))

    stop = threading.Event()

    def on_signal(signum, _frame):
        log("signal %d: shutting down" % signum)
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        stop.wait(0.5)
    st.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    if args.port_file:
        try:
            os.unlink(args.port_file)
        except OSError:
            pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
