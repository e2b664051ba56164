"""A generator of small random Python functions for differential testing of the specializer.

Every generated function lives in a module built from PRELUDE: module globals of many types
(ints, floats, strs, tuples, None, bools, a tuple holding a list, a list, an int subclass with
its own __add__, a str subclass with its own __len__, huge ints), a fake module `M` with
attributes (and a PEP 562 __getattr__), the real `math`, and helpers, some of which rebind
globals, module attributes or shadow builtins while a call runs.

    gen = FunctionGenerator(seed)
    case = gen.case(index)      # a Case: source, function name, call inputs, state changes

Case.source defines one function `f<index>(a, s, *, k=2)`; `a` is an int, `s` a str, `k` an
int (the driver passes wrong types now and then). The body is a sequence of statements, each
binding a new local rN on every path (assignments, if/else on globals, if/else blocks holding
loops and try statements, for and while loops, try/except/else/finally, with, closures and
lambdas, keyword calls, comprehensions, raise, assert, `global` writes, calls of helpers, class
attributes and methods), then `return (r0, r1, ...)` (or, for generator functions,
one `yield` per local). Expressions are typed (int, float, str, tuple, bool) so most of them
compute something, but division by zero, bad indexes, conversions of non-numeric strings and
the globals' rebinding to other types make a good share raise.

Case.rebinds_mid_call is True when the body calls a helper that rebinds a global, a module
attribute or a builtin (directly or from a closure): under assume="entry" (guards checked at
entry only) such a function may legitimately differ from CPython, so the driver runs that
variant only for functions where it is False. Mutating a list in place is not rebinding.

Case.steps is the state-change sequence the driver applies between calls: ("set", name, value
key), ("del", name), ("mattr", attr, value key), ("mdel", attr), ("cattr", class, attr, value
key), ("cdel", class, attr), ("shadow", builtin name), ("unshadow", builtin name), ("builtin",
name) (replaces the builtin in the builtins module for everyone), ("mutate",), ("digits", n)
(sys.set_int_max_str_digits), ("respecialize",) (mark the function again: re-specialized
against the current state at its next call), ("restore",) (every original object back, so
guards pass again), each followed by calls with inputs from Case.inputs. Values are named by
key (VALUES) so each variant gets its own, equal-by-construction objects from value(key).

Beyond plain statements, "hazard" statements put a read of a global right after a call that
rebinds it, in every control-flow position (straight line, same expression, loop back-edge,
except/else/finally clause, after an if's join, inside a with): the reads assume="stable" must
never fold.
"""

import random
import textwrap

