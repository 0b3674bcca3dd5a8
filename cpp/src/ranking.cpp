#include "ranking.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lredit {
namespace {

std::vector<double> unit(const float* x, size_t d) {
  std::vector<double> v(x, x + d);
  double ss = 0.0;
  for (double a : v) ss += a * a;
  const double norm = std::sqrt(ss);
  for (double& a : v) a /= norm;
  return v;
}

std::vector<double> softmax(const std::vector<double>& x) {
  const double top = *std::max_element(x.begin(), x.end());
  std::vector<double> e(x.size());
  double sum = 0.0;
  for (size_t i = 0; i < x.size(); ++i) sum += (e[i] = std::exp(x[i] - top));
  for (double& v : e) v /= sum;
  return e;
}

}  // namespace

RankScores rank_candidates(const std::vector<float>& image_embeds, int k, const std::vector<float>& source,
                           const std::vector<float>& text, double alpha, double beta, bool use_softmax, int top_t2i) {
  const size_t d = text.size();
  const std::vector<double> t = unit(text.data(), d), s = unit(source.data(), d);
  RankScores r;
  for (int i = 0; i < k; ++i) {
    const std::vector<double> c = unit(image_embeds.data() + static_cast<size_t>(i) * d, d);
    double a = 0.0, b = 0.0;
    for (size_t j = 0; j < d; ++j) a += c[j] * t[j], b += c[j] * s[j];
    r.t2i.push_back(a);
    r.i2i.push_back(b);
  }
  r.t2i_norm = use_softmax ? softmax(r.t2i) : r.t2i;
  r.i2i_norm = use_softmax ? softmax(r.i2i) : r.i2i;
  for (int i = 0; i < k; ++i) r.score.push_back(alpha * r.t2i_norm[i] + beta * r.i2i_norm[i]);
  std::vector<int> by_t2i(k);
  std::iota(by_t2i.begin(), by_t2i.end(), 0);
  std::stable_sort(by_t2i.begin(), by_t2i.end(), [&](int a, int b) { return r.t2i[a] > r.t2i[b]; });
  r.eligible.assign(by_t2i.begin(), by_t2i.begin() + (top_t2i > 0 ? std::min(top_t2i, k) : k));
  int best = r.eligible[0];
  for (int i : r.eligible)
    if (r.score[i] > r.score[best]) best = i;
  r.chosen = best;
  std::sort(r.eligible.begin(), r.eligible.end());
  return r;
}

}  // namespace lredit
