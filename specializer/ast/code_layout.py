"""Code-object facts the driver and the import hook's registration share (no ast import, so a
cached import stays cheap).

Assumes: CPython 3.11 code objects.
Produces: code_objects / index_codes (finding a function's code in a compiled module by
qualname and first line), check_compatible (can specialized code run in the original's frame:
the PEP 510 API's own checks plus equal names, locals layout and a stack no deeper), and
make_entry_stable (RESUME 0 -> RESUME 2 at entry, as the bytecode specializer does).
Sound because: a function's code is identified by what the compiler derives from its source
position, and check_compatible compares every field the frame layout depends on.
"""


from .constant_values import PLACEHOLDER_PREFIX, parse_placeholder

RESUME = 151  # opcode.opmap["RESUME"] on 3.11 (test_ast_passes checks it); importing opcode
              # here would make the import hook transform it while registering
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async gen


def code_objects(code):
    """Every code object nested in `code` (itself included), depth first."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(c for c in current.co_consts if hasattr(c, "co_code"))


def index_codes(module_code):
    """(qualname, firstlineno) -> code object; ambiguous keys map to None."""
    table = {}
    for code in code_objects(module_code):
        key = (code.co_qualname, code.co_firstlineno)
        table[key] = None if key in table else code
    return table


def make_entry_stable(code):
    """RESUME 0 -> RESUME 2 at entry (not for generators and coroutines)."""
    if code.co_flags & _GENERATOR_FLAGS:
        return code
    raw = bytearray(code.co_code)
    for offset in range(0, len(raw), 2):
        if raw[offset] == RESUME:
            if raw[offset + 1] == 0:
                raw[offset + 1] = 2
                return code.replace(co_code=bytes(raw))
            return code
    return code


_SAME = ("co_name", "co_qualname", "co_firstlineno", "co_filename", "co_argcount",
         "co_posonlyargcount", "co_kwonlyargcount", "co_flags", "co_varnames", "co_cellvars",
         "co_freevars", "co_nlocals")


def check_compatible(original, specialized):
    """None when `specialized` can run in `original`'s frame, else the reason it cannot."""
    for field in _SAME:
        if getattr(original, field) != getattr(specialized, field):
            return f"{field} differs"
    if specialized.co_stacksize > original.co_stacksize:
        return "deeper value stack"
    return None


def placeholders_in(code):
    return [c for c in code.co_consts
            if type(c) is str and c.startswith(PLACEHOLDER_PREFIX)]


def placeholder_values(code, resolve):
    """{placeholder: object} for the placeholders of `code`; resolve(kind, name) -> object."""
    return {c: resolve(*parse_placeholder(c)) for c in placeholders_in(code)}