PRELUDE = '''
import math
import types as _types

class IntLike(int):
    """An int whose + is not int's: folding must not apply int semantics to it."""
    def __add__(self, other):
        return IntLike(int(self) + int(other) + 1000)
    __radd__ = __add__
    def __repr__(self):
        return f"IntLike({int(self)})"

class StrLike(str):
    """A str whose len() is not str's."""
    def __len__(self):
        return 99

M = _types.ModuleType("M")
M.SCALE = 3
M.NAME = "cfg"
M.FLAG = True
M.RATIO = 0.5
M.ITEMS = (1, 2, 3)
M.twice = lambda v: v * 2
M.__getattr__ = lambda name: "dyn-" + name

class Config:
    LIMIT = 10
    NAME = "config"
    def scaled(self, x):
        return x * self.LIMIT
    @staticmethod
    def double(x):
        return 2 * x
    @classmethod
    def limit(cls):
        return cls.LIMIT

class SubConfig(Config):
    NAME = "sub"

CFG = Config()

G_INT = 7
G_NEG = -4
G_ZERO = 0
G_FLOAT = 2.5
G_STR = "hello"
G_EMPTY = ""
G_TUPLE = (3, 1, 2)
G_NESTED = (1, [2, 3])
G_LIST = [4, 5, 6]
G_DICT = {"a": 1, "b": 2}
G_NONE = None
G_TRUE = True
G_FALSE = False
G_BIG = 10 ** 30
G_HUGE = 10 ** 1000
G_DIGITS = "7" * 1000
G_FSET = frozenset({1, 2})
G_INTSUB = IntLike(5)
G_STRSUB = StrLike("abc")
DEBUG = False
CALLS = [0]

def rebind(name, value):
    globals()[name] = value

def bump():
    global G_INT
    G_INT = G_INT + 1
    return G_INT

def set_flag(value):
    global DEBUG
    DEBUG = value
    return value

def set_scale(value):
    M.SCALE = value
    return value

def shadow_len():
    globals()["len"] = lambda obj: -1
    return 0

def unshadow_len():
    globals().pop("len", None)
    return 0

def set_limit(value):
    Config.LIMIT = value
    return value

def forget(name):
    globals().pop(name, None)
    return 0

def mutate():
    G_LIST.append(len(G_LIST))
    G_NESTED[1].append(9)
    return len(G_LIST)

class Ctx:
    def __init__(self, tag):
        self.tag = tag
    def __enter__(self):
        CALLS[0] += 1
        return self
    def __exit__(self, *exc):
        CALLS[0] += 10
        return False

def boom():
    global G_INT
    G_INT = 13
    raise ValueError("boom")

def note(value):
    CALLS[0] += 1
    return value

def kwhelper(a, b=2, *, scale=1):
    return (a + b) * scale
'''

# Values the driver may rebind globals and module attributes to, by key; value(key) builds a
# fresh object (for a variant's namespace) from this source text.
VALUES = {
    "int7": "7", "int8": "8", "intneg": "-3", "int0": "0", "intbig": "10 ** 30",
    "inthuge": "10 ** 1000", "float2": "2.0", "floatneg": "-1.5", "floatinf": "float('inf')",
    "str7": "'7'", "strx": "'xyz'", "strempty": "''", "strlike": "StrLike('q')",
    "none": "None", "true": "True", "false": "False", "intlike": "IntLike(2)",
    "tuple0": "()", "tuple1": "(9,)", "tuple3": "(5, 6, 7)", "list3": "[3, 1, 2]",
    "digits": "'12' * 400", "lenfake": "lambda obj: 42", "absfake": "lambda x: 'abs!'",
    "minfake": "lambda *args, **kw: 'min!'", "fset": "frozenset({3})",
}

# Which values a global or module attribute may be rebound to (same type mostly, then others).
REBIND_TARGETS = {
    "G_INT": ["int7", "int8", "intneg", "int0", "intbig", "float2", "str7", "none", "true",
              "intlike"],
    "G_NEG": ["int0", "int8", "floatneg"],
    "G_ZERO": ["int7", "int0", "float2"],
    "G_FLOAT": ["float2", "floatneg", "floatinf", "int7", "str7"],
    "G_STR": ["strx", "strempty", "strlike", "int7"],
    "G_EMPTY": ["strx", "none"],
    "G_TUPLE": ["tuple0", "tuple1", "tuple3", "list3", "str7"],
    "G_NONE": ["int0", "none", "strx"],
    "G_TRUE": ["false", "int0", "strx"],
    "G_FALSE": ["true", "int7"],
    "G_BIG": ["int7", "intbig", "inthuge"],
    "G_HUGE": ["inthuge", "int7"],
    "G_DIGITS": ["digits", "str7", "strx"],
    "G_FSET": ["fset", "tuple1"],
    "G_INTSUB": ["intlike", "int7"],
    "G_STRSUB": ["strlike", "strx"],
    "DEBUG": ["true", "false", "int0", "int7", "strempty", "strx"],
}
MODULE_ATTR_TARGETS = {
    "SCALE": ["int7", "int0", "intneg", "float2", "str7"],
    "NAME": ["strx", "strempty", "int7"],
    "FLAG": ["false", "true", "int0", "strx"],
    "RATIO": ["float2", "int0", "floatneg"],
    "ITEMS": ["tuple0", "tuple3", "list3"],
}
CLASS_ATTR_TARGETS = {
    "LIMIT": ["int7", "int0", "str7", "intlike"],
    "NAME": ["strx", "int7"],
}
BUILTIN_FAKES = {"len": "lenfake", "abs": "absfake", "min": "minfake"}

