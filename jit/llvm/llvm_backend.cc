// The LLVM ORC backend: emitter.h's Emitter and Backend over one process-wide llvm::orc::LLJIT.
//
// Assumes: the host is the target; one Emitter is used by one thread at a time; helper names
// always come with the same address. Produces: per Compile, one object file linked into the
// JIT's main JITDylib under a fresh ResourceTracker, so Release frees exactly that function.
//
// Each Emitter owns an LLVMContext and a Module holding one function
//     i64 @"<name>.<id>"(i64 %tstate, i64 %frame, i64 %throwflag)
// (the suffix makes symbols unique in the JITDylib, since names repeat). Helpers are external
// declarations (`declare i64 @helper(i64, ...)`) that resolve to absolute symbols defined once
// per name in the main JITDylib. Compile verifies, optionally runs the O2 IR pipeline, generates
// code with a pooled TargetMachine (O0 = FastISel, O2 = the default codegen level) and hands the
// object to LLJIT; the IR compile layer of LLJIT is not used, so the function's size is read
// from the object's symbol table before linking.
//
// Built with -fno-exceptions: every llvm::Error/Expected becomes an absl::Status here, once.
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "jit/emitter.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ExecutionEngine/Orc/CompileUtils.h"
#include "llvm/ExecutionEngine/Orc/Core.h"
#include "llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h"
#include "llvm/ExecutionEngine/Orc/LLJIT.h"
#include "llvm/IR/BasicBlock.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/MDBuilder.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/Verifier.h"
#include "llvm/Object/ObjectFile.h"
#include "llvm/Object/SymbolSize.h"
#include "llvm/Passes/OptimizationLevel.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Support/CodeGen.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetMachine.h"

namespace fatjit::jit {
namespace {

// Branch weights of BranchUnlikely: taken about once in 2000.
constexpr uint32_t kUnlikelyWeight = 1;
constexpr uint32_t kLikelyWeight = 2000;

std::string ErrorText(llvm::Error error) { return llvm::toString(std::move(error)); }

std::string ModuleText(const llvm::Module& module) {
  std::string text;
  llvm::raw_string_ostream out(text);
  module.print(out, nullptr);
  return text;
}

// TargetMachines for one codegen level. A TargetMachine is not safe to use from two threads at
// once, so each compile borrows one (creating it if all are busy) and gives it back.
class TargetMachinePool {
 public:
  TargetMachinePool(llvm::orc::JITTargetMachineBuilder builder, llvm::CodeGenOptLevel level)
      : builder_(std::move(builder)), level_(level) {
    builder_.setCodeGenOptLevel(level);
  }

  absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        std::unique_ptr<llvm::TargetMachine> machine = std::move(free_.back());
        free_.pop_back();
        return machine;
      }
    }
    llvm::Expected<std::unique_ptr<llvm::TargetMachine>> machine =
        builder_.createTargetMachine();
    if (!machine) {
      return absl::InternalError(
          absl::StrCat("cannot create a TargetMachine: ", ErrorText(machine.takeError())));
    }
    // Codegen O0 selects instructions with FastISel only when the target asks for it.
    if (level_ == llvm::CodeGenOptLevel::None) (*machine)->setO0WantsFastISel(true);
    return std::move(*machine);
  }

  void Give(std::unique_ptr<llvm::TargetMachine> machine) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(machine));
  }

 private:
  llvm::orc::JITTargetMachineBuilder builder_;
  llvm::CodeGenOptLevel level_;
  std::mutex mu_;
  std::vector<std::unique_ptr<llvm::TargetMachine>> free_;
};

// Borrows a TargetMachine for one scope.
class BorrowedMachine {
 public:
  BorrowedMachine(TargetMachinePool& pool, std::unique_ptr<llvm::TargetMachine> machine)
      : pool_(pool), machine_(std::move(machine)) {}
  ~BorrowedMachine() { pool_.Give(std::move(machine_)); }
  BorrowedMachine(const BorrowedMachine&) = delete;
  BorrowedMachine& operator=(const BorrowedMachine&) = delete;
  llvm::TargetMachine& operator*() { return *machine_; }

 private:
  TargetMachinePool& pool_;
  std::unique_ptr<llvm::TargetMachine> machine_;
};

