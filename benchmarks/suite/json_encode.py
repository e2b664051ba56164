"""json_encode: a hand-written JSON encoder (recursive, isinstance dispatch, string escaping
character by character, \\u escapes and surrogate pairs for non-ASCII) over n generated records.

Exercises recursion, isinstance on builtin types, dict iteration, str.join and character loops.
The output must be byte-identical to json.dumps(data, separators=(",", ":")).
Check: the length and CRC-32 of json.dumps's output for the same data.
"""

import json
import zlib

from suite import expect

CATEGORY = "strings"
SIZES = {"quick": 30, "full": 8_000}
HOT = ["encode", "encode_string"]
ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
           "\f": "\\f"}
NAMES = ["Ada", "Grace", "Émilie", "Linus", "Ka\"y\"", "back\\slash", "tab\there", "日本",
         "smile \U0001F600", "bell\x07"]


def make_data(n):
    records = []
    for i in range(n):
        records.append({
            "id": i,
            "name": NAMES[i % len(NAMES)] + str(i),
            "score": i * 0.25 - 3.5,
            "ratio": 1.0 / (i + 1),
            "active": i % 3 == 0,
            "parent": None if i % 4 == 0 else i // 2,
            "tags": ["t%d" % (i % 5), "line\nbreak", NAMES[(i * 7) % len(NAMES)]],
            "nested": {"depth": [i, [i + 1, {"k": "v%d" % i}]], "empty": {}, "none": []},
        })
    return {"version": 3, "records": records}


def encode_string(s, out):
    out.append('"')
    for ch in s:
        if ch in ESCAPES:
            out.append(ESCAPES[ch])
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            code = ord(ch)
            if code >= 0x10000:
                code -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 | (code >> 10), 0xDC00 | (code & 0x3FF)))
            else:
                out.append("\\u%04x" % code)
    out.append('"')


def encode(value, out):
    if isinstance(value, str):
        encode_string(value, out)
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            encode_string(key, out)
            out.append(":")
            encode(item, out)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            encode(item, out)
        out.append("]")
    else:
        raise TypeError("cannot encode %r" % (value,))


def run(n):
    out = []
    encode(make_data(n), out)
    text = "".join(out)
    return [len(text), zlib.crc32(text.encode("ascii"))]


def check(n, result):
    text = json.dumps(make_data(n), separators=(",", ":"))
    expect("json_encode(%d) [length, crc32]" % n, result,
           [len(text), zlib.crc32(text.encode("ascii"))])
