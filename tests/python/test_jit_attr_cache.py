"""The JIT's per-site attribute caches (jit/runtime/attr_cache.h): LOAD_ATTR, STORE_ATTR and
LOAD_METHOD answered from a cache must give exactly what the interpreter gives.

Each test defines the same classes and a loop `run` in two fresh modules, compiles `run` in one
of them, warms its sites up, then changes the world in the middle of the loop (a class attribute
added, a slot deleted, __dict__ materialized, __class__ assigned, a base class modified, ...) and
checks that both copies return the same results, raise the same exceptions and keep the same
reference counts; the attr_cache_hits counter shows the cache really answered.
"""

import sys

import pytest

import fatjit

from test_jit import native_calls_of, outcome


def hits():
    return fatjit.stats()["jit"]["attr_cache_hits"]


def same(native, plain, *args, name="run"):
    """Runs module.name(*args) in both copies; both outcomes must agree. Returns native's."""
    got = outcome(lambda: getattr(native, name)(*args))
    want = outcome(lambda: getattr(plain, name)(*args))
    assert got == want
    return got


def check_world_change(jit, source, n=60, k=30, min_hits=20):
    """`source` defines `run(n, k)` that loops n times and calls change() at iteration k."""
    native, plain = jit(source, "run")
    same(native, plain, n, -1)  # warm-up: caches filled, nothing changed
    before = hits()
    result = same(native, plain, n, k)
    assert hits() - before >= min_hits
    assert native_calls_of(native.run) >= 2
    return result


# run(n, k): reads {read} n times, calling change() at iteration k.
READ_LOOP = """
    def run(n, k):
        out = []
        for i in range(n):
            if i == k:
                change()
            out.append({read})
        return out
"""

INSTANCE = """
    class C:
        def __init__(self):
            self.x = 1
            self.y = 2

        def m(self):
            return 10

    o = C()
""" + READ_LOOP.format(read="(o.x, o.y)")


@pytest.mark.parametrize("change", [
    "C.x = property(lambda self: 'prop')",             # a data descriptor now wins
    "del o.x",                                         # value gone: AttributeError
    "del o.x; C.x = 'class'",                          # value gone: the class attribute
    "vars(o)",                                         # __dict__ materialized
    "o.__dict__['x'] = 'via dict'",                    # materialized and changed
    "o.__class__ = D",                                 # another type
    "C.__getattribute__ = lambda self, name: 'ga'",    # overriding __getattribute__
    "o.z = 3",                                         # another attribute added
    "C.y = 'shadowed by the instance'",                # non-data class attribute: no effect
])
def test_load_instance_value(jit, change):
    check_world_change(jit, INSTANCE.replace("change()", change) + """
    class D:
        x = 'D.x'
        y = 'D.y'
""")


def test_load_instance_base_class_modified(jit):
    check_world_change(jit, """
        class Base:
            pass

        class C(Base):
            def __init__(self):
                self.x = 1

        o = C()

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    Base.x = property(lambda self: 'from base')
                out.append(o.x)
            return out
    """)


def test_load_getattr_added_for_missing_attribute(jit):
    check_world_change(jit, """
        class C:
            def __init__(self):
                self.x = 1

        o = C()

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    del o.x
                    C.__getattr__ = lambda self, name: ('getattr', name)
                out.append(o.x)
            return out
    """)


def test_load_several_types_at_one_site(jit):
    check_world_change(jit, """
        class A:
            def __init__(self):
                self.x = 'a'

        class B:
            __slots__ = ('x',)
            def __init__(self):
                self.x = 'b'

        objs = [A(), B(), A()]

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    objs.append(B())
                for o in objs:
                    out.append(o.x)
            return out
    """, min_hits=100)


def test_more_types_than_entries_at_one_site(jit):
    # Six types through one site of four entries: entries are replaced, answers stay exact.
    check_world_change(jit, """
        classes = [type(f'T{j}', (), {'x': j}) for j in range(6)]
        objs = []
        for j, cls in enumerate(classes):
            o = cls()
            if j % 2:
                o.x = -j
            objs.append(o)

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    classes[0].x = property(lambda self: 'prop')
                for o in objs:
                    out.append(o.x)
            return out
    """, min_hits=0)


