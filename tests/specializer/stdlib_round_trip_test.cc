// The bytecode model over every code object of the standard library: decode/encode reproduces
// co_code byte for byte, the exception table re-encodes byte for byte, the line table gives
// exactly code.co_positions(), the CFG builds, and the computed maximum stack depth is compared
// with co_stacksize.
//
// Code objects come from loading every .py file under the stdlib directory with its own source
// loader (SourceFileLoader.get_code: the cached .pyc, or a compile): nothing is executed, so
// there are no import side effects, and module and class bodies (which an import discards) are
// included. Nested code objects are collected from co_consts recursively.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/encode.h"
#include "specializer/bytecode/exception_table.h"
#include "specializer/bytecode/line_table.h"
#include "specializer/bytecode/stack_depth.h"
#include "tests/support/python_env.h"

namespace fatjit::bytecode {
namespace {

using testing::Eval;
using testing::Exec;
using testing::NewGlobals;

constexpr char kCollectStdlibCode[] = R"py(
import os, sys, sysconfig, types, warnings, importlib.machinery

def collect():
    sys.dont_write_bytecode = True   # never write .pyc files into the interpreter's tree
    root = sysconfig.get_paths()['stdlib']
    codes, files, failed = [], 0, []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # SyntaxWarnings of test data compiled from source
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in ('site-packages', '__pycache__'))
            for name in sorted(filenames):
                if not name.endswith('.py'):
                    continue
                path = os.path.join(dirpath, name)
                try:
                    code = importlib.machinery.SourceFileLoader('m', path).get_code('m')
                except Exception:
                    failed.append(path)   # test data with deliberate syntax errors
                    continue
                files += 1
                stack = [code]
                while stack:
                    c = stack.pop()
                    codes.append(c)
                    stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return root, files, failed, codes
)py";

std::string Describe(PyObject* code) {
  Ref<> text = Ref<>::Steal(PyObject_Repr(code));
  return text ? PyUnicode_AsUTF8(text.obj()) : "<code>";
}

std::string BytesOf(PyObject* code, const char* name) {
  absl::StatusOr<Ref<>> bytes = CodeBytesAttribute(code, name);
  return bytes.ok() ? std::string(BytesView(*bytes)) : std::string();
}

// Compares the line table with co_positions() unit by unit; returns the first mismatching unit
// or -1.
int FirstPositionMismatch(PyObject* code, const LineTable& lines) {
  Ref<> positions = Ref<>::Steal(PyObject_CallMethod(code, "co_positions", nullptr));
  Ref<> iter = positions ? Ref<>::Steal(PyObject_GetIter(positions.obj())) : nullptr;
  if (!iter) {
    PyErr_Clear();
    return 0;
  }
  int unit = 0;
  auto value = [](PyObject* item, int i) {
    PyObject* v = PyTuple_GET_ITEM(item, i);
    return v == Py_None ? -1 : static_cast<int>(PyLong_AsLong(v));
  };
  while (Ref<> item = Ref<>::Steal(PyIter_Next(iter.obj()))) {
    SourceLocation expected{value(item.obj(), 0), value(item.obj(), 1), value(item.obj(), 2),
                            value(item.obj(), 3)};
    if (lines.LocationAt(unit) != expected) return unit;
    ++unit;
  }
  return unit == lines.code_units() ? -1 : unit;
}

struct Tally {
  int checked = 0;
  int code_exact = 0;
  int exception_table_exact = 0;
  int positions_exact = 0;
  int cfg_built = 0;
  int depth_computed = 0;
  int depth_equal = 0;
  int depth_below = 0;  // computed max < co_stacksize
  int depth_below_all_reachable = 0;  // ... with no unreachable instruction to explain it
  int with_unreachable = 0;
  int depth_above = 0;  // computed max > co_stacksize
  int with_extended_arg = 0;
  int with_exception_table = 0;
  std::vector<std::string> failures;
  std::vector<std::string> notes;  // examples of the explained differences

  void Fail(const std::string& what) {
    if (failures.size() < 20) failures.push_back(what);
  }
};

