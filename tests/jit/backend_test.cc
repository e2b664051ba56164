// The LLVM backend through the Emitter interface, loaded as the extension loads it
// (FATJIT_BACKEND_PATH points at the built libfatjit_llvm.so): small functions built, compiled at
// O0 and O2, called, released; misuse reported as InvalidArgument, never a crash.
#include <gtest/gtest.h>
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "jit/backend_loader.h"
#include "jit/emitter.h"

namespace fatjit::jit {
namespace {

using Entry = int64_t (*)(int64_t, int64_t, int64_t);

Backend* TheBackend() {
  absl::StatusOr<Backend*> backend = LoadBackend();
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *backend : nullptr;
}

int64_t Call(const CompiledFunction& f, int64_t a = 0, int64_t b = 0, int64_t c = 0) {
  return reinterpret_cast<Entry>(const_cast<void*>(f.entry))(a, b, c);
}

int64_t Add3(int64_t a, int64_t b, int64_t c) { return a + b + c; }
const Helper kAdd3 = {"fatjit_test_add3", reinterpret_cast<const void*>(&Add3), 3};

int64_t recorded = 0;
void Record(int64_t value) { recorded = value; }
const Helper kRecord = {"fatjit_test_record", reinterpret_cast<const void*>(&Record), 1,
                        /*returns_value=*/false};

// return tstate + throwflag
std::unique_ptr<Emitter> BuildAddParams(Backend* backend) {
  std::unique_ptr<Emitter> e = backend->NewFunction("add_params");
  e->Return(e->Add(e->Param(0), e->Param(2)));
  return e;
}

// The loop state lives in memory (the interface has no phis), as locals live in a frame.
struct LoopState {
  int64_t n;
  int64_t i;
  int64_t sum;
};

// sum = 0; for (i = 1; i <= n; ++i) sum += i; return sum   (frame = LoopState*)
std::unique_ptr<Emitter> BuildSumLoop(Backend* backend) {
  std::unique_ptr<Emitter> e = backend->NewFunction("sum_loop");
  Block head = e->NewBlock("head");
  Block body = e->NewBlock("body");
  Block exit = e->NewBlock("exit");
  Value state = e->Param(1);
  e->Store(state, offsetof(LoopState, i), e->Imm(1));
  e->Store(state, offsetof(LoopState, sum), e->Imm(0));
  e->Jump(head);

  e->SetBlock(head);
  Value i = e->Load(state, offsetof(LoopState, i));
  Value n = e->Load(state, offsetof(LoopState, n));
  e->Branch(e->Compare(Cmp::kSle, i, n), body, exit);

  e->SetBlock(body);
  Value i2 = e->Load(state, offsetof(LoopState, i));
  e->Store(state, offsetof(LoopState, sum), e->Add(e->Load(state, offsetof(LoopState, sum)), i2));
  e->Store(state, offsetof(LoopState, i), e->Add(i2, e->Imm(1)));
  e->Jump(head);

  e->SetBlock(exit);
  e->Return(e->Load(state, offsetof(LoopState, sum)));
  return e;
}

int64_t SumLoop(const CompiledFunction& f, int64_t n) {
  LoopState state = {n, 0, 0};
  return Call(f, 0, reinterpret_cast<int64_t>(&state), 0);
}

// return add3(tstate, frame, throwflag) - k
std::unique_ptr<Emitter> BuildCallAdd3(Backend* backend, int64_t k) {
  std::unique_ptr<Emitter> e = backend->NewFunction("call_add3");
  Value sum = e->Call(kAdd3, {e->Param(0), e->Param(1), e->Param(2)});
  e->Return(e->Sub(sum, e->Imm(k)));
  return e;
}

TEST(BackendTest, LoadsOnceAndNamesItself) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  EXPECT_TRUE(BackendLoaded());
  EXPECT_STREQ(backend->name(), "llvm");
  absl::StatusOr<Backend*> again = LoadBackend();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, backend);
}

TEST(BackendTest, ReturnsTheSumOfTwoParams) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  absl::StatusOr<CompiledFunction> f = backend->Compile(BuildAddParams(backend), {});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(Call(*f, 40, 1000, 2), 42);
  EXPECT_EQ(Call(*f, -5, 0, 3), -2);
  EXPECT_GT(f->code_size, 0u);
  EXPECT_TRUE(f->ir.empty());
  backend->Release(f->handle);
}

// One binary operation on the params tstate and throwflag (as int64 or as double bits).
template <typename Build>
absl::StatusOr<CompiledFunction> CompileBinary(Backend* backend, Build build, int opt_level) {
  std::unique_ptr<Emitter> e = backend->NewFunction("binary");
  e->Return(build(*e, e->Param(0), e->Param(2)));
  CompileOptions options;
  options.opt_level = opt_level;
  return backend->Compile(std::move(e), options);
}

