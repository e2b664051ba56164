// Loads libfatjit_llvm.so once (RTLD_NOW | RTLD_LOCAL: its LLVM symbols stay out of the global
// namespace) and asks it for the backend through its one exported function. The library is
// never unloaded: native code it compiled may run until the process exits.
#include "jit/backend_loader.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace fatjit::jit {
namespace {

constexpr char kBackendFile[] = "libfatjit_llvm.so";
constexpr char kBackendPathVariable[] = "FATJIT_BACKEND_PATH";

std::atomic<bool> loaded{false};

// $FATJIT_BACKEND_PATH, else kBackendFile in the directory of the object holding this code.
std::string BackendPath() {
  if (const char* path = std::getenv(kBackendPathVariable); path != nullptr && path[0] != '\0') {
    return path;
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<const void*>(&LoadBackend), &info) != 0 &&
      info.dli_fname != nullptr) {
    std::string self = info.dli_fname;
    size_t slash = self.rfind('/');
    if (slash != std::string::npos) return absl::StrCat(self.substr(0, slash + 1), kBackendFile);
  }
  return kBackendFile;  // dlopen searches the library path
}

absl::StatusOr<Backend*> Load() {
  std::string path = BackendPath();
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot load the JIT backend ", path, ": ", dlerror()));
  }
  auto create = reinterpret_cast<CreateBackendFn>(dlsym(library, kCreateBackendSymbol));
  if (create == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("the JIT backend ", path, " has no ", kCreateBackendSymbol, ": ", dlerror()));
  }
  const char* error = "unknown error";
  Backend* backend = create(&error);
  if (backend == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("the JIT backend ", path, " did not start: ", error));
  }
  return backend;
}

}  // namespace

absl::StatusOr<Backend*> LoadBackend() {
  static std::once_flag once;
  static absl::StatusOr<Backend*>* result = nullptr;
  std::call_once(once, [] {
    result = new absl::StatusOr<Backend*>(Load());
    loaded.store(result->ok(), std::memory_order_release);
  });
  return *result;
}

bool BackendLoaded() { return loaded.load(std::memory_order_acquire); }

}  // namespace fatjit::jit
