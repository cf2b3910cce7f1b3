"""eas_client - a PAI-EAS queue client written to the official SDKs' calling conventions.

Test equipment for tripgen-scheduler: it talks to the queue the way the EAS SDKs do, so
the tests prove that those clients work unchanged. What it copies, and from where:

- Python SDK (pai-eas/eas-python-sdk, eas_prediction/queue_client.py and predict_client.py):
  URL `{endpoint}/api/predict/{service}[/{path_suffix}]`, the query built with
  urllib.parse.urlencode in the SDK's key order; headers `Authorization: <token>` (raw),
  `X-EAS-QueueService-Redis-Uid: <uuid4>`, `X-EAS-QueueService-Redis-Gid: eas`;
  `Accept: application/vnd.google.protobuf` on get and watch only (attributes, search and
  the rest are read as JSON / text); a 5000 ms socket timeout and `retry_count` 5, so a
  non-2xx answer is sent again up to 6 times in all before the error is raised; put reads
  the header `X-Eas-Queueservice-Request-Id`; get's defaults `_index_=0 _length_=1
  _timeout_=5s _raw_=false _auto_delete_=true`; truncate `DELETE ?_index_=N&_trunc_=true`;
  commit `PUT ?_indexes_=a,b`, delete `DELETE ?_indexes_=a,b`; search sends nothing for an
  index <= 0; watch is a WebSocket (`ws://` for `http://`) on
  `?_watch_=true&_index_=&_window_=&_index_only_=&_auto_commit_=[&tags]`, one binary
  DataFrameProto per message, a ping with payload "ping" every 2 s, and close() aborts the
  socket (no close handshake).
- Go SDK (pai-eas/eas-golang-sdk, eas/queue_client.go, eas/types/codec.go, types.go):
  attributes fetched first with `accept: application/vnd.google.protobuf` (AttributesProto)
  and the identity header names taken from `meta.header.user` / `meta.header.group` (it
  panics when `meta.header.user` is missing); put parses the body with
  strconv.ParseUint(body, 0, 64) and accepts 200 or 204; commit, delete, truncate and end
  need exactly 200; `POST ?_eos_=true[&_force_=true]`; get's `_timeout_` is a Go duration
  string (time.Duration.String(): "0s", "5s", "1m0s", "1.5s", "500ms"); the HTTP watch
  (no upgrade) reads `[4-byte big-endian length][DataFrameProto]` records.

The protobuf classes are built at run time from a FileDescriptorProto written here (the
SDKs' queueservice.proto, package `streaming`), so nothing is generated at build time.
Needs Debian's python3-requests, python3-websocket and python3-protobuf.
"""
import base64
import json
import socket
import struct
import threading
import time
import urllib.parse
import uuid

import requests
import websocket
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

HEADER_UID = "X-EAS-QueueService-Redis-Uid"
HEADER_GID = "X-EAS-QueueService-Redis-Gid"
HEADER_REQUEST_ID = "X-Eas-Queueservice-Request-Id"
HEADER_AUTHORIZATION = "Authorization"
PROTOBUF = "application/vnd.google.protobuf"


