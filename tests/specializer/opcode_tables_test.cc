// Opcode tables: our copy of CPython's C tables agrees with the interpreter's own Lib/opcode.py
// (jumps, cache sizes, specialized forms), and the classifications name the right opcodes.
#include <gtest/gtest.h>

#include "specializer/bytecode/opcode_tables.h"
#include "tests/support/python_env.h"

namespace fatjit::bytecode {
namespace {

using fatjit::testing::Eval;

// Evaluates a Python expression yielding a list of ints.
std::vector<int> Ints(const char* expr) {
  Ref<> g = fatjit::testing::NewGlobals();
  fatjit::testing::Exec("import dis, opcode", g.obj());
  Ref<> list = Eval(expr, g.obj());
  std::vector<int> out;
  for (Py_ssize_t i = 0; list && i < PyList_GET_SIZE(list.obj()); ++i) {
    out.push_back(static_cast<int>(PyLong_AsLong(PyList_GET_ITEM(list.obj(), i))));
  }
  return out;
}

TEST(OpcodeTablesTest, JumpsAreExactlyOpcodePyHasjrelAndAllRelative) {
  std::vector<int> jumps;
  for (int op = 0; op < 256; ++op) {
    if (IsBaseOpcode(op) && IsJump(op)) jumps.push_back(op);
  }
  EXPECT_EQ(jumps, Ints("sorted(opcode.hasjrel)"));
  EXPECT_TRUE(Ints("opcode.hasjabs").empty());
  EXPECT_EQ(fatjit_opcode_all_jumps_relative(), 1);
  std::vector<int> backward;
  for (int op : jumps) {
    if (IsBackwardJump(op)) backward.push_back(op);
  }
  EXPECT_EQ(backward, Ints("sorted(opcode.opmap[n] for n in opcode.opname if 'BACKWARD' in n)"));
}

TEST(OpcodeTablesTest, CacheSizesAndSpecializedFormsMatchOpcodePy) {
  std::vector<int> caches = Ints("opcode._inline_cache_entries");
  ASSERT_EQ(caches.size(), 256u);
  for (int op = 0; op < 256; ++op) {
    if (IsBaseOpcode(op)) {
      EXPECT_EQ(CacheEntries(op), caches[op]) << OpcodeName(op);
    }
  }
  // dis._all_opmap numbers the specialized forms the way the C header does.
  std::vector<int> pairs = Ints(
      "[x for base, forms in opcode._specializations.items()"
      " for form in forms for x in (dis._all_opmap[form], opcode.opmap[base])]");
  ASSERT_GT(pairs.size(), 100u);
  for (size_t i = 0; i < pairs.size(); i += 2) {
    EXPECT_EQ(DeoptOpcode(pairs[i]), pairs[i + 1]) << OpcodeName(pairs[i]);
    EXPECT_FALSE(IsBaseOpcode(pairs[i]));
  }
  EXPECT_EQ(DeoptOpcode(EXTENDED_ARG_QUICK), EXTENDED_ARG);
  EXPECT_STREQ(OpcodeName(LOAD_FAST__LOAD_FAST), "LOAD_FAST__LOAD_FAST");
  EXPECT_FALSE(IsBaseOpcode(CACHE));
}

TEST(OpcodeTablesTest, FlowEndingOpcodes) {
  EXPECT_TRUE(EndsFlow(JUMP_BACKWARD_NO_INTERRUPT));
  EXPECT_TRUE(EndsFlow(RERAISE));
  EXPECT_FALSE(EndsFlow(POP_JUMP_FORWARD_IF_NONE));
  EXPECT_FALSE(EndsFlow(YIELD_VALUE));
  EXPECT_FALSE(EndsFlow(FOR_ITER));
}

}  // namespace
}  // namespace fatjit::bytecode
