// Emitter and Backend: the small interface between the JIT frontend, which decides what native
// code does (jit/lower.cc), and a backend that only emits it (LLVM ORC today, jit/llvm/).
//
// The frontend builds one function at a time through an Emitter: a tiny SSA builder over 64-bit
// integers (pointers are integers here), 1-bit conditions, basic blocks and calls to helpers
// named with their address. The function it builds always has the frame-eval shape,
//     int64 f(int64 tstate, int64 frame, int64 throwflag)   // returns a PyObject* or 0
// and the backend compiles it to native code it owns until Backend::Release.
//
// Nothing here includes LLVM or Python: the frontend and the extension link no LLVM, and the
// backend lives in its own shared object that is loaded on the first compile (backend_loader.h).
#ifndef FATJIT_JIT_EMITTER_H_
#define FATJIT_JIT_EMITTER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace fatjit::jit {

// A value inside the function being built: an int64, or an i1 condition (Cmp, IsZero).
using Value = int32_t;
// A basic block of the function being built.
using Block = int32_t;

// A native function the emitted code calls: a C function of `nargs` int64-sized arguments
// (pointers or integers) returning an int64-sized value (or nothing, when !returns_value).
// `name` appears in the IR (explain's dump); `address` is what the call goes to.
struct Helper {
  const char* name;
  const void* address;
  int nargs;
  bool returns_value = true;
};

enum class Cmp { kEq, kNe, kSlt, kSle, kSgt, kSge, kUlt };
// Comparisons of doubles as C compares them: ordered (false when either is NaN), except kUne
// (unordered or not equal: C's !=, true when either is NaN).
enum class FCmp { kOeq, kUne, kOlt, kOle, kOgt, kOge };
enum class Width { k8 = 8, k32 = 32, k64 = 64 };
// What a load or store touches, for the optimizer's alias analysis: accesses of different
// classes other than kAny never overlap (frame memory is no object's; an object's refcount, type
// pointer and other fields sit at distinct offsets of distinct allocations). kAny may overlap
// anything. Calls to helpers may read and write everything, whatever the class.
enum class Mem { kAny, kFrame, kRefcount, kType, kField };

class Emitter {
 public:
  virtual ~Emitter() = default;

  // Parameters of the function: 0 tstate, 1 frame, 2 throwflag.
  virtual Value Param(int index) = 0;
  // The IR instructions emitted so far (the optimizing tier's cost measure, compile_function.h).
  virtual int64_t InstructionCount() const = 0;
  virtual Value Imm(int64_t value) = 0;
  Value Ptr(const void* p) { return Imm(reinterpret_cast<int64_t>(p)); }

  // Memory: loads zero-extend to int64; stores truncate to `width`.
  virtual Value Load(Value address, int64_t offset, Width width = Width::k64,
                     Mem mem = Mem::kAny) = 0;
  // A load the optimizer never removes, merges with another or moves out of a loop: for state
  // that another thread or a signal handler changes behind the code's back (the eval breaker,
  // the tracing flag), which an optimizing tier would otherwise read once per loop.
  virtual Value LoadVolatile(Value address, int64_t offset, Width width = Width::k64) = 0;
  virtual void Store(Value address, int64_t offset, Value value, Width width = Width::k64,
                     Mem mem = Mem::kAny) = 0;

  virtual Value Add(Value a, Value b) = 0;
  virtual Value Sub(Value a, Value b) = 0;
  virtual Value Or(Value a, Value b) = 0;
  virtual Value And(Value a, Value b) = 0;
  virtual Value Xor(Value a, Value b) = 0;
  virtual Value Mul(Value a, Value b) = 0;  // wraps modulo 2^64, as Add and Sub do
  // C's / and % on signed int64 (truncating toward zero). Undefined unless b != 0 and not
  // (INT64_MIN, -1): the frontend tests b first.
  virtual Value SDiv(Value a, Value b) = 0;
  virtual Value SRem(Value a, Value b) = 0;
  // a << b and a >> b (arithmetic: the sign fills in) on int64. Undefined unless 0 <= b < 64:
  // the frontend clamps or tests b first.
  virtual Value Shl(Value a, Value b) = 0;
  virtual Value AShr(Value a, Value b) = 0;

