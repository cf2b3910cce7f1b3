#!/usr/bin/python3
"""Stand-in ComfyUI server: TEST EQUIPMENT for tripgen, never shipped in the product.

Mimics the HTTP and /ws API of ComfyUI (comfyanonymous/ComfyUI server.py + execution.py) closely
enough for the worker's ComfyUI backend to be tested without a GPU: the same routes, the same
request/response shapes (including the two generations of /prompt error bodies), the same
history entries, the same cache behaviour (an identical prompt is not re-run and reports the
old filename) and the same SaveImage file naming.  Images are flat placeholder PNGs.

Standard library only; run with Debian's /usr/bin/python3:

    comfyui_standin.py --port 0 --port-file PATH --output-dir DIR
                       [--latency-ms N] [--fail MODE] [--fail-times N]
                       [--error-shape old|new] [--control-file PATH]
                       [--cache all|last|none] [--checkpoints a.safetensors,b.safetensors]
                       [--stats-file PATH]

Its "temp" and "input" directories are made beside DIR (in DIR's parent directory).

Fault modes (--fail, or "fail" in the control file, which is re-read on every request and
at the start of every job):
    none           normal behaviour
    http500        POST /prompt answers 500 with an HTML body (nothing is queued)
    reset          POST /prompt closes the connection without answering
    refuse_prompt  POST /prompt answers 400 in the selected error shape
    exec_error     the job fails: history status "error", an execution_error message whose
                   exception_message starts with "CUDA out of memory", no outputs
    hang           the job never finishes; POST /interrupt still stops it (a slow sampler)
    hang_hard      the job never finishes and ignores /interrupt (a wedged GPU)
    bad_png        GET /view of an existing image answers 200 image/png with bytes that are
                   not a PNG
    truncated_png  GET /view answers the first half of the real PNG
    ws_drop        once a job has started, every /ws socket is dropped; the job completes
    ws_refuse      GET /ws answers 404 (a proxy without WebSocket support)
    ws_hang        GET /ws is read and never answered (for 40 s)
    history_hang   GET /history/{prompt_id} is read and never answered (for 40 s)
    stats_hang     GET /system_stats is read and never answered (for 40 s)
    ws_garbage     while the sampler runs, the job's socket gets a ping, odd text and binary
                   frames and a 64x64 PNG preview that is not the output image
"fail_times" (or --fail-times) > 0 limits how often the fault fires; the count restarts
whenever the fault settings change.  See README.md beside this file.
"""

import argparse
import base64
import hashlib
import heapq
import http.server
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
import zlib

# --------------------------------------------------------------------------------------------
# Node catalogue: the subset of ComfyUI's nodes the stand-in knows, with ComfyUI's input specs.
# --------------------------------------------------------------------------------------------

SAMPLERS = ["euler", "euler_cfg_pp", "euler_ancestral", "euler_ancestral_cfg_pp", "heun",
            "heunpp2", "dpm_2", "dpm_2_ancestral", "lms", "dpm_fast", "dpm_adaptive",
            "dpmpp_2s_ancestral", "dpmpp_2s_ancestral_cfg_pp", "dpmpp_sde", "dpmpp_sde_gpu",
            "dpmpp_2m", "dpmpp_2m_cfg_pp", "dpmpp_2m_sde", "dpmpp_2m_sde_gpu", "dpmpp_3m_sde",
            "dpmpp_3m_sde_gpu", "ddpm", "lcm", "ipndm", "ipndm_v", "deis", "res_multistep",
            "ddim", "uni_pc", "uni_pc_bh2"]
SCHEDULERS = ["simple", "sgm_uniform", "karras", "exponential", "ddim_uniform", "beta",
              "normal", "linear_quadratic", "kl_optimal"]
MAX_RESOLUTION = 16384
# Images above this many pixels fail with a CUDA OOM, as a real 24 GB card would.
OOM_PIXELS = 4096 * 4096

OOM_MESSAGE = ("CUDA out of memory. Tried to allocate 2.25 GiB. GPU 0 has a total capacity of "
               "23.55 GiB of which 1.19 GiB is free. Of the allocated memory 20.61 GiB is "
               "allocated by PyTorch, and 1.24 GiB is reserved by PyTorch but unallocated. If "
               "reserved but unallocated memory is large try setting "
               "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.  See "
               "documentation for Memory Management  "
               "(https://pytorch.org/docs/stable/notes/cuda.html#environment-variables)")
OOM_TIPS = ("This error means you ran out of memory on your GPU.\n\nTIPS: If the workflow "
            "worked before you might have accidentally set the batch_size to a large number.")
OOM_TYPE = "torch.OutOfMemoryError"


