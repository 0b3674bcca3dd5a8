#include "report.h"

#include <cmath>
#include <algorithm>

#include "regions.h"

namespace lredit {
namespace {

std::string candidate_file(size_t k) {
  std::string digits = std::to_string(k);
  if (digits.size() < 2) digits = "0" + digits;
  return "candidate_" + digits + ".png";
}

}  // namespace

ojson config_report(const EditConfig& c, const Geometry& g) {
  return ojson{{"anchors", c.anchors},
               {"half_sizes", g.half_sizes},
               {"roi_size", g.roi_size},
               {"proj_channels", g.proj_channels},
               {"dino_size", g.dino_size},
               {"working_size", g.working_size},
               {"steps", c.steps},
               {"guidance", c.guidance},
               {"scheduler", c.scheduler},
               {"prompt_template", c.prompt_template},
               {"negative_prompt", c.negative_prompt},
               {"seed", c.seed},
               {"paste_back", c.paste_back},
               {"regions", c.regions ? ojson(mode_name(*c.regions)) : ojson()},
               {"prune", c.prune},
               {"prune_fractions", c.prune_fractions},
               {"prune_keep", c.prune_keep},
               {"max_unet_batch", c.max_unet_batch},
               {"rank_alpha", c.rank_alpha},
               {"rank_beta", c.rank_beta},
               {"rank_softmax", c.rank_softmax},
               {"rank_top_t2i", c.rank_top_t2i},
               {"fix_anchor_axes", c.fix_anchor_axes},
               {"fix_roi_scale", c.fix_roi_scale},
               {"fix_rgn_layout", c.fix_rgn_layout},
               {"distinct_anchors", c.distinct_anchors},
               {"max_window", c.max_window},
               {"anchor_spacing", c.anchor_spacing},
               {"dino_imagenet_norm", c.dino_imagenet_norm}};
}

ojson build_report(const EditResult& r, const Bundle& bundle, const std::string& image, const std::string& backend) {
  ojson candidates = ojson::array();
  for (size_t k = 0; k < r.candidates.size(); ++k) {
    const int64_t m = r.size_index[k];
    ojson probs = ojson::array();
    for (double p : r.probabilities[k]) probs.push_back(std::round(p * 1e6) / 1e6);
    const auto& box = r.boxes_cells[k][m];
    const bool eligible = std::find(r.scores.eligible.begin(), r.scores.eligible.end(), static_cast<int>(k)) != r.scores.eligible.end();
    candidates.push_back(ojson{{"index", k},
                               {"anchor_row_col", {r.anchors[k].row, r.anchors[k].col}},
                               {"half_size", bundle.geometry.half_sizes[m]},
                               {"size_index", m},
                               {"box_cells", {box[0], box[1], box[2], box[3]}},
                               {"box_px", r.boxes_px[k]},
                               {"rgn_probabilities", probs},
                               {"t2i", r.scores.t2i[k]},
                               {"i2i", r.scores.i2i[k]},
                               {"t2i_term", r.scores.t2i_norm[k]},
                               {"i2i_term", r.scores.i2i_norm[k]},
                               {"score", r.scores.score[k]},
                               {"eligible", eligible},
                               {"file", candidate_file(k)}});
  }
  ojson timings = ojson::object();
  for (const auto& [name, ms] : r.timings_ms) timings[name] = std::round(ms * 1000.0) / 1000.0;
  return ojson{{"lredit_report", 1},
               {"image", image},
               {"prompt", r.prompt},
               {"source_caption", r.config.source_caption.empty() ? ojson() : ojson(r.config.source_caption)},
               {"backend", backend},
               {"models", {{"bundle", bundle.dir}, {"random_weights", bundle.random_weights}}},
               {"config", config_report(r.config, bundle.geometry)},
               {"feature_grid", {r.rows, r.cols}},
               {"working_size", bundle.geometry.working_size},
               {"chosen", r.chosen},
               {"candidates", candidates},
               {"regions", r.regions.to_json()},
               {"timings_ms", timings},
               {"warnings", r.warnings},
               {"versions", {{"lredit-cpp", lredit_version()}}}};
}

}  // namespace lredit
