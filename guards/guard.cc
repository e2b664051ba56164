// Names of the guard kinds, from the FATJIT_GUARD_KINDS list.
#include "guards/guard.h"

namespace fatjit {

const char* GuardKindName(GuardKind kind) {
  switch (kind) {
#define FATJIT_GUARD_KIND_NAME(e, name, doc) \
  case GuardKind::e:                         \
    return name;
    FATJIT_GUARD_KINDS(FATJIT_GUARD_KIND_NAME)
#undef FATJIT_GUARD_KIND_NAME
  }
  return "?";
}

}  // namespace fatjit
