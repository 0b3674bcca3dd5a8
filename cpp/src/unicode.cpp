#include "unicode.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace lredit {
namespace unicode {
namespace {

struct CodeRange {
  char32_t first, last;
};
struct CaseMapping {
  char32_t from, to;
};
struct MultiCaseMapping {
  char32_t from;
  char32_t to[3];
  int size;
};
struct ClassRange {
  char32_t first, last;
  int ccc;
};
struct Decomposition {
  char32_t from;
  std::uint32_t offset, size;
};
struct Composition {
  char32_t first, second, composite;
};

#include "unicode_data.inc"

template <typename T, std::size_t N>
constexpr std::size_t count_of(const T (&)[N]) {
  return N;
}

template <std::size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t c) {
  const CodeRange* end = table + N;
  const CodeRange* it = std::upper_bound(table, end, c, [](char32_t v, const CodeRange& r) { return v < r.first; });
  return it != table && c <= (it - 1)->last;
}

// Hangul syllables (Unicode 3.12, "Conjoining Jamo Behavior").
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose_into(char32_t c, std::u32string& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t s = c - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* end = kDecompositions + count_of(kDecompositions);
  const Decomposition* it = std::lower_bound(kDecompositions, end, c, [](const Decomposition& d, char32_t v) { return d.from < v; });
  if (it != end && it->from == c) {
    out.append(kDecompositionData + it->offset, it->size);
  } else {
    out.push_back(c);
  }
}

// The primary composite of (a, b), or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount) {
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  }
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount) {
    return a + (b - kTBase);
  }
  const Composition* end = kCompositions + count_of(kCompositions);
  const Composition* it = std::lower_bound(kCompositions, end, std::make_pair(a, b), [](const Composition& c, const std::pair<char32_t, char32_t>& v) {
    return c.first < v.first || (c.first == v.first && c.second < v.second);
  });
  return (it != end && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

bool is_letter(char32_t c) { return in_ranges(kLetters, c); }
bool is_number(char32_t c) { return in_ranges(kNumbers, c); }
bool is_space(char32_t c) { return in_ranges(kSpaces, c); }

int combining_class(char32_t c) {
  const ClassRange* end = kCombiningClasses + count_of(kCombiningClasses);
  const ClassRange* it = std::upper_bound(kCombiningClasses, end, c, [](char32_t v, const ClassRange& r) { return v < r.first; });
  return (it != kCombiningClasses && c <= (it - 1)->last) ? (it - 1)->ccc : 0;
}

std::u32string decode_utf8(const std::string& text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    int extra = 0;
    char32_t c = 0, min = 0;
    if (b < 0x80) {
      out.push_back(b);
      ++i;
      continue;
    } else if ((b & 0xE0) == 0xC0) {
      extra = 1, c = b & 0x1F, min = 0x80;
    } else if ((b & 0xF0) == 0xE0) {
      extra = 2, c = b & 0x0F, min = 0x800;
    } else if ((b & 0xF8) == 0xF0) {
      extra = 3, c = b & 0x07, min = 0x10000;
    } else {
      throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(i) + ")");
    }
    if (i + extra >= n) {
      throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(i) + ")");
    }
    for (int k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(i) + ")");
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      throw std::invalid_argument("text is not valid UTF-8 (byte offset " + std::to_string(i) + ")");
    }
    out.push_back(c);
    i += extra + 1;
  }
  return out;
}

std::string encode_utf8(const std::u32string& text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

std::u32string nfc(const std::u32string& text) {
  // Canonical decomposition, then canonical ordering of each run of non-starters (stable by ccc).
  std::u32string d;
  d.reserve(text.size());
  for (char32_t c : text) decompose_into(c, d);
  for (std::size_t i = 0; i < d.size();) {
    if (combining_class(d[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < d.size() && combining_class(d[j]) != 0) ++j;
    std::stable_sort(d.begin() + static_cast<std::ptrdiff_t>(i), d.begin() + static_cast<std::ptrdiff_t>(j),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition (UAX #15): each character joins the last starter unless blocked.
  std::u32string out;
  out.reserve(d.size());
  std::size_t starter = 0;
  bool have_starter = false;
  int last_class = 0;
  for (char32_t c : d) {
    const int cc = combining_class(c);
    if (have_starter) {
      const bool adjacent = out.size() == starter + 1;
      if (adjacent || (last_class != 0 && last_class < cc)) {
        const char32_t composite = compose(out[starter], c);
        if (composite != 0) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (cc == 0) {
      starter = out.size();
      have_starter = true;
    }
    last_class = cc;
    out.push_back(c);
  }
  return out;
}

std::u32string lowercase(const std::u32string& text) {
  std::u32string out;
  out.reserve(text.size());
  const CaseMapping* end = kLower + count_of(kLower);
  const MultiCaseMapping* multi_end = kLowerMulti + count_of(kLowerMulti);
  for (char32_t c : text) {
    const MultiCaseMapping* m = std::find_if(kLowerMulti, multi_end, [c](const MultiCaseMapping& x) { return x.from == c; });
    if (m != multi_end) {
      out.append(m->to, static_cast<std::size_t>(m->size));
      continue;
    }
    const CaseMapping* it = std::lower_bound(kLower, end, c, [](const CaseMapping& x, char32_t v) { return x.from < v; });
    out.push_back((it != end && it->from == c) ? it->to : c);
  }
  return out;
}

}  // namespace unicode
}  // namespace lredit
