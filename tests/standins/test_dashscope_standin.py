#!/usr/bin/python3
"""Self-test of the DashScope/OpenAI stand-in (tests/standins/dashscope_standin.py).

Starts the stand-in through the integration harness (Env.start_dashscope, ds_set,
ds_stats) and checks with urllib every route, both kinds of auth failure, every fault
mode's status and body shape, fail_times counting, the wanx task lifecycle, the result
download (a real PNG of the asked size) and its controls, the concurrency limit and the
statistics.  Standard library only; run with /usr/bin/python3:

    /usr/bin/python3 tests/standins/test_dashscope_standin.py [TEST_NAME...]

Prints `ok NAME` or `FAIL NAME` with a traceback per test, then `N passed, N failed`;
exits non-zero when a test failed.
"""
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from worker_harness import Env  # noqa: E402

KEY = "sk-test-standin"
NATIVE = "/api/v1/services/aigc/text-generation/generation"
COMPAT = "/compatible-mode/v1/chat/completions"
OPENAI = "/v1/chat/completions"
SUBMIT = "/api/v1/services/aigc/text2image/image-synthesis"
TASKS = "/api/v1/tasks/"
ASYNC = {"X-DashScope-Async": "enable"}
UUID_RX = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RX = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
USER_MSG = ("A car owner just finished this drive. Write the painting prompt for it.\n"
            "- From: 上海市黄浦区中山南路1891号 (上海市), weather: 晴天\n"
            "- To: 上海市闵行区申长路688号 (上海市), weather: 多云\n")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def call(e, method, path, body=None, key=KEY, headers=None, timeout=5, base=None):
    """(status, headers, body bytes) of one request; body may be a dict, bytes or None."""
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    h = {"Content-Type": "application/json"} if data is not None else {}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    req = urllib.request.Request((base or e.ds_base) + path, data=data, method=method,
                                 headers=h)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def jcall(e, method, path, body=None, **kw):
    status, headers, raw = call(e, method, path, body, **kw)
    return status, headers, json.loads(raw.decode())


def native_body(text=USER_MSG, **params):
    p = {"result_format": "message"}
    p.update(params)
    return {"model": "qwen-plus", "input": {"messages": [
        {"role": "system", "content": "You write painting prompts."},
        {"role": "user", "content": text}]}, "parameters": p}


def chat_body(text=USER_MSG):
    return {"model": "qwen-plus", "max_tokens": 300, "temperature": 0.7, "messages": [
        {"role": "system", "content": "You write painting prompts."},
        {"role": "user", "content": text}]}


def submit_body(size="1024*1024", seed=42, n=None, prompt="a lake at dusk"):
    params = {"size": size}
    if seed is not None:
        params["seed"] = seed
    if n is not None:
        params["n"] = n
    return {"model": "wanx2.1-t2i-turbo", "input": {"prompt": prompt, "negative_prompt": "text"},
            "parameters": params}


# route name -> (path, body maker, extra headers)
POST_ROUTES = {"native": (NATIVE, native_body, {}), "compatible": (COMPAT, chat_body, {}),
               "openai": (OPENAI, chat_body, {}), "submit": (SUBMIT, submit_body, ASYNC)}


def eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def ds_err(body, code, what):
    eq(set(body), {"code", "message", "request_id"}, what + " keys")
    eq(body["code"], code, what + " code")
    check(isinstance(body["message"], str) and body["message"], what + " message")
    check(UUID_RX.match(body["request_id"]), what + " request_id")


def oa_err(body, code, typ, compat, what, param=None):
    eq(set(body["error"]), {"message", "type", "param", "code"}, what + " error keys")
    eq(body["error"]["code"], code, what + " code")
    eq(body["error"]["type"], typ, what + " type")
    eq(body["error"]["param"], param, what + " param")
    check(isinstance(body["error"]["message"], str) and body["error"]["message"],
          what + " message")
    if compat:
        eq(set(body), {"error", "id", "request_id"}, what + " keys")
        check(body["id"].startswith("chatcmpl-"), what + " id")
        check(UUID_RX.match(body["request_id"]), what + " request_id")
    else:
        eq(set(body), {"error"}, what + " keys")


def route_err(route, body, ds_code, oa_code, oa_type, compat_code=None, compat_type=None,
              what="", oa_param=None):
    if route in ("native", "submit", "task"):
        ds_err(body, ds_code, what)
    elif route == "compatible":
        oa_err(body, compat_code or oa_code, compat_type or oa_type, True, what)
    else:
        oa_err(body, oa_code, oa_type, False, what, param=oa_param)


def wait(cond, timeout, what):
    return Env.wait(cond, timeout, what)


def submit(e, **kw):
    status, _, body = jcall(e, "POST", SUBMIT, submit_body(**kw), headers=ASYNC)
    eq(status, 200, "submit status")
    return body["output"]["task_id"]


def poll(e, task_id):
    status, _, body = jcall(e, "GET", TASKS + task_id)
    eq(status, 200, "task poll status")
    return body


def wait_status(e, task_id, want, timeout=10):
    return wait(lambda: (lambda b: b if b["output"]["task_status"] == want else None)(
        poll(e, task_id)), timeout, "task %s to be %s" % (task_id, want))


