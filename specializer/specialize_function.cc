// SpecializeFunction: runs the passes, chooses the active rewrites, builds code and guards.
// See specialize_function.h for the contract and the soundness argument.
#include "specializer/specialize_function.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "guards/guard_builtins.h"
#include "guards/guard_dict.h"
#include "guards/guard_type_version.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/bytecode/stack_depth.h"
#include "specializer/entry_stability.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

struct PassEntry {
  const char* name;
  absl::StatusOr<bool> (*run)(SpecializationBuilder&);
};
constexpr PassEntry kPasses[] = {
#define FATJIT_PASS_ENTRY(function, name, doc) {name, function},
    FATJIT_SPECIALIZER_PASSES(FATJIT_PASS_ENTRY)
#undef FATJIT_PASS_ENTRY
};

SpecializeResult Refuse(Refusal refusal, std::string detail = "") {
  SpecializeResult result;
  result.refused = true;
  result.refusal = refusal;
  result.detail = std::move(detail);
  return result;
}

// The entry RESUME (oparg 0) of a function that is not a generator or coroutine becomes
// RESUME 2, which does not service the eval breaker (see the file comment in the header).
std::vector<SlotEdit> EntryResumeEdit(const SpecializationBuilder& builder) {
  const int kNoEntryCheck = CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR;
  if (builder.code()->co_flags & kNoEntryCheck) return {};
  for (const bytecode::Instruction& inst : builder.instructions()) {
    if (inst.base_opcode == RESUME) {
      if (inst.oparg != 0) return {};
      SlotEdit edit;
      edit.offset = inst.offset;
      edit.end = inst.next_offset();
      edit.code.push_back({RESUME, 2});
      return {edit};
    }
  }
  return {};
}

int ParameterSlots(PyCodeObject* code) {
  return code->co_argcount + code->co_kwonlyargcount + ((code->co_flags & CO_VARARGS) ? 1 : 0) +
         ((code->co_flags & CO_VARKEYWORDS) ? 1 : 0);
}

// Per instruction of `rewriter`'s current code: entry-stable or not.
absl::StatusOr<std::pair<bytecode::DecodedCode, std::vector<bool>>> Stability(
    const bytecode::BytecodeRewriter& rewriter, PyCodeObject* code) {
  absl::StatusOr<bytecode::DecodedCode> decoded = rewriter.Rewritten();
  if (!decoded.ok()) return decoded.status();
  absl::StatusOr<bytecode::ControlFlowGraph> cfg = bytecode::ControlFlowGraph::Build(*decoded);
  if (!cfg.ok()) return cfg.status();
  std::vector<PyObject*> consts;
  while (PyObject* c = rewriter.const_at(static_cast<int>(consts.size()))) consts.push_back(c);
  absl::StatusOr<std::vector<bool>> stable =
      ComputeEntryStability(*decoded, *cfg, ParameterSlots(code), code->co_nlocalsplus, consts);
  if (!stable.ok()) return stable.status();
  return std::make_pair(*std::move(decoded), *std::move(stable));
}

// True if every instruction of the rewritten code inside `edit`'s slot is entry-stable.
bool SlotStable(const bytecode::DecodedCode& decoded, const std::vector<bool>& stable,
                const SlotEdit& edit) {
  for (int offset = edit.offset; offset < edit.end; ++offset) {
    int index = decoded.IndexAt(offset);
    if (index >= 0 && !stable[index]) return false;
  }
  return true;
}

