// Pass text tests: each case of tests/specializer/passes/<pass>_test.txt is a small Python
// module in, the listing of the specialized code out, checked with CHECK and CHECK-NOT lines,
// plus differential calls that run the specialized code against CPython's own.
//
// Case format (one file holds many cases; lines starting with '#' outside the source are
// comments; `# TODO:` marks a pinned "not yet" case, whose CHECKs describe today's output):
//
//   === <case name> [assume=stable|entry] [func=<name>]
//   <Python source of a module defining the function (default f)>
//   ---
//   CHECK: <text>        some line at or after the previous CHECK's line contains <text>
//                        (a trailing '$' anchors <text> at the end of that line)
//   CHECK-NOT: <text>    no instruction line contains <text> (anchors as above); a <text>
//                        starting with "rewrite " is looked for in the rewrite lines instead
//   CALL: <args>         calls f<args> (e.g. `(1, g)`, evaluated in the module) in a fresh
//                        module, specialized and not:
//                        same repr of the result, or same exception type and message
//   CALL: <args> => <r>  the specialized call returns repr <r> (for assume=entry, where FAT
//                        Python's semantics may differ from CPython's on purpose)
//
// Without assume=, a case runs twice, under Assume::kStable and Assume::kEntry, with the same
// expectations. The listing is "refused <reason>" if the specializer refused; then, per
// instruction of the code that runs (the specialized code, else the function's own; NOPs left
// out), "<byte offset> <OPNAME> <argument>" with constants shown by repr (builtin immutable
// values) or DescribeValue(), jumps as "-> <byte offset>", names and operators by name; then one
// line per rewrite, "rewrite <pass> <before> => <after> [active|inactive]".
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/constant_values.h"
#include "specializer/passes/lookup.h"
#include "specializer/specialize_function.h"
#include "tests/support/python_env.h"

