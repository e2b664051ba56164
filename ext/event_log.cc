// The FATJIT_LOG switch and the line format: see event_log.h.
#include "ext/event_log.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "jit/native_code.h"

namespace fatjit {
namespace {

constexpr const char* kEventNames[] = {
#define FATJIT_LOG_NAME(e, name, doc) name,
    FATJIT_LOG_EVENTS(FATJIT_LOG_NAME)
#undef FATJIT_LOG_NAME
};

// The UTF-8 text of a str, or "?" (never raises: the error indicator is kept as it was).
const char* Utf8OrPlaceholder(PyObject* text) {
  if (text == nullptr || !PyUnicode_Check(text)) return "?";
  // PyUnicode_AsUTF8 caches the UTF-8 form in the str; it fails only for lone surrogates.
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  const char* utf8 = PyUnicode_AsUTF8(text);
  if (utf8 == nullptr) PyErr_Clear();
  PyErr_Restore(type, value, traceback);
  return utf8 != nullptr ? utf8 : "?";
}

}  // namespace

void InitEventLogFromEnvironment() {
  internal::g_log_mask = 0;
  const char* spec = std::getenv("FATJIT_LOG");
  if (spec == nullptr) return;
  std::string known;
  for (const char* name : kEventNames) absl::StrAppend(&known, known.empty() ? "" : ", ", name);
  for (absl::string_view word : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    word = absl::StripAsciiWhitespace(word);
    if (word == "all") {
      internal::g_log_mask = (1u << static_cast<int>(LogEvent::kCount)) - 1;
      continue;
    }
    bool found = false;
    for (int e = 0; e < static_cast<int>(LogEvent::kCount); ++e) {
      if (word == kEventNames[e]) {
        internal::g_log_mask |= 1u << e;
        found = true;
      }
    }
    if (!found) {
      absl::FPrintF(stderr, "fatjit: FATJIT_LOG: unknown event '%s' ignored (known: %s, all)\n",
                    word, known);
    }
  }
}

void LogFunctionEvent(LogEvent event, PyFunctionObject* func, std::string_view message) {
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  absl::FPrintF(stderr, "fatjit: %s %s (%s:%d): %s\n", kEventNames[static_cast<int>(event)],
                Utf8OrPlaceholder(func->func_qualname), Utf8OrPlaceholder(code->co_filename),
                code->co_firstlineno, message);
}

void LogCodeEvent(LogEvent event, PyCodeObject* code, std::string_view message) {
  absl::FPrintF(stderr, "fatjit: %s %s (%s:%d) [code level]: %s\n",
                kEventNames[static_cast<int>(event)], Utf8OrPlaceholder(code->co_qualname),
                Utf8OrPlaceholder(code->co_filename), code->co_firstlineno, message);
}

namespace {
void LogDeopt(const jit::DeoptSite& site, _PyInterpreterFrame* frame) {
  LogFunctionEvent(LogEvent::kDeopt, frame->f_func,
                   absl::StrFormat("to offset %d with %d on the stack: %s", site.target * 2,
                                   site.depth, jit::DeoptReasonName(site.reason)));
}
}  // namespace

void InitDeoptLog() {
  if (LogEnabled(LogEvent::kDeopt)) jit::GlobalJitCounters().on_deopt = LogDeopt;
}

}  // namespace fatjit
