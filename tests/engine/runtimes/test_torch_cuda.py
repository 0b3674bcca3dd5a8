"""The torch-CUDA engine path (engine/runtimes/torch_cuda.py). On the CPU (fp32) it runs through
the same code as on a GPU and must make the torch reference's edit; its device-resident flow is
checked with the stand-in CuPy; graph replay's buffer logic with an eager capture. On a CUDA GPU
(`gpu` tests, skipped here with the reason): the fp16 edit against the fp32 reference."""

import numpy as np
import pytest
import torch

from lredit.config import Precision
from lredit.engine.runtimes.graph_replay import GraphedCall, as_tuple
from lredit.engine.runtimes.torch_cuda import TorchEngineOptions, torch_cuda_pipeline
from lredit.errors import InputError
from lredit.kernels.loader import cuda_device_available

PROMPT = "a bowl of strawberries"
# The engine's numpy scheduler against diffusers' (the reference's): float32 rounding only, so
# at most a rounding flip or two in uint8 after decoding.
MAX_LEVELS = 2
# CUDA fp16 pixel graphs against the fp32 CPU reference on the tiny models: boxes identical;
# per candidate, mean |difference| at most 1.5 uint8 levels and 99% of pixels within 8.
FP16_MEAN_LEVELS, FP16_P99_LEVELS = 1.5, 8

GPU, GPU_REASON = cuda_device_available()
needs_gpu = pytest.mark.skipif(not (GPU and torch.cuda.is_available()),
                               reason=f"needs a CUDA GPU with CuPy and a CUDA build of torch: {GPU_REASON or 'torch sees no CUDA'}")


def _levels(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))


def _same_edit(got, want, max_levels=MAX_LEVELS) -> None:
    assert got.anchors.tolist() == want.anchors.tolist()
    assert got.size_index.tolist() == want.size_index.tolist()
    assert got.boxes_px.tolist() == want.boxes_px.tolist()
    assert got.chosen == want.chosen
    for a, b in zip(got.candidates, want.candidates):
        assert _levels(a, b).max() <= max_levels


@pytest.mark.parametrize("regions", ["rgn", "search"])
def test_cpu_path_makes_the_reference_edit(tiny_models, reference, photo, regions):
    want = reference.edit(photo, PROMPT, regions=regions)
    got = torch_cuda_pipeline(tiny_models, reference.config).edit(photo, PROMPT, regions=regions)
    _same_edit(got, want)
    assert got.regions.unet_rows == want.regions.unet_rows


def test_channels_last_copies_leave_the_shared_models_alone(tiny_models, reference, photo):
    options = TorchEngineOptions(channels_last=True)
    pipeline = torch_cuda_pipeline(tiny_models, reference.config, options)
    unet = pipeline.sessions["unet"].module.unet
    conv = next(m for m in unet.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    shared = next(m for m in tiny_models.unet.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3))
    assert shared.weight.is_contiguous() and shared.weight is not conv.weight
    _same_edit(pipeline.edit(photo, PROMPT, regions="rgn"), reference.edit(photo, PROMPT, regions="rgn"))


def test_device_resident_flow_keeps_the_loop_on_the_device(tiny_models, reference, photo, fake_cupy, loop_host_copies):
    """CuPy in and out through DLPack (here the stand-in over numpy): the same edit, and no host
    copy inside the denoising loop."""
    want = torch_cuda_pipeline(tiny_models, reference.config).edit(photo, PROMPT, regions="rgn")
    pipeline = torch_cuda_pipeline(tiny_models, reference.config)
    feeds = []
    for session in pipeline.sessions.values():
        session.resident, session._cupy = True, fake_cupy
    unet = pipeline.sessions["unet"]
    original = unet.run
    unet.run = lambda f: (feeds.append({n: type(v).__name__ for n, v in f.items()}), original(f))[1]
    loop_host_copies.clear()
    got = pipeline.edit(photo, PROMPT, regions="rgn")
    assert loop_host_copies == [0], "a host copy happened inside the denoising loop"
    assert feeds and all(kind == "DeviceArray" for f in feeds for kind in f.values()), feeds[:1]
    _same_edit(got, want, max_levels=0)