void CheckOne(PyObject* code, Tally& tally) {
  ++tally.checked;
  absl::StatusOr<DecodedCode> decoded = Decode(code, CodeForm::kDeoptimized);
  if (!decoded.ok()) {
    tally.Fail(Describe(code) + ": decode: " + std::string(decoded.status().message()));
    return;
  }
  for (const Instruction& inst : decoded->instructions()) {
    if (inst.extended_args != 0) {
      ++tally.with_extended_arg;
      break;
    }
  }
  absl::StatusOr<std::vector<_Py_CODEUNIT>> units = Encode(decoded->instructions());
  if (units.ok() && CodeUnitsToBytes(*units) == BytesOf(code, "co_code")) {
    ++tally.code_exact;
  } else {
    tally.Fail(Describe(code) + ": co_code differs after re-encoding");
  }

  std::string table = BytesOf(code, "co_exceptiontable");
  if (!table.empty()) ++tally.with_exception_table;
  absl::StatusOr<std::string> reencoded = EncodeExceptionTable(decoded->exception_table());
  if (reencoded.ok() && *reencoded == table) {
    ++tally.exception_table_exact;
  } else {
    tally.Fail(Describe(code) + ": exception table differs after re-encoding");
  }

  absl::StatusOr<LineTable> lines = LineTable::ForCode(code);
  int mismatch = lines.ok() ? FirstPositionMismatch(code, *lines) : 0;
  if (mismatch < 0) {
    ++tally.positions_exact;
  } else {
    tally.Fail(Describe(code) + ": positions differ at unit " + std::to_string(mismatch));
  }

  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(*decoded);
  if (!cfg.ok()) {
    tally.Fail(Describe(code) + ": cfg: " + std::string(cfg.status().message()));
    return;
  }
  ++tally.cfg_built;
  absl::StatusOr<StackDepths> depths = ComputeStackDepths(*decoded, *cfg);
  if (!depths.ok()) {
    tally.Fail(Describe(code) + ": stack depth: " + std::string(depths.status().message()));
    return;
  }
  ++tally.depth_computed;
  bool unreachable = false;
  for (int depth : depths->depth_before) unreachable |= depth == kUnreachable;
  if (unreachable) ++tally.with_unreachable;
  int stacksize = CodeIntAttribute(code, "co_stacksize").value_or(-1);
  if (depths->max_depth == stacksize) {
    ++tally.depth_equal;
  } else if (depths->max_depth < stacksize) {
    ++tally.depth_below;
    std::string what = Describe(code) + ": max depth " + std::to_string(depths->max_depth) +
                       " < co_stacksize " + std::to_string(stacksize);
    if (unreachable) {
      if (tally.notes.size() < 3) tally.notes.push_back(what + " (has unreachable code)");
    } else {
      ++tally.depth_below_all_reachable;
      tally.Fail(what);
    }
  } else {
    ++tally.depth_above;
    tally.Fail(Describe(code) + ": max depth " + std::to_string(depths->max_depth) +
               " > co_stacksize " + std::to_string(stacksize));
  }
}

TEST(StdlibRoundTripTest, EveryCodeObjectRoundTripsAndHasItsStackSize) {
  auto start = std::chrono::steady_clock::now();
  Ref<> g = NewGlobals();
  Exec(kCollectStdlibCode, g.obj());
  Ref<> result = Eval("collect()", g.obj());
  ASSERT_TRUE(result);
  const char* root = PyUnicode_AsUTF8(PyTuple_GET_ITEM(result.obj(), 0));
  long files = PyLong_AsLong(PyTuple_GET_ITEM(result.obj(), 1));
  PyObject* failed = PyTuple_GET_ITEM(result.obj(), 2);
  PyObject* codes = PyTuple_GET_ITEM(result.obj(), 3);
  auto loaded = std::chrono::steady_clock::now();

  Tally tally;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(codes); ++i) {
    CheckOne(PyList_GET_ITEM(codes, i), tally);
  }
  auto done = std::chrono::steady_clock::now();

  auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf(
      "stdlib %s: %ld files loaded (%zd not compilable), %d code objects checked\n"
      "  co_code byte-exact after decode/encode:    %d\n"
      "  exception table byte-exact (%d non-empty): %d\n"
      "  positions equal to co_positions():         %d\n"
      "  CFG built: %d; stack depths computed: %d\n"
      "  max depth == co_stacksize: %d, < : %d (%d without unreachable code), > : %d\n"
      "  with unreachable instructions: %d; with EXTENDED_ARG: %d\n"
      "  load %.2f s, check %.2f s\n",
      root, files, PyList_GET_SIZE(failed), tally.checked, tally.code_exact,
      tally.with_exception_table, tally.exception_table_exact, tally.positions_exact,
      tally.cfg_built, tally.depth_computed, tally.depth_equal, tally.depth_below,
      tally.depth_below_all_reachable, tally.depth_above, tally.with_unreachable,
      tally.with_extended_arg, seconds(start, loaded), seconds(loaded, done));
  for (const std::string& n : tally.notes) std::printf("  e.g. %s\n", n.c_str());
  for (const std::string& f : tally.failures) std::printf("  FAIL %s\n", f.c_str());

  EXPECT_GT(tally.checked, 10000);
  EXPECT_EQ(tally.code_exact, tally.checked);
  EXPECT_EQ(tally.exception_table_exact, tally.checked);
  EXPECT_EQ(tally.positions_exact, tally.checked);
  EXPECT_EQ(tally.cfg_built, tally.checked);
  EXPECT_EQ(tally.depth_computed, tally.checked);
  // The compiler counts the depth of handlers whose protected range turned out empty (a
  // `try: pass`): they stay in co_code with no table entry and so are unreachable here. Those
  // are the only code objects allowed a smaller maximum than co_stacksize.
  EXPECT_EQ(tally.depth_above, 0);
  EXPECT_EQ(tally.depth_below_all_reachable, 0);
  EXPECT_EQ(tally.depth_equal + tally.depth_below, tally.checked);
}

}  // namespace
}  // namespace fatjit::bytecode
