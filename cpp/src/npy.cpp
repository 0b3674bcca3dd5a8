#include "npy.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "errors.h"

namespace lredit::npy {
namespace {

uint32_t le32(const unsigned char* p) { return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24); }
uint16_t le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// Value of `key` in the header dict, e.g. 'descr': '<f4' -> <f4.
std::string header_field(const std::string& header, const std::string& key, const std::string& what) {
  size_t at = header.find("'" + key + "'");
  if (at == std::string::npos) throw Error(Status::io, what + ": .npy header lacks '" + key + "'");
  size_t colon = header.find(':', at);
  size_t start = header.find_first_not_of(' ', colon + 1);
  if (header[start] == '(') return header.substr(start + 1, header.find(')', start) - start - 1);
  if (header[start] == '\'') return header.substr(start + 1, header.find('\'', start + 1) - start - 1);
  return header.substr(start, header.find_first_of(",}", start) - start);
}

std::vector<int64_t> parse_shape(const std::string& text) {
  std::vector<int64_t> shape;
  std::stringstream s(text);
  std::string part;
  while (std::getline(s, part, ',')) {
    if (part.find_first_not_of(' ') == std::string::npos) continue;
    shape.push_back(std::stoll(part));
  }
  return shape;
}

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

Tensor parse(const unsigned char* bytes, size_t size, const std::string& what, size_t* consumed) {
  if (size < 10 || std::memcmp(bytes, "\x93NUMPY", 6) != 0) throw Error(Status::io, what + " is not a .npy file");
  const int major = bytes[6];
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = le16(bytes + 8);
    offset = 10;
  } else {
    if (size < 12) throw Error(Status::io, what + ": truncated .npy header");
    header_len = le32(bytes + 8);
    offset = 12;
  }
  if (offset + header_len > size) throw Error(Status::io, what + ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(bytes + offset), header_len);
  offset += header_len;
  const std::string descr = header_field(header, "descr", what);
  if (header_field(header, "fortran_order", what).rfind("False", 0) != 0)
    throw Error(Status::io, what + ": Fortran-order arrays are not read");
  std::vector<int64_t> shape = parse_shape(header_field(header, "shape", what));
  const size_t n = numel_of(shape);
  size_t item = 0;
  if (descr == "<f4" || descr == "<i4") item = 4;
  else if (descr == "<f8" || descr == "<i8") item = 8;
  else if (descr == "|u1" || descr == "|b1") item = 1;
  else throw Error(Status::io, what + ": dtype " + descr + " is not read (f4, f8, i4, i8, u1, b1)");
  if (offset + n * item > size) throw Error(Status::io, what + ": truncated .npy data");
  const unsigned char* d = bytes + offset;
  Tensor t;
  t.shape = shape;
  if (descr[1] == 'f') {
    t.dtype = DType::f32;
    t.f32.resize(n);
    for (size_t i = 0; i < n; ++i)
      t.f32[i] = item == 4 ? load<float>(d + 4 * i) : static_cast<float>(load<double>(d + 8 * i));
  } else {
    t.dtype = DType::i64;
    t.i64.resize(n);
    for (size_t i = 0; i < n; ++i)
      t.i64[i] = item == 8 ? load<int64_t>(d + 8 * i) : item == 4 ? load<int32_t>(d + 4 * i) : d[i];
  }
  if (consumed) *consumed = offset + n * item;
  return t;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Status::io, "cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file_atomic(const std::string& path, const std::string& data) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(Status::io, "cannot write " + tmp.string());
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) throw Error(Status::io, "writing " + tmp.string() + " failed");
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) throw Error(Status::io, "cannot rename " + tmp.string() + " to " + path + ": " + ec.message());
}

Tensor read(const std::string& path) {
  const std::string bytes = read_file(path);
  return parse(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), path);
}

void write(const std::string& path, const Tensor& tensor) {
  std::string shape;
  for (size_t i = 0; i < tensor.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(tensor.shape[i]);
  if (tensor.shape.size() == 1) shape += ",";
  std::string header = std::string("{'descr': '") + (tensor.dtype == DType::f32 ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': (" + shape + "), }";
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  const size_t bytes = tensor.numel() * (tensor.dtype == DType::f32 ? 4 : 8);
  out.append(static_cast<const char*>(tensor.data()), bytes);
  write_file_atomic(path, out);
}

TensorMap read_npz(const std::string& path) {
  const std::string bytes = read_file(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  TensorMap out;
  size_t at = 0;
  while (at + 30 <= bytes.size() && le32(p + at) == 0x04034b50) {
    const uint16_t flags = le16(p + at + 6), method = le16(p + at + 8);
    const size_t name_len = le16(p + at + 26), extra_len = le16(p + at + 28);
    if (method != 0) throw Error(Status::io, path + ": compressed .npz members are not read (np.savez writes stored ones)");
    std::string name(reinterpret_cast<const char*>(p + at + 30), name_len);
    const size_t start = at + 30 + name_len + extra_len;
    if (start > bytes.size()) throw Error(Status::io, path + ": truncated archive");
    size_t used = 0;
    Tensor t = parse(p + start, bytes.size() - start, path + ":" + name, &used);
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0) name.resize(name.size() - 4);
    out[name] = std::move(t);
    at = start + used;
    if (flags & 0x8) {  // data descriptor: optional signature, crc, sizes (4 or 8 bytes each)
      if (at + 4 <= bytes.size() && le32(p + at) == 0x08074b50) at += 4;
      at += 4;
      while (at + 4 <= bytes.size() && le32(p + at) != 0x04034b50 && le32(p + at) != 0x02014b50) at += 4;
    }
  }
  if (out.empty()) throw Error(Status::io, path + " holds no arrays");
  return out;
}

}  // namespace lredit::npy
