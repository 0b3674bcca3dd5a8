#include "pipeline.h"

#include <algorithm>
#include <cmath>

#include "errors.h"
#include "regions.h"
#include "stages.h"

namespace lredit {

void validate(const EditConfig& cfg, const std::string& prompt, const Geometry& g) {
  if (prompt.find_first_not_of(" \t\n\r\f\v") == std::string::npos)
    throw Error(Status::invalid_argument, "prompt is empty; give the edit to make, e.g. 'a bowl of strawberries'");
  std::vector<std::string> problems;
  auto need = [&](bool ok, const std::string& text) {
    if (!ok) problems.push_back(text);
  };
  need(cfg.anchors >= 1, "anchors=" + std::to_string(cfg.anchors) + " (expected an integer >= 1)");
  need(cfg.steps >= 1 && cfg.steps <= 1000, "steps=" + std::to_string(cfg.steps) + " (expected an integer in 1..1000)");
  need(cfg.guidance >= 0.0f && cfg.guidance <= 100.0f, "guidance=" + std::to_string(cfg.guidance) + " (expected a number in 0..100)");
  need(cfg.prompt_template.find("{prompt}") != std::string::npos,
       "prompt_template='" + cfg.prompt_template + "' (expected a string containing '{prompt}')");
  need(cfg.max_window >= 0, "max_window=" + std::to_string(cfg.max_window) + " (expected an integer >= 0)");
  need(cfg.rank_top_t2i >= 0, "rank_top_t2i=" + std::to_string(cfg.rank_top_t2i) + " (expected >= 0)");
  bool fractions_ok = true;
  for (size_t i = 0; i < cfg.prune_fractions.size(); ++i)
    fractions_ok = fractions_ok && cfg.prune_fractions[i] > 0.0 && cfg.prune_fractions[i] < 1.0 &&
                   (i == 0 || cfg.prune_fractions[i - 1] < cfg.prune_fractions[i]);
  need(fractions_ok, "prune_fractions (expected increasing, distinct shares in (0, 1))");
  need(cfg.prune_keep > 0.0 && cfg.prune_keep <= 1.0, "prune_keep=" + std::to_string(cfg.prune_keep) + " (expected a share in (0, 1])");
  need(cfg.max_unet_batch >= 0, "max_unet_batch=" + std::to_string(cfg.max_unet_batch) + " (expected an integer >= 0)");
  if (!problems.empty()) {
    std::string msg = "invalid edit config: ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw Error(Status::invalid_argument, msg);
  }
  if (cfg.anchors > g.max_candidates)
    throw Error(Status::invalid_argument, "anchors=" + std::to_string(cfg.anchors) + ": this bundle's graphs take at most " +
                                              std::to_string(g.max_candidates) + " candidates");
}

Pipeline::Pipeline(std::shared_ptr<const Bundle> bundle, std::shared_ptr<Runner> runner)
    : bundle_(std::move(bundle)), runner_(std::move(runner)) {}

namespace {

// 1 saliency: DINO's patch features and attention; the grid side.
TensorMap saliency(Stages& st, const Image& img, const EditConfig& cfg, int& side) {
  const Geometry& g = st.bundle().geometry;
  TensorMap dino = st.run("dino", one_feed("pixels", dino_pixels(img, g.dino_size, cfg.dino_imagenet_norm)), {"features", "saliency"});
  const Tensor& features = dino["features"];
  const int64_t patches = features.shape.size() == 3 ? features.shape[1] : 0;
  side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(patches))));
  if (patches == 0 || static_cast<int64_t>(side) * side != patches)
    throw Error(Status::runner, "DINO returned " + std::to_string(patches) + " patch tokens; a square grid was expected");
  return dino;
}

// 4 RGN: sizes (argmax) and probabilities per anchor.
void rgn_sizes(Stages& st, Tensor pooled, int64_t k, int64_t m, EditResult& r) {
  TensorMap rgn = st.run("rgn", one_feed("pooled", std::move(pooled)), {"log_probs"});
  expect_shape("rgn log_probs", rgn["log_probs"], {k, m});
  for (int64_t a = 0; a < k; ++a) {
    const float* row = &rgn["log_probs"].f32[a * m];
    r.size_index.push_back(std::max_element(row, row + m) - row);
    std::vector<double> p;
    for (int64_t j = 0; j < m; ++j) p.push_back(std::exp(static_cast<double>(row[j])));
    r.probabilities.push_back(p);
  }
}

// Text: [uncond, cond] SD hidden states with guidance, [cond] without.
Tensor sd_text(Stages& st, const std::string& prompt, std::vector<std::string>& warnings) {
  const EditConfig& cfg = st.config();
  const bridge::Tokens cond = st.tokens("sd", fill_template(cfg.prompt_template, prompt));
  if (cond.truncated)
    warnings.push_back("prompt has " + std::to_string(cond.token_count) + " tokens with its template; the text encoders take " +
                       std::to_string(cond.ids.size() - 2) + ", the rest was truncated");
  std::vector<std::vector<int64_t>> ids{cond.ids};
  if (cfg.do_guidance()) ids.insert(ids.begin(), st.tokens("sd", cfg.negative_prompt).ids);
  const int64_t rows = static_cast<int64_t>(ids.size());
  TensorMap text = st.run("sd_text", one_feed("input_ids", ids_tensor(ids)), {"hidden_states"});
  Tensor hidden = std::move(text["hidden_states"]);
  if (hidden.shape.size() != 3 || hidden.shape[0] != rows) throw Error(Status::runner, "sd_text hidden_states is " + hidden.describe());
  return hidden;
}