class LlvmEmitter final : public Emitter {
 public:
  LlvmEmitter(std::string_view name, uint64_t id, const llvm::DataLayout& layout,
              const llvm::Triple& triple)
      : context_(std::make_unique<llvm::LLVMContext>()),
        module_(std::make_unique<llvm::Module>(llvm::StringRef(name.data(), name.size()),
                                               *context_)),
        builder_(*context_),
        i64_(builder_.getInt64Ty()) {
    module_->setDataLayout(layout);
    module_->setTargetTriple(triple.str());
    llvm::FunctionType* type = llvm::FunctionType::get(i64_, {i64_, i64_, i64_}, false);
    symbol_ = absl::StrCat(absl::string_view(name.data(), name.size()), ".", id);
    function_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, symbol_, *module_);
    // Helper names are ours, not the C library's: never give them builtin semantics.
    function_->addFnAttr("no-builtins");
    static constexpr const char* kParamNames[] = {"tstate", "frame", "throwflag"};
    for (int i = 0; i < 3; ++i) function_->getArg(i)->setName(kParamNames[i]);
    blocks_.push_back(llvm::BasicBlock::Create(*context_, "entry", function_));
    builder_.SetInsertPoint(blocks_.back());
  }

  Value Param(int index) override {
    if (index < 0 || index >= 3) {
      Fail(absl::StrCat("Param(", index, "): the function has 3 parameters"));
      return Push(llvm::PoisonValue::get(i64_));
    }
    return Push(function_->getArg(index));
  }
  int64_t InstructionCount() const override {
    return static_cast<int64_t>(function_->getInstructionCount());
  }

  Value Imm(int64_t value) override { return Push(builder_.getInt64(value)); }

  Value Load(Value address, int64_t offset, Width width, Mem mem) override {
    if (!CanEmit("Load")) return Push(llvm::PoisonValue::get(i64_));
    llvm::Type* type = builder_.getIntNTy(static_cast<unsigned>(width));
    llvm::LoadInst* loaded =
        builder_.CreateAlignedLoad(type, Address(address, offset), llvm::Align(1));
    Tag(loaded, mem);
    return Push(builder_.CreateZExtOrBitCast(loaded, i64_));
  }

  Value LoadVolatile(Value address, int64_t offset, Width width) override {
    if (!CanEmit("LoadVolatile")) return Push(llvm::PoisonValue::get(i64_));
    llvm::Type* type = builder_.getIntNTy(static_cast<unsigned>(width));
    llvm::Value* loaded = builder_.CreateAlignedLoad(type, Address(address, offset),
                                                     llvm::Align(1), /*isVolatile=*/true);
    return Push(builder_.CreateZExtOrBitCast(loaded, i64_));
  }

  void Store(Value address, int64_t offset, Value value, Width width, Mem mem) override {
    if (!CanEmit("Store")) return;
    llvm::Type* type = builder_.getIntNTy(static_cast<unsigned>(width));
    llvm::Value* stored = builder_.CreateTruncOrBitCast(AsI64(value), type);
    Tag(builder_.CreateAlignedStore(stored, Address(address, offset), llvm::Align(1)), mem);
  }

  Value Add(Value a, Value b) override {
    if (!CanEmit("Add")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateAdd(AsI64(a), AsI64(b)));
  }

  Value Sub(Value a, Value b) override {
    if (!CanEmit("Sub")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateSub(AsI64(a), AsI64(b)));
  }

  Value Or(Value a, Value b) override {
    if (!CanEmit("Or")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateOr(AsI64(a), AsI64(b)));
  }

  Value And(Value a, Value b) override {
    if (!CanEmit("And")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateAnd(AsI64(a), AsI64(b)));
  }

  Value Xor(Value a, Value b) override {
    if (!CanEmit("Xor")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateXor(AsI64(a), AsI64(b)));
  }

  Value Mul(Value a, Value b) override {
    if (!CanEmit("Mul")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateMul(AsI64(a), AsI64(b)));
  }

  Value SDiv(Value a, Value b) override {
    if (!CanEmit("SDiv")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateSDiv(AsI64(a), AsI64(b)));
  }

  Value SRem(Value a, Value b) override {
    if (!CanEmit("SRem")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateSRem(AsI64(a), AsI64(b)));
  }

  Value Shl(Value a, Value b) override {
    if (!CanEmit("Shl")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateShl(AsI64(a), AsI64(b)));
  }

  Value AShr(Value a, Value b) override {
    if (!CanEmit("AShr")) return Push(llvm::PoisonValue::get(i64_));
    return Push(builder_.CreateAShr(AsI64(a), AsI64(b)));
  }

  Value FAdd(Value a, Value b) override { return FloatOp("FAdd", llvm::Instruction::FAdd, a, b); }
  Value FSub(Value a, Value b) override { return FloatOp("FSub", llvm::Instruction::FSub, a, b); }
  Value FMul(Value a, Value b) override { return FloatOp("FMul", llvm::Instruction::FMul, a, b); }
  Value FDiv(Value a, Value b) override { return FloatOp("FDiv", llvm::Instruction::FDiv, a, b); }

  Value IntToDouble(Value a) override {
    if (!CanEmit("IntToDouble")) return Push(llvm::PoisonValue::get(i64_));
    llvm::Value* value = builder_.CreateSIToFP(Get(a), builder_.getDoubleTy());
    return Push(builder_.CreateBitCast(value, i64_));
  }

  Value FSqrt(Value a) override {
    if (!CanEmit("FSqrt")) return Push(llvm::PoisonValue::get(i64_));
    llvm::Value* root = builder_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, AsDouble(a));
    return Push(builder_.CreateBitCast(root, i64_));
  }

  Value FCompare(FCmp cmp, Value a, Value b) override {
    if (!CanEmit("FCompare")) return Push(llvm::PoisonValue::get(builder_.getInt1Ty()));
    return Push(builder_.CreateFCmp(FloatPredicate(cmp), AsDouble(a), AsDouble(b)));
  }

  Value StackSlot() override {
    // Allocas go first in the entry block (where LLVM expects static ones).
    llvm::BasicBlock& entry = function_->getEntryBlock();
    llvm::IRBuilder<> at_entry(&entry, entry.begin());
    llvm::AllocaInst* slot = at_entry.CreateAlloca(i64_, nullptr, "slot");
    llvm::Value* address = at_entry.CreatePtrToInt(slot, i64_);
    return Push(address);
  }

  Value Compare(Cmp cmp, Value a, Value b) override {
    if (!CanEmit("Compare")) return Push(llvm::PoisonValue::get(builder_.getInt1Ty()));
    return Push(builder_.CreateICmp(Predicate(cmp), AsI64(a), AsI64(b)));
  }

  Value Select(Value condition, Value if_true, Value if_false) override {
    if (!CanEmit("Select")) return Push(llvm::PoisonValue::get(i64_));
    llvm::Value* c = Get(condition);
    if (c->getType() != builder_.getInt1Ty()) c = builder_.CreateICmpNE(c, builder_.getInt64(0));
    return Push(builder_.CreateSelect(c, AsI64(if_true), AsI64(if_false)));
  }

  Value Phi(absl::Span<const std::pair<Value, Block>> incoming) override {
    if (!CanEmit("Phi")) return Push(llvm::PoisonValue::get(i64_));
    if (builder_.GetInsertBlock()->getFirstNonPHI() != nullptr) {
      Fail("Phi: the block already has instructions other than phis");
      return Push(llvm::PoisonValue::get(i64_));
    }
    llvm::PHINode* phi = builder_.CreatePHI(i64_, static_cast<unsigned>(incoming.size()));
    for (const auto& [value, block] : incoming) {
      llvm::BasicBlock* from = GetBlock(block);
      llvm::Value* v = Get(value);
      if (from == nullptr || v->getType() != i64_) {  // (a condition would need a zext there)
        Fail("Phi: an incoming value is not an int64");
        return Push(llvm::PoisonValue::get(i64_));
      }
      phi->addIncoming(v, from);
    }
    return Push(phi);
  }

  Value Call(const Helper& helper, absl::Span<const Value> args) override;
  Value CallAddress(Value address, absl::Span<const Value> args) override;

  Block NewBlock(std::string_view name) override {
    blocks_.push_back(llvm::BasicBlock::Create(
        *context_, llvm::StringRef(name.data(), name.size()), function_));
    return static_cast<Block>(blocks_.size() - 1);
  }

  void SetBlock(Block block) override {
    if (llvm::BasicBlock* target = GetBlock(block)) builder_.SetInsertPoint(target);
  }

  void Jump(Block target) override {
    llvm::BasicBlock* to = GetBlock(target);
    if (to == nullptr || !CanEmit("Jump")) return;
    builder_.CreateBr(to);
  }

  void Branch(Value condition, Block if_true, Block if_false) override {
    EmitBranch(condition, if_true, if_false, nullptr);
  }

  void BranchUnlikely(Value condition, Block if_true, Block if_false) override {
    EmitBranch(condition, if_true, if_false,
               llvm::MDBuilder(*context_).createBranchWeights(kUnlikelyWeight, kLikelyWeight));
  }

  void Return(Value value) override {
    if (!CanEmit("Return")) return;
    builder_.CreateRet(AsI64(value));
  }

  // For the backend.
  const std::string& error() const { return error_; }
  const std::string& symbol() const { return symbol_; }
  llvm::Module& module() { return *module_; }
  const llvm::StringMap<const void*>& helpers() const { return helpers_; }

 private:
  // Type-based alias metadata: one scalar type per memory class under a common root, so
  // accesses of two different classes never alias; kAny gets none (aliases everything).
  void Tag(llvm::Instruction* access, Mem mem) {
    if (mem == Mem::kAny) return;
    const int index = static_cast<int>(mem);
    if (tbaa_tags_[index] == nullptr) {
      llvm::MDBuilder md(*context_);
      if (tbaa_root_ == nullptr) tbaa_root_ = md.createTBAARoot("fatjit memory");
      static constexpr const char* kNames[] = {"any", "frame", "refcount", "type", "field"};
      llvm::MDNode* scalar = md.createTBAAScalarTypeNode(kNames[index], tbaa_root_);
      tbaa_tags_[index] = md.createTBAAStructTagNode(scalar, scalar, 0);
    }
    access->setMetadata(llvm::LLVMContext::MD_tbaa, tbaa_tags_[index]);
  }

  // Records the first misuse; Compile reports it as InvalidArgument.
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

  Value Push(llvm::Value* value) {
    values_.push_back(value);
    return static_cast<Value>(values_.size() - 1);
  }

  // Whether an instruction may go at the insert point: the current block is still open.
  bool CanEmit(const char* what) {
    llvm::BasicBlock* block = builder_.GetInsertBlock();
    if (block->getTerminator() == nullptr) return true;
    Fail(absl::StrCat(what, ": block '", block->getName().str(),
                      "' already ends in a terminator"));
    return false;
  }

  llvm::Value* Get(Value value) {
    if (value < 0 || static_cast<size_t>(value) >= values_.size()) {
      Fail(absl::StrCat("value ", value, " does not exist"));
      return llvm::PoisonValue::get(i64_);
    }
    if (values_[value] == nullptr) {
      Fail(absl::StrCat("value ", value, " is the result of a helper that returns nothing"));
      return llvm::PoisonValue::get(i64_);
    }
    return values_[value];
  }

  // An i1 condition used as an integer is 0 or 1.
  llvm::Value* AsI64(Value value) {
    llvm::Value* v = Get(value);
    return v->getType() == i64_ ? v : builder_.CreateZExt(v, i64_);
  }

  // An int64 holding a double's bits, as a double.
  llvm::Value* AsDouble(Value value) {
    return builder_.CreateBitCast(AsI64(value), builder_.getDoubleTy());
  }

  // A double arithmetic instruction on bits, giving bits. No fast-math flags: IEEE results
  // exactly as C computes them (-0.0, NaN and inf included).
  Value FloatOp(const char* what, llvm::Instruction::BinaryOps op, Value a, Value b) {
    if (!CanEmit(what)) return Push(llvm::PoisonValue::get(i64_));
    llvm::Value* result = builder_.CreateBinOp(op, AsDouble(a), AsDouble(b));
    return Push(builder_.CreateBitCast(result, i64_));
  }

  // An integer used as a condition is true when nonzero.
  llvm::Value* AsI1(Value value) {
    llvm::Value* v = Get(value);
    return v->getType() == i64_ ? builder_.CreateICmpNE(v, builder_.getInt64(0)) : v;
  }

  // `address + offset` as a pointer. A byte GEP on the integer's pointer (rather than inttoptr
  // of an add) lets alias analysis see distinct fields of one object at O2. Accesses claim
  // alignment 1: the frontend's addresses carry no alignment promise, and x86-64 emits the
  // same instructions either way.
  llvm::Value* Address(Value address, int64_t offset) {
    llvm::Value* base = BasePointer(address);
    if (offset == 0) return base;
    return builder_.CreateGEP(builder_.getInt8Ty(), base, builder_.getInt64(offset));
  }

  // The pointer for an address value. Parameters (tstate, frame) and stack slots are converted
  // once, in the entry block, which dominates every use: fewer instructions for the code
  // generator, which is most of the compile time at O0.
  llvm::Value* BasePointer(Value address) {
    llvm::Value* v = AsI64(address);
    const bool entry_defined =
        llvm::isa<llvm::Argument>(v) ||
        (llvm::isa<llvm::PtrToIntInst>(v) &&
         llvm::cast<llvm::Instruction>(v)->getParent() == &function_->getEntryBlock());
    if (!entry_defined) return builder_.CreateIntToPtr(v, builder_.getPtrTy());
    auto it = pointers_.find(v);
    if (it != pointers_.end()) return it->second;
    llvm::Value* pointer;
    if (auto* as_int = llvm::dyn_cast<llvm::PtrToIntInst>(v)) {
      pointer = as_int->getPointerOperand();
    } else {
      llvm::BasicBlock& entry = function_->getEntryBlock();
      llvm::IRBuilder<> at_entry(&entry, entry.getFirstInsertionPt());
      pointer = at_entry.CreateIntToPtr(v, builder_.getPtrTy());
    }
    pointers_.try_emplace(v, pointer);
    return pointer;
  }

  llvm::BasicBlock* GetBlock(Block block) {
    if (block < 0 || static_cast<size_t>(block) >= blocks_.size()) {
      Fail(absl::StrCat("block ", block, " does not exist"));
      return nullptr;
    }
    return blocks_[block];
  }

  void EmitBranch(Value condition, Block if_true, Block if_false, llvm::MDNode* weights) {
    llvm::BasicBlock* to_true = GetBlock(if_true);
    llvm::BasicBlock* to_false = GetBlock(if_false);
    if (to_true == nullptr || to_false == nullptr || !CanEmit("Branch")) return;
    builder_.CreateCondBr(AsI1(condition), to_true, to_false, weights);
  }

  static llvm::CmpInst::Predicate Predicate(Cmp cmp) {
    switch (cmp) {
      case Cmp::kEq: return llvm::CmpInst::ICMP_EQ;
      case Cmp::kNe: return llvm::CmpInst::ICMP_NE;
      case Cmp::kSlt: return llvm::CmpInst::ICMP_SLT;
      case Cmp::kSle: return llvm::CmpInst::ICMP_SLE;
      case Cmp::kSgt: return llvm::CmpInst::ICMP_SGT;
      case Cmp::kSge: return llvm::CmpInst::ICMP_SGE;
      case Cmp::kUlt: return llvm::CmpInst::ICMP_ULT;
    }
    return llvm::CmpInst::ICMP_EQ;
  }

  static llvm::CmpInst::Predicate FloatPredicate(FCmp cmp) {
    switch (cmp) {
      case FCmp::kOeq: return llvm::CmpInst::FCMP_OEQ;
      case FCmp::kUne: return llvm::CmpInst::FCMP_UNE;
      case FCmp::kOlt: return llvm::CmpInst::FCMP_OLT;
      case FCmp::kOle: return llvm::CmpInst::FCMP_OLE;
      case FCmp::kOgt: return llvm::CmpInst::FCMP_OGT;
      case FCmp::kOge: return llvm::CmpInst::FCMP_OGE;
    }
    return llvm::CmpInst::FCMP_OEQ;
  }

  // Declared first: destroyed last (the module and the builder refer to it).
  std::unique_ptr<llvm::LLVMContext> context_;
  std::unique_ptr<llvm::Module> module_;
  llvm::IRBuilder<> builder_;
  llvm::IntegerType* i64_;
  std::string symbol_;
  llvm::Function* function_ = nullptr;
  std::vector<llvm::Value*> values_;  // null: the result of a helper returning nothing
  llvm::DenseMap<llvm::Value*, llvm::Value*> pointers_;  // entry-block pointers of addresses
  std::vector<llvm::BasicBlock*> blocks_;
  llvm::StringMap<const void*> helpers_;  // name -> address, for the JITDylib
  std::string error_;
  llvm::MDNode* tbaa_root_ = nullptr;
  llvm::MDNode* tbaa_tags_[5] = {};
};

