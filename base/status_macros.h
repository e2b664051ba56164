// FATJIT_RETURN_IF_ERROR and FATJIT_ASSIGN_OR_RETURN: Debian's Abseil (20220623) has neither.
#ifndef FATJIT_BASE_STATUS_MACROS_H_
#define FATJIT_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FATJIT_RETURN_IF_ERROR(expr)                   \
  do {                                                 \
    ::absl::Status fatjit_status_ = (expr);            \
    if (!fatjit_status_.ok()) return fatjit_status_;   \
  } while (0)

#define FATJIT_CONCAT_INNER_(a, b) a##b
#define FATJIT_CONCAT_(a, b) FATJIT_CONCAT_INNER_(a, b)
#define FATJIT_ASSIGN_OR_RETURN(lhs, expr) \
  FATJIT_ASSIGN_OR_RETURN_IMPL_(FATJIT_CONCAT_(fatjit_statusor_, __LINE__), lhs, expr)
#define FATJIT_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#endif  // FATJIT_BASE_STATUS_MACROS_H_
