#include "schedulers.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "errors.h"

namespace lredit {
namespace {

using json = nlohmann::ordered_json;

std::string show(const json& v) { return v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump(); }

class Base : public Scheduler {
 public:
  Base(const json& config, const std::vector<float>& alphas, const char* default_spacing, const char* name)
      : config_(config), alphas_(alphas), name_(name) {
    if (config.value("prediction_type", std::string("epsilon")) != "epsilon")
      throw Error(Status::bundle, "scheduler prediction_type " + show(config["prediction_type"]) + " is not supported (epsilon only)");
    train_steps_ = config.value("num_train_timesteps", 1000);
    final_alpha_ = config.value("set_alpha_to_one", false) ? 1.0f : alphas_.at(0);
    const json spacing = config.value("timestep_spacing", json());
    spacing_ = spacing.is_string() && !spacing.get<std::string>().empty() ? spacing.get<std::string>() : default_spacing;
    if (spacing_ != "leading" && spacing_ != "linspace" && spacing_ != "trailing")
      throw Error(Status::bundle, "timestep_spacing '" + spacing_ + "' is not supported (leading, linspace or trailing)");
  }

 protected:
  void check_steps(int steps) {
    if (steps < 1 || steps > train_steps_)
      throw Error(Status::invalid_argument, "steps=" + std::to_string(steps) + " must be between 1 and the scheduler's " +
                                                std::to_string(train_steps_) + " training steps");
    steps_ = steps;
  }
  std::vector<int64_t> leading(int steps) const {
    if (spacing_ != "leading")
      throw Error(Status::bundle, std::string(name_) + " supports timestep_spacing 'leading' only, not '" + spacing_ + "'");
    const int64_t ratio = train_steps_ / steps, offset = config_.value("steps_offset", 0);
    std::vector<int64_t> out;
    for (int i = 0; i < steps; ++i) out.push_back(i * ratio + offset);
    return out;
  }
  float alpha(int64_t t) const { return t >= 0 ? alphas_.at(static_cast<size_t>(t)) : final_alpha_; }

 public:
  Latents predict_x0(const Latents& eps, double timestep, const Latents& x) const override {
    const float a_t = alpha(static_cast<int64_t>(timestep));
    const float sb = std::pow(1.0f - a_t, 0.5f), sa = std::pow(a_t, 0.5f);
    Latents x0(x.size());
    for (size_t i = 0; i < x.size(); ++i) x0[i] = (x[i] - sb * eps[i]) / sa;
    return x0;
  }

 protected:

