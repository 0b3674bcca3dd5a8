// lredit_edit BUNDLE IMAGE.png PROMPT OUT_DIR [options]: one edit with the C++ host, writing
// result.png, candidate_XX.png, overlay.png and report.json into OUT_DIR like lr-edit.
#include <cstring>
#include <filesystem>
#include <iostream>

#include "capi.h"
#include "errors.h"
#include "npy.h"
#include "png_io.h"
#include "replay_runner.h"
#include "report.h"

namespace fs = std::filesystem;
using namespace lredit;

namespace {

const char* kUsage =
    "usage: lredit_edit BUNDLE IMAGE.png PROMPT OUT_DIR [--replay DUMP] [--ort] [--trt] [--anchors K] [--steps N]\n"
    "       [--seed S] [--guidance G] [--scheduler model|pndm|ddim|euler|dpmpp_2m] [--paste-back] [--overwrite]\n"
    "       [--regions rgn|search] [--no-prune] [--source-caption TEXT] [--max-unet-batch N]\n";

struct Args {
  std::string bundle, image, prompt, out, replay, runner = "replay";
  EditConfig config;
  bool overwrite = false;
};

RegionMode parse_regions(const std::string& v) {
  if (v == "rgn") return RegionMode::rgn;
  if (v == "search") return RegionMode::search;
  if (v == "learn") return RegionMode::learn;  // refused by the pipeline, with what to do instead
  throw Error(Status::invalid_argument, "--regions " + v + ": expected rgn, search or learn\n" + kUsage);
}

Args parse(int argc, char** argv) {
  Args a;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(Status::invalid_argument, arg + " needs a value");
      return argv[++i];
    };
    auto number = [&](const std::string& v) -> long long {
      try {
        size_t used = 0;
        const long long n = std::stoll(v, &used);
        if (used == v.size()) return n;
      } catch (const std::exception&) {
      }
      throw Error(Status::invalid_argument, arg + " " + v + ": an integer was expected");
    };
    if (arg == "--replay") a.replay = value();
    else if (arg == "--ort") a.runner = "ort";
    else if (arg == "--trt") a.runner = "trt";
    else if (arg == "--anchors") a.config.anchors = static_cast<int>(number(value()));
    else if (arg == "--steps") a.config.steps = static_cast<int>(number(value()));
    else if (arg == "--seed") a.config.seed = static_cast<uint64_t>(number(value()));
    else if (arg == "--guidance") a.config.guidance = std::stof(value());
    else if (arg == "--scheduler") a.config.scheduler = value();
    else if (arg == "--paste-back") a.config.paste_back = true;
    else if (arg == "--overwrite") a.overwrite = true;
    else if (arg == "--regions") a.config.regions = parse_regions(value());
    else if (arg == "--no-prune") a.config.prune = false;
    else if (arg == "--source-caption") a.config.source_caption = value();
    else if (arg == "--max-unet-batch") a.config.max_unet_batch = static_cast<int>(number(value()));
    else if (arg.rfind("--", 0) == 0) throw Error(Status::invalid_argument, "unknown option " + arg + "\n" + kUsage);
    else positional.push_back(arg);
  }
  if (positional.size() != 4) throw Error(Status::invalid_argument, std::string("expected 4 arguments\n") + kUsage);
  a.bundle = positional[0], a.image = positional[1], a.prompt = positional[2], a.out = positional[3];
  return a;
}

std::shared_ptr<Runner> make_runner(const Args& a) {
  if (!a.replay.empty()) return std::make_shared<ReplayRunner>(a.replay, false);
#ifdef LREDIT_HAVE_ORT
  if (a.runner == "ort") return make_ort_runner(a.bundle, false);
#endif
#ifdef LREDIT_HAVE_TRT
  if (a.runner == "trt") return make_trt_runner(a.bundle);
#endif
  throw Error(Status::invalid_argument, "this build has no " + a.runner +
                                            " runner: pass --replay DUMP (a recording of lr-edit --dump-graph-io), or build with "
                                            "-DONNXRUNTIME_ROOT=... (--ort) or TensorRT (--trt)");
}