def node_catalogue(checkpoints):
    """class_type -> {"input": {...}, "output": (...), "output_node": bool, "category": str}"""
    return {
        "CheckpointLoaderSimple": {
            "input": {"required": {"ckpt_name": [list(checkpoints), {
                "tooltip": "The name of the checkpoint (model) to load."}]}},
            "output": ["MODEL", "CLIP", "VAE"], "output_node": False, "category": "loaders",
            "display_name": "Load Checkpoint"},
        "EmptyLatentImage": {
            "input": {"required": {
                "width": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                "height": ["INT", {"default": 512, "min": 16, "max": MAX_RESOLUTION, "step": 8}],
                "batch_size": ["INT", {"default": 1, "min": 1, "max": 4096}]}},
            "output": ["LATENT"], "output_node": False, "category": "latent",
            "display_name": "Empty Latent Image"},
        "CLIPTextEncode": {
            "input": {"required": {
                "text": ["STRING", {"multiline": True, "dynamicPrompts": True}],
                "clip": ["CLIP"]}},
            "output": ["CONDITIONING"], "output_node": False, "category": "conditioning",
            "display_name": "CLIP Text Encode (Prompt)"},
        "KSampler": {
            "input": {"required": {
                "model": ["MODEL"],
                "seed": ["INT", {"default": 0, "min": 0, "max": 0xffffffffffffffff,
                                 "control_after_generate": True}],
                "steps": ["INT", {"default": 20, "min": 1, "max": 10000}],
                "cfg": ["FLOAT", {"default": 8.0, "min": 0.0, "max": 100.0, "step": 0.1,
                                  "round": 0.01}],
                "sampler_name": [SAMPLERS],
                "scheduler": [SCHEDULERS],
                "positive": ["CONDITIONING"],
                "negative": ["CONDITIONING"],
                "latent_image": ["LATENT"],
                "denoise": ["FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}]}},
            "output": ["LATENT"], "output_node": False, "category": "sampling",
            "display_name": "KSampler"},
        "VAEDecode": {
            "input": {"required": {"samples": ["LATENT"], "vae": ["VAE"]}},
            "output": ["IMAGE"], "output_node": False, "category": "latent",
            "display_name": "VAE Decode"},
        "SaveImage": {
            "input": {"required": {
                "images": ["IMAGE"],
                "filename_prefix": ["STRING", {"default": "ComfyUI"}]},
                "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}},
            "output": [], "output_node": True, "category": "image",
            "display_name": "Save Image"},
        "PreviewImage": {
            "input": {"required": {"images": ["IMAGE"]},
                      "hidden": {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}},
            "output": [], "output_node": True, "category": "image",
            "display_name": "Preview Image"},
        "SaveImageWebsocket": {
            "input": {"required": {"images": ["IMAGE"]}},
            "output": [], "output_node": True, "category": "api node/image",
            "display_name": "SaveImageWebsocket"},
    }


def object_info_entry(name, spec):
    return {
        "input": spec["input"],
        "input_order": {k: list(v.keys()) for k, v in spec["input"].items() if k != "hidden"},
        "output": spec["output"],
        "output_is_list": [False] * len(spec["output"]),
        "output_name": spec["output"],
        "name": name,
        "display_name": spec["display_name"],
        "description": "",
        "python_module": "nodes",
        "category": spec["category"],
        "output_node": spec["output_node"],
    }


# --------------------------------------------------------------------------------------------
# Prompt validation, after execution.validate_prompt / validate_inputs.
# --------------------------------------------------------------------------------------------

def _err(typ, message, details="", extra=None):
    return {"type": typ, "message": message, "details": details, "extra_info": extra or {}}


def validate_inputs(prompt, node_id, validated, catalogue):
    if node_id in validated:
        return validated[node_id]
    node = prompt[node_id]
    inputs = node.get("inputs", {})
    if not isinstance(inputs, dict):
        inputs = {}
    spec = catalogue[node["class_type"]]
    required = spec["input"]["required"]
    errors = []
    valid = True
    for name, info in required.items():
        if name not in inputs:
            errors.append(_err("required_input_missing", "Required input is missing", name,
                               {"input_name": name}))
            continue
        val = inputs[name]
        type_input = info[0]
        if isinstance(val, list):
            if len(val) != 2:
                errors.append(_err("bad_linked_input",
                                   "Bad linked input, must be a length-2 list of "
                                   "[node_id, slot_index]", name,
                                   {"input_name": name, "input_config": info,
                                    "received_value": val}))
                continue
            o_id = str(val[0])
            try:
                o_class = prompt[o_id]["class_type"]
                ret = catalogue[o_class]["output"]
                received = ret[val[1]]
            except Exception as ex:  # a link to a missing node or slot
                valid = False
                validated[o_id] = (False, [_err(
                    "exception_during_inner_validation", "Exception when validating inner node",
                    str(ex), {"input_name": name, "input_config": info,
                              "exception_message": str(ex),
                              "exception_type": type(ex).__name__, "traceback": [],
                              "linked_node": val})], o_id)
                continue
            if received != type_input:
                errors.append(_err("return_type_mismatch",
                                   "Return type mismatch between linked nodes",
                                   f"{name}, received_type({received}) mismatch input_type("
                                   f"{type_input})",
                                   {"input_name": name, "input_config": info,
                                    "received_type": received, "linked_node": val}))
                continue
            r = validate_inputs(prompt, o_id, validated, catalogue)
            if r[0] is False:
                valid = False
            continue
        try:
            if type_input == "INT":
                if isinstance(val, (dict, list)) or val is None:
                    raise ValueError(f"invalid literal for int(): {val!r}")
                val = int(val)
                inputs[name] = val
            elif type_input == "FLOAT":
                if isinstance(val, (dict, list)) or val is None:
                    raise ValueError(f"could not convert to float: {val!r}")
                val = float(val)
                inputs[name] = val
            elif type_input == "STRING":
                val = str(val)
                inputs[name] = val
        except Exception as ex:
            errors.append(_err("invalid_input_type",
                               f"Failed to convert an input value to a {type_input} value",
                               f"{name}, {val}, {ex}",
                               {"input_name": name, "input_config": info,
                                "received_value": val, "exception_message": str(ex)}))
            continue
        if len(info) > 1 and isinstance(info[1], dict):
            lim = info[1]
            if "min" in lim and val < lim["min"]:
                errors.append(_err("value_smaller_than_min",
                                   "Value {} smaller than min of {}".format(val, lim["min"]),
                                   name, {"input_name": name, "input_config": info,
                                          "received_value": val}))
                continue
            if "max" in lim and val > lim["max"]:
                errors.append(_err("value_bigger_than_max",
                                   "Value {} bigger than max of {}".format(val, lim["max"]),
                                   name, {"input_name": name, "input_config": info,
                                          "received_value": val}))
                continue
        if isinstance(type_input, list) and val not in type_input:
            if len(type_input) > 20:
                list_info, cfg = f"(list of length {len(type_input)})", None
            else:
                list_info, cfg = str(type_input), info
            errors.append(_err("value_not_in_list", "Value not in list",
                               f"{name}: '{val}' not in {list_info}",
                               {"input_name": name, "input_config": cfg,
                                "received_value": val}))
            continue
    ret = (False, errors, node_id) if errors or not valid else (True, [], node_id)
    validated[node_id] = ret
    return ret


def validate_prompt(prompt, catalogue, shape):
    """Returns (ok, error, good_outputs, node_errors) like execution.validate_prompt.
    shape "new": the current code (missing_node_type, node_errors {}); "old": the 2024 code
    (invalid_prompt, node_errors [])."""
    empty_ne = {} if shape == "new" else []
    if not isinstance(prompt, dict):
        return (False, _err("invalid_prompt", "Cannot execute because the prompt is not an "
                            "object of nodes.", f"prompt is a {type(prompt).__name__}"),
                [], empty_ne)
    outputs = []
    for x in prompt:
        node = prompt[x]
        if not isinstance(node, dict) or "class_type" not in node:
            title = node.get("_meta", {}).get("title") if isinstance(node, dict) else None
            if shape == "new":
                e = _err("missing_node_type",
                         f"Node '{title or f'ID #{x}'}' has no class_type. The workflow may be "
                         "corrupted or a custom node is missing.", f"Node ID '#{x}'",
                         {"node_id": x, "class_type": None, "node_title": title})
            else:
                e = _err("invalid_prompt", "Cannot execute because a node is missing the "
                         "class_type property.", f"Node ID '#{x}'")
            return (False, e, [], empty_ne)
        class_type = node["class_type"]
        if not isinstance(class_type, str) or class_type not in catalogue:
            meta = node.get("_meta") if isinstance(node.get("_meta"), dict) else {}
            title = meta.get("title", class_type)
            if shape == "new":
                e = _err("missing_node_type",
                         f"Node '{title}' not found. The custom node may not be installed.",
                         f"Node ID '#{x}'",
                         {"node_id": x, "class_type": class_type, "node_title": title})
            else:
                e = _err("invalid_prompt",
                         f"Cannot execute because node {class_type} does not exist.",
                         f"Node ID '#{x}'")
            return (False, e, [], empty_ne)
        if catalogue[class_type]["output_node"]:
            outputs.append(x)
    if not outputs:
        return (False, _err("prompt_no_outputs", "Prompt has no outputs"), [], empty_ne)

    good, errors, node_errors, validated = [], [], {}, {}
    for o in outputs:
        try:
            ok, reasons, _ = validate_inputs(prompt, o, validated, catalogue)
        except Exception as ex:
            ok, reasons = False, [_err("exception_during_validation",
                                       "Exception when validating node", str(ex),
                                       {"exception_type": type(ex).__name__,
                                        "traceback": traceback.format_tb(ex.__traceback__)})]
            validated[o] = (False, reasons, o)
        if ok:
            good.append(o)
            continue
        errors.append((o, reasons))
        for nid, result in validated.items():
            if result[0] is not True and len(result[1]) > 0:
                if nid not in node_errors:
                    node_errors[nid] = {"errors": result[1], "dependent_outputs": [],
                                        "class_type": prompt.get(nid, {}).get("class_type")}
                node_errors[nid]["dependent_outputs"].append(o)
    if not good:
        lines = [f"{e['message']}: {e['details']}" for _, errs in errors for e in errs]
        return (False, _err("prompt_outputs_failed_validation",
                            "Prompt outputs failed validation", "\n".join(lines)),
                [], node_errors)
    return (True, None, sorted(good), node_errors)


def no_prompt_body(shape):
    if shape == "old":
        return {"error": "no prompt", "node_errors": []}
    return {"error": _err("no_prompt", "No prompt provided", "No prompt provided"),
            "node_errors": {}}


def refused_body(shape, prompt):
    """What refuse_prompt answers: old shape -> ComfyUI's string error; new shape -> the
    'model file missing' validation failure a real server gives."""
    if shape == "old":
        return {"error": "no prompt", "node_errors": []}
    nid, ckpt, outs, found = "4", "sd_xl_base_1.0.safetensors", [], False
    if isinstance(prompt, dict):
        for k, n in prompt.items():
            if not isinstance(n, dict):
                continue
            if n.get("class_type") == "CheckpointLoaderSimple" and not found:
                found = True
                nid, ckpt = k, str((n.get("inputs") or {}).get("ckpt_name", ckpt))
            if n.get("class_type") in ("SaveImage", "PreviewImage", "SaveImageWebsocket"):
                outs.append(k)
    reason = _err("value_not_in_list", "Value not in list", f"ckpt_name: '{ckpt}' not in []",
                  {"input_name": "ckpt_name", "input_config": [[], {}], "received_value": ckpt})
    return {"error": _err("prompt_outputs_failed_validation", "Prompt outputs failed validation",
                          ""),
            "node_errors": {nid: {"errors": [reason], "dependent_outputs": outs or ["9"],
                                  "class_type": "CheckpointLoaderSimple"}}}


# --------------------------------------------------------------------------------------------
# PNG painting.
# --------------------------------------------------------------------------------------------

def _chunk(tag, data):
    return (struct.pack(">I", len(data)) + tag + data +
            struct.pack(">I", zlib.crc32(tag + data) & 0xffffffff))


def paint_png(width, height, seed, text, index, text_chunks):
    """RGB placeholder: a gradient whose colours/slopes come from sha256(seed, text, index)."""
    h = hashlib.sha256(f"{seed}\x00{text}\x00{index}".encode("utf-8", "replace")).digest()
    r0, g0, b0, dx, dy = h[0], h[1], h[2], h[3] % 7 + 1, h[4] % 7 + 1
    xr = bytes((r0 + x * dx * 256 // width) & 255 for x in range(width))
    diag = bytes((b0 + i) & 255 for i in range(width + 256))
    raw = bytearray()
    row = bytearray(3 * width)
    row[0::3] = xr
    for y in range(height):
        row[1::3] = bytes(((g0 + y * dy * 256 // height) & 255,)) * width
        o = y & 255
        row[2::3] = diag[o:o + width]
        raw.append(0)
        raw += row
    out = [b"\x89PNG\r\n\x1a\n",
           _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))]
    for k, v in text_chunks:
        out.append(_chunk(b"tEXt", k.encode("latin-1") + b"\x00" +
                          v.encode("latin-1", "replace")))
    out.append(_chunk(b"IDAT", zlib.compress(bytes(raw), 4)))
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# Server state, fault control, statistics.
# --------------------------------------------------------------------------------------------

FAIL_MODES = ("none", "http500", "reset", "refuse_prompt", "exec_error", "hang", "hang_hard",
              "bad_png", "truncated_png", "ws_drop", "ws_refuse", "ws_garbage", "ws_hang",
              "history_hang", "stats_hang")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# server.py BinaryEventTypes / send_image's image type numbers
PREVIEW_IMAGE = 1
IMAGE_TYPE_PNG = 2
MAX_EXECUTIONS = 5000


def log(msg):
    sys.stderr.write(f"[comfyui-standin] {msg}\n")
    sys.stderr.flush()


class JobFailed(Exception):
    def __init__(self, node_id, message, typ, interrupted=False):
        super().__init__(message)
        self.node_id, self.message, self.typ, self.interrupted = node_id, message, typ, interrupted


class Standin:
    def __init__(self, args):
        self.args = args
        self.output_dir = os.path.abspath(args.output_dir)
        os.makedirs(self.output_dir, exist_ok=True)
        # beside the output directory, so a harness that removes its own directory after
        # a SIGKILL leaves nothing behind in /tmp
        beside = os.path.dirname(self.output_dir)
        self.temp_dir = tempfile.mkdtemp(prefix="comfyui-standin-temp-", dir=beside)
        self.input_dir = tempfile.mkdtemp(prefix="comfyui-standin-input-", dir=beside)
        self.stats_file = args.stats_file or os.path.join(self.output_dir, ".stats.json")
        self.catalogue = node_catalogue([c for c in args.checkpoints.split(",") if c])
        self.lock = threading.RLock()
        self.cv = threading.Condition(self.lock)
        self.number = 0
        self.seq = 0
        self.queue = []          # heap of (number, seq, item)
        self.running = None      # item being executed
        self.history = {}        # prompt_id -> entry (insertion ordered)
        self.cache = {}          # canonical key -> {"outputs", "meta"}
        self.cache_order = []
        self.interrupt = threading.Event()
        self.stopping = threading.Event()
        self.fault_sig = None
        self.fault_fired = 0
        self.started = time.time()
        self.stats = {"requests": 0, "prompts_received": 0, "prompts_accepted": 0,
                      "prompts_rejected": 0, "prompts_http500": 0, "prompts_reset": 0,
                      "prompts_refused": 0, "executed": 0, "cached_hits": 0,
                      "exec_errors": 0, "interrupted": 0, "hung": 0, "images_written": 0,
                      "history_polls": 0, "views_served": 0, "views_missing": 0,
                      "views_bad": 0, "queue_deletes": 0, "interrupts": 0,
                      "faults_fired": 0, "ws_connections": 0, "ws_refused": 0,
                      "ws_dropped": 0, "ws_hung": 0, "ws_messages": 0, "ws_binary_frames": 0,
                      "busy_ms": 0}
        self.interrupt_targets = []   # prompt_id of each POST /interrupt, None when untargeted
        self.executions = []          # [start, end] unix times of each execution
        self.sockets = {}             # clientId -> WsClient, like PromptServer.sockets
        self.client_id = None         # PromptServer.client_id: whose prompt runs
        self.last_node_id = None
        self.write_stats()

    # ---- control -------------------------------------------------------------------------
    def control(self):
        """Current settings: CLI values overridden by the control file."""
        c = {"fail": self.args.fail, "latency_ms": self.args.latency_ms,
             "fail_times": self.args.fail_times, "error_shape": self.args.error_shape}
        path = self.args.control_file
        if path:
            try:
                with open(path, "r", encoding="utf-8") as f:
                    text = f.read()
                if text.strip():
                    data = json.loads(text)
                    if isinstance(data, dict):
                        for k in c:
                            if k in data and data[k] is not None:
                                c[k] = data[k]
            except FileNotFoundError:
                pass
            except (OSError, ValueError) as ex:
                log(f"control file {path} unreadable, using defaults: {ex}")
        if c["fail"] not in FAIL_MODES:
            log(f"unknown fail mode {c['fail']!r}, using none")
            c["fail"] = "none"
        if c["error_shape"] not in ("old", "new"):
            c["error_shape"] = "new"
        try:
            c["latency_ms"] = max(0, int(c["latency_ms"]))
            c["fail_times"] = max(0, int(c["fail_times"]))
        except (TypeError, ValueError):
            c["latency_ms"], c["fail_times"] = self.args.latency_ms, self.args.fail_times
        return c

    def fires(self, c, *modes):
        """True when the configured fault is one of modes and may still fire."""
        if c["fail"] not in modes:
            return False
        with self.lock:
            sig = (c["fail"], c["fail_times"])
            if sig != self.fault_sig:
                self.fault_sig, self.fault_fired = sig, 0
            if c["fail_times"] and self.fault_fired >= c["fail_times"]:
                return False
            self.fault_fired += 1
            self.stats["faults_fired"] += 1
        return True

    # ---- statistics ----------------------------------------------------------------------
    def bump(self, *keys):
        with self.lock:
            for k in keys:
                self.stats[k] = self.stats.get(k, 0) + 1
            self.write_stats()

    def write_stats(self):
        """Counters to {output_dir}/.stats.json, replaced atomically (readers never see a
        partial file)."""
        with self.lock:
            snap = dict(self.stats)
            snap["queue_pending"] = len(self.queue)
            snap["queue_running"] = 1 if self.running else 0
            snap["history"] = len(self.history)
            snap["interrupt_targets"] = list(self.interrupt_targets)
            snap["executions"] = [list(x) for x in self.executions]
            snap["ws_open"] = len(self.sockets)
            tmp = self.stats_file + ".tmp"
            try:
                with open(tmp, "w", encoding="utf-8") as f:
                    json.dump(snap, f, indent=1, sort_keys=True)
                os.replace(tmp, self.stats_file)
            except OSError as ex:
                log(f"cannot write {self.stats_file}: {ex}")
        return snap

    # ---- queue ---------------------------------------------------------------------------
    def put(self, item):
        with self.cv:
            self.seq += 1
            heapq.heappush(self.queue, (item[0], self.seq, item))
            self.cv.notify_all()
        self.queue_updated()

    # ---- WebSocket (server.py: PromptServer.send_json / send_bytes / queue_updated) -------
    def queue_remaining(self):
        with self.lock:
            return len(self.queue) + (1 if self.running else 0)

    def queue_updated(self):
        self.send("status", {"status": {"exec_info": {"queue_remaining":
                                                      self.queue_remaining()}}})

    def send(self, event, data, sid=None):
        """send_sync(event, data, sid): sid None broadcasts to every socket."""
        msg = json.dumps({"type": event, "data": data}).encode()
        with self.lock:
            targets = list(self.sockets.values()) if sid is None else \
                [self.sockets[sid]] if sid in self.sockets else []
        for ws in targets:
            if ws.send_frame(0x1, msg):
                with self.lock:   # counted without rewriting the stats file each time
                    self.stats["ws_messages"] += 1

    def send_image_bytes(self, png, sid):
        """send_image(): PREVIEW_IMAGE, then the image type (PNG), then the bytes."""
        with self.lock:
            ws = self.sockets.get(sid) if sid is not None else None
        if ws and ws.send_frame(0x2, struct.pack(">II", PREVIEW_IMAGE, IMAGE_TYPE_PNG) + png):
            with self.lock:
                self.stats["ws_binary_frames"] += 1

    def drop_sockets(self):
        """ws_drop: every socket goes away without a close frame, like a proxy restart."""
        with self.lock:
            targets = list(self.sockets.values())
        for ws in targets:
            ws.drop()
            self.bump("ws_dropped")

    def queue_lists(self):
        with self.lock:
            running = [self.running] if self.running else []
            pending = [e[2] for e in sorted(self.queue)]
            return running, pending

    def delete_pending(self, ids):
        n = 0
        with self.lock:
            for pid in ids:
                for i, e in enumerate(self.queue):
                    if e[2][1] == pid:
                        self.queue.pop(i)
                        heapq.heapify(self.queue)
                        n += 1
                        break
        if n:
            self.queue_updated()
        return n

    # ---- execution -----------------------------------------------------------------------
    def worker(self):
        while not self.stopping.is_set():
            with self.cv:
                while not self.queue and not self.stopping.is_set():
                    self.cv.wait(0.5)
                if self.stopping.is_set():
                    return
                _, _, item = heapq.heappop(self.queue)
                self.running = item
                self.client_id = item[3].get("client_id")
            self.write_stats()
            self.queue_updated()
            start = time.time()
            try:
                entry = self.execute(item)
            except Exception:  # a bug in the stand-in must not kill the queue
                log("internal error:\n" + traceback.format_exc())
                entry = {"prompt": item, "outputs": {}, "status": {
                    "status_str": "error", "completed": False, "messages": []}, "meta": {}}
            end = time.time()
            with self.lock:
                self.executions.append([start, end])
                del self.executions[:-MAX_EXECUTIONS]
                self.stats["busy_ms"] += int(round((end - start) * 1000))
            if entry is None:   # stopping during a hang
                return
            with self.lock:
                self.history[item[1]] = entry
                self.running = None
                sid, self.last_node_id = self.client_id, None
            self.write_stats()
            # main.py prompt_worker: after task_done, "executing" with node None
            self.send("executing", {"node": None, "prompt_id": item[1]}, sid)
            self.queue_updated()

    def execute(self, item):
        number, pid, prompt, extra_data, outputs = item
        c = self.control()
        self.interrupt.clear()   # nodes.interrupt_processing(False) at the start of execute()
        messages = []

        sid = extra_data.get("client_id")

        def add(event, data, broadcast=False):
            # PromptExecutor.add_message: history gets it; the socket too when the prompt
            # has a client_id (only its own socket) or the message is a broadcast
            d = dict(data, prompt_id=pid, timestamp=int(time.time() * 1000))
            messages.append([event, d])
            if sid is not None or broadcast:
                self.send(event, d, sid)

        add("execution_start", {})
        if self.fires(c, "ws_drop"):
            log(f"job {pid}: fault ws_drop: dropping every socket")
            threading.Timer(min(0.05, c["latency_ms"] / 4000.0), self.drop_sockets).start()
        key = canonical_key(prompt)
        with self.lock:
            hit = self.cache.get(key) if self.args.cache != "none" else None
        order = execution_order(prompt, outputs)
        executed = []
        try:
            if hit is not None:
                # SaveImageWebsocket's IS_CHANGED is time.time(): it always runs again
                add("execution_cached", {"nodes": sorted(
                    (n for n in prompt if prompt[n]["class_type"] != "SaveImageWebsocket"),
                    key=_nid_sort)})
                self.bump("cached_hits")
            else:
                add("execution_cached", {"nodes": []})
            sampler = next((n for n in order if prompt[n]["class_type"] == "KSampler"), None)
            busy_node = sampler or (order[0] if order else None)
            # a cached prompt does no GPU work: hang and exec_error only hit real runs
            if hit is None and self.fires(c, "hang", "hang_hard"):
                self.bump("hung")
                for n in order:
                    self.executing(n, pid, sid)
                    if n == busy_node:
                        break
                    executed.append(n)
                log(f"job {pid}: hanging ({c['fail']})")
                while not self.stopping.is_set():
                    if c["fail"] == "hang" and self.interrupt.is_set():
                        raise JobFailed(busy_node, "", "", interrupted=True)
                    time.sleep(0.01)
                return None
            if hit is not None:
                result = hit
                for n in order:
                    if prompt[n]["class_type"] == "SaveImageWebsocket":
                        self.run_ws_save(prompt, n, describe(prompt, order), pid, sid)
            else:
                result = self.run_nodes(prompt, order, executed, c, pid, sid)
        except JobFailed as jf:
            node_type = prompt.get(jf.node_id, {}).get("class_type") if jf.node_id else None
            if jf.interrupted:
                add("execution_interrupted", {"node_id": jf.node_id, "node_type": node_type,
                                              "executed": list(executed)}, broadcast=True)
                self.bump("interrupted")
            else:
                add("execution_error", {
                    "node_id": jf.node_id, "node_type": node_type, "executed": list(executed),
                    "exception_message": jf.message, "exception_type": jf.typ,
                    "traceback": ['  File "/ComfyUI/execution.py", line 496, in execute\n'
                                  '    output_data, output_ui, has_subgraph, has_pending_tasks'
                                  ' = await get_output_data(...)\n'],
                    "current_inputs": current_inputs(prompt, jf.node_id),
                    "current_outputs": list(outputs)})
                self.bump("exec_errors")
            return {"prompt": item, "outputs": {}, "status": {
                "status_str": "error", "completed": False, "messages": messages}, "meta": {}}
        with self.lock:
            if hit is None and self.args.cache != "none":
                if self.args.cache == "last":
                    self.cache.clear()
                self.cache[key] = result
        add("execution_success", {})
        if hit is None:
            self.bump("executed")
        return {"prompt": item, "outputs": result["outputs"], "status": {
            "status_str": "success", "completed": True, "messages": messages},
            "meta": result["meta"]}

    def executing(self, nid, pid, sid):
        with self.lock:
            self.last_node_id = nid
        self.send("executing", {"node": nid, "display_node": nid, "prompt_id": pid}, sid)

    def progress(self, value, mx, pid, nid, sid):
        self.send("progress", {"value": value, "max": mx, "prompt_id": pid, "node": nid}, sid)

    def send_garbage(self, sid):
        """ws_garbage: what a client must survive, sent while the sampler runs: a ping,
        frames that are not JSON or not ComfyUI's, short binary frames, another event type,
        and a whole PNG preview (64x64) that is not the SaveImageWebsocket node's image."""
        with self.lock:
            ws = self.sockets.get(sid) if sid is not None else None
        if not ws:
            return
        ws.send_frame(0x9, b"are you there")
        for text in (b"not json", b"[1,2]", b'{"type":"executing"}', b'{"type":7,"data":[]}',
                     b'{"type":"progress","data":{"value":"x","max":null}}',
                     b'{"type":"executing","data":{"node":["3"],"prompt_id":5}}'):
            ws.send_frame(0x1, text)
        ws.send_frame(0x2, b"")
        ws.send_frame(0x2, b"\x00\x00\x00\x01\x00")
        ws.send_frame(0x2, struct.pack(">II", 3, 2) + b"\x89PNG")
        ws.send_frame(0x2, struct.pack(">II", PREVIEW_IMAGE, IMAGE_TYPE_PNG) +
                      paint_png(64, 64, 1, "a sampler preview", 0, []))
        ws.send_frame(0xA, b"unsolicited pong")

    def run_ws_save(self, prompt, nid, info, pid, sid):
        """SaveImageWebsocket: each image as a binary preview frame, after a progress
        message (ProgressBar.update_absolute with a preview); no file, no ui output."""
        self.executing(nid, pid, sid)
        for i in range(info["batch"]):
            data = paint_png(info["width"], info["height"], info["seed"], info["text"], i, [])
            self.progress(i, info["batch"], pid, nid, sid)
            self.send_image_bytes(data, sid)

    def run_nodes(self, prompt, order, executed, c, pid=None, sid=None):
        info = describe(prompt, order)
        ui_outputs, meta = {}, {}
        for nid in order:
            ct = prompt[nid]["class_type"]
            if ct == "SaveImageWebsocket":
                if self.interrupt.is_set():
                    raise JobFailed(nid, "", "", interrupted=True)
                self.run_ws_save(prompt, nid, info, pid, sid)
                executed.append(nid)
                continue
            self.executing(nid, pid, sid)
            if ct == "KSampler":
                if info["width"] * info["height"] * info["batch"] > OOM_PIXELS:
                    raise JobFailed(nid, f"{OOM_MESSAGE}\n{OOM_TIPS}", OOM_TYPE)
                t0 = time.monotonic()
                deadline = t0 + c["latency_ms"] / 1000.0
                steps = int((prompt[nid].get("inputs") or {}).get("steps", 20) or 20)
                reports = min(4, steps)   # a few progress reports spread over the latency
                sent = 0
                while True:
                    if self.interrupt.is_set():
                        raise JobFailed(nid, "", "", interrupted=True)
                    left = deadline - time.monotonic()
                    due = reports if left <= 0 else \
                        int(reports * (time.monotonic() - t0) / max(1e-9, deadline - t0))
                    while sent < due:
                        sent += 1
                        self.progress(steps * sent // reports, steps, pid, nid, sid)
                        if sent == 1 and self.fires(c, "ws_garbage"):
                            self.send_garbage(sid)
                    if left <= 0 or self.stopping.is_set():
                        break
                    time.sleep(min(left, 0.01))
                if self.fires(c, "exec_error"):
                    raise JobFailed(nid, f"{OOM_MESSAGE}\n{OOM_TIPS}", OOM_TYPE)
            elif ct in ("SaveImage", "PreviewImage"):
                if self.interrupt.is_set():
                    raise JobFailed(nid, "", "", interrupted=True)
                images = self.save_images(prompt, nid, info)
                ui_outputs[nid] = {"images": images}
                meta[nid] = {"node_id": nid, "display_node": nid, "parent_node": None,
                             "real_node_id": nid}
                self.send("executed", {"node": nid, "display_node": nid,
                                       "output": {"images": images}, "prompt_id": pid}, sid)
            elif self.interrupt.is_set():
                raise JobFailed(nid, "", "", interrupted=True)
            executed.append(nid)
        if sampler_missing(prompt, order) and c["latency_ms"]:
            time.sleep(c["latency_ms"] / 1000.0)
        return {"outputs": ui_outputs, "meta": meta}

    def save_images(self, prompt, nid, info):
        node = prompt[nid]
        if node["class_type"] == "PreviewImage":
            base_dir, typ = self.temp_dir, "temp"
            prefix = "ComfyUI_temp_" + hashlib.sha1(os.urandom(8)).hexdigest()[:5]
        else:
            base_dir, typ = self.output_dir, "output"
            prefix = str(node["inputs"].get("filename_prefix", "ComfyUI"))
        w, h = info["width"], info["height"]
        prefix = prefix.replace("%width%", str(w)).replace("%height%", str(h))
        norm = os.path.normpath(prefix)
        subfolder, filename = os.path.dirname(norm), os.path.basename(norm)
        full_folder = os.path.join(base_dir, subfolder)
        if os.path.commonpath((base_dir, os.path.abspath(full_folder))) != base_dir:
            raise JobFailed(nid, "**** ERROR: Saving image outside the output folder is not "
                            "allowed.\n full_output_folder: " + os.path.abspath(full_folder) +
                            "\n         output_dir: " + base_dir, "Exception")
        os.makedirs(full_folder, exist_ok=True)
        counter = next_counter(full_folder, filename)
        prompt_json = json.dumps(prompt)
        images = []
        for i in range(info["batch"]):
            fname = f"{filename}_{counter:05}_.png"
            data = paint_png(w, h, info["seed"], info["text"], i, [("prompt", prompt_json)])
            with open(os.path.join(full_folder, fname), "wb") as f:
                f.write(data)
            images.append({"filename": fname, "subfolder": subfolder, "type": typ})
            counter += 1
            self.bump("images_written")
        return images


def _nid_sort(n):
    return (0, int(n), "") if str(n).isdigit() else (1, 0, str(n))


def canonical_key(prompt):
    """What ComfyUI's cache keys on: class_type and inputs of every node (not _meta)."""
    slim = {k: {"class_type": v.get("class_type"), "inputs": v.get("inputs")}
            for k, v in prompt.items()}
    return hashlib.sha256(json.dumps(slim, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def execution_order(prompt, outputs):
    order, seen = [], set()

    def visit(n):
        if n in seen or n not in prompt:
            return
        seen.add(n)
        for v in (prompt[n].get("inputs") or {}).values():
            if isinstance(v, list) and len(v) == 2:
                visit(str(v[0]))
        order.append(n)
    for o in sorted(outputs, key=_nid_sort):
        visit(o)
    return order


def sampler_missing(prompt, order):
    return not any(prompt[n]["class_type"] == "KSampler" for n in order)


def describe(prompt, order):
    """width/height/batch from EmptyLatentImage, seed from KSampler, text from the node linked
    as KSampler.positive.  Width and height are floored to multiples of 8 (latent = px / 8)."""
    info = {"width": 512, "height": 512, "batch": 1, "seed": 0, "text": ""}
    for n in order:
        node = prompt[n]
        inp = node.get("inputs") or {}
        if node["class_type"] == "EmptyLatentImage":
            info["width"] = int(inp.get("width", 512)) // 8 * 8
            info["height"] = int(inp.get("height", 512)) // 8 * 8
            info["batch"] = int(inp.get("batch_size", 1))
        elif node["class_type"] == "KSampler":
            info["seed"] = int(inp.get("seed", 0))
            pos = inp.get("positive")
            if isinstance(pos, list) and str(pos[0]) in prompt:
                info["text"] = str((prompt[str(pos[0])].get("inputs") or {}).get("text", ""))
    return info


def current_inputs(prompt, nid):
    if not nid or nid not in prompt:
        return {}
    out = {}
    for k, v in (prompt[nid].get("inputs") or {}).items():
        out[k] = [None if isinstance(v, list) else v]
    return out


def next_counter(folder, filename):
    """folder_paths.get_save_image_path: 1 + the highest NNNNN of '{filename}_NNNNN_*'."""
    best = 0
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        stem = os.path.splitext(name)[0]
        if not stem.endswith("_"):
            continue
        head, _, num = stem[:-1].rpartition("_")
        if head == filename and num.isdigit():
            best = max(best, int(num))
    return best + 1


# --------------------------------------------------------------------------------------------
# HTTP.
# --------------------------------------------------------------------------------------------

HTML_500 = (b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
            b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>"
            b"\r\n</body>\r\n</html>\r\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Python/3.11 aiohttp/3.11.18"   # what ComfyUI answers with
    st = None   # Standin, set in main()

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        log(f"{self.address_string()} {fmt % args}")

    # ---- helpers -------------------------------------------------------------------------
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, code, body=b"", ctype="text/plain; charset=utf-8", headers=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, obj, code=200):
        self.send(code, json.dumps(obj).encode(), "application/json; charset=utf-8")

    def send_ok_empty(self):
        # aiohttp's web.Response(status=200): no body, "application/octet-stream"
        self.send(200, b"", "application/octet-stream")

    def json_body(self):
        """(ok, value): ok False when the body is not JSON (aiohttp then answers 500)."""
        raw = self.body()
        try:
            return True, json.loads(raw.decode("utf-8") if raw else "")
        except (ValueError, UnicodeDecodeError):
            return False, None

    def route(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/api/"):
            path = path[4:]
        return path

    def query(self):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                           keep_blank_values=True))

    def server_error(self):
        # what aiohttp sends when a handler raises (e.g. request.json() on a non-JSON body)
        self.send(500, b"500 Internal Server Error\n\nServer got itself in trouble",
                  "text/plain; charset=utf-8")

    # ---- dispatch ------------------------------------------------------------------------
    def do_GET(self):
        self.st.bump("requests")
        p = self.route()
        if p == "/history":
            q = self.query()
            with self.st.lock:
                items = list(self.st.history.items())
            try:
                mx = int(q["max_items"]) if "max_items" in q else None
            except ValueError:
                return self.server_error()
            if mx is not None:
                items = items[-mx:] if mx > 0 else []
            return self.send_json(dict(items))
        if p.startswith("/history/"):
            pid = urllib.parse.unquote(p[len("/history/"):])
            self.st.bump("history_polls")
            if self.st.fires(self.st.control(), "history_hang"):  # a server that stalls
                self.st.bump("history_hung")
                time.sleep(40)
                self.close_connection = True
                return None
            with self.st.lock:
                e = self.st.history.get(pid)
                out = {pid: json.loads(json.dumps(e))} if e is not None else {}
            return self.send_json(out)
        if p == "/view":
            return self.view()
        if p == "/queue":
            running, pending = self.st.queue_lists()
            return self.send_json({"queue_running": running, "queue_pending": pending})
        if p == "/prompt":
            with self.st.lock:
                n = len(self.st.queue) + (1 if self.st.running else 0)
            return self.send_json({"exec_info": {"queue_remaining": n}})
        if p == "/system_stats":
            if self.st.fires(self.st.control(), "stats_hang"):
                self.st.bump("stats_hung")
                time.sleep(40)
                self.close_connection = True
                return None
            return self.send_json(self.system_stats())
        if p == "/object_info":
            return self.send_json({k: object_info_entry(k, v)
                                   for k, v in self.st.catalogue.items()})
        if p.startswith("/object_info/"):
            k = urllib.parse.unquote(p[len("/object_info/"):])
            spec = self.st.catalogue.get(k)
            return self.send_json({k: object_info_entry(k, spec)} if spec else {})
        if p == "/embeddings":
            return self.send_json([])
        if p == "/features":
            return self.send_json({"supports_preview_metadata": True,
                                   "max_upload_size": 104857600})
        if p == "/ws":
            return self.websocket()
        if p == "/_standin/stats":
            return self.send_json(self.st.write_stats())
        if p == "/":
            return self.send(200, b"<html><body>ComfyUI stand-in (test equipment)</body></html>",
                             "text/html")
        return self.send(404, b"404: Not Found")

    def do_POST(self):
        self.st.bump("requests")
        p = self.route()
        if p == "/prompt":
            return self.post_prompt()
        if p == "/queue":
            ok, data = self.json_body()
            if not ok or not isinstance(data, dict):
                return self.server_error()
            if data.get("clear"):
                with self.st.lock:
                    self.st.queue = []
            if "delete" in data:
                ids = data["delete"] if isinstance(data["delete"], list) else []
                n = self.st.delete_pending(ids)
                for _ in range(n):
                    self.st.bump("queue_deletes")
            self.st.write_stats()
            return self.send_ok_empty()
        if p == "/interrupt":
            ok, data = self.json_body()   # real ComfyUI: a body that is not JSON reads as {}
            pid = data.get("prompt_id") if ok and isinstance(data, dict) else None
            self.st.bump("interrupts")
            with self.st.lock:
                running = self.st.running
                self.st.interrupt_targets.append(pid if pid else None)
                del self.st.interrupt_targets[:-1000]
            if pid:
                if running and running[1] == pid:
                    log(f"Interrupting prompt {pid}")
                    self.st.interrupt.set()
                else:
                    log(f"Prompt {pid} is not currently running, skipping interrupt")
            else:
                log("Global interrupt (no prompt_id specified)")
                self.st.interrupt.set()
            return self.send_ok_empty()
        if p == "/history":
            ok, data = self.json_body()
            if not ok or not isinstance(data, dict):
                return self.server_error()
            with self.st.lock:
                if data.get("clear"):
                    self.st.history.clear()
                for pid in data.get("delete", []) or []:
                    self.st.history.pop(pid, None)
            self.st.write_stats()
            return self.send_ok_empty()
        if p == "/free":
            self.json_body()
            return self.send_ok_empty()
        return self.send(405 if p in ("/view", "/system_stats", "/object_info") else 404,
                         b"405: Method Not Allowed" if p in ("/view", "/system_stats",
                                                             "/object_info")
                         else b"404: Not Found")

    # ---- WebSocket -----------------------------------------------------------------------
    def websocket(self):
        """GET /ws?clientId=X: RFC 6455 handshake, then PromptServer.websocket_handler:
        a status message with the sid, "executing" of the current node when this client's
        prompt runs, then read (and ignore) what the client sends until it closes."""
        st = self.st
        c = st.control()
        if st.fires(c, "ws_refuse"):
            st.bump("ws_refused")
            return self.send(404, b"404: Not Found")
        if st.fires(c, "ws_hang"):  # a proxy that accepts and never upgrades
            st.bump("ws_hung")
            time.sleep(40)
            self.close_connection = True
            return None
        key = self.headers.get("Sec-WebSocket-Key")
        if "websocket" not in (self.headers.get("Upgrade") or "").lower() or not key:
            return self.send(400, b"No WebSocket UPGRADE hdr: None\n Can \"Upgrade\" only to "
                             b"\"WebSocket\".")
        accept = base64.b64encode(hashlib.sha1((key.strip() + WS_GUID).encode()).digest())
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "upgrade")
        self.send_header("Sec-WebSocket-Accept", accept.decode())
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        sid = self.query().get("clientId", "") or uuid.uuid4().hex
        ws = WsClient(self.connection)
        with st.lock:
            st.sockets[sid] = ws   # a reused clientId replaces the old socket
            last = st.last_node_id if st.client_id == sid else None
        st.bump("ws_connections")
        log(f"ws open sid={sid}")
        try:
            st.send("status", {"status": {"exec_info": {"queue_remaining":
                                                        st.queue_remaining()}}, "sid": sid}, sid)
            if last is not None:
                st.send("executing", {"node": last}, sid)
            ws.read_loop(self.rfile)
        finally:
            with st.lock:
                if st.sockets.get(sid) is ws:
                    del st.sockets[sid]
            ws.drop()
            st.write_stats()
            log(f"ws closed sid={sid}")

    # ---- routes --------------------------------------------------------------------------
    def post_prompt(self):
        st = self.st
        c = st.control()
        st.bump("prompts_received")
        ok, data = self.json_body()
        if st.fires(c, "http500"):
            st.bump("prompts_http500")
            log("fault http500: POST /prompt -> 500")
            return self.send(500, HTML_500, "text/html")
        if st.fires(c, "reset"):
            st.bump("prompts_reset")
            log(f"{self.address_string()} \"{self.requestline}\" fault reset: connection dropped")
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            except OSError:
                pass
            return
        if not ok or not isinstance(data, dict):
            st.bump("prompts_rejected")
            return self.server_error()
        shape = c["error_shape"]
        with st.lock:
            if "number" in data:
                try:
                    number = float(data["number"])
                except (TypeError, ValueError):
                    return self.server_error()
            else:
                number = st.number
                if data.get("front"):
                    number = -number
                st.number += 1
        if "prompt" not in data:
            st.bump("prompts_rejected")
            return self.send_json(no_prompt_body(shape), 400)
        prompt = data["prompt"]
        if st.fires(c, "refuse_prompt"):
            st.bump("prompts_rejected", "prompts_refused")
            return self.send_json(refused_body(shape, prompt), 400)
        prompt = json.loads(json.dumps(prompt))   # validation converts values in place
        valid = validate_prompt(prompt, st.catalogue, shape)
        if not valid[0]:
            st.bump("prompts_rejected")
            log(f"invalid prompt: {valid[1]}")
            return self.send_json({"error": valid[1], "node_errors": valid[3]}, 400)
        extra = data.get("extra_data", {})
        extra = dict(extra) if isinstance(extra, dict) else {}
        if "client_id" in data:
            extra["client_id"] = data["client_id"]
        pid = data.get("prompt_id") if shape == "new" and data.get("prompt_id") else None
        pid = str(pid) if pid else str(uuid.uuid4())
        if isinstance(number, float) and number.is_integer() and "number" not in data:
            number = int(number)
        st.put([number, pid, prompt, extra, valid[2]])
        st.bump("prompts_accepted")
        return self.send_json({"prompt_id": pid, "number": number, "node_errors": valid[3]})

    def view(self):
        st = self.st
        q = self.query()
        if "filename" not in q:
            st.bump("views_missing")
            return self.send(404, b"404: Not Found")
        filename = q["filename"]
        typ = q.get("type", "output") or "output"
        for ann, t in ((" [output]", "output"), (" [input]", "input"), (" [temp]", "temp")):
            if filename.endswith(ann):
                filename, typ = filename[:-len(ann)], t
        # server.py: "validation for security: prevent accessing arbitrary path"
        if not filename or filename[0] == "/" or ".." in filename:
            st.bump("views_missing")
            return self.send(400, b"")
        base = {"output": st.output_dir, "temp": st.temp_dir, "input": st.input_dir}.get(typ)
        if base is None:
            return self.send(400, b"")
        out_dir = base
        if "subfolder" in q:
            full = os.path.join(base, q["subfolder"])
            if os.path.commonpath((os.path.abspath(full), base)) != base:
                st.bump("views_missing")
                return self.send(403, b"")
            out_dir = full
        filename = os.path.basename(filename)
        path = os.path.join(out_dir, filename)
        if not os.path.isfile(path):
            st.bump("views_missing")
            return self.send(404, b"404: Not Found")
        with open(path, "rb") as f:
            data = f.read()
        c = st.control()
        if st.fires(c, "bad_png"):
            st.bump("views_bad")
            data = (b"<html><body>upstream returned garbage instead of " +
                    filename.encode("utf-8", "replace") + b"</body></html>\n")
        elif st.fires(c, "truncated_png"):
            st.bump("views_bad")
            data = data[:max(1, len(data) // 2)]
        st.bump("views_served")
        ctype = "image/png" if filename.lower().endswith(".png") else "application/octet-stream"
        return self.send(200, data, ctype,
                         {"Content-Disposition": f'filename="{filename}"'})

    def system_stats(self):
        return {
            "system": {"os": "posix", "ram_total": 134217728000, "ram_free": 120259084288,
                       "comfyui_version": "0.3.43", "required_frontend_version": "1.23.4",
                       "python_version": sys.version, "pytorch_version": "2.7.1+cu128",
                       "embedded_python": False, "argv": ["main.py", "--listen", "127.0.0.1"]},
            "devices": [{"name": "cuda:0 NVIDIA GeForce RTX 4090 : cudaMallocAsync",
                         "type": "cuda", "index": 0, "vram_total": 25386352640,
                         "vram_free": 24003788800, "torch_vram_total": 0,
                         "torch_vram_free": 0}]}


class WsClient:
    """One server-side WebSocket: frames out unmasked, frames in masked (RFC 6455)."""

    def __init__(self, sock):
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False

    def send_frame(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 127, n)
        with self.lock:
            if self.closed:
                return False
            try:
                self.sock.sendall(head + payload)
                return True
            except OSError:
                self.closed = True
                return False

    def drop(self):
        with self.lock:
            self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_loop(self, rfile):
        """Read client frames until close or EOF: answer ping, echo close."""
        while True:
            head = rfile.read(2)
            if len(head) < 2:
                return
            b0, b1 = head
            opcode, masked, n = b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", rfile.read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", rfile.read(8))[0]
            if not masked or n > (1 << 20):
                # a client must mask (RFC 6455 5.1): close with 1002 protocol error
                self.send_frame(0x8, struct.pack(">H", 1002))
                return
            mask = rfile.read(4)
            data = bytearray(rfile.read(n))
            if len(mask) < 4 or len(data) < n:
                return
            for i in range(n):
                data[i] ^= mask[i & 3]
            if opcode == 0x9:
                self.send_frame(0xA, bytes(data))
            elif opcode == 0x8:
                self.send_frame(0x8, bytes(data[:2]))
                return
            # text and binary (e.g. feature_flags) and pong: nothing to do


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        log(f"error handling request from {client_address}:\n{traceback.format_exc()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description="ComfyUI stand-in server (test equipment)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 = an ephemeral port")
    ap.add_argument("--port-file", help="the chosen port is written here once listening")
    ap.add_argument("--output-dir", required=True)
    ap.add_argument("--latency-ms", type=int, default=200, help="time a job spends sampling")
    ap.add_argument("--fail", choices=FAIL_MODES, default="none")
    ap.add_argument("--fail-times", type=int, default=0, help="0 = the fault fires always")
    ap.add_argument("--error-shape", choices=("old", "new"), default="new")
    ap.add_argument("--control-file", help="JSON re-read on every request: fail, latency_ms, "
                    "fail_times, error_shape")
    ap.add_argument("--cache", choices=("all", "last", "none"), default="all",
                    help="all: any earlier identical prompt is a cache hit; last: only the "
                    "previous prompt (ComfyUI's default classic cache); none: --cache-none")
    ap.add_argument("--checkpoints", default="sd_xl_base_1.0.safetensors",
                    help="comma-separated ckpt_name values that validate")
    ap.add_argument("--stats-file", help="default {output_dir}/.stats.json")
    args = ap.parse_args(argv)

    st = Standin(args)
    Handler.st = st
    httpd = Server((args.host, args.port), Handler)
    port = httpd.server_address[1]
    worker = threading.Thread(target=st.worker, name="prompt_worker", daemon=True)
    worker.start()
    serve = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                             name="http", daemon=True)
    serve.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    log(f"listening on http://{args.host}:{port} output_dir={st.output_dir} "
        f"latency_ms={args.latency_ms} fail={args.fail} error_shape={args.error_shape} "
        f"cache={args.cache}")

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(f"signal {signum}: shutting down")
        stop.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.is_set():
        stop.wait(0.5)
    st.stopping.set()
    with st.cv:
        st.cv.notify_all()
    httpd.shutdown()
    httpd.server_close()
    worker.join(2.0)
    st.write_stats()
    if args.port_file:
        try:
            os.unlink(args.port_file)
        except OSError:
            pass
    shutil.rmtree(st.temp_dir, ignore_errors=True)
    shutil.rmtree(st.input_dir, ignore_errors=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
