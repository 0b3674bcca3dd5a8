// The row-batched denoiser (engine/core/denoise.py): one row per (anchor, size) pair, each with its
// mask latent, masked-image latent and initial noise, one request's text context. With guidance
// each chunk of rows runs as one UNet call laid out [uncond rows, cond rows]; chunks hold at most
// max_batch UNet rows (the bundle's profile). The loop can stop at any step and hand out the x0
// prediction of the last step run, drop rows (the scheduler's per-row history is sliced with
// them) and continue.
#pragma once

#include <memory>
#include <vector>

#include "schedulers.h"
#include "stages.h"

namespace lredit {

struct DenoiseRows {
  size_t latent = 0;            // floats per latent row: C * h * w
  size_t plane = 0;             // h * w
  std::vector<float> mask;      // [R, 1, h, w], 1 = repaint
  std::vector<float> masked;    // [R, C, h, w] VAE latents of the masked images
  std::vector<float> noise;     // [R, C, h, w] initial noise per pair
  size_t rows() const { return plane ? mask.size() / plane : 0; }
};

class RowDenoiser {
 public:
  // hidden: [reps, T, D] (uncond, cond) with guidance, [1, T, D] without; max_batch 0 = no limit.
  RowDenoiser(Stages& stages, std::unique_ptr<Scheduler> scheduler, int steps, float guidance, int64_t max_batch,
              const Tensor& hidden, int latent_channels, int latent_side);
  void start(DenoiseRows rows);
  // Steps step_index..until-1; returns the x0 prediction of the last step run, or the final
  // latents when the schedule is done.
  Latents run(int until);
  Latents run() { return run(total_steps()); }
  void keep(const std::vector<int64_t>& rows);  // continue with these rows only (indices into the current rows)
  int total_steps() const { return static_cast<int>(timesteps_.size()); }
  int64_t unet_rows = 0;

 private:
  Latents guided_eps(double t);
  void chunk_eps(size_t lo, size_t n, double t, Latents& eps);
  const Tensor& context(size_t n);

  Stages& stages_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<double> timesteps_;
  float guidance_;
  int64_t reps_, max_batch_;
  const Tensor& hidden_;
  int channels_, side_;
  DenoiseRows rows_;
  Latents latents_;
  int step_index_ = 0;
  std::map<size_t, Tensor> contexts_;  // per chunk size: the same text rows every step
};

// Row slices [lo, lo + n) whose UNet batch (reps x rows) fits max_batch (0 = one chunk).
std::vector<std::pair<size_t, size_t>> chunk_rows(size_t rows, int64_t reps, int64_t max_batch);

}  // namespace lredit
