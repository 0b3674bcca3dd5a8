// SHA-256 (FIPS 180-4), for checking a bundle's files against the sha256 its manifest lists.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace lredit {

class Sha256 {
 public:
  Sha256();
  // Feeds `size` more bytes; call any number of times before digest().
  void update(const void* data, std::size_t size);
  // The 32-byte digest of everything fed so far. The object is spent afterwards: update() and
  // digest() throw std::logic_error.
  std::array<std::uint8_t, 32> digest();
  // digest() as 64 lowercase hex characters (Python's hashlib.sha256().hexdigest()).
  std::string hexdigest();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;
  bool finished_ = false;
};

// Lowercase hex SHA-256 of a byte string.
std::string sha256_hex(const void* data, std::size_t size);
// Lowercase hex SHA-256 of a file's bytes, read in chunks; throws std::runtime_error naming the
// file when it cannot be opened or read.
std::string sha256_file_hex(const std::string& path);

}  // namespace lredit
