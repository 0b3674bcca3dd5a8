#include <cstring>

#include "errors.h"
#include "runner.h"

struct lredit_outputs {
  lredit::TensorMap tensors;
};

namespace lredit {
namespace {

class CallbackRunner : public Runner {
 public:
  explicit CallbackRunner(const lredit_runner& table) : table_(table) {}
  ~CallbackRunner() override {
    if (table_.release) table_.release(table_.user);
  }
  std::string name() const override { return "callback"; }

  TensorMap run(const std::string& graph, const TensorMap& inputs) override {
    std::vector<lredit_tensor_view> views;
    for (const auto& [name, t] : inputs)
      views.push_back({name.c_str(), t.dtype == DType::f32 ? LREDIT_DTYPE_F32 : LREDIT_DTYPE_I64, t.shape.size(), t.shape.data(),
                       t.data()});
    lredit_outputs outputs;
    char message[512] = {0};
    const int rc = table_.run(table_.user, graph.c_str(), views.data(), views.size(), &outputs, message, sizeof(message));
    message[sizeof(message) - 1] = '\0';
    if (rc != 0)
      throw Error(Status::runner, "runner failed on graph " + graph + ": " + (message[0] ? message : "no message (code " + std::to_string(rc) + ")"));
    return std::move(outputs.tensors);
  }

 private:
  lredit_runner table_;
};

}  // namespace

std::unique_ptr<Runner> make_callback_runner(const lredit_runner& table) {
  if (table.run == nullptr) throw Error(Status::invalid_argument, "runner table has no run function");
  return std::make_unique<CallbackRunner>(table);
}

}  // namespace lredit

extern "C" lredit_status lredit_outputs_put(lredit_outputs* outputs, const char* name, lredit_dtype dtype, size_t ndim,
                                            const int64_t* shape, const void* data) {
  if (outputs == nullptr || name == nullptr || (ndim > 0 && shape == nullptr)) return LREDIT_ERROR_INVALID_ARGUMENT;
  if (dtype != LREDIT_DTYPE_F32 && dtype != LREDIT_DTYPE_I64) return LREDIT_ERROR_INVALID_ARGUMENT;
  lredit::Tensor t;
  t.dtype = dtype == LREDIT_DTYPE_F32 ? lredit::DType::f32 : lredit::DType::i64;
  size_t n = 1;
  for (size_t i = 0; i < ndim; ++i) {
    if (shape[i] < 0) return LREDIT_ERROR_INVALID_ARGUMENT;
    t.shape.push_back(shape[i]);
    n *= static_cast<size_t>(shape[i]);
  }
  if (n > 0 && data == nullptr) return LREDIT_ERROR_INVALID_ARGUMENT;
  if (t.dtype == lredit::DType::f32) {
    t.f32.resize(n);
    if (n) std::memcpy(t.f32.data(), data, n * sizeof(float));
  } else {
    t.i64.resize(n);
    if (n) std::memcpy(t.i64.data(), data, n * sizeof(int64_t));
  }
  outputs->tensors[name] = std::move(t);
  return LREDIT_OK;
}