int64_t Bits(double d) {
  int64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}
double Double(int64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Mul, And, Xor, SDiv and SRem compute what C computes on int64, at O0 and O2.
TEST(BackendTest, IntegerOperationsAreCs) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  const int64_t pairs[][2] = {{7, 3}, {-7, 3}, {7, -3}, {-7, -3}, {(1 << 30) - 1, -(1 << 30) + 1},
                              {0, 5}, {1234567, 1}};
  for (int level : {0, 2}) {
    auto mul = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.Mul(a, b); }, level);
    auto and_ = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.And(a, b); }, level);
    auto xor_ = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.Xor(a, b); }, level);
    auto div = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.SDiv(a, b); }, level);
    auto rem = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.SRem(a, b); }, level);
    for (auto* f : {&mul, &and_, &xor_, &div, &rem}) ASSERT_TRUE(f->ok()) << f->status();
    for (const auto& p : pairs) {
      EXPECT_EQ(Call(*mul, p[0], 0, p[1]), p[0] * p[1]);
      EXPECT_EQ(Call(*and_, p[0], 0, p[1]), p[0] & p[1]);
      EXPECT_EQ(Call(*xor_, p[0], 0, p[1]), p[0] ^ p[1]);
      EXPECT_EQ(Call(*div, p[0], 0, p[1]), p[0] / p[1]);
      EXPECT_EQ(Call(*rem, p[0], 0, p[1]), p[0] % p[1]);
    }
    for (auto* f : {&mul, &and_, &xor_, &div, &rem}) backend->Release((*f)->handle);
  }
}

// FAdd..FDiv and FCompare work on double bits exactly as C does: -0.0, inf and NaN included.
TEST(BackendTest, FloatOperationsAreIeee) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  const double nan = std::nan("");
  const double inf = HUGE_VAL;
  const double values[] = {1.5, -2.25, 0.0, -0.0, 1e308, inf, -inf, nan, 0.1};
  for (int level : {0, 2}) {
    auto add = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.FAdd(a, b); }, level);
    auto sub = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.FSub(a, b); }, level);
    auto mul = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.FMul(a, b); }, level);
    auto div = CompileBinary(backend, [](Emitter& e, Value a, Value b) { return e.FDiv(a, b); }, level);
    for (auto* f : {&add, &sub, &mul, &div}) ASSERT_TRUE(f->ok()) << f->status();
    std::vector<absl::StatusOr<CompiledFunction>> compares;
    for (FCmp cmp : {FCmp::kOeq, FCmp::kUne, FCmp::kOlt, FCmp::kOle, FCmp::kOgt, FCmp::kOge}) {
      compares.push_back(CompileBinary(
          backend, [cmp](Emitter& e, Value a, Value b) { return e.FCompare(cmp, a, b); }, level));
      ASSERT_TRUE(compares.back().ok()) << compares.back().status();
    }
    auto same = [](double expected, double actual) {
      return std::memcmp(&expected, &actual, sizeof expected) == 0 ||
             (std::isnan(expected) && std::isnan(actual));
    };
    for (double a : values) {
      for (double b : values) {
        EXPECT_TRUE(same(a + b, Double(Call(*add, Bits(a), 0, Bits(b))))) << a << " + " << b;
        EXPECT_TRUE(same(a - b, Double(Call(*sub, Bits(a), 0, Bits(b))))) << a << " - " << b;
        EXPECT_TRUE(same(a * b, Double(Call(*mul, Bits(a), 0, Bits(b))))) << a << " * " << b;
        EXPECT_TRUE(same(a / b, Double(Call(*div, Bits(a), 0, Bits(b))))) << a << " / " << b;
        const bool expected[] = {a == b, a != b, a < b, a <= b, a > b, a >= b};
        for (size_t i = 0; i < compares.size(); ++i) {
          EXPECT_EQ(Call(*compares[i], Bits(a), 0, Bits(b)), expected[i] ? 1 : 0)
              << a << " op" << i << " " << b;
        }
      }
    }
    for (auto* f : {&add, &sub, &mul, &div}) backend->Release((*f)->handle);
    for (auto& f : compares) backend->Release(f->handle);
  }
}

TEST(BackendTest, LoopsOverBlocksAndBranches) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  absl::StatusOr<CompiledFunction> f = backend->Compile(BuildSumLoop(backend), {});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(SumLoop(*f, 0), 0);
  EXPECT_EQ(SumLoop(*f, 1), 1);
  EXPECT_EQ(SumLoop(*f, 100), 5050);
  backend->Release(f->handle);
}

