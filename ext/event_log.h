// FATJIT_LOG: one line on stderr per event of the kinds it names.
//
// FATJIT_LOG is a comma-separated list of event names, or "all"; it is read once, when
// fatjit._fatjit is imported. An unknown name is reported on stderr and ignored. A disabled
// event costs one load and test where it happens.
// Lines go to C's stderr (unbuffered), never through sys.stderr: writing through Python would
// run Python code inside the dispatcher, between a guard check and the code it admits.
// To add an event: add a line to FATJIT_LOG_EVENTS, then `if (LogEnabled(e)) LogEvent(e, ...)`
// where it happens. The name is what users write in FATJIT_LOG and what starts the line.
#ifndef FATJIT_EXT_EVENT_LOG_H_
#define FATJIT_EXT_EVENT_LOG_H_

#include <cstdint>
#include <string_view>

#include "base/python.h"

namespace fatjit {

// X(enum, name in FATJIT_LOG and in the line, what one line reports)
#define FATJIT_LOG_EVENTS(X)                                                                \
  X(kSpecialize, "specialize", "a function got an automatic specialization")               \
  X(kRefuse, "refuse", "the automatic specializer refused a function, with the reason")     \
  X(kGuard, "guard", "a guard failed at a call; the next specialization or the original runs") \
  X(kCompile, "compile", "a function was compiled to native code, or the JIT refused it")    \
  X(kDeopt, "deopt", "native code handed its frame to the interpreter mid-function")

enum class LogEvent : uint8_t {
#define FATJIT_LOG_ENUM(e, name, doc) e,
  FATJIT_LOG_EVENTS(FATJIT_LOG_ENUM)
#undef FATJIT_LOG_ENUM
      kCount
};

namespace internal {
inline uint32_t g_log_mask = 0;  // bit (1 << LogEvent) set: log it
}  // namespace internal

inline bool LogEnabled(LogEvent event) {
  return (internal::g_log_mask >> static_cast<int>(event)) & 1u;
}

// Reads FATJIT_LOG from the environment (C's getenv: the process environment at import).
void InitEventLogFromEnvironment();

// Logs every deopt of native code when FATJIT_LOG names "deopt" (call after the above).
void InitDeoptLog();

// Writes "fatjit: <event> <qualname> (<file>:<line>): <message>" and a newline to stderr.
// Runs no Python code and leaves the error indicator as it was.
void LogFunctionEvent(LogEvent event, PyFunctionObject* func, std::string_view message);
// The same for a code object (code-level native code belongs to no function):
// "fatjit: <event> <co_qualname> (<file>:<line>) [code level]: <message>".
void LogCodeEvent(LogEvent event, PyCodeObject* code, std::string_view message);

}  // namespace fatjit

#endif  // FATJIT_EXT_EVENT_LOG_H_
