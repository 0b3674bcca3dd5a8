"""Region modes: exhaustive and pruned search (stub scorer with set losses), batch independence
of the row-batched denoiser (alone vs full batch vs chunked), UNet row accounting, report and
overlay. The real objective is tested in test_objective.py; here losses are set by hand."""

import numpy as np
import pytest

from lredit.config import RegionMode
from lredit.engine.core.denoise import DenoiseRows, RowDenoiser, chunk_rows
from lredit.engine.core.pipeline import EditPipeline
from lredit.engine.ops.ranking import rank_candidates
from lredit.engine.ops.schedulers import make_scheduler
from lredit.engine.regions import search as regions

MAX_LEVELS = 2  # the batch tolerance: batch-size-dependent float summation may flip a rounding
K, M = 3, 6


class SetLosses:
    """Stub scorer: pair (k, m) scores table[k, m] (at every phase, or per phase from `phases`)."""

    def __init__(self, table, phases=None):
        self.table, self.phases, self.calls = np.asarray(table, dtype=np.float64), phases or [], 0

    def __call__(self, pairs, images, work):
        assert len(pairs) == len(images) and images.dtype == np.uint8
        table = self.phases[self.calls] if self.calls < len(self.phases) else self.table
        self.calls += 1
        return _Terms(table[pairs[:, 0], pairs[:, 1]])


class _Terms:
    def __init__(self, total):
        self.total = total

    def entry(self, i):
        return {"clip": None, "str": None, "dir": None, "total": float(self.total[i])}


def _pipe(reference, scorer, **changes):
    cfg = reference.config.replace(anchors=K, steps=3, **changes)  # PNDM: 4 UNet calls
    return EditPipeline(reference.sessions, reference.assets, cfg, scorer_factory=lambda job: scorer)


TABLE = np.array([[0.9, 0.8, 0.2, 0.7, 0.6, 0.5], [0.3, 0.9, 0.9, 0.9, 0.9, 0.1], [0.4, 0.35, 0.5, 0.6, 0.7, 0.8]])


def test_exhaustive_search_takes_the_per_anchor_argmin_then_ranks_by_s(reference, photo):
    pipe = _pipe(reference, SetLosses(TABLE), regions=RegionMode.SEARCH, prune=False)
    result = pipe.edit(photo, "a bowl of strawberries")
    assert result.size_index.tolist() == [2, 5, 1] == TABLE.argmin(1).tolist()
    out = result.regions
    assert out.mode is RegionMode.SEARCH and out.unet_rows == 2 * K * M * 4  # PNDM: steps + 1 calls
    assert [[e["total"] for e in row] for row in out.losses] == TABLE.tolist()
    # Each candidate is its anchor's winning pair, inpainted alone with that pair's noise.
    alone = _inpaint(pipe, photo, np.array([[k, s] for k, s in enumerate(result.size_index)]))
    for k in range(K):
        assert _levels(result.candidates[k], alone.images[k]) <= MAX_LEVELS
    # ...and the K winners are ranked by S exactly as in one-pass mode.
    embeds = pipe.run_graph("clip_vision", pixels=_clip(pipe, [*result.candidates, result.source]))["image_embeds"]
    text = pipe.run_graph("clip_text", input_ids=pipe.assets.clip_tokenizer.encode(
        pipe.config.prompt_template.format(prompt="a bowl of strawberries")).ids[None])["text_embeds"][0]
    cfg = pipe.config
    expect = rank_candidates(embeds[:-1], embeds[-1], text, alpha=cfg.rank_alpha, beta=cfg.rank_beta,
                             softmax=cfg.rank_softmax, top_t2i=cfg.rank_top_t2i)
    assert result.chosen == expect.chosen
    np.testing.assert_allclose(result.scores.score, expect.score, atol=1e-6)


def test_ties_go_to_the_smaller_size():
    pairs = regions.all_pairs(2, 3)
    keep = regions.keep_best(pairs, np.array([0.5, 0.5, 0.1, 0.2, 0.2, 0.2]), 0.5)
    assert keep.tolist() == [0, 2, 3, 4]  # anchor 0: sizes 2 then 0 (tie 0/1 -> 0); anchor 1: sizes 0, 1


def test_prune_steps_and_keep_share():
    assert regions.prune_steps(26, (0.3, 0.6)) == [8, 16]
    assert regions.prune_steps(3, (0.1, 0.2, 0.9)) == [1, 2]  # clamped into 1..total-1, unique
    pairs = regions.all_pairs(1, 6)
    assert len(regions.keep_best(pairs, np.arange(6.0), 0.5)) == 3
    assert len(regions.keep_best(pairs[:3], np.arange(3.0), 0.5)) == 2  # ceil
    assert len(regions.keep_best(pairs[:1], np.arange(1.0), 0.1)) == 1  # at least one


