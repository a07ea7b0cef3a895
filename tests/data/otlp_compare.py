#!/usr/bin/python3
"""Decodes errand's OTLP protobuf export with Google's protobuf library and compares it with
errand's OTLP/JSON export of the same spans, under the protobuf JSON mapping that OTLP/JSON
follows (ids as hex instead of base64 being OTLP's one departure).

  otlp_compare.py PROTO_FILE JSON_EXPORT PROTOBUF_EXPORT

PROTO_FILE is tests/data/otlp_trace.proto. Exits 0 and prints "same" when the two say the
same; else prints the first difference and exits 1.
Needs protoc (protobuf-compiler) and Debian's python3-protobuf.
"""
import base64
import importlib
import json
import math
import os
import subprocess
import sys
import tempfile


def load_module(proto):
    out = tempfile.mkdtemp()
    subprocess.run(["protoc", "--python_out=" + out, "-I", os.path.dirname(os.path.abspath(proto)), os.path.abspath(proto)],
                   check=True)
    sys.path.insert(0, out)
    return importlib.import_module(os.path.splitext(os.path.basename(proto))[0] + "_pb2")


ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def hex_ids(node):
    """MessageToDict writes bytes as base64; OTLP/JSON writes ids as hex."""
    if isinstance(node, dict):
        return {k: (base64.b64decode(v).hex() if k in ID_KEYS else hex_ids(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [hex_ids(v) for v in node]
    return node


def without_defaults(node):
    """Protobuf leaves out empty repeated fields, empty strings, zero times and messages that
    are not set (but not a oneof member, such as an AnyValue's empty stringValue)."""
    if isinstance(node, dict):
        kept = {}
        for k, v in node.items():
            v = without_defaults(v)
            if v == [] or (v == {} and k != "value") or (v == "" and k != "stringValue"):
                continue
            if k.endswith("UnixNano") and v == "0":
                continue
            kept[k] = v
        return kept
    if isinstance(node, list):
        return [without_defaults(v) for v in node]
    return node


def floats_as_text(node):
    """NaN is not equal to itself: compare doubles by their repr."""
    if isinstance(node, dict):
        return {k: floats_as_text(v) for k, v in node.items()}
    if isinstance(node, list):
        return [floats_as_text(v) for v in node]
    if isinstance(node, float):
        if math.isnan(node):
            return "NaN"
        if math.isinf(node):
            return "Infinity" if node > 0 else "-Infinity"
        return repr(node)
    if isinstance(node, int) and not isinstance(node, bool):
        return repr(float(node))
    return node


def first_difference(a, b, path="$"):
    if type(a) != type(b):
        return "%s: %r vs %r" % (path, a, b)
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s: only in %s" % (path, k, "json" if k in a else "protobuf")
            d = first_difference(a[k], b[k], path + "." + k)
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: %d items vs %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b else "%s: %r vs %r" % (path, a, b)


def main():
    proto, json_path, protobuf_path = sys.argv[1:4]
    module = load_module(proto)
    from google.protobuf import json_format

    request = module.ExportTraceServiceRequest()
    request.ParseFromString(open(protobuf_path, "rb").read())  # refuses strings that are not UTF-8
    decoded = hex_ids(json_format.MessageToDict(request, use_integers_for_enums=True))
    # "-0" is a double (negative zero) in OTLP/JSON, not the integer 0.
    expected = json.load(open(json_path), parse_int=lambda text: -0.0 if text == "-0" else int(text))
    a, b = (floats_as_text(without_defaults(x)) for x in (expected, decoded))
    difference = first_difference(a, b)
    if difference:
        print("different:", difference)
        return 1
    print("same")
    return 0


if __name__ == "__main__":
    sys.exit(main())