def parse_png(data):
    """Chunks of a PNG with CRCs checked: {"w", "h", "types", "pixels", "text"}."""
    check(data[:8] == b"\x89PNG\r\n\x1a\n", "PNG signature")
    pos, types, idat, info = 8, [], b"", {"text": b""}
    while pos < len(data):
        n, = struct.unpack(">I", data[pos:pos + 4])
        typ, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        crc, = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        eq(crc, zlib.crc32(typ + payload) & 0xffffffff, "CRC of " + typ.decode())
        types.append(typ)
        if typ == b"IHDR":
            info["w"], info["h"], depth, ctype = struct.unpack(">IIBB", payload[:10])
            eq((depth, ctype), (8, 2), "8-bit RGB")
        elif typ == b"IDAT":
            idat += payload
        elif typ == b"tEXt":
            info["text"] = payload
        pos += 12 + n
    eq(pos, len(data), "PNG ends at IEND")
    eq(types[0], b"IHDR", "first chunk")
    eq(types[-1], b"IEND", "last chunk")
    raw = zlib.decompress(idat)
    eq(len(raw), info["h"] * (1 + 3 * info["w"]), "decoded image size")
    info["pixel"] = raw[1:4]
    info["types"] = types
    return info


# --------------------------------------------------------------------------------------------
# LLM routes
# --------------------------------------------------------------------------------------------