  json config_;
  std::vector<float> alphas_;
  const char* name_;
  int train_steps_ = 1000;
  float final_alpha_ = 1.0f;
  std::string spacing_;
  int steps_ = 0;
};

class Ddim : public Base {
 public:
  Ddim(const json& c, const std::vector<float>& a) : Base(c, a, "leading", "DDIMScheduler") {}
  std::vector<double> set_timesteps(int steps) override {
    check_steps(steps);
    std::vector<int64_t> ts = leading(steps);
    return {ts.rbegin(), ts.rend()};
  }
  void step(const Latents& eps, double timestep, Latents& x) override {
    const int64_t t = static_cast<int64_t>(timestep);
    const float a_t = alpha(t), a_prev = alpha(t - train_steps_ / steps_), b_t = 1.0f - a_t;
    const float sb = std::pow(b_t, 0.5f), sa = std::pow(a_t, 0.5f), sd = std::pow(1.0f - a_prev, 0.5f), sp = std::pow(a_prev, 0.5f);
    const bool clip = config_.value("clip_sample", false);
    const float r = config_.value("clip_sample_range", 1.0f);
    for (size_t i = 0; i < x.size(); ++i) {
      float x0 = (x[i] - sb * eps[i]) / sa;
      if (clip) x0 = std::min(std::max(x0, -r), r);
      x[i] = sp * x0 + sd * eps[i];
    }
  }
};

class Pndm : public Base {
 public:
  Pndm(const json& c, const std::vector<float>& a) : Base(c, a, "leading", "PNDMScheduler") {}
  std::vector<double> set_timesteps(int steps) override {
    if (!config_.value("skip_prk_steps", false))
      throw Error(Status::bundle, "PNDM with Runge-Kutta warm-up (skip_prk_steps=False) is not supported");
    check_steps(steps);
    std::vector<int64_t> base = leading(steps);
    std::vector<int64_t> ts(base.begin(), base.end() - 1);
    if (base.size() >= 2) ts.push_back(base[base.size() - 2]);
    ts.push_back(base.back());
    ets_.clear();
    counter_ = 0;
    cur_sample_.clear();
    return {ts.rbegin(), ts.rend()};
  }
  void step(const Latents& eps_in, double timestep, Latents& x) override {
    const int64_t ratio = train_steps_ / steps_;
    int64_t t = static_cast<int64_t>(timestep), prev_t = t - ratio;
    if (counter_ != 1) {
      if (ets_.size() > 3) ets_.erase(ets_.begin(), ets_.end() - 3);
      ets_.push_back(eps_in);
    } else {
      prev_t = t;
      t = t + ratio;
    }
    Latents eps(eps_in.size());
    const size_t n = eps.size(), e = ets_.size();
    if (e == 1 && counter_ == 0) {
      cur_sample_ = x;
      eps = eps_in;
    } else if (e == 1 && counter_ == 1) {
      for (size_t i = 0; i < n; ++i) eps[i] = (eps_in[i] + ets_[0][i]) / 2.0f;
      x = cur_sample_;
      cur_sample_.clear();
    } else if (e == 2) {
      for (size_t i = 0; i < n; ++i) eps[i] = (3.0f * ets_[1][i] - ets_[0][i]) / 2.0f;
    } else if (e == 3) {
      for (size_t i = 0; i < n; ++i) eps[i] = (23.0f * ets_[2][i] - 16.0f * ets_[1][i] + 5.0f * ets_[0][i]) / 12.0f;
    } else {
      const float c = static_cast<float>(1.0 / 24.0);
      for (size_t i = 0; i < n; ++i)
        eps[i] = c * (55.0f * ets_[3][i] - 59.0f * ets_[2][i] + 37.0f * ets_[1][i] - 9.0f * ets_[0][i]);
    }
    counter_ += 1;
    const float a_t = alpha(t), a_prev = alpha(prev_t), b_t = 1.0f - a_t, b_prev = 1.0f - a_prev;
    const float coeff = std::pow(a_prev / a_t, 0.5f);
    const float denom = a_t * std::pow(b_prev, 0.5f) + std::pow(a_t * b_t * a_prev, 0.5f);
    const float diff = a_prev - a_t;
    for (size_t i = 0; i < n; ++i) x[i] = coeff * x[i] - diff * eps[i] / denom;
  }
  void select(const std::vector<int64_t>& rows, size_t row_size) override {
    for (Latents& e : ets_) e = take_rows(e, rows, row_size);
    if (!cur_sample_.empty()) cur_sample_ = take_rows(cur_sample_, rows, row_size);
  }

