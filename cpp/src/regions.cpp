#include "regions.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "errors.h"

namespace lredit {
namespace {

// CLIP of decoded pairs and of the working image, CLIP text of T and T_roi, the objective
// (modes.py ClipScorer). The source is embedded once, at the first call.
class ClipScorer {
 public:
  ClipScorer(Stages& st, const std::string& prompt, const std::string& caption) : st_(st) {
    const std::string tmpl = st.config().prompt_template;
    text_ = text_embed(fill_template(tmpl, prompt));
    const size_t first = caption.find_first_not_of(" \t\n\r\f\v"), last = caption.find_last_not_of(" \t\n\r\f\v");
    if (first != std::string::npos) roi_ = text_embed(fill_template(tmpl, caption.substr(first, last - first + 1)));
    else notes.push_back("no --source-caption: L_dir is left out of L (L = L_clip + L_str)");
  }

  LossTerms operator()(const std::vector<Image>& images, const Image& work) {
    if (source_embed_.empty()) {
      TensorMap src = vision({work});
      source_embed_ = std::move(src["image_embeds"].f32);
      source_tokens_ = std::move(src["tokens"].f32);
    }
    TensorMap out = vision(images);
    const Tensor& tokens = out["tokens"];
    return region_losses(out["image_embeds"].f32, tokens.f32, images.size(), source_embed_, source_tokens_,
                         static_cast<size_t>(tokens.shape[1]), static_cast<size_t>(tokens.shape[2]), text_, roi_);
  }

  std::vector<std::string> notes;

 private:
  std::vector<float> text_embed(const std::string& text) {
    TensorMap out = st_.run("clip_text", one_feed("input_ids", ids_tensor({st_.tokens("clip", text).ids})), {"text_embeds"});
    if (out["text_embeds"].shape.size() != 2 || out["text_embeds"].shape[0] != 1)
      throw Error(Status::runner, "clip_text text_embeds is " + out["text_embeds"].describe());
    return std::move(out["text_embeds"].f32);
  }

  TensorMap vision(const std::vector<Image>& images) {
    TensorMap out = st_.run_chunked("clip_vision", one_feed("pixels", clip_pixels(images, st_.bundle().geometry.clip_image_size)),
                                    {"image_embeds", "tokens"});
    const int64_t n = static_cast<int64_t>(images.size());
    if (out["image_embeds"].shape.size() != 2 || out["image_embeds"].shape[0] != n || out["tokens"].shape.size() != 3 ||
        out["tokens"].shape[0] != n)
      throw Error(Status::runner, "clip_vision returned image_embeds " + out["image_embeds"].describe() + " and tokens " +
                                      out["tokens"].describe() + " for " + std::to_string(n) + " images");
    return out;
  }

