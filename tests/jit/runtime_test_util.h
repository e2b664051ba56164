// A frame for calling runtime helpers directly: the layout _PyEvalFramePushAndInit gives a fresh
// call of a real Python function (specials initialized, every local null, empty value stack),
// in memory of our own rather than on the thread's data stack. Never linked into the thread's
// frame chain and never evaluated: helpers that only read f_func/f_code/f_globals/f_builtins
// and the localsplus array can run on it.
#ifndef FATJIT_TESTS_JIT_RUNTIME_TEST_UTIL_H_
#define FATJIT_TESTS_JIT_RUNTIME_TEST_UTIL_H_

#include <memory>
#include <string>

#include "base/python.h"
#include "base/ref.h"

namespace fatjit::testing {

class TestFrame {
 public:
  // `function` must be a Python function object; the frame holds references like a real one.
  explicit TestFrame(PyObject* function);
  ~TestFrame();  // releases locals and stack slots [0, nlocalsplus + depth) like _PyFrame_Clear

  _PyInterpreterFrame* frame() const { return frame_; }
  PyThreadState* tstate() const { return PyThreadState_Get(); }
  PyObject** locals() const { return frame_->localsplus; }
  // Address of the stack slot at `depth` (the `sp` for a helper when the stack holds `depth`).
  PyObject** Sp(int depth) const { return frame_->localsplus + nlocalsplus_ + depth; }
  // Pushes an owned reference at the current depth (call with a new reference).
  void Push(PyObject* owned);
  int depth() const { return depth_; }
  // Tell the frame how deep the stack is after a helper ran (so the destructor releases it).
  void SetDepth(int depth) { depth_ = depth; }

 private:
  std::unique_ptr<PyObject*[]> memory_;
  _PyInterpreterFrame* frame_ = nullptr;
  int nlocalsplus_ = 0;
  int depth_ = 0;
};

}  // namespace fatjit::testing

#endif  // FATJIT_TESTS_JIT_RUNTIME_TEST_UTIL_H_
