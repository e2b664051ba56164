// Kind feedback: what calls pass and what loops meet, as hints for the compiler, and what native
// code reports when its numeric loops meet other kinds, so that the owner can compile it again
// with those.
//
// Numeric loops (lower_numeric_loops.cc) unbox locals of the kinds GuessLocalKinds derives from
// the code and from hints: the parameters' kinds at the compiling call (ParameterKinds), and
// for a local nothing in the code decides, a default guess (an int; a list of floats for a local
// whose items are read or stored). When a loop meets numbers of another kind (a function first
// called with ints, then with floats; a local holding a list of ints where floats were guessed),
// its entry check fails at every iteration, and the loop runs generically, for good. Each failed
// entry is counted in the NativeCode; every kMissesPerCheck of them, native code calls
// fatjit_rt_numeric_loop_missed with its loop's guesses (NativeCode::LoopGuesses: the locals
// whose kind a hint or a default decided, and that kind), which compares them with what the
// frame's locals hold. If one now holds a kind (LocalKindOf) other than its guess, the
// NativeCode records hints for the next compile (NativeCode::kinds_seen: the kinds the frame's
// locals hold where known, the old hints elsewhere; recompile_wanted; once per NativeCode), and
// direct-call sites drop their answers, so that the next call goes through the dispatcher,
// which compiles the function again with those hints (ext: auto_specialize.h,
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

// What `value` is (null: kUnknown): an exact int or float, an exact list by the type of its first
// item.
LocalKind LocalKindOf(PyObject* value);

// What `args` (a frame's first ParameterCount(code) locals) hold.
std::vector<LocalKind> ParameterKinds(PyCodeObject* code, PyObject* const* args);

// Failed numeric-loop entries between two looks at the frame (a power of two: native code
// tests the low bits of NativeCode::loop_entry_misses).
inline constexpr uint64_t kMissesPerCheck = 256;

// Called by native code with the GIL held, on the frame of a numeric loop whose entry failed
// (the kMissesPerCheck-th time since the last call), with that loop's guesses. The loop gives up
// its entry for good (LoopGuesses::given_up: it then goes straight to the generic code) when a
// local holds another kind than guessed (until the recompile replaces the code), or when a
// local guessed a list holds no list of ints or floats. Runs no Python code and never fails.
extern "C" void fatjit_rt_numeric_loop_missed(_PyInterpreterFrame* frame, NativeCode* code,
                                              NativeCode::LoopGuesses* loop);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_KIND_FEEDBACK_H_