Value LlvmEmitter::Call(const Helper& helper, absl::Span<const Value> args) {
  llvm::Value* poison = llvm::PoisonValue::get(i64_);
  if (!CanEmit("Call")) return Push(poison);
  if (helper.name == nullptr || helper.address == nullptr) {
    Fail("Call: a helper needs a name and an address");
    return Push(poison);
  }
  if (static_cast<size_t>(helper.nargs) != args.size()) {
    Fail(absl::StrCat("Call(", helper.name, "): ", args.size(), " arguments for ", helper.nargs,
                      " parameters"));
    return Push(poison);
  }
  auto [entry, inserted] = helpers_.try_emplace(helper.name, helper.address);
  if (!inserted && entry->second != helper.address) {
    Fail(absl::StrCat("Call(", helper.name, "): one name for two addresses"));
    return Push(poison);
  }
  std::vector<llvm::Type*> params(helper.nargs, i64_);
  llvm::Type* result = helper.returns_value ? static_cast<llvm::Type*>(i64_)
                                            : builder_.getVoidTy();
  llvm::FunctionType* type = llvm::FunctionType::get(result, params, false);
  llvm::FunctionCallee callee = module_->getOrInsertFunction(helper.name, type);
  auto* declared = llvm::dyn_cast<llvm::Function>(callee.getCallee());
  if (declared == nullptr || !declared->isDeclaration()) {
    Fail(absl::StrCat("Call(", helper.name, "): the name is the function's own"));
    return Push(poison);
  }
  if (declared->getFunctionType() != type) {
    Fail(absl::StrCat("Call(", helper.name, "): the name was used with another signature"));
    return Push(poison);
  }
  std::vector<llvm::Value*> operands;
  operands.reserve(args.size());
  for (Value arg : args) operands.push_back(AsI64(arg));
  llvm::CallInst* call = builder_.CreateCall(callee, operands);
  return Push(helper.returns_value ? call : nullptr);
}

