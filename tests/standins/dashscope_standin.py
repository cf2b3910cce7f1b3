#!/usr/bin/python3
"""Stand-in DashScope / OpenAI server: TEST EQUIPMENT for tripgen, never shipped in the product.

One stdlib-only HTTP/1.1 server (every answer has a Content-Length) that answers like
DashScope's native text generation, DashScope's OpenAI-compatible mode, DashScope's async
wanx text-to-image (submit, task poll, pre-signed result download) and the OpenAI chat API,
with their request checks and error bodies, and with fault modes driven by a control file.
Run it with Debian's /usr/bin/python3:

    dashscope_standin.py --port 0 --port-file PATH [--api-key KEY]
                         [--control-file PATH] [--stats-file PATH]

Routes (a trailing slash is accepted too); the route names are used by "fail_routes",
"no_auth_routes" and the statistics:
    native      POST /api/v1/services/aigc/text-generation/generation
    compatible  POST /compatible-mode/v1/chat/completions
    openai      POST /v1/chat/completions
    submit      POST /api/v1/services/aigc/text2image/image-synthesis
    task        GET  /api/v1/tasks/{task_id}
    cancel      POST /api/v1/tasks/{task_id}/cancel  (only a PENDING task can be canceled)
    download    GET  /results/{task_id}.png  (more images of one task: {task_id}_{i}.png)
                GET  /_standin/stats, POST /_standin/reset (not counted in the statistics)

Control file keys, fault modes and statistics: see tests/standins/README.md.

Where the real services differ from the spec this was written from (checked against the
DashScope / Model Studio error-code and wanx API pages and OpenAI error bodies):
  * compatible mode's successful chat completion carries no "request_id" in the body (only
    the error bodies have top-level "id" and "request_id"), so none is added.
  * compatible-mode codes: a parameter error is code "invalid_parameter_error" with type
    "invalid_request_error" (the spec's "bad_param" guessed code null, which is the OpenAI
    form and is kept for the openai route); an internal error is code/type
    "internal_error"; quota is "insufficient_quota" with OpenAI's "You exceeded your current
    quota, please check your plan and billing details." message.
  * the native API answers a missing "model" with 400 "BadRequest.EmptyModel"; the other
    request errors are "InvalidParameter".  The real API does not reject a missing
    result_format (it falls back to the old "text" shape); the stand-in answers 400
    InvalidParameter on purpose, because the worker must always ask for "message".
  * a task poll answers 200 for every task status, UNKNOWN included (an unknown or expired
    id); an UNKNOWN output has only task_id and task_status.  A FAILED output has
    submit_time, scheduled_time, end_time, code and message; RUNNING and SUCCEEDED add
    "task_metrics".  A RUNNING/PENDING output has no "results".
  * output moderation of an image happens inside the task: the "moderation" fault on the
    task route makes the task end FAILED with "DataInspectionFailed" / "Output data may
    contain inappropriate content.".
  * wanx2.x accepts n = 1..4; the stand-in makes n result URLs, the first {task_id}.png and
    the others {task_id}_{i}.png.
Choices made where the spec was silent: the "Origin:" rule also accepts the worker's
"- From: <address> (<city>), weather: ..." line (the city in parentheses wins); task_ms
defaults to 200; an over-concurrency 429 carries Retry-After like "throttle"; a
"download" fault fires only when "download" is named in "fail_routes"; the request log is
in arrival order and its "auth" is true when the request carried the right key, while
"authz_header" tells whether it carried any Authorization header at all (a download must
not); a request's statistics (and the stats file) are settled just before its answer is
written, so a client that has its answer sees it counted.
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

API_ROUTES = ("native", "compatible", "openai", "submit", "task", "cancel")
LLM_ROUTES = ("native", "compatible", "openai")
ALL_ROUTES = API_ROUTES + ("download",)
FAMILY = {"native": "dashscope", "submit": "dashscope", "task": "dashscope",
          "cancel": "dashscope", "compatible": "compatible", "openai": "openai",
          "download": "oss"}

# which fault modes each route can show
_COMMON = {"throttle", "quota", "http500", "http502_html", "hang", "reset", "malformed"}
APPLICABLE = {
    "native": _COMMON | {"moderation", "bad_param"},
    "compatible": _COMMON | {"moderation", "bad_param"},
    "openai": _COMMON | {"moderation", "bad_param"},
    "submit": _COMMON | {"moderation", "bad_param"},
    "task": _COMMON | {"task_failed", "task_unknown", "moderation"},
    "cancel": _COMMON,
    "download": {"http500", "http502_html", "hang", "reset", "malformed"},
}
FAIL_MODES = ("throttle", "quota", "http500", "http502_html", "hang", "reset", "malformed",
              "moderation", "bad_param", "task_failed", "task_unknown")

ROUTE_TABLE = [
    ("POST", re.compile(r"^/api/v1/services/aigc/text-generation/generation$"), "native"),
    ("POST", re.compile(r"^/compatible-mode/v1/chat/completions$"), "compatible"),
    ("POST", re.compile(r"^/v1/chat/completions$"), "openai"),
    ("POST", re.compile(r"^/api/v1/services/aigc/text2image/image-synthesis$"), "submit"),
    ("GET", re.compile(r"^/api/v1/tasks/([^/]+)$"), "task"),
    ("POST", re.compile(r"^/api/v1/tasks/([^/]+)/cancel$"), "cancel"),
    ("GET", re.compile(r"^/results/([0-9a-fA-F-]{36})(?:_(\d+))?\.png$"), "download"),
    ("GET", re.compile(r"^/_standin/stats$"), "_stats"),
    ("POST", re.compile(r"^/_standin/reset$"), "_reset"),
]

HTML_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
            b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
            b"</body>\r\n</html>\r\n")
HANG_MAX_S = 120.0
LOG_KEEP = 5000
DEFAULT_TASK_MS = 200
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def log(msg):
    sys.stderr.write("[dashscope-standin] %s\n" % msg)
    sys.stderr.flush()


def new_id():
    return str(uuid.uuid4())


def ds_time(t):
    """DashScope's task time format: local time with milliseconds."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + ".%03d" % int(t % 1 * 1000)