def test_materialized_dict_reordered(jit):
    # After vars(o) the site reads the instance dict through an entry index; rebuilding the
    # dict in another order moves the name to another entry.
    check_world_change(jit, """
        class C:
            def __init__(self):
                self.x = 'x'
                self.y = 'y'

        o = C()
        vars(o)

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    d = o.__dict__
                    items = list(d.items())
                    d.clear()
                    d.update(reversed(items))
                if k >= 0 and i == k + 5:
                    o.__dict__.clear()
                out.append((o.x, o.y))
            return out
    """)


SLOTS = """
    class P:
        __slots__ = ('x', 'y')

        def __init__(self):
            self.x = 1.5
            self.y = 2.5

    p = P()

    def run(n, k):
        out = []
        for i in range(n):
            if i == k:
                change()
            p.x = p.x + 1.0
            out.append(p.y)
        return out
"""


@pytest.mark.parametrize("change", [
    "del p.y",                                          # empty slot: AttributeError
    "P.y = property(lambda self: 'prop')",              # the member replaced
    "P.x = property(lambda self: 1.0, lambda self, v: None)",  # store through a setter
    "P.__setattr__ = lambda self, name, v: None",       # stores ignored
])
def test_slots(jit, change):
    check_world_change(jit, SLOTS.replace("change()", change))


def test_store_instance_value(jit):
    native, plain = jit("""
        class C:
            def __init__(self):
                self.a = 0
                self.b = 0

        def run(n, k):
            objs = [C() for _ in range(3)]
            for i in range(n):
                if i == k:
                    vars(objs[1])                      # materialized: stores go to the dict
                    objs[2].__class__ = D
                    C.b = property(lambda self: 'p', lambda self, v: setattr(self, 'a', v))
                for o in objs:
                    o.a = i
                    o.b = -i
            return [sorted(vars(o).items()) for o in objs] + [[o.a, o.b] for o in objs]

        class D:
            pass
    """, "run")
    same(native, plain, 20, -1)
    same(native, plain, 40, 20)


def test_store_new_attribute_keeps_insertion_order(jit):
    # The first store of an attribute into an instance's values records its place in the
    # values' insertion order: vars() must list attributes in the order they were set.
    native, plain = jit("""
        class C:
            pass

        def fill(o, names, value):
            for name in names:
                setattr(o, name, value)

        def run(n, k):
            out = []
            seed = C()
            fill(seed, 'dcba', 0)   # the shared keys now hold d, c, b, a
            for i in range(n):
                o = C()
                o.a = i
                o.c = i
                o.d = i
                out.append(list(vars(o)))
            return out
    """, "run")
    same(native, plain, 30, -1)
    before = hits()
    same(native, plain, 30, -1)
    assert hits() - before >= 60


MODULE = """
    import types

    m = types.ModuleType('m')
    m.value = 1

    def run(n, k):
        out = []
        for i in range(n):
            if i == k:
                change()
            out.append(m.value)
            out.append(m.value2 if hasattr(m, 'value2') else None)
        return out
"""


@pytest.mark.parametrize("change", [
    "m.value = 2",
    "del m.value",
    "del m.value; m.__getattr__ = lambda name: ('getattr', name)",
    "m.value2 = 'new'; m.value = 3",
    "m.__class__ = Sub",
    # entries compacted by a resize: the cached entry index now holds another name
    "del m.__doc__, m.__name__\n                for j in range(40): setattr(m, f'b{j}', j)",
])
def test_module_attribute(jit, change):
    check_world_change(jit, MODULE.replace("change()", change) + """
    class Sub(types.ModuleType):
        @property
        def value(self):
            return 'Sub.value'
""")


CLASS = """
    class Meta(type):
        pass

    class K:
        CONST = 7

        def f(x):
            return x * 2

    class Sub(K):
        pass

    def run(n, k):
        out = []
        for i in range(n):
            if i == k:
                change()
            out.append(K.CONST)
            out.append(Sub.f(i))
        return out
"""


@pytest.mark.parametrize("change", [
    "K.CONST = 8",
    "del K.CONST",
    "K.f = staticmethod(lambda x: -x)",
    "K.f = classmethod(lambda cls, x: cls.__name__)",
    "Sub.f = lambda x: 'sub'",
    "Sub.__bases__ = (Other,)",
])
def test_class_attribute(jit, change):
    check_world_change(jit, CLASS.replace("change()", change) + """
    class Other:
        CONST = 'other'
        def f(x):
            return 'other'
""")