TEST(BackendTest, CallsAHelperFromTwoFunctions) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  // The second compile registers the same helper name at the same address again.
  absl::StatusOr<CompiledFunction> f = backend->Compile(BuildCallAdd3(backend, 0), {});
  ASSERT_TRUE(f.ok()) << f.status();
  absl::StatusOr<CompiledFunction> g = backend->Compile(BuildCallAdd3(backend, 100), {});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(Call(*f, 1, 2, 3), 6);
  EXPECT_EQ(Call(*g, 1, 2, 3), -94);
  backend->Release(f->handle);
  EXPECT_EQ(Call(*g, 10, 20, 30), -40);  // releasing f leaves the helper defined for g
  backend->Release(g->handle);
}

TEST(BackendTest, CallsAHelperThatReturnsNothing) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  std::unique_ptr<Emitter> e = backend->NewFunction("record");
  e->Call(kRecord, {e->Param(1)});
  e->Return(e->Imm(7));
  absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), {});
  ASSERT_TRUE(f.ok()) << f.status();
  recorded = 0;
  EXPECT_EQ(Call(*f, 0, 1234, 0), 7);
  EXPECT_EQ(recorded, 1234);
  backend->Release(f->handle);
}

struct Fields {
  uint8_t byte;
  uint8_t pad[3];
  uint32_t word;
  uint64_t quad;
  uint64_t guard;
};

// Loads zero-extend and stores truncate, at offsets 0, 4 and 8 of the struct in `frame`.
TEST(BackendTest, LoadsZeroExtendAndStoresTruncate) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  for (int opt_level : {0, 2}) {
    std::unique_ptr<Emitter> e = backend->NewFunction("fields");
    Value p = e->Param(1);
    Value all_ones = e->Imm(-1);
    e->Store(p, offsetof(Fields, byte), all_ones, Width::k8);
    e->Store(p, offsetof(Fields, word), all_ones, Width::k32);
    e->Store(p, offsetof(Fields, quad), e->Imm(0x0123456789abcdef), Width::k64);
    Value byte = e->Load(p, offsetof(Fields, byte), Width::k8);
    Value word = e->Load(p, offsetof(Fields, word), Width::k32);
    Value quad = e->Load(p, offsetof(Fields, quad), Width::k64);
    // Returns byte + word, and leaves quad + 1 in `guard` to check the 64-bit load.
    e->Store(p, offsetof(Fields, guard), e->Add(quad, e->Imm(1)));
    e->Return(e->Add(byte, word));
    CompileOptions options;
    options.opt_level = opt_level;
    absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), options);
    ASSERT_TRUE(f.ok()) << f.status();
    Fields fields = {};
    fields.pad[0] = fields.pad[1] = fields.pad[2] = 0x5a;
    EXPECT_EQ(Call(*f, 0, reinterpret_cast<int64_t>(&fields), 0), 0xff + 0xffffffffll);
    EXPECT_EQ(fields.byte, 0xff);
    EXPECT_EQ(fields.pad[0], 0x5a);  // the 8-bit store touched one byte
    EXPECT_EQ(fields.pad[2], 0x5a);
    EXPECT_EQ(fields.word, 0xffffffffu);
    EXPECT_EQ(fields.quad, 0x0123456789abcdefull);
    EXPECT_EQ(fields.guard, 0x0123456789abcdf0ull);
    backend->Release(f->handle);
  }
}

TEST(BackendTest, BranchUnlikelyCarriesWeightsAndBranches) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  // return tstate == 0 ? 111 : 222, with the tstate == 0 side unlikely
  std::unique_ptr<Emitter> e = backend->NewFunction("unlikely");
  Block rare = e->NewBlock("rare");
  Block common = e->NewBlock("common");
  e->BranchUnlikely(e->Compare(Cmp::kEq, e->Param(0), e->Imm(0)), rare, common);
  e->SetBlock(rare);
  e->Return(e->Imm(111));
  e->SetBlock(common);
  e->Return(e->Imm(222));
  CompileOptions options;
  options.keep_ir = true;
  absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), options);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NE(f->ir.find("branch_weights"), std::string::npos) << f->ir;
  EXPECT_EQ(Call(*f, 0), 111);
  EXPECT_EQ(Call(*f, 5), 222);
  backend->Release(f->handle);
}

TEST(BackendTest, KeepsIrNamingTheHelper) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  CompileOptions options;
  options.keep_ir = true;
  absl::StatusOr<CompiledFunction> f = backend->Compile(BuildCallAdd3(backend, 1), options);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_NE(f->ir.find("@fatjit_test_add3("), std::string::npos) << f->ir;
  EXPECT_NE(f->ir.find("call_add3"), std::string::npos) << f->ir;
  EXPECT_EQ(Call(*f, 1, 1, 1), 2);
  backend->Release(f->handle);
}