# --------------------------------------------------------------------------------------------
# Bodies: errors per route family, the answer text, PNGs.
# --------------------------------------------------------------------------------------------

def ds_error(code, message):
    return {"code": code, "message": message, "request_id": new_id()}


def oa_error(message, typ, code, param=None, compatible=False):
    body = {"error": {"message": message, "type": typ, "param": param, "code": code}}
    if compatible:
        body["id"] = "chatcmpl-" + new_id()
        body["request_id"] = new_id()
    return body


def auth_error(route):
    if FAMILY[route] == "dashscope":
        return ds_error("InvalidApiKey", "Invalid API-key provided.")
    return oa_error("Incorrect API key provided. ", "invalid_request_error", "invalid_api_key",
                    compatible=(route == "compatible"))


def throttle_error(route, model):
    fam = FAMILY[route]
    if fam == "dashscope":
        return ds_error("Throttling.RateQuota",
                        "Requests rate limit exceeded, please try again later.")
    if fam == "compatible":
        return oa_error("Requests rate limit exceeded, please try again later.",
                        "limit_requests", "limit_requests", compatible=True)
    return oa_error("Rate limit reached for %s in organization org-standin on requests per min "
                    "(RPM): Limit 3, Used 3, Requested 1. Please try again in 20s. Visit "
                    "https://platform.openai.com/account/rate-limits to learn more." %
                    (model or "gpt-4o-mini"), "requests", "rate_limit_exceeded")