def test_pruned_survivors_equal_the_unpruned_images_and_rows_match_the_schedule(reference, photo):
    # Phase losses differ from the final ones: pruning keeps the phase-best, the final argmin is
    # taken among the survivors only.
    phase1 = 1.0 - TABLE  # phase 1 ranks the sizes the other way round
    pipe = _pipe(reference, SetLosses(TABLE, phases=[phase1]), regions=RegionMode.SEARCH, prune_fractions=(0.3, 0.6))
    result = pipe.edit(photo, "a red car")
    out = result.regions
    steps = regions.prune_steps(4, (0.3, 0.6))
    assert steps == [1, 2] and [p["step"] for p in out.phases] == [*steps, 4]
    assert [p["pairs_alive"] for p in out.phases] == [18, 9, 6]
    bounds = [0, *steps, 4]
    expected_rows = sum(2 * (b - a) * p["pairs_alive"] for a, b, p in zip(bounds, bounds[1:], out.phases))
    assert out.unet_rows == expected_rows == sum(p["rows_run"] for p in out.phases) == 2 * (18 + 9 + 2 * 6)
    alive = np.array([[e is not None for e in row] for row in out.losses])
    assert alive.sum() == 6 and (alive.sum(1) == 2).all()
    # anchor 0: phase 1 keeps its 3 highest TABLE sizes (0, 1, 3), phase 2 the 2 lowest of those
    assert [v is not None for v in out.phases[0]["losses"][0]] == [True] * 6
    assert [v is not None for v in out.phases[1]["losses"][0]] == [True, True, False, True, False, False]
    assert alive[0].tolist() == [False, True, False, True, False, False]
    chosen = [int(np.argmin(np.where(alive[k], TABLE[k], np.inf))) for k in range(K)]
    assert result.size_index.tolist() == chosen
    # Survivors equal the same pairs in an unpruned run.
    full = _inpaint(pipe, photo, regions.all_pairs(K, M), prompt="a red car")
    for k, s in enumerate(chosen):
        assert _levels(result.candidates[k], full.images[k * M + s]) <= MAX_LEVELS


def test_pair_alone_equals_full_batch_and_chunked_batch(reference, photo):
    # Row slicing of every scheduler's state is held to the sub-batch alone in test_schedulers.py.
    pipe = _pipe(reference, SetLosses(TABLE))
    pairs = regions.all_pairs(K, M)
    full = _inpaint(pipe, photo, pairs)
    chunked = _inpaint(pipe, photo, pairs, max_unet_batch=10)  # 5 rows x 2 per call, 4 calls per step
    assert chunked.unet_rows == full.unet_rows
    for row in (0, 7, 17):
        alone = _inpaint(pipe, photo, pairs[row : row + 1])
        assert _levels(alone.images[0], full.images[row]) <= MAX_LEVELS, f"pair {pairs[row]} alone vs full"
        assert _levels(chunked.images[row], full.images[row]) <= MAX_LEVELS, f"pair {pairs[row]} chunked vs full"
    assert not np.array_equal(full.images[0], full.images[1])  # different pairs, different results


def test_rgn_mode_reports_one_pass(reference, photo):
    pipe = _pipe(reference, SetLosses(TABLE), regions=RegionMode.RGN)
    result = pipe.edit(photo, "a red car")
    out = result.regions.to_report()
    assert out["mode"] == "rgn" and out["losses"] is None
    assert out["unet_rows"] == 2 * K * 4 and out["chosen_size"] == result.size_index.tolist()
    assert np.array(out["searched"]).sum() == K


def test_auto_mode_is_search_without_checkpoint_and_rgn_with_one(reference):
    cfg = reference.config.replace(regions=None)
    assert cfg.region_mode(has_checkpoint=False) is RegionMode.SEARCH
    assert cfg.region_mode(has_checkpoint=True) is RegionMode.RGN
    assert not reference.has_rgn_checkpoint  # the tiny preset's RGN is seeded
    assert cfg.replace(regions="rgn").regions is RegionMode.RGN


def test_bad_region_settings_are_clear_errors(reference):
    from lredit.errors import InputError

    with pytest.raises(InputError, match="prune_fractions"):
        reference.config.replace(prune_fractions=(0.6, 0.3))
    with pytest.raises(InputError, match="prune_keep"):
        reference.config.replace(prune_keep=0.0)
    with pytest.raises(InputError, match="regions"):
        reference.config.replace(regions="everything")


