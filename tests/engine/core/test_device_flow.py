"""The device-resident data flow (encode -> denoise -> decode) without a GPU: GPU sessions are
emulated by sessions that return arrays of a stand-in 'cupy' module. The edit must equal the
plain ORT edit, and nothing may be copied to the host inside the denoising loop."""

import sys
import types

import numpy as np

from lredit.engine.frontends.editor import Editor


class DeviceArray(np.ndarray):
    """Stands for a CuPy array: `on_device` sees module 'cupy'; `.get()` is the host copy."""

    host_copies = 0

    def get(self):
        DeviceArray.host_copies += 1
        return np.asarray(self).view(np.ndarray).copy()


DeviceArray.__module__ = "cupy"


def _device(array) -> DeviceArray:
    return np.ascontiguousarray(array).view(DeviceArray)


def _fake_cupy() -> types.ModuleType:
    cp = types.ModuleType("cupy")
    cp.asarray = lambda a, dtype=None: _device(np.asarray(a, dtype=dtype))
    cp.concatenate = lambda arrays, axis=0: _device(np.concatenate([np.asarray(a) for a in arrays], axis=axis))
    cp.repeat = lambda a, n, axis=None: _device(np.repeat(np.asarray(a), n, axis=axis))
    cp.broadcast_to = lambda a, shape: _device(np.broadcast_to(np.asarray(a), shape))
    cp.full = lambda shape, value, dtype=None: _device(np.full(shape, value, dtype=dtype))
    cp.isfinite = np.isfinite
    return cp


class GpuLikeSession:
    """Wraps a CPU session: host feeds and device feeds both accepted, device outputs returned."""

    def __init__(self, inner, log):
        self.inner, self.log = inner, log
        self.input_names, self.output_names = inner.input_names, inner.output_names

    def run(self, feeds):
        self.log.append({name: type(value).__name__ for name, value in feeds.items()})
        host = {name: np.asarray(value).view(np.ndarray) for name, value in feeds.items()}
        return {name: _device(out) for name, out in self.inner.run(host).items()}


def test_device_resident_edit_equals_host_edit_with_no_copy_in_the_loop(tiny_bundle, photo, monkeypatch):
    from lredit.engine.core.denoise import RowDenoiser

    # One pass (rgn): search decodes x0 mid-schedule to score it, a host copy by design.
    want = Editor.from_bundle(tiny_bundle).edit(photo, "a red apple", steps=3, anchors=3, regions="rgn")

    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy())
    editor = Editor.from_bundle(tiny_bundle)
    unet_feeds = []
    sessions = dict(editor.pipeline.sessions)
    for name in sessions:
        sessions[name] = GpuLikeSession(sessions[name], unet_feeds if name == "unet" else [])
    editor.pipeline.sessions = sessions
    copies_in_loop = []
    original_run = RowDenoiser.run

    def counted_run(self, *args, **kwargs):
        before = DeviceArray.host_copies
        latents = original_run(self, *args, **kwargs)
        copies_in_loop.append(DeviceArray.host_copies - before)
        return latents

    monkeypatch.setattr(RowDenoiser, "run", counted_run)
    got = editor.edit(photo, "a red apple", steps=3, anchors=3, regions="rgn")

    assert copies_in_loop == [0], "a host copy happened inside the denoising loop"
    assert unet_feeds and all(set(kinds.values()) == {"DeviceArray"} for kinds in unet_feeds), unet_feeds
    assert got.boxes_px.tolist() == want.boxes_px.tolist() and got.chosen == want.chosen
    for a, b in zip(got.candidates, want.candidates):
        assert np.array_equal(np.asarray(a), np.asarray(b))