// 10 rank the K winners against the source with CLIP.
RankScores rank(Stages& st, const std::vector<Image>& candidates, const Image& source, const std::string& prompt) {
  const EditConfig& cfg = st.config();
  const int64_t k = static_cast<int64_t>(candidates.size());
  std::vector<Image> all = candidates;
  all.push_back(source);
  TensorMap vis = st.run("clip_vision", one_feed("pixels", clip_pixels(all, st.bundle().geometry.clip_image_size)), {"image_embeds"});
  const Tensor& embeds = vis["image_embeds"];
  if (embeds.shape.size() != 2 || embeds.shape[0] != k + 1) throw Error(Status::runner, "clip_vision image_embeds is " + embeds.describe());
  const bridge::Tokens clip_ids = st.tokens("clip", fill_template(cfg.prompt_template, prompt));
  TensorMap txt = st.run("clip_text", one_feed("input_ids", ids_tensor({clip_ids.ids})), {"text_embeds"});
  const int64_t d = embeds.shape[1];
  expect_shape("clip_text text_embeds", txt["text_embeds"], {1, d});
  const std::vector<float> cand(embeds.f32.begin(), embeds.f32.begin() + k * d), src(embeds.f32.begin() + k * d, embeds.f32.end());
  return rank_candidates(cand, static_cast<int>(k), src, txt["text_embeds"].f32, cfg.rank_alpha, cfg.rank_beta, cfg.rank_softmax,
                         cfg.rank_top_t2i);
}

}  // namespace

EditResult Pipeline::edit(const Image& img, const std::string& prompt, const EditConfig& cfg) {
  const Geometry& g = bundle_->geometry;
  EditResult r;
  r.config = cfg;
  r.prompt = prompt;
  Stages st(*runner_, *bundle_, cfg);
  validate(cfg, prompt, g);
  check_size(img.width, img.height);
  std::vector<std::string> mode_warnings;  // recorded after the text's, as Python orders them
  const RegionMode mode = resolve_mode(*bundle_, cfg, mode_warnings);
  st.lap("validate");

  int side = 0;
  TensorMap dino = saliency(st, img, cfg, side);
  r.rows = r.cols = side;
  st.lap("dino");

  // 2 anchors
  const size_t patches = static_cast<size_t>(side) * side;
  const std::vector<float> saliency(dino["saliency"].f32.begin(), dino["saliency"].f32.begin() + static_cast<std::ptrdiff_t>(patches));
  r.anchors = select_anchors(cumulative_saliency(saliency), side, side, cfg.anchors, cfg.distinct_anchors, cfg.max_window,
                             cfg.anchor_spacing);
  st.lap("anchors");

  // 3 proposals + ROI pool
  r.boxes_cells = proposal_boxes(r.anchors, g.half_sizes, side, side, cfg.fix_anchor_axes);
  PoolSpec spec;
  spec.out_size = g.roi_size;
  spec.spatial_scale = cfg.fix_roi_scale ? 1.0 : 0.125;
  spec.anchor_layout = cfg.fix_rgn_layout;
  Tensor tokens = std::move(dino["features"]);
  tokens.shape = {static_cast<int64_t>(patches), tokens.shape[2]};
  Tensor pooled = pool_proposals(tokens, side, side, r.boxes_cells, bundle_->projection_weight, bundle_->projection_bias, spec);
  st.lap("roi_pool");

  const int64_t k = cfg.anchors, m = static_cast<int64_t>(g.half_sizes.size());
  rgn_sizes(st, std::move(pooled), k, m, r);
  st.lap("rgn");
  const Tensor hidden = sd_text(st, prompt, r.warnings);
  r.warnings.insert(r.warnings.end(), mode_warnings.begin(), mode_warnings.end());
  st.lap("text");

  // 5-9 the region mode's rows
  const RegionJob job{st, img, r.boxes_cells, side, hidden, prompt, cfg.source_caption};
  ChosenRegions chosen = mode == RegionMode::search ? search(job) : one_pass(job, r.size_index);
  r.size_index = chosen.outcome.chosen_size;
  r.boxes_px = std::move(chosen.boxes_px);
  r.candidates = std::move(chosen.images);
  r.source = std::move(chosen.work);
  r.regions = std::move(chosen.outcome);

  r.scores = rank(st, r.candidates, r.source, prompt);
  r.chosen = r.scores.chosen;
  st.lap("rank");
  r.timings_ms = st.timings_ms;
  r.timings_ms["graph_ms"] = st.graph_ms;
  return r;
}

}  // namespace lredit
