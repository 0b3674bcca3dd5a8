#include "denoise.h"

#include <algorithm>

#include "errors.h"

namespace lredit {

std::vector<std::pair<size_t, size_t>> chunk_rows(size_t rows, int64_t reps, int64_t max_batch) {
  if (max_batch > 0 && max_batch < reps)
    throw Error(Status::invalid_argument, "max UNet batch " + std::to_string(max_batch) + " cannot hold one row with guidance (" +
                                              std::to_string(reps) + " UNet rows)");
  const size_t per = max_batch > 0 ? static_cast<size_t>(std::max<int64_t>(1, max_batch / reps)) : std::max<size_t>(rows, 1);
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t lo = 0; lo < rows; lo += per) out.emplace_back(lo, std::min(per, rows - lo));
  return out;
}

RowDenoiser::RowDenoiser(Stages& stages, std::unique_ptr<Scheduler> scheduler, int steps, float guidance, int64_t max_batch,
                         const Tensor& hidden, int latent_channels, int latent_side)
    : stages_(stages),
      scheduler_(std::move(scheduler)),
      guidance_(guidance),
      reps_(guidance > 1.0f ? 2 : 1),
      max_batch_(max_batch),
      hidden_(hidden),
      channels_(latent_channels),
      side_(latent_side) {
  timesteps_ = scheduler_->set_timesteps(steps);
  if (hidden_.shape.size() != 3 || hidden_.shape[0] != reps_)
    throw Error(Status::internal, "text states " + hidden_.describe() + " do not match guidance (" + std::to_string(reps_) + " texts per row)");
}

void RowDenoiser::start(DenoiseRows rows) {
  rows_ = std::move(rows);
  const float sigma = static_cast<float>(scheduler_->init_noise_sigma);
  latents_.resize(rows_.noise.size());
  for (size_t i = 0; i < latents_.size(); ++i) latents_[i] = rows_.noise[i] * sigma;
  rows_.noise.clear();
  step_index_ = 0;
  unet_rows = 0;
}

void RowDenoiser::keep(const std::vector<int64_t>& rows) {
  rows_.mask = take_rows(rows_.mask, rows, rows_.plane);
  rows_.masked = take_rows(rows_.masked, rows, rows_.latent);
  latents_ = take_rows(latents_, rows, rows_.latent);
  scheduler_->select(rows, rows_.latent);
}

Latents RowDenoiser::run(int until) {
  if (until < step_index_ || until > total_steps())
    throw Error(Status::internal, "run(until=" + std::to_string(until) + ") outside steps " + std::to_string(step_index_) + ".." +
                                      std::to_string(total_steps()));
  Latents x0;
  while (step_index_ < until) {
    const double t = timesteps_[static_cast<size_t>(step_index_)];
    const Latents eps = guided_eps(t);
    if (step_index_ == until - 1 && until < total_steps()) x0 = scheduler_->predict_x0(eps, t, latents_);
    scheduler_->step(eps, t, latents_);
    ++step_index_;
  }
  return step_index_ == total_steps() ? latents_ : x0;
}

Latents RowDenoiser::guided_eps(double t) {
  Latents eps(latents_.size());
  for (const auto& [lo, n] : chunk_rows(rows_.rows(), reps_, max_batch_)) chunk_eps(lo, n, t, eps);
  return eps;
}

const Tensor& RowDenoiser::context(size_t n) {
  auto it = contexts_.find(n);
  if (it != contexts_.end()) return it->second;
  const int64_t tokens = hidden_.shape[1], dim = hidden_.shape[2];
  const size_t per = static_cast<size_t>(tokens * dim);
  Tensor c = Tensor::floats({reps_ * static_cast<int64_t>(n), tokens, dim});
  for (size_t row = 0; row < reps_ * n; ++row) std::copy_n(&hidden_.f32[(row / n) * per], per, &c.f32[row * per]);
  return contexts_.emplace(n, std::move(c)).first->second;
}

void RowDenoiser::chunk_eps(size_t lo, size_t n, double t, Latents& eps) {
  const size_t lat = rows_.latent, hw = rows_.plane, ch = lat + hw + lat;
  Latents scaled(latents_.begin() + static_cast<std::ptrdiff_t>(lo * lat), latents_.begin() + static_cast<std::ptrdiff_t>((lo + n) * lat));
  scheduler_->scale_model_input(scaled, t);
  const int64_t batch = reps_ * static_cast<int64_t>(n);
  Tensor sample = Tensor::floats({batch, channels_ + 1 + channels_, side_, side_});
  for (size_t row = 0; row < static_cast<size_t>(batch); ++row) {  // [scaled latents, mask, masked latents] per row
    const size_t r = row % n;
    float* dst = &sample.f32[row * ch];
    std::copy_n(&scaled[r * lat], lat, dst);
    std::copy_n(&rows_.mask[(lo + r) * hw], hw, dst + lat);
    std::copy_n(&rows_.masked[(lo + r) * lat], lat, dst + lat + hw);
  }
  TensorMap feeds;
  feeds.emplace("sample", std::move(sample));
  feeds.emplace("timestep", Tensor::floats({batch}, std::vector<float>(static_cast<size_t>(batch), static_cast<float>(t))));
  feeds.emplace("encoder_hidden_states", context(n));
  TensorMap out = stages_.run("unet", feeds, {"noise_pred"});
  const Tensor& pred = out["noise_pred"];
  expect_shape("unet noise_pred", pred, {batch, channels_, side_, side_});
  unet_rows += batch;
  float* dst = &eps[lo * lat];
  const size_t count = n * lat;
  if (reps_ == 1) {
    std::copy_n(pred.f32.data(), count, dst);
    return;
  }
  for (size_t i = 0; i < count; ++i) dst[i] = pred.f32[i] + guidance_ * (pred.f32[count + i] - pred.f32[i]);
}

}  // namespace lredit