Value LlvmEmitter::CallAddress(Value address, absl::Span<const Value> args) {
  if (!CanEmit("CallAddress")) return Push(llvm::PoisonValue::get(i64_));
  std::vector<llvm::Type*> params(args.size(), i64_);
  llvm::FunctionType* type = llvm::FunctionType::get(i64_, params, false);
  std::vector<llvm::Value*> operands;
  operands.reserve(args.size());
  for (Value arg : args) operands.push_back(AsI64(arg));
  llvm::Value* function = builder_.CreateIntToPtr(AsI64(address), builder_.getPtrTy());
  return Push(builder_.CreateCall(type, function, operands));
}

class LlvmBackend final : public Backend {
 public:
  // Creates the process's JIT. Errors are human-readable sentences.
  static absl::StatusOr<std::unique_ptr<LlvmBackend>> Create();

  const char* name() const override { return "llvm"; }

  std::unique_ptr<Emitter> NewFunction(std::string_view name) override {
    return std::make_unique<LlvmEmitter>(name, next_function_id_.fetch_add(1),
                                         jit_->getDataLayout(), jit_->getTargetTriple());
  }

  absl::StatusOr<CompiledFunction> Compile(std::unique_ptr<Emitter> emitter,
                                           const CompileOptions& options) override;

  void Release(uint64_t handle) override {
    llvm::orc::ResourceTrackerSP tracker;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = trackers_.find(handle);
      if (it == trackers_.end()) return;
      tracker = std::move(it->second);
      trackers_.erase(it);
    }
    if (llvm::Error error = tracker->remove()) {
      llvm::errs() << "fatjit: releasing compiled code failed: " << ErrorText(std::move(error))
                   << "\n";
    }
  }

 private:
  LlvmBackend(std::unique_ptr<llvm::orc::LLJIT> jit,
              const llvm::orc::JITTargetMachineBuilder& builder)
      : jit_(std::move(jit)),
        o0_(builder, llvm::CodeGenOptLevel::None),
        o2_(builder, llvm::CodeGenOptLevel::Default) {}

  absl::Status Optimize(llvm::Module& module);
  // Opt level 1: a few cheap IR passes (kLevel1Passes), then the optimizing code generator.
  absl::Status RunLevel1Passes(llvm::Module& module);
  absl::StatusOr<std::unique_ptr<llvm::MemoryBuffer>> Codegen(llvm::Module& module,
                                                             TargetMachinePool& pool);
  absl::Status DefineHelpers(const llvm::StringMap<const void*>& helpers);

  // FATJIT_PERF_MAP=1: each compiled function gets a line "START SIZE fatjit:NAME" in
  // /tmp/perf-PID.map, where `perf report` looks for symbols of JIT code. Called with mu_ held;
  // a forked child opens its own file.
  void WritePerfMapLine(const CompiledFunction& compiled, const std::string& symbol) {
    static const bool wanted = [] {
      const char* value = std::getenv("FATJIT_PERF_MAP");
      return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
    }();
    if (!wanted) return;
    if (perf_map_ == nullptr || perf_map_pid_ != getpid()) {
      perf_map_pid_ = getpid();
      perf_map_ = std::fopen(absl::StrCat("/tmp/perf-", perf_map_pid_, ".map").c_str(), "a");
      if (perf_map_ == nullptr) return;
    }
    std::fprintf(perf_map_, "%lx %zx fatjit:%s\n",
                 reinterpret_cast<unsigned long>(compiled.entry), compiled.code_size,
                 symbol.c_str());
    std::fflush(perf_map_);
  }

  std::unique_ptr<llvm::orc::LLJIT> jit_;
  TargetMachinePool o0_;
  TargetMachinePool o2_;
  std::atomic<uint64_t> next_function_id_{0};

  std::mutex mu_;  // guards the maps below
  llvm::StringMap<const void*> defined_helpers_;
  llvm::DenseMap<uint64_t, llvm::orc::ResourceTrackerSP> trackers_;
  uint64_t next_handle_ = 1;
  std::FILE* perf_map_ = nullptr;
  pid_t perf_map_pid_ = 0;
};