// Instructions of `rewriter`'s code that no path from entry reaches: a walk over the CFG that
// follows exception edges and, if `decided` is set, skips the edge a decided branch never takes
// (dead_branches turns a branch on a constant into POP_JUMP_*_IF_NONE/NOT_NONE right after the
// LOAD_CONST). Without `decided` this is the reachability CPython's own analyses (and the
// rewriter's depth check) see.
absl::StatusOr<std::vector<bool>> Unreachable(const bytecode::BytecodeRewriter& rewriter,
                                              bool decided) {
  absl::StatusOr<bytecode::DecodedCode> decoded = rewriter.Rewritten();
  if (!decoded.ok()) return decoded.status();
  absl::StatusOr<bytecode::ControlFlowGraph> cfg = bytecode::ControlFlowGraph::Build(*decoded);
  if (!cfg.ok()) return cfg.status();
  absl::Span<const bytecode::Instruction> insts = decoded->instructions();
  std::vector<bool> reached(cfg->blocks().size(), false);
  std::vector<int> work;
  if (!reached.empty()) {
    reached[0] = true;
    work.push_back(0);
  }
  while (!work.empty()) {
    const bytecode::BasicBlock& block = cfg->block(work.back());
    work.pop_back();
    std::optional<bytecode::EdgeKind> never;
    const bytecode::Instruction& last = insts[block.last];
    if (decided && (last.base_opcode == POP_JUMP_FORWARD_IF_NONE ||
                    last.base_opcode == POP_JUMP_FORWARD_IF_NOT_NONE)) {
      int prev = block.last - 1;
      while (prev >= block.first && insts[prev].base_opcode == NOP) --prev;
      if (prev >= block.first && insts[prev].base_opcode == LOAD_CONST) {
        bool is_none = rewriter.const_at(insts[prev].oparg) == Py_None;
        bool jumps = (last.base_opcode == POP_JUMP_FORWARD_IF_NONE) == is_none;
        never = jumps ? bytecode::EdgeKind::kFallthrough : bytecode::EdgeKind::kJump;
      }
    }
    for (const bytecode::Edge& edge : block.successors) {
      if (never.has_value() && edge.kind == *never) continue;
      if (!reached[edge.block]) {
        reached[edge.block] = true;
        work.push_back(edge.block);
      }
    }
  }
  std::vector<bool> unreachable(insts.size(), false);
  for (const bytecode::BasicBlock& block : cfg->blocks()) {
    if (reached[block.id]) continue;
    for (int i = block.first; i <= block.last; ++i) unreachable[i] = true;
  }
  return unreachable;
}

// Code no path reaches (in the CFG, decided branches still counted both ways) is replaced by
// NOPs, offsets preserved. Sound: it never runs, and the rewriter's depth check ignores
// unreachable starts. Code a decided branch skips stays: NOPs there would change the stack depth
// flowing along the (never taken) edge into the join, which the depth check rejects.
absl::Status RemoveUnreachable(bytecode::BytecodeRewriter& rewriter) {
  absl::StatusOr<std::vector<bool>> unreachable = Unreachable(rewriter, /*decided=*/false);
  if (!unreachable.ok()) return unreachable.status();
  std::vector<int> offsets;
  absl::Span<const bytecode::Instruction> insts = rewriter.instructions();
  // The last instruction stays: the CFG requires that control never falls off the end, even in
  // code no path reaches.
  for (size_t i = 0; i + 1 < insts.size(); ++i) {
    if ((*unreachable)[i] && insts[i].base_opcode != NOP) offsets.push_back(insts[i].offset);
  }
  for (int offset : offsets) {
    if (absl::Status removed = rewriter.RemoveInstruction(offset); !removed.ok()) return removed;
  }
  return absl::OkStatus();
}

// Padding left by in-place rewrites costs a dispatch per NOP; a run of two or more NOPs starts
// with a JUMP_FORWARD over the rest instead. Sound: NOPs do nothing, a jump to any NOP of the
// run still falls through NOPs to the run's end, a forward jump services no eval breaker and
// cannot raise, and offsets, depths and tables are untouched.
absl::Status CompactPadding(bytecode::BytecodeRewriter& rewriter) {
  std::vector<std::pair<int, int>> runs;  // [start, end) offsets of NOP runs
  absl::Span<const bytecode::Instruction> insts = rewriter.instructions();
  for (size_t i = 0; i < insts.size();) {
    if (insts[i].base_opcode != NOP) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < insts.size() && insts[j].base_opcode == NOP) ++j;
    if (j - i >= 2 && j < insts.size()) runs.emplace_back(insts[i].offset, insts[j].offset);
    i = j;
  }
  // A JUMP_FORWARD in one code unit reaches at most 255 units past itself: hop along long runs.
  constexpr int kMaxHop = 255;
  for (const auto& [start, end] : runs) {
    for (int pos = start; end - pos >= 2;) {
      int target = std::min(end, pos + 1 + kMaxHop);
      bytecode::NewInstruction jump{JUMP_FORWARD, 0, target};
      absl::Status replaced = rewriter.Replace(pos, {&jump, 1});
      if (!replaced.ok()) return replaced;
      pos = target;
    }
  }
  return absl::OkStatus();
}

