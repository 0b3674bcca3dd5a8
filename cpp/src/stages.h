// One edit's running state shared by the pipeline's stages: graph calls through the runner (their
// time kept apart from the host's, every output checked for NaN/Inf), chunked calls for batches
// above a graph's profile (engine/ops/batching.py run_in_chunks), tokenizers, noise and timers.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "bundle.h"
#include "pipeline.h"
#include "runner.h"

namespace lredit {

class Stages {
 public:
  using Clock = std::chrono::steady_clock;

  Stages(Runner& runner, const Bundle& bundle, const EditConfig& cfg) : runner_(runner), bundle_(bundle), cfg_(cfg) {}

  // Run `graph`; each name in `outputs` must come back as finite float32.
  TensorMap run(const std::string& graph, const TensorMap& feeds, const std::vector<std::string>& outputs);
  // run() with every feed split along axis 0 into chunks of at most the graph's profile batch,
  // the `outputs` concatenated along axis 0 (one call when the rows fit).
  TensorMap run_chunked(const std::string& graph, const TensorMap& feeds, const std::vector<std::string>& outputs);

  bridge::Tokens tokens(const std::string& which, const std::string& text) const;
  std::vector<float> noise(int64_t anchor, int64_t size, size_t count) const;

  // Add the time since the last lap (or construction) to stage `name`.
  void lap(const std::string& name);
  const Bundle& bundle() const { return bundle_; }
  const EditConfig& config() const { return cfg_; }

  std::map<std::string, double> timings_ms;
  double graph_ms = 0.0;

 private:
  Runner& runner_;
  const Bundle& bundle_;
  const EditConfig& cfg_;
  Clock::time_point lap_start_ = Clock::now();
};

// A one-input feed, the tensor moved in (an initializer list would copy it).
TensorMap one_feed(const char* name, Tensor t);
Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows);
std::string fill_template(const std::string& tmpl, const std::string& prompt);
void expect_shape(const std::string& what, const Tensor& t, const std::vector<int64_t>& shape);
// Rows [lo, hi) of a batch-first tensor.
Tensor slice_rows(const Tensor& t, int64_t lo, int64_t hi);

}  // namespace lredit
