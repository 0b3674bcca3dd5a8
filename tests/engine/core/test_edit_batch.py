"""Editor.edit_batch: several requests in one call, grouped by denoising loop; each result is the
same request's edit() within the batch tolerance, and a bad request fails alone."""

import numpy as np
import pytest

from lredit.config import RegionMode
from lredit.engine.core.batch import DenoiseKey, EditRequest, plan
from lredit.engine.frontends.editor import Editor
from lredit.errors import InputError

MAX_LEVELS = 2  # batch tolerance, uint8 levels


@pytest.fixture(scope="module")
def editor(tiny_bundle):
    return Editor.from_bundle(tiny_bundle, backend="ort")


def _max_diff(a, b) -> int:
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max())


def test_batch_equals_edit_and_bad_requests_fail_alone(editor, photo, tmp_path):
    (tmp_path / "junk.png").write_bytes(b"not a png")
    good = [
        EditRequest(photo, "a bowl of strawberries", overrides={"seed": 1, "anchors": 2, "steps": 3, "regions": "rgn"}),
        EditRequest(photo, "a red car", "a table", overrides={"seed": 2, "anchors": 1, "steps": 3, "guidance": 5.0, "regions": "rgn"}),
        EditRequest(photo, "a cat", overrides={"seed": 3, "anchors": 2, "steps": 2, "regions": "rgn"}),  # its own group
        EditRequest(photo, "a dog", overrides={"seed": 4, "anchors": 1, "steps": 3, "guidance": 1.0, "regions": "rgn"}),  # no guidance
    ]
    bad = {
        1: (EditRequest(tmp_path / "junk.png", "a cat", overrides={"anchors": 1, "steps": 3}), "not an image"),
        3: (EditRequest(photo, "  ", overrides={"anchors": 1, "steps": 3}), "prompt is empty"),
        5: (EditRequest(photo, "a cat", overrides={"anchors": 1, "stepz": 3}), "unknown edit setting"),
        7: (EditRequest(photo, "a cat", overrides={"anchors": 0}), "anchors=0"),
    }
    requests = list(good)
    for index in sorted(bad):
        requests.insert(index, bad[index][0])
    results = editor.edit_batch(requests)
    assert len(results) == len(requests)
    for index, (_, message) in bad.items():
        assert isinstance(results[index], InputError), (index, results[index])
        assert message in str(results[index])
    got = [r for i, r in enumerate(results) if i not in bad]
    for request, result in zip(good, got):
        expected = editor.edit(request.image, request.prompt, request.source_caption, **request.overrides)
        assert result.chosen == expected.chosen
        assert result.config == expected.config
        assert result.regions.to_report() == expected.regions.to_report()
        assert result.source_caption == request.source_caption
        assert len(result.candidates) == request.overrides["anchors"]
        for a, b in zip(result.candidates, expected.candidates):
            assert _max_diff(a, b) <= MAX_LEVELS


def test_plan_groups_by_denoising_loop(editor, photo):
    requests = [
        EditRequest(photo, "a", overrides={"steps": 3, "seed": 1}),
        EditRequest(photo, "b", overrides={"steps": 4}),
        EditRequest(photo, "c", overrides={"steps": 3, "guidance": 3.0, "anchors": 2}),  # same loop as a
        EditRequest(photo, "d", overrides={"steps": 3, "guidance": 0.5}),  # guidance off
        EditRequest(photo, "e", overrides={"steps": 3, "scheduler": "ddim"}),
        EditRequest(photo, "f", overrides={"steps": -1}),
        EditRequest(photo, "g", overrides={"steps": 3, "regions": "rgn"}),  # another region mode
    ]
    groups, failures = plan(editor.pipeline, requests)
    assert [[p.index for p in g] for g in groups] == [[0, 2], [1], [3], [4], [6]]
    assert groups[0][0].key == DenoiseKey(steps=3, scheduler="model", guidance=True, working_size=64, regions=RegionMode.SEARCH)
    assert groups[4][0].key.regions is RegionMode.RGN
    assert groups[2][0].key.guidance is False
    assert list(failures) == [5] and "steps=-1" in str(failures[5])


def test_requests_of_one_loop_share_each_unet_call_up_to_the_row_cap(editor, photo, monkeypatch):
    unet = editor.pipeline.sessions["unet"]
    calls = []
    original = unet.run

    def counted(feeds):
        calls.append((feeds["sample"].shape[0], feeds["encoder_hidden_states"].shape[0]))
        return original(feeds)

    monkeypatch.setattr(unet, "run", counted)
    editor.edit(photo, "a cat", anchors=1, steps=3, regions="rgn")
    per_loop = len(calls)  # UNet calls of one loop (PNDM's PLMS runs steps + 1)
    requests = [EditRequest(photo, p, overrides={"anchors": k, "steps": 3, "seed": k, "regions": "rgn"})
                for p, k in (("a cat", 2), ("a dog", 1), ("a hat", 2))]
    calls.clear()
    assert not any(isinstance(r, Exception) for r in editor.edit_batch(requests))
    assert calls == [(10, 10)] * per_loop  # 2 x (2 + 1 + 2) rows, one text row each, in one call per step
    calls.clear()
    monkeypatch.setitem(editor.pipeline.assets.batch_limits, "unet", 6)
    results = editor.edit_batch(requests)
    assert not any(isinstance(r, Exception) for r in results)
    assert calls == [(6, 6), (4, 4)] * per_loop  # the denoiser's chunks of the profile's batch
    assert [len(r.candidates) for r in results] == [2, 1, 2]