// One guard per kind of assumption used by the active rewrites, bound to `func`.
absl::StatusOr<std::vector<std::unique_ptr<Guard>>> GuardsFor(
    PyFunctionObject* func, const std::vector<Assumption>& assumptions,
    const std::vector<bool>& used) {
  std::vector<PyObject*> globals, builtins, types;
  std::vector<std::pair<PyObject*, std::vector<PyObject*>>> dict_keys;
  for (size_t i = 0; i < assumptions.size(); ++i) {
    if (!used[i]) continue;
    const Assumption& a = assumptions[i];
    switch (a.kind) {
      case Assumption::Kind::kGlobal:
        globals.push_back(a.key.obj());
        break;
      case Assumption::Kind::kBuiltin:
        builtins.push_back(a.key.obj());
        break;
      case Assumption::Kind::kTypeAttribute:
        if (std::find(types.begin(), types.end(), a.dict.obj()) == types.end()) {
          types.push_back(a.dict.obj());
        }
        break;
      case Assumption::Kind::kDictKey: {
        auto it = std::find_if(dict_keys.begin(), dict_keys.end(),
                               [&](const auto& entry) { return entry.first == a.dict.obj(); });
        if (it == dict_keys.end()) {
          dict_keys.push_back({a.dict.obj(), {a.key.obj()}});
        } else {
          it->second.push_back(a.key.obj());
        }
        break;
      }
    }
  }
  std::vector<std::unique_ptr<Guard>> guards;
  auto bind = [&](std::unique_ptr<Guard> guard) -> absl::Status {
    absl::Status bound = guard->Bind(func);
    if (!bound.ok()) return bound;
    guards.push_back(std::move(guard));
    return absl::OkStatus();
  };
  if (!globals.empty()) {
    absl::StatusOr<std::unique_ptr<GuardDict>> g = GuardDict::CreateForGlobals(globals);
    if (!g.ok()) return g.status();
    if (absl::Status s = bind(*std::move(g)); !s.ok()) return s;
  }
  if (!builtins.empty()) {
    absl::StatusOr<std::unique_ptr<GuardBuiltins>> g = GuardBuiltins::Create(builtins);
    if (!g.ok()) return g.status();
    if (absl::Status s = bind(*std::move(g)); !s.ok()) return s;
  }
  for (const auto& [dict, keys] : dict_keys) {
    absl::StatusOr<std::unique_ptr<GuardDict>> g = GuardDict::Create(dict, keys);
    if (!g.ok()) return g.status();
    if (absl::Status s = bind(*std::move(g)); !s.ok()) return s;
  }
  for (PyObject* type : types) {
    absl::StatusOr<std::unique_ptr<GuardTypeVersion>> g = GuardTypeVersion::Create(type);
    if (!g.ok()) return g.status();
    if (absl::Status s = bind(*std::move(g)); !s.ok()) return s;
  }
  // Every guard must agree with what the passes saw; nothing ran in between, but check anyway.
  for (const std::unique_ptr<Guard>& guard : guards) {
    if (guard->Check(CallArgs{}) != GuardResult::kPass) {
      return absl::FailedPreconditionError("the state changed while specializing");
    }
  }
  return guards;
}

}  // namespace

const char* RefusalName(Refusal refusal) {
  switch (refusal) {
#define FATJIT_REFUSAL_NAME(e, name, doc) \
  case Refusal::e:                        \
    return name;
    FATJIT_SPECIALIZER_REFUSALS(FATJIT_REFUSAL_NAME)
#undef FATJIT_REFUSAL_NAME
    default:
      return "?";
  }
}

const char* RefusalMessage(Refusal refusal) {
  switch (refusal) {
#define FATJIT_REFUSAL_DOC(e, name, doc) \
  case Refusal::e:                       \
    return doc;
    FATJIT_SPECIALIZER_REFUSALS(FATJIT_REFUSAL_DOC)
#undef FATJIT_REFUSAL_DOC
    default:
      return "?";
  }
}

