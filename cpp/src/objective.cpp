#include "objective.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace lredit {
namespace {

constexpr double kEps = 1e-8;

double norm(const double* a, size_t d) {
  double ss = 0.0;
  for (size_t i = 0; i < d; ++i) ss += a[i] * a[i];
  return std::sqrt(ss);
}

double cosine(const std::vector<double>& a, const std::vector<double>& b) {
  double dot = 0.0;
  for (size_t i = 0; i < a.size(); ++i) dot += a[i] * b[i];
  return dot / (std::max(norm(a.data(), a.size()), kEps) * std::max(norm(b.data(), b.size()), kEps));
}

std::vector<double> widen(const float* x, size_t d) { return std::vector<double>(x, x + d); }

}  // namespace

ojson LossTerms::entry(size_t i) const {
  return ojson{{"clip", clip.at(i)}, {"str", str.at(i)}, {"dir", dir.empty() ? ojson() : ojson(dir.at(i))}, {"total", total.at(i)}};
}

std::vector<double> self_similarity(const float* tokens, size_t count, size_t dim) {
  std::vector<double> norms(count), q(count * count);
  for (size_t i = 0; i < count; ++i) {
    const std::vector<double> x = widen(tokens + i * dim, dim);
    norms[i] = norm(x.data(), dim);
  }
  for (size_t i = 0; i < count; ++i)
    for (size_t j = i; j < count; ++j) {
      double dot = 0.0;
      for (size_t c = 0; c < dim; ++c) dot += static_cast<double>(tokens[i * dim + c]) * tokens[j * dim + c];
      q[i * count + j] = q[j * count + i] = dot / std::max(norms[i] * norms[j], kEps);
    }
  return q;
}

LossTerms region_losses(const std::vector<float>& cand, const std::vector<float>& cand_tokens, size_t n, const std::vector<float>& src,
                        const std::vector<float>& src_tokens, size_t tokens, size_t dim, const std::vector<float>& text,
                        const std::vector<float>& roi) {
  const size_t p = text.size();
  if (cand.size() != n * p || src.size() != p || (!roi.empty() && roi.size() != p))
    throw Error(Status::runner, "embedding widths differ: candidates " + std::to_string(n ? cand.size() / n : 0) + ", source " +
                                    std::to_string(src.size()) + ", text " + std::to_string(p));
  if (cand_tokens.size() != n * tokens * dim || src_tokens.size() != tokens * dim)
    throw Error(Status::runner, "candidate and source tokens differ in shape");
  const std::vector<double> t = widen(text.data(), p), s = widen(src.data(), p);
  std::vector<double> text_dir;
  for (size_t i = 0; i < roi.size(); ++i) text_dir.push_back(t[i] - static_cast<double>(roi[i]));
  const std::vector<double> q_src = self_similarity(src_tokens.data(), tokens, dim);
  LossTerms out;
  for (size_t k = 0; k < n; ++k) {
    const std::vector<double> c = widen(&cand[k * p], p);
    out.clip.push_back(1.0 - cosine(c, t));
    const std::vector<double> q = self_similarity(&cand_tokens[k * tokens * dim], tokens, dim);
    double sq = 0.0;
    for (size_t i = 0; i < q.size(); ++i) sq += (q[i] - q_src[i]) * (q[i] - q_src[i]);
    out.str.push_back(sq / static_cast<double>(q.size()));
    double total = out.clip.back() + out.str.back();
    if (!roi.empty()) {
      std::vector<double> image_dir(p);
      for (size_t i = 0; i < p; ++i) image_dir[i] = c[i] - s[i];
      out.dir.push_back(1.0 - cosine(image_dir, text_dir));
      total += out.dir.back();
    }
    out.total.push_back(total);
  }
  return out;
}

}  // namespace lredit
