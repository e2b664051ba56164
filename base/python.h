// The one way fatjit includes CPython's headers, internal ones included.
//
// Every translation unit that touches CPython includes this file instead of <Python.h>, so the
// build-core macros and the g++ workaround below are applied exactly once, the same way
// everywhere. Version-specific struct access lives behind base/cpython_compat.h, not here.
#ifndef FATJIT_BASE_PYTHON_H_
#define FATJIT_BASE_PYTHON_H_

#ifndef Py_BUILD_CORE_MODULE
#define Py_BUILD_CORE_MODULE 1
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>
// g++-12 in C++20 mode rejects pycore_atomic.h's C11 <stdatomic.h> branch; the __atomic branch
// has the same layout (DESIGN.md, "Build and linking").
#undef HAVE_STD_ATOMIC
#include <frameobject.h>
#include <internal/pycore_dict.h>
#include <internal/pycore_frame.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "fatjit supports CPython 3.11 only for now (see README, 'Interpreters')"
#endif

#endif  // FATJIT_BASE_PYTHON_H_