SpecializeResult SpecializeFunction(PyFunctionObject* func, Assume assume) {
  if (!PyDict_CheckExact(func->func_globals) || !PyDict_CheckExact(func->func_builtins)) {
    return Refuse(Refusal::kGlobalsNotDict);
  }
  absl::StatusOr<SpecializationBuilder> created = SpecializationBuilder::Create(func);
  if (!created.ok()) return Refuse(Refusal::kUndecodable, std::string(created.status().message()));
  SpecializationBuilder& builder = *created;
  for (const PassEntry& pass : kPasses) {
    absl::StatusOr<bool> ran = pass.run(builder);
    if (!ran.ok()) {
      return Refuse(Refusal::kInternalError,
                    absl::StrCat(pass.name, ": ", ran.status().message()));
    }
  }
  std::vector<Rewrite>& rewrites = builder.mutable_rewrites();
  if (rewrites.empty()) return Refuse(Refusal::kNothingToSpecialize);

  const std::vector<SlotEdit> entry_edits = EntryResumeEdit(builder);
  std::vector<bool> use(rewrites.size(), true);
  absl::StatusOr<bytecode::BytecodeRewriter> rewriter = absl::UnknownError("not built");
  // Drop unstable rewrites (and what builds on them) until the choice is stable; each round
  // drops at least one, so this ends.
  for (;;) {
    rewriter = builder.Replay(use, entry_edits);
    if (!rewriter.ok()) {
      return Refuse(Refusal::kInternalError, std::string(rewriter.status().message()));
    }
    auto stability = Stability(*rewriter, builder.code());
    if (!stability.ok()) {
      return Refuse(Refusal::kRewriteRejected, std::string(stability.status().message()));
    }
    const auto& [decoded, stable] = *stability;
    bool dropped = false;
    for (size_t i = 0; i < rewrites.size(); ++i) {
      if (!use[i]) continue;
      bool ok = std::all_of(rewrites[i].edits.begin(), rewrites[i].edits.end(),
                            [&](const SlotEdit& e) { return SlotStable(decoded, stable, e); });
      rewrites[i].entry_stable = ok;
      for (int base : rewrites[i].builds_on) ok = ok && use[base];
      if (!ok && assume == Assume::kStable) {
        use[i] = false;
        dropped = true;
      }
    }
    if (!dropped) break;
  }
  if (std::none_of(use.begin(), use.end(), [](bool u) { return u; })) {
    SpecializeResult refused = Refuse(Refusal::kNothingEntryStable);
    refused.rewrites = std::move(rewrites);
    refused.assumptions = builder.assumptions();
    refused.proposals_by_pass = builder.proposals_by_pass();
    return refused;
  }

  // Rewrites wholly inside code that no longer runs (cut off by dead_branches) would only add
  // guards: drop them, with what builds on them, and rebuild once.
  if (absl::StatusOr<std::vector<bool>> dead = Unreachable(*rewriter, /*decided=*/true);
      dead.ok()) {
    absl::StatusOr<bytecode::DecodedCode> decoded = rewriter->Rewritten();
    bool dropped = false;
    for (size_t i = 0; decoded.ok() && i < rewrites.size(); ++i) {
      if (!use[i]) continue;
      bool all_dead = std::all_of(
          rewrites[i].edits.begin(), rewrites[i].edits.end(), [&](const SlotEdit& e) {
            for (int offset = e.offset; offset < e.end; ++offset) {
              int index = decoded->IndexAt(offset);
              if (index >= 0 && !(*dead)[index]) return false;
            }
            return true;
          });
      for (int base : rewrites[i].builds_on) all_dead = all_dead || !use[base];
      if (all_dead) {
        use[i] = false;
        dropped = true;
      }
    }
    if (dropped) {
      rewriter = builder.Replay(use, entry_edits);
      if (!rewriter.ok()) {
        return Refuse(Refusal::kInternalError, std::string(rewriter.status().message()));
      }
    }
  }
  if (absl::Status removed = RemoveUnreachable(*rewriter); !removed.ok()) {
    return Refuse(Refusal::kInternalError, std::string(removed.message()));
  }
  if (absl::Status compacted = CompactPadding(*rewriter); !compacted.ok()) {
    return Refuse(Refusal::kInternalError, std::string(compacted.message()));
  }
  absl::StatusOr<Ref<>> code = rewriter->BuildCode();
  if (!code.ok()) return Refuse(Refusal::kRewriteRejected, std::string(code.status().message()));

  std::vector<bool> assumption_used(builder.assumptions().size(), false);
  for (size_t i = 0; i < rewrites.size(); ++i) {
    rewrites[i].active = use[i];
    if (!use[i]) continue;
    for (int a : rewrites[i].assumptions) assumption_used[a] = true;
  }
  absl::StatusOr<std::vector<std::unique_ptr<Guard>>> guards =
      GuardsFor(func, builder.assumptions(), assumption_used);
  if (!guards.ok()) {
    return Refuse(Refusal::kInternalError, std::string(guards.status().message()));
  }

  SpecializeResult result;
  absl::StatusOr<std::vector<AttributeFeedback>> feedback =
      ReadAttributeFeedback(builder.code());
  if (feedback.ok()) result.attribute_feedback = *std::move(feedback);
  result.code = *std::move(code);
  result.guards = *std::move(guards);
  result.assumptions = builder.assumptions();
  result.rewrites = std::move(rewrites);
  result.proposals_by_pass = builder.proposals_by_pass();
  return result;
}

}  // namespace fatjit::specializer