METHOD = """
    class Base:
        def m(self):
            return 'base'

    class C(Base):
        def __init__(self):
            self.v = 1

    class S:
        __slots__ = ('v',)

        def m(self):
            return 'slots'

    o = C()
    s = S()
    lst = []

    def run(n, k):
        out = []
        for i in range(n):
            if i == k:
                change()
            out.append(o.m())
            out.append(s.m())
            lst.append(i)
        out.append(len(lst))
        return out
"""


@pytest.mark.parametrize("change", [
    "C.m = lambda self: 'C.m'",                        # the method replaced on the class
    "Base.m = lambda self: 'Base.m'",                  # ... on a base class
    "o.m = lambda: 'instance'",                        # an instance attribute shadows it
    "vars(o)",                                         # dict materialized
    "o.__dict__['m'] = lambda: 'dict'",                # materialized and shadowed
    "o.__class__ = D",                                 # another type
    "del Base.m",                                      # gone: AttributeError
    "S.m = property(lambda self: lambda: 'prop')",     # a data descriptor
    "C.__getattribute__ = lambda self, name: lambda: 'ga'",
])
def test_load_method(jit, change):
    check_world_change(jit, METHOD.replace("change()", change) + """
    class D:
        def m(self):
            return 'D'
""")


def test_method_shadowed_by_other_instance(jit):
    # The shared keys grow when any instance gets an attribute named like the method: the
    # cache must notice even though the instance at the site is not the one changed.
    check_world_change(jit, """
        class C:
            def m(self):
                return 'method'

        a = C()
        b = C()

        def run(n, k):
            out = []
            for i in range(n):
                if i == k:
                    b.m = lambda: 'shadow'
                for x in (a, b):
                    out.append(x.m())
            return out
    """)


PROPERTY = """
    calls = []

    class C:
        def __init__(self):
            self._x = 1

        @property
        def x(self):
            calls.append(1)
            return self._x * 2

    class D:
        x = 'D.x'

    o = C()
""" + READ_LOOP.format(read="(o.x, len(calls))")


@pytest.mark.parametrize("change", [
    "C.x = property(lambda self: 'new getter')",     # another property on the class
    "C.x.__init__(lambda self: 'init again')",       # the same property, another getter
    "C.x.__init__(None)",                            # no getter: AttributeError
    "C.x = property(bool)",                          # a getter that is not a Python function
    "C.x = property(lambda self: 1 / 0)",            # a getter that raises
    "C.x = 'class'",                                 # no longer a property
    "del C.x",                                       # gone: AttributeError
    "o.__dict__['x'] = 'shadow'",                    # a data descriptor wins over the dict
    "o._x = 20",                                     # what the getter reads
    "o.__class__ = D",                               # another type
    "C.__getattribute__ = lambda self, name: 'ga'",  # overriding __getattribute__
])
def test_property(jit, change):
    check_world_change(jit, PROPERTY.replace("change()", change))


def test_property_getter_with_native_code_is_called_directly(jit):
    native, plain = jit(PROPERTY.replace("change()", "pass"), "run")
    getter = native.C.x.fget
    fatjit.jit(getter)
    try:
        same(native, plain, 40, -1)  # both compiled, the site's cache filled
        before = fatjit.stats()["jit"]["direct_calls"]
        counts = sys.getrefcount(native.o), sys.getrefcount(getter), sys.getrefcount(native.C.x)
        assert same(native, plain, 40, -1)[0] == [(2, 41 + i) for i in range(40)]
        assert fatjit.stats()["jit"]["direct_calls"] - before >= 40
        assert (sys.getrefcount(native.o), sys.getrefcount(getter),
                sys.getrefcount(native.C.x)) == counts
    finally:
        fatjit.unspecialize(getter)


def test_refcounts(jit):
    native, plain = jit("""
        class C:
            def __init__(self, v):
                self.v = v

            def m(self):
                return self.v

        class S:
            __slots__ = ('v',)

        def run(o, s, value, n):
            for i in range(n):
                o.v = value
                s.v = value
                o.m()
                x = o.v
                y = s.v
                z = C.m
            return x, y, z
    """, "run")
    for module in (plain, native):
        value = object()
        o = module.C(None)
        s = module.S()
        module.run(module.C(None), module.S(), None, 3)  # compiled (the specialization may
        # keep what it inlined, such as C.m, alive)
        counts = (sys.getrefcount(value), sys.getrefcount(o), sys.getrefcount(s),
                  sys.getrefcount(module.C.m))
        module.run(o, s, value, 50)
        module.run(o, s, value, 50)
        o.v = None
        del s.v
        assert (sys.getrefcount(value), sys.getrefcount(o), sys.getrefcount(s),
                sys.getrefcount(module.C.m)) == counts


