"""The device-resident data flow (encode -> denoise -> decode) without a GPU: GPU sessions are
emulated by sessions that return arrays of a stand-in 'cupy' module. The edit must equal the
plain ORT edit, and nothing may be copied to the host inside the denoising loop."""

import numpy as np

from lredit.engine.frontends.editor import Editor


class GpuLikeSession:
    """Wraps a CPU session: host feeds and device feeds both accepted, device outputs returned."""

    def __init__(self, inner, log, cp):
        self.inner, self.log, self.cp = inner, log, cp
        self.input_names, self.output_names = inner.input_names, inner.output_names

    def run(self, feeds):
        self.log.append({name: type(value).__name__ for name, value in feeds.items()})
        host = {name: np.asarray(value).view(np.ndarray) for name, value in feeds.items()}
        return {name: self.cp.asarray(out) for name, out in self.inner.run(host).items()}


def test_device_resident_edit_equals_host_edit_with_no_copy_in_the_loop(tiny_bundle, photo, fake_cupy, loop_host_copies):
    # One pass (rgn): search decodes x0 mid-schedule to score it, a host copy by design.
    want = Editor.from_bundle(tiny_bundle).edit(photo, "a red apple", steps=3, anchors=3, regions="rgn")

    editor = Editor.from_bundle(tiny_bundle)
    unet_feeds = []
    sessions = dict(editor.pipeline.sessions)
    for name in sessions:
        sessions[name] = GpuLikeSession(sessions[name], unet_feeds if name == "unet" else [], fake_cupy)
    editor.pipeline.sessions = sessions
    loop_host_copies.clear()  # count the device-resident edit's loop only
    got = editor.edit(photo, "a red apple", steps=3, anchors=3, regions="rgn")

    assert loop_host_copies == [0], "a host copy happened inside the denoising loop"
    assert unet_feeds and all(set(kinds.values()) == {"DeviceArray"} for kinds in unet_feeds), unet_feeds
    assert got.boxes_px.tolist() == want.boxes_px.tolist() and got.chosen == want.chosen
    for a, b in zip(got.candidates, want.candidates):
        assert np.array_equal(np.asarray(a), np.asarray(b))
