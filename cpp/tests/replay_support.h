// Driving the C++ edit from a graph-io dump: the recorded image and config, the ReplayRunner.
#pragma once

#include <string>

#include "npy.h"
#include "pipeline.h"
#include "replay_runner.h"

namespace lredit::testing {

inline Image recorded_image(const std::string& dump, const nlohmann::ordered_json& index) {
  const Tensor t = npy::read(dump + "/" + index.at("image").get<std::string>());
  Image img{static_cast<int>(t.shape.at(1)), static_cast<int>(t.shape.at(0)), 3, {}};
  for (int64_t v : t.i64) img.pixels.push_back(static_cast<uint8_t>(v));
  return img;
}

inline EditConfig recorded_config(const nlohmann::ordered_json& index) {
  const auto& c = index.at("config");
  if (!c.value("inpaint_original", true) || c.value("rgn_sampling", std::string("argmax")) != "argmax" ||
      (c.contains("regions") && c["regions"].is_string() && c["regions"].get<std::string>() == "learn"))
    throw std::runtime_error("the recorded edit uses inpaint_original=False, Gumbel sampling or region mode learn, "
                             "which the C++ host does not have");
  EditConfig cfg;
  if (c.contains("regions") && c["regions"].is_string())
    cfg.regions = c["regions"].get<std::string>() == "rgn" ? RegionMode::rgn : RegionMode::search;
  cfg.prune = c.value("prune", true);
  cfg.prune_fractions = c.value("prune_fractions", std::vector<double>{0.2, 0.3, 0.6});
  cfg.prune_keep = c.value("prune_keep", 0.5);
  cfg.max_unet_batch = c.value("max_unet_batch", 0);
  if (index.contains("source_caption") && index["source_caption"].is_string()) cfg.source_caption = index["source_caption"].get<std::string>();
  cfg.anchors = c.at("anchors").get<int>();
  cfg.steps = c.at("steps").get<int>();
  cfg.guidance = c.at("guidance").get<float>();
  cfg.scheduler = c.at("scheduler").get<std::string>();
  cfg.seed = c.at("seed").get<uint64_t>();
  cfg.paste_back = c.at("paste_back").get<bool>();
  cfg.distinct_anchors = c.at("distinct_anchors").get<bool>();
  cfg.max_window = c.value("max_window", 15);
  cfg.anchor_spacing = c.value("anchor_spacing", 0);
  cfg.fix_anchor_axes = c.at("fix_anchor_axes").get<bool>();
  cfg.fix_roi_scale = c.at("fix_roi_scale").get<bool>();
  cfg.fix_rgn_layout = c.at("fix_rgn_layout").get<bool>();
  cfg.dino_imagenet_norm = c.at("dino_imagenet_norm").get<bool>();
  cfg.rank_alpha = c.at("rank_alpha").get<double>();
  cfg.rank_beta = c.at("rank_beta").get<double>();
  cfg.rank_softmax = c.at("rank_softmax").get<bool>();
  cfg.rank_top_t2i = c.at("rank_top_t2i").get<int>();
  cfg.prompt_template = c.at("prompt_template").get<std::string>();
  cfg.negative_prompt = c.at("negative_prompt").get<std::string>();
  return cfg;
}

}  // namespace lredit::testing

#include <cstring>

#include "lredit/lredit.h"

namespace lredit::testing {

// A C runner table over a ReplayRunner, as an application would write one over its own stack.
inline int replay_run(void* user, const char* graph, const lredit_tensor_view* inputs, size_t n, lredit_outputs* outputs,
                      char* message, size_t message_size) {
  try {
    TensorMap feeds;
    for (size_t i = 0; i < n; ++i) {
      Tensor t;
      t.shape.assign(inputs[i].shape, inputs[i].shape + inputs[i].ndim);
      const size_t count = numel_of(t.shape);
      if (inputs[i].dtype == LREDIT_DTYPE_F32) {
        const float* d = static_cast<const float*>(inputs[i].data);
        t.f32.assign(d, d + count);
      } else {
        t.dtype = DType::i64;
        const int64_t* d = static_cast<const int64_t*>(inputs[i].data);
        t.i64.assign(d, d + count);
      }
      feeds[inputs[i].name] = std::move(t);
    }
    for (const auto& [name, t] : static_cast<ReplayRunner*>(user)->run(graph, feeds))
      if (lredit_outputs_put(outputs, name.c_str(), t.dtype == DType::f32 ? LREDIT_DTYPE_F32 : LREDIT_DTYPE_I64, t.shape.size(),
                             t.shape.data(), t.data()) != LREDIT_OK)
        throw std::runtime_error("lredit_outputs_put refused " + name);
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(message, message_size, "%s", e.what());
    return 1;
  }
}

inline lredit_runner replay_table(ReplayRunner* runner) {
  return lredit_runner{runner, replay_run, [](void* user) { delete static_cast<ReplayRunner*>(user); }};
}

inline lredit_options recorded_options(const nlohmann::ordered_json& index) {
  const EditConfig c = recorded_config(index);
  lredit_options o;
  lredit_options_default(&o);
  o.anchors = c.anchors;
  o.steps = c.steps;
  o.guidance = c.guidance;
  o.seed = c.seed;
  o.paste_back = c.paste_back;
  o.distinct_anchors = c.distinct_anchors;
  o.max_window = c.max_window;
  o.anchor_spacing = c.anchor_spacing;
  const char* names[] = {"model", "pndm", "ddim", "euler", "dpmpp_2m"};
  for (int i = 0; i < 5; ++i)
    if (c.scheduler == names[i]) o.scheduler = static_cast<lredit_scheduler>(i);
  o.region_mode = c.regions ? static_cast<lredit_region_mode>(*c.regions) : LREDIT_REGION_DEFAULT;
  o.prune = c.prune;
  o.num_prune_fractions = static_cast<int32_t>(c.prune_fractions.size());
  for (size_t i = 0; i < c.prune_fractions.size() && i < LREDIT_MAX_PRUNE_FRACTIONS; ++i) o.prune_fractions[i] = c.prune_fractions[i];
  o.prune_keep = c.prune_keep;
  o.max_unet_batch = c.max_unet_batch;
  o.source_caption = index.contains("source_caption") && index["source_caption"].is_string()
                         ? index["source_caption"].get_ref<const std::string&>().c_str()
                         : nullptr;
  return o;
}

}  // namespace lredit::testing