def test_cache_hits_counted(jit):
    native, plain = jit("""
        class C:
            def __init__(self):
                self.x = 1

            def m(self):
                return 2

        def run(o, n):
            t = 0
            for i in range(n):
                o.x = o.x + o.m()
            return o.x
    """, "run")
    o = native.C()
    native.run(o, 5)
    before = hits()
    assert native.run(o, 1000) == plain.run(plain.C(), 1005)
    assert hits() - before >= 3000


def test_errors_match(jit):
    native, plain = jit("""
        class C:
            __slots__ = ('a',)

        def run(o):
            return o.a

        def store(o):
            o.b = 1
    """, "run", "store")
    for _ in range(3):
        assert outcome(lambda: native.run(native.C())) == outcome(lambda: plain.run(plain.C()))
        assert (outcome(lambda: native.store(native.C()))
                == outcome(lambda: plain.store(plain.C())))


def test_instance_values_and_slots_are_read_inline(jit):
    # The first cache entry's instance-value and slot reads are native code (no helper call on a
    # hit); an owner that only the stack holds still goes through the helper, so its __del__
    # runs inside the instruction, as in the interpreter.
    native, plain = jit("""
        log = []

        class P:
            def __init__(self, v):
                self.v = v

        class S:
            __slots__ = ("v",)
            def __init__(self, v):
                self.v = v

        class Dying:
            def __init__(self, v):
                self.v = v
            def __del__(self):
                log.append("del")

        def run(n, k):
            p, s = P(1.5), S("s")
            out = []
            for i in range(n):
                if i == k:
                    p.v = "changed"
                    del s.v
                out.append(p.v)
                try:
                    out.append(s.v)
                except AttributeError as e:
                    out.append(str(e))
                out.append(Dying(i).v)
                out.append(len(log))
            return out
    """, "run")
    same(native, plain, 10, -1)
    before = hits()
    same(native, plain, 20, 7)
    assert hits() - before >= 20
    ir = fatjit.explain(native.run, ir=True)
    assert "attr_instance_value" in ir and "attr_slot" in ir and "attr_cache_hit" in ir


def test_instance_and_slot_stores_are_inline(jit):
    # Stores over an existing value are native code; a value with a finalizer is replaced on the
    # helper's path (its __del__ runs at the store), and a new attribute keeps the instance
    # dict's insertion order.
    native, plain = jit("""
        log = []

        class Dying:
            def __del__(self):
                log.append("del")

        class P:
            def __init__(self):
                self.a = 0.5
                self.b = None

        class S:
            __slots__ = ("a", "b")
            def __init__(self):
                self.a = 0.5

        def run(n, k):
            p, s = P(), S()
            out = []
            for i in range(n):
                p.a = p.a * 2.0 + i          # an int/float with one reference is replaced
                s.a = s.a + i
                p.b = Dying() if i % 3 == 0 else "shared"
                s.b = Dying() if i % 4 == 0 else "shared"
                out.append(len(log))
                if i == k:
                    p.c = i                   # a new attribute after the cached ones
                    p.__dict__                # materialized: the inline path misses
            out.append((p.a, s.a, list(vars(p))))
            return out
    """, "run")
    same(native, plain, 10, -1)
    before = hits()
    same(native, plain, 20, 7)
    assert hits() - before >= 40
    ir = fatjit.explain(native.run, ir=True)
    assert "attr_store_hit" in ir


def test_methods_are_found_inline_until_an_instance_shadows_them(jit):
    native, plain = jit("""
        class Base:
            def m(self):
                return "base"

        class C(Base):
            def __init__(self):
                self.x = 1

        class NoDict:
            __slots__ = ()
            def m(self):
                return "nodict"

        def run(n, k):
            c, s = C(), NoDict()
            out = []
            for i in range(n):
                if i == k:
                    c.m = lambda: "instance"     # shadows the method: the inline probe misses
                if i == k + 3:
                    Base.m = lambda self: "rebound"
                out.append((c.m(), s.m()))
            return out
    """, "run")
    same(native, plain, 10, -1)
    before = hits()
    same(native, plain, 20, 7)
    assert hits() - before >= 20
    assert "method_cache_hit" in fatjit.explain(native.run, ir=True)