def fault_body(mode, route, model):
    """(status, body dict) of a JSON fault answer for mode on route."""
    fam = FAMILY[route]
    if mode == "throttle":
        return 429, throttle_error(route, model)
    if mode == "quota":
        if fam == "dashscope":
            return 429, ds_error("Throttling.AllocationQuota",
                                 "Allocated quota exceeded, please increase your quota limit.")
        msg = "You exceeded your current quota, please check your plan and billing details."
        if fam == "openai":
            msg += (" For more information on this error, read the docs: "
                    "https://platform.openai.com/docs/guides/error-codes/api-errors.")
        return 429, oa_error(msg, "insufficient_quota", "insufficient_quota",
                             compatible=(fam == "compatible"))
    if mode == "http500":
        msg = ("An internal error has occured, please try again later or contact service "
               "support.")
        if fam == "dashscope":
            return 500, ds_error("InternalError", msg)
        if fam == "compatible":
            return 500, oa_error(msg, "internal_error", "internal_error", compatible=True)
        return 500, oa_error("The server had an error while processing your request. Sorry "
                             "about that!", "server_error", None)
    if mode == "moderation":
        msg = "Input data may contain inappropriate content."
        if fam == "dashscope":
            return 400, ds_error("DataInspectionFailed", msg)
        if fam == "compatible":
            return 400, oa_error(msg, "data_inspection_failed", "data_inspection_failed",
                                 compatible=True)
        return 400, oa_error("The response was filtered due to the prompt triggering the "
                             "content management policy.", "invalid_request_error",
                             "content_filter", param="prompt")
    if mode == "bad_param":
        return bad_request(route, "Required parameter(s) missing or invalid, please check the "
                           "request parameters.")
    raise ValueError(mode)


def bad_request(route, message, param=None):
    """(400, body) for a request the route refuses."""
    fam = FAMILY[route]
    if fam == "dashscope":
        return 400, ds_error("InvalidParameter", message)
    if fam == "compatible":
        return 400, oa_error("<400> InternalError.Algo.InvalidParameter: " + message,
                             "invalid_request_error", "invalid_parameter_error",
                             compatible=True)
    return 400, oa_error(message, "invalid_request_error", None, param=param)