class _EagerCapture:
    """Stands for torch.cuda graph capture: replay() re-runs the call into the static outputs."""

    def __init__(self):
        self.captures = 0

    def __call__(self, call, static):
        self.captures += 1
        outputs = as_tuple(call(*static))

        def replay():
            for out, new in zip(outputs, as_tuple(call(*static))):
                out.copy_(new)

        return replay, outputs


def test_graph_replay_copies_inputs_in_and_outputs_out_per_signature():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 2, 3, padding=1).eval()
    capture = _EagerCapture()
    graphed = GraphedCall(conv, capture, max_graphs=2)
    with torch.inference_mode():
        a, b, c = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8), torch.randn(2, 3, 8, 8)
        out_a = graphed(a)[0]
        out_b = graphed(b)[0]
        assert capture.captures == 1  # same signature: one capture, replayed
        assert torch.equal(out_a, conv(a)) and torch.equal(out_b, conv(b))  # out_a not overwritten by the replay for b
        assert torch.equal(graphed(c)[0], conv(c)) and capture.captures == 2
        d = torch.randn(1, 3, 8, 8)
        assert torch.equal(graphed(d)[0], conv(d)) and capture.captures == 2 and graphed.eager_calls == 1


def test_options_refuse_what_the_cpu_cannot_run():
    with pytest.raises(InputError, match="precision fp16 needs a CUDA device"):
        TorchEngineOptions.for_device("cpu", "fp16")
    with pytest.raises(InputError, match="cuda_graphs needs a CUDA device"):
        TorchEngineOptions.for_device("cpu", cuda_graphs=True)
    cuda = TorchEngineOptions.for_device("cuda")  # options only: no GPU query
    assert (cuda.precision, cuda.cuda_graphs, cuda.channels_last, cuda.compile) == (Precision.FP16, True, True, False)
    assert TorchEngineOptions.for_device("cuda", cuda_graphs=False).cuda_graphs is False
    cpu = TorchEngineOptions.for_device("cpu")
    assert (cpu.precision, cpu.cuda_graphs, cpu.channels_last) == (Precision.FP32, False, False)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("cuda_graphs", [True, False])
def test_cuda_fp16_edit_matches_the_fp32_reference(tiny_models, reference, photo, cuda_graphs):
    want = reference.edit(photo, PROMPT, regions="rgn")
    options = TorchEngineOptions.for_device("cuda", cuda_graphs=cuda_graphs)
    pipeline = torch_cuda_pipeline(tiny_models, reference.config, options)
    assert type(pipeline.assets.roi_pool).__name__ == "CudaRoiPool"
    got = pipeline.edit(photo, PROMPT, regions="rgn")
    assert got.boxes_px.tolist() == want.boxes_px.tolist() and got.size_index.tolist() == want.size_index.tolist()
    for a, b in zip(got.candidates, want.candidates):
        levels = _levels(a, b)
        assert levels.mean() <= FP16_MEAN_LEVELS and np.percentile(levels, 99) <= FP16_P99_LEVELS, (levels.mean(), levels.max())
    if cuda_graphs:
        assert len(pipeline.sessions["unet"].call.graphs) == 1  # one row count: one graph, replayed every step


@pytest.mark.gpu
@needs_gpu
def test_cuda_graph_replay_equals_eager_on_the_gpu(tiny_models, reference, photo):
    runs = {}
    for graphs in (False, True):
        pipeline = torch_cuda_pipeline(tiny_models, reference.config, TorchEngineOptions.for_device("cuda", cuda_graphs=graphs))
        runs[graphs] = pipeline.edit(photo, PROMPT, regions="search")
    _same_edit(runs[True], runs[False], max_levels=1)
