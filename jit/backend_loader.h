// Loading the JIT backend: libfatjit_llvm.so is dlopened on the first compile, not at import, so
// that `import fatjit` and automatic mode never pay for libLLVM (20-28 ms, +47 MB).
//
// The backend is looked for at $FATJIT_BACKEND_PATH if set, else next to the shared object that
// contains this loader (the extension _fatjit, in the package directory). No LLVM header is
// included here or by users of this file.
#ifndef FATJIT_JIT_BACKEND_LOADER_H_
#define FATJIT_JIT_BACKEND_LOADER_H_

#include "absl/status/statusor.h"
#include "jit/emitter.h"

namespace fatjit::jit {

// The process's backend, loaded and created on the first call; later calls return the same
// backend or the same error (naming the path and the reason). Thread-safe.
absl::StatusOr<Backend*> LoadBackend();

// Whether LoadBackend has succeeded (for stats; never loads anything).
bool BackendLoaded();

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_BACKEND_LOADER_H_