absl::StatusOr<std::unique_ptr<LlvmBackend>> LlvmBackend::Create() {
  if (llvm::InitializeNativeTarget() || llvm::InitializeNativeTargetAsmPrinter()) {
    return absl::UnavailableError("LLVM has no native target for this host");
  }
  llvm::Expected<llvm::orc::JITTargetMachineBuilder> builder =
      llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!builder) {
    return absl::UnavailableError(
        absl::StrCat("LLVM cannot describe this host: ", ErrorText(builder.takeError())));
  }
  // What LLJIT picks for JITLink; our own TargetMachines must generate the same kind of code.
  builder->setCodeModel(llvm::CodeModel::Small);
  builder->setRelocationModel(llvm::Reloc::PIC_);
  builder->setCodeGenOptLevel(llvm::CodeGenOptLevel::None);
  llvm::Expected<std::unique_ptr<llvm::orc::LLJIT>> jit =
      llvm::orc::LLJITBuilder()
          .setJITTargetMachineBuilder(*builder)
          .setPlatformSetUp(llvm::orc::setUpInactivePlatform)  // no static initializers
          .create();
  if (!jit) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the LLVM JIT: ", ErrorText(jit.takeError())));
  }
  return std::unique_ptr<LlvmBackend>(new LlvmBackend(std::move(*jit), *builder));
}

