"""PairLosses (each (anchor, size) pair's objective from the pipeline's stages), train_rgn with
checkpoint/resume, and lr-train-rgn's bad-input errors."""

import numpy as np
import pytest
from PIL import Image

from lredit import safetensors_io
from lredit.engine.frontends.train_cli import main as train_main
from lredit.engine.ops.objective import RegionObjective
from lredit.engine.ops.rgn_learning import learn_sizes
from lredit.engine.training.pair_losses import PairLosses
from lredit.engine.training.rgn_training import TrainConfig, TrainExample, read_examples, train_rgn
from lredit.errors import InputError
from lredit.rgn_checkpoint import HEAD_KEYS

K, M, C, L = 3, 6, 12, 8


@pytest.fixture(scope="module")
def scorer(reference, photo_module):
    return PairLosses(reference, photo_module, "a bowl of strawberries", "a wooden table")


@pytest.fixture(scope="module")
def photo_module():
    rng = np.random.default_rng(7)
    base = np.linspace(0, 255, 96 * 128 * 3).reshape(96, 128, 3)
    return Image.fromarray(np.clip(base + rng.uniform(0, 60, size=base.shape), 0, 255).astype(np.uint8))


def test_pair_losses_inpaint_each_size_once_and_match_the_pipelines_candidates(reference, scorer, photo_module):
    assert scorer.pooled.shape == (K, M * C, L, L)
    one = scorer(np.array([[1, 2]]))
    assert 1 <= scorer.pairs_inpainted <= K and np.isfinite(scorer.totals[1, 2]) and np.isnan(scorer.totals[:, 0]).all()
    table = scorer.all_losses()
    assert scorer.pairs_inpainted == K * M and one[0] == table[1, 2]  # no pair inpainted twice
    scorer(np.array([[0, 0], [2, 5]]))
    assert scorer.pairs_inpainted == K * M
    assert np.ptp(table) > 0
    assert scorer.terms[0][0]["dir"] is not None
    # the one-pass edit inpaints (k, its RGN size) with the same noise: its candidates score the same
    result = reference.edit(photo_module, "a bowl of strawberries")
    out = reference.run_graph("clip_vision", pixels=_clip(reference, [*result.candidates, result.source]))
    text = scorer.text_embed, scorer.roi_text_embed
    terms = RegionObjective().losses(out["image_embeds"][:-1], out["tokens"][:-1], out["image_embeds"][-1], out["tokens"][-1], *text)
    np.testing.assert_allclose(terms.total, table[np.arange(K), result.size_index], atol=2e-3)


def _clip(pipeline, images):
    from lredit.engine.ops.images import clip_pixels

    return clip_pixels(images, pipeline.assets.clip_image_size)


def test_learn_on_pair_losses_scores_at_most_k_times_m_pairs(reference, scorer):
    calls = []

    def counting(pairs):
        calls.append(len(pairs))
        return scorer(pairs)

    result = learn_sizes(scorer.pooled, reference.assets.rgn, counting, iterations=10)
    assert sum(calls) == K * M and len(result.mean_loss) == 10
    assert result.mean_loss[-1] < result.mean_loss[0]


class _StubProblems:
    """Fixed pooled features and loss tables per example; counts scoring calls."""

    def __init__(self, names, seed=0):
        rng = np.random.default_rng(seed)
        self.data = {n: (rng.normal(size=(K, M * C, L, L)), rng.uniform(0.5, 1.0, size=(K, M))) for n in names}
        self.scored = 0

    def __call__(self, example):
        pooled, table = self.data[example.name]

        def score(pairs):
            self.scored += len(pairs)
            return table[pairs[:, 0], pairs[:, 1]]

        return pooled, score


def _init():
    from lredit.export.rgn import RegionNetwork, rgn_params

    return rgn_params(RegionNetwork(32, C, M, L, seed=0))


def _examples(names):
    return [TrainExample(n, None, f"prompt {n}") for n in names]


def test_resumed_training_equals_uninterrupted_training(tmp_path):
    names = ["a.png", "b.png", "c.png"]
    straight = _StubProblems(names)
    full = train_rgn(_examples(names), _init(), straight, tmp_path / "full.safetensors", TrainConfig(epochs=4, lr=3e-3))
    assert straight.scored == len(names) * K * M  # each example scored once, in the first epoch
    first = _StubProblems(names)
    train_rgn(_examples(names), _init(), first, tmp_path / "part.safetensors", TrainConfig(epochs=2, lr=3e-3))
    second = _StubProblems(names)
    resumed = train_rgn(_examples(names), _init(), second, tmp_path / "part.safetensors", TrainConfig(epochs=4, lr=3e-3), resume=True)
    assert second.scored == 0  # loss tables come from the checkpoint
    for key in HEAD_KEYS:
        np.testing.assert_allclose(resumed.params.head[key], full.params.head[key], rtol=0, atol=1e-7)
    assert full.epoch_loss[-1] < full.epoch_loss[0] and len(resumed.epoch_loss) == 2
    _, meta = safetensors_io.load_file(tmp_path / "part.safetensors")
    assert meta["epochs_done"] == "4" and meta["kind"] == "lr-train-rgn"
    with pytest.raises(InputError, match="other examples"):
        train_rgn(_examples(names[:2]), _init(), first, tmp_path / "part.safetensors", TrainConfig(epochs=5), resume=True)


