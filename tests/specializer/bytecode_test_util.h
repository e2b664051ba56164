// Helpers for the bytecode model's tests: compile a snippet, get a function's code object, and
// print decoded code as text.
#ifndef FATJIT_TESTS_SPECIALIZER_BYTECODE_TEST_UTIL_H_
#define FATJIT_TESTS_SPECIALIZER_BYTECODE_TEST_UTIL_H_

#include <string>
#include <vector>

#include "base/ref.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/opcode_tables.h"
#include "tests/support/python_env.h"

namespace fatjit::bytecode::testing {

// Executes `source` in fresh globals and returns <name>.__code__ (null and a test failure if
// that fails). Line 1 of `source` is line 1 of the code.
Ref<> FunctionCode(const std::string& source, const char* name = "f");

// The code of `code` (a code object) decoded from co_code; fails the test if it does not decode.
DecodedCode MustDecode(PyObject* code, CodeForm form = CodeForm::kDeoptimized);

// One FormatInstruction() line per instruction.
std::string Listing(const DecodedCode& code);

// The offsets of the instructions, in order.
std::vector<int> Offsets(const DecodedCode& code);

// Code units from (opcode, oparg) pairs, for hand-made bytecode.
std::vector<_Py_CODEUNIT> Units(std::initializer_list<std::pair<int, int>> pairs);

}  // namespace fatjit::bytecode::testing

#endif  // FATJIT_TESTS_SPECIALIZER_BYTECODE_TEST_UTIL_H_
