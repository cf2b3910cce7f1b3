#!/usr/bin/python3
"""Stand-in Alibaba Cloud OSS: TEST EQUIPMENT for tripgen, never shipped in the product.

A stdlib-only HTTP/1.1 server holding one bucket under --data-dir, that checks every request
against its own, independent implementation of OSS's documented signature algorithms:

  * V1 header:  Authorization: OSS <AccessKeyId>:base64(HMAC-SHA1(secret, VERB\\nContent-MD5\\n
                Content-Type\\nDate\\nCanonicalizedOSSHeaders CanonicalizedResource))
  * V1 URL:     ?OSSAccessKeyId=..&Expires=<unix time>&Signature=.. (Date := Expires)
  * V4 header:  Authorization: OSS4-HMAC-SHA256 Credential=<id>/<yyyymmdd>/<region>/oss/
                aliyun_v4_request[,AdditionalHeaders=a;b],Signature=<hex>, with x-oss-date and
                x-oss-content-sha256 headers
  * V4 URL:     ?x-oss-signature-version=OSS4-HMAC-SHA256&x-oss-credential=..&x-oss-date=..
                &x-oss-expires=<seconds>[&x-oss-additional-headers=..]&x-oss-signature=..

Run it with Debian's /usr/bin/python3:

    oss_standin.py --port 0 --port-file PATH --data-dir DIR [--bucket B] [--region R]
                   [--access-key-id ID] [--access-key-secret SECRET] [--session-token T]
                   [--control-file PATH] [--stats-file PATH]

Addressing: a Host of "<bucket>.<anything>" is virtual-hosted (the path is the key), any other
Host is path style (/<bucket>/<key>). Requests:
    PUT /<key>   stores the body (Content-MD5 checked: InvalidDigest; x-oss-forbid-overwrite:
                 true and an existing object: 409 FileAlreadyExists); x-oss-object-acl kept
    GET /<key>   the object's bytes and Content-Type (NoSuchKey when absent)
    HEAD /<key>  the same without the body
    GET /_standin/stats, POST /_standin/reset   (never faulted, not signed, not counted)

Errors are OSS's XML documents (<Error><Code/><Message/><RequestId/><HostId/>...</Error>, a
SignatureDoesNotMatch also gives <OSSAccessKeyId>, <SignatureProvided> and <StringToSign>)
with an x-oss-request-id header: AccessDenied (anonymous, or "Request has expired." for a
signed URL past its time), InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed
(Date or x-oss-date more than 15 minutes off), InvalidSecurityToken, InvalidDigest,
FileAlreadyExists, NoSuchKey, NoSuchBucket, InvalidArgument (a malformed V4 credential).

Control file (JSON, re-read on every request): {"fail": "http503" | "reset" | "hang",
"fail_times": N (0 = every request), "fail_methods": ["PUT"] (default: every object request)}.
The fault count restarts whenever the control file's fault settings change.

Statistics (GET /_standin/stats and --stats-file, settled before the answer is written):
{"requests": {"PUT": n, "GET": n, ...}, "auth": {"v1": n, "v4": n, "v1-url": n, "v4-url": n},
 "errors": {"SignatureDoesNotMatch": n, ...}, "faults_fired": {"http503": n, ...},
 "puts": [{"key", "status", "content_type", "content_md5", "acl", "forbid_overwrite",
           "auth", "token"}...], "objects": n}.
"""

import argparse
import base64
import calendar
import email.utils
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

HANG_MAX_S = 120
SKEW_S = 15 * 60
# V1 sub-resources that take part in the CanonicalizedResource
SUBRESOURCES = {
    "acl", "uploads", "location", "cors", "logging", "website", "referer", "lifecycle",
    "delete", "append", "tagging", "objectMeta", "uploadId", "partNumber", "security-token",
    "position", "img", "style", "styleName", "replication", "replicationProgress",
    "replicationLocation", "cname", "bucketInfo", "comp", "qos", "live", "status", "vod",
    "startTime", "endTime", "symlink", "x-oss-process", "response-content-type",
    "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding", "udf", "udfName",
    "udfImage", "udfId", "udfImageDesc", "udfApplication", "udfApplicationLog", "restore",
    "callback", "callback-var", "versionId", "versioning", "versions", "encryption", "policy",
}