def _folder(tmp_path, lines):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(images / name)
    prompts = tmp_path / "prompts.tsv"
    prompts.write_text(lines)
    return images, prompts


def test_prompts_file_format(tmp_path):
    images, prompts = _folder(tmp_path, "# name\tprompt\tcaption\na.png\ta red apple\n\nb.png\ta cat\ta dog\n")
    examples = read_examples(images, prompts)
    assert [(e.name, e.prompt, e.source_caption) for e in examples] == [("a.png", "a red apple", None), ("b.png", "a cat", "a dog")]
    prompts.write_text("a.png a red apple\n")
    with pytest.raises(InputError, match=r"prompts.tsv:1: expected 'image_name<TAB>prompt"):
        read_examples(images, prompts)


@pytest.mark.parametrize(
    "case, message",
    [
        ("empty", "holds no images"),
        ("no_prompts", "prompts file not found"),
        ("missing_image", r"names 2 image\(s\) not in .*: x.png, y.png"),
        ("unwritable", "--save-rgn .*cannot write into"),
    ],
)
def test_cli_bad_input_gives_one_line_errors(tmp_path, capsys, case, message):
    import re

    images, prompts = _folder(tmp_path, "a.png\ta red apple\nx.png\tq\ny.png\tq\n" if case == "missing_image" else "a.png\tx\n")
    save = tmp_path / "rgn.safetensors"
    if case == "empty":
        images = tmp_path / "empty"
        images.mkdir()
    if case == "no_prompts":
        prompts = tmp_path / "none.tsv"
    if case == "unwritable":
        (tmp_path / "blocker").write_text("")
        save = tmp_path / "blocker" / "rgn.safetensors"
    assert train_main([str(images), str(prompts), "--save-rgn", str(save), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("lr-train-rgn: error: ") and re.search(message, err), err
    assert not save.exists()


def test_cli_trains_writes_a_checkpoint_that_lr_edit_loads(tmp_path, capsys):
    from lredit.rgn_checkpoint import load_rgn

    images, prompts = _folder(tmp_path, "a.png\ta red apple\ta green apple\n")
    save = tmp_path / "out" / "rgn.safetensors"
    args = [str(images), str(prompts), "--save-rgn", str(save), "--no-progress", "--anchors", "2", "--steps", "1",
            "--working-size", "64", "--epochs", "1"]
    assert train_main(args) == 0
    assert "after 1 epochs" in capsys.readouterr().out
    seeded = (np.zeros((C, 32), np.float32), np.zeros(C, np.float32))
    loaded = load_rgn(save, seeded, sizes=M)
    assert loaded.has_projection and loaded.metadata["epochs_done"] == "1"
    assert train_main(args) == 2 and "pass --resume" in capsys.readouterr().err


def test_training_on_a_small_clip_vision_profile_scores_in_chunks(reference, photo_module, tmp_path):
    """A bundle whose clip_vision profile takes at most 3 images (a TensorRT engine refuses more):
    lr-train-rgn's scorer sends the K x M pairs in chunks of <= 3 and training still works."""
    import dataclasses

    vision, batches = reference.sessions["clip_vision"], []

    class Profiled:
        input_names, output_names = vision.input_names, vision.output_names

        def run(self, feeds):
            batches.append(len(feeds["pixels"]))
            if len(feeds["pixels"]) > 3:
                raise RuntimeError(f"clip_vision batch {len(feeds['pixels'])} is over the profile's max 3")
            return vision.run(feeds)

    assets = dataclasses.replace(reference.assets, batch_limits={**reference.assets.batch_limits, "clip_vision": 3})
    small = reference.with_sessions({**reference.sessions, "clip_vision": Profiled()}, assets)
    photo_module.save(tmp_path / "a.png")
    examples = [TrainExample("a.png", tmp_path / "a.png", "a bowl of strawberries", "a wooden table")]

    def problem(example):
        losses = PairLosses(small, example.image, example.prompt, example.source_caption)
        return losses.pooled, losses

    result = train_rgn(examples, small.assets.rgn, problem, tmp_path / "rgn.safetensors", TrainConfig(epochs=2))
    assert result.scored_pairs == K * M and result.epochs_done == 2 and np.isfinite(result.epoch_loss).all()
    assert max(batches) <= 3 and sum(batches) == K * M + 1  # every pair once, plus the working image
    assert reference.assets.batch_limits.get("clip_vision") != 3  # the reference itself is unchanged
