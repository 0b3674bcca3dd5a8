// Named host tensors: the currency between the pipeline and a runner.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lredit {

enum class DType { f32, i64 };

struct Tensor {
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::vector<float> f32;    // data when dtype == f32
  std::vector<int64_t> i64;  // data when dtype == i64

  static Tensor floats(std::vector<int64_t> shape, std::vector<float> data = {});
  static Tensor ints(std::vector<int64_t> shape, std::vector<int64_t> data = {});
  size_t numel() const;
  const void* data() const { return dtype == DType::f32 ? static_cast<const void*>(f32.data()) : i64.data(); }
  std::string describe() const;  // "f32[2, 77]"
};

using TensorMap = std::map<std::string, Tensor>;

size_t numel_of(const std::vector<int64_t>& shape);

}  // namespace lredit
