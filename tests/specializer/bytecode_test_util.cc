// Helpers for the bytecode model's tests (see bytecode_test_util.h).
#include "tests/specializer/bytecode_test_util.h"

#include <gtest/gtest.h>

namespace fatjit::bytecode::testing {

Ref<> FunctionCode(const std::string& source, const char* name) {
  Ref<> globals = fatjit::testing::NewGlobals();
  fatjit::testing::Exec(source, globals.obj());
  PyObject* func = PyDict_GetItemString(globals.obj(), name);
  if (func == nullptr || !PyFunction_Check(func)) {
    ADD_FAILURE() << "no function " << name;
    return nullptr;
  }
  return Ref<>::Create(PyFunction_GET_CODE(func));
}

DecodedCode MustDecode(PyObject* code, CodeForm form) {
  absl::StatusOr<DecodedCode> decoded = Decode(code, form);
  EXPECT_TRUE(decoded.ok()) << decoded.status();
  return decoded.ok() ? *std::move(decoded) : DecodedCode();
}

std::string Listing(const DecodedCode& code) {
  std::string out;
  for (const Instruction& inst : code.instructions()) out += FormatInstruction(inst) + "\n";
  return out;
}

std::vector<int> Offsets(const DecodedCode& code) {
  std::vector<int> offsets;
  for (const Instruction& inst : code.instructions()) offsets.push_back(inst.offset);
  return offsets;
}

std::vector<_Py_CODEUNIT> Units(std::initializer_list<std::pair<int, int>> pairs) {
  std::vector<_Py_CODEUNIT> units;
  for (auto [opcode, oparg] : pairs) {
    units.push_back(static_cast<_Py_CODEUNIT>(_Py_MAKECODEUNIT(opcode, oparg)));
  }
  return units;
}

}  // namespace fatjit::bytecode::testing
