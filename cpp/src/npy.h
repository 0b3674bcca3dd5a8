// NumPy .npy files (read: little-endian f4/f8/i4/i8/u1/b1, C order; write: f32, i64) and the
// stored (uncompressed) .npz archives np.savez writes.
#pragma once

#include <string>

#include "tensor.h"

namespace lredit::npy {

Tensor parse(const unsigned char* bytes, size_t size, const std::string& what, size_t* consumed = nullptr);
Tensor read(const std::string& path);
void write(const std::string& path, const Tensor& tensor);  // atomic: temp file + rename
TensorMap read_npz(const std::string& path);

std::string read_file(const std::string& path);
void write_file_atomic(const std::string& path, const std::string& data);

}  // namespace lredit::npy
