// DictVersion's out-of-line part: the 3.11 backend needs no registration.
#include "dictversion/dict_version.h"

namespace fatjit {

absl::Status DictVersion::Watch(PyObject* dict) {
  if (dict == nullptr || !PyDict_Check(dict)) {
    return absl::InvalidArgumentError("DictVersion::Watch needs a dict");
  }
  return absl::OkStatus();
}

const char* DictVersion::BackendName() { return "ma_version_tag (PEP 509, CPython 3.11)"; }

}  // namespace fatjit
