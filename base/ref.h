// Ref<T>: the one owning reference type for PyObject pointers in fatjit.
//
// A Ref owns exactly one reference. It cannot be built from a raw pointer implicitly: write
// Ref<>::Steal(p) to take over a reference you own (a "new reference" from the C API) or
// Ref<>::Create(p) to add one to a borrowed pointer. Functions that borrow take T* (or
// BorrowedRef<T>, a plain pointer that documents the intent); functions that steal take Ref<T>.
// Release() hands the reference back to C code that steals it.
#ifndef FATJIT_BASE_REF_H_
#define FATJIT_BASE_REF_H_

#include <utility>

#include "base/python.h"

namespace fatjit {

template <typename T = PyObject>
class Ref {
 public:
  Ref() = default;
  Ref(std::nullptr_t) {}
  ~Ref() { Py_XDECREF(reinterpret_cast<PyObject*>(ptr_)); }

  Ref(const Ref& other) : ptr_(other.ptr_) { Py_XINCREF(reinterpret_cast<PyObject*>(ptr_)); }
  Ref(Ref&& other) noexcept : ptr_(std::exchange(other.ptr_, nullptr)) {}
  Ref& operator=(Ref other) noexcept {
    std::swap(ptr_, other.ptr_);
    return *this;
  }

  // Takes over a reference the caller owns. p may be null (a failed C API call).
  static Ref Steal(T* p) { return Ref(p); }
  // Adds a reference to a borrowed pointer. p may be null.
  static Ref Create(T* p) {
    Py_XINCREF(reinterpret_cast<PyObject*>(p));
    return Ref(p);
  }

  T* get() const { return ptr_; }
  T* operator->() const { return ptr_; }
  explicit operator bool() const { return ptr_ != nullptr; }
  PyObject* obj() const { return reinterpret_cast<PyObject*>(ptr_); }

  // Gives up ownership without a decref: for C API calls that steal.
  [[nodiscard]] T* Release() { return std::exchange(ptr_, nullptr); }
  void Reset() { Ref().swap(*this); }
  void swap(Ref& other) noexcept { std::swap(ptr_, other.ptr_); }

  friend bool operator==(const Ref& a, const Ref& b) { return a.ptr_ == b.ptr_; }

 private:
  explicit Ref(T* p) : ptr_(p) {}
  T* ptr_ = nullptr;
};

// A borrowed pointer. Only documents intent; never owns.
template <typename T = PyObject>
using BorrowedRef = T*;

}  // namespace fatjit

#endif  // FATJIT_BASE_REF_H_