def test_native_ok(e):
    status, headers, body = jcall(e, "POST", NATIVE, native_body())
    eq(status, 200, "status")
    check(headers.get("Content-Type", "").startswith("application/json"), "content type")
    eq(set(body), {"output", "usage", "request_id"}, "keys")
    check(UUID_RX.match(body["request_id"]), "request_id")
    ch = body["output"]["choices"]
    eq(len(ch), 1, "one choice")
    eq(ch[0]["finish_reason"], "stop", "finish_reason")
    eq(ch[0]["message"]["role"], "assistant", "role")
    text = ch[0]["message"]["content"]
    check(text.startswith("A realistic, high definition painting of 上海市,"), text)
    u = body["usage"]
    all_text = "You write painting prompts." + USER_MSG
    eq(u["input_tokens"], len(all_text) // 4 + 1, "input_tokens")
    eq(u["output_tokens"], len(text) // 4 + 1, "output_tokens")
    eq(u["total_tokens"], u["input_tokens"] + u["output_tokens"], "total_tokens")
    # an "Origin:" line, and no such line (the first 40 chars)
    _, _, b2 = jcall(e, "POST", NATIVE, native_body("Trip\nOrigin: Hangzhou, Zhejiang\n"))
    check("painting of Hangzhou," in b2["output"]["choices"][0]["message"]["content"],
          "Origin: line")
    plain = "x" * 50
    _, _, b3 = jcall(e, "POST", NATIVE, native_body(plain))
    check("painting of %s," % ("x" * 40) in b3["output"]["choices"][0]["message"]["content"],
          "first 40 chars")


def test_native_bad_requests(e):
    s, _, b = jcall(e, "POST", NATIVE, b"{not json")
    eq(s, 400, "invalid JSON")
    ds_err(b, "InvalidParameter", "invalid JSON")
    s, _, b = jcall(e, "POST", NATIVE, {"model": "qwen-plus", "input": {},
                                        "parameters": {"result_format": "message"}})
    eq(s, 400, "no messages")
    ds_err(b, "InvalidParameter", "no messages")
    body = native_body()
    del body["parameters"]["result_format"]
    s, _, b = jcall(e, "POST", NATIVE, body)
    eq(s, 400, "no result_format")
    ds_err(b, "InvalidParameter", "no result_format")
    s, _, b = jcall(e, "POST", NATIVE, native_body(result_format="text"))
    eq(s, 400, "result_format text")
    body = native_body()
    del body["model"]
    s, _, b = jcall(e, "POST", NATIVE, body)
    eq(s, 400, "no model")
    ds_err(b, "BadRequest.EmptyModel", "no model")


def test_chat_ok(e):
    for route, path in (("compatible", COMPAT), ("openai", OPENAI)):
        t0 = time.time()
        s, _, b = jcall(e, "POST", path, chat_body())
        eq(s, 200, route + " status")
        eq(set(b), {"id", "object", "created", "model", "choices", "usage",
                    "system_fingerprint"}, route + " keys")
        check(b["id"].startswith("chatcmpl-"), route + " id")
        eq(b["object"], "chat.completion", route + " object")
        check(abs(b["created"] - t0) < 5, route + " created")
        eq(b["model"], "qwen-plus", route + " model")
        eq(b["system_fingerprint"], None, route + " system_fingerprint")
        c = b["choices"]
        eq(len(c), 1, route + " one choice")
        eq((c[0]["index"], c[0]["finish_reason"], c[0]["logprobs"]), (0, "stop", None),
           route + " choice fields")
        eq(c[0]["message"]["role"], "assistant", route + " role")
        check("painting of 上海市," in c[0]["message"]["content"], route + " content")
        u = b["usage"]
        eq(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"], route + " usage")
        eq(u["completion_tokens"], len(c[0]["message"]["content"]) // 4 + 1, route + " tokens")


def test_chat_bad_requests(e):
    for route, path in (("compatible", COMPAT), ("openai", OPENAI)):
        s, _, b = jcall(e, "POST", path, b"[oops")
        eq(s, 400, route + " invalid JSON")
        s, _, b = jcall(e, "POST", path, {"model": "qwen-plus", "messages": []})
        eq(s, 400, route + " empty messages")
        if route == "compatible":
            oa_err(b, "invalid_parameter_error", "invalid_request_error", True, route)
        else:
            oa_err(b, None, "invalid_request_error", False, route, param="messages")


def test_auth(e):
    for key in (None, "sk-wrong"):
        what = "key %s" % key
        for route, (path, mk, hdr) in POST_ROUTES.items():
            s, _, b = jcall(e, "POST", path, mk(), key=key, headers=hdr)
            eq(s, 401, route + " " + what)
            if route in ("native", "submit"):
                ds_err(b, "InvalidApiKey", route + " " + what)
                eq(b["message"], "Invalid API-key provided.", route + " message")
            else:
                oa_err(b, "invalid_api_key", "invalid_request_error", route == "compatible",
                       route + " " + what)
                eq(b["error"]["message"], "Incorrect API key provided. ", route + " message")
        s, _, b = jcall(e, "GET", TASKS + "00000000-0000-0000-0000-000000000000", key=key)
        eq(s, 401, "task " + what)
        ds_err(b, "InvalidApiKey", "task " + what)
    log = e.ds_stats()["request_log"]
    eq(len(log), 10, "ten requests logged")
    check(all(not r["auth"] for r in log), "auth false in the log")
    eq([r["authz_header"] for r in log], [False] * 5 + [True] * 5, "authz_header")
    # the key must not reach the log file
    with open(e.procs[0].log_path) as f:
        text = f.read()
    check(KEY not in text and "sk-wrong" not in text, "a key in the log")


def test_no_auth_routes(e):
    e.ds_set(no_auth_routes=["openai"])
    s, _, _ = call(e, "POST", OPENAI, chat_body(), key=None)
    eq(s, 200, "openai without a key")
    s, _, _ = call(e, "POST", COMPAT, chat_body(), key=None)
    eq(s, 401, "compatible still needs the key")
    s, _, _ = call(e, "POST", NATIVE, native_body(), key=None)
    eq(s, 401, "native still needs the key")


def test_answer_styles(e):
    def content(style):
        e.ds_set(answer_style=style)
        _, _, b = jcall(e, "POST", NATIVE, native_body())
        return b["output"]["choices"][0]["message"]["content"]
    plain = content("plain")
    check(plain.startswith("A realistic, high definition painting of 上海市"), plain)
    eq(content("fenced"), "```text\n%s\n```" % plain, "fenced")
    eq(content("labelled"), 'Prompt: "%s"' % plain, "labelled")
    eq(content("empty"), "", "empty")
    long = content("long")
    check(len(long) >= 5000 and long.startswith(plain) and long.count(plain) >= 2, "long")
    e.ds_set(answer_style="empty")
    _, _, b = jcall(e, "POST", OPENAI, chat_body())
    eq(b["choices"][0]["message"]["content"], "", "openai empty")


def test_latency(e):
    e.ds_set(latency_ms=400)
    t0 = time.time()
    s, _, _ = call(e, "POST", COMPAT, chat_body())
    eq(s, 200, "status")
    check(time.time() - t0 >= 0.4, "answered before latency_ms")
    r = e.ds_stats()["request_log"][-1]
    check(r["t_done"] - r["t"] >= 0.4, "t_done - t")


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

def test_fault_json_modes(e):
    expect = {
        # mode: (status, ds code, openai code, openai type, compat code, compat type, param)
        "throttle": (429, "Throttling.RateQuota", "rate_limit_exceeded", "requests",
                     "limit_requests", "limit_requests", None),
        "quota": (429, "Throttling.AllocationQuota", "insufficient_quota", "insufficient_quota",
                  None, None, None),
        "http500": (500, "InternalError", None, "server_error", "internal_error",
                    "internal_error", None),
        "moderation": (400, "DataInspectionFailed", "content_filter", "invalid_request_error",
                       "data_inspection_failed", "data_inspection_failed", "prompt"),
        "bad_param": (400, "InvalidParameter", None, "invalid_request_error",
                      "invalid_parameter_error", "invalid_request_error", None),
    }
    for mode, (st, ds, oc, ot, cc, ctyp, param) in expect.items():
        e.ds_set(fail=mode, retry_after="7")
        for route, (path, mk, hdr) in POST_ROUTES.items():
            s, h, b = jcall(e, "POST", path, mk(), headers=hdr)
            eq(s, st, "%s %s status" % (mode, route))
            route_err(route, b, ds, oc, ot, cc, ctyp, "%s %s" % (mode, route), oa_param=param)
            if mode == "throttle":
                eq(h.get("Retry-After"), "7", "%s Retry-After" % route)
            else:
                eq(h.get("Retry-After"), None, "%s %s no Retry-After" % (mode, route))
        eq(e.ds_stats()["faults_fired"].get(mode), 4, mode + " fired")
    e.ds_set(fail="throttle")
    _, h, _ = call(e, "POST", NATIVE, native_body())
    eq(h.get("Retry-After"), "1", "default Retry-After")
    e.ds_set(fail="moderation")
    _, _, b = jcall(e, "POST", NATIVE, native_body())
    eq(b["message"], "Input data may contain inappropriate content.", "moderation message")


def test_fault_http502_malformed(e):
    e.ds_set(fail="http502_html")
    for route, (path, mk, hdr) in POST_ROUTES.items():
        s, h, raw = call(e, "POST", path, mk(), headers=hdr)
        eq(s, 502, route + " 502")
        check(h.get("Content-Type", "").startswith("text/html"), route + " html")
        check(b"<html>" in raw, route + " html body")
    e.ds_set(fail="malformed")
    for route, (path, mk, hdr) in POST_ROUTES.items():
        s, h, raw = call(e, "POST", path, mk(), headers=hdr)
        eq(s, 200, route + " malformed status")
        check(h.get("Content-Type", "").startswith("application/json"), route + " json type")
        eq(int(h.get("Content-Length")), len(raw), route + " Content-Length")
        try:
            json.loads(raw.decode())
            raise AssertionError(route + ": malformed body parsed")
        except ValueError:
            pass
    _, _, raw = call(e, "POST", NATIVE, native_body())
    eq(raw, b'{"output": {"choices": [', "native malformed body")


def test_fault_reset(e):
    e.ds_set(fail="reset")
    for route, (path, mk, hdr) in POST_ROUTES.items():
        try:
            s, _, _ = call(e, "POST", path, mk(), headers=hdr)
            raise AssertionError("%s: answered %d" % (route, s))
        except (ConnectionError, http.client.HTTPException, urllib.error.URLError) as err:
            check(not isinstance(err, urllib.error.HTTPError), route + " HTTP error")
    st = e.ds_stats()
    eq(st["faults_fired"].get("reset"), 4, "reset fired")
    eq([r["status"] for r in st["request_log"]], [0] * 4, "no status logged")
    eq(st["answered"], {}, "nothing answered")


def test_fault_hang(e):
    e.ds_set(fail="hang")
    conn = http.client.HTTPConnection("127.0.0.1", e.ds_port, timeout=0.5)
    try:
        conn.request("POST", NATIVE, json.dumps(native_body()),
                     {"Authorization": "Bearer " + KEY, "Content-Type": "application/json"})
        wait(lambda: e.ds_stats()["in_flight"].get("native") == 1, 5, "the request to arrive")
        t0 = time.time()
        try:
            conn.getresponse()
            raise AssertionError("hang answered")
        except socket.timeout:
            pass
        check(time.time() - t0 < 3, "client timeout honoured")
        eq(e.ds_stats()["in_flight"].get("native"), 1, "still hanging while the client waits")
    finally:
        conn.close()
    # the stand-in notices the client went away and lets go of the request
    wait(lambda: e.ds_stats()["in_flight"].get("native") == 0, 5, "the hang to end")
    st = e.ds_stats()
    eq(st["faults_fired"].get("hang"), 1, "hang fired")
    eq(st["request_log"][-1]["status"], 0, "no answer logged")
    eq(st["answered"], {}, "nothing answered")
    # through urllib too, on the compatible route
    try:
        call(e, "POST", COMPAT, chat_body(), timeout=0.5)
        raise AssertionError("hang answered")
    except (socket.timeout, urllib.error.URLError) as err:
        check(not isinstance(err, urllib.error.HTTPError), "HTTP error")
    wait(lambda: e.ds_stats()["in_flight"].get("compatible") == 0, 5, "the second hang to end")
    eq(e.ds_stats()["faults_fired"].get("hang"), 2, "hang fired twice")


def test_fail_routes(e):
    e.ds_set(fail="http500", fail_routes=["openai"])
    eq(call(e, "POST", NATIVE, native_body())[0], 200, "native unaffected")
    eq(call(e, "POST", COMPAT, chat_body())[0], 200, "compatible unaffected")
    eq(call(e, "POST", OPENAI, chat_body())[0], 500, "openai faulted")
    tid = submit(e)
    eq(call(e, "GET", TASKS + tid)[0], 200, "task unaffected")
    # a download fault only when download is named
    e.ds_set(task_ms=0)
    tid = submit(e)
    wait_status(e, tid, "SUCCEEDED")
    e.ds_set(fail="http500")
    eq(call(e, "GET", "/results/%s.png" % tid, key=None)[0], 200, "download not a default route")
    e.ds_set(fail="http500", fail_routes=["download"])
    s, h, raw = call(e, "GET", "/results/%s.png" % tid, key=None)
    eq(s, 500, "download 500")
    check(b"<Code>InternalError</Code>" in raw, "OSS error body")
    e.ds_set(fail="malformed", fail_routes=["download"])
    s, _, raw = call(e, "GET", "/results/%s.png" % tid, key=None)
    eq(s, 200, "truncated PNG status")
    try:
        parse_png(raw)
        raise AssertionError("truncated PNG parsed")
    except (AssertionError, struct.error, zlib.error) as err:
        check("parsed" not in str(err), str(err))


def test_fail_times(e):
    e.ds_set(fail="http500", fail_times=2)
    got = [call(e, "POST", NATIVE, native_body())[0] for _ in range(4)]
    eq(got, [500, 500, 200, 200], "fail_times 2")
    e.ds_set(fail="http500", fail_times=2)      # unchanged settings: no restart
    eq(call(e, "POST", NATIVE, native_body())[0], 200, "same settings, no restart")
    e.ds_set(fail="http500", fail_times=1)      # changed: the count restarts
    got = [call(e, "POST", NATIVE, native_body())[0] for _ in range(2)]
    eq(got, [500, 200], "fail_times 1 after a change")
    e.ds_set(fail="throttle", fail_times=1)     # a new mode restarts it too
    eq([call(e, "POST", NATIVE, native_body())[0] for _ in range(2)], [429, 200], "new mode")
    e.ds_set(fail="http500", fail_times=1, fail_routes=["compatible"])
    eq(call(e, "POST", NATIVE, native_body())[0], 200, "other route does not use a count")
    eq([call(e, "POST", COMPAT, chat_body())[0] for _ in range(2)], [500, 200],
       "fail_routes change restarts")
    ff = e.ds_stats()["faults_fired"]
    eq(ff, {"http500": 4, "throttle": 1}, "faults_fired")


def test_max_concurrency(e):
    e.ds_set(latency_ms=2000, max_concurrency=2)
    barrier = threading.Barrier(4)
    results = []

    def one():
        barrier.wait()
        s, _, b = jcall(e, "POST", NATIVE, native_body())
        results.append((s, b))
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    eq(sorted(s for s, _ in results), [200, 200, 429, 429], "statuses")
    for s, b in results:
        if s == 429:
            ds_err(b, "Throttling.RateQuota", "over concurrency")
    st = e.ds_stats()
    eq(st["faults_fired"].get("over_concurrency"), 2, "over_concurrency counted")
    check(st["max_concurrency"]["native"] >= 3, "max in flight seen")
    eq(st["in_flight"]["native"], 0, "nothing in flight")
    # the limit counts all LLM routes together; openai answers in its own shape
    e.ds_set(latency_ms=2000, max_concurrency=1)
    t = threading.Thread(target=lambda: call(e, "POST", NATIVE, native_body()))
    t.start()
    wait(lambda: e.ds_stats()["in_flight"].get("native") == 1, 5, "native in flight")
    s, h, b = jcall(e, "POST", OPENAI, chat_body())
    t.join(10)
    eq(s, 429, "openai over the limit")
    oa_err(b, "rate_limit_exceeded", "requests", False, "openai over concurrency")
    eq(h.get("Retry-After"), "1", "Retry-After")
    check(e.ds_stats()["max_llm_in_flight"] >= 2, "max_llm_in_flight")


# --------------------------------------------------------------------------------------------
# wanx tasks and downloads
# --------------------------------------------------------------------------------------------

def test_submit_validation(e):
    s, _, b = jcall(e, "POST", SUBMIT, submit_body())
    eq(s, 403, "no async header")
    ds_err(b, "AccessDenied", "no async header")
    eq(b["message"], "current user api does not support synchronous calls", "403 message")
    for size in ("1024x1024", "256*256", "1024*2048", "abc", "1441*1024"):
        s, _, b = jcall(e, "POST", SUBMIT, submit_body(size=size), headers=ASYNC)
        eq(s, 400, "size " + size)
        ds_err(b, "InvalidParameter", "size " + size)
    for size in ("512*512", "1440*1440", "768*1344"):
        eq(call(e, "POST", SUBMIT, submit_body(size=size), headers=ASYNC)[0], 200, size)
    s, _, b = jcall(e, "POST", SUBMIT, submit_body(prompt=""), headers=ASYNC)
    eq(s, 400, "empty prompt")
    ds_err(b, "InvalidParameter", "empty prompt")
    s, _, b = jcall(e, "POST", SUBMIT, submit_body(n=5), headers=ASYNC)
    eq(s, 400, "n 5")
    s, _, b = jcall(e, "POST", SUBMIT, b"{", headers=ASYNC)
    eq(s, 400, "invalid JSON")
    ds_err(b, "InvalidParameter", "invalid JSON")


def test_task_lifecycle(e):
    e.ds_set(task_ms=6000)
    s, _, b = jcall(e, "POST", SUBMIT, submit_body(size="768*512"), headers=ASYNC)
    eq(s, 200, "submit")
    eq(set(b), {"output", "request_id"}, "submit keys")
    eq(set(b["output"]), {"task_status", "task_id"}, "submit output keys")
    eq(b["output"]["task_status"], "PENDING", "submit status")
    tid = b["output"]["task_id"]
    check(UUID_RX.match(tid), "task id")
    p = poll(e, tid)
    eq(set(p), {"request_id", "output"}, "pending keys")
    eq(p["output"]["task_status"], "PENDING", "first poll")
    eq(set(p["output"]), {"task_id", "task_status", "submit_time"}, "pending output keys")
    check(TIME_RX.match(p["output"]["submit_time"]), "submit_time format")
    p = wait_status(e, tid, "RUNNING")
    check("scheduled_time" in p["output"] and "results" not in p["output"], "running fields")
    eq(p["output"]["task_metrics"], {"TOTAL": 1, "SUCCEEDED": 0, "FAILED": 0}, "running metrics")
    p = wait_status(e, tid, "SUCCEEDED")
    o = p["output"]
    eq(set(o), {"task_id", "task_status", "submit_time", "scheduled_time", "end_time",
                "results", "task_metrics"}, "succeeded output keys")
    check(o["submit_time"] <= o["scheduled_time"] <= o["end_time"], "times ordered")
    eq(o["task_metrics"], {"TOTAL": 1, "SUCCEEDED": 1, "FAILED": 0}, "metrics")
    eq(p["usage"], {"image_count": 1}, "usage")
    eq(len(o["results"]), 1, "one result")
    r = o["results"][0]
    eq((r["orig_prompt"], r["actual_prompt"]), ("a lake at dusk", "a lake at dusk"), "prompts")
    u = urllib.parse.urlsplit(r["url"])
    eq(u.netloc, "127.0.0.1:%d" % e.ds_port, "url host")
    eq(u.path, "/results/%s.png" % tid, "url path")
    eq(set(urllib.parse.parse_qs(u.query)), {"Expires", "OSSAccessKeyId", "Signature"},
       "pre-signed query")
    # the download, with its query, without a key
    s, h, raw = call(e, "GET", r["url"][len(e.ds_base):], key=None)
    eq(s, 200, "download")
    eq(h.get("Content-Type"), "image/png", "content type")
    png = parse_png(raw)
    eq((png["w"], png["h"]), (768, 512), "PNG size")
    eq(e.ds_stats()["downloads"], 1, "downloads")
    # the same seed gives the same colour, another seed another colour
    e.ds_set(task_ms=0)
    same, other = submit(e, seed=42), submit(e, seed=43)
    c1 = parse_png(call(e, "GET", "/results/%s.png" % same, key=None)[2])["pixel"]
    c2 = parse_png(call(e, "GET", "/results/%s.png" % other, key=None)[2])["pixel"]
    eq(c1, png["pixel"], "same seed, same colour")
    check(c1 != c2, "another seed, another colour")
    # n = 2: two URLs, both served
    tid = submit(e, n=2)
    o = wait_status(e, tid, "SUCCEEDED")["output"]
    eq(len(o["results"]), 2, "two results")
    eq(o["task_metrics"]["TOTAL"], 2, "TOTAL 2")
    for res in o["results"]:
        eq(call(e, "GET", urllib.parse.urlsplit(res["url"]).path, key=None)[0], 200, res["url"])


def test_task_failed(e):
    e.ds_set(task_ms=5000, fail="task_failed")
    tid = submit(e)
    o = poll(e, tid)["output"]
    eq(o["task_status"], "FAILED", "failed")
    eq((o["code"], o["message"]), ("InternalError.Algo", "Algorithm process error."), "default")
    eq(set(o), {"task_id", "task_status", "submit_time", "scheduled_time", "end_time", "code",
                "message"}, "failed keys")
    eq(poll(e, tid)["output"]["task_status"], "FAILED", "stays failed")
    e.ds_set(task_ms=5000, fail="task_failed", task_error_code="InvalidParameter",
             task_error_message="The size is not match")
    o = poll(e, submit(e))["output"]
    eq((o["code"], o["message"]), ("InvalidParameter", "The size is not match"), "custom")
    e.ds_set(task_ms=5000, fail="moderation", fail_routes=["task"])
    o = poll(e, submit(e))["output"]
    eq((o["task_status"], o["code"]), ("FAILED", "DataInspectionFailed"), "output moderation")
    eq(o["message"], "Output data may contain inappropriate content.", "moderation message")
    # fail_times counts tasks, not polls; a finished task does not use the count
    e.ds_set(task_ms=0)
    done = submit(e)
    wait_status(e, done, "SUCCEEDED")
    e.ds_set(task_ms=5000, fail="task_failed", fail_times=1)
    eq(poll(e, done)["output"]["task_status"], "SUCCEEDED", "finished task unaffected")
    a, b = submit(e), submit(e)
    eq(poll(e, a)["output"]["task_status"], "FAILED", "first task fails")
    eq(poll(e, a)["output"]["task_status"], "FAILED", "first task stays failed")
    check(poll(e, b)["output"]["task_status"] in ("PENDING", "RUNNING"), "second task lives")
    st = e.ds_stats()
    eq(st["tasks"]["failed"], 4, "failed counted")
    eq(st["faults_fired"], {"task_failed": 3, "moderation": 1}, "faults_fired")
    eq(call(e, "GET", "/results/%s.png" % a, key=None)[0], 404, "no image of a failed task")


def test_task_unknown(e):
    o = poll(e, "6f1d1a4e-0000-4000-8000-000000000000")
    eq(o["output"], {"task_id": "6f1d1a4e-0000-4000-8000-000000000000",
                     "task_status": "UNKNOWN"}, "unknown id")
    check(UUID_RX.match(o["request_id"]), "request_id")
    e.ds_set(task_ms=0)
    tid = submit(e)
    e.ds_set(task_ms=0, fail="task_unknown", fail_times=1)
    eq(poll(e, tid)["output"], {"task_id": tid, "task_status": "UNKNOWN"}, "task_unknown")
    eq(poll(e, tid)["output"]["task_status"], "SUCCEEDED", "after fail_times")


def test_task_cancel(e):
    e.ds_set(task_ms=60000)                 # PENDING for 6 s
    tid = submit(e)
    s, _, b = jcall(e, "POST", TASKS + tid + "/cancel", b"")
    eq(s, 200, "cancel a pending task")
    eq(set(b), {"request_id"}, "cancel answer keys")
    o = poll(e, tid)["output"]
    eq(o["task_status"], "CANCELED", "canceled")
    eq(set(o), {"task_id", "task_status", "submit_time", "end_time"}, "canceled keys")
    eq(call(e, "GET", "/results/%s.png" % tid, key=None)[0], 404, "no image of a canceled task")
    refused = ("UnsupportedOperation", "Failed to cancel the task, please confirm if the task "
               "is in PENDING status.")
    for what, task_id in (("a canceled task", tid),
                          ("an unknown task", "6f1d1a4e-0000-4000-8000-000000000000")):
        s, _, b = jcall(e, "POST", TASKS + task_id + "/cancel", b"")
        eq(s, 400, what)
        eq((b["code"], b["message"]), refused, what)
        check(UUID_RX.match(b["request_id"]), what + ": request_id")
    e.ds_set(task_ms=100)                   # a task past PENDING cannot be canceled
    done = submit(e)
    wait_status(e, done, "SUCCEEDED")
    eq(jcall(e, "POST", TASKS + done + "/cancel", b"")[0], 400, "a finished task")
    eq(poll(e, done)["output"]["task_status"], "SUCCEEDED", "still succeeded")
    eq(call(e, "POST", TASKS + done + "/cancel", b"", key=None)[0], 401, "a key is needed")


def test_task_route_faults(e):
    e.ds_set(task_ms=0)
    tid = submit(e)
    e.ds_set(fail="throttle", fail_routes=["task"])
    s, h, b = jcall(e, "GET", TASKS + tid)
    eq(s, 429, "task throttled")
    ds_err(b, "Throttling.RateQuota", "task throttle")
    eq(h.get("Retry-After"), "1", "Retry-After")
    e.ds_set(fail="http500", fail_routes=["task"])
    s, _, b = jcall(e, "GET", TASKS + tid)
    eq(s, 500, "task 500")
    ds_err(b, "InternalError", "task 500")
    e.ds_set(fail="bad_param", fail_routes=["task"])     # not a task-route mode
    eq(call(e, "GET", TASKS + tid)[0], 200, "bad_param ignored on task")


def test_download_controls(e):
    e.ds_set(task_ms=0, result_host="localhost:%d" % e.ds_port)
    tid = submit(e, size="512*512")
    url = wait_status(e, tid, "SUCCEEDED")["output"]["results"][0]["url"]
    eq(urllib.parse.urlsplit(url).netloc, "localhost:%d" % e.ds_port, "result_host")
    path = urllib.parse.urlsplit(url).path
    base = call(e, "GET", path, key=None)[2]
    e.ds_set(image_pad_bytes=100000)
    s, _, raw = call(e, "GET", path, key=None)
    eq(s, 200, "padded download")
    eq(len(raw), len(base) + 100000 + 20, "padded size")
    png = parse_png(raw)
    eq(len(png["text"]), len(b"Comment\x00") + 100000, "tEXt size")
    check(b"tEXt" in png["types"], "tEXt chunk")
    e.ds_set(download_redirect="http://127.0.0.1:9/elsewhere.png")
    s, h, raw = call(e, "GET", path, key=None)
    eq(s, 302, "redirect")
    eq(h.get("Location"), "http://127.0.0.1:9/elsewhere.png", "Location")
    e.ds_set()
    s, h, raw = call(e, "GET", "/results/00000000-0000-0000-0000-000000000000.png", key=None)
    eq(s, 404, "unknown image")
    check(b"NoSuchKey" in raw, "OSS error")
    st = e.ds_stats()
    eq(st["downloads"], 2, "downloads counted (not the redirect or the 404)")
    dl = [r for r in st["request_log"] if r["route"] == "download"]
    check(all(not r["authz_header"] for r in dl), "no key sent to downloads")


def test_max_running(e):
    e.ds_set(task_ms=2000)
    ids = [submit(e) for _ in range(3)]
    for tid in ids:
        wait_status(e, tid, "SUCCEEDED")
    t = e.ds_stats()["tasks"]
    eq(t, {"submitted": 3, "succeeded": 3, "failed": 0, "max_running": 3}, "tasks")
    e.ds_set(task_ms=300)
    a = submit(e)
    wait_status(e, a, "SUCCEEDED")
    b = submit(e)
    wait_status(e, b, "SUCCEEDED")
    eq(e.ds_stats()["tasks"]["max_running"], 3, "later sequential tasks keep the max")
    call(e, "POST", "/_standin/reset")
    e.ds_set(task_ms=300)
    for tid in (submit(e), ):
        wait_status(e, tid, "SUCCEEDED")
    eq(e.ds_stats()["tasks"], {"submitted": 1, "succeeded": 1, "failed": 0, "max_running": 1},
       "after a reset")


# --------------------------------------------------------------------------------------------
# Misc routes and statistics
# --------------------------------------------------------------------------------------------

def test_trailing_slash_and_unknown(e):
    eq(call(e, "POST", NATIVE + "/", native_body())[0], 200, "native/")
    eq(call(e, "POST", COMPAT + "/", chat_body())[0], 200, "compatible/")
    eq(call(e, "POST", OPENAI + "/", chat_body())[0], 200, "openai/")
    eq(call(e, "POST", SUBMIT + "/", submit_body(), headers=ASYNC)[0], 200, "submit/")
    eq(call(e, "GET", "/_standin/stats/")[0], 200, "stats/")
    eq(call(e, "GET", "/api/v1/nothing")[0], 404, "unknown path")
    eq(call(e, "GET", NATIVE)[0], 405, "wrong method")


def test_stats(e):
    call(e, "POST", NATIVE, native_body())
    call(e, "POST", NATIVE, native_body(), key=None)
    call(e, "POST", OPENAI, chat_body())
    e.ds_set(fail="http500", fail_routes=["openai"])
    call(e, "POST", OPENAI, chat_body())
    s = e.ds_stats()
    eq(set(s), {"requests", "faults_fired", "answered", "max_concurrency", "in_flight",
                "max_llm_in_flight", "request_log", "tasks", "downloads"}, "stats keys")
    eq(s["requests"], {"native": 2, "openai": 2}, "requests")
    eq(s["answered"], {"native": {"200": 1, "401": 1}, "openai": {"200": 1, "500": 1}},
       "answered")
    eq(s["faults_fired"], {"http500": 1}, "faults_fired")
    eq(s["max_concurrency"], {"native": 1, "openai": 1}, "max_concurrency")
    eq(s["in_flight"].get("native"), 0, "in_flight")
    log = s["request_log"]
    eq([(r["route"], r["status"], r["auth"]) for r in log],
       [("native", 200, True), ("native", 401, False), ("openai", 200, True),
        ("openai", 500, True)], "request_log")
    check(all(r["t"] <= r["t_done"] for r in log), "t <= t_done")
    eq(log[-1]["fault"], "http500", "fault in the log")
    # the stats file is the same JSON, rewritten after the last request
    with open(e.ds_stats_file) as f:
        fs = json.load(f)
    eq(fs["requests"], s["requests"], "stats file requests")
    eq(len(fs["request_log"]), 4, "stats file log")
    eq(call(e, "POST", "/_standin/reset")[0], 200, "reset")
    s = e.ds_stats()
    eq((s["requests"], s["answered"], s["faults_fired"], s["request_log"], s["downloads"]),
       ({}, {}, {}, [], 0), "zeroed")
    eq(s["tasks"], {"submitted": 0, "succeeded": 0, "failed": 0, "max_running": 0},
       "tasks zeroed")


def test_sigterm_removes_port_file(e):
    d = tempfile.mkdtemp(prefix="ds-standin-sig-")
    port_file = os.path.join(d, "port")
    with open(os.path.join(d, "log"), "w") as log:
        p = subprocess.Popen(["/usr/bin/python3",
                              os.path.join(ROOT, "tests/standins/dashscope_standin.py"),
                              "--port", "0", "--port-file", port_file], stdout=log, stderr=log)
    try:
        wait(lambda: os.path.exists(port_file), 10, "the port file")
        port = int(open(port_file).read())
        eq(call(e, "POST", NATIVE, native_body(), base="http://127.0.0.1:%d" % port)[0], 200,
           "second instance answers")
        p.send_signal(signal.SIGTERM)
        eq(p.wait(timeout=10), 0, "exit status")
        check(not os.path.exists(port_file), "port file removed")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        subprocess.run(["rm", "-rf", d])


TESTS = [test_native_ok, test_native_bad_requests, test_chat_ok, test_chat_bad_requests,
         test_auth, test_no_auth_routes, test_answer_styles, test_latency,
         test_fault_json_modes, test_fault_http502_malformed, test_fault_reset, test_fault_hang,
         test_fail_routes, test_fail_times, test_max_concurrency, test_submit_validation,
         test_task_lifecycle, test_task_failed, test_task_unknown, test_task_cancel,
         test_task_route_faults,
         test_download_controls, test_max_running, test_trailing_slash_and_unknown, test_stats,
         test_sigterm_removes_port_file]


def main(only):
    names = {t.__name__ for t in TESTS}
    unknown = [n for n in only if n not in names]
    if unknown:
        print("unknown tests: %s" % " ".join(unknown))
        return 2
    e = Env(None, ROOT)
    passed = failed = 0
    try:
        p = e.start_dashscope()
        for t in TESTS:
            if only and t.__name__ not in only:
                continue
            t0 = time.time()
            try:
                e.ds_set()
                eq(call(e, "POST", "/_standin/reset")[0], 200, "reset")
                t(e)
                passed += 1
                print("ok   %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s (%.1fs)" % (t.__name__, time.time() - t0), flush=True)
                traceback.print_exc()
                sys.stdout.flush()
            if p.poll() is not None:
                print("the stand-in exited (%s)" % p.returncode)
                failed += 1
                break
        if failed:
            print("---- %s (tail)" % p.log_path)
            print(e.log(p)[-4000:])
    except Exception:
        failed += 1
        traceback.print_exc()
    finally:
        e.stop()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
