// ReplayRunner: serves the graph outputs that the Python runtime recorded with
// `lr-edit --dump-graph-io DIR` (index.json + one .npy per tensor), and compares every input the
// host feeds with the one Python fed. Everything is read into memory when it is opened, so a
// replayed graph costs no file I/O (the host-overhead benchmark relies on it).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "pipeline.h"
#include "runner.h"

namespace lredit {

struct InputComparison {
  std::string graph;
  int call = 0;  // index among this graph's calls
  std::string input;
  double max_abs_diff = 0.0;  // float inputs; int inputs: 0 if equal, else 1
  bool shape_equal = true;
};

struct GraphCall {
  std::string graph;
  TensorMap inputs, outputs;
};

class ReplayRunner : public Runner {
 public:
  explicit ReplayRunner(const std::string& dir, bool compare = true);
  TensorMap run(const std::string& graph, const TensorMap& inputs) override;
  std::string name() const override { return "replay"; }

  void rewind();  // serve the recording again from its first call
  const std::vector<InputComparison>& comparisons() const { return comparisons_; }
  const std::vector<GraphCall>& calls() const { return calls_; }
  const nlohmann::ordered_json& index() const { return index_; }

 private:
  std::string dir_;
  bool compare_;
  nlohmann::ordered_json index_;
  std::vector<GraphCall> calls_;
  std::map<std::string, std::vector<size_t>> by_graph_;
  std::map<std::string, size_t> cursor_;
  std::vector<InputComparison> comparisons_;
};

}  // namespace lredit