def test_report_and_overlay_carry_the_search(reference, photo, tmp_path):
    import json

    from lredit.engine.frontends import outputs

    pipe = _pipe(reference, SetLosses(TABLE), regions=RegionMode.SEARCH)
    result = pipe.edit(photo, "a red car")
    report = outputs.build_report(result, image="x.png", backend="torch", models={})
    outputs.write_outputs(result, tmp_path / "out", report)
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["regions"]["mode"] == "search" and len(saved["regions"]["losses"]) == K
    assert saved["regions"]["chosen_size"] == result.size_index.tolist()
    assert saved["config"]["regions"] == "search"
    plain = outputs.overlay(result)
    assert plain.size == result.source.size and not np.array_equal(np.asarray(plain), np.asarray(result.source))


# -- the denoiser alone, with a row-wise fake UNet ---------------------------------------------
def _fake_unet(calls):
    def unet(sample, timestep, encoder_hidden_states):
        calls.append(len(sample))
        text = encoder_hidden_states.mean(axis=(1, 2))[:, None, None, None]
        return np.tanh(sample[:, :4] * 0.5 + text + timestep[:, None, None, None] * 1e-3)
    return unet


def _rows(n, reps=2):
    rng = np.random.default_rng(1)
    return DenoiseRows(
        mask_latents=np.ones((n, 1, 4, 4), np.float32),
        masked_latents=rng.standard_normal((n, 4, 4, 4)).astype(np.float32),
        noise=rng.standard_normal((n, 4, 4, 4)).astype(np.float32),
        context=rng.standard_normal((n, reps, 3, 8)).astype(np.float32),
    )


def _scheduler():
    from lredit.export.models import SD15_SCHEDULER
    from lredit.export.scheduler_tables import scheduler_tables

    return make_scheduler("pndm", SD15_SCHEDULER, scheduler_tables(SD15_SCHEDULER)["alphas_cumprod"])


def test_denoiser_chunks_respect_the_limit_and_match_one_batch():
    calls_one, calls_chunked = [], []
    one = RowDenoiser(_fake_unet(calls_one), _scheduler(), steps=5, guidance=7.5)
    chunked = RowDenoiser(_fake_unet(calls_chunked), _scheduler(), steps=5, guidance=7.5, max_batch=4)
    rows = _rows(5)
    one.start(rows), chunked.start(rows)
    a, b = one.run(), chunked.run()
    assert np.abs(a - b).max() == 0.0  # the fake UNet is row-wise: exact
    assert set(calls_one) == {10} and max(calls_chunked) <= 4 and one.unet_rows == chunked.unet_rows == 10 * 6
    assert [(s.start, s.stop) for s in chunk_rows(5, 2, 4)] == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(ValueError, match="cannot hold one row"):
        chunk_rows(5, 2, 1)


def test_denoiser_keep_equals_running_the_kept_rows_alone():
    calls = []
    den = RowDenoiser(_fake_unet(calls), _scheduler(), steps=6, guidance=7.5)
    rows = _rows(5)
    den.start(rows)
    x0 = den.run(until=2)
    assert x0.shape == (5, 4, 4, 4)
    den.keep([1, 3])
    mid = den.run(until=4)
    den.keep([1])  # row 3 of the original batch
    final = den.run()
    alone = RowDenoiser(_fake_unet([]), _scheduler(), steps=6, guidance=7.5)
    alone.start(rows.take([3]))
    np.testing.assert_allclose(final, alone.run(), atol=1e-6)
    assert mid.shape[0] == 2 and den.unet_rows == 2 * (2 * 5 + 2 * 2 + 3 * 1)


# -- helpers -------------------------------------------------------------------------------------
def _inpaint(pipe, photo, pairs, prompt="a bowl of strawberries", **changes):
    prep = pipe.prepare(photo, prompt, None, pipe.config.replace(**changes))
    return pipe.inpaint(prep, pairs)


def _levels(a, b) -> int:
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max())


def _clip(pipe, images):
    from lredit.engine.ops import images as image_ops

    return image_ops.clip_pixels(images, pipe.assets.clip_image_size)


