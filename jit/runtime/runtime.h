// The runtime: C++ functions that native code calls, one per CPython 3.11 opcode it does not
// inline, each with exactly the semantics of that opcode's TARGET in Python/ceval.c (3.11),
// plus the frame-level entry and exit helpers (frame_exits.h).
//
// The value stack of a compiled function lives where the interpreter keeps it, in the frame:
// frame->localsplus[co_nlocalsplus + i]. Native code knows every stack depth statically, so it
// calls an opcode helper with `sp`, the address of the first free slot before the instruction
// (&localsplus[co_nlocalsplus + depth_before]); the instruction's inputs are sp[-1] (top),
// sp[-2], ... and it leaves its outputs in place of its inputs, so that afterwards the stack has
// the depth the compiler's stack effect gives (PyCompile_OpcodeStackEffectWithJump).
//
// Every opcode helper has the same type, OpHelper:
//     int64_t fatjit_rt_OPNAME(PyThreadState* tstate, _PyInterpreterFrame* frame,
//                              PyObject** sp, int64_t oparg, PyObject* aux);
//   oparg: the instruction's full argument (EXTENDED_ARG prefixes folded in).
//   aux:   an operand the frontend resolves at compile time (a borrowed reference kept alive by
//          the compiled function), or null; see each helper.
//   returns 0 on success; -1 with an exception set on error. FOR_ITER also returns 1 (below).
//   On error the helper leaves every slot of its inputs either untouched (still holding its
//   reference) or null (its reference released): the frontend then hands the frame to the
//   interpreter at depth_before, which unwinds and decrefs the slots as ceval's error path does.
//   Outputs are owned references. A helper never touches slots below its inputs, except the
//   documented ones (LIST_APPEND & co. read the container deeper in the stack).
//   Helpers do not set frame->prev_instr: native code stores it before every call.
//   Names and constants come from `aux` or from frame->f_code (the ORIGINAL code object, which
//   has the same co_localsplusnames, co_names and layout as the specialized code compiled).
//
// Kinds (the second column of FATJIT_RUNTIME_OPS):
//   kRunsCode:  may run arbitrary Python code (calls, operators, attribute access, __del__).
//               Native code re-checks tracing and guards after it.
//   kNoCode:    runs no Python code (allocation only; no decref that can reach zero on a
//               user object). Native code needs no check after it.
//   kForIter:   FOR_ITER: 0 = the next value was pushed (depth + 1); 1 = the iterator is
//               exhausted, has been popped and released (depth - 1), StopIteration cleared;
//               -1 = error, the iterator still on the stack. Runs code.
#ifndef FATJIT_JIT_RUNTIME_RUNTIME_H_
#define FATJIT_JIT_RUNTIME_RUNTIME_H_

#include <cstdint>

#include "base/python.h"

