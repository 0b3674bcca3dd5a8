#include "replay_runner.h"

#include <cmath>
#include <filesystem>

#include "errors.h"
#include "npy.h"

namespace lredit {
namespace fs = std::filesystem;
namespace {

TensorMap read_tensors(const fs::path& dir, const nlohmann::ordered_json& files) {
  TensorMap out;
  for (const auto& [name, file] : files.items()) out[name] = npy::read((dir / file.get<std::string>()).string());
  return out;
}

InputComparison compare(const Tensor& got, const Tensor& want) {
  InputComparison c;
  c.shape_equal = got.shape == want.shape && got.dtype == want.dtype;
  if (!c.shape_equal) {
    c.max_abs_diff = INFINITY;
    return c;
  }
  if (got.dtype == DType::i64) {
    c.max_abs_diff = got.i64 == want.i64 ? 0.0 : 1.0;
    return c;
  }
  for (size_t i = 0; i < got.f32.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got.f32[i]) - want.f32[i]);
    if (!(d <= c.max_abs_diff)) c.max_abs_diff = std::isnan(d) ? INFINITY : d;
  }
  return c;
}

}  // namespace

ReplayRunner::ReplayRunner(const std::string& dir, bool compare) : dir_(dir), compare_(compare) {
  const fs::path root(dir);
  if (!fs::is_regular_file(root / "index.json"))
    throw Error(Status::io, "no index.json in " + dir + ": record one with lr-edit --dump-graph-io " + dir);
  index_ = nlohmann::ordered_json::parse(npy::read_file((root / "index.json").string()));
  if (index_.value("format", std::string()) != "lredit-graph-io" || index_.value("version", 0) != 1)
    throw Error(Status::io, dir + "/index.json is not an lredit graph-io dump of version 1");
  for (const auto& call : index_.at("calls")) {
    GraphCall gc{call.at("graph").get<std::string>(), read_tensors(root, call.at("inputs")), read_tensors(root, call.at("outputs"))};
    by_graph_[gc.graph].push_back(calls_.size());
    calls_.push_back(std::move(gc));
  }
}

void ReplayRunner::rewind() {
  cursor_.clear();
  comparisons_.clear();
}

TensorMap ReplayRunner::run(const std::string& graph, const TensorMap& inputs) {
  auto calls = by_graph_.find(graph);
  size_t& at = cursor_[graph];
  if (calls == by_graph_.end() || at >= calls->second.size())
    throw Error(Status::runner, "replay " + dir_ + " has no call " + std::to_string(at + 1) + " of graph " + graph);
  const GraphCall& call = calls_[calls->second[at]];
  if (compare_) {
    for (const auto& [name, want] : call.inputs) {
      auto got = inputs.find(name);
      if (got == inputs.end()) throw Error(Status::runner, "graph " + graph + " was fed no input '" + name + "'");
      InputComparison c = compare(got->second, want);
      c.graph = graph;
      c.call = static_cast<int>(at);
      c.input = name;
      comparisons_.push_back(c);
    }
    for (const auto& [name, t] : inputs)
      if (!call.inputs.count(name)) throw Error(Status::runner, "graph " + graph + " was fed an unknown input '" + name + "'");
  }
  ++at;
  return call.outputs;
}

}  // namespace lredit
