// The Python types of fatjit's guards: fatjit.Guard and one subtype per guard kind.
//
// Each object owns one C++ guard (guards/). Signatures follow FAT Python's `fat` module, so code
// written for fat ports by renaming the import: GuardDict(d, *keys), GuardGlobals(*names),
// GuardBuiltins(*names), GuardFunc(func), GuardArgType(arg_index, arg_types), plus GuardType(tp).
// Calling a guard, guard(*args, **kw), checks it now: 0 pass, 1 fail, 2 fail forever.
#ifndef FATJIT_EXT_GUARD_OBJECTS_H_
#define FATJIT_EXT_GUARD_OBJECTS_H_

#include <memory>

#include "base/python.h"
#include "guards/guard.h"

namespace fatjit {

// Adds the guard types to `module`. False with an exception set on failure.
bool AddGuardTypes(PyObject* module);

// A new fatjit guard object of the guard's kind, owning `guard`. Null with an exception set on
// failure.
PyObject* WrapGuard(std::unique_ptr<Guard> guard);

// The C++ guard of a fatjit.Guard instance, or null (no exception) for anything else.
Guard* GuardOf(PyObject* obj);

// Builds a GuardDict on a type's own attribute dict: fat's guard_type_dict(tp, attrs).
PyObject* GuardTypeDict(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

}  // namespace fatjit

#endif  // FATJIT_EXT_GUARD_OBJECTS_H_