namespace fatjit::jit {

enum class HelperKind { kRunsCode, kNoCode, kForIter };

using OpHelper = int64_t (*)(PyThreadState* tstate, _PyInterpreterFrame* frame, PyObject** sp,
                             int64_t oparg, PyObject* aux);

// V(OPNAME, kind): every opcode native code reaches through a helper. aux is null unless noted.
#define FATJIT_RUNTIME_OPS(V)                                                                   \
  /* values: operators, containers, unpacking, formatting, iteration, match (values.cc) */      \
  V(UNARY_POSITIVE, kRunsCode)                                                                  \
  V(UNARY_NEGATIVE, kRunsCode)                                                                  \
  V(UNARY_NOT, kRunsCode)                                                                       \
  V(UNARY_INVERT, kRunsCode)                                                                    \
  V(BINARY_OP, kRunsCode)          /* oparg: NB_* (binary and in-place) */                      \
  V(COMPARE_OP, kRunsCode)         /* oparg: Py_LT.. */                                         \
  V(CONTAINS_OP, kRunsCode)        /* oparg 1: not in */                                        \
  V(BINARY_SUBSCR, kRunsCode)                                                                   \
  V(STORE_SUBSCR, kRunsCode)                                                                    \
  V(DELETE_SUBSCR, kRunsCode)                                                                   \
  V(BUILD_SLICE, kNoCode)                                                                       \
  V(BUILD_STRING, kNoCode)                                                                      \
  V(BUILD_TUPLE, kNoCode)                                                                       \
  V(BUILD_LIST, kNoCode)                                                                        \
  V(BUILD_SET, kRunsCode)          /* hashes its items */                                       \
  V(BUILD_MAP, kRunsCode)                                                                       \
  V(BUILD_CONST_KEY_MAP, kRunsCode)                                                             \
  V(LIST_APPEND, kNoCode)          /* the list is sp[-oparg - 1] (after popping the item) */    \
  V(SET_ADD, kRunsCode)                                                                         \
  V(MAP_ADD, kRunsCode)                                                                         \
  V(LIST_TO_TUPLE, kNoCode)                                                                     \
  V(LIST_EXTEND, kRunsCode)                                                                     \
  V(SET_UPDATE, kRunsCode)                                                                      \
  V(DICT_UPDATE, kRunsCode)                                                                     \
  V(DICT_MERGE, kRunsCode)         /* error messages name the callee at sp[-3 - oparg] */         \
  V(UNPACK_SEQUENCE, kRunsCode)                                                                 \
  V(UNPACK_EX, kRunsCode)                                                                       \
  V(FORMAT_VALUE, kRunsCode)                                                                    \
  V(GET_LEN, kRunsCode)                                                                         \
  V(MATCH_MAPPING, kNoCode)                                                                     \
  V(MATCH_SEQUENCE, kNoCode)                                                                    \
  V(MATCH_KEYS, kRunsCode)                                                                      \
  V(MATCH_CLASS, kRunsCode)                                                                     \
  V(GET_ITER, kRunsCode)                                                                        \
  V(FOR_ITER, kForIter)                                                                         \
  /* names, cells, attributes, calls, functions, imports, with, raise (objects.cc) */           \
  V(LOAD_GLOBAL, kRunsCode)        /* aux: co_names[oparg >> 1]; pushes NULL first if oparg&1 */ \
  V(STORE_GLOBAL, kRunsCode)       /* aux: the name */                                          \
  V(DELETE_GLOBAL, kRunsCode)      /* aux: the name */                                          \
  V(DELETE_FAST, kRunsCode)        /* oparg: localsplus index */                                \
  V(MAKE_CELL, kNoCode)            /* oparg: localsplus index */                                \
  V(COPY_FREE_VARS, kNoCode)       /* oparg: count; from frame->f_func->func_closure */         \
  V(LOAD_DEREF, kNoCode)           /* oparg: localsplus index of the cell */                    \
  V(STORE_DEREF, kRunsCode)                                                                     \
  V(DELETE_DEREF, kRunsCode)                                                                    \
  V(LOAD_ATTR, kRunsCode)          /* aux: the name */                                          \
  V(STORE_ATTR, kRunsCode)         /* aux: the name */                                          \
  V(DELETE_ATTR, kRunsCode)        /* aux: the name */                                          \
  V(LOAD_METHOD, kRunsCode)        /* aux: the name */                                          \
  V(PRECALL, kNoCode)              /* unpacks a bound method in the callable slot */            \
  V(CALL, kRunsCode)               /* aux: the KW_NAMES tuple before it, or null */             \
  V(CALL_FUNCTION_EX, kRunsCode)                                                                \
  V(MAKE_FUNCTION, kNoCode)                                                                     \
  V(LOAD_BUILD_CLASS, kRunsCode)                                                                \
  V(LOAD_ASSERTION_ERROR, kNoCode)                                                              \
  V(IMPORT_NAME, kRunsCode)        /* aux: the name */                                          \
  V(IMPORT_FROM, kRunsCode)        /* aux: the name */                                          \
  V(BEFORE_WITH, kRunsCode)                                                                     \
  V(RAISE_VARARGS, kRunsCode)      /* oparg 1 or 2 only (a bare raise deopts); always -1 */

#define FATJIT_DECLARE_OP_HELPER(name, kind)                                               \
  extern "C" int64_t fatjit_rt_##name(PyThreadState* tstate, _PyInterpreterFrame* frame, \
                                      PyObject** sp, int64_t oparg, PyObject* aux);
FATJIT_RUNTIME_OPS(FATJIT_DECLARE_OP_HELPER)
#undef FATJIT_DECLARE_OP_HELPER

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_RUNTIME_H_
