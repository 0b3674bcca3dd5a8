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
  EditConfig cfg;
  cfg.anchors = c.at("anchors").get<int>();
  cfg.steps = c.at("steps").get<int>();
  cfg.guidance = c.at("guidance").get<float>();
  cfg.scheduler = c.at("scheduler").get<std::string>();
  cfg.seed = c.at("seed").get<uint64_t>();
  cfg.paste_back = c.at("paste_back").get<bool>();
  cfg.distinct_anchors = c.at("distinct_anchors").get<bool>();
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