// The optimizing tier's IR passes (opt level 1): stack slots to SSA values, then the cheap
// scalar cleanups that matter for translated bytecode: frame and object loads after stores to
// the same place forwarded (the translation reloads every stack slot it just wrote), repeated
// loads and checks merged, folded branches removed. FATJIT_JIT_L1_PASSES (a textual pass
// pipeline, as `opt -passes=` takes) replaces it, for measurements.
constexpr char kLevel1Passes[] =
    "function(mem2reg,instcombine<no-verify-fixpoint>,simplifycfg,early-cse<memssa>,gvn,dse,"
    "simplifycfg)";

absl::Status LlvmBackend::RunLevel1Passes(llvm::Module& module) {
  static const std::string pipeline = [] {
    const char* text = std::getenv("FATJIT_JIT_L1_PASSES");
    return std::string(text != nullptr ? text : kLevel1Passes);
  }();
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder passes;
  passes.registerModuleAnalyses(modules);
  passes.registerCGSCCAnalyses(sccs);
  passes.registerFunctionAnalyses(functions);
  passes.registerLoopAnalyses(loops);
  passes.crossRegisterProxies(loops, functions, sccs, modules);
  llvm::ModulePassManager manager;
  if (llvm::Error error = passes.parsePassPipeline(manager, pipeline)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad pass pipeline \"", pipeline, "\": ", ErrorText(std::move(error))));
  }
  manager.run(module, modules);
  return absl::OkStatus();
}

