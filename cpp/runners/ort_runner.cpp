// OrtRunner: the bundle's ONNX graphs on ONNX Runtime's C API (onnxruntime_c_api.h), compiled when
// CMake is given -DONNXRUNTIME_ROOT=<an ONNX Runtime release with include/ and lib/>. Feeds are cast
// to the dtypes each session declares (float32, float16, int64); float16 outputs come back as
// float32, as the Python OrtSession does. The ONNX Runtime variant (ort_file) is loaded where the
// bundle has one.
#include <onnxruntime_c_api.h>

#include <memory>
#include <vector>

#include "bundle.h"
#include "errors.h"
#include "half.h"
#include "runner.h"

namespace lredit {
namespace {

const OrtApi& api() {
  static const OrtApi* a = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (a == nullptr) throw Error(Status::runner, "this ONNX Runtime library does not provide API version " + std::to_string(ORT_API_VERSION));
  return *a;
}

void check(OrtStatus* status, const std::string& what) {
  if (status == nullptr) return;
  const std::string message = api().GetErrorMessage(status);
  api().ReleaseStatus(status);
  throw Error(Status::runner, what + ": " + message);
}

struct Graph {
  OrtSession* session = nullptr;
  std::vector<std::string> inputs, outputs;
  std::vector<ONNXTensorElementDataType> input_types;
};

class OrtRunner : public Runner {
 public:
  OrtRunner(const std::string& bundle_dir, bool cuda) {
    const Bundle bundle = open_bundle(bundle_dir, false);
    check(api().CreateEnv(ORT_LOGGING_LEVEL_ERROR, "lredit", &env_), "ONNX Runtime environment");
    check(api().CreateSessionOptions(&options_), "ONNX Runtime session options");
    if (cuda) {
      OrtCUDAProviderOptions cuda_options{};
      check(api().SessionOptionsAppendExecutionProvider_CUDA(options_, &cuda_options), "ONNX Runtime CUDA provider");
    }
    check(api().CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &memory_), "ONNX Runtime memory info");
    OrtAllocator* allocator = nullptr;
    check(api().GetAllocatorWithDefaultOptions(&allocator), "ONNX Runtime allocator");
    for (const auto& name : kGraphNames) {
      const auto& entry = bundle.manifest.at("graphs").at(name);
      const std::string file = entry.contains("ort_file") && entry["ort_file"].is_string() ? entry["ort_file"].get<std::string>()
                                                                                           : entry.at("file").get<std::string>();
      Graph g;
      check(api().CreateSession(env_, (bundle.dir + "/" + file).c_str(), options_, &g.session), "ONNX Runtime cannot load " + file);
      size_t n = 0;
      check(api().SessionGetInputCount(g.session, &n), name);
      for (size_t i = 0; i < n; ++i) {
        char* text = nullptr;
        check(api().SessionGetInputName(g.session, i, allocator, &text), name);
        g.inputs.emplace_back(text);
        check(api().AllocatorFree(allocator, text), name);
        OrtTypeInfo* type = nullptr;
        check(api().SessionGetInputTypeInfo(g.session, i, &type), name);
        const OrtTensorTypeAndShapeInfo* tensor = nullptr;
        ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
        check(api().CastTypeInfoToTensorInfo(type, &tensor), name);
        check(api().GetTensorElementType(tensor, &element), name);
        api().ReleaseTypeInfo(type);
        g.input_types.push_back(element);
      }
      check(api().SessionGetOutputCount(g.session, &n), name);
      for (size_t i = 0; i < n; ++i) {
        char* text = nullptr;
        check(api().SessionGetOutputName(g.session, i, allocator, &text), name);
        g.outputs.emplace_back(text);
        check(api().AllocatorFree(allocator, text), name);
      }
      graphs_[name] = std::move(g);
    }
  }

  ~OrtRunner() override {
    for (auto& [name, g] : graphs_) api().ReleaseSession(g.session);
    if (memory_) api().ReleaseMemoryInfo(memory_);
    if (options_) api().ReleaseSessionOptions(options_);
    if (env_) api().ReleaseEnv(env_);
  }

  std::string name() const override { return "ort"; }