# Helper calls that rebind something while the function runs (entry semantics may differ).
REBINDING_CALLS = [
    "rebind('G_INT', 11)", "rebind('G_STR', 'xy')", "rebind('G_TUPLE', (8, 9))", "bump()",
    "set_flag(True)", "set_flag(0)", "set_scale(5)", "shadow_len()", "unshadow_len()",
    "forget('G_FLOAT')", "rebind('DEBUG', 'on')", "rebind('M', M)", "set_limit(20)",
]
# (a read, a call that rebinds what it reads) for the "hazard" statements.
HAZARDS = [
    ("G_INT", "rebind('G_INT', 11)"), ("G_INT", "bump()"), ("DEBUG", "set_flag(True)"),
    ("M.SCALE", "set_scale(5)"), ("len(G_STR)", "shadow_len()"), ("G_STR", "rebind('G_STR', 'xy')"),
    ("G_TUPLE[0]", "rebind('G_TUPLE', (8, 9))"), ("G_FLOAT", "forget('G_FLOAT')"),
    ("(1 if DEBUG else 2)", "set_flag(1)"), ("M.SCALE * 2", "set_scale(-1)"),
    ("Config.LIMIT", "set_limit(3)"), ("SubConfig.LIMIT", "set_limit(4)"),
    ("CFG.scaled(2)", "set_limit(5)"),
]
# Helper calls that do not rebind anything (mutate() changes list contents in place).
PLAIN_CALLS = ["note(G_INT)", "mutate()", "note(len(G_LIST))", "kwhelper(1, scale=G_INT)"]


class Case:
    def __init__(self, index, name, source, inputs, steps, rebinds_mid_call, generator):
        self.index = index
        self.name = name
        self.source = source
        self.inputs = inputs
        self.steps = steps
        self.rebinds_mid_call = rebinds_mid_call
        self.generator = generator

    def __repr__(self):
        return f"Case({self.index}, {self.name})"


