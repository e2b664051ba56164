// fatjit._fatjit: the extension module. Wires the API functions and guard types together.
#include "base/python.h"
#include "dictversion/dict_version.h"
#include "ext/auto_mode.h"
#include "ext/auto_specialize.h"
#include "ext/bytecode_api.h"
#include "ext/code_state.h"
#include "ext/event_log.h"
#include "ext/function_traverse.h"
#include "ext/guard_objects.h"
#include "ext/jit_api.h"
#include "ext/replace_consts.h"
#include "ext/specialize_api.h"
#include "ext/stats.h"

namespace fatjit {
namespace {

PyMethodDef kMethods[] = {
    {"specialize", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Specialize)),
     METH_VARARGS | METH_KEYWORDS,
     "specialize(func, code, guards) -> func\n\nAttach a specialized version of func: code (a "
     "code object, or a callable standing in for func) runs instead of func's own code while "
     "every guard passes at call time."},
    {"specialize_auto", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SpecializeAuto)),
     METH_VARARGS | METH_KEYWORDS,
     "specialize_auto(func, *, assume='stable') -> func: specialize func automatically at its "
     "first call."},
    {"_specialize_report",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SpecializeReport)),
     METH_VARARGS | METH_KEYWORDS,
     "_specialize_report(func, *, assume='stable') -> dict: run the specializer now, attach "
     "nothing (for tests and the stdlib sweep)."},
    {"replace_consts",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(ReplaceConsts)), METH_FASTCALL,
     "replace_consts(code, mapping) -> copy of code with the constants found in mapping replaced\n"
     "by their values (matched on exact type and equality; nested code objects untouched)."},
    {"_round_trip", RoundTrip, METH_O,
     "_round_trip(code) -> bool: decode and re-encode co_code and co_exceptiontable (tests)."},
    {"_jit_report", JitReport, METH_O,
     "_jit_report(func) -> dict: compile func's code now, attach nothing, report (sweeps)."},
    {"_jit_shutdown", JitShutdown, METH_NOARGS,
     "_jit_shutdown(): stop the background compiler thread (atexit)."},
    {"_jit_before_fork", JitBeforeFork, METH_NOARGS,
     "_jit_before_fork(): hold the background compiler idle across fork."},
    {"_jit_after_fork_in_parent", JitAfterForkInParent, METH_NOARGS,
     "_jit_after_fork_in_parent(): let the background compiler go on."},
    {"_jit_after_fork_in_child", JitAfterForkInChild, METH_NOARGS,
     "_jit_after_fork_in_child(): the child starts with no compiler thread and an empty queue."},
    {"wait_for_compiles", WaitForCompiles, METH_NOARGS,
     "wait_for_compiles(): return once no background compile is queued or under way."},
    {"specialize_at_first_call",
     reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(SpecializeAtFirstCall)),
     METH_FASTCALL,
     "specialize_at_first_call(func, register): register(func) runs at func's next call, first."},
    {"get_specialized", GetSpecialized, METH_O,
     "get_specialized(func) -> [(code, [guards...]), ...], newest first."},
    {"unspecialize", Unspecialize, METH_O, "unspecialize(func): drop func's specializations."},
    {"explain", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(Explain)),
     METH_VARARGS | METH_KEYWORDS,
     "explain(func, *, ir=False) -> str: func's specializations, their guards and whether they "
     "pass now, and its native code; with ir=True, the LLVM IR the JIT makes of it."},
    {"enable", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(EnableAutoMode)),
     METH_VARARGS | METH_KEYWORDS,
     "enable(*, specialize_threshold=None, jit_threshold=None, jit_background=None): turn "
     "automatic mode on: functions called specialize_threshold times (default: "
     "FATJIT_SPECIALIZE_THRESHOLD, else 10000; 0 = the first call) get the automatic "
     "specializer, and those called jit_threshold times (FATJIT_JIT_THRESHOLD, else 1000; 'off' "
     "= never) are also compiled to native code, on the background compiler thread unless "
     "jit_background is False (FATJIT_JIT_BACKGROUND=0)."},
    {"disable", DisableAutoMode, METH_NOARGS,
     "disable(): turn automatic mode off; specializations already made stay."},
    {"is_enabled", AutoModeEnabled, METH_NOARGS, "is_enabled() -> bool: automatic mode is on."},
    {"_in_main_interpreter", InMainInterpreterPy, METH_NOARGS,
     "_in_main_interpreter() -> bool: automatic mode is available here."},
    {"stats", StatsAsDict, METH_NOARGS, "stats() -> dict of fatjit's counters."},
    {"reset_stats", ResetStats, METH_NOARGS, "reset_stats(): zero the counters."},
    {"guard_type_dict", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(GuardTypeDict)),
     METH_FASTCALL,
     "guard_type_dict(tp, attrs) -> [GuardDict]: guard attributes of tp's own dict (fat's "
     "helper)."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef kModule = {PyModuleDef_HEAD_INIT, "fatjit._fatjit",
                       "fatjit's native core; use the fatjit package.", -1, kMethods};

}  // namespace
}  // namespace fatjit

PyMODINIT_FUNC PyInit__fatjit() {
  // Initialized once per process (single-phase), in the main interpreter: its co_extra slot is
  // the main interpreter's, and what it creates must outlive any sub-interpreter. A
  // sub-interpreter imports the main one's copy, or nothing.
  if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
    PyErr_SetString(PyExc_ImportError,
                    "fatjit: the extension fatjit._fatjit initializes in the main interpreter "
                    "(use fatjit there first); sub-interpreters run without automatic mode");
    return nullptr;
  }
  PyObject* module = PyModule_Create(&fatjit::kModule);
  if (module == nullptr) return nullptr;
  fatjit::InitEventLogFromEnvironment();
  fatjit::InitDeoptLog();
  if (!fatjit::CodeLimitFromEnvironment() || !fatjit::InitCodeStateSlot() || !fatjit::AddGuardTypes(module) ||
      PyModule_AddStringConstant(module, "dict_version_backend",
                                 fatjit::DictVersion::BackendName()) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  fatjit::InstallFunctionTraverse();
  return module;
}
