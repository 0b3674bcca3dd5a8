// An lr-export bundle read once into typed fields: manifest checks with the Python runtime's
// messages (engine/runtime.py), sha256 of every file, the projection, the scheduler tables.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tensor.h"
#include "text_bridge.h"

namespace lredit {

using ojson = nlohmann::ordered_json;

inline constexpr int kFormatVersion = 1;  // export/bundle.py FORMAT_VERSION
inline const std::vector<std::string> kGraphNames = {"dino", "rgn", "clip_text", "clip_vision",
                                                     "sd_text", "unet", "vae_encoder", "vae_decoder"};

struct Geometry {
  int working_size = 0;
  int dino_size = 0;
  int roi_size = 0;
  int proj_channels = 0;
  int latent_channels = 4;
  int vae_scale_factor = 8;
  int clip_image_size = 224;
  int max_candidates = 16;
  std::vector<int> half_sizes;
};

struct Bundle {
  std::string dir;      // as Python prints Path(bundle)
  ojson manifest;
  Geometry geometry;
  ojson scheduler_config;
  std::vector<float> alphas_cumprod;
  Tensor projection_weight;  // [c, d]
  Tensor projection_bias;    // [c]
  bool random_weights = false;
  // Graph -> largest leading-axis batch of its profile (graphs with a dynamic first axis):
  // larger batches run in chunks (engine/ops/batching.py profile_batch_limits).
  std::map<std::string, int64_t> batch_limits;
  bool has_rgn_checkpoint = false;  // the RGN's weights came from a checkpoint, not the seeded initialisation
  bool clip_vision_tokens = false;  // clip_vision has the `tokens` output region search scores with
  std::shared_ptr<const bridge::Tokenizer> clip_tokenizer;
  std::shared_ptr<const bridge::Tokenizer> sd_tokenizer;
};

// Throws Error(Status::bundle, ...) with the Python runtime's message on any problem.
Bundle open_bundle(const std::string& dir, bool verify);

}  // namespace lredit