  TensorMap run(const std::string& graph, const TensorMap& feeds) override {
    auto it = graphs_.find(graph);
    if (it == graphs_.end()) throw Error(Status::runner, "no ONNX Runtime session for graph " + graph);
    const Graph& g = it->second;
    std::vector<OrtValue*> inputs;
    std::vector<std::vector<uint16_t>> halves;  // float16 copies, alive until Run returns
    std::vector<const char*> in_names, out_names;
    struct Release {
      std::vector<OrtValue*>* values;
      ~Release() {
        for (OrtValue* v : *values) api().ReleaseValue(v);
      }
    } release_inputs{&inputs};
    halves.reserve(g.inputs.size());
    for (size_t i = 0; i < g.inputs.size(); ++i) {
      auto f = feeds.find(g.inputs[i]);
      if (f == feeds.end()) throw Error(Status::runner, "graph " + graph + " needs input '" + g.inputs[i] + "'");
      const Tensor& t = f->second;
      void* data = const_cast<void*>(t.data());
      size_t bytes = t.numel() * (t.dtype == DType::f32 ? 4 : 8);
      ONNXTensorElementDataType type = t.dtype == DType::f32 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
      if (g.input_types[i] == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 && t.dtype == DType::f32) {
        halves.emplace_back(t.numel());
        for (size_t j = 0; j < t.numel(); ++j) halves.back()[j] = float_to_half(t.f32[j]);
        data = halves.back().data(), bytes = t.numel() * 2, type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16;
      } else if (g.input_types[i] != type) {
        throw Error(Status::runner, "graph " + graph + " input '" + g.inputs[i] + "' has a dtype this runner does not cast " + t.describe());
      }
      OrtValue* value = nullptr;
      check(api().CreateTensorWithDataAsOrtValue(memory_, data, bytes, t.shape.data(), t.shape.size(), type, &value), graph);
      inputs.push_back(value);
      in_names.push_back(g.inputs[i].c_str());
    }
    for (const auto& n : g.outputs) out_names.push_back(n.c_str());
    std::vector<OrtValue*> outputs(g.outputs.size(), nullptr);
    struct ReleaseOut {
      std::vector<OrtValue*>* values;
      ~ReleaseOut() {
        for (OrtValue* v : *values)
          if (v) api().ReleaseValue(v);
      }
    } release_outputs{&outputs};
    check(api().Run(g.session, nullptr, in_names.data(), inputs.data(), inputs.size(), out_names.data(), out_names.size(), outputs.data()),
          "ONNX Runtime run of graph " + graph);
    TensorMap out;
    for (size_t i = 0; i < outputs.size(); ++i) out[g.outputs[i]] = to_tensor(outputs[i], graph);
    return out;
  }

 private:
  static Tensor to_tensor(OrtValue* value, const std::string& graph) {
    OrtTensorTypeAndShapeInfo* info = nullptr;
    check(api().GetTensorTypeAndShape(value, &info), graph);
    size_t ndim = 0;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    check(api().GetDimensionsCount(info, &ndim), graph);
    std::vector<int64_t> shape(ndim);
    check(api().GetDimensions(info, shape.data(), ndim), graph);
    check(api().GetTensorElementType(info, &type), graph);
    api().ReleaseTensorTypeAndShapeInfo(info);
    void* data = nullptr;
    check(api().GetTensorMutableData(value, &data), graph);
    const size_t n = numel_of(shape);
    if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT) {
      const float* p = static_cast<const float*>(data);
      return Tensor::floats(shape, std::vector<float>(p, p + n));
    }
    if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16) {
      const uint16_t* p = static_cast<const uint16_t*>(data);
      std::vector<float> f(n);
      for (size_t j = 0; j < n; ++j) f[j] = half_to_float(p[j]);
      return Tensor::floats(shape, std::move(f));
    }
    if (type == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64) {
      const int64_t* p = static_cast<const int64_t*>(data);
      return Tensor::ints(shape, std::vector<int64_t>(p, p + n));
    }
    throw Error(Status::runner, "graph " + graph + " returned an output of an element type this runner does not read");
  }

  OrtEnv* env_ = nullptr;
  OrtSessionOptions* options_ = nullptr;
  OrtMemoryInfo* memory_ = nullptr;
  std::map<std::string, Graph> graphs_;
};

}  // namespace

std::unique_ptr<Runner> make_ort_runner(const std::string& bundle_dir, bool cuda) { return std::make_unique<OrtRunner>(bundle_dir, cuda); }

}  // namespace lredit
