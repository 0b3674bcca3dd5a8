#include "stages.h"

#include <algorithm>
#include <cmath>

#include "errors.h"

namespace lredit {
namespace {

double ms_between(Stages::Clock::time_point a, Stages::Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

void append_rows(Tensor& into, const Tensor& part) {
  if (into.shape.empty()) {
    into = part;
    return;
  }
  into.shape[0] += part.shape.at(0);
  if (part.dtype == DType::f32) into.f32.insert(into.f32.end(), part.f32.begin(), part.f32.end());
  else into.i64.insert(into.i64.end(), part.i64.begin(), part.i64.end());
}

}  // namespace

TensorMap Stages::run(const std::string& graph, const TensorMap& feeds, const std::vector<std::string>& outputs) {
  const auto start = Clock::now();
  TensorMap out = runner_.run(graph, feeds);
  graph_ms += ms_between(start, Clock::now());
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

TensorMap Stages::run_chunked(const std::string& graph, const TensorMap& feeds, const std::vector<std::string>& outputs) {
  const auto limit = bundle_.batch_limits.find(graph);
  const int64_t rows = feeds.begin()->second.shape.at(0);
  if (limit == bundle_.batch_limits.end() || rows <= limit->second) return run(graph, feeds, outputs);
  TensorMap joined;
  for (int64_t lo = 0; lo < rows; lo += limit->second) {
    TensorMap part;
    for (const auto& [name, t] : feeds) part.emplace(name, slice_rows(t, lo, std::min(rows, lo + limit->second)));
    TensorMap out = run(graph, part, outputs);
    for (const auto& name : outputs) append_rows(joined[name], out[name]);
  }
  return joined;
}

bridge::Tokens Stages::tokens(const std::string& which, const std::string& text) const {
  return (which == "clip" ? bundle_.clip_tokenizer : bundle_.sd_tokenizer)->encode(text);
}

std::vector<float> Stages::noise(int64_t anchor, int64_t size, size_t count) const {
  std::vector<float> n = bridge::initial_noise(cfg_.seed, anchor, size, count);
  if (n.size() != count) throw Error(Status::internal, "initial noise has the wrong size");
  return n;
}

void Stages::lap(const std::string& name) {
  const auto now = Clock::now();
  timings_ms[name] += ms_between(lap_start_, now);
  lap_start_ = now;
}

TensorMap one_feed(const char* name, Tensor t) {
  TensorMap m;
  m.emplace(name, std::move(t));
  return m;
}

Tensor ids_tensor(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::ints({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows.at(0).size())}, flat);
}

std::string fill_template(const std::string& tmpl, const std::string& prompt) {
  std::string out = tmpl;
  const std::string key = "{prompt}";
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + prompt.size())) out.replace(at, key.size(), prompt);
  return out;
}

void expect_shape(const std::string& what, const Tensor& t, const std::vector<int64_t>& shape) {
  if (t.shape != shape) {
    Tensor want;
    want.shape = shape;
    throw Error(Status::runner, what + " is " + t.describe() + ", expected " + want.describe());
  }
}

Tensor slice_rows(const Tensor& t, int64_t lo, int64_t hi) {
  Tensor out;
  out.dtype = t.dtype;
  out.shape = t.shape;
  out.shape.at(0) = hi - lo;
  const size_t per = t.shape[0] ? t.numel() / static_cast<size_t>(t.shape[0]) : 0;
  const auto a = static_cast<std::ptrdiff_t>(static_cast<size_t>(lo) * per), b = static_cast<std::ptrdiff_t>(static_cast<size_t>(hi) * per);
  if (t.dtype == DType::f32) out.f32.assign(t.f32.begin() + a, t.f32.begin() + b);
  else out.i64.assign(t.i64.begin() + a, t.i64.begin() + b);
  return out;
}

}  // namespace lredit
