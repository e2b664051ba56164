"""tokenizer: a hand-written character-by-character scanner for a small C-like language
(identifiers, keywords, integers, floats with exponents, strings with escapes, two-character
operators, comments), run over n generated lines.

Exercises string indexing and slicing, str methods (isalpha, isdigit, ...), membership tests in
sets and dicts, and list appends.
Check: a regular-expression tokenizer (one re.finditer master pattern) over the same text must
give the same token list; the result is the count per kind and the total token length.
"""

import re

from suite import expect

CATEGORY = "strings"
SIZES = {"quick": 40, "full": 4_000}
HOT = ["tokenize"]
KEYWORDS = {"let", "if", "else", "while", "return", "fn"}
TWO_CHAR = {"==", "!=", "<=", ">=", "&&", "||", "->"}
ONE_CHAR = set("+-*/%=<>!(){}[],;.")


def make_source(n):
    lines = []
    for i in range(n):
        lines.append('let v%d = call_%d(%d, "s%d \\"q\\" x") + %d.%d * w%d >= 3.5e%d; # note %d'
                     % (i, i % 13, i, i % 7, i * 7 % 100, i % 10, i % 5, i % 3, i))
        if i % 4 == 0:
            lines.append("  if (v%d != w%d && x_%d <= 10) { return v%d -> y; } else { fn(); }"
                         % (i, i % 3, i, i))
    return "\n".join(lines) + "\n"


def tokenize(text):
    tokens = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == " " or c == "\n" or c == "\t":
            i += 1
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            tokens.append(("keyword" if word in KEYWORDS else "name", word))
            i = j
        elif c.isdigit():
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            kind = "int"
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isdigit():
                kind = "float"
                j += 1
                while j < n and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "eE":
                kind = "float"
                j += 1
                if text[j] in "+-":
                    j += 1
                while j < n and text[j].isdigit():
                    j += 1
            tokens.append((kind, text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            tokens.append(("string", text[i:j + 1]))
            i = j + 1
        elif c == "#":
            j = text.find("\n", i)
            if j < 0:
                j = n
            tokens.append(("comment", text[i:j]))
            i = j
        elif text[i:i + 2] in TWO_CHAR:
            tokens.append(("op", text[i:i + 2]))
            i += 2
        elif c in ONE_CHAR:
            tokens.append(("op", c))
            i += 1
        else:
            raise ValueError("unexpected character %r at %d" % (c, i))
    return tokens


def _summary(tokens):
    counts = {}
    length = 0
    for kind, text in tokens:
        counts[kind] = counts.get(kind, 0) + 1
        length += len(text)
    return [sorted(counts.items()), length, len(tokens)]


def run(n):
    return _summary(tokenize(make_source(n)))


_PATTERN = re.compile(r"""
    (?P<space>[ \t\n]+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<float>[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]*|[0-9]+\.[0-9]+)
  | (?P<int>[0-9]+)
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<comment>\#[^\n]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||->|[-+*/%=<>!(){}\[\],;.])
""", re.VERBOSE)


def check(n, result):
    tokens = []
    for m in _PATTERN.finditer(make_source(n)):
        kind, text = m.lastgroup, m.group()
        if kind == "word":
            kind = "keyword" if text in KEYWORDS else "name"
        if kind != "space":
            tokens.append((kind, text))
    expect("tokenizer(%d)" % n, result, _summary(tokens))
