// What it costs native code to hand its frame to the interpreter mid-function: Google Benchmark's
// view of benchmarks/deopt_cost.py (read its docstring for the method), for the C++ hot path
// behind it (fatjit_rt_raise / fatjit_rt_deopt -> HandOver -> _PyEval_EvalFrameDefault).
//
// Embeds the interpreter, imports fatjit from the build tree (FATJIT_BUILD_PYTHON, set by CMake)
// and times four variants of one function per kind, each iteration calling all four back to
// back: compiled (J) or a plain copy run by the interpreter (I), with the handover's trigger or
// without. The counter `handover_ns` is (J_with - J_without) - (I_with - I_without) per
// iteration, averaged: the handover itself, the trigger's own cost (the exception, the tracing)
// and the call overhead cancelling out. Kinds:
//   error   `raise error` inside try/except in compiled code: handed over with throwflag=1
//   tracing sys.settrace switched on and off by callees: a deopt to the next instruction
// Run: build/benchmarks/deopt_bench (not part of CI: timings).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "base/python.h"

namespace {

constexpr const char* kSetup = R"(
import sys
import fatjit

class Signal(Exception):
    pass

SOURCE = '''
def raising(error):
    try:
        if error is not None:
            raise error
    except:
        return 1
    return 0

def toggling(on, off):
    on()
    off()
    return 0
'''

def make():
    namespace = {}
    exec(SOURCE, namespace)
    return namespace

compiled = make()
plain = make()
raising_j = fatjit.jit(compiled["raising"])
toggling_j = fatjit.jit(compiled["toggling"])
raising_i = plain["raising"]
toggling_i = plain["toggling"]

def tracer(frame, event, arg):
    return None

def trace_on():
    sys.settrace(tracer)

def trace_off():
    sys.settrace(None)

def nothing():
    pass

raising_j(None)       # compile now
toggling_j(nothing, nothing)
assert fatjit.stats()["jit"]["compiles"] >= 2, fatjit.stats()["jit"]
)";

PyObject* g_main = nullptr;  // __main__'s dict

PyObject* Get(const char* name) { return PyDict_GetItemString(g_main, name); }

// Calls f(*args) and returns the nanoseconds it took; aborts the benchmark on an exception.
template <typename... Args>
double TimeCall(benchmark::State& state, PyObject* f, Args... args) {
  const auto start = std::chrono::steady_clock::now();
  PyObject* r = PyObject_CallFunctionObjArgs(f, args..., nullptr);
  const auto end = std::chrono::steady_clock::now();
  if (r == nullptr) {
    PyErr_Print();
    state.SkipWithError("call raised");
    return 0;
  }
  Py_DECREF(r);
  return std::chrono::duration<double, std::nano>(end - start).count();
}

void BM_ErrorHandover(benchmark::State& state) {
  PyObject* j = Get("raising_j");
  PyObject* i = Get("raising_i");
  PyObject* signal = Get("Signal");
  double handover = 0;
  for (auto _ : state) {
    const double j_with = TimeCall(state, j, signal);
    const double j_without = TimeCall(state, j, Py_None);
    const double i_with = TimeCall(state, i, signal);
    const double i_without = TimeCall(state, i, Py_None);
    handover += (j_with - j_without) - (i_with - i_without);
  }
  state.counters["handover_ns"] = benchmark::Counter(handover, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_ErrorHandover);

void BM_TracingDeopt(benchmark::State& state) {
  PyObject* j = Get("toggling_j");
  PyObject* i = Get("toggling_i");
  PyObject* on = Get("trace_on");
  PyObject* off = Get("trace_off");
  PyObject* nothing = Get("nothing");
  double handover = 0;
  for (auto _ : state) {
    const double j_with = TimeCall(state, j, on, off);
    const double j_without = TimeCall(state, j, nothing, nothing);
    const double i_with = TimeCall(state, i, on, off);
    const double i_without = TimeCall(state, i, nothing, nothing);
    handover += (j_with - j_without) - (i_with - i_without);
  }
  state.counters["handover_ns"] = benchmark::Counter(handover, benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_TracingDeopt);

// The baseline both kinds build on: a compiled call that runs to its end natively.
void BM_CompiledCallNoHandover(benchmark::State& state) {
  PyObject* j = Get("raising_j");
  for (auto _ : state) benchmark::DoNotOptimize(TimeCall(state, j, Py_None));
}
BENCHMARK(BM_CompiledCallNoHandover);

}  // namespace

int main(int argc, char** argv) {
  setenv("PYTHONPATH", FATJIT_BUILD_PYTHON, 1);
  Py_InitializeEx(0);
  PyObject* main_module = PyImport_AddModule("__main__");
  g_main = PyModule_GetDict(main_module);
  PyObject* r = PyRun_String(kSetup, Py_file_input, g_main, g_main);
  if (r == nullptr) {
    PyErr_Print();
    return 1;
  }
  Py_DECREF(r);
  PyObject* gc_disable = PyRun_String("__import__('gc').disable()", Py_eval_input, g_main, g_main);
  Py_XDECREF(gc_disable);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Py_FinalizeEx();
  return 0;
}