 private:
  std::vector<Latents> ets_;
  int counter_ = 0;
  Latents cur_sample_;
};

// Sigma = sqrt((1 - a) / a), interpolated at the timesteps, ended by a zero sigma.
class SigmaBase : public Base {
 public:
  SigmaBase(const json& c, const std::vector<float>& a, const char* name) : Base(c, a, "linspace", name) {
    for (const char* key : {"use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "thresholding"})
      if (c.contains(key) && c[key].is_boolean() && c[key].get<bool>())
        throw Error(Status::bundle, std::string(name) + " with " + key + "=True is not supported");
    if (c.value("final_sigmas_type", std::string("zero")) != "zero")
      throw Error(Status::bundle, "final_sigmas_type " + show(c["final_sigmas_type"]) + " is not supported (zero only)");
  }

 protected:
  void set_sigmas() {
    std::vector<double> table(alphas_.size());
    for (size_t i = 0; i < table.size(); ++i) table[i] = std::sqrt((1.0f - alphas_[i]) / alphas_[i]);
    sigmas_.clear();
    for (double t : timesteps_) {  // np.interp over xp = 0..n-1
      const double last = static_cast<double>(table.size() - 1);
      double v;
      if (t >= last) v = table.back();
      else if (t <= 0) v = table[0];
      else {
        const size_t j = static_cast<size_t>(std::floor(t));
        v = (static_cast<double>(j) == t) ? table[j] : (table[j + 1] - table[j]) * (t - static_cast<double>(j)) + table[j];
      }
      sigmas_.push_back(static_cast<float>(v));
    }
    sigmas_.push_back(0.0f);
  }
  size_t index(double timestep) const {
    for (size_t i = 0; i < timesteps_.size(); ++i)
      if (timesteps_[i] == timestep) return i;
    throw Error(Status::invalid_argument, "timestep " + std::to_string(timestep) + " is not in this schedule");
  }
  std::vector<double> timesteps_;
  std::vector<float> sigmas_;
};

std::vector<double> linspace(double start, double stop, int num) {
  std::vector<double> y(num);
  const double step = num > 1 ? (stop - start) / (num - 1) : 0.0;
  for (int i = 0; i < num; ++i) y[i] = i * step + start;
  if (num > 1) y[num - 1] = stop;
  return y;
}

std::vector<double> trailing(int n, int steps) {  // np.arange(n, 0, -n / steps).round() - 1
  const double delta = -static_cast<double>(n) / steps;
  const int64_t len = static_cast<int64_t>(std::ceil((0.0 - n) / delta));
  std::vector<double> out;
  for (int64_t i = 0; i < len; ++i) out.push_back(std::nearbyint(n + i * delta) - 1.0);
  return out;
}

class Euler : public SigmaBase {
 public:
  Euler(const json& c, const std::vector<float>& a) : SigmaBase(c, a, "EulerDiscreteScheduler") {}
  std::vector<double> set_timesteps(int steps) override {
    check_steps(steps);
    timesteps_.clear();
    if (spacing_ == "linspace") {
      std::vector<double> ls = linspace(0, train_steps_ - 1, steps);
      for (auto it = ls.rbegin(); it != ls.rend(); ++it) timesteps_.push_back(static_cast<float>(*it));
    } else if (spacing_ == "leading") {
      std::vector<int64_t> ts = leading(steps);
      for (auto it = ts.rbegin(); it != ts.rend(); ++it) timesteps_.push_back(static_cast<float>(*it));
    } else {
      for (double t : trailing(train_steps_, steps)) timesteps_.push_back(static_cast<float>(t));
    }
    if (config_.value("interpolation_type", std::string("linear")) != "linear")
      throw Error(Status::bundle, "Euler interpolation_type " + show(config_["interpolation_type"]) + " is not supported");
    set_sigmas();
    const double top = *std::max_element(sigmas_.begin(), sigmas_.end());
    init_noise_sigma = (spacing_ == "linspace" || spacing_ == "trailing") ? top : std::sqrt(top * top + 1);
    return timesteps_;
  }
  void scale_model_input(Latents& x, double timestep) const override {
    const float s = sigmas_[index(timestep)];
    const float d = std::pow(std::pow(s, 2.0f) + 1.0f, 0.5f);
    for (float& v : x) v = v / d;
  }
  Latents predict_x0(const Latents& eps, double timestep, const Latents& x) const override {
    const float s = sigmas_[index(timestep)];
    Latents x0(x.size());
    for (size_t j = 0; j < x.size(); ++j) x0[j] = x[j] - s * eps[j];
    return x0;
  }
  void step(const Latents& eps, double timestep, Latents& x) override {
    const size_t i = index(timestep);
    const float s = sigmas_[i], dt = sigmas_[i + 1] - s;
    for (size_t j = 0; j < x.size(); ++j) {
      const float x0 = x[j] - s * eps[j];
      const float derivative = (x[j] - x0) / s;
      x[j] = x[j] + derivative * dt;
    }
  }
};

class DpmSolver : public SigmaBase {
 public:
  DpmSolver(const json& c, const std::vector<float>& a) : SigmaBase(c, a, "DPMSolverMultistepScheduler") {
    const std::vector<std::pair<const char*, json>> wanted = {
        {"algorithm_type", "dpmsolver++"}, {"solver_order", 2}, {"solver_type", "midpoint"}};
    for (const auto& [key, value] : wanted)
      if (c.contains(key) && c[key] != value)
        throw Error(Status::bundle, std::string("DPMSolverMultistepScheduler ") + key + "=" + show(c[key]) + " is not supported (" +
                                        show(value) + " only)");
    if (c.contains("lambda_min_clipped") && c["lambda_min_clipped"].is_number() &&
        std::isfinite(c["lambda_min_clipped"].get<double>()))
      throw Error(Status::bundle, "DPMSolverMultistepScheduler with lambda_min_clipped is not supported");
  }
  std::vector<double> set_timesteps(int steps) override {
    check_steps(steps);
    const int n = train_steps_;
    std::vector<double> ts;
    if (spacing_ == "linspace") {
      std::vector<double> ls = linspace(0, n - 1, steps + 1);
      for (int i = steps; i >= 1; --i) ts.push_back(std::nearbyint(ls[i]));
    } else if (spacing_ == "leading") {
      const int64_t ratio = n / (steps + 1), offset = config_.value("steps_offset", 0);
      for (int i = steps; i >= 1; --i) ts.push_back(static_cast<double>(i * ratio + offset));
    } else {
      ts = trailing(n, steps);
    }
    timesteps_.clear();
    for (double t : ts) timesteps_.push_back(static_cast<double>(static_cast<int64_t>(t)));
    set_sigmas();
    previous_.clear();
    lower_order_nums_ = 0;
    return timesteps_;
  }
  void step(const Latents& eps, double timestep, Latents& x) override {
    const size_t i = index(timestep);
    const bool lower_final = i == timesteps_.size() - 1;
    float alpha_s0, sigma_s0, lambda_s0, alpha_t, sigma_t, lambda_t;
    asl(sigmas_[i], alpha_s0, sigma_s0, lambda_s0);
    asl(sigmas_[i + 1], alpha_t, sigma_t, lambda_t);
    const float h = lambda_t - lambda_s0, decay = std::exp(-h) - 1.0f;
    const float ratio = sigma_t / sigma_s0, ad = alpha_t * decay;
    Latents x0(x.size());
    for (size_t j = 0; j < x.size(); ++j) x0[j] = (x[j] - sigma_s0 * eps[j]) / alpha_s0;
    if (lower_order_nums_ < 1 || lower_final) {
      for (size_t j = 0; j < x.size(); ++j) x[j] = ratio * x[j] - ad * x0[j];
    } else {
      float a1, s1, lambda_s1;
      asl(sigmas_[i - 1], a1, s1, lambda_s1);
      const float r0 = (lambda_s0 - lambda_s1) / h, inv = 1.0f / r0, half = 0.5f * ad;
      for (size_t j = 0; j < x.size(); ++j) {
        const float d1 = inv * (x0[j] - previous_[j]);
        x[j] = ratio * x[j] - ad * x0[j] - half * d1;
      }
    }
    previous_ = std::move(x0);
    lower_order_nums_ = std::min(lower_order_nums_ + 1, 2);
  }
  Latents predict_x0(const Latents& eps, double timestep, const Latents& x) const override {
    float alpha, sigma, lambda;
    asl(sigmas_[index(timestep)], alpha, sigma, lambda);
    Latents x0(x.size());
    for (size_t j = 0; j < x.size(); ++j) x0[j] = (x[j] - sigma * eps[j]) / alpha;
    return x0;
  }
  void select(const std::vector<int64_t>& rows, size_t row_size) override {
    if (!previous_.empty()) previous_ = take_rows(previous_, rows, row_size);
  }

 private:
  static void asl(float sigma, float& alpha, float& sigma_t, float& lambda) {
    alpha = 1.0f / std::pow(std::pow(sigma, 2.0f) + 1.0f, 0.5f);
    sigma_t = sigma * alpha;
    lambda = std::log(alpha) - std::log(sigma_t);  // sigma 0: +inf, exp(-h) = 0
  }
  Latents previous_;
  int lower_order_nums_ = 0;
};

}  // namespace

void Scheduler::scale_model_input(Latents&, double) const {}

void Scheduler::select(const std::vector<int64_t>&, size_t) {}

Latents take_rows(const Latents& x, const std::vector<int64_t>& rows, size_t row_size) {
  Latents out;
  out.reserve(rows.size() * row_size);
  for (int64_t r : rows) {
    if (r < 0 || static_cast<size_t>(r + 1) * row_size > x.size()) throw Error(Status::internal, "row " + std::to_string(r) + " is outside the batch");
    out.insert(out.end(), x.begin() + static_cast<std::ptrdiff_t>(r * row_size), x.begin() + static_cast<std::ptrdiff_t>((r + 1) * row_size));
  }
  return out;
}

std::unique_ptr<Scheduler> make_scheduler(const std::string& name, const json& config, const std::vector<float>& alphas) {
  std::string cls;
  if (name == "model") cls = config.value("_class_name", std::string("PNDMScheduler"));
  else if (name == "pndm") cls = "PNDMScheduler";
  else if (name == "ddim") cls = "DDIMScheduler";
  else if (name == "euler") cls = "EulerDiscreteScheduler";
  else if (name == "dpmpp_2m") cls = "DPMSolverMultistepScheduler";
  json merged = config;
  if (cls == "PNDMScheduler") {
    merged["skip_prk_steps"] = true;
    return std::make_unique<Pndm>(merged, alphas);
  }
  if (cls == "DDIMScheduler") return std::make_unique<Ddim>(merged, alphas);
  if (cls == "EulerDiscreteScheduler") return std::make_unique<Euler>(merged, alphas);
  if (cls == "DPMSolverMultistepScheduler") {
    merged["algorithm_type"] = "dpmsolver++";
    merged["solver_order"] = 2;
    return std::make_unique<DpmSolver>(merged, alphas);
  }
  throw Error(Status::invalid_argument, "scheduler '" + name + "' (" + (cls.empty() ? "None" : cls) +
                                            ") is not available in the runtime; use one of ['model', 'pndm', 'ddim', 'euler', 'dpmpp_2m']");
}

}  // namespace lredit
