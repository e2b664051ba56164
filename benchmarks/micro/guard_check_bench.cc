// Micro-benchmarks of guard checking and of the dispatcher's co_extra lookup: the fast paths
// every call pays while the PEP 523 hook is installed.
//
// Target (issue 2): a GuardSet of one globals guard and one builtins guard on unchanged dicts
// checks in at most 3 ns on the reference machine (2 cores).
#include <benchmark/benchmark.h>

#include "base/cpython_compat.h"
#include "base/python.h"
#include "base/ref.h"
#include "guards/guard_builtins.h"
#include "guards/guard_dict.h"
#include "guards/guard_set.h"

namespace fatjit {
namespace {

Ref<> MakeFunction(PyObject* globals) {
  Ref<> result = Ref<>::Steal(PyRun_String(
      "K = 1\ndef f(s):\n    return len(s) + K\n", Py_file_input, globals, globals));
  return Ref<>::Create(PyDict_GetItemString(globals, "f"));
}

void BM_DictVersionRead(benchmark::State& state) {
  Ref<> dict = Ref<>::Steal(PyDict_New());
  for (auto _ : state) benchmark::DoNotOptimize(DictVersion::Of(dict.obj()));
}
BENCHMARK(BM_DictVersionRead);

void BM_GuardSetGlobalsAndBuiltinsUnchanged(benchmark::State& state) {
  Ref<> globals = Ref<>::Steal(PyDict_New());
  PyDict_SetItemString(globals.obj(), "__builtins__", PyEval_GetBuiltins());
  Ref<> func = MakeFunction(globals.obj());
  auto* f = reinterpret_cast<PyFunctionObject*>(func.obj());
  Ref<> k = Ref<>::Steal(PyUnicode_InternFromString("K"));
  Ref<> len = Ref<>::Steal(PyUnicode_InternFromString("len"));
  PyObject* gnames[] = {k.obj()};
  PyObject* bnames[] = {len.obj()};
  auto g = GuardDict::CreateForGlobals(gnames);
  auto b = GuardBuiltins::Create(bnames);
  if (!g.ok() || !b.ok() || !(*g)->Bind(f).ok() || !(*b)->Bind(f).ok()) {
    state.SkipWithError("guard setup failed");
    return;
  }
  GuardSet set;
  set.Add(g->get());
  set.Add(b->get());
  CallArgs args{};
  for (auto _ : state) benchmark::DoNotOptimize(set.Check(args));
}
BENCHMARK(BM_GuardSetGlobalsAndBuiltinsUnchanged);

// The dispatcher's first step on every call while the hook is set: read the code object's
// CodeState from co_extra (compat::CodeExtra, two loads). `with_state` = 0 is a code object with
// no co_extra at all (a function nobody specialized), 1 one whose slot is set.
Py_ssize_t CodeExtraIndex() {
  static const Py_ssize_t index = _PyEval_RequestCodeExtraIndex(nullptr);
  return index;
}

Ref<PyCodeObject> MakeCode(bool with_state) {
  static int payload = 0;
  auto code = Ref<PyCodeObject>::Steal(reinterpret_cast<PyCodeObject*>(
      Py_CompileString("def f(n):\n    return n\n", "<bench>", Py_file_input)));
  if (code && with_state) _PyCode_SetExtra(code.obj(), CodeExtraIndex(), &payload);
  return code;
}

void BM_CodeExtraLookup(benchmark::State& state) {
  Ref<PyCodeObject> code = MakeCode(state.range(0) != 0);
  const Py_ssize_t index = CodeExtraIndex();
  if (!code || index < 0) {
    state.SkipWithError("code object or co_extra index setup failed");
    return;
  }
  PyCodeObject* co = code.get();
  for (auto _ : state) {
    benchmark::DoNotOptimize(co);
    benchmark::DoNotOptimize(compat::CodeExtra(co, index));
  }
}
BENCHMARK(BM_CodeExtraLookup)->ArgName("with_state")->Arg(0)->Arg(1);

// The same lookup through CPython's exported _PyCode_GetExtra (a call), for comparison.
void BM_CodeExtraGetExtraCall(benchmark::State& state) {
  Ref<PyCodeObject> code = MakeCode(state.range(0) != 0);
  const Py_ssize_t index = CodeExtraIndex();
  if (!code || index < 0) {
    state.SkipWithError("code object or co_extra index setup failed");
    return;
  }
  PyObject* co = code.obj();
  void* extra = nullptr;
  for (auto _ : state) {
    benchmark::DoNotOptimize(co);
    _PyCode_GetExtra(co, index, &extra);
    benchmark::DoNotOptimize(extra);
  }
}
BENCHMARK(BM_CodeExtraGetExtraCall)->ArgName("with_state")->Arg(0)->Arg(1);

}  // namespace
}  // namespace fatjit

int main(int argc, char** argv) {
  Py_InitializeEx(0);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Py_FinalizeEx();
  return 0;
}