def test_ort_bundle_search_runs_in_profile_sized_chunks_and_matches_the_reference(tiny_bundle, reference, photo):
    from lredit.engine.frontends.editor import Editor

    editor = Editor.from_bundle(tiny_bundle, backend="ort")
    assert editor.pipeline.assets.batch_limits["unet"] == 32  # the unet spec's profile max
    seen = []
    unet = editor.pipeline.sessions["unet"]

    class Recording:
        input_names, output_names = unet.input_names, unet.output_names

        def run(self, feeds):
            seen.append(len(feeds["sample"]))
            return unet.run(feeds)

    sessions = {**editor.pipeline.sessions, "unet": Recording()}
    ort = EditPipeline(sessions, editor.pipeline.assets, editor.pipeline.config.replace(anchors=K, steps=3),
                       scorer_factory=lambda job: SetLosses(TABLE))
    got = ort.edit(photo, "a red car", regions="search", prune=False)
    ref = _pipe(reference, SetLosses(TABLE), regions=RegionMode.SEARCH, prune=False).edit(photo, "a red car")
    assert max(seen) <= 32 and sum(seen) == got.regions.unet_rows == 2 * K * M * 4  # 36 rows per step, chunked
    assert got.size_index.tolist() == ref.size_index.tolist() == TABLE.argmin(1).tolist()
    for a, b in zip(got.candidates, ref.candidates):
        assert _levels(a, b) <= MAX_LEVELS


def test_lr_edit_region_flags_reach_the_config(tmp_path):
    from lredit.engine.frontends.cli import _check_save_rgn, parse
    from lredit.errors import InputError

    options, cfg = parse(["x.png", "a cat", "--regions", "search", "--no-prune", "--prune-fractions", "0.2,0.5",
                          "--anchor-spacing", "0", "--max-unet-batch", "8", "--source-caption", "fruit"])
    assert (cfg.regions, cfg.prune, cfg.prune_fractions, cfg.anchor_spacing, cfg.max_unet_batch) == (
        RegionMode.SEARCH, False, (0.2, 0.5), 0, 8)
    assert options.source_caption == "fruit"
    assert parse(["x.png", "a cat"])[1].regions is None  # auto: search without --rgn, rgn with it
    with pytest.raises(InputError, match="prune_fractions"):
        parse(["x.png", "a cat", "--prune-fractions", "0.7,0.2"])
    options, cfg = parse(["x.png", "a cat", "--save-rgn", str(tmp_path / "r.safetensors")])
    with pytest.raises(InputError, match="needs --regions learn"):
        _check_save_rgn(options, cfg)


def test_auto_mode_falls_back_to_rgn_only_where_search_cannot_run(reference, photo):
    class NoTokens:
        input_names, output_names = ("pixels",), ("image_embeds",)

        def run(self, feeds):
            raise AssertionError("not called")

    sessions = {**reference.sessions, "clip_vision": NoTokens()}
    pipe = EditPipeline(sessions, reference.assets, reference.config.replace(anchors=2, steps=2, regions=None))
    assert "tokens" in pipe.search_unavailable() or "objective" in pipe.search_unavailable()
    warnings = []
    assert pipe.region_mode(pipe.config, warnings) is RegionMode.RGN and "search cannot run" in warnings[0]
    from lredit.errors import InputError

    with pytest.raises(InputError, match="--regions search cannot run"):
        pipe.region_mode(pipe.config.replace(regions="search"), [])
    stubbed = EditPipeline(sessions, reference.assets, pipe.config, scorer_factory=lambda job: SetLosses(TABLE))
    assert stubbed.region_mode(stubbed.config, []) is RegionMode.SEARCH


def test_latent_windows_cover_each_box_inside_the_latent():
    from lredit.engine.ops.images import latent_windows

    boxes = np.array([[10, 12, 45, 30], [0, 0, 7, 7], [60, 50, 63, 63], [0, 0, 63, 63]])  # inclusive pixels, 64 px
    windows = latent_windows(boxes, 8, 8, margin=2, minimum=4)
    for (x0, y0, x1, y1), (top, left, size) in zip(boxes, windows):
        assert 0 <= top and 0 <= left and top + size <= 8 and left + size <= 8
        assert top * 8 <= y0 and left * 8 <= x0 and (top + size) * 8 > y1 and (left + size) * 8 > x1
    assert windows[:, 2].tolist() == [8, 5, 6, 8]  # extent + 2 margins, at most the latent
    assert latent_windows(boxes[1:2], 8, 8, margin=0, minimum=4)[0, 2] == 4  # the graph's smallest crop


