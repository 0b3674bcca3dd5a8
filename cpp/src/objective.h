// The per-image objective of the learnable regions (engine/ops/objective.py), in float64:
//   L_clip = 1 - cos(E_v(X_o), E_t(T))
//   L_dir  = 1 - cos(E_v(X_o) - E_v(X), E_t(T) - E_t(T_roi))   (only with a source caption)
//   L_str  = mean((Q(X_o) - Q(X))^2), Q the cosine self-similarity of clip_vision's `tokens`
//   L      = L_clip + L_str + L_dir
// Cosines clamp each norm at 1e-8 (torch's cosine_similarity); Q divides by max(|x||y|, 1e-8).
#pragma once

#include <optional>
#include <vector>

#include "bundle.h"

namespace lredit {

struct LossTerms {
  std::vector<double> clip, str, dir, total;  // [N] each; dir empty without a source caption
  ojson entry(size_t i) const;                // {"clip", "str", "dir" (null without a caption), "total"}
};

// candidate_embeds [N, p], candidate_tokens [N, T, D], source_embed [p], source_tokens [T, D],
// text [p] = E_t(T), roi [p] = E_t(T_roi) (empty: no caption).
LossTerms region_losses(const std::vector<float>& candidate_embeds, const std::vector<float>& candidate_tokens, size_t n,
                        const std::vector<float>& source_embed, const std::vector<float>& source_tokens, size_t tokens, size_t dim,
                        const std::vector<float>& text, const std::vector<float>& roi);

// [T, T] cosine self-similarity of T tokens of width D.
std::vector<double> self_similarity(const float* tokens, size_t count, size_t dim);

}  // namespace lredit
