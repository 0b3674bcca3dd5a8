// TrtRunner: the bundle's TensorRT engines (lr-export --trt, built on this GPU) through TensorRT's
// C++ API (NvInfer.h, TensorRT 10: named I/O tensors, enqueueV3) with CUDA buffers, compiled when
// CMake finds TensorRT and the CUDA toolkit. Inputs are copied to the device, shapes set per call,
// outputs copied back after the stream synchronises; float16 I/O is converted on the host.
#include <NvInfer.h>
#include <cuda_runtime_api.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "bundle.h"
#include "errors.h"
#include "half.h"
#include "npy.h"
#include "runner.h"

namespace lredit {
namespace {

void cuda_check(cudaError_t status, const std::string& what) {
  if (status != cudaSuccess) throw Error(Status::runner, what + ": " + cudaGetErrorString(status));
}

class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, const char* message) noexcept override {
    if (severity <= Severity::kWARNING) std::cerr << "lredit/TensorRT: " << message << "\n";
  }
};

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
  void reserve(size_t n) {
    if (n <= bytes) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    cuda_check(cudaMalloc(&ptr, n), "cudaMalloc");
    bytes = n;
  }
};

size_t element_size(nvinfer1::DataType t) {
  switch (t) {
    case nvinfer1::DataType::kFLOAT: return 4;
    case nvinfer1::DataType::kHALF: return 2;
    case nvinfer1::DataType::kINT64: return 8;
    case nvinfer1::DataType::kINT32: return 4;
    default: throw Error(Status::runner, "engine tensor of a data type this runner does not handle");
  }
}

struct Engine {
  std::unique_ptr<nvinfer1::ICudaEngine> engine;
  std::unique_ptr<nvinfer1::IExecutionContext> context;
  std::map<std::string, DeviceBuffer> buffers;
};

class TrtRunner : public Runner {
 public:
  explicit TrtRunner(const std::string& bundle_dir) {
    const Bundle bundle = open_bundle(bundle_dir, false);
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) throw Error(Status::runner, "TensorRT runtime could not be created");
    cuda_check(cudaStreamCreate(&stream_), "cudaStreamCreate");
    for (const auto& name : kGraphNames) {
      const auto& entry = bundle.manifest.at("graphs").at(name);
      if (!entry.contains("engine") || !entry["engine"].is_object())
        throw Error(Status::bundle, "bundle " + bundle.dir + " has no TensorRT engine for " + name + ": build them with lr-export --out " +
                                        bundle.dir + " --trt on this GPU");
      const std::string data = npy::read_file(bundle.dir + "/" + entry["engine"].at("file").get<std::string>());
      Engine e;
      e.engine.reset(runtime_->deserializeCudaEngine(data.data(), data.size()));
      if (!e.engine)
        throw Error(Status::runner, "TensorRT cannot load the engine of " + name + " (built by another TensorRT version or for another GPU?): "
                                        "rebuild with lr-export --out " + bundle.dir + " --trt");
      e.context.reset(e.engine->createExecutionContext());
      if (!e.context) throw Error(Status::runner, "TensorRT execution context for " + name + " could not be created");
      engines_[name] = std::move(e);
    }
  }
  ~TrtRunner() override {
    engines_.clear();
    if (stream_) cudaStreamDestroy(stream_);
  }
  std::string name() const override { return "trt"; }

  TensorMap run(const std::string& graph, const TensorMap& feeds) override {
    auto it = engines_.find(graph);
    if (it == engines_.end()) throw Error(Status::runner, "no TensorRT engine for graph " + graph);
    Engine& e = it->second;
    std::vector<std::string> outputs;
    std::vector<std::vector<char>> staged;
    for (int32_t i = 0; i < e.engine->getNbIOTensors(); ++i) {
      const char* name = e.engine->getIOTensorName(i);
      if (e.engine->getTensorIOMode(name) != nvinfer1::TensorIOMode::kINPUT) {
        outputs.emplace_back(name);
        continue;
      }
      auto f = feeds.find(name);
      if (f == feeds.end()) throw Error(Status::runner, "graph " + graph + " needs input '" + name + "'");
      const Tensor& t = f->second;
      nvinfer1::Dims dims{};
      dims.nbDims = static_cast<int32_t>(t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) dims.d[d] = t.shape[d];
      if (!e.context->setInputShape(name, dims)) throw Error(Status::runner, "graph " + graph + ": input '" + name + "' shape " + t.describe() + " is outside the engine's profile");
      const nvinfer1::DataType type = e.engine->getTensorDataType(name);
      staged.emplace_back(t.numel() * element_size(type));
      char* host = staged.back().data();
      if (type == nvinfer1::DataType::kHALF)
        for (size_t j = 0; j < t.numel(); ++j) reinterpret_cast<uint16_t*>(host)[j] = float_to_half(t.f32[j]);
      else if (type == nvinfer1::DataType::kINT32)
        for (size_t j = 0; j < t.numel(); ++j) reinterpret_cast<int32_t*>(host)[j] = static_cast<int32_t>(t.i64[j]);
      else
        std::memcpy(host, t.data(), staged.back().size());
      DeviceBuffer& buffer = e.buffers[name];
      buffer.reserve(staged.back().size());
      cuda_check(cudaMemcpyAsync(buffer.ptr, host, staged.back().size(), cudaMemcpyHostToDevice, stream_), "copy to device");
      e.context->setTensorAddress(name, buffer.ptr);
    }
    std::map<std::string, std::pair<std::vector<int64_t>, nvinfer1::DataType>> shapes;
    for (const auto& name : outputs) {
      const nvinfer1::Dims dims = e.context->getTensorShape(name.c_str());
      std::vector<int64_t> shape(dims.d, dims.d + dims.nbDims);
      const nvinfer1::DataType type = e.engine->getTensorDataType(name.c_str());
      DeviceBuffer& buffer = e.buffers[name];
      buffer.reserve(numel_of(shape) * element_size(type));
      e.context->setTensorAddress(name.c_str(), buffer.ptr);
      shapes[name] = {shape, type};
    }
    if (!e.context->enqueueV3(stream_)) throw Error(Status::runner, "TensorRT enqueue of graph " + graph + " failed");
    TensorMap out;
    for (const auto& [name, st] : shapes) {
      const size_t n = numel_of(st.first), bytes = n * element_size(st.second);
      std::vector<char> host(bytes);
      cuda_check(cudaMemcpyAsync(host.data(), e.buffers[name].ptr, bytes, cudaMemcpyDeviceToHost, stream_), "copy to host");
      cuda_check(cudaStreamSynchronize(stream_), "TensorRT run of graph " + graph);
      if (st.second == nvinfer1::DataType::kINT64) {
        std::vector<int64_t> v(n);
        std::memcpy(v.data(), host.data(), bytes);
        out[name] = Tensor::ints(st.first, std::move(v));
        continue;
      }
      std::vector<float> v(n);
      if (st.second == nvinfer1::DataType::kHALF)
        for (size_t j = 0; j < n; ++j) v[j] = half_to_float(reinterpret_cast<const uint16_t*>(host.data())[j]);
      else
        std::memcpy(v.data(), host.data(), bytes);
      out[name] = Tensor::floats(st.first, std::move(v));
    }
    return out;
  }

 private:
  Logger logger_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;
  cudaStream_t stream_ = nullptr;
  std::map<std::string, Engine> engines_;
};

}  // namespace

std::unique_ptr<Runner> make_trt_runner(const std::string& bundle_dir) { return std::make_unique<TrtRunner>(bundle_dir); }

}  // namespace lredit