def _prune_decodes(pipe, photo, prompt="a red car"):
    """(latent sides the VAE decoder was called with, the pruning phase's images, its pairs, rows)."""
    decoder, sides, seen = pipe.sessions["vae_decoder"], [], []

    class Recording:
        input_names, output_names = decoder.input_names, decoder.output_names

        def run(self, feeds):
            sides.append(feeds["latents"].shape[-1])
            return decoder.run(feeds)

    class Capture(SetLosses):
        def __call__(self, pairs, images, work):
            seen.append((pairs.copy(), images.copy()))
            return super().__call__(pairs, images, work)

    run = EditPipeline({**pipe.sessions, "vae_decoder": Recording()}, pipe.assets, pipe.config,
                       scorer_factory=lambda job: Capture(TABLE))
    result = run.edit(photo, prompt)
    return sides, seen, result


# Inside the boxes a crop sees less context than the full latent (the decoder's mid-block
# attention sees only the crop): the tiny random VAE at 64 px, K=3, M=6, 3 PNDM steps, pruned at
# 0.5, half-sizes 1..6, paste-back, differs from the full decode by at most this mean inside the boxes.
CROP_MEAN_LEVELS = 4.0  # measured 1.9 (max 45 at one pixel)


def test_crop_prune_decode_decodes_latent_windows_and_keeps_the_rest_of_the_image(reference, photo):
    from lredit.config import PRUNE_CROP_MARGIN
    from lredit.engine.ops.images import latent_windows

    full_pipe = _pipe(reference, SetLosses(TABLE), regions=RegionMode.SEARCH, prune_fractions=(0.5,),
                      half_sizes=(1, 2, 3, 4, 5, 6), paste_back=True)
    crop_pipe = EditPipeline(full_pipe.sessions, full_pipe.assets, full_pipe.config.replace(prune_decode="crop"))
    full_sides, full_seen, full = _prune_decodes(full_pipe, photo)
    crop_sides, crop_seen, crop = _prune_decodes(crop_pipe, photo)
    side = full_pipe.config.working_size // 8
    assert set(full_sides) == {side}
    # the pruning phase: one call per window size, smaller than the latent for the small boxes;
    # the final decode (the last call) stays full
    assert crop_sides[-1] == side and min(crop_sides[:-1]) < side and len(crop_sides) > 2
    assert [c.size for c in crop.candidates] == [c.size for c in full.candidates]
    (pairs, crop_images), (_, full_images) = crop_seen[0], full_seen[0]
    staged = _inpaint(crop_pipe, photo, pairs, prompt="a red car")
    outside = np.broadcast_to(staged.masks[..., None] < 0.5, crop_images.shape)
    work = np.broadcast_to(staged.work[None], crop_images.shape)
    assert np.array_equal(crop_images[outside], work[outside])  # the source's pixels, as paste-back
    diff = np.abs(crop_images.astype(np.int16) - full_images.astype(np.int16))
    assert diff[~outside].mean() <= CROP_MEAN_LEVELS
    # where a window is the whole latent, the crop decode is the full one
    whole = latent_windows(staged.boxes_px, 8, side, PRUNE_CROP_MARGIN, crop_pipe.assets.decoder_crop_min)[:, 2] == side
    assert whole.any() and all(_levels(crop_images[r], full_images[r]) <= MAX_LEVELS for r in np.flatnonzero(whole))


def test_prune_decode_crop_falls_back_to_full_where_the_bundle_decoder_is_fixed(tiny_bundle, reference):
    import dataclasses

    from lredit.engine.frontends.cli import parse
    from lredit.engine.frontends.editor import Editor
    from lredit.engine.runtimes.bundle_loader import decoder_crop_min
    from lredit.errors import InputError
    from lredit.manifest import read_manifest

    assert Editor.from_bundle(tiny_bundle, backend="ort").pipeline.assets.decoder_crop_min == 4  # the spec's profile min
    fixed = dataclasses.replace(read_manifest(tiny_bundle).graphs["vae_decoder"], dynamic_axes=("batch",))
    assert decoder_crop_min(fixed) is None  # a bundle exported before crops: full decodes
    with pytest.raises(InputError, match="prune_decode"):
        reference.config.replace(prune_decode="half")
    with pytest.raises(InputError, match="unless paste_back"):
        reference.config.replace(prune_decode="crop", paste_back=False)
    assert parse(["x.png", "a cat", "--prune-decode", "crop", "--paste-back"])[1].prune_decode == "crop"
    assert parse(["x.png", "a cat", "--prune-keep", "0.16"])[1].prune_keep == 0.16
    with pytest.raises(InputError, match="prune_keep"):
        parse(["x.png", "a cat", "--prune-keep", "0"])
