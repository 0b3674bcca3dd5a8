// A thin C++ wrapper over the C ABI (lredit.h): RAII handles, exceptions carrying the status and
// lredit_last_error()'s message. Header-only; it uses nothing but the C functions.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "lredit/lredit.h"

namespace lredit::api {

class Error : public std::runtime_error {
 public:
  Error(lredit_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  lredit_status status() const { return status_; }

 private:
  lredit_status status_;
};

inline void check(lredit_status status) {
  if (status != LREDIT_OK) throw Error(status, lredit_last_error());
}

inline lredit_options default_options() {
  lredit_options o;
  lredit_options_default(&o);
  return o;
}

class Result {
 public:
  explicit Result(lredit_result* r) : r_(r) {}
  Result(Result&& other) noexcept : r_(std::exchange(other.r_, nullptr)) {}
  Result& operator=(Result&& other) noexcept {
    std::swap(r_, other.r_);
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() { lredit_result_free(r_); }

  int32_t size() const { return lredit_result_size(r_); }
  int32_t num_candidates() const { return lredit_result_num_candidates(r_); }
  int32_t chosen() const { return lredit_result_chosen(r_); }
  // size() x size() x 3 RGB bytes; -1 the chosen candidate, -2 the working source image.
  const uint8_t* image(int32_t index = -1) const { return lredit_result_image(r_, index); }
  std::string report_json() const { return lredit_result_report_json(r_); }

 private:
  lredit_result* r_;
};

class Editor {
 public:
  // The runner table is copied; its release() runs when the editor is destroyed.
  Editor(const std::string& bundle, const lredit_runner& runner, bool verify = true) {
    check(lredit_open(bundle.c_str(), &runner, verify ? 1 : 0, &e_));
  }
  Editor(Editor&& other) noexcept : e_(std::exchange(other.e_, nullptr)) {}
  Editor& operator=(Editor&& other) noexcept {
    std::swap(e_, other.e_);
    return *this;
  }
  Editor(const Editor&) = delete;
  Editor& operator=(const Editor&) = delete;
  ~Editor() { lredit_close(e_); }

  Result edit(const uint8_t* rgb, int32_t width, int32_t height, const std::string& prompt, const lredit_options& options = default_options(),
              size_t stride = 0) {
    lredit_result* r = nullptr;
    check(lredit_edit(e_, rgb, width, height, stride, prompt.c_str(), &options, &r));
    return Result(r);
  }
  lredit_editor* handle() { return e_; }

 private:
  lredit_editor* e_ = nullptr;
};

inline std::string version() { return lredit_version(); }

}  // namespace lredit::api
