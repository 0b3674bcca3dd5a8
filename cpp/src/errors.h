// Errors a caller can act on; each carries a status that the C ABI returns as its code.
#pragma once

#include <stdexcept>
#include <string>

#include "lredit/lredit.h"

namespace lredit {

enum class Status : int {
  ok = LREDIT_OK,
  invalid_argument = LREDIT_ERROR_INVALID_ARGUMENT,
  bundle = LREDIT_ERROR_BUNDLE,
  runner = LREDIT_ERROR_RUNNER,
  numerical = LREDIT_ERROR_NUMERICAL,
  io = LREDIT_ERROR_IO,
  internal = LREDIT_ERROR_INTERNAL,
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

}  // namespace lredit