  Stages& st_;
  std::vector<float> text_, roi_, source_embed_, source_tokens_;
};

// [K][M] table with `values` at `pairs`, null elsewhere.
ojson table(int64_t k, int64_t m, const std::vector<Pair>& pairs, const std::vector<ojson>& values) {
  ojson t = ojson::array();
  for (int64_t a = 0; a < k; ++a) t.push_back(ojson(std::vector<ojson>(static_cast<size_t>(m), ojson())));
  for (size_t i = 0; i < pairs.size(); ++i) t[pairs[i].anchor][pairs[i].size] = values[i];
  return t;
}

std::vector<Pair> pick(const std::vector<Pair>& pairs, const std::vector<int64_t>& rows) {
  std::vector<Pair> out;
  for (int64_t r : rows) out.push_back(pairs.at(static_cast<size_t>(r)));
  return out;
}

std::vector<Box> pair_boxes(const RegionJob& job, const std::vector<Pair>& pairs) {
  std::vector<Box> boxes;
  for (const Pair& p : pairs) boxes.push_back(job.boxes.at(p.anchor).at(p.size));
  return boxes;
}

}  // namespace

const char* mode_name(RegionMode mode) {
  return mode == RegionMode::rgn ? "rgn" : mode == RegionMode::search ? "search" : "learn";
}

std::vector<Pair> all_pairs(int64_t k, int64_t m) {
  std::vector<Pair> pairs;
  for (int64_t a = 0; a < k; ++a)
    for (int64_t s = 0; s < m; ++s) pairs.push_back({a, s});
  return pairs;
}

std::vector<int> prune_steps(int total, const std::vector<double>& fractions) {
  std::set<int> steps;
  for (double f : fractions) {  // Python's round(): half to even, as nearbyint in the default mode
    const int s = std::min(std::max(static_cast<int>(std::nearbyint(f * total)), 1), total - 1);
    if (s >= 1 && s < total) steps.insert(s);
  }
  return {steps.begin(), steps.end()};
}

std::vector<int64_t> keep_best(const std::vector<Pair>& pairs, const std::vector<double>& losses, double share) {
  std::set<int64_t> anchors;
  for (const Pair& p : pairs) anchors.insert(p.anchor);
  std::vector<int64_t> keep;
  for (int64_t anchor : anchors) {
    std::vector<int64_t> rows;
    for (size_t i = 0; i < pairs.size(); ++i)
      if (pairs[i].anchor == anchor) rows.push_back(static_cast<int64_t>(i));
    std::stable_sort(rows.begin(), rows.end(), [&](int64_t x, int64_t y) {
      return losses[x] != losses[y] ? losses[x] < losses[y] : pairs[x].size < pairs[y].size;
    });
    const size_t n = std::max<size_t>(1, static_cast<size_t>(std::ceil(share * static_cast<double>(rows.size()))));
    keep.insert(keep.end(), rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(std::min(n, rows.size())));
  }
  std::sort(keep.begin(), keep.end());
  return keep;
}

RegionMode resolve_mode(const Bundle& bundle, const EditConfig& cfg, std::vector<std::string>& warnings) {
  const RegionMode mode = cfg.regions ? *cfg.regions : (bundle.has_rgn_checkpoint ? RegionMode::rgn : RegionMode::search);
  if (mode == RegionMode::learn)
    throw Error(Status::invalid_argument,
                "region mode 'learn' is not in the C++ host (it trains the RGN on each image, in Python): train the RGN with "
                "lr-train-rgn, export the bundle with its checkpoint (lr-export) and use region mode rgn, or use region mode search");
  if (mode == RegionMode::rgn || bundle.clip_vision_tokens) return mode;
  const std::string reason = "the clip_vision graph has no 'tokens' output: re-export the bundle with this lredit (lr-export)";
  if (cfg.regions) throw Error(Status::invalid_argument, std::string("--regions ") + mode_name(mode) + " cannot run: " + reason);
  warnings.push_back("regions: one-pass rgn with a seeded RGN, because search cannot run: " + reason);
  return RegionMode::rgn;
}

ojson RegionsOutcome::to_json() const {
  ojson searched_json = ojson::array();
  for (const auto& row : searched) searched_json.push_back(row);
  return ojson{{"mode", mode_name(mode)}, {"chosen_size", chosen_size}, {"losses", losses},     {"phases", phases},
               {"unet_rows", unet_rows},  {"searched", searched_json}, {"learn", nullptr}, {"notes", notes}};
}

ChosenRegions one_pass(const RegionJob& job, const std::vector<int64_t>& sizes) {
  std::vector<Pair> pairs;
  for (size_t a = 0; a < sizes.size(); ++a) pairs.push_back({static_cast<int64_t>(a), sizes[a]});
  Inpainted inp = inpaint_rows(job.stages, job.image, pair_boxes(job, pairs), job.side, pairs, job.hidden);
  RegionsOutcome out;
  out.mode = RegionMode::rgn;
  out.chosen_size = sizes;
  out.phases = inp.phases;
  out.unet_rows = inp.unet_rows;
  out.searched.assign(sizes.size(), std::vector<bool>(job.boxes.empty() ? 0 : job.boxes[0].size(), false));
  for (const Pair& p : pairs) out.searched[p.anchor][p.size] = true;
  return ChosenRegions{std::move(inp.work), std::move(inp.images), std::move(inp.boxes_px), std::move(out)};
}

ChosenRegions search(const RegionJob& job) {
  Stages& st = job.stages;
  const EditConfig& cfg = st.config();
  const int64_t k = static_cast<int64_t>(job.boxes.size()), m = k ? static_cast<int64_t>(job.boxes[0].size()) : 0;
  const std::vector<Pair> pairs = all_pairs(k, m);
  ClipScorer scorer(st, job.prompt, job.source_caption);
  std::vector<int> steps;
  if (cfg.prune && m > 1) steps = prune_steps(schedule_length(st.bundle(), cfg), cfg.prune_fractions);
  std::vector<ojson> phase_totals;
  const Pruner pruner = [&](int, const std::vector<int64_t>& live, const std::vector<Image>& images, const Image& work) {
    const LossTerms terms = scorer(images, work);
    st.lap("prune_score");
    const std::vector<Pair> alive = pick(pairs, live);
    phase_totals.push_back(table(k, m, alive, std::vector<ojson>(terms.total.begin(), terms.total.end())));
    return keep_best(alive, terms.total, cfg.prune_keep);
  };
  Inpainted inp = inpaint_rows(st, job.image, pair_boxes(job, pairs), job.side, pairs, job.hidden, steps, pruner);
  const LossTerms terms = scorer(inp.images, inp.work);
  st.lap("score");

  std::vector<double> total(pairs.size(), std::numeric_limits<double>::infinity());
  std::vector<ojson> entries;
  for (size_t i = 0; i < inp.live.size(); ++i) {
    total[static_cast<size_t>(inp.live[i])] = terms.total[i];
    entries.push_back(terms.entry(i));
  }
  RegionsOutcome out;
  out.mode = RegionMode::search;
  out.losses = table(k, m, pick(pairs, inp.live), entries);
  out.phases = inp.phases;
  for (size_t i = 0; i < phase_totals.size(); ++i) out.phases[i]["losses"] = phase_totals[i];
  out.unet_rows = inp.unet_rows;
  out.searched.assign(static_cast<size_t>(k), std::vector<bool>(static_cast<size_t>(m), true));
  out.notes = scorer.notes;
  ChosenRegions chosen{inp.work, {}, {}, {}};
  for (int64_t a = 0; a < k; ++a) {  // the first minimum: ties go to the smaller size
    const auto row = total.begin() + a * m;
    const int64_t s = std::min_element(row, row + m) - row;
    out.chosen_size.push_back(s);
    const auto at = std::find(inp.live.begin(), inp.live.end(), a * m + s);
    if (at == inp.live.end()) throw Error(Status::internal, "search chose a pair that was pruned");
    chosen.images.push_back(inp.images[static_cast<size_t>(at - inp.live.begin())]);
    chosen.boxes_px.push_back(inp.boxes_px[static_cast<size_t>(a * m + s)]);
  }
  chosen.outcome = std::move(out);
  return chosen;
}

}  // namespace lredit
