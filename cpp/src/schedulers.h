// The four schedulers' update rules in float32 over the manifest's tables (engine/schedulers.py):
// PNDM (PLMS), DDIM (eta 0), Euler (no churn), DPM-Solver++ 2M. Epsilon prediction only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lredit {

using Latents = std::vector<float>;

// `rows` of `x` (each `row_size` floats), in the order given.
Latents take_rows(const Latents& x, const std::vector<int64_t>& rows, size_t row_size);

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual std::vector<double> set_timesteps(int steps) = 0;
  virtual void scale_model_input(Latents& sample, double timestep) const;
  // sample <- one step of `sample` with noise prediction `eps` at `timestep`.
  virtual void step(const Latents& eps, double timestep, Latents& sample) = 0;
  // The clean-latent estimate at `timestep` from epsilon `eps` (what step forms inside), for
  // scoring partway through the schedule (Python's predict_x0).
  virtual Latents predict_x0(const Latents& eps, double timestep, const Latents& sample) const = 0;
  // Keep only `rows` (indices into the batch, each row `row_size` floats) of every per-row state
  // (PNDM's history, DPM-Solver's previous x0), as Python's select: the next step then runs on
  // that sub-batch exactly as if only those rows had run from the start.
  virtual void select(const std::vector<int64_t>& rows, size_t row_size);
  double init_noise_sigma = 1.0;
};

// `name`: model, pndm, ddim, euler or dpmpp_2m; config and alphas_cumprod from the manifest.
std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const nlohmann::ordered_json& config,
                                          const std::vector<float>& alphas_cumprod);

}  // namespace lredit