namespace fatjit::specializer {
namespace {

struct Call {
  std::string args;
  std::string expected;  // empty: compare with CPython
};

struct Case {
  std::string file;  // the pass, from the file name
  std::string name;
  int line = 0;  // of the === header, for failure messages
  std::string function = "f";
  std::vector<Assume> modes = {Assume::kStable, Assume::kEntry};
  std::string source;
  std::vector<std::string> checks;
  std::vector<std::string> check_nots;
  std::vector<Call> calls;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.file << "_test.txt:" << c.line; }

std::vector<Case> ParseFile(const std::string& pass) {
  std::ifstream in(std::string(FATJIT_PASS_TESTS_DIR) + "/" + pass + "_test.txt");
  std::vector<Case> cases;
  if (!in) {
    Case broken;
    broken.file = pass;
    broken.name = "missing_file";
    cases.push_back(broken);
    return cases;
  }
  std::string line;
  bool in_source = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (absl::StartsWith(line, "=== ")) {
      Case c;
      c.file = pass;
      c.line = number;
      std::vector<std::string> words = absl::StrSplit(line.substr(4), ' ', absl::SkipEmpty());
      c.name = words.empty() ? "unnamed" : words[0];
      for (size_t i = 1; i < words.size(); ++i) {
        if (words[i] == "assume=stable") c.modes = {Assume::kStable};
        if (words[i] == "assume=entry") c.modes = {Assume::kEntry};
        if (absl::StartsWith(words[i], "func=")) c.function = words[i].substr(5);
      }
      cases.push_back(c);
      in_source = true;
      continue;
    }
    if (cases.empty()) continue;  // the file's header comment
    Case& c = cases.back();
    if (in_source) {
      if (line == "---") {
        in_source = false;
      } else {
        c.source += line + "\n";
      }
      continue;
    }
    absl::string_view text = line;
    if (absl::ConsumePrefix(&text, "CHECK-NOT:")) {
      c.check_nots.emplace_back(absl::StripAsciiWhitespace(text));
    } else if (absl::ConsumePrefix(&text, "CHECK:")) {
      c.checks.emplace_back(absl::StripAsciiWhitespace(text));
    } else if (absl::ConsumePrefix(&text, "CALL:")) {
      std::vector<std::string> parts = absl::StrSplit(text, absl::MaxSplits(" => ", 1));
      Call call{std::string(absl::StripAsciiWhitespace(parts[0])), ""};
      if (parts.size() > 1) call.expected = std::string(absl::StripAsciiWhitespace(parts[1]));
      c.calls.push_back(call);
    }
  }
  return cases;
}

std::vector<Case> AllCases() {
  std::vector<Case> all;
  for (const char* pass : {"globals_to_constants", "module_attributes", "class_attributes",
                           "fold_constants", "pure_builtin_calls", "dead_branches"}) {
    std::vector<Case> cases = ParseFile(pass);
    all.insert(all.end(), cases.begin(), cases.end());
  }
  return all;
}

std::string Repr(PyObject* value) {
  if (!IsImmutableConstant(value)) return DescribeValue(value);
  Ref<> repr = Ref<>::Steal(PyObject_Repr(value));
  if (!repr) {
    PyErr_Clear();
    return "?";
  }
  return PyUnicode_AsUTF8(repr.obj());
}

// co_consts[index] by Repr(), or a name of co_names/co_varnames as it is.
std::string Item(PyObject* code, const char* attribute, int index) {
  Ref<> tuple = Ref<>::Steal(PyObject_GetAttrString(code, attribute));
  if (!tuple || !PyTuple_Check(tuple.obj()) || index < 0 || index >= PyTuple_GET_SIZE(tuple.obj())) {
    PyErr_Clear();
    return absl::StrCat(index);
  }
  PyObject* item = PyTuple_GET_ITEM(tuple.obj(), index);
  bool name = std::string_view(attribute) != "co_consts" && PyUnicode_Check(item);
  return name ? PyUnicode_AsUTF8(item) : Repr(item);
}

const char* kBinaryOps[] = {"+",  "&",  "//",  "<<",  "@",  "*",  "%",  "|",  "**",
                            ">>", "-",  "/",   "^",   "+=", "&=", "//=", "<<=", "@=",
                            "*=", "%=", "|=",  "**=", ">>=", "-=", "/=", "^="};
const char* kCompareOps[] = {"<", "<=", "==", "!=", ">", ">="};

std::string Argument(PyObject* code, const bytecode::Instruction& inst) {
  if (inst.is_jump()) return absl::StrCat("-> ", inst.jump_target * 2);
  switch (inst.base_opcode) {
    case LOAD_CONST:
      return Item(code, "co_consts", inst.oparg);
    case LOAD_GLOBAL:
      return absl::StrCat(inst.oparg & 1 ? "NULL + " : "", Item(code, "co_names", inst.oparg >> 1));
    case LOAD_ATTR:
    case LOAD_METHOD:
    case STORE_GLOBAL:
    case STORE_ATTR:
      return Item(code, "co_names", inst.oparg);
    case LOAD_FAST:
    case STORE_FAST:
      return Item(code, "co_varnames", inst.oparg);
    case BINARY_OP:
      return inst.oparg >= 0 && inst.oparg < 26 ? kBinaryOps[inst.oparg] : "?";
    case COMPARE_OP:
      return inst.oparg >= 0 && inst.oparg < 6 ? kCompareOps[inst.oparg] : "?";
    default:
      return inst.base_opcode >= HAVE_ARGUMENT ? absl::StrCat(inst.oparg) : "";
  }
}

// The listing of the code that runs: the specialized code, or `func`'s own if refused.
std::string Listing(PyObject* func, const SpecializeResult& result) {
  std::string out;
  if (result.refused) absl::StrAppend(&out, "refused ", RefusalName(result.refusal), "\n");
  PyObject* code = result.code ? result.code.obj() : PyFunction_GET_CODE(func);
  absl::StatusOr<bytecode::DecodedCode> decoded = bytecode::Decode(code);
  if (!decoded.ok()) return absl::StrCat("undecodable: ", decoded.status().message());
  for (const bytecode::Instruction& inst : decoded->instructions()) {
    if (inst.base_opcode == NOP) continue;
    std::string arg = Argument(code, inst);
    absl::StrAppend(&out, inst.opcode_offset() * 2, " ", bytecode::OpcodeName(inst.opcode),
                    arg.empty() ? "" : " ", arg, "\n");
  }
  for (const Rewrite& r : result.rewrites) {
    absl::StrAppend(&out, "rewrite ", r.pass, " ", r.before, " => ", r.after,
                    r.active ? " [active]" : " [inactive]", "\n");
  }
  return out;
}

bool LineMatches(absl::string_view line, absl::string_view pattern) {
  if (absl::ConsumeSuffix(&pattern, "$")) return absl::EndsWith(line, pattern);
  return absl::StrContains(line, pattern);
}

// A fresh module running `source`; its function `name` (borrowed from the returned globals).
PyObject* Define(const Case& c, Ref<>& globals) {
  globals = fatjit::testing::NewGlobals();
  fatjit::testing::Exec(c.source, globals.obj());
  PyObject* func = PyDict_GetItemString(globals.obj(), c.function.c_str());
  if (func == nullptr || !PyFunction_Check(func)) return nullptr;
  return func;
}

// Calls `func<args>`, the arguments evaluated in the function's module `globals`: the repr of
// the result, or "raises <type>: <message> (line <n>)" with the line of the innermost traceback
// entry (the function's own, for an error raised in it).
std::string Outcome(PyObject* globals, PyObject* func, const std::string& args) {
  Ref<> packed = fatjit::testing::Eval("(lambda *a, **k: (a, k))" + args, globals);
  if (!packed) return "bad CALL arguments";
  Ref<> result = Ref<>::Steal(PyObject_Call(func, PyTuple_GET_ITEM(packed.obj(), 0),
                                            PyTuple_GET_ITEM(packed.obj(), 1)));
  if (result) {
    Ref<> repr = Ref<>::Steal(PyObject_Repr(result.obj()));
    return repr ? PyUnicode_AsUTF8(repr.obj()) : "?";
  }
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Ref<> owned_type = Ref<>::Steal(type), owned_value = Ref<>::Steal(value),
        owned_traceback = Ref<>::Steal(traceback);
  Ref<> text = Ref<>::Steal(PyObject_Str(value));
  int line = -1;
  for (auto* tb = reinterpret_cast<PyTracebackObject*>(traceback); tb != nullptr;
       tb = tb->tb_next) {
    line = tb->tb_lineno;
  }
  std::string outcome =
      absl::StrCat("raises ", reinterpret_cast<PyTypeObject*>(type)->tp_name, ": ",
                   text ? PyUnicode_AsUTF8(text.obj()) : "?", " (line ", line, ")");
  PyErr_Clear();
  return outcome;
}

class PassTextTest : public ::testing::TestWithParam<Case> {};

TEST_P(PassTextTest, ListingAndCalls) {
  const Case& c = GetParam();
  ASSERT_NE(c.name, "missing_file") << "no test file for " << c.file;
  SCOPED_TRACE(absl::StrFormat("%s_test.txt:%d (%s)", c.file, c.line, c.name));
  for (Assume assume : c.modes) {
    SCOPED_TRACE(assume == Assume::kStable ? "assume=stable" : "assume=entry");
    Ref<> globals;
    PyObject* func = Define(c, globals);
    ASSERT_NE(func, nullptr) << "the source defines no function " << c.function;
    SpecializeResult result =
        SpecializeFunction(reinterpret_cast<PyFunctionObject*>(func), assume);
    ASSERT_FALSE(PyErr_Occurred());
    const std::string listing = Listing(func, result);
    SCOPED_TRACE("listing:\n" + listing);
    std::vector<std::string> lines = absl::StrSplit(listing, '\n');
    size_t next = 0;
    for (const std::string& check : c.checks) {
      size_t at = next;
      while (at < lines.size() && !LineMatches(lines[at], check)) ++at;
      EXPECT_LT(at, lines.size()) << "CHECK: " << check << " (not found after line " << next << ")";
      if (at < lines.size()) next = at + 1;
    }
    for (const std::string& check_not : c.check_nots) {
      const bool about_rewrites = absl::StartsWith(check_not, "rewrite ");
      for (const std::string& line : lines) {
        if (absl::StartsWith(line, "rewrite ") != about_rewrites) continue;
        EXPECT_FALSE(LineMatches(line, check_not)) << "CHECK-NOT: " << check_not << " in: " << line;
      }
    }

    for (const Call& call : c.calls) {
      // The specialized code runs in the module it was made for, before anything else ran there.
      Ref<> specialized_globals;
      PyObject* specialized = Define(c, specialized_globals);
      ASSERT_NE(specialized, nullptr);
      SpecializeResult fresh =
          SpecializeFunction(reinterpret_cast<PyFunctionObject*>(specialized), assume);
      if (fresh.code) {
        for (const std::unique_ptr<Guard>& guard : fresh.guards) {
          ASSERT_EQ(guard->Check(CallArgs{}), GuardResult::kPass);
        }
        ASSERT_EQ(PyObject_SetAttrString(specialized, "__code__", fresh.code.obj()), 0);
      }
      std::string got = Outcome(specialized_globals.obj(), specialized, call.args);
      if (!call.expected.empty()) {
        EXPECT_EQ(got, call.expected) << "CALL: " << call.args;
        continue;
      }
      Ref<> original_globals;
      PyObject* original = Define(c, original_globals);
      ASSERT_NE(original, nullptr);
      EXPECT_EQ(got, Outcome(original_globals.obj(), original, call.args))
          << "CALL: " << call.args;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Passes, PassTextTest, ::testing::ValuesIn(AllCases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.file + "_" + info.param.name;
                         });

}  // namespace
}  // namespace fatjit::specializer