class FunctionGenerator:
    def __init__(self, seed):
        self.seed = seed

    # -- expressions -------------------------------------------------------------------------

    def _pick(self, options):
        """options: list of (weight, text or callable)."""
        total = sum(w for w, _ in options)
        x = self.rng.uniform(0, total)
        for weight, option in options:
            x -= weight
            if x <= 0:
                return option() if callable(option) else option
        option = options[-1][1]
        return option() if callable(option) else option

    def small(self):
        return str(self.rng.choice([0, 1, 2, 3, -1, 5]))

    def int_expr(self, depth=0):
        leaf = depth >= 2 or self.rng.random() < 0.35
        atoms = [
            (3, "G_INT"), (1, "G_NEG"), (1, "G_ZERO"), (3, "a"), (2, self.small), (2, "M.SCALE"),
            (1, "G_TRUE"), (1, "G_BIG"), (1, "G_INTSUB"), (1, "k"), (1, "len(G_STR)"),
            (1, "len(G_TUPLE)"), (1, "len(G_LIST)"), (1, "G_DICT['a']"), (1, "Config.LIMIT"),
            (1, "SubConfig.LIMIT"), (0.5, "CFG.LIMIT"), (0.5, "Config.limit()"),
        ] + [(2, v) for v in self.int_locals]
        if leaf:
            return self._pick(atoms)
        d = depth + 1
        e = lambda: self.int_expr(d)  # noqa: E731
        return self._pick([
            (4, lambda: f"({e()} {self.rng.choice(['+', '-', '*'])} {e()})"),
            (1, lambda: f"({e()} {self.rng.choice(['//', '%'])} {e()})"),
            (1, lambda: f"({e()} ** {self.rng.choice(['0', '1', '2', '3'])})"),
            (1, lambda: f"({e()} {self.rng.choice(['&', '|', '^'])} {e()})"),
            (1, lambda: f"({e()} << {self.rng.choice(['1', '3', '8'])})"),
            (1, lambda: f"-{e()}"), (1, lambda: f"~{e()}"), (1, lambda: f"abs({e()})"),
            (1, lambda: f"min({e()}, {e()})"), (1, lambda: f"max({e()}, {e()}, key=abs)"),
            (1, lambda: f"len({self.str_expr(d)})"), (1, lambda: f"len({self.tuple_expr(d)})"),
            (1, lambda: f"int({self.float_expr(d)})"), (1, lambda: f"round({self.float_expr(d)})"),
            (0.3, lambda: f"int({self.str_expr(d)})"), (1, "int(G_DIGITS) % 1000"),
            (1, lambda: f"sum({self.tuple_expr(d)})"), (1, lambda: f"divmod({e()}, {e()})[0]"),
            (1, lambda: f"{self.tuple_expr(d)}[{self.small()}]"),
            (1, lambda: f"ord({self.str_expr(d)}[0])"),
            (1, lambda: f"pow({e()}, {self.rng.choice(['2', '3'])})"),
            (1, lambda: f"kwhelper({e()}, b={e()}, scale={e()})"),
            (1, lambda: f"math.floor({self.float_expr(d)})"),
            (1, lambda: f"math.gcd({e()}, {e()})"),
            (1, lambda: f"M.twice({e()})"), (1, lambda: f"M.twice(v={e()})"),
            (0.5, lambda: f"Config.double({e()})"), (0.5, lambda: f"CFG.scaled({e()})"),
            (1, lambda: f"({e()} if {self.bool_expr(d)} else {e()})"),
            (1, lambda: f"G_DICT.get({self.str_expr(d)}, {e()})"),
            (0.3, lambda: f"int({self.str_expr(d)}, base=16)"),
            (1, lambda: f"bool({e()}) + {e()}"),
        ] + [(1, f"{fn}({e()})") for fn in self.closures])

    def float_expr(self, depth=0):
        atoms = [(3, "G_FLOAT"), (2, "math.pi"), (1, "math.e"), (2, "M.RATIO"), (1, "0.5"),
                 (1, "-2.25"), (1, "1e300")]
        if depth >= 2 or self.rng.random() < 0.4:
            return self._pick(atoms)
        d = depth + 1
        f = lambda: self.float_expr(d)  # noqa: E731
        return self._pick([
            (3, lambda: f"({f()} {self.rng.choice(['+', '-', '*'])} {f()})"),
            (1, lambda: f"({f()} / {self.int_expr(d)})"),
            (1, lambda: f"({f()} * {self.int_expr(d)})"),
            (1, lambda: f"math.sqrt(abs({f()}))"), (1, lambda: f"float({self.int_expr(d)})"),
            (1, lambda: f"abs({f()})"), (1, lambda: f"round({f()}, {self.small()})"),
            (1, lambda: f"round({f()}, ndigits=2)"), (1, lambda: f"min({f()}, {f()})"),
            (1, lambda: f"max({f()}, {self.int_expr(d)})"),
            (0.3, lambda: f"float({self.str_expr(d)})"),
            (1, lambda: f"({f()} ** 2)"), (1, lambda: f"math.fsum(({f()}, {f()}))"),
        ])

    def str_expr(self, depth=0):
        atoms = [(3, "G_STR"), (2, "M.NAME"), (3, "s"), (1, "'ab'"), (1, "G_EMPTY"),
                 (1, "G_STRSUB"), (1, "'12'"), (1, "M.MISSING"), (0.5, "Config.NAME"),
                 (0.5, "SubConfig.NAME")] + [(2, v) for v in self.str_locals]
        if depth >= 2 or self.rng.random() < 0.35:
            return self._pick(atoms)
        d = depth + 1
        t = lambda: self.str_expr(d)  # noqa: E731
        return self._pick([
            (3, lambda: f"({t()} + {t()})"),
            (1, lambda: f"({t()} * {self.rng.choice(['0', '2', '3'])})"),
            (1, lambda: f"{t()}.upper()"),
            (1, lambda: f"{t()}[1:]"),
            (1, lambda: f"{t()}[{self.small()}]"),
            (2, lambda: f"str({self.int_expr(d)})"), (1, lambda: f"repr({self.float_expr(d)})"),
            (1, lambda: f'f"{{{self.str_expr(9)}}}-{{{self.int_expr(9)}!r:>4}}"'),
            (1, lambda: f"'-'.join(({t()}, {t()}))"),
            (1, lambda: f"chr(65 + abs({self.int_expr(d)}) % 26)"),
            (1, lambda: f"{t()}.replace('l', 'L')"),
            (1, lambda: f"format({self.float_expr(d)}, '.3f')"),
            (1, lambda: f"'%s:%d' % ({t()}, {self.int_expr(d)})"),
            (1, lambda: f"({t()} if {self.bool_expr(d)} else {t()})"), (1, "str(G_HUGE)[:5]"),
            (1, lambda: f"str({self.tuple_expr(d)})"),
        ])

    def tuple_expr(self, depth=0):
        atoms = [(3, "G_TUPLE"), (2, "M.ITEMS"), (1, "(1, 2)"), (1, "()"), (1, "G_NESTED")]
        if depth >= 2 or self.rng.random() < 0.4:
            return self._pick(atoms)
        d = depth + 1
        t = lambda: self.tuple_expr(d)  # noqa: E731
        return self._pick([
            (2, lambda: f"({t()} + {t()})"),
            (1, lambda: f"{t()}[1:]"),
            (1, lambda: f"tuple(sorted({t()}))"),
            (1, lambda: f"tuple(sorted({t()}, reverse={self.bool_expr(d)}))"),
            (1, lambda: f"({self.int_expr(d)}, {self.str_expr(d)})"), (1, lambda: f"({t()} * 2)"),
            (1, lambda: f"tuple(x * G_INT for x in {t()})"), (1, lambda: f"tuple(G_LIST)"),
            (1, lambda: f"tuple([x + {self.int_expr(d)} for x in {t()}])"),
        ])

    def bool_expr(self, depth=0):
        atoms = [(2, "G_TRUE"), (2, "G_FALSE"), (3, "DEBUG"), (2, "M.FLAG"),
                 (1, "(G_NONE is None)"), (1, "bool(G_STR)"), (1, "(G_NESTED == (1, [2, 3]))"),
                 (1, "(len(G_LIST) > 3)")]
        if depth >= 2 or self.rng.random() < 0.4:
            return self._pick(atoms)
        d = depth + 1
        b = lambda: self.bool_expr(d)  # noqa: E731
        i = lambda: self.int_expr(d)  # noqa: E731
        return self._pick([
            (1, lambda: f"(not {b()})"),
            (1, lambda: f"({b()} and {b()})"),
            (1, lambda: f"({b()} or {b()})"),
            (2, lambda: f"({i()} {self.rng.choice(['<', '<=', '==', '!=', '>', '>='])} {i()})"),
            (1, lambda: f"({self.str_expr(d)} in {self.str_expr(d)})"),
            (1, lambda: f"({i()} in {self.tuple_expr(d)})"),
            (1, "isinstance(G_INT, int)"),
            (1, "callable(M.twice)"),
            (1, lambda: f"bool({self.str_expr(d)})"),
            (1, lambda: f"({self.float_expr(d)} > {self.float_expr(d)})"),
        ])

    def any_expr(self):
        kind = self.rng.choice(["int", "int", "float", "str", "str", "tuple", "bool"])
        return kind, getattr(self, f"{kind}_expr")()

    # -- statements ---------------------------------------------------------------------------

    def new_var(self):
        name = f"r{len(self.results)}"
        self.results.append(name)
        return name

    def bind(self, var, kind):
        if kind == "int":
            self.int_locals.append(var)
        elif kind == "str":
            self.str_locals.append(var)

    def helper_call(self):
        if self.rng.random() < 0.6:
            self.rebinds = True
            return self.rng.choice(REBINDING_CALLS)
        return self.rng.choice(PLAIN_CALLS)

    def statement(self, depth=0):
        """Lines (unindented) of one statement binding a new local on every path."""
        r = self.rng.random
        kind = self._pick([(6, "assign"), (3, "if"), (2, "for"), (1, "while"), (2, "try"),
                           (1, "closure"), (1, "lambda"), (2, "call"), (1, "kwcall"),
                           (1, "debug"), (1, "raise"), (1, "assert"), (1, "global"),
                           (1, "comprehension"), (1, "finally"), (2, "block"), (1, "with"),
                           (2, "hazard")])
        if depth > 0 and kind in ("closure", "lambda", "block", "global"):
            kind = "assign"
        var = self.new_var()
        if kind == "block":
            return self.block(var, depth)
        if kind == "assign":
            t, e = self.any_expr()
            self.bind(var, t)
            return [f"{var} = {e}"]
        if kind == "if":
            t = self.rng.choice(["int", "str"])
            expr = getattr(self, f"{t}_expr")
            lines = [f"if {self.bool_expr()}:", f"    {var} = {expr()}"]
            if r() < 0.4:
                lines += [f"elif {self.bool_expr()}:", f"    {var} = {expr()}"]
            lines += ["else:", f"    {var} = {expr()}"]
            self.bind(var, t)
            return lines
        if kind == "debug":
            return [f"if DEBUG:", f"    {var} = 'debug:' + str({self.int_expr()})",
                    "else:", f"    {var} = {self.str_expr()}"]
        if kind == "for":
            bound = self.rng.choice(["3", "5", "0", "len(G_TUPLE)", "G_INT % 4", "M.SCALE"])
            self.int_locals.append("i")
            body = self.int_expr()
            self.int_locals.remove("i")
            lines = [f"{var} = 0", f"for i in range({bound}):", f"    {var} += {body}"]
            if r() < 0.3:
                lines += [f"    if {var} > 50:", "        break"]
            if r() < 0.3:
                lines.insert(2, f"    {self.helper_call()}")
            self.bind(var, "int")
            return lines
        if kind == "while":
            return [f"{var} = 0", "n = 3", "while n > 0:", f"    {var} += {self.int_expr()}",
                    "    n -= 1"]
        if kind == "try":
            lines = ["try:"]
            if r() < 0.3:
                lines.append(f"    {self.helper_call()}")
            lines.append(f"    {var} = {self.int_expr()}")
            if r() < 0.3:
                lines.append(f"    {self.helper_call()}")
            if r() < 0.4:
                lines.append(f"    {var} = {var} // {self.int_expr()}")
            # handlers read globals too: a rebinding in the try body must be seen there
            lines += ["except ZeroDivisionError:", f"    {var} = ({self.int_expr()}, -1)",
                      "except (TypeError, ValueError, IndexError, OverflowError) as exc:",
                      f"    {var} = (type(exc).__name__ + ':' + str(exc)[:40], "
                      f"{self.str_expr()})"]
            if r() < 0.3:
                lines += ["else:", f"    {var} = ({var}, {self.str_expr()})"]
            return lines
        if kind == "finally":
            inner = self.int_expr()
            lines = [f"{var} = None", "try:"]
            if r() < 0.4:
                lines.append(f"    {self.helper_call()}")
            return lines + [f"    {var} = {inner}", "finally:",
                            f"    {var} = ({var}, {self.int_expr()})"]
        if kind == "closure":
            name = f"inner{len(self.results)}"
            captured = self.rng.choice(self.int_locals) if self.int_locals and r() < 0.6 else "a"
            lines = [f"def {name}(y, z=G_INT):"]
            if r() < 0.25:
                lines.append(f"    {self.helper_call()}")
            lines.append(f"    return y + z + {captured} + {self.int_expr(1)}")
            self.closures.append(name)
            lines.append(f"{var} = {name}({self.int_expr(1)})")
            self.bind(var, "int")
            return lines
        if kind == "lambda":
            name = f"fn{len(self.results)}"
            lines = [f"{name} = lambda y, *, w=1: (y * G_INT + w, M.NAME)",
                     f"{var} = {name}({self.int_expr(1)}, w={self.int_expr(1)})"]
            return lines
        if kind == "call":
            return [f"{var} = {self.helper_call()}"]
        if kind == "kwcall":
            return [f"{var} = " + self.rng.choice([
                f"kwhelper({self.int_expr()}, scale={self.int_expr()})",
                f"sorted({self.tuple_expr()}, key=abs, reverse={self.bool_expr()})",
                f"max({self.tuple_expr()}, default={self.int_expr()})",
                f"min({self.tuple_expr()}, default=None, key=lambda v: -v)",
                f"int({self.str_expr()}, base=10)",
                f"round({self.float_expr()}, ndigits={self.small()})",
                f"'{{x}}/{{y}}'.format(x={self.int_expr()}, y={self.str_expr()})",
            ])]
        if kind == "raise":
            return [f"if {self.bool_expr()}:",
                    f"    raise ValueError('bad ' + str({self.int_expr(1)}))",
                    f"{var} = {self.int_expr()}"]
        if kind == "assert":
            return [f"assert {self.bool_expr()}, 'assertion ' + {self.str_expr(1)}", f"{var} = 1"]
        if kind == "global":
            self.globals_written.append("G_FLOAT")
            return [f"{var} = {self.float_expr()}", f"G_FLOAT = {var}"]
        if kind == "hazard":
            return self.hazard(var)
        if kind == "with":
            return [f"with Ctx({self.str_expr(1)}):", f"    {var} = {self.int_expr()}"]
        if kind == "comprehension":
            return [f"{var} = [x + {self.int_expr(1)} for x in {self.tuple_expr()} if x != G_ZERO]"]
        raise AssertionError(kind)

    def hazard(self, var):
        """A global read after a call that rebinds that very global, the call and the read put
        in every control-flow position: straight line, in the same expression, after a loop's
        back-edge, in an except/else/finally clause, after an if's join, inside a with."""
        self.rebinds = True
        read, call = self.rng.choice(HAZARDS)
        shape = self.rng.randrange(10)
        if shape == 0:
            return [call, f"{var} = {read}"]
        if shape == 1:
            return [f"{var} = ({call}, {read})"]
        if shape == 2:
            return [f"{var} = kwhelper({call} and 0, b=0, scale=0), {read}"]
        if shape == 3:
            return [f"{var} = []", "for i in range(3):", f"    {var}.append({read})",
                    "    if i == 1:", f"        {call}"]
        if shape == 4:
            return [f"{var} = None", "try:", f"    {call}", "    1 // G_ZERO",
                    "except ZeroDivisionError:", f"    {var} = {read}"]
        if shape == 5:
            return [f"{var} = None", "try:", "    boom()", "except ValueError as exc:",
                    f"    {var} = (str(exc), {read})"] if read == "G_INT" else \
                   [f"{var} = None", "try:", f"    {call}", "except ValueError:", "    pass",
                    "else:", f"    {var} = {read}"]
        if shape == 6:
            return [f"{var} = None", "try:", f"    {call}", "finally:", f"    {var} = {read}"]
        if shape == 7:
            return [f"if {self.bool_expr(1)}:", f"    {call}", f"{var} = {read}"]
        if shape == 8:
            return ["with Ctx('x'):", f"    {call}", f"    {var} = {read}"]
        return [f"{var} = 0", "n = 2", "while n > 0:", f"    {var} = ({var}, {read})",
                "    n -= 1", f"    {call}"]

    def block(self, var, depth):
        """if/else whose branches hold whole statements (loops, try, nested ifs...): what a
        dead-branch pass removes. The inner locals are not returned (bound on one path only)."""
        saved = (len(self.results), list(self.int_locals), list(self.str_locals))
        lines = [f"{var} = None", f"if {self.bool_expr()}:"]
        for branch in range(2):
            first = len(self.results)
            inner = []
            for _ in range(self.rng.randint(1, 3)):
                inner += self.statement(depth + 1)
            names = self.results[first:]
            inner.append(f"{var} = ({', '.join(names)},)")
            lines += ["    " + line for line in inner]
            if branch == 0:
                lines.append("else:")
            self.int_locals, self.str_locals = list(saved[1]), list(saved[2])
        del self.results[saved[0]:]
        return lines

    # -- cases --------------------------------------------------------------------------------

    def case(self, index):
        self.rng = random.Random(f"{self.seed}:{index}")
        self.results, self.int_locals, self.str_locals, self.closures = [], [], [], []
        self.rebinds = False
        self.globals_written = []
        name = f"f{index}"
        body = []
        generator = self.rng.random() < 0.08
        if not generator and self.rng.random() < 0.15:
            body += [f"if {self.bool_expr()}:", f"    return {self.int_expr()}"]
        for _ in range(self.rng.randint(1, 6)):
            body += self.statement()
        if generator:
            body += [f"yield {v}" for v in self.results]
        else:
            body.append(f"return ({', '.join(self.results)},)")
        if self.globals_written:
            body.insert(0, "global G_FLOAT")
        source = f"def {name}(a, s, *, k=2):\n" + textwrap.indent("\n".join(body), "    ") + "\n"
        return Case(index, name, source, self._inputs(), self._steps(), self.rebinds, generator)

    def _inputs(self):
        args = [(3, "ab", 2), (0, "", 2), (-2, "hello", 5), (10, "xyz", 0), (1, "12", 1),
                (2.5, "a", 2), ("x", "b", 2), (7, 3, 2)]
        first = self.rng.sample(args[:5], 2)
        return first + self.rng.sample(args, 2)

    def _steps(self):
        steps = []
        choices = [
            (6, lambda: ("set", g := self.rng.choice(sorted(REBIND_TARGETS)),
                         self.rng.choice(REBIND_TARGETS[g]))),
            (1, lambda: ("del", self.rng.choice(["G_INT", "G_STR", "DEBUG", "G_TUPLE"]))),
            (3, lambda: ("mattr", m := self.rng.choice(sorted(MODULE_ATTR_TARGETS)),
                         self.rng.choice(MODULE_ATTR_TARGETS[m]))),
            (1, lambda: ("mdel", self.rng.choice(["SCALE", "NAME", "FLAG"]))),
            (2, lambda: ("cattr", self.rng.choice(["Config", "SubConfig"]),
                         a := self.rng.choice(sorted(CLASS_ATTR_TARGETS)),
                         self.rng.choice(CLASS_ATTR_TARGETS[a]))),
            (1, lambda: ("cdel", "SubConfig", "NAME")),
            (1, lambda: ("shadow", self.rng.choice(sorted(BUILTIN_FAKES)))),
            (1, lambda: ("unshadow", self.rng.choice(sorted(BUILTIN_FAKES)))),
            (1, lambda: ("builtin", self.rng.choice(sorted(BUILTIN_FAKES)))),
            (1, lambda: ("mutate",)), (1, lambda: ("digits", self.rng.choice([640, 5000]))),
            (1, lambda: ("respecialize",)),
            (2, lambda: ("restore",)),
        ]
        for _ in range(self.rng.randint(3, 6)):
            steps.append(self._pick(choices))
        return steps


def value(key, namespace):
    """A fresh object for VALUES[key], evaluated in `namespace` (for IntLike, StrLike)."""
    return eval(VALUES[key], namespace)