absl::Status LlvmBackend::Optimize(llvm::Module& module) {
  absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> taken = o2_.Take();
  if (!taken.ok()) return taken.status();
  BorrowedMachine machine(o2_, std::move(*taken));
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder passes(&*machine);
  passes.registerModuleAnalyses(modules);
  passes.registerCGSCCAnalyses(sccs);
  passes.registerFunctionAnalyses(functions);
  passes.registerLoopAnalyses(loops);
  passes.crossRegisterProxies(loops, functions, sccs, modules);
  passes.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(module, modules);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<llvm::MemoryBuffer>> LlvmBackend::Codegen(
    llvm::Module& module, TargetMachinePool& pool) {
  absl::StatusOr<std::unique_ptr<llvm::TargetMachine>> taken = pool.Take();
  if (!taken.ok()) return taken.status();
  BorrowedMachine machine(pool, std::move(*taken));
  llvm::orc::SimpleCompiler compiler(*machine);
  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> object = compiler(module);
  if (!object) {
    return absl::InternalError(
        absl::StrCat("LLVM codegen failed: ", ErrorText(object.takeError())));
  }
  return std::move(*object);
}

// Bytes of `symbol`'s code in `object` (its ELF symbol size), 0 if unknown.
size_t CodeSize(const llvm::MemoryBuffer& object, llvm::StringRef symbol) {
  llvm::Expected<std::unique_ptr<llvm::object::ObjectFile>> file =
      llvm::object::ObjectFile::createObjectFile(object.getMemBufferRef());
  if (!file) {
    llvm::consumeError(file.takeError());
    return 0;
  }
  for (const auto& [sym, size] : llvm::object::computeSymbolSizes(**file)) {
    llvm::Expected<llvm::StringRef> name = sym.getName();
    if (!name) {
      llvm::consumeError(name.takeError());
      continue;
    }
    if (*name == symbol) return size;
  }
  return 0;
}

// Makes each helper name resolve to its address in the main JITDylib, once per name: the
// definitions outlive every function (they are not under a function's ResourceTracker).
absl::Status LlvmBackend::DefineHelpers(const llvm::StringMap<const void*>& helpers) {
  std::lock_guard<std::mutex> lock(mu_);
  llvm::orc::SymbolMap fresh;
  for (const auto& helper : helpers) {
    auto defined = defined_helpers_.find(helper.getKey());
    if (defined == defined_helpers_.end()) {
      fresh[jit_->mangleAndIntern(helper.getKey())] = llvm::orc::ExecutorSymbolDef(
          llvm::orc::ExecutorAddr::fromPtr(helper.getValue()),
          llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
    } else if (defined->second != helper.getValue()) {
      return absl::FailedPreconditionError(
          absl::StrCat("helper '", helper.getKey().str(), "' was defined at another address"));
    }
  }
  if (fresh.empty()) return absl::OkStatus();
  if (llvm::Error error =
          jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(fresh)))) {
    return absl::InternalError(
        absl::StrCat("cannot define helper symbols: ", ErrorText(std::move(error))));
  }
  for (const auto& helper : helpers) {
    defined_helpers_.try_emplace(helper.getKey(), helper.getValue());
  }
  return absl::OkStatus();
}