# -- protobuf messages (queueservice.proto of the SDKs) ----------------------------------
def _build_messages():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="queueservice.proto", package="streaming",
                                             syntax="proto3")

    def map_field(msg, field_name, entry_name, number):
        entry = msg.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        msg.field.add(name=field_name, number=number, type=F.TYPE_MESSAGE,
                      label=F.LABEL_REPEATED,
                      type_name=".streaming.%s.%s" % (msg.name, entry_name))

    df = fdp.message_type.add(name="DataFrameProto")
    df.field.add(name="index", number=1, type=F.TYPE_UINT64, label=F.LABEL_OPTIONAL)
    map_field(df, "tags", "TagsEntry", 2)
    df.field.add(name="data", number=3, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    df.field.add(name="message", number=4, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    dfl = fdp.message_type.add(name="DataFrameListProto")
    dfl.field.add(name="index", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".streaming.DataFrameProto")
    attrs = fdp.message_type.add(name="AttributesProto")
    map_field(attrs, "attributes", "AttributesEntry", 1)

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    classes = {}
    for name in ("DataFrameProto", "DataFrameListProto", "AttributesProto"):
        desc = pool.FindMessageTypeByName("streaming." + name)
        if hasattr(message_factory, "GetMessageClass"):
            classes[name] = message_factory.GetMessageClass(desc)
        else:
            classes[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return classes


_MSG = _build_messages()
DataFrameProto = _MSG["DataFrameProto"]
DataFrameListProto = _MSG["DataFrameListProto"]
AttributesProto = _MSG["AttributesProto"]


class DataFrame:
    """One frame, as the SDKs hand it out."""

    def __init__(self, index, tags, data, message=""):
        self.index, self.tags, self.data, self.message = int(index), dict(tags), bytes(data), \
            message

    def __repr__(self):
        return "DataFrame(index=%d, tags=%r, data=%r%s)" % (
            self.index, self.tags, self.data[:60], ", message=%r" % self.message
            if self.message else "")


def decode_frame(raw):
    """A DataFrameProto (one WebSocket message, one HTTP-watch record)."""
    m = DataFrameProto()
    m.ParseFromString(raw)
    return DataFrame(m.index, m.tags, m.data, m.message)


def decode_frame_list(raw):
    """A DataFrameListProto (a protobuf get answer; empty bytes = no frames)."""
    m = DataFrameListProto()
    m.ParseFromString(raw)
    return [DataFrame(f.index, f.tags, f.data, f.message) for f in m.index]


def decode_frame_list_json(text):
    """The JSON get answer: [{"index":N,"tags":{},"data":"<base64>","message":""}]."""
    out = []
    for f in json.loads(text):
        out.append(DataFrame(f["index"], f.get("tags") or {}, base64.b64decode(f["data"]),
                             f.get("message", "")))
    return out


def decode_attributes(raw):
    m = AttributesProto()
    m.ParseFromString(raw)
    return dict(m.attributes)


def encode_frame(index, tags, data, message=""):
    m = DataFrameProto(index=index, data=data, message=message)
    for k, v in tags.items():
        m.tags[k] = v
    return m.SerializeToString()


class QueueError(Exception):
    """A non-2xx answer (after the SDK's retries), like the SDK's PredictException."""

    def __init__(self, status, body, attempts=1):
        super().__init__("HTTP %d: %r (after %d attempts)" % (status, body, attempts))
        self.status, self.body, self.attempts = status, body, attempts


def go_duration(seconds):
    """time.Duration.String() for the values the tests use."""
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return "%gms" % (seconds * 1000)
    if seconds < 60:
        return "%gs" % seconds
    m, s = divmod(seconds, 60)
    return "%dm%gs" % (m, s)


# -- the Python SDK's QueueClient ---------------------------------------------------------
class QueueClient:
    """eas_prediction.QueueClient's calling conventions over python3-requests."""

    def __init__(self, endpoint, service_name, token="", uid=None, gid="eas", path_suffix="",
                 timeout_ms=5000, retry_count=5):
        self.endpoint = endpoint.rstrip("/")
        self.service_name = service_name
        self.token = token
        self.uid = uid if uid is not None else str(uuid.uuid4())
        self.gid = gid
        self.path_suffix = path_suffix
        self.timeout = timeout_ms       # ms, like PredictClient.timeout
        self.retry_count = retry_count  # like PredictClient.retry_count
        self.session = requests.Session()
        self.attempts = 0               # HTTP requests sent (retries included)
        self.headers = {}
        self.watch_sock = None
        self.watch_lock = threading.Lock()

    def set_timeout(self, timeout_ms):
        self.timeout = timeout_ms

    # -- plumbing ------------------------------------------------------------------------
    def _with_identity(self):
        headers = dict(self.headers)
        headers[HEADER_AUTHORIZATION] = self.token
        headers[HEADER_UID] = self.uid
        headers[HEADER_GID] = self.gid
        return headers

    def _build_url(self, query, websocket=False):
        if self.path_suffix == "":
            url = "%s/api/predict/%s" % (self.endpoint, self.service_name)
        else:
            url = "%s/api/predict/%s/%s" % (self.endpoint, self.service_name, self.path_suffix)
        if websocket:
            url = url.replace("http://", "ws://").replace("https://", "wss://")
            if not url.startswith("ws://") and not url.startswith("wss://"):
                url = "ws://" + url
        qs = urllib.parse.urlencode(query)
        if qs:
            url += "?" + qs
        return url

    def _do_request(self, url, method, headers, body=None):
        """Send; a non-2xx answer is sent again, retry_count + 1 times in all (the SDK)."""
        resp = None
        for i in range(self.retry_count + 1):
            self.attempts += 1
            resp = self.session.request(method, url, headers=headers, data=body,
                                        timeout=self.timeout / 1000.0)
            if resp.status_code // 100 != 2:
                continue
            return resp
        raise QueueError(resp.status_code, resp.content, self.retry_count + 1)

    def request(self, method, query=None, body=None, headers=None, identity=True,
                accept=None, path_suffix=None, timeout=None):
        """One raw request, no retries: for tests that look at exact codes and bodies."""
        saved = self.path_suffix
        if path_suffix is not None:
            self.path_suffix = path_suffix
        try:
            url = self._build_url(query or {})
        finally:
            self.path_suffix = saved
        h = self._with_identity() if identity else {}
        if accept:
            h["Accept"] = accept
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        self.attempts += 1
        return self.session.request(method, url, headers=h, data=body,
                                    timeout=timeout if timeout is not None
                                    else self.timeout / 1000.0)

    def _process_indexes(self, indexes, method, extra=None, body=None, headers=None):
        query = {"_indexes_": ",".join(str(i) for i in indexes)}
        query.update(extra or {})
        h = self._with_identity()
        h.update(headers or {})
        return self._do_request(self._build_url(query), method, h, body).content

    # -- the SDK's operations --------------------------------------------------------------
    def put(self, data, tags=None):
        """-> (index as the body's text, request id)."""
        resp = self._do_request(self._build_url(tags or {}), "POST", self._with_identity(),
                                data)
        return resp.content.decode("utf-8"), resp.headers[HEADER_REQUEST_ID]

    def put_priority(self, data, tags=None, header=None):
        """A put with _priority_=1, or with the priority header (its name from attributes)."""
        h = self._with_identity()
        q = dict(tags or {})
        if header:
            h[header] = "1"
        else:
            q["_priority_"] = "1"
        resp = self._do_request(self._build_url(q), "POST", h, data)
        return resp.content.decode("utf-8"), resp.headers[HEADER_REQUEST_ID]

    def attributes(self):
        resp = self._do_request(self._build_url({"_attrs_": "true"}), "GET",
                                self._with_identity())
        return json.loads(resp.content.strip().decode("utf-8"))

    def search(self, index):
        if not (isinstance(index, int) and index > 0):
            return {}
        resp = self._do_request(self._build_url({"_search_": "true", "_index_": str(index)}),
                                "GET", self._with_identity())
        return json.loads(resp.content.strip().decode("utf-8"))

    def get(self, request_id=None, index=0, length=1, timeout="5s", auto_delete=True,
            tags=None):
        query = {
            "_index_": str(index),
            "_length_": str(length),
            "_timeout_": str(timeout),
            "_raw_": "false",
            "_auto_delete_": str(auto_delete).lower(),
        }
        if request_id is not None:
            query["requestId"] = request_id
        query.update(tags or {})
        headers = self._with_identity()
        headers["Accept"] = PROTOBUF
        resp = self._do_request(self._build_url(query), "GET", headers)
        return decode_frame_list(resp.content)

    def delete(self, index):
        if not isinstance(index, list):
            index = [index]
        return self._process_indexes(index, "DELETE").decode("utf-8")

    def commit(self, index):
        if not isinstance(index, list):
            index = [index]
        return self._process_indexes(index, "PUT")

    def truncate(self, index):
        url = self._build_url({"_index_": index, "_trunc_": "true"})
        return self._do_request(url, "DELETE", self._with_identity()).content

    # -- operations the Python SDK lacks (EAS-QUEUE-API.md; Go's End) --------------------
    def negative_commit(self, index, code="Shutdown", reason=""):
        if not isinstance(index, list):
            index = [index]
        body = urllib.parse.urlencode({"_code_": code, "_reason_": reason})
        return self._process_indexes(index, "PUT", {"_negative_": "true"}, body,
                                     {"Content-Type": "application/x-www-form-urlencoded"})

    def count(self, tags=None, priority=None):
        q = {"_count_": "true"}
        if priority is not None:
            q["_priority_"] = str(priority)
        q.update(tags or {})
        resp = self._do_request(self._build_url(q), "GET", self._with_identity())
        return int(resp.content.decode("utf-8"))

    def end(self, force=False):
        q = {"_eos_": "true"}
        if force:
            q["_force_"] = "true"
        return self._do_request(self._build_url(q), "POST", self._with_identity()).content

    # -- watch -----------------------------------------------------------------------------
    def watch_url(self, index, window, index_only=False, auto_commit=False, tags=None,
                  websocket=True):
        query = {
            "_watch_": "true",
            "_index_": index,
            "_window_": window,
            "_index_only_": str(index_only).lower(),
            "_auto_commit_": str(auto_commit).lower(),
        }
        query.update(tags or {})
        return self._build_url(query, websocket=websocket)

    def watch(self, index, window, index_only=False, auto_commit=False, tags=None,
              connect=True, ping=True):
        """A WebSocket Watcher; connect=False defers the connection to run()/connect()."""
        headers = self._with_identity()
        headers["Accept"] = PROTOBUF
        w = Watcher(self, self.watch_url(index, window, index_only, auto_commit, tags),
                    headers, ping)
        if connect:
            w.connect()
        return w

    def watch_http(self, index, window, index_only=False, auto_commit=False, tags=None,
                   read_timeout=10):
        """Go's HTTP watch: a GET without upgrade, length-prefixed DataFrameProto records."""
        url = self.watch_url(index, window, index_only, auto_commit, tags, websocket=False)
        headers = self._with_identity()
        headers["Accept"] = PROTOBUF
        return HttpWatcher(self.session, url, headers, read_timeout)


class Watcher:
    """The SDK's websocket Watcher, with a receive that can time out for tests."""

    def __init__(self, queue, url, headers, ping=True):
        self.queue, self.url, self.headers = queue, url, headers
        self.event = threading.Event()
        self.ping = ping
        self.ws = None
        self.closed = False
        self.pings_sent = 0

    def connect(self, timeout=10):
        self.ws = websocket.create_connection(self.url, header=self.headers, timeout=timeout)
        self.queue.watch_sock = self.ws
        if self.ping:
            t = threading.Thread(target=self._ping, args=(self.ws,), daemon=True)
            t.start()
        return self

    def _ping(self, ws):
        # the SDK: ws.ping("ping") every 2 s while the watcher is open
        while not self.event.wait(2):
            with self.queue.watch_lock:
                if self.closed or ws is not self.ws:
                    break
                try:
                    ws.ping("ping")
                    self.pings_sent += 1
                except Exception:
                    pass

    def recv(self, timeout=5.0):
        """-> DataFrame; None when none came within timeout seconds (pongs to the
        pinger's pings do not extend it); raises EOFError when the server closed."""
        end = time.time() + timeout
        while True:
            left = end - time.time()
            if left <= 0:
                return None
            self.ws.settimeout(left)
            try:
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
            except (websocket.WebSocketTimeoutException, socket.timeout):
                return None
            except (websocket.WebSocketConnectionClosedException, ConnectionError,
                    OSError) as e:
                raise EOFError(str(e))
            if opcode in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
                continue  # a ping is answered by websocket-client itself
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise EOFError("closed by the server")
            if opcode != websocket.ABNF.OPCODE_BINARY:
                raise AssertionError("watch frame with opcode %d, not binary: %r" %
                                     (opcode, frame.data[:100]))
            return decode_frame(frame.data)

    def recv_n(self, n, timeout=10.0):
        """Up to n frames within timeout seconds in all."""
        out = []
        end = time.time() + timeout
        while len(out) < n and time.time() < end:
            f = self.recv(max(0.05, end - time.time()))
            if f is not None:
                out.append(f)
        return out

    def recv_control(self, timeout):
        """The next frame of any kind, control frames included: (opcode, payload) or None."""
        self.ws.settimeout(timeout)
        try:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
        except (websocket.WebSocketTimeoutException, socket.timeout):
            return None
        return opcode, frame.data

    def run(self):
        """The SDK's generator (without its reconnect-forever loop)."""
        while True:
            f = self.recv(3600)
            if f is not None:
                yield f

    def close(self):
        """The SDK's close: abort the socket, no close handshake."""
        with self.queue.watch_lock:
            self.event.set()
            self.closed = True
            if self.ws is not None:
                try:
                    self.ws.abort()
                except Exception:
                    pass
                try:
                    self.ws.sock and self.ws.sock.close()
                except Exception:
                    pass
            self.queue.watch_sock = None


class ZeroLengthRecord(AssertionError):
    """The HTTP watch sent a record the Go SDK cannot read past."""


class HttpWatcher:
    """Go's httpWatcher: [4-byte big-endian length][DataFrameProto] records off a GET."""

    def __init__(self, session, url, headers, read_timeout):
        self.resp = session.get(url, headers=headers, stream=True,
                                timeout=(5, read_timeout))
        self.status = self.resp.status_code

    def _read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.resp.raw.read(n - len(buf))
            if not chunk:
                raise EOFError("stream ended after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def recv(self):
        """-> DataFrame; raises EOFError at the end of the stream, or a timeout error.

        A record of length 0 is read the way the Go SDK reads it: its
        lengthDelimitedFrameReader returns n == 0 and httpWatcher.run() then leaves
        its loop and closes the frame channel, so the watch is over for a Go client.
        """
        (length,) = struct.unpack(">I", self._read_exact(4))
        if length == 0:
            raise ZeroLengthRecord("a zero-length record: the Go SDK's httpWatcher stops "
                                   "reading here (n == 0 -> break)")
        return decode_frame(self._read_exact(length))

    def close(self):
        self.resp.close()


# -- the Go SDK's QueueClient ---------------------------------------------------------------
class GoQueueClient:
    """eas-golang-sdk's QueueClient conventions: attributes first (protobuf), identity header
    names from them, exact-200 checks."""

    def __init__(self, endpoint, queue_name, token):
        self.base = "/".join([endpoint.rstrip("/"), "api/predict", queue_name])
        self.uid = str(uuid.uuid4())
        self.gid = "eas"
        self.token = token
        self.session = requests.Session()
        self.attr = None

    def _url(self, query):
        return self.base + ("?" + urllib.parse.urlencode(sorted(query.items()))
                            if query else "")

    def obtain_attr(self):
        r = self.session.get(self._url({"_attrs_": "true"}),
                             headers={HEADER_AUTHORIZATION: self.token, "accept": PROTOBUF},
                             timeout=10)
        if r.status_code != 200:
            raise QueueError(r.status_code, r.content)
        self.attr = decode_attributes(r.content)
        return self.attr

    def _identity(self):
        if self.attr is None:
            self.obtain_attr()
        uid_header = self.attr.get("meta.header.user", "")
        gid_header = self.attr.get("meta.header.group", "")
        if not uid_header:
            raise AssertionError("malformed attributes")  # the Go SDK panics here
        h = {uid_header: self.uid, HEADER_AUTHORIZATION: self.token}
        if gid_header:
            h[gid_header] = self.gid
        return h

    def put(self, data, tags=None):
        r = self.session.post(self._url(tags or {}), data=data, headers=self._identity(),
                              timeout=10)
        rid = r.headers.get(HEADER_REQUEST_ID)
        if r.status_code not in (200, 204):
            raise QueueError(r.status_code, r.content)
        return int(r.content.decode(), 0), rid  # strconv.ParseUint(body, 0, 64)

    def get(self, index, length, timeout_s, auto_delete, tags=None):
        q = {"_index_": str(index), "_length_": str(length), "_timeout_": go_duration(timeout_s),
             "_raw_": "false", "_auto_delete_": "true" if auto_delete else "false"}
        q.update(tags or {})
        h = self._identity()
        h["Accept"] = PROTOBUF
        r = self.session.get(self._url(q), headers=h, timeout=timeout_s + 10)
        if r.status_code >= 300 or r.status_code < 200:
            raise QueueError(r.status_code, r.content)
        return decode_frame_list(r.content)

    def _exact_200(self, method, query):
        r = self.session.request(method, self._url(query), headers=self._identity(), timeout=10)
        if r.status_code != 200:
            raise QueueError(r.status_code, r.content)
        return r

    def commit(self, *indexes):
        return self._exact_200("PUT", {"_indexes_": ",".join(str(i) for i in indexes)})

    def delete(self, *indexes):
        return self._exact_200("DELETE", {"_indexes_": ",".join(str(i) for i in indexes)})

    def truncate(self, index):
        return self._exact_200("DELETE", {"_index_": str(index), "_trunc_": "true"})

    def end(self, force=False):
        q = {"_eos_": "true"}
        if force:
            q["_force_"] = "true"
        return self._exact_200("POST", q)

    def watch(self, index, window, index_only=False, auto_commit=False):
        q = {"_index_": str(index), "_window_": str(window),
             "_index_only_": "true" if index_only else "false",
             "_auto_commit_": "true" if auto_commit else "false", "_watch_": "true"}
        url = self._url(q).replace("http://", "ws://", 1)
        h = self._identity()
        h["Accept"] = PROTOBUF
        ws = websocket.create_connection(url, header=h, timeout=10,
                                         origin=self.base)  # Go: NewConfig(url, baseUrl)
        return ws