  // IEEE doubles, carried in int64 values as their bits (what a 64-bit Load of a
  // PyFloatObject's ob_fval gives, what a helper taking the bits as int64 receives). Results of
  // FAdd..FDiv are bits too; FDiv by zero gives inf/NaN as C does (the frontend tests first).
  virtual Value FAdd(Value a, Value b) = 0;
  virtual Value FSub(Value a, Value b) = 0;
  virtual Value FMul(Value a, Value b) = 0;
  virtual Value FDiv(Value a, Value b) = 0;
  virtual Value FCompare(FCmp cmp, Value a, Value b) = 0;  // an i1 condition
  virtual Value FSqrt(Value a) = 0;  // IEEE square root of a double's bits (NaN below -0.0)
  // The double nearest the signed int64 `a` (exact below 2^53 in magnitude), as bits.
  virtual Value IntToDouble(Value a) = 0;
  // The address of an 8-byte slot in the native function's own stack frame, valid (and
  // uninitialized) for the whole call: for values several blocks read without dominating them.
  virtual Value StackSlot() = 0;
  virtual Value Compare(Cmp cmp, Value a, Value b) = 0;  // an i1 condition
  // `condition` ? if_true : if_false, without a branch (both are computed already).
  virtual Value Select(Value condition, Value if_true, Value if_false) = 0;
  // At the start of the current block (nothing emitted in it yet), whose predecessors are
  // exactly the blocks listed: the value that came from the block control arrived from.
  virtual Value Phi(absl::Span<const std::pair<Value, Block>> incoming) = 0;

  // Calls helper.address with args.size() == helper.nargs int64 arguments; returns its int64
  // result (an unusable value when !helper.returns_value).
  virtual Value Call(const Helper& helper, absl::Span<const Value> args) = 0;
  // Calls the native function at run-time address `address` (another compiled function's
  // entry: int64 (*)(int64...) of args.size() arguments) and returns its int64 result.
  virtual Value CallAddress(Value address, absl::Span<const Value> args) = 0;

  // Blocks. The entry block exists and is current when the emitter is created. Every block must
  // end in exactly one terminator (Jump, Branch, Return) before Finish.
  virtual Block NewBlock(std::string_view name) = 0;
  virtual void SetBlock(Block block) = 0;
  virtual void Jump(Block target) = 0;
  virtual void Branch(Value condition, Block if_true, Block if_false) = 0;
  // Branch weights for a branch that is almost never taken (a deopt or error exit).
  virtual void BranchUnlikely(Value condition, Block if_true, Block if_false) = 0;
  virtual void Return(Value value) = 0;
};

// What a backend hands back for a compiled function.
struct CompiledFunction {
  const void* entry = nullptr;  // int64 (*)(int64 tstate, int64 frame, int64 throwflag)
  uint64_t handle = 0;          // for Backend::Release
  size_t code_size = 0;         // bytes of native code, 0 if the backend cannot tell
  std::string ir;               // the IR as text, when CompileOptions::keep_ir
};

struct CompileOptions {
  int opt_level = 0;     // 0: fast codegen (part 1); 2: the IR pass pipeline
  bool keep_ir = false;  // keep the textual IR for explain()
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;
  // A fresh emitter for one function called `name` (unique per backend is not required).
  virtual std::unique_ptr<Emitter> NewFunction(std::string_view name) = 0;
  // Compiles what `emitter` built; consumes it. InvalidArgument if the IR does not verify.
  virtual absl::StatusOr<CompiledFunction> Compile(std::unique_ptr<Emitter> emitter,
                                                   const CompileOptions& options) = 0;
  // Frees a compiled function's native code. Its entry must not be running or called again.
  virtual void Release(uint64_t handle) = 0;
};

// The symbol a backend shared object exports (extern "C"): returns the process's one backend,
// created on the first call, or null with `*error` set (a static string) if it cannot start.
using CreateBackendFn = Backend* (*)(const char** error);
inline constexpr const char kCreateBackendSymbol[] = "fatjit_create_backend_v1";

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_EMITTER_H_
