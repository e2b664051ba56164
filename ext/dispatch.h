// The PEP 523 frame-evaluation hook that runs specializations.
//
// Assumes: installed only while a specialization exists or automatic mode is on
// (InstallOrRemoveHook keeps that true). With automatic mode on, a fresh call of a code object
// without specializations is counted (auto_mode.h), and the call that makes it hot adds a
// pending automatic specialization, materialized below at that same call.
// For each fresh frame of a code object that has a CodeState: if tracing is off, check the
// guards of the frame's function's specializations, newest first, and run the first that passes;
// otherwise run the original code. Never runs a specialization whose guards did not all pass
// at this call (invariant 2, checked at entry; the PEP 510 contract is "checked at entry").
#ifndef FATJIT_EXT_DISPATCH_H_
#define FATJIT_EXT_DISPATCH_H_

#include "base/python.h"

namespace fatjit {

// Installs the hook if anything needs it (automatic mode, a live specialization), removes it
// otherwise.
void InstallOrRemoveHook();
bool HookInstalled();

}  // namespace fatjit

#endif  // FATJIT_EXT_DISPATCH_H_
