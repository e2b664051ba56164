// main() for the C++ test binaries: starts CPython once, runs GoogleTest, finalizes.
#include "tests/support/python_env.h"

#include <gtest/gtest.h>

namespace fatjit::testing {

namespace {
void FailWithPythonError(const std::string& what) {
  PyErr_Print();
  ADD_FAILURE() << "Python error in: " << what;
}
}  // namespace

Ref<> NewGlobals() {
  Ref<> globals = Ref<>::Steal(PyDict_New());
  PyDict_SetItemString(globals.obj(), "__builtins__", PyEval_GetBuiltins());
  return globals;
}

Ref<> Eval(const std::string& expr, PyObject* globals) {
  Ref<> fresh;
  if (globals == nullptr) {
    fresh = NewGlobals();
    globals = fresh.obj();
  }
  Ref<> result = Ref<>::Steal(PyRun_String(expr.c_str(), Py_eval_input, globals, globals));
  if (!result) FailWithPythonError(expr);
  return result;
}

void Exec(const std::string& code, PyObject* globals) {
  Ref<> result = Ref<>::Steal(PyRun_String(code.c_str(), Py_file_input, globals, globals));
  if (!result) FailWithPythonError(code);
}

Ref<> Str(const char* s) { return Ref<>::Steal(PyUnicode_InternFromString(s)); }

}  // namespace fatjit::testing

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) Py_ExitStatusException(status);
  int result = RUN_ALL_TESTS();
  if (Py_FinalizeEx() < 0) result = 1;
  return result;
}