def content_text(content):
    """The text of a message's content: a string, or OpenAI content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content
                       if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def place_of(user_text):
    """The place the answer paints: the city of the "Origin:"/"From:" line, else the start."""
    for line in user_text.splitlines():
        s = line.strip().lstrip("-*").strip()
        for label in ("Origin:", "From:"):
            if s[:len(label)].lower() == label.lower():
                rest = s[len(label):].strip()
                m = re.search(r"\(([^()]+)\)", rest)
                city = m.group(1) if m else rest.split(",")[0]
                city = city.strip()[:40]
                if city:
                    return city
    return user_text.strip()[:40]


def answer_text(messages, style):
    last_user = ""
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            last_user = content_text(m.get("content"))
    prompt = ("A realistic, high definition painting of %s, golden hour light, a winding road "
              "through the landscape, rich detail" % place_of(last_user))
    if style == "fenced":
        return "```text\n%s\n```" % prompt
    if style == "labelled":
        return 'Prompt: "%s"' % prompt
    if style == "empty":
        return ""
    if style == "long":
        parts = [prompt]
        while len(", ".join(parts)) < 5000:
            parts.append(prompt)
        return ", ".join(parts)
    return prompt


def token_counts(messages, answer):
    text = "".join(content_text(m.get("content")) for m in messages if isinstance(m, dict))
    n, m = len(text) // 4 + 1, len(answer) // 4 + 1
    return n, m


def png_chunk(typ, data):
    return (struct.pack(">I", len(data)) + typ + data +
            struct.pack(">I", zlib.crc32(typ + data) & 0xffffffff))


def make_png(w, h, rgb, pad=0):
    """A flat-colour 8-bit RGB PNG; pad > 0 adds a tEXt chunk with pad bytes of text."""
    raw = (b"\x00" + bytes(rgb) * w) * h
    out = [PNG_SIG, png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)),
           png_chunk(b"IDAT", zlib.compress(raw, 6))]
    if pad > 0:
        filler = (b"standin padding " * (pad // 16 + 1))[:pad]
        out.append(png_chunk(b"tEXt", b"Comment\x00" + filler))
    out.append(png_chunk(b"IEND", b""))
    return b"".join(out)


def colour_of(seed, index):
    d = hashlib.sha256(("%s:%d" % (seed, index)).encode()).digest()
    return d[0], d[1], d[2]


# --------------------------------------------------------------------------------------------
# State: control, faults, tasks, statistics.
# --------------------------------------------------------------------------------------------

class Task:
    def __init__(self, task_id, model, prompt, negative, w, h, n, seed, task_ms):
        self.id, self.model, self.prompt, self.negative = task_id, model, prompt, negative
        self.w, self.h, self.n, self.seed = w, h, n, seed
        self.submit_t = time.time()
        self.start_t = self.submit_t + task_ms / 1000.0 * 0.1
        self.end_t = self.submit_t + task_ms / 1000.0
        self.failed = None          # (code, message) once failed
        self.fail_t = None
        self.cancel_t = None        # when a cancel request took it out of the queue
        self.counted = True         # submitted since the last stats reset

    def status(self, now):
        if self.cancel_t is not None:
            return "CANCELED"
        if self.failed:
            return "FAILED"
        if now >= self.end_t:
            return "SUCCEEDED"
        if now >= self.start_t:
            return "RUNNING"
        return "PENDING"

    def running_interval(self, now):
        if self.cancel_t is not None:       # canceled while PENDING: it never ran
            return self.start_t, self.start_t
        end = self.fail_t if self.failed else self.end_t
        return self.start_t, min(end, now)


class Standin:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.stopping = threading.Event()
        self.port = None
        self.fault_sig = None
        self.fault_count = 0
        self.tasks = {}
        self.png_cache = {}
        self.llm_in_flight = 0
        self.reset_stats()

    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": {}, "faults_fired": {}, "answered": {},
                          "max_concurrency": {}, "in_flight": dict(getattr(self, "in_flight",
                                                                             {})),
                          "max_llm_in_flight": 0, "request_log": [],
                          "tasks": {"submitted": 0, "succeeded": 0, "failed": 0,
                                    "max_running": 0},
                          "downloads": 0}
            self.in_flight = self.stats["in_flight"]
            for t in self.tasks.values():
                t.counted = False

    def control(self):
        path = self.args.control_file
        if not path:
            return {}
        try:
            with open(path, "r", encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return {}
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            log("control file is not JSON; ignored")
            return {}
        return data if isinstance(data, dict) else {}

    def fires(self, c, route, allowed=None):
        """The fault mode that fires for this request on route, or None; counts it."""
        mode = c.get("fail")
        if not mode or mode == "none" or mode not in APPLICABLE[route]:
            return None
        if allowed is not None and mode not in allowed:
            return None
        routes = c.get("fail_routes")
        if not isinstance(routes, list) or not routes:
            routes = list(API_ROUTES)
        if route not in routes:
            return None
        try:
            times = int(c.get("fail_times") or 0)
        except (TypeError, ValueError):
            times = 0
        with self.lock:
            sig = json.dumps([mode, routes, times])
            if sig != self.fault_sig:
                self.fault_sig, self.fault_count = sig, 0
            if times > 0 and self.fault_count >= times:
                return None
            self.fault_count += 1
            ff = self.stats["faults_fired"]
            ff[mode] = ff.get(mode, 0) + 1
        return mode

    def count_fault(self, mode):
        with self.lock:
            ff = self.stats["faults_fired"]
            ff[mode] = ff.get(mode, 0) + 1

    def arrive(self, route, entry):
        """Count an arriving request and log it (entry is completed as it goes); returns the
        LLM calls in flight including it."""
        with self.lock:
            s = self.stats
            s["requests"][route] = s["requests"].get(route, 0) + 1
            s["request_log"].append(entry)
            if len(s["request_log"]) > LOG_KEEP:
                del s["request_log"][:len(s["request_log"]) - LOG_KEEP]
            n = self.in_flight.get(route, 0) + 1
            self.in_flight[route] = n
            if n > s["max_concurrency"].get(route, 0):
                s["max_concurrency"][route] = n
            if route in LLM_ROUTES:
                self.llm_in_flight += 1
                s["max_llm_in_flight"] = max(s["max_llm_in_flight"], self.llm_in_flight)
                return self.llm_in_flight
            return 0

    def depart(self, route, entry):
        with self.lock:
            s = self.stats
            self.in_flight[route] = max(0, self.in_flight.get(route, 0) - 1)
            if route in LLM_ROUTES:
                self.llm_in_flight -= 1
            if entry["status"]:
                a = s["answered"].setdefault(route, {})
                k = str(entry["status"])
                a[k] = a.get(k, 0) + 1
        self.write_stats()

    def snapshot(self):
        """The statistics as JSON text (task counters computed now)."""
        now = time.time()
        with self.lock:
            counted = [t for t in self.tasks.values() if t.counted]
            ts = self.stats["tasks"]
            ts["succeeded"] = sum(1 for t in counted if t.status(now) == "SUCCEEDED")
            ts["failed"] = sum(1 for t in counted if t.failed)
            events = []
            for t in counted:
                a, b = t.running_interval(now)
                if a < b:
                    events.append((a, 1))
                    events.append((b, -1))
            events.sort()
            cur = best = 0
            for _, d in events:
                cur += d
                best = max(best, cur)
            ts["max_running"] = best
            return json.dumps(self.stats)

    def write_stats(self):
        path = self.args.stats_file
        if not path:
            return
        with self.write_lock:     # snapshot and rename in order: the newest one wins
            text = self.snapshot()
            tmp = "%s.%d.tmp" % (path, os.getpid())
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)

    def png(self, w, h, rgb, pad):
        key = (w, h, rgb)
        with self.lock:
            base = self.png_cache.get(key)
        if base is None:
            base = make_png(w, h, rgb)
            with self.lock:
                if len(self.png_cache) > 16:
                    self.png_cache.clear()
                self.png_cache[key] = base
        if pad > 0:
            return make_png(w, h, rgb, pad)
        return base


# --------------------------------------------------------------------------------------------
# HTTP.
# --------------------------------------------------------------------------------------------

class NoAnswer(Exception):
    """The request is not answered (hang, reset)."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dashscope-standin/1.0"
    st = None

    def log_message(self, fmt, *args):
        log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        pass              # dispatch() logs one line per request itself

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

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

    def send(self, code, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.entry["status"] = code
        self.settle()     # the statistics are current before the client has the answer
        self.send_response(code)
        if body or ctype:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def settle(self):
        """Finish this request's statistics (once)."""
        if self.settled:
            return
        self.settled = True
        self.entry["t_done"] = time.time()
        if self.counted:
            self.st.depart(self.counted, self.entry)

    def hang(self):
        """Answer nothing until the client goes away (or 120 s, or shutdown)."""
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
                time.sleep(0.1)   # the client sent more bytes: keep waiting
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

    def authorized(self, key):
        h = self.headers.get("Authorization") or ""
        return h.startswith("Bearer ") and h[7:].strip() == key

    def dispatch(self, method):
        st = self.st
        t0 = time.time()
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        route, match, method_ok = None, None, False
        for m, rx, name in ROUTE_TABLE:
            mm = rx.match(path)
            if mm:
                route, match, method_ok = name, mm, (m == method)
                break
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        self.entry = {"route": route or "other", "method": method, "path": path, "t": t0,
                      "t_done": None, "status": 0,
                      "auth": self.authorized(st.args.api_key),
                      "authz_header": "Authorization" in self.headers, "fault": None}
        self.settled, self.counted = False, None
        if route in ("_stats", "_reset"):
            if not method_ok:
                return self.send(405, {"code": "MethodNotAllowed", "message": method})
            if route == "_reset":
                st.reset_stats()
                st.write_stats()
                return self.send(200, {"ok": True})
            return self.send(200, st.snapshot().encode())
        counted = self.counted = route or "other"
        llm_now = st.arrive(counted, self.entry)
        try:
            if route is None:
                self.send(404, ds_error("NotFound", "Not found: %s" % path))
            elif not method_ok:
                self.send(405, ds_error("MethodNotAllowed",
                                        "Method %s not allowed on %s" % (method, path)))
            else:
                self.handle_route(route, match, body, parsed.query, llm_now)
        except NoAnswer:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self.settle()
            e = self.entry
            log("%s %s %s route=%s status=%s auth=%s fault=%s ms=%d" % (
                self.address_string(), method, path, counted, e["status"] or "-",
                "ok" if e["auth"] else ("bad" if e["authz_header"] else "none"),
                e["fault"] or "-", (e["t_done"] - t0) * 1000))

    def fault(self, c, route, model, allowed=None):
        """Fire the configured fault for route, if any: answers (or not) and returns True."""
        mode = self.st.fires(c, route, allowed)
        if not mode:
            return False
        self.answer_fault(mode, c, route, model)
        return True

    def answer_fault(self, mode, c, route, model):
        self.entry["fault"] = mode
        if mode == "hang":
            self.hang()
        if mode == "reset":
            self.reset()
        if mode == "http502_html":
            return self.send(502, HTML_502, "text/html")
        if mode == "malformed":
            if route == "download":
                good = make_png(64, 64, (1, 2, 3))
                return self.send(200, good[:len(good) // 2], "image/png")
            if FAMILY[route] == "dashscope":
                return self.send(200, b'{"output": {"choices": [')
            return self.send(200, b'{"id": "chatcmpl-%s", "object": "chat.completion", '
                             b'"choices": [' % new_id().encode())
        if route == "download":          # http500 from an object store
            return self.send(500, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>'
                             b'InternalError</Code>\n  <Message>We encountered an internal '
                             b'error. Please try again.</Message>\n</Error>\n',
                             "application/xml")
        code, body = fault_body(mode, route, model)
        headers = {}
        if mode == "throttle":
            headers["Retry-After"] = str(c.get("retry_after", "1"))
        return self.send(code, body, headers=headers)

    # ---- routes --------------------------------------------------------------------------
    def handle_route(self, route, match, raw, query, llm_now):
        st = self.st
        c = st.control()
        if route in API_ROUTES:
            no_auth = c.get("no_auth_routes") or []
            if not self.entry["auth"] and route not in no_auth:
                return self.send(401, auth_error(route))
        data = None
        if raw:
            try:
                data = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                data = None
        model = data.get("model") if isinstance(data, dict) else None
        if route in LLM_ROUTES:
            limit = c.get("max_concurrency")
            if isinstance(limit, int) and limit > 0 and llm_now > limit:
                st.count_fault("over_concurrency")
                self.entry["fault"] = "over_concurrency"
                return self.send(429, throttle_error(route, model),
                                 headers={"Retry-After": str(c.get("retry_after", "1"))})
            latency = c.get("latency_ms") or 0
            if latency > 0:
                st.stopping.wait(latency / 1000.0)
        if route == "native":
            return self.native(c, data, model)
        if route in ("compatible", "openai"):
            return self.chat(c, route, data, model)
        if route == "submit":
            return self.submit(c, data, model)
        if route == "task":
            return self.task(c, match.group(1))
        if route == "cancel":
            return self.cancel(c, match.group(1))
        return self.download(c, match.group(1), int(match.group(2) or 0))

    def native(self, c, data, model):
        if self.fault(c, "native", model):
            return
        if not isinstance(data, dict):
            return self.send(*bad_request("native", "Request body is not valid JSON."))
        if not isinstance(model, str) or not model:
            return self.send(400, ds_error("BadRequest.EmptyModel",
                                           'Required parameter "model" missing from request.'))
        inp = data.get("input")
        msgs = inp.get("messages") if isinstance(inp, dict) else None
        if not isinstance(msgs, list) or not msgs:
            return self.send(*bad_request(
                "native", 'Either "prompt" or "messages" must exist and cannot both be none'))
        params = data.get("parameters")
        if not isinstance(params, dict) or params.get("result_format") != "message":
            return self.send(*bad_request(
                "native", 'parameters.result_format must be "message" (stand-in rule)'))
        answer = answer_text(msgs, c.get("answer_style", "plain"))
        n, m = token_counts(msgs, answer)
        self.send(200, {"output": {"choices": [{"finish_reason": "stop",
                                                "message": {"role": "assistant",
                                                            "content": answer}}]},
                        "usage": {"input_tokens": n, "output_tokens": m, "total_tokens": n + m},
                        "request_id": new_id()})

    def chat(self, c, route, data, model):
        if self.fault(c, route, model):
            return
        if not isinstance(data, dict):
            return self.send(*bad_request(route, "We could not parse the JSON body of your "
                                          "request."))
        if not isinstance(model, str) or not model:
            return self.send(*bad_request(route, "you must provide a model parameter",
                                          param="model"))
        msgs = data.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return self.send(*bad_request(route, "'messages' must be a non-empty array",
                                          param="messages"))
        answer = answer_text(msgs, c.get("answer_style", "plain"))
        n, m = token_counts(msgs, answer)
        self.send(200, {"id": "chatcmpl-" + new_id(), "object": "chat.completion",
                        "created": int(time.time()), "model": model,
                        "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": answer},
                                     "finish_reason": "stop", "logprobs": None}],
                        "usage": {"prompt_tokens": n, "completion_tokens": m,
                                  "total_tokens": n + m},
                        "system_fingerprint": None})

    def submit(self, c, data, model):
        st = self.st
        if self.fault(c, "submit", model):
            return
        if (self.headers.get("X-DashScope-Async") or "").strip().lower() != "enable":
            return self.send(403, ds_error("AccessDenied",
                                           "current user api does not support synchronous "
                                           "calls"))
        if not isinstance(data, dict):
            return self.send(*bad_request("submit", "Request body is not valid JSON."))
        if not isinstance(model, str) or not model:
            return self.send(400, ds_error("BadRequest.EmptyModel",
                                           'Required parameter "model" missing from request.'))
        inp = data.get("input")
        prompt = inp.get("prompt") if isinstance(inp, dict) else None
        if not isinstance(prompt, str) or not prompt.strip():
            return self.send(400, ds_error("InvalidParameter", "input.prompt is required"))
        params = data.get("parameters") or {}
        if not isinstance(params, dict):
            return self.send(*bad_request("submit", "parameters must be an object"))
        size = params.get("size", "1024*1024")
        m = re.fullmatch(r"(\d+)\*(\d+)", size) if isinstance(size, str) else None
        w, h = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        if not (512 <= w <= 1440 and 512 <= h <= 1440):
            return self.send(400, ds_error("InvalidParameter",
                                           "The size is not match the allowed size: "
                                           "width and height must be in [512, 1440]"))
        n = params.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
            return self.send(400, ds_error("InvalidParameter", "n must be in [1, 4]"))
        seed = params.get("seed")
        if seed is None:
            seed = int.from_bytes(os.urandom(4), "big") & 0x7fffffff
        task_ms = c.get("task_ms", DEFAULT_TASK_MS)
        t = Task(new_id(), model, prompt, inp.get("negative_prompt"), w, h, n, seed,
                 max(0, int(task_ms)))
        with st.lock:
            st.tasks[t.id] = t
            st.stats["tasks"]["submitted"] += 1
        self.send(200, {"output": {"task_status": "PENDING", "task_id": t.id},
                        "request_id": new_id()})

    def result_url(self, c, t, i):
        host = c.get("result_host") or ("127.0.0.1:%d" % self.st.port)
        name = t.id + ("_%d" % i if i else "") + ".png"
        sig = base64.b64encode(hashlib.sha1(name.encode()).digest()).decode()
        return ("http://%s/results/%s?Expires=%d&OSSAccessKeyId=LTAI5tStandinKeyId&"
                "Signature=%s" % (host, name, int(t.end_t) + 86400, urllib.parse.quote(sig,
                                                                                   safe="")))

    def task(self, c, task_id):
        st = self.st
        with st.lock:
            t = st.tasks.get(task_id)
        now = time.time()
        live = t is not None and t.status(now) in ("PENDING", "RUNNING")
        # task_failed and moderation end a live task (once); the rest answer this poll
        allowed = None if live else APPLICABLE["task"] - {"task_failed", "moderation"}
        mode = st.fires(c, "task", allowed)
        if mode:
            self.entry["fault"] = mode
        if mode in ("task_failed", "moderation"):
            if mode == "moderation":
                err = ("DataInspectionFailed", "Output data may contain inappropriate content.")
            else:
                err = (c.get("task_error_code") or "InternalError.Algo",
                       c.get("task_error_message") or "Algorithm process error.")
            with st.lock:
                t.failed, t.fail_t = err, now
        elif mode and mode != "task_unknown":
            return self.answer_fault(mode, c, "task", None)
        rid = new_id()
        if t is None or mode == "task_unknown":
            return self.send(200, {"request_id": rid, "output": {"task_id": task_id,
                                                                 "task_status": "UNKNOWN"}})
        s = t.status(now)
        out = {"task_id": t.id, "task_status": s, "submit_time": ds_time(t.submit_t)}
        body = {"request_id": rid, "output": out}
        if s not in ("PENDING", "CANCELED"):
            out["scheduled_time"] = ds_time(t.start_t if not t.failed
                                            else min(t.start_t, t.fail_t))
        if s == "RUNNING":
            out["task_metrics"] = {"TOTAL": t.n, "SUCCEEDED": 0, "FAILED": 0}
        elif s == "CANCELED":
            out["end_time"] = ds_time(t.cancel_t)
        elif s == "FAILED":
            out["end_time"] = ds_time(t.fail_t)
            out["code"], out["message"] = t.failed
        elif s == "SUCCEEDED":
            out["end_time"] = ds_time(t.end_t)
            out["results"] = [{"orig_prompt": t.prompt, "actual_prompt": t.prompt,
                               "url": self.result_url(c, t, i)} for i in range(t.n)]
            out["task_metrics"] = {"TOTAL": t.n, "SUCCEEDED": t.n, "FAILED": 0}
            body["usage"] = {"image_count": t.n}
        self.send(200, body)

    def cancel(self, c, task_id):
        """Cancel a PENDING task: 200 with only a request_id; any other task (running,
        ended, unknown) is refused with 400 UnsupportedOperation."""
        if self.fault(c, "cancel", None):
            return
        st = self.st
        now = time.time()
        with st.lock:
            t = st.tasks.get(task_id)
            pending = t is not None and t.status(now) == "PENDING"
            if pending:
                t.cancel_t = now
        if not pending:
            return self.send(400, ds_error("UnsupportedOperation",
                                           "Failed to cancel the task, please confirm if the "
                                           "task is in PENDING status."))
        self.send(200, {"request_id": new_id()})

    def download(self, c, task_id, index):
        st = self.st
        if self.fault(c, "download", None):
            return
        redirect = c.get("download_redirect")
        if redirect:
            return self.send(302, b"", None, headers={"Location": str(redirect)})
        with st.lock:
            t = st.tasks.get(task_id)
        if t is None or t.status(time.time()) != "SUCCEEDED" or index >= t.n:
            return self.send(404, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n  <Code>'
                             b'NoSuchKey</Code>\n  <Message>The specified key does not exist.'
                             b'</Message>\n</Error>\n', "application/xml")
        pad = c.get("image_pad_bytes") or 0
        data = st.png(t.w, t.h, colour_of(t.seed, index), int(pad))
        with st.lock:
            st.stats["downloads"] += 1
        self.send(200, data, "image/png")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def main(argv=None):
    ap = argparse.ArgumentParser(description="DashScope/OpenAI stand-in (test equipment)")
    ap.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    ap.add_argument("--port-file", help="the chosen port is written here once listening")
    ap.add_argument("--api-key", default="sk-test-standin", help="the Bearer key required")
    ap.add_argument("--control-file", help="JSON re-read on every request")
    ap.add_argument("--stats-file", help="statistics JSON, rewritten after every request")
    args = ap.parse_args(argv)

    st = Standin(args)
    Handler.st = st
    httpd = Server(("127.0.0.1", args.port), Handler)
    st.port = httpd.server_address[1]
    st.write_stats()
    serve = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="http", daemon=True)
    serve.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("%d\n" % st.port)
        os.replace(tmp, args.port_file)
    log("listening on http://127.0.0.1:%d control=%s" % (st.port, args.control_file or "-"))

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