def log(msg):
    sys.stderr.write("oss-standin: %s\n" % msg)
    sys.stderr.flush()


def quote(s, safe=""):
    return urllib.parse.quote(s, safe=safe)


class OssError(Exception):
    def __init__(self, status, code, message, extra=None):
        super().__init__(code)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


# ---- the documented algorithms ------------------------------------------------------------

def v1_string_to_sign(verb, headers, resource):
    """headers: dict of lower-case name -> value."""
    date = headers.get("x-oss-date") or headers.get("date", "")
    oss = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-oss-"))
    return "%s\n%s\n%s\n%s\n%s%s" % (verb, headers.get("content-md5", ""),
                                     headers.get("content-type", ""), date,
                                     "".join("%s:%s\n" % kv for kv in oss), resource)


def v1_sign(secret, sts):
    return base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()
                            ).decode()


def v1_resource(bucket, key, query_pairs):
    sub = sorted((k, v) for k, v in query_pairs if k in SUBRESOURCES)
    res = "/%s/%s" % (bucket, key)
    if sub:
        res += "?" + "&".join(k if v == "" else "%s=%s" % (k, v) for k, v in sub)
    return res


def v4_canonical_request(method, bucket, key, raw_query, headers, additional, drop_signature):
    uri = quote("/%s/%s" % (bucket, key), safe="/")
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        k, _, v = part.partition("=")
        k, v = urllib.parse.unquote(k), urllib.parse.unquote(v)
        if drop_signature and k == "x-oss-signature":
            continue
        pairs.append((quote(k), quote(v)))
    query = "&".join(k if not v else "%s=%s" % (k, v) for k, v in sorted(pairs))
    signed = sorted((k, v) for k, v in headers.items()
                    if k.startswith("x-oss-") or k in ("content-type", "content-md5")
                    or k in additional)
    canon_headers = "".join("%s:%s\n" % (k, v.strip()) for k, v in signed)
    payload = headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return "%s\n%s\n%s\n%s\n%s\n%s" % (method, uri, query, canon_headers,
                                       ";".join(sorted(additional)), payload)


def v4_signature(secret, stamp, region, canonical):
    date = stamp[:8]
    sts = "OSS4-HMAC-SHA256\n%s\n%s/%s/oss/aliyun_v4_request\n%s" % (
        stamp, date, region, hashlib.sha256(canonical.encode()).hexdigest())
    k = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", "aliyun_v4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return hmac.new(k, sts.encode(), hashlib.sha256).hexdigest(), sts


def parse_iso(stamp):
    try:
        return calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
    except (ValueError, TypeError):
        return None


# ---- state --------------------------------------------------------------------------------

class Standin:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.stopping = threading.Event()
        self.fault_sig, self.fault_count = None, 0
        self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": {}, "auth": {}, "errors": {}, "faults_fired": {},
                          "puts": [], "objects": 0}

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

    def fires(self, method):
        c = self.control()
        mode = c.get("fail")
        if mode not in ("http503", "reset", "hang"):
            return None
        methods = c.get("fail_methods")
        if isinstance(methods, list) and methods and method not in methods:
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

    def count(self, section, name):
        with self.lock:
            d = self.stats[section]
            d[name] = d.get(name, 0) + 1

    def snapshot(self):
        with self.lock:
            return json.dumps(self.stats)

    def write_stats(self):
        path = self.args.stats_file
        if not path:
            return
        with self.write_lock:
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(self.snapshot())
            os.replace(tmp, path)

    def object_path(self, key):
        root = os.path.realpath(self.args.data_dir)
        p = os.path.realpath(os.path.join(root, self.args.bucket, key))
        if not p.startswith(root + os.sep):
            raise OssError(400, "InvalidObjectName", "The specified object is not valid.")
        return p


