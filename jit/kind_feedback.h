// Kind feedback: what calls pass, as hints for the compiler, and what native code reports when
// its numeric loops meet other kinds, so that the owner can compile it again with those.
//
// Numeric loops (lower_numeric_loops.cc) unbox locals of the kinds GuessLocalKinds derives from
// the parameters' kinds at the compiling call (ParameterKinds). When later calls pass numbers
// of another kind (a function first called with ints, then with floats), the loop's entry check
// fails at every iteration, and the loop runs generically at every call, for good. Each failed
// entry is counted in the NativeCode; every kMissesPerCheck of them, native code calls
// fatjit_rt_numeric_loop_missed, which compares the frame's parameters with the hints the code
// was compiled with. If a parameter now holds an exact int or float of another kind than that
// hint, the NativeCode records the kinds seen (NativeCode::kinds_seen, recompile_wanted; once
// per NativeCode) and direct-call sites drop their answers, so that the next call goes through
// the dispatcher, which compiles the function again with those hints (ext: auto_specialize.h,
// RecompileForKinds) and counts it (stats()["jit"]["kind_recompiles"]). Only a local's failed
// kind test counts; an entry that fails on the iterator or a global does not.
//
// Sound because nothing here changes what code does: the helper only reads the frame's locals
// and writes the NativeCode's own fields, with the GIL held, and runs no Python code; a
// recompile makes another translation of the same code, whose every speculation is checked as
// before. Hints only choose which kinds are unboxed.
#ifndef FATJIT_JIT_KIND_FEEDBACK_H_
#define FATJIT_JIT_KIND_FEEDBACK_H_

#include <vector>

#include "base/python.h"
#include "jit/native_code.h"

namespace fatjit::jit {

// What `args` (a frame's first ParameterCount(code) locals) hold: exact ints and floats, and
// exact lists by the type of their first item.
std::vector<ParameterKind> ParameterKinds(PyCodeObject* code, PyObject* const* args);

// True if `seen` has a parameter of a known kind (an int, a float, a list of either) that differs
// from `compiled`'s: hints for which a compile would unbox differently.
bool KindsWorthRecompiling(const std::vector<ParameterKind>& compiled,
                           const std::vector<ParameterKind>& seen);

// Failed numeric-loop entries between two looks at the frame (a power of two: native code
// tests the low bits of NativeCode::loop_entry_misses).
inline constexpr uint64_t kMissesPerCheck = 256;

// Called by native code with the GIL held, on the frame of a numeric loop whose entry failed
// (the kMissesPerCheck-th time since the last call). Runs no Python code and never fails.
extern "C" void fatjit_rt_numeric_loop_missed(_PyInterpreterFrame* frame, NativeCode* code);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_KIND_FEEDBACK_H_
