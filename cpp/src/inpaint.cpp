#include "inpaint.h"

#include <algorithm>
#include <cmath>

#include "denoise.h"
#include "errors.h"
#include "schedulers.h"

namespace lredit {
namespace {

// VAE latents of the working image with each row's box blanked, [R, C, h, w].
std::vector<float> encode(Stages& st, const Image& work, const std::vector<std::vector<float>>& masks) {
  const Geometry& g = st.bundle().geometry;
  const int s = g.working_size, h = s / g.vae_scale_factor;
  const int64_t r = static_cast<int64_t>(masks.size());
  const std::vector<float> pixels = sd_pixels(work);
  const size_t plane = static_cast<size_t>(s) * s;
  Tensor masked = Tensor::floats({r, 3, s, s});
  for (int64_t a = 0; a < r; ++a)
    for (size_t c = 0; c < 3; ++c)
      for (size_t p = 0; p < plane; ++p)
        masked.f32[(a * 3 + c) * plane + p] = pixels[c * plane + p] * static_cast<float>(masks[a][p] < 0.5f);
  TensorMap enc = st.run_chunked("vae_encoder", one_feed("images", std::move(masked)), {"latents"});
  expect_shape("vae_encoder latents", enc["latents"], {r, g.latent_channels, h, h});
  return std::move(enc["latents"].f32);
}

DenoiseRows denoise_rows(Stages& st, const std::vector<Pair>& pairs, const std::vector<std::vector<float>>& masks,
                         std::vector<float> masked) {
  const Geometry& g = st.bundle().geometry;
  const int s = g.working_size, f = g.vae_scale_factor, h = s / f;
  DenoiseRows rows;
  rows.plane = static_cast<size_t>(h) * h;
  rows.latent = static_cast<size_t>(g.latent_channels) * rows.plane;
  rows.masked = std::move(masked);
  for (size_t i = 0; i < pairs.size(); ++i) {  // noise keyed by the pair; the mask at latent resolution ([::f, ::f])
    const std::vector<float> n = st.noise(pairs[i].anchor, pairs[i].size, rows.latent);
    rows.noise.insert(rows.noise.end(), n.begin(), n.end());
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < h; ++x) rows.mask.push_back(masks[i][static_cast<size_t>(y * f) * s + x * f]);
  }
  return rows;
}

// Decoded uint8 images of latents [n, C, h, w] (+ the source outside each mask with paste-back).
std::vector<Image> decode(Stages& st, const Latents& latents, const Image& work, const std::vector<std::vector<float>>& masks,
                          const std::vector<int64_t>& rows) {
  const Geometry& g = st.bundle().geometry;
  const int s = g.working_size, h = s / g.vae_scale_factor;
  const int64_t n = static_cast<int64_t>(rows.size());
  TensorMap dec = st.run_chunked("vae_decoder", one_feed("latents", Tensor::floats({n, g.latent_channels, h, h}, latents)), {"images"});
  expect_shape("vae_decoder images", dec["images"], {n, 3, s, s});
  std::vector<Image> images = sd_to_uint8(dec["images"]);
  if (st.config().paste_back)
    for (int64_t i = 0; i < n; ++i)
      for (size_t p = 0; p < static_cast<size_t>(s) * s; ++p)
        if (masks[rows[i]][p] < 0.5f)
          for (int c = 0; c < 3; ++c) images[i].pixels[p * 3 + c] = work.pixels[p * 3 + c];
  return images;
}

void check_finite(const Latents& latents) {
  size_t bad = 0;
  for (float v : latents) bad += !std::isfinite(v);
  if (bad)
    throw Error(Status::numerical, "stage 'denoise' produced " + std::to_string(bad) + " NaN/Inf values in 'latents'; with fp16 graphs "
                                   "this is overflow: use an fp32 bundle (lr-export --precision fp32) for that graph");
}

int64_t unet_limit(const Stages& st) {  // the profile's UNet batch and the config's cap, the tighter one
  const auto it = st.bundle().batch_limits.find("unet");
  int64_t limit = it == st.bundle().batch_limits.end() ? 0 : it->second;
  const int64_t cap = st.config().max_unet_batch;
  if (cap > 0 && (limit == 0 || cap < limit)) limit = cap;
  return limit;
}

}  // namespace

int schedule_length(const Bundle& bundle, const EditConfig& cfg) {
  return static_cast<int>(make_scheduler(cfg.scheduler, bundle.scheduler_config, bundle.alphas_cumprod)->set_timesteps(cfg.steps).size());
}

Inpainted inpaint_rows(Stages& st, const Image& img, const std::vector<Box>& pair_boxes, int side, const std::vector<Pair>& pairs,
                       const Tensor& hidden, const std::vector<int>& prune_steps, const Pruner& prune) {
  const Bundle& b = st.bundle();
  const EditConfig& cfg = st.config();
  const Geometry& g = b.geometry;
  Inpainted inp;
  inp.work = square_crop(img, g.working_size);
  for (const Box& box : pair_boxes) {
    inp.boxes_px.push_back(cell_box_to_pixels(box, side, side, g.working_size));
    inp.masks.push_back(box_mask(inp.boxes_px.back(), g.working_size));
  }
  st.lap("masks");
  DenoiseRows rows = denoise_rows(st, pairs, inp.masks, encode(st, inp.work, inp.masks));
  st.lap("vae_encode");

  RowDenoiser den(st, make_scheduler(cfg.scheduler, b.scheduler_config, b.alphas_cumprod), cfg.steps, cfg.guidance, unet_limit(st),
                  hidden, g.latent_channels, g.working_size / g.vae_scale_factor);
  den.start(std::move(rows));
  for (size_t i = 0; i < pairs.size(); ++i) inp.live.push_back(static_cast<int64_t>(i));
  for (int step : prune_steps) {
    const int64_t before = den.unet_rows;
    const Latents x0 = den.run(step);
    st.lap("denoise");
    const std::vector<Image> images = decode(st, x0, inp.work, inp.masks, inp.live);
    st.lap("prune_decode");
    const std::vector<int64_t> keep = prune(step, inp.live, images, inp.work);
    inp.phases.push_back(ojson{{"step", step}, {"pairs_alive", inp.live.size()}, {"rows_run", den.unet_rows - before}});
    den.keep(keep);
    std::vector<int64_t> live;
    for (int64_t i : keep) live.push_back(inp.live.at(static_cast<size_t>(i)));
    inp.live = std::move(live);
  }
  const int64_t before = den.unet_rows;
  const Latents latents = den.run();
  inp.phases.push_back(ojson{{"step", den.total_steps()}, {"pairs_alive", inp.live.size()}, {"rows_run", den.unet_rows - before}});
  check_finite(latents);
  st.lap("denoise");
  inp.images = decode(st, latents, inp.work, inp.masks, inp.live);
  inp.unet_rows = den.unet_rows;
  st.lap("vae_decode");
  return inp;
}

}  // namespace lredit
