// CLIP ranking of the K candidates (engine/ranking.py): S = alpha * t2i + beta * i2i, softmax over
// the candidates, the winner the best score among the top-N by t2i.
#pragma once

#include <vector>

namespace lredit {

struct RankScores {
  std::vector<double> t2i, i2i, t2i_norm, i2i_norm, score;
  int chosen = 0;
  std::vector<int> eligible;  // sorted
};

// image_embeds [K, D] row-major, source [D], text [D].
RankScores rank_candidates(const std::vector<float>& image_embeds, int k, const std::vector<float>& source,
                           const std::vector<float>& text, double alpha, double beta, bool softmax, int top_t2i);

}  // namespace lredit
