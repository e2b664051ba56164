"""Code-object facts the driver and the import hook's registration share (no ast import, so a
cached import stays cheap).

Assumes: CPython 3.11 code objects.
Produces: code_objects / index_codes / const_path (finding a function's code in a
compiled module by qualname and first line), check_compatible (can specialized code run in
the original's frame: the PEP 510 API's own checks plus equal names, locals layout and a stack
no deeper), and
make_entry_stable (RESUME 0 -> RESUME 2 at entry, as the bytecode specializer does).
Sound because: a function's code is identified by what the compiler derives from its source
position, and check_compatible compares every field the frame layout depends on.
"""


from .constant_values import (PLACEHOLDER_PREFIX, parse_placeholder, parse_placeholder_name,
                              placeholder)

# opcode.opmap on 3.11 (test_ast_passes checks them); importing opcode here would make the
# import hook transform it while registering
RESUME = 151
LOAD_GLOBAL = 116
LOAD_CONST = 100
PUSH_NULL = 2
NOP = 9
EXTENDED_ARG = 144
LOAD_GLOBAL_CACHES = 5  # opcode._inline_cache_entries[LOAD_GLOBAL]
_GENERATOR_FLAGS = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async gen


def code_objects(code):
    """Every code object nested in `code` (itself included), depth first."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(c for c in current.co_consts if hasattr(c, "co_code"))


_CO_NEWLOCALS = 0x2  # set on function code; module and class bodies run in a given namespace


def const_path(module_code, code):
    """The indexes leading from `module_code` to `code` through co_consts (class bodies, then
    the function), found along its qualname, class body by class body; None when `code` is
    not found that way. Stored with a cached entry so that a cached import checks a
    function's identity in O(depth) (registration.code_at)."""
    container = module_code
    path = []
    parts = code.co_qualname.split(".")
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        for index, const in enumerate(container.co_consts):
            if hasattr(const, "co_code") and const.co_qualname == prefix and \
                    not const.co_flags & _CO_NEWLOCALS:
                container = const
                path.append(index)
                break
        else:
            return None
    for index, const in enumerate(container.co_consts):
        if const is code:
            return tuple(path) + (index,)
    return None


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


def load_placeholders_as_constants(code, inline_cache_entries):
    """`code` with every LOAD_GLOBAL of a placeholder name (constant_values.placeholder_name)
    turned into a LOAD_CONST of the matching placeholder string, which registration swaps for
    the object (fatjit.replace_consts). The function's own instructions only: nested scopes
    never get guarded rewrites.

    The rewrite keeps every instruction's offset: the LOAD_GLOBAL's slot (its EXTENDED_ARGs,
    the instruction, its 5 inline cache entries) becomes [PUSH_NULL] [EXTENDED_ARG...]
    LOAD_CONST, then NOPs up to the slot's size. A LOAD_GLOBAL with the NULL bit (oparg & 1)
    pushes NULL below the object, as PUSH_NULL then LOAD_CONST do; the stack depth at every
    instruction is unchanged, and so are jump targets, the exception table and the line table
    (each NOP keeps the location of the code unit it replaces). inline_cache_entries: opcode
    -> cache units (opcode._inline_cache_entries), to walk instructions as CPython does.
    """
    raw = bytearray(code.co_code)
    consts = list(code.co_consts)
    changed = False
    offset = 0
    extended = 0
    slot_start = None
    while offset < len(raw):
        op, arg = raw[offset], raw[offset + 1]
        if op == EXTENDED_ARG:
            slot_start = offset if slot_start is None else slot_start
            extended = (extended | arg) << 8
            offset += 2
            continue
        oparg = extended | arg
        start = offset if slot_start is None else slot_start
        extended, slot_start = 0, None
        end = offset + 2 * (1 + inline_cache_entries[op])
        if op == LOAD_GLOBAL:
            parsed = parse_placeholder_name(code.co_names[oparg >> 1])
            if parsed is not None:
                value = placeholder(*parsed)
                index = next((i for i, c in enumerate(consts)
                              if type(c) is str and c == value), None)
                if index is None:
                    index = len(consts)
                    consts.append(value)
                units = [(PUSH_NULL, 0)] if oparg & 1 else []
                shifts = [s for s in (24, 16, 8) if index >> s]
                units += [(EXTENDED_ARG, (index >> s) & 0xFF) for s in shifts]
                units.append((LOAD_CONST, index & 0xFF))
                units += [(NOP, 0)] * ((end - start) // 2 - len(units))
                raw[start:end] = bytes(b for unit in units for b in unit)
                changed = True
        offset = end
    if not changed:
        return code
    return code.replace(co_code=bytes(raw), co_consts=tuple(consts))