class NoAnswer(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    st = None

    def log_message(self, fmt, *args):
        log("%s %s" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch("GET")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # ---- plumbing ------------------------------------------------------------------------
    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body=b"", ctype="application/xml", headers=None):
        self.st.write_stats()      # settled before the client has the answer
        self.send_response(code)
        self.send_header("x-oss-request-id", self.request_id)
        if ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_doc(self, e):
        self.st.count("errors", e.code)
        parts = ["<Code>%s</Code>" % e.code, "<Message>%s</Message>" % xml_escape(e.message),
                 "<RequestId>%s</RequestId>" % self.request_id,
                 "<HostId>%s</HostId>" % xml_escape(self.headers.get("Host") or "")]
        for k, v in e.extra.items():
            parts.append("<%s>%s</%s>" % (k, xml_escape(v), k))
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  %s\n</Error>\n'
                % "\n  ".join(parts)).encode()
        self.send(e.status, body)

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

    # ---- requests ------------------------------------------------------------------------
    def dispatch(self, method):
        st = self.st
        self.request_id = uuid.uuid4().hex[:24].upper()
        parsed = urllib.parse.urlsplit(self.path)
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if parsed.path in ("/_standin/stats", "/_standin/reset"):
            if parsed.path == "/_standin/reset":
                st.reset_stats()
                st.write_stats()
            return self.send(200, st.snapshot().encode(), "application/json")
        st.count("requests", method)
        key = ""
        try:
            mode = st.fires(method)
            if mode == "http503":
                raise OssError(503, "ServiceUnavailable", "Please reduce your request rate.")
            if mode == "reset":
                self.reset()
            if mode == "hang":
                self.hang()
            bucket, key = self.locate(parsed.path)
            query = parsed.query
            pairs = [(urllib.parse.unquote(k), urllib.parse.unquote(v)) for k, _, v in
                     (p.partition("=") for p in query.split("&") if p)]
            headers = {k.lower(): v for k, v in self.headers.items()}
            scheme = self.authenticate(method, bucket, key, query, dict(pairs), pairs, headers)
            if method == "PUT":
                return self.put(key, body, headers, scheme)
            if method in ("GET", "HEAD"):
                return self.get(key)
            raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")
        except OssError as e:
            if method == "PUT":
                self.note_put(e.status, key, self.headers, "-")
            return self.send_error_doc(e)
        except NoAnswer:
            st.write_stats()
            return

    def locate(self, path):
        bucket = self.st.args.bucket
        host = (self.headers.get("Host") or "").split(":")[0]
        raw = path[1:]
        if host.startswith(bucket + "."):
            b, key = bucket, raw
        else:
            b, _, key = raw.partition("/")
        key = urllib.parse.unquote(key)
        if b != bucket:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.",
                           {"BucketName": b})
        if not key:
            raise OssError(400, "InvalidObjectName", "The specified object is not valid.")
        return b, key

    def authenticate(self, method, bucket, key, raw_query, q, pairs, headers):
        a = self.st.args
        auth = headers.get("authorization", "")
        now = time.time()
        token = headers.get("x-oss-security-token") or q.get("x-oss-security-token") or \
            q.get("security-token")
        if auth.startswith("OSS4-HMAC-SHA256 "):
            scheme = "v4"
            fields = {}
            for part in auth[len("OSS4-HMAC-SHA256 "):].split(","):
                k, _, v = part.strip().partition("=")
                fields[k] = v
            cred, sig = fields.get("Credential", ""), fields.get("Signature", "")
            additional = [h for h in fields.get("AdditionalHeaders", "").split(";") if h]
            stamp = headers.get("x-oss-date", "")
            if "x-oss-content-sha256" not in headers:
                raise OssError(400, "InvalidArgument", "x-oss-content-sha256 is missing")
            t = parse_iso(stamp)
            if t is None:
                raise OssError(400, "InvalidArgument", "x-oss-date is missing or malformed")
            self.check_skew(t, now)
            cid = self.check_credential(cred, stamp)
            canonical = v4_canonical_request(method, bucket, key, raw_query, headers, additional,
                                             False)
            want, sts = v4_signature(a.access_key_secret, stamp, a.region, canonical)
        elif auth.startswith("OSS "):
            scheme = "v1"
            cid, _, sig = auth[4:].partition(":")
            date = headers.get("x-oss-date") or headers.get("date", "")
            t = email.utils.parsedate_tz(date)
            if t is None:
                raise OssError(403, "AccessDenied", "Date header is missing or malformed.")
            self.check_skew(email.utils.mktime_tz(t), now)
            sts = v1_string_to_sign(method, headers, v1_resource(bucket, key, pairs))
            want = v1_sign(a.access_key_secret, sts)
        elif "x-oss-signature-version" in q:
            scheme = "v4-url"
            if q["x-oss-signature-version"] != "OSS4-HMAC-SHA256":
                raise OssError(400, "InvalidArgument", "Unsupported x-oss-signature-version.")
            stamp, sig = q.get("x-oss-date", ""), q.get("x-oss-signature", "")
            t = parse_iso(stamp)
            try:
                expires = int(q.get("x-oss-expires", ""))
            except ValueError:
                expires = -1
            if t is None or not 1 <= expires <= 604800:
                raise OssError(400, "InvalidArgument", "x-oss-date or x-oss-expires is invalid.")
            if t - now > SKEW_S:
                raise OssError(403, "RequestTimeTooSkewed",
                               "The difference between the request time and the current time "
                               "is too large.")
            cid = self.check_credential(q.get("x-oss-credential", ""), stamp)
            if now > t + expires:
                self.check_id(cid)
                raise OssError(403, "AccessDenied", "Request has expired.",
                               {"Expires": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                         time.gmtime(t + expires)),
                                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                            time.gmtime(now))})
            additional = [h for h in q.get("x-oss-additional-headers", "").split(";") if h]
            canonical = v4_canonical_request(method, bucket, key, raw_query, headers, additional,
                                             True)
            want, sts = v4_signature(a.access_key_secret, stamp, a.region, canonical)
        elif "OSSAccessKeyId" in q:
            scheme = "v1-url"
            cid, sig = q["OSSAccessKeyId"], q.get("Signature", "")
            try:
                expires = int(q.get("Expires", ""))
            except ValueError:
                raise OssError(403, "AccessDenied", "Expires is invalid.")
            if now > expires:
                self.check_id(cid)
                raise OssError(403, "AccessDenied", "Request has expired.",
                               {"Expires": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                         time.gmtime(expires)),
                                "ServerTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                            time.gmtime(now))})
            h = dict(headers)
            h.pop("x-oss-date", None)
            h["date"] = str(expires)
            sts = v1_string_to_sign(method, h, v1_resource(bucket, key, pairs))
            want = v1_sign(a.access_key_secret, sts)
        else:
            raise OssError(403, "AccessDenied", "You have no right to access this object "
                           "because of bucket acl.")
        self.check_id(cid)
        if a.session_token and token != a.session_token:
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is "
                           "invalid.")
        if not a.session_token and token:
            raise OssError(403, "InvalidSecurityToken", "The security token you provided is "
                           "invalid.")
        if not hmac.compare_digest(want, sig):
            raise OssError(403, "SignatureDoesNotMatch", "The request signature we calculated "
                           "does not match the signature you provided. Check your key and "
                           "signing method.",
                           {"OSSAccessKeyId": cid, "SignatureProvided": sig,
                            "StringToSign": sts})
        self.st.count("auth", scheme)
        return scheme

    def check_skew(self, t, now):
        if abs(t - now) > SKEW_S:
            raise OssError(403, "RequestTimeTooSkewed", "The difference between the request "
                           "time and the current time is too large.")

    def check_credential(self, cred, stamp):
        parts = cred.split("/")
        if len(parts) != 5 or parts[3] != "oss" or parts[4] != "aliyun_v4_request":
            raise OssError(400, "InvalidArgument", "Invalid credential in Authorization header.")
        if parts[1] != stamp[:8]:
            raise OssError(400, "InvalidArgument", "Invalid signing date in Authorization header.")
        if parts[2] != self.st.args.region:
            raise OssError(400, "InvalidArgument", "Invalid signing region in Authorization "
                           "header.")
        return parts[0]

    def check_id(self, cid):
        if cid != self.st.args.access_key_id:
            raise OssError(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does "
                           "not exist in our records.", {"OSSAccessKeyId": cid})

    def note_put(self, status, key, headers, scheme):
        with self.st.lock:
            self.st.stats["puts"].append({
                "key": key, "status": status,
                "content_type": headers.get("Content-Type"),
                "content_md5": headers.get("Content-MD5"),
                "acl": headers.get("x-oss-object-acl"),
                "forbid_overwrite": headers.get("x-oss-forbid-overwrite"),
                "token": bool(headers.get("x-oss-security-token")),
                "auth": scheme})

    def put(self, key, body, headers, scheme):
        md5 = headers.get("content-md5")
        if md5 is not None and md5 != base64.b64encode(hashlib.md5(body).digest()).decode():
            raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        path = self.st.object_path(key)
        if headers.get("x-oss-forbid-overwrite", "").lower() == "true" and os.path.exists(path):
            raise OssError(409, "FileAlreadyExists", "The object you specified already exists "
                           "and can not be overwritten.")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp-%d" % threading.get_ident()
        with open(tmp, "wb") as f:
            f.write(body)
        meta = {"content_type": headers.get("content-type", "application/octet-stream"),
                "acl": headers.get("x-oss-object-acl")}
        with open(tmp + ".meta", "w", encoding="utf-8") as f:
            json.dump(meta, f)
        existed = os.path.exists(path)
        os.replace(tmp + ".meta", path + ".meta")
        os.replace(tmp, path)
        with self.st.lock:
            if not existed:
                self.st.stats["objects"] += 1
        self.note_put(200, key, self.headers, scheme)
        etag = '"%s"' % hashlib.md5(body).hexdigest().upper()
        self.send(200, b"", None, {"ETag": etag})

    def get(self, key):
        path = self.st.object_path(key)
        if not os.path.isfile(path):
            raise OssError(404, "NoSuchKey", "The specified key does not exist.", {"Key": key})
        with open(path, "rb") as f:
            data = f.read()
        try:
            with open(path + ".meta", encoding="utf-8") as f:
                ctype = json.load(f).get("content_type")
        except (OSError, ValueError):
            ctype = "application/octet-stream"
        self.send(200, data, ctype, {"ETag": '"%s"' % hashlib.md5(data).hexdigest().upper()})


def xml_escape(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="Alibaba OSS stand-in (test equipment)")
    ap.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    ap.add_argument("--port-file", help="the chosen port is written here once listening")
    ap.add_argument("--data-dir", required=True, help="objects are stored below this")
    ap.add_argument("--bucket", default="tripgen")
    ap.add_argument("--region", default="cn-hangzhou")
    ap.add_argument("--access-key-id", default="LTAIstandin0000000000")
    ap.add_argument("--access-key-secret", default="standin-secret-0123456789abcdef")
    ap.add_argument("--session-token", default="", help="required STS token; \"\" = none")
    ap.add_argument("--control-file", help="JSON re-read on every request")
    ap.add_argument("--stats-file", help="statistics JSON, rewritten after every request")
    args = ap.parse_args(argv)

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
    log("listening on http://127.0.0.1:%d bucket=%s region=%s" % (port, args.bucket,
                                                                    args.region))
    stop = threading.Event()

    def on_signal(signum, _frame):
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
