// The one runner contract: run graph `name` on named host tensors, get named tensors back.
// Runners: ReplayRunner (recorded graph I/O), CallbackRunner (the C ABI's table), and, when
// their SDKs are present at build time, OrtRunner (ONNX Runtime C API) and TrtRunner (TensorRT).
#pragma once

#include <memory>
#include <string>

#include "lredit/lredit.h"
#include "tensor.h"

namespace lredit {

class Runner {
 public:
  virtual ~Runner() = default;
  virtual TensorMap run(const std::string& graph, const TensorMap& inputs) = 0;
  virtual std::string name() const = 0;
};

// Runs graphs through an application's lredit_runner callback table (copied; release() called
// on destruction).
std::unique_ptr<Runner> make_callback_runner(const lredit_runner& table);

}  // namespace lredit

namespace lredit {

#ifdef LREDIT_HAVE_ORT
// The bundle's ONNX graphs on ONNX Runtime's C API (CPU provider; CUDA when `cuda`).
std::unique_ptr<Runner> make_ort_runner(const std::string& bundle_dir, bool cuda);
#endif
#ifdef LREDIT_HAVE_TRT
// The bundle's TensorRT engines (built by lr-export --trt on this GPU) with CUDA buffers.
std::unique_ptr<Runner> make_trt_runner(const std::string& bundle_dir);
#endif

}  // namespace lredit