absl::StatusOr<CompiledFunction> LlvmBackend::Compile(std::unique_ptr<Emitter> emitter,
                                                      const CompileOptions& options) {
  auto* built = dynamic_cast<LlvmEmitter*>(emitter.get());
  if (built == nullptr) {
    return absl::InvalidArgumentError("Compile: the emitter is not this backend's");
  }
  if (!built->error().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("function ", built->symbol(), ": ", built->error()));
  }
  llvm::Module& module = built->module();
  {
    std::string message;
    llvm::raw_string_ostream out(message);
    if (llvm::verifyModule(module, &out)) {
      return absl::InvalidArgumentError(absl::StrCat("function ", built->symbol(),
                                                     " does not verify:\n", message,
                                                     ModuleText(module)));
    }
  }
  const bool optimize = options.opt_level >= 2;
  if (optimize) {
    absl::Status optimized = Optimize(module);
    if (!optimized.ok()) return optimized;
  } else if (options.opt_level == 1) {
    absl::Status optimized = RunLevel1Passes(module);
    if (!optimized.ok()) return optimized;
  }
  CompiledFunction compiled;
  if (options.keep_ir) compiled.ir = ModuleText(module);

  // opt_level 1: the optimizing code generator (instruction selection, register allocation)
  // without the IR pass pipeline.
  absl::StatusOr<std::unique_ptr<llvm::MemoryBuffer>> object =
      Codegen(module, options.opt_level >= 1 ? o2_ : o0_);
  if (!object.ok()) return object.status();
  compiled.code_size = CodeSize(**object, built->symbol());

  absl::Status defined = DefineHelpers(built->helpers());
  if (!defined.ok()) return defined;

  llvm::orc::ResourceTrackerSP tracker = jit_->getMainJITDylib().createResourceTracker();
  if (llvm::Error error = jit_->addObjectFile(tracker, std::move(*object))) {
    return absl::InternalError(
        absl::StrCat("cannot add ", built->symbol(), " to the JIT: ", ErrorText(std::move(error))));
  }
  llvm::Expected<llvm::orc::ExecutorAddr> entry = jit_->lookup(built->symbol());
  if (!entry) {
    std::string message = ErrorText(entry.takeError());
    llvm::consumeError(tracker->remove());
    return absl::InternalError(
        absl::StrCat("cannot link ", built->symbol(), ": ", message));
  }
  compiled.entry = entry->toPtr<const void*>();
  std::lock_guard<std::mutex> lock(mu_);
  WritePerfMapLine(compiled, built->symbol());
  compiled.handle = next_handle_++;
  trackers_[compiled.handle] = std::move(tracker);
  return compiled;
}

}  // namespace
}  // namespace fatjit::jit

// The one exported symbol (emitter.h): the process's backend, created on the first call. The
// backend is never destroyed: native code may run until the process exits.
extern "C" __attribute__((visibility("default"))) fatjit::jit::Backend* fatjit_create_backend_v1(
    const char** error) {
  static std::once_flag once;
  static fatjit::jit::Backend* backend = nullptr;
  static std::string* failure = nullptr;
  std::call_once(once, [] {
    absl::StatusOr<std::unique_ptr<fatjit::jit::LlvmBackend>> created =
        fatjit::jit::LlvmBackend::Create();
    if (created.ok()) {
      backend = created->release();
    } else {
      failure = new std::string(created.status().message());
    }
  });
  if (backend == nullptr && error != nullptr) *error = failure->c_str();
  return backend;
}
