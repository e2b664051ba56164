// Tuning constants of automatic mode, each with the measurement or reason behind it.
//
// Change a value only with a new measurement, and update its comment. The commands that
// produced the numbers are in README.md ("Automatic mode", measurements).
#ifndef FATJIT_EXT_TUNING_H_
#define FATJIT_EXT_TUNING_H_

#include <cstdint>

#include "ext/tuning_defaults.h"

namespace fatjit::tuning {

// The three values shared with the start-up counter (ext/boot.c, C) are defined in
// ext/tuning_defaults.h; their reasons are here.

// Calls of a code object before automatic mode specializes its function
// (FATJIT_SPECIALIZE_THRESHOLD overrides it; 0 = at the first call).
//
// Specializing costs C once; each specialized call then saves b. Measured on this machine
// (pyenv 3.11.7; README "Automatic mode" has the commands):
//   C = 33 us median, 137 us mean, 151 us 90th percentile over 1,922 stdlib functions (json,
//       re, argparse, typing, decimal, logging, ...); 77 us mean over 13,636 stdlib code
//       objects (benchmarks/specializer_bench.py); 37 us per function in
//       scripts/auto_mode_cost.py's program.
//   b = -12 ns to +121 ns: running any specialization costs 6.6 ns (guard check and code swap);
//       under assume="stable" often nothing but one LOAD_GLOBAL is folded, which saves less
//       (b = -12 ns on a 290 ns function); under assume="entry" with builtin calls folded,
//       b = +121 ns. Native code (issue 5) will save far more.
//   t = 215 ns per call of a warm function with its callees (scripts/auto_mode_cost.py).
// A function that reaches the threshold T and is never called again pays C over T calls:
// C / (T * t) = 1.7% for T = 10,000 at C = 37 us (6.4% at the mean C); T = 1,000 would be 17%.
// The ski-rental rule (specialize after C/b calls: never more than twice the best choice in
// hindsight) gives 270 calls at best (33 us / 121 ns), thousands for a b of a few ns, and
// never where b <= 0, which is common for interpreted code today. 10,000 keeps
// warm code (start-up, argument parsing, most of a test suite) from paying C, and the loss
// bounded where specializing does not pay. Revisit when the JIT tier makes b large.
inline constexpr int32_t kDefaultSpecializeThreshold = FATJIT_DEFAULT_SPECIALIZE_THRESHOLD;

// Calls of a code object before automatic mode compiles it to native code (on the compiler
// thread, at the optimizing tier), FATJIT_JIT_THRESHOLD overriding it ("off": never). The
// attempt comes at min(this, kDefaultSpecializeThreshold) calls, so hot functions are compiled
// at 1,000 calls, and specialized (interpreted) code is what runs meanwhile.
// Why on by default: the PEP 523 hook costs every interpreted call (1.3-1.7x on call-heavy
// programs), and only native-to-native calls win that back. Measured (README "Automatic mode":
// suite programs under `python -m fatjit`, off vs on in the same run, interleaved processes,
// medians): fib 0.68x -> 0.97x CPython's speed, generators 0.69x -> 1.02x, particles 0.85x ->
// 1.40x, method_chain 0.81x -> 0.90x; stack_vm 0.92x -> 0.85x (its loop is in a function called
// once per run, so the compiled callees are entered through the hook); the 19 programs 0.96x ->
// 0.99x geometric mean. The cost: libLLVM is loaded at the first compile (20-30 ms, ~47 MB),
// and codegen takes CPU on the compiler thread (up to a few hundred ms per big function at the
// optimizing tier), beside the program. 1,000 calls leaves warm code (start-up, argument
// parsing) interpreted; a lower value compiles more of a test suite's one-off functions.
inline constexpr int32_t kDefaultJitThreshold = FATJIT_DEFAULT_JIT_THRESHOLD;

// The interpreted time of a loop-carrying code object's calls that counts as one call toward
// the thresholds (auto_mode.h, CreditLoopTime). 10 us: 1,000 calls' worth (the JIT threshold)
// is 10 ms of a function's own running time, about what compiling it costs the background
// thread; an ordinary warm call takes 0.2-1 us, so loop time counts 10-50x less than calls do.
inline constexpr int64_t kLoopTimePerCallNs = FATJIT_LOOP_TIME_PER_CALL_NS;

// A code object waits one threshold more for every kCodeUnitsPerThreshold code units of
// bytecode (auto_mode.cc, CallsBeforeNextAttempt): what an attempt costs (the specializer's
// pass, the IR lowered under the GIL, codegen) grows with the code, and a big function called
// often down a different path each time (re._parser._parse while modules compile their regular
// expressions at import: 4,082 units, ~1 s of specializing, lowering and codegen) gains little
// from it. Measured: importing 33 stdlib modules under automatic mode, 195-292 ms wall against
// 52-82 ms for CPython with every function at the plain threshold; 82-92 ms with 8,000 calls.
// Loop time still counts (kLoopTimePerCallNs): a big function that loops long gets compiled.
inline constexpr int32_t kCodeUnitsPerThreshold = 500;

// After an attempt (refused, or specialized and later dropped: a guard failed for good, the
// function died), the next attempt waits kRetryBackoff times longer than the previous one:
// a refusal depends mostly on the code (nothing to specialize, nothing entry-stable) and
// rarely on state that changes later (a global not yet defined when the module was half
// imported); an exponential wait retries the latter without paying C again and again for the
// former. Same shape as CPython's adaptive back-off (Python/specialize.c), for the same reason.
inline constexpr int32_t kRetryBackoff = 16;

// Attempts per code object before automatic mode gives up on it for good. Bounds the total cost
// to kMaxAttempts * C per code object, even for closures and comprehensions, whose function
// object (the owner of a specialization) is made anew at each evaluation and dies after a few
// calls, taking its specialization with it.
inline constexpr int32_t kMaxAttempts = 4;

// Native code of live compiled functions beyond which the JIT refuses new compiles
// (FATJIT_CODE_LIMIT overrides; 0 = none). Compiled functions measure 2-60 KB at O0 on the
// benchmarks (benchmarks/run.py's JIT table), so 256 MiB is thousands of hot functions: a bound
// against runaway compilation (closures re-made in a loop, exec'd code), not a working limit.
inline constexpr uint64_t kDefaultCodeLimitBytes = 256ull << 20;

// The optimizing tier's CompileOptions::opt_level (jit/emitter.h): a few cheap IR passes
// (jit/llvm/llvm_backend.cc's kLevel1Passes) and LLVM's optimizing codegen (SelectionDAG, the
// greedy register allocator). Measured with FATJIT_JIT_OPT: fib(27) 26 ms with mem2reg alone,
// 17 ms with the passes, 16 ms with the whole O2 pipeline (2), which compiles about 1.5x longer.
inline constexpr int kOptimizingTier = 1;

}  // namespace fatjit::tuning

#endif  // FATJIT_EXT_TUNING_H_