TEST(BackendTest, ABlockWithoutTerminatorIsInvalidArgument) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  std::unique_ptr<Emitter> e = backend->NewFunction("unterminated");
  Block next = e->NewBlock("next");
  e->Jump(next);
  e->SetBlock(next);
  e->Add(e->Param(0), e->Imm(1));  // and no Return
  absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), {});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(f.status().message().find("terminator"), std::string::npos) << f.status();
}

TEST(BackendTest, MisuseIsInvalidArgument) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  {  // a helper called with the wrong number of arguments
    std::unique_ptr<Emitter> e = backend->NewFunction("bad_call");
    e->Return(e->Call(kAdd3, {e->Param(0)}));
    absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), {});
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  }
  {  // an instruction after the block's terminator
    std::unique_ptr<Emitter> e = backend->NewFunction("after_return");
    e->Return(e->Imm(0));
    e->Return(e->Imm(1));
    absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), {});
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  }
  {  // the result of a helper that returns nothing
    std::unique_ptr<Emitter> e = backend->NewFunction("void_result");
    e->Return(e->Call(kRecord, {e->Param(0)}));
    absl::StatusOr<CompiledFunction> f = backend->Compile(std::move(e), {});
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << f.status();
  }
}

TEST(BackendTest, CompilesAgainAfterRelease) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  for (int round = 0; round < 3; ++round) {
    absl::StatusOr<CompiledFunction> f = backend->Compile(BuildCallAdd3(backend, round), {});
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(Call(*f, 1, 2, 3), 6 - round);
    backend->Release(f->handle);
  }
  backend->Release(0);  // an unknown handle is ignored
}

TEST(BackendTest, OptLevel2Works) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  CompileOptions options;
  options.opt_level = 2;
  options.keep_ir = true;
  absl::StatusOr<CompiledFunction> loop = backend->Compile(BuildSumLoop(backend), options);
  ASSERT_TRUE(loop.ok()) << loop.status();
  EXPECT_EQ(SumLoop(*loop, 100), 5050);
  EXPECT_EQ(SumLoop(*loop, 100000), 5000050000);
  EXPECT_GT(loop->code_size, 0u);
  absl::StatusOr<CompiledFunction> call = backend->Compile(BuildCallAdd3(backend, 3), options);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(Call(*call, 1, 2, 3), 3);
  EXPECT_NE(call->ir.find("@fatjit_test_add3("), std::string::npos) << call->ir;
  backend->Release(loop->handle);
  backend->Release(call->handle);
}

TEST(BackendTest, CompilesFromSeveralThreads) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  constexpr int kThreads = 4;
  constexpr int kFunctions = 25;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([backend, t, &failures] {
      for (int i = 0; i < kFunctions; ++i) {
        CompileOptions options;
        options.opt_level = i % 5 == 0 ? 2 : 0;
        absl::StatusOr<CompiledFunction> f = backend->Compile(BuildCallAdd3(backend, i), options);
        if (!f.ok() || Call(*f, t, 1, 1) != t + 2 - i) ++failures[t];
        if (f.ok()) backend->Release(f->handle);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
}

double ThreadCpuMs() {
  timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

// Not a benchmark, a guard against per-compile costs creeping in: prints the time per compile
// (build + verify + optimize + codegen + link) of the loop (which O2 vectorizes) and of a call.
TEST(BackendTest, CompileTime) {
  Backend* backend = TheBackend();
  ASSERT_NE(backend, nullptr);
  constexpr int kCompiles = 100;
  struct Case {
    const char* name;
    std::unique_ptr<Emitter> (*build)(Backend*);
  };
  const Case cases[] = {{"sum_loop", BuildSumLoop},
                        {"call_add3", [](Backend* b) { return BuildCallAdd3(b, 1); }}};
  for (const Case& c : cases) {
    for (int opt_level : {0, 2}) {
      CompileOptions options;
      options.opt_level = opt_level;
      std::vector<uint64_t> handles;
      auto start = std::chrono::steady_clock::now();
      double cpu_start = ThreadCpuMs();
      for (int i = 0; i < kCompiles; ++i) {
        absl::StatusOr<CompiledFunction> f = backend->Compile(c.build(backend), options);
        ASSERT_TRUE(f.ok()) << f.status();
        handles.push_back(f->handle);
      }
      double cpu_ms = ThreadCpuMs() - cpu_start;
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                            start).count();
      std::printf("[ timing   ] %s at O%d: %.3f ms per compile (%.3f ms CPU)\n", c.name,
                  opt_level, ms / kCompiles, cpu_ms / kCompiles);
      for (uint64_t handle : handles) backend->Release(handle);
    }
  }
}

}  // namespace
}  // namespace fatjit::jit
