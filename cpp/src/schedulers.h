// The four schedulers' update rules in float32 over the manifest's tables (engine/schedulers.py):
// PNDM (PLMS), DDIM (eta 0), Euler (no churn), DPM-Solver++ 2M. Epsilon prediction only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lredit {

using Latents = std::vector<float>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::vector<double> set_timesteps(int steps) = 0;
  virtual void scale_model_input(Latents& sample, double timestep) const;
  // sample <- one step of `sample` with noise prediction `eps` at `timestep`.
  virtual void step(const Latents& eps, double timestep, Latents& sample) = 0;
  double init_noise_sigma = 1.0;
};

// `name`: model, pndm, ddim, euler or dpmpp_2m; config and alphas_cumprod from the manifest.
std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const nlohmann::ordered_json& config,
                                          const std::vector<float>& alphas_cumprod);

}  // namespace lredit
