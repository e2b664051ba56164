// Test support for C++ tests that need a live CPython: the interpreter is started once for the
// whole test binary (main() below), and helpers evaluate small Python snippets.
#ifndef FATJIT_TESTS_SUPPORT_PYTHON_ENV_H_
#define FATJIT_TESTS_SUPPORT_PYTHON_ENV_H_

#include <string>

#include "base/python.h"
#include "base/ref.h"

namespace fatjit::testing {

// Evaluates `expr` in `globals` (a fresh dict with builtins if null). Fails the test on error.
Ref<> Eval(const std::string& expr, PyObject* globals = nullptr);
// Executes `code` in `globals`. Fails the test on error.
void Exec(const std::string& code, PyObject* globals);
// A fresh globals dict with __builtins__ set.
Ref<> NewGlobals();
// An interned str.
Ref<> Str(const char* s);

}  // namespace fatjit::testing

#endif  // FATJIT_TESTS_SUPPORT_PYTHON_ENV_H_
