// lredit_bench_host BUNDLE DUMP [RUNS] [WARMUP]: the C++ host's overhead per edit with graph time
// excluded. The edit recorded in DUMP (lr-edit --dump-graph-io) is replayed RUNS times from
// memory; host time = edit time - time inside the runner, as wall time and as process CPU time
// (the CPU figure is the steadier one on a shared machine). Prints one JSON object.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>

#include "errors.h"
#include "replay_runner.h"
#include "../tests/replay_support.h"

using namespace lredit;

namespace {

double cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double wall_ms() { return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Keeps the time spent inside the replay runner, wall and CPU.
class TimedRunner : public Runner {
 public:
  explicit TimedRunner(std::shared_ptr<ReplayRunner> inner) : inner_(std::move(inner)) {}
  TensorMap run(const std::string& graph, const TensorMap& inputs) override {
    const double w = wall_ms(), c = cpu_ms();
    TensorMap out = inner_->run(graph, inputs);
    wall += wall_ms() - w;
    cpu += cpu_ms() - c;
    return out;
  }
  std::string name() const override { return "replay"; }
  double wall = 0, cpu = 0;

 private:
  std::shared_ptr<ReplayRunner> inner_;
};

nlohmann::json summary(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    const double pos = q * (v.size() - 1);
    const size_t lo = static_cast<size_t>(pos);
    return lo + 1 < v.size() ? v[lo] + (v[lo + 1] - v[lo]) * (pos - lo) : v[lo];
  };
  return {{"min", v.front()}, {"p50", at(0.5)}, {"p90", at(0.9)}, {"max", v.back()}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: lredit_bench_host BUNDLE DUMP [RUNS] [WARMUP]\n";
    return 2;
  }
  try {
    const int runs = argc > 3 ? std::stoi(argv[3]) : 5, warmup = argc > 4 ? std::stoi(argv[4]) : 1;
    if (runs < 1 || warmup < 0) throw Error(Status::invalid_argument, "RUNS must be >= 1 and WARMUP >= 0");
    auto bundle = std::make_shared<const Bundle>(open_bundle(argv[1], false));
    auto replay = std::make_shared<ReplayRunner>(argv[2], false);
    auto runner = std::make_shared<TimedRunner>(replay);
    const auto& index = replay->index();
    const Image image = testing::recorded_image(argv[2], index);
    const EditConfig cfg = testing::recorded_config(index);
    const std::string prompt = index.at("prompt").get<std::string>();
    Pipeline pipeline(bundle, runner);
    std::vector<double> host_wall, host_cpu, graph_wall;
    std::map<std::string, std::vector<double>> stages;
    int chosen = -1;
    for (int i = 0; i < warmup + runs; ++i) {
      replay->rewind();
      runner->wall = runner->cpu = 0;
      const double w = wall_ms(), c = cpu_ms();
      const EditResult r = pipeline.edit(image, prompt, cfg);
      const double total_wall = wall_ms() - w, total_cpu = cpu_ms() - c;
      chosen = r.chosen;
      if (i < warmup) continue;
      host_wall.push_back(total_wall - runner->wall);
      host_cpu.push_back(total_cpu - runner->cpu);
      graph_wall.push_back(runner->wall);
      for (const auto& [name, ms] : r.timings_ms) stages[name].push_back(ms);
    }
    nlohmann::json out{{"runs", runs},
                       {"warmup", warmup},
                       {"anchors", cfg.anchors},
                       {"steps", cfg.steps},
                       {"chosen", chosen},
                       {"tokenizer_and_noise", "C++"},
                       {"host_wall_ms", summary(host_wall)},
                       {"host_cpu_ms", summary(host_cpu)},
                       {"graph_wall_ms", summary(graph_wall)}};
    for (const auto& [name, values] : stages) out["stages_wall_ms_p50"][name] = summary(values)["p50"];
    std::cout << out.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lredit_bench_host: error: " << e.what() << "\n";
    return 2;
  }
}
