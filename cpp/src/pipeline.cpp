#include "pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "errors.h"
#include "schedulers.h"

namespace lredit {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) { return std::chrono::duration<double, std::milli>(Clock::now() - start).count(); }

// One edit's running state: the runner (its time kept apart from the host's) and the timers.
class Stages {
 public:
  Stages(Runner& runner, const Bundle& bundle, const EditConfig& cfg) : runner_(runner), bundle_(bundle), cfg_(cfg) {}

  TensorMap run(const std::string& graph, const TensorMap& feeds, const std::vector<std::string>& outputs) {
    const auto start = Clock::now();
    TensorMap out = runner_.run(graph, feeds);
    graph_ms_ += ms_since(start);
    for (const auto& name : outputs) {
      auto it = out.find(name);
      if (it == out.end()) throw Error(Status::runner, "graph " + graph + " returned no output '" + name + "'");
      if (it->second.dtype != DType::f32 || it->second.f32.size() != it->second.numel())
        throw Error(Status::runner, "graph " + graph + " output '" + name + "' is " + it->second.describe() + ", float32 expected");
      size_t bad = 0;
      for (float v : it->second.f32) bad += !std::isfinite(v);
      if (bad)
        throw Error(Status::numerical, "stage '" + graph + "' produced " + std::to_string(bad) + " NaN/Inf values in '" + name +
                                           "'; with fp16 graphs this is overflow: use an fp32 bundle (lr-export --precision fp32) for that graph");
    }
    return out;
  }

  bridge::Tokens tokens(const std::string& which, const std::string& text) const {
    return (which == "clip" ? bundle_.clip_tokenizer : bundle_.sd_tokenizer)->encode(text);
  }

  std::vector<float> noise(int64_t anchor, int64_t size, size_t count) const {
    return bridge::initial_noise(cfg_.seed, anchor, size, count);
  }

  double graph_ms_ = 0.0;

 private:
  Runner& runner_;
  const Bundle& bundle_;
  const EditConfig& cfg_;
};

void expect_shape(const std::string& what, const Tensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) {
    Tensor want;
    want.shape = shape;
    throw Error(Status::runner, what + " is " + t.describe() + ", expected " + want.describe());
  }
}

std::string fill_template(const std::string& tmpl, const std::string& prompt) {
  std::string out = tmpl;
  const std::string key = "{prompt}";
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + prompt.size())) out.replace(at, key.size(), prompt);
  return out;
}

// A one-input feed, the tensor moved in (an initializer list would copy it).
TensorMap one(const char* name, Tensor t) {
  TensorMap m;
  m.emplace(name, std::move(t));
  return m;
}

Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::ints({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.at(0).size())}, flat);
}

}  // namespace

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
  if (!problems.empty()) {
    std::string msg = "invalid edit config: ";
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    throw Error(Status::invalid_argument, msg);
  }
  if (cfg.anchors > g.max_candidates)
    throw Error(Status::invalid_argument, "anchors=" + std::to_string(cfg.anchors) + ": this bundle's graphs take at most " +
                                              std::to_string(g.max_candidates) + " candidates");
  if (cfg.region_mode != RegionMode::rgn)
    throw Error(Status::invalid_argument, "region mode 'search' is not in the C++ host yet; use region mode rgn");
}

Pipeline::Pipeline(std::shared_ptr<const Bundle> bundle, std::shared_ptr<Runner> runner)
    : bundle_(std::move(bundle)), runner_(std::move(runner)) {}

