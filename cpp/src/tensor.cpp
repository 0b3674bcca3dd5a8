#include "tensor.h"

#include <sstream>

#include "errors.h"

namespace lredit {

size_t numel_of(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error(Status::internal, "negative tensor dimension");
    n *= static_cast<size_t>(d);
  }
  return n;
}

Tensor Tensor::floats(std::vector<int64_t> shape, std::vector<float> data) {
  Tensor t;
  t.dtype = DType::f32;
  t.shape = std::move(shape);
  if (data.empty()) data.assign(numel_of(t.shape), 0.0f);
  if (data.size() != numel_of(t.shape)) throw Error(Status::internal, "tensor data does not match its shape");
  t.f32 = std::move(data);
  return t;
}

Tensor Tensor::ints(std::vector<int64_t> shape, std::vector<int64_t> data) {
  Tensor t;
  t.dtype = DType::i64;
  t.shape = std::move(shape);
  if (data.empty()) data.assign(numel_of(t.shape), 0);
  if (data.size() != numel_of(t.shape)) throw Error(Status::internal, "tensor data does not match its shape");
  t.i64 = std::move(data);
  return t;
}

size_t Tensor::numel() const { return numel_of(shape); }

std::string Tensor::describe() const {
  std::ostringstream s;
  s << (dtype == DType::f32 ? "f32[" : "i64[");
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << "]";
  return s.str();
}

}  // namespace lredit
