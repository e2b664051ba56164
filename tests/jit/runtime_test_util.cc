#include "tests/jit/runtime_test_util.h"

#include "base/cpython_compat.h"

namespace fatjit::testing {

TestFrame::TestFrame(PyObject* function) {
  auto* func = reinterpret_cast<PyFunctionObject*>(function);
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  nlocalsplus_ = code->co_nlocalsplus;
  const size_t words = compat::FrameSizeOf(code);
  memory_ = std::make_unique<PyObject*[]>(words);
  for (size_t i = 0; i < words; ++i) memory_[i] = nullptr;
  frame_ = reinterpret_cast<_PyInterpreterFrame*>(memory_.get());
  Py_INCREF(function);
  frame_->f_func = func;
  frame_->f_code = reinterpret_cast<PyCodeObject*>(Py_NewRef(func->func_code));
  frame_->f_builtins = func->func_builtins;
  frame_->f_globals = func->func_globals;
  frame_->f_locals = nullptr;
  frame_->stacktop = nlocalsplus_;
  frame_->frame_obj = nullptr;
  frame_->prev_instr = _PyCode_CODE(frame_->f_code) - 1;
  frame_->is_entry = false;
  frame_->owner = FRAME_OWNED_BY_THREAD;
}

TestFrame::~TestFrame() {
  for (int i = 0; i < nlocalsplus_ + depth_; ++i) Py_CLEAR(frame_->localsplus[i]);
  Py_DECREF(frame_->f_code);
  Py_DECREF(reinterpret_cast<PyObject*>(frame_->f_func));
}

void TestFrame::Push(PyObject* owned) { *Sp(depth_++) = owned; }

}  // namespace fatjit::testing