EditResult Pipeline::edit(const Image& img, const std::string& prompt, const EditConfig& cfg) {
  const Geometry& g = bundle_->geometry;
  EditResult r;
  r.config = cfg;
  r.prompt = prompt;
  Stages st(*runner_, *bundle_, cfg);
  auto t0 = Clock::now();
  auto lap = [&](const char* name) {
    r.timings_ms[name] += ms_since(t0);
    t0 = Clock::now();
  };
  validate(cfg, prompt, g);
  check_size(img.width, img.height);
  lap("validate");

  // 1 saliency
  TensorMap dino = st.run("dino", one("pixels", dino_pixels(img, g.dino_size, cfg.dino_imagenet_norm)), {"features", "saliency"});
  const Tensor& features = dino["features"];
  const int64_t patches = features.shape.size() == 3 ? features.shape[1] : 0;
  const int side = static_cast<int>(std::lround(std::sqrt(static_cast<double>(patches))));
  if (patches == 0 || static_cast<int64_t>(side) * side != patches)
    throw Error(Status::runner, "DINO returned " + std::to_string(patches) + " patch tokens; a square grid was expected");
  r.rows = r.cols = side;
  lap("dino");

  // 2 anchors
  const std::vector<float> saliency(dino["saliency"].f32.begin(), dino["saliency"].f32.begin() + patches);
  r.anchors = select_anchors(cumulative_saliency(saliency), side, side, cfg.anchors, cfg.distinct_anchors, cfg.max_window,
                             cfg.anchor_spacing);
  lap("anchors");

  // 3 proposals + ROI pool
  r.boxes_cells = proposal_boxes(r.anchors, g.half_sizes, side, side, cfg.fix_anchor_axes);
  PoolSpec spec;
  spec.out_size = g.roi_size;
  spec.spatial_scale = cfg.fix_roi_scale ? 1.0 : 0.125;
  spec.anchor_layout = cfg.fix_rgn_layout;
  Tensor tokens = std::move(dino["features"]);
  tokens.shape = {patches, tokens.shape[2]};
  Tensor pooled = pool_proposals(tokens, side, side, r.boxes_cells, bundle_->projection_weight, bundle_->projection_bias, spec);
  lap("roi_pool");

  // 4 RGN argmax
  const int64_t k = cfg.anchors, m = static_cast<int64_t>(g.half_sizes.size());
  TensorMap rgn = st.run("rgn", one("pooled", std::move(pooled)), {"log_probs"});
  expect_shape("rgn log_probs", rgn["log_probs"], {k, m});
  for (int64_t a = 0; a < k; ++a) {
    const float* row = &rgn["log_probs"].f32[a * m];
    r.size_index.push_back(std::max_element(row, row + m) - row);
    std::vector<double> p;
    for (int64_t j = 0; j < m; ++j) p.push_back(std::exp(static_cast<double>(row[j])));
    r.probabilities.push_back(p);
  }
  lap("rgn");

  // 5 masks at pixel and latent resolution
  const int s = g.working_size, f = g.vae_scale_factor, h = s / f;
  r.source = square_crop(img, s);
  std::vector<std::vector<float>> masks;
  for (int64_t a = 0; a < k; ++a) {
    r.boxes_px.push_back(cell_box_to_pixels(r.boxes_cells[a][r.size_index[a]], side, side, s));
    masks.push_back(box_mask(r.boxes_px.back(), s));
  }
  lap("masks");

  // 6 text: [uncond, cond] hidden states
  const bridge::Tokens cond = st.tokens("sd", fill_template(cfg.prompt_template, prompt));
  if (cond.truncated)
    r.warnings.push_back("prompt has " + std::to_string(cond.token_count) + " tokens with its template; the text encoders take " +
                         std::to_string(cond.ids.size() - 2) + ", the rest was truncated");
  std::vector<std::vector<int64_t>> ids{cond.ids};
  if (cfg.do_guidance()) ids.insert(ids.begin(), st.tokens("sd", cfg.negative_prompt).ids);
  const int64_t rows_text = static_cast<int64_t>(ids.size());
  TensorMap text = st.run("sd_text", one("input_ids", ids_tensor(ids)), {"hidden_states"});
  const Tensor hidden = text["hidden_states"];
  if (hidden.shape.size() != 3 || hidden.shape[0] != rows_text) throw Error(Status::runner, "sd_text hidden_states is " + hidden.describe());
  lap("text");

  // 7 VAE encode of the masked images
  const std::vector<float> work = sd_pixels(r.source);
  const size_t plane = static_cast<size_t>(s) * s;
  Tensor masked = Tensor::floats({k, 3, s, s});
  for (int64_t a = 0; a < k; ++a)
    for (size_t c = 0; c < 3; ++c)
      for (size_t p = 0; p < plane; ++p)
        masked.f32[(a * 3 + c) * plane + p] = work[c * plane + p] * static_cast<float>(masks[a][p] < 0.5f);
  TensorMap enc = st.run("vae_encoder", one("images", std::move(masked)), {"latents"});
  const int64_t lc = g.latent_channels;
  expect_shape("vae_encoder latents", enc["latents"], {k, lc, h, h});
  lap("vae_encode");

  // 8 denoise: K candidates as one batch of 2K UNet rows with guidance
  auto sched = make_scheduler(cfg.scheduler, bundle_->scheduler_config, bundle_->alphas_cumprod);
  const std::vector<double> timesteps = sched->set_timesteps(cfg.steps);
  const size_t lat = static_cast<size_t>(lc) * h * h, hw = static_cast<size_t>(h) * h;
  Latents latents(static_cast<size_t>(k) * lat);
  const float sigma = static_cast<float>(sched->init_noise_sigma);
  for (int64_t a = 0; a < k; ++a) {
    const std::vector<float> n = st.noise(a, r.size_index[a], lat);
    if (n.size() != lat) throw Error(Status::internal, "initial noise has the wrong size");
    for (size_t i = 0; i < lat; ++i) latents[a * lat + i] = n[i] * sigma;
  }
  const int64_t reps = cfg.do_guidance() ? 2 : 1, rows = reps * k, ch = lc + 1 + lc;
  Tensor sample = Tensor::floats({rows, ch, h, h});
  for (int64_t row = 0; row < rows; ++row) {  // the constant channels: latent mask, masked latents
    const int64_t a = row % k;
    float* dst = &sample.f32[static_cast<size_t>(row * ch) * hw];
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < h; ++x) dst[lat + static_cast<size_t>(y) * h + x] = masks[a][static_cast<size_t>(y * f) * s + x * f];
    std::copy_n(&enc["latents"].f32[a * lat], lat, dst + lat + hw);
  }
  const int64_t tokens_len = hidden.shape[1], dim = hidden.shape[2];
  Tensor context = Tensor::floats({rows, tokens_len, dim});
  const size_t ctx = static_cast<size_t>(tokens_len * dim);
  for (int64_t row = 0; row < rows; ++row) std::copy_n(&hidden.f32[(row / k) * ctx], ctx, &context.f32[row * ctx]);
  lap("denoise_setup");
  TensorMap feeds{{"encoder_hidden_states", std::move(context)}};
  for (double t : timesteps) {
    Latents scaled = latents;
    sched->scale_model_input(scaled, t);
    for (int64_t row = 0; row < rows; ++row)
      std::copy_n(&scaled[(row % k) * lat], lat, &sample.f32[static_cast<size_t>(row * ch) * hw]);
    feeds["sample"] = sample;
    feeds["timestep"] = Tensor::floats({rows}, std::vector<float>(rows, static_cast<float>(t)));
    TensorMap out = st.run("unet", feeds, {"noise_pred"});
    const Tensor& eps = out["noise_pred"];
    expect_shape("unet noise_pred", eps, {rows, lc, h, h});
    Latents guided(eps.f32.begin(), eps.f32.begin() + static_cast<int64_t>(k * lat));
    if (cfg.do_guidance())
      for (size_t i = 0; i < guided.size(); ++i) guided[i] = guided[i] + cfg.guidance * (eps.f32[k * lat + i] - guided[i]);
    sched->step(guided, t, latents);
  }
  for (float v : latents)
    if (!std::isfinite(v)) throw Error(Status::numerical, "stage 'denoise' produced NaN/Inf values in 'latents'");
  lap("denoise");

  // 9 decode (+ paste-back)
  TensorMap dec = st.run("vae_decoder", one("latents", Tensor::floats({k, lc, h, h}, latents)), {"images"});
  expect_shape("vae_decoder images", dec["images"], {k, 3, s, s});
  r.candidates = sd_to_uint8(dec["images"]);
  if (cfg.paste_back)
    for (int64_t a = 0; a < k; ++a)
      for (size_t p = 0; p < plane; ++p)
        if (masks[a][p] < 0.5f)
          for (int c = 0; c < 3; ++c) r.candidates[a].pixels[p * 3 + c] = r.source.pixels[p * 3 + c];
  lap("vae_decode");

  // 10 rank
  std::vector<Image> all = r.candidates;
  all.push_back(r.source);
  TensorMap vis = st.run("clip_vision", one("pixels", clip_pixels(all, g.clip_image_size)), {"image_embeds"});
  const Tensor& embeds = vis["image_embeds"];
  if (embeds.shape.size() != 2 || embeds.shape[0] != k + 1) throw Error(Status::runner, "clip_vision image_embeds is " + embeds.describe());
  const bridge::Tokens clip_ids = st.tokens("clip", fill_template(cfg.prompt_template, prompt));
  TensorMap txt = st.run("clip_text", one("input_ids", ids_tensor({clip_ids.ids})), {"text_embeds"});
  const int64_t d = embeds.shape[1];
  expect_shape("clip_text text_embeds", txt["text_embeds"], {1, d});
  const std::vector<float> cand(embeds.f32.begin(), embeds.f32.begin() + k * d), src(embeds.f32.begin() + k * d, embeds.f32.end());
  r.scores = rank_candidates(cand, static_cast<int>(k), src, txt["text_embeds"].f32, cfg.rank_alpha, cfg.rank_beta, cfg.rank_softmax,
                             cfg.rank_top_t2i);
  r.chosen = r.scores.chosen;
  lap("rank");
  r.timings_ms["graph_ms"] = st.graph_ms_;
  return r;
}

}  // namespace lredit
