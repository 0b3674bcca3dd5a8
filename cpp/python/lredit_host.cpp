// lredit_host: the C++ host as a Python module (nanobind), with PyRunner: a runner whose graphs
// run in a Python callable, e.g. the Python runtime's ONNX Runtime sessions. For tests that hold
// the C++ orchestration to Editor.edit on live graphs.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "errors.h"
#include "pipeline.h"
#include "regions.h"
#include "replay_runner.h"
#include "report.h"

namespace nb = nanobind;
using namespace lredit;

namespace {

template <typename T>
nb::ndarray<nb::numpy, T> to_numpy(std::vector<T> data, const std::vector<int64_t>& shape) {
  auto* owned = new std::vector<T>(std::move(data));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  std::vector<size_t> dims(shape.begin(), shape.end());
  return nb::ndarray<nb::numpy, T>(owned->data(), dims.size(), dims.data(), owner);
}

nb::object tensor_to_numpy(const Tensor& t) {
  if (t.dtype == DType::f32) return nb::cast(to_numpy<float>(t.f32, t.shape));
  return nb::cast(to_numpy<int64_t>(t.i64, t.shape));
}

Tensor tensor_from_numpy(const std::string& what, nb::handle value) {
  Tensor t;
  if (nb::isinstance<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>(value)) {
    auto a = nb::cast<nb::ndarray<const float, nb::c_contig, nb::device::cpu>>(value);
    for (size_t i = 0; i < a.ndim(); ++i) t.shape.push_back(static_cast<int64_t>(a.shape(i)));
    t.f32.assign(a.data(), a.data() + a.size());
    return t;
  }
  if (nb::isinstance<nb::ndarray<const int64_t, nb::c_contig, nb::device::cpu>>(value)) {
    auto a = nb::cast<nb::ndarray<const int64_t, nb::c_contig, nb::device::cpu>>(value);
    t.dtype = DType::i64;
    for (size_t i = 0; i < a.ndim(); ++i) t.shape.push_back(static_cast<int64_t>(a.shape(i)));
    t.i64.assign(a.data(), a.data() + a.size());
    return t;
  }
  throw Error(Status::runner, what + " is not a C-contiguous float32 or int64 numpy array");
}

// Graphs run by a Python callable run(graph: str, feeds: dict[str, ndarray]) -> dict[str, ndarray].
class PyRunner : public Runner {
 public:
  explicit PyRunner(nb::callable fn) : fn_(std::move(fn)) {}
  std::string name() const override { return "python"; }
  TensorMap run(const std::string& graph, const TensorMap& inputs) override {
    nb::gil_scoped_acquire gil;
    nb::dict feeds;
    for (const auto& [name, t] : inputs) feeds[name.c_str()] = tensor_to_numpy(t);
    nb::object result;
    try {
      result = fn_(graph, feeds);
    } catch (const nb::python_error& e) {
      throw Error(Status::runner, "runner failed on graph " + graph + ": " + e.what());
    }
    TensorMap out;
    for (auto [key, value] : nb::cast<nb::dict>(result)) {
      const std::string name = nb::cast<std::string>(key);
      out[name] = tensor_from_numpy("graph " + graph + " output '" + name + "'", value);
    }
    return out;
  }

 private:
  nb::callable fn_;
};

RegionMode parse_mode(const std::string& name) {
  for (RegionMode m : {RegionMode::rgn, RegionMode::search, RegionMode::learn})
    if (name == mode_name(m)) return m;
  throw Error(Status::invalid_argument, "regions='" + name + "' (expected rgn, search or learn)");
}

class PyEditor {
 public:
  PyEditor(const std::string& bundle, nb::callable run, bool verify)
      : bundle_(std::make_shared<const Bundle>(open_bundle(bundle, verify))),
        pipeline_(bundle_, std::make_shared<PyRunner>(std::move(run))) {}

  nb::dict edit(nb::ndarray<const uint8_t, nb::ndim<3>, nb::c_contig, nb::device::cpu> image, const std::string& prompt, int anchors,
                int steps, float guidance, const std::string& scheduler, uint64_t seed, bool paste_back,
                const std::optional<std::string>& regions, bool prune, const std::string& source_caption, int max_unet_batch) {
    if (image.shape(2) != 3) throw Error(Status::invalid_argument, "image must be [H, W, 3] uint8");
    Image img{static_cast<int>(image.shape(1)), static_cast<int>(image.shape(0)), 3,
              std::vector<uint8_t>(image.data(), image.data() + image.size())};
    EditConfig cfg;
    cfg.anchors = anchors, cfg.steps = steps, cfg.guidance = guidance, cfg.scheduler = scheduler, cfg.seed = seed;
    cfg.paste_back = paste_back;
    if (regions) cfg.regions = parse_mode(*regions);
    cfg.prune = prune;
    cfg.source_caption = source_caption;
    cfg.max_unet_batch = max_unet_batch;
    const EditResult r = pipeline_.edit(img, prompt, cfg);
    nb::dict out;
    const int64_t k = static_cast<int64_t>(r.candidates.size()), s = r.source.width;
    std::vector<uint8_t> pixels;
    for (const Image& c : r.candidates) pixels.insert(pixels.end(), c.pixels.begin(), c.pixels.end());
    out["candidates"] = to_numpy<uint8_t>(std::move(pixels), {k, s, s, 3});
    out["source"] = to_numpy<uint8_t>(r.source.pixels, {s, s, 3});
    out["chosen"] = r.chosen;
    std::vector<int64_t> anchors_flat, boxes_flat;
    for (const Cell& c : r.anchors) anchors_flat.push_back(c.row), anchors_flat.push_back(c.col);
    for (const PixelBox& b : r.boxes_px) boxes_flat.insert(boxes_flat.end(), b.begin(), b.end());
    out["anchors"] = to_numpy<int64_t>(std::move(anchors_flat), {k, 2});
    out["boxes_px"] = to_numpy<int64_t>(std::move(boxes_flat), {k, 4});
    out["size_index"] = to_numpy<int64_t>(r.size_index, {k});
    out["score"] = to_numpy<double>(r.scores.score, {k});
    out["t2i"] = to_numpy<double>(r.scores.t2i, {k});
    out["report"] = build_report(r, *bundle_, "<array>", "cpp/python").dump();
    out["regions"] = r.regions.to_json().dump();
    return out;
  }

 private:
  std::shared_ptr<const Bundle> bundle_;
  Pipeline pipeline_;
};

}  // namespace

NB_MODULE(lredit_host, m) {
  m.doc() = "The lredit C++ host; graphs run in a Python callable (PyRunner).";
  nb::exception<Error>(m, "HostError");
  nb::class_<PyEditor>(m, "Editor")
      .def(nb::init<const std::string&, nb::callable, bool>(), nb::arg("bundle"), nb::arg("run"), nb::arg("verify") = true)
      .def("edit", &PyEditor::edit, nb::arg("image"), nb::arg("prompt"), nb::arg("anchors") = 9, nb::arg("steps") = 50,
           nb::arg("guidance") = 7.5f, nb::arg("scheduler") = "model", nb::arg("seed") = 0, nb::arg("paste_back") = false,
           nb::arg("regions") = nb::none(), nb::arg("prune") = true, nb::arg("source_caption") = "", nb::arg("max_unet_batch") = 0);
  m.def("version", [] { return std::string(lredit_version()); });
}