void check_out(const Args& a) {
  if (fs::exists(a.out) && !fs::is_directory(a.out)) throw Error(Status::io, "OUT_DIR " + a.out + " exists and is not a folder");
  if (fs::is_directory(a.out) && !a.overwrite)
    for (const auto& e : fs::directory_iterator(a.out)) {
      const std::string n = e.path().filename().string();
      if (n == "result.png" || n == "overlay.png" || n == "report.json" || n.rfind("candidate_", 0) == 0)
        throw Error(Status::io, "OUT_DIR " + a.out + " already holds lredit outputs (" + n + "); pass --overwrite or choose another folder");
    }
}

// The working image with every chosen box; the winner thick and green, the others red.
Image overlay(const EditResult& r) {
  Image img = r.source;
  auto draw = [&](const PixelBox& b, int width, uint8_t cr, uint8_t cg, uint8_t cb) {
    for (int64_t y = b[1]; y <= b[3]; ++y)
      for (int64_t x = b[0]; x <= b[2]; ++x) {
        const bool edge = x < b[0] + width || x > b[2] - width || y < b[1] + width || y > b[3] - width;
        if (!edge || x < 0 || y < 0 || x >= img.width || y >= img.height) continue;
        uint8_t* p = &img.pixels[(static_cast<size_t>(y) * img.width + x) * 3];
        p[0] = cr, p[1] = cg, p[2] = cb;
      }
  };
  for (size_t k = 0; k < r.boxes_px.size(); ++k)
    if (static_cast<int>(k) != r.chosen) draw(r.boxes_px[k], 2, 230, 40, 40);
  draw(r.boxes_px[r.chosen], 4, 20, 220, 60);
  return img;
}

void write_outputs(const Args& a, const EditResult& r, const Bundle& bundle, const std::string& backend) {
  fs::create_directories(a.out);
  const fs::path staging = fs::path(a.out) / ".lredit-staging-cpp";
  fs::remove_all(staging);
  fs::create_directories(staging);
  std::vector<std::string> names{"result.png", "overlay.png"};
  png::write((staging / "result.png").string(), r.candidates[r.chosen]);
  png::write((staging / "overlay.png").string(), overlay(r));
  for (size_t k = 0; k < r.candidates.size(); ++k) {
    const std::string name = std::string("candidate_") + (k < 10 ? "0" : "") + std::to_string(k) + ".png";
    png::write((staging / name).string(), r.candidates[k]);
    names.push_back(name);
  }
  npy::write_file_atomic((staging / "report.json").string(), build_report(r, bundle, a.image, backend).dump(2) + "\n");
  names.push_back("report.json");
  if (a.overwrite)
    for (const auto& e : fs::directory_iterator(a.out))
      if (e.path().filename().string().rfind("candidate_", 0) == 0) fs::remove(e.path());
  for (const auto& n : names) fs::rename(staging / n, fs::path(a.out) / n);
  fs::remove_all(staging);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    check_out(a);
    const Image image = png::read(a.image);
    validate(a.config, a.prompt, Geometry{0, 0, 0, 0, 4, 8, 224, 1 << 30, {1}});
    auto bundle = std::make_shared<const Bundle>(open_bundle(a.bundle, true));
    auto runner = make_runner(a);
    Pipeline pipeline(bundle, runner);
    const EditResult r = pipeline.edit(image, a.prompt, a.config);
    if (bundle->random_weights)
      std::cerr << "lredit_edit: the bundle's models have random weights: the output is a pipeline check, not a meaningful edit\n";
    write_outputs(a, r, *bundle, "cpp/" + runner->name());
    for (const auto& w : r.warnings) std::cerr << "lredit_edit: warning: " << w << "\n";
    std::cout << "lredit_edit: wrote " << a.out << "/result.png and report.json\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "lredit_edit: error: " << e.what() << "\n";
    return 2;
  }
}
