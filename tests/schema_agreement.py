#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Check that the JSON Schemas in proto/schema/ and the C validator agree.

Run with Debian's interpreter, which has python3-jsonschema 4.10.3:

    /usr/bin/python3 tests/schema_agreement.py --tripgen build/proto/cli/tripgen --root .

Every good sample (tests/data/trips/*.json, tests/data/jobs/good-*.json,
tests/data/results/good-*.json) must be accepted by the schema and by
`tripgen validate`. Every bad case listed in an EXPECTED.tsv
(`file<TAB>field<TAB>yes|c-only`) must make `tripgen validate` exit 2 with an
error naming `field`; with `yes` the schema must reject it too, with `c-only`
the schema is not consulted (the rule is one JSON Schema cannot express).
The schemas' bounds are also compared with proto/tg_limits.h and the error
codes with proto/err.c, so the two descriptions cannot drift apart.

Prints one line per case and `N passed, N failed`; exits 1 on any failure.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

import jsonschema

KINDS = {
    # kind: (schema file, good samples, directory with EXPECTED.tsv)
    "trip": ("trip.schema.json", ("trips", "*.json"), "bad-trips"),
    "job": ("job.schema.json", ("jobs", "good-*.json"), "jobs"),
    "result": ("result.schema.json", ("results", "good-*.json"), "results"),
}


class Unparsable(Exception):
    pass


def strict_json(data):
    """Parse like the C loader does or fail: UTF-8 only, no duplicate keys,
    no NaN/Infinity, no trailing data."""
    def pairs(items):
        obj = {}
        for k, v in items:
            if k in obj:
                raise Unparsable(f"duplicate key {k!r}")
            obj[k] = v
        return obj

    def constant(name):
        raise Unparsable(f"{name} is not JSON")

    try:
        text = data.decode("utf-8")
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Unparsable(str(e)) from e


def load_schemas(schema_dir):
    schemas = {}
    for kind, (fname, _, _) in KINDS.items():
        with open(os.path.join(schema_dir, fname), "rb") as f:
            schemas[kind] = strict_json(f.read())
    store = {s["$id"]: s for s in schemas.values()}
    validators = {}
    for kind, schema in schemas.items():
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        # the store holds every schema by its $id, so "$ref": "trip.schema.json"
        # resolves without the network
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        validators[kind] = cls(schema, resolver=resolver)
    return schemas, validators


def schema_errors(validator, doc):
    return sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))


def describe(err):
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
    msg = err.message if len(err.message) < 100 else err.message[:97] + "..."
    return f"{path.lstrip('.') or '(root)'}: {msg}"


def error_fields(err):
    """The field paths a schema error is about, in the C validator's notation."""
    path = ""
    for p in err.absolute_path:
        path += f"[{p}]" if isinstance(p, int) else (f".{p}" if path else p)
    keys = []
    if err.validator == "required":
        keys = re.findall(r"^'(.*)' is a required property$", err.message)
    elif err.validator == "additionalProperties":
        keys = re.findall(r"'([^']*)'", err.message.split("(", 1)[-1])
    if keys:
        return [f"{path}.{k}" if path else k for k in keys]
    return [path or "payload"]


def schema_names_field(errors, field):
    """Whether one of the schema's errors is about the field the C validator
    names (or, for an array rule such as uniqueItems, about its array)."""
    for err in errors:
        for f in error_fields(err):
            if f == field or field.startswith(f + "["):
                return True
    return False


def run_tripgen(tripgen, kind, path):
    p = subprocess.run([tripgen, "validate", "--kind", kind, path], capture_output=True,
                       timeout=30)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def names_field(stderr, path, field):
    """Whether the CLI's `FILE: <field>: <reason>` names the field: the text
    after `FILE: ` starts with the field followed by ':' or '['."""
    for line in stderr.splitlines():
        prefix = path + ": "
        if not line.startswith(prefix):
            continue
        rest = line[len(prefix):]
        if rest.startswith(field) and rest[len(field):len(field) + 1] in (":", "["):
            return True
    return False


def read_expected(path):
    cases = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3 or parts[2] not in ("yes", "c-only"):
                raise SystemExit(f"{path}:{n}: expected 'file<TAB>field<TAB>yes|c-only'")
            cases.append(tuple(parts))
    return cases


# ---------------------------------------------------------------- drift checks

def parse_limits(header):
    """The TG_* enumerators of tg_limits.h, with simple products evaluated."""
    with open(header, encoding="utf-8") as f:
        text = f.read()
    limits = {}
    for name, expr in re.findall(r"\b(TG_[A-Z0-9_]+)\s*=\s*([0-9 *]+?)\s*,", text):
        value = 1
        for factor in expr.split("*"):
            value *= int(factor)
        limits[name] = value
    return limits


def parse_codes(err_c):
    with open(err_c, encoding="utf-8") as f:
        return re.findall(r'\{\s*TG_CODE_[A-Z_]+\s*,\s*"([a-z_]+)"', f.read())


def get(schema, path):
    node = schema
    for key in path.split("/"):
        node = node[key]
    return node


def drift_checks(schemas, limits, codes):
    """Yield (name, ok, detail) for each schema bound tied to a C constant."""
    trip, job, result = schemas["trip"], schemas["job"], schemas["result"]
    tp, jp, rp = "properties/", "properties/", "properties/"
    checks = [
        (trip, tp + "trip_id/maxLength", "TG_MAX_ID_CHARS"),
        (trip, tp + "user_id/maxLength", "TG_MAX_ID_CHARS"),
        (trip, tp + "tag/maxLength", "TG_MAX_TAG_CHARS"),
        (trip, tp + "text/maxLength", "TG_MAX_TEXT_CHARS"),
        (trip, "$defs/place/properties/address/maxLength", "TG_MAX_ADDRESS_CHARS"),
        (trip, "$defs/place/properties/city/maxLength", "TG_MAX_NAME_CHARS"),
        (trip, "$defs/place/properties/weather/maxLength", "TG_MAX_SHORT_CHARS"),
        (trip, tp + "via_cities/maxItems", "TG_MAX_VIA_CITIES"),
        (trip, tp + "via_cities/items/maxLength", "TG_MAX_NAME_CHARS"),
        (trip, tp + "vehicle/properties/model/maxLength", "TG_MAX_NAME_CHARS"),
        (trip, tp + "vehicle/properties/color/maxLength", "TG_MAX_SHORT_CHARS"),
        (trip, tp + "vehicle/properties/generation/maxLength", "TG_MAX_SHORT_CHARS"),
        (trip, tp + "team/maxLength", "TG_MAX_NAME_CHARS"),
        (trip, tp + "style/maxLength", "TG_MAX_SHORT_CHARS"),
        (trip, tp + "locale/maxLength", "TG_MAX_LOCALE_CHARS"),
        (trip, tp + "driving_seconds/maximum", "TG_MAX_DRIVING_SECONDS"),
        (trip, tp + "distance_km/maximum", "TG_MAX_DISTANCE_KM"),
        (job, jp + "request_id/maxLength", "TG_MAX_REQUEST_ID_CHARS"),
        (job, jp + "env/maxLength", "TG_MAX_ENV_CHARS"),
        (job, jp + "idempotency_key/maxLength", "TG_MAX_ID_CHARS"),
        (job, jp + "generation/maximum", "TG_MAX_GENERATION"),
        (job, jp + "attempt/maximum", "TG_MAX_ATTEMPT"),
        (job, jp + "options/properties/style/maxLength", "TG_MAX_SHORT_CHARS"),
        (job, jp + "options/properties/variants/maxItems", "TG_MAX_VARIANTS"),
        (job, jp + "options/properties/variants/items/maxLength", "TG_MAX_VARIANT_CHARS"),
        (result, rp + "request_id/maxLength", "TG_MAX_REQUEST_ID_CHARS"),
        (result, rp + "trip_id/maxLength", "TG_MAX_ID_CHARS"),
        (result, rp + "env/maxLength", "TG_MAX_ENV_CHARS"),
        (result, rp + "generation/maximum", "TG_MAX_GENERATION"),
        (result, rp + "attempt/maximum", "TG_MAX_ATTEMPT"),
        (result, rp + "images/maxItems", "TG_MAX_VARIANTS"),
        (result, rp + "prompt/maxLength", "TG_MAX_PROMPT_CHARS"),
        (result, rp + "negative_prompt/maxLength", "TG_MAX_PROMPT_CHARS"),
        (result, rp + "prompt_source/maxLength", "TG_MAX_SHORT_CHARS"),
        (result, rp + "worker/maxLength", "TG_MAX_ID_CHARS"),
        (result, rp + "error/properties/message/maxLength", "TG_MAX_ERROR_MESSAGE_CHARS"),
        (result, rp + "error/properties/stage/maxLength", "TG_MAX_SHORT_CHARS"),
        (result, "$defs/image/properties/variant/maxLength", "TG_MAX_VARIANT_CHARS"),
        (result, "$defs/image/properties/width/maximum", "TG_MAX_IMAGE_SIDE"),
        (result, "$defs/image/properties/height/maximum", "TG_MAX_IMAGE_SIDE"),
    ]
    for schema, path, const in checks:
        name = f"{schema['$id'].rsplit('/', 1)[-1]}#{path}"
        if const not in limits:
            yield name, False, f"{const} not found in tg_limits.h"
            continue
        try:
            value = get(schema, path)
        except KeyError:
            yield name, False, "missing from the schema"
            continue
        yield name, value == limits[const], f"{value} vs {const} = {limits[const]}"

    # the size pattern accepts exactly the sides TG_MIN_IMAGE_SIDE..TG_MAX_IMAGE_SIDE
    size = re.compile(get(job, jp + "options/properties/size/pattern"))
    lo, hi = limits.get("TG_MIN_IMAGE_SIDE", 0), limits.get("TG_MAX_IMAGE_SIDE", 0)
    inside = all(size.search(f"{a}x{b}") for a in range(lo, hi + 1, 37) for b in (lo, hi))
    edges = (size.search(f"{lo}x{hi}") and size.search(f"{hi}x{lo}") and
             not size.search(f"{lo - 1}x{hi}") and not size.search(f"{lo}x{hi + 1}"))
    yield (f"job.schema.json#options.size pattern", bool(inside and edges),
           f"sides {lo}-{hi} (TG_MIN_IMAGE_SIDE, TG_MAX_IMAGE_SIDE)")

    enum = get(result, rp + "error/properties/code/enum")
    yield ("result.schema.json#error.code enum", sorted(enum) == sorted(codes) and codes != [],
           f"{len(enum)} codes vs {len(codes)} in proto/err.c")

    # the same charset and time rules in every schema that repeats them
    same = [
        ("date_time", get(trip, "$defs/date_time/pattern"), get(job, "$defs/date_time/pattern")),
        ("line", get(trip, "$defs/line/pattern"), get(job, jp + "idempotency_key/pattern"),
         get(result, rp + "worker/pattern"), get(result, "$defs/image/properties/url/pattern")),
        ("text", get(trip, "$defs/text/pattern"), get(result, "$defs/text/pattern")),
        ("token", get(trip, "$defs/token/pattern"), get(job, jp + "options/properties/style/pattern"),
         get(result, rp + "prompt_source/pattern"), get(result, rp + "error/properties/stage/pattern")),
        ("id", get(trip, "$defs/id/pattern"), get(result, rp + "trip_id/pattern")),
        ("request_id", get(job, jp + "request_id/pattern"), get(result, rp + "request_id/pattern")),
        ("env", get(job, jp + "env/pattern"), get(result, rp + "env/pattern")),
        ("variant", get(job, jp + "options/properties/variants/items/pattern"),
         get(result, "$defs/image/properties/variant/pattern")),
    ]
    for name, *patterns in same:
        yield f"pattern {name} is the same everywhere", len(set(patterns)) == 1, \
            f"{len(set(patterns))} distinct"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tripgen", required=True, help="path to the tripgen binary")
    ap.add_argument("--root", required=True, help="repository root")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    tripgen = os.path.abspath(args.tripgen)
    data = os.path.join(root, "tests", "data")
    if not os.access(tripgen, os.X_OK):
        print(f"schema_agreement: {tripgen} is not an executable", file=sys.stderr)
        return 1

    schemas, validators = load_schemas(os.path.join(root, "proto", "schema"))
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        print(f"{'ok  ' if ok else 'FAIL'} {what}" + (f" -- {detail}" if detail else ""))

    limits = parse_limits(os.path.join(root, "proto", "tg_limits.h"))
    codes = parse_codes(os.path.join(root, "proto", "err.c"))
    for name, ok, detail in drift_checks(schemas, limits, codes):
        report(ok, f"drift {name}", "" if ok else detail)

    for kind, (_, (good_dir, good_glob), bad_dir) in KINDS.items():
        goods = sorted(glob.glob(os.path.join(data, good_dir, good_glob)))
        if not goods:
            report(False, f"{kind}: good samples", f"none in tests/data/{good_dir}/{good_glob}")
        for path in goods:
            rel = os.path.relpath(path, root)
            problems = []
            with open(path, "rb") as f:
                raw = f.read()
            try:
                errs = schema_errors(validators[kind], strict_json(raw))
                problems += [f"schema: {describe(e)}" for e in errs[:3]]
            except Unparsable as e:
                problems.append(f"not strict JSON: {e}")
            rc, err = run_tripgen(tripgen, kind, path)
            if rc != 0:
                problems.append(f"tripgen exit {rc}: {err.strip()[:200]}")
            report(not problems, f"good {kind} {rel}", "; ".join(problems))

        expected = os.path.join(data, bad_dir, "EXPECTED.tsv")
        if not os.path.exists(expected):
            report(False, f"{kind}: bad cases", f"{os.path.relpath(expected, root)} missing")
            continue
        cases = read_expected(expected)
        listed = {c[0] for c in cases}
        prefix = "" if kind == "trip" else "bad-"
        on_disk = {f for f in os.listdir(os.path.join(data, bad_dir))
                   if f.endswith(".json") and f.startswith(prefix)}
        for f in sorted(on_disk - listed):
            report(False, f"bad {kind} {bad_dir}/{f}", "not listed in EXPECTED.tsv")
        for fname, field, schema in cases:
            path = os.path.join(data, bad_dir, fname)
            rel = os.path.relpath(path, root)
            problems = []
            if not os.path.exists(path):
                report(False, f"bad {kind} {rel}", "file missing")
                continue
            rc, err = run_tripgen(tripgen, kind, path)
            if rc != 2:
                problems.append(f"tripgen exit {rc}, want 2")
            if not names_field(err, path, field):
                got = err.strip().splitlines()[-1] if err.strip() else "(nothing on stderr)"
                problems.append(f"want error on {field!r}, got {got[len(path) + 2:][:160]!r}")
            with open(path, "rb") as f:
                raw = f.read()
            try:
                doc = strict_json(raw)
            except Unparsable:
                doc = Unparsable
            if schema == "yes":
                if doc is Unparsable:
                    problems.append("marked 'yes' but is not strict JSON: mark it c-only")
                else:
                    errs = schema_errors(validators[kind], doc)
                    if not errs:
                        problems.append("the schema accepts it")
                    elif not schema_names_field(errs, field):
                        problems.append(f"the schema rejects it for another field: "
                                        f"{describe(errs[0])}")
            report(not problems, f"bad {kind} {rel} ({field}, {schema})", "; ".join(problems))

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
