"""The segmentation pipeline's geometry, windowing, streaming and batching, with analytic fake models."""

import itertools

import numpy as np
import pytest
import torch

from amodal import Clip
from amodal.errors import InputError
from amodal.data.geometry import letterbox
from amodal.data.windows import window_starts
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig


class FakeSegmenter:
    """Implements ``AmodalSegmenter`` with a closed form: the modal mask dilated by ``grow`` pixels.

    With ``noise > 0`` each sample adds generator noise, to test seeds and Top-k.
    """

    uses_depth = True
    threshold = 0.5
    default_steps = 3  # the model's own best sampling settings, what a pipeline runs unless told otherwise
    default_guidance = 1.0

    def __init__(self, num_frames=8, height=32, width=64, grow=0, noise=0.0):
        self.num_frames, self.height, self.width = num_frames, height, width
        self.grow, self.noise = grow, noise
        self.calls = []

    def sample(self, modal, depth, *, steps, guidance, generator):
        self.calls.append((tuple(modal.shape), depth is not None))
        assert modal.shape[1] == self.num_frames and modal.shape[-2:] == (self.height, self.width)
        out = modal
        if self.grow:
            k = 2 * self.grow + 1
            out = torch.nn.functional.max_pool2d(modal.flatten(0, 1)[:, None], k, 1, self.grow)[:, 0].view_as(modal)
        if self.noise:
            out = out + self.noise * torch.randn(out.shape, generator=generator)
        return out.clamp(0, 1)


def make_clip(t=20, h=32, w=64, k=2, seed=0):
    rng = np.random.default_rng(seed)
    modal = np.zeros((k, t, h, w), bool)
    for obj in range(k):
        for i in range(t):
            y, x = rng.integers(0, h - 8), rng.integers(0, w - 8)
            modal[obj, i, y : y + 6, x : x + 6] = True
    modal[1:] &= ~modal[:1]
    return Clip(frames=np.zeros((t, h, w, 3), np.uint8), modal_masks=modal,
                depth=rng.random((t, h, w)).astype(np.float32))


def run(clip, segmenter, **cfg):
    return AmodalSegmentationPipeline(segmenter, SegmentationConfig(progress=False, **cfg))(clip)


def test_identity_model_at_native_size_returns_modal_exactly():
    clip = make_clip()
    out = run(clip, FakeSegmenter())
    assert out.amodal_masks.shape == clip.modal_masks.shape
    np.testing.assert_array_equal(out.amodal_masks, clip.modal_masks)
    assert out.frequency is None


@pytest.mark.parametrize("window,overlap,blend", [(8, 0, "average"), (8, 3, "average"), (5, 4, "ramp"), (30, 2, "ramp")])
def test_windowing_does_not_change_a_framewise_model(window, overlap, blend):
    clip = make_clip(t=23)
    expected = run(clip, FakeSegmenter(num_frames=window, grow=2)).amodal_masks
    single = run(clip, FakeSegmenter(num_frames=23, grow=2)).amodal_masks
    np.testing.assert_array_equal(expected, single)
    got = run(clip, FakeSegmenter(num_frames=window, grow=2), overlap=overlap, blend=blend).amodal_masks
    np.testing.assert_array_equal(got, single)


class DisagreeingSegmenter(FakeSegmenter):
    """Windows alternate between completing a fixed hidden block (1) and not (0): two confident samples that disagree."""

    def sample(self, modal, depth, *, steps, guidance, generator):
        out = super().sample(modal, depth, steps=steps, guidance=guidance, generator=generator).clone()
        if len(self.calls) % 2 == 1:
            out[..., :4, :4] = 1.0
        return out


def test_ramp_lets_one_window_decide_where_average_cuts_a_disagreement():
    clip = make_clip(t=12, k=1)
    clip.modal_masks[..., :4, :4] = False
    hidden = lambda out: out.amodal_masks[0, :, :4, :4].all(axis=(1, 2))  # noqa: E731
    # Windows of 8 with overlap 4: frames 0-7 (completes the block), then 4-11 (does not).
    average = run(clip, DisagreeingSegmenter(num_frames=8), window=8, overlap=4, blend="average")
    ramp = run(clip, DisagreeingSegmenter(num_frames=8), window=8, overlap=4, blend="ramp")
    np.testing.assert_array_equal(hidden(average), [True] * 4 + [False] * 8)  # 0.5 in the overlap: cut
    np.testing.assert_array_equal(hidden(ramp), [True] * 6 + [False] * 6)  # a cross-fade: each side keeps half
    assert SegmentationConfig().blend == "ramp"


def test_output_always_contains_modal_and_dilation_maps_back():
    clip = make_clip(h=30, w=100)  # aspect differs from the 32x64 canvas: letterboxed, not stretched
    out = run(clip, FakeSegmenter(grow=1))
    assert out.amodal_masks.shape == clip.modal_masks.shape
    assert not (clip.modal_masks & ~out.amodal_masks).any()
    grown = out.amodal_masks.sum() / clip.modal_masks.sum()
    assert 1.2 < grown < 3.5  # a 1-pixel dilation at ~0.6x scale grows a 6x6 box to about 9x9


def test_letterbox_preserves_aspect_and_centres():
    box = letterbox((30, 100), (32, 64))
    assert box.scaled_size == (19, 64)
    assert box.offset == (6, 0)
    padded = letterbox((40, 80), (32, 64), pad=0.25)
    assert padded.border == (10, 20) and padded.padded_size == (60, 120)


def test_pad_gives_room_past_the_border():
    clip = make_clip(h=32, w=64)
    out = run(clip, FakeSegmenter(grow=1), pad=0.25)
    assert out.amodal_masks.shape[-2:] == (48, 96)
    assert out.border == (8, 16)
    inner = out.amodal_masks[..., 8:40, 16:80]
    assert not (clip.modal_masks & ~inner).any()


def test_stream_is_lazy_and_bounded():
    seg = FakeSegmenter(num_frames=8)
    pipe = AmodalSegmentationPipeline(seg, SegmentationConfig(progress=False, overlap=2))

    def endless():
        rng = np.random.default_rng(0)
        while True:
            yield rng.random((1, 32, 64)) > 0.7

    first = list(itertools.islice(pipe.stream(endless()), 30))
    assert [r.index for r in first] == list(range(30))
    assert len(seg.calls) <= 30 // 6 + 2  # only the windows needed so far were run


def test_short_video_and_objects_empty_in_a_window():
    clip = make_clip(t=3)
    modal = clip.modal_masks.copy()
    modal[1] = False
    modal[1, 2, 5:9, 5:9] = True  # object 1 visible in one frame only
    clip = clip.replace(modal_masks=modal)
    seg = FakeSegmenter(num_frames=8, grow=1)
    out = run(clip, seg)
    assert out.amodal_masks.shape == clip.modal_masks.shape
    assert out.amodal_masks[1, 2].sum() > 16  # the visible frame went through the model (dilated)
    assert seg.calls[0][0][0] == 2  # both objects batched: object 1 is visible somewhere in the window
    none_visible = clip.replace(modal_masks=np.zeros_like(modal))
    assert not run(none_visible, seg).amodal_masks.any()  # nothing to segment: empty, no crash


def test_samples_frequency_topk_and_determinism():
    clip = make_clip(t=10)
    kwargs = dict(samples=3, seed=7, overlap=2)
    a = AmodalSegmentationPipeline(FakeSegmenter(noise=0.4), SegmentationConfig(progress=False, **kwargs))(
        clip, return_samples=True)
    b = AmodalSegmentationPipeline(FakeSegmenter(noise=0.4), SegmentationConfig(progress=False, **kwargs))(
        clip, return_samples=True)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.shape == (3, *clip.modal_masks.shape)
    assert a.frequency.dtype == np.float32 and 0 <= a.frequency.min() and a.frequency.max() <= 1
    assert not np.array_equal(a.samples[0], a.samples[1])  # different noise per sample
    np.testing.assert_array_equal(a.amodal_masks, a.frequency >= 0.5)
    c = AmodalSegmentationPipeline(FakeSegmenter(noise=0.4), SegmentationConfig(progress=False, **{**kwargs, "seed": 8}))(clip)
    assert not np.array_equal(a.frequency, c.frequency)


def test_depth_is_passed_or_dropped():
    clip = make_clip(t=8)
    seg = FakeSegmenter()
    run(clip, seg)
    assert seg.calls[-1][1] is True
    run(clip, seg, use_depth=False)
    assert seg.calls[-1][1] is False


def test_bad_configs_and_inputs_are_clear():
    with pytest.raises(InputError, match="--steps"):
        SegmentationConfig(steps=0)
    with pytest.raises(InputError, match="--blend"):
        SegmentationConfig(blend="max")
    pipe = AmodalSegmentationPipeline(FakeSegmenter(), SegmentationConfig(progress=False))
    with pytest.raises(InputError, match="frame 1"):
        list(pipe.stream([np.zeros((1, 32, 64), bool), np.zeros((1, 16, 64), bool)]))
    with pytest.raises(InputError, match="empty"):
        list(pipe.stream([]))


def test_window_starts_cover_every_frame():
    for total, window, overlap in [(1, 8, 2), (8, 8, 2), (9, 8, 2), (100, 16, 4), (37, 5, 0)]:
        starts = window_starts(total, window, overlap)
        covered = np.zeros(total, bool)
        for s in starts:
            covered[s : s + window] = True
        assert covered.all() and starts[-1] + window >= total


# ---------------------------------------------------------------------------- the Python API
class RecordingSegmenter(FakeSegmenter):
    """Records the sampling settings of every model call."""

    def sample(self, modal, depth, *, steps, guidance, generator):
        self.settings = getattr(self, "settings", []) + [(steps, guidance)]
        return super().sample(modal, depth, steps=steps, guidance=guidance, generator=generator)


def test_per_call_settings_override_the_config_without_changing_it():
    clip = make_clip(t=8)
    seg = RecordingSegmenter(noise=0.4)
    config = SegmentationConfig(progress=False)
    pipe = AmodalSegmentationPipeline(seg, config)
    out = pipe(clip, num_inference_steps=5, guidance_scale=2.5, num_samples=3, return_samples=True)
    assert seg.settings[-1] == (5, 2.5) and out.samples.shape[0] == 3 and out.frequency is not None
    assert pipe.config is config and (pipe.steps, pipe.guidance, pipe.config.samples) == (3, 1.0, 1)
    pipe(clip)
    assert seg.settings[-1] == (3, 1.0)  # the model's own best again
    for bad, match in (({"num_inference_steps": 0}, "num_inference_steps"), ({"guidance_scale": -1}, "guidance_scale"),
                       ({"num_samples": 0}, "num_samples"), ({"seed": -1}, "seed"), ({"generator": 3}, "generator")):
        with pytest.raises(InputError, match=match):
            pipe(clip, **bad)


def test_same_seed_or_generator_gives_the_same_output():
    clip = make_clip(t=10)
    pipe = AmodalSegmentationPipeline(FakeSegmenter(noise=0.4), SegmentationConfig(progress=False, overlap=2))
    a = pipe(clip, num_samples=3, seed=7, return_samples=True).samples
    np.testing.assert_array_equal(a, pipe(clip, num_samples=3, seed=7, return_samples=True).samples)
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)  # a generator stands for its initial seed, whatever its state
    np.testing.assert_array_equal(a, pipe(clip, num_samples=3, generator=generator, return_samples=True).samples)
    np.testing.assert_array_equal(a, pipe(clip, num_samples=3, generator=generator, return_samples=True).samples)
    assert not np.array_equal(a, pipe(clip, num_samples=3, seed=8, return_samples=True).samples)
    configured = AmodalSegmentationPipeline(FakeSegmenter(noise=0.4), SegmentationConfig(progress=False, overlap=2, seed=7))
    np.testing.assert_array_equal(a, configured(clip, num_samples=3, return_samples=True).samples)
    with pytest.raises(InputError, match="seed and generator"):
        pipe(clip, seed=7, generator=generator)


def test_arrays_are_taken_directly():
    clip = make_clip(t=9)
    seg = FakeSegmenter(grow=2)
    pipe = AmodalSegmentationPipeline(seg, SegmentationConfig(progress=False))
    expected = pipe(clip)
    got = pipe(clip.modal_masks, depth=clip.depth)  # frames are optional: stage 1 does not read them
    np.testing.assert_array_equal(got.amodal_masks, expected.amodal_masks)
    assert seg.calls[-1][1] is True
    pipe(clip.modal_masks, frames=clip.frames)
    assert seg.calls[-1][1] is False  # no depth given: mask-only
    one = pipe(clip.modal_masks[1])  # (T, H, W): one object
    assert one.amodal_masks.shape == (1, *clip.modal_masks.shape[1:]) and one.object_ids == (1,)
    np.testing.assert_array_equal(one.amodal_masks[0], expected.amodal_masks[1])


@pytest.mark.parametrize("call, match", [
    (lambda pipe, clip: pipe(clip.modal_masks.astype(np.uint8)), r"modal_masks: must be bool.*astype\(bool\)"),
    (lambda pipe, clip: pipe(clip.modal_masks[0, 0]), r"modal_masks: must be \(K, T, H, W\)"),
    (lambda pipe, clip: pipe(torch.from_numpy(clip.modal_masks)), "expected an amodal.Clip or a numpy array"),
    (lambda pipe, clip: pipe(clip.modal_masks, depth=clip.depth[:3]), r"depth: must be \(T, H, W\)"),
    (lambda pipe, clip: pipe(clip.modal_masks, depth=(clip.depth * 255).astype(np.uint8)), "depth: must be floating"),
    (lambda pipe, clip: pipe(clip.modal_masks, frames=clip.frames[:, :8]), "does not match the frames"),
    (lambda pipe, clip: pipe(clip.modal_masks, frames=clip.frames.astype(np.float32)), "frames: must be uint8"),
    (lambda pipe, clip: pipe(clip, depth=clip.depth), r"depth: given beside an amodal.Clip.*clip.replace\(depth=")],
)
def test_bad_arrays_are_one_line_errors_naming_the_argument(call, match):
    clip = make_clip(t=4)
    pipe = AmodalSegmentationPipeline(FakeSegmenter(), SegmentationConfig(progress=False))
    with pytest.raises(InputError, match=match) as error:
        call(pipe, clip)
    assert "\n" not in str(error.value)


def test_to_moves_the_model_and_refuses_a_device_this_machine_lacks():
    pipe = AmodalSegmentationPipeline.from_pretrained("default", SegmentationConfig(progress=False))
    assert pipe.to("cpu") is pipe and pipe.to(torch.device("cpu")) is pipe
    assert next(pipe.segmenter.parameters()).device.type == "cpu"
    with pytest.raises(InputError, match="device tpu: unknown device"):
        pipe.to("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device cuda: this machine has") as error:
            pipe.to("cuda")
        assert "\n" not in str(error.value)


class SoftSegmenter(FakeSegmenter):
    """A one-step model whose soft output is a fixed ramp of probabilities; the noise does not move it."""

    default_sample_levels = "stratified"

    def sample(self, modal, depth, *, steps, guidance, generator):
        self.calls.append((tuple(modal.shape), depth is not None))
        ramp = torch.linspace(0.0, 1.0, self.width).expand(*modal.shape)
        return torch.maximum(ramp, modal)


def test_sample_levels_fixed_stratified_and_their_frequency():
    from amodal.segmentation.pipeline import sample_levels

    np.testing.assert_array_equal(sample_levels("fixed", 0.5, 4, 3, seed=0), np.full((4, 3), 0.5, np.float32))
    levels = sample_levels("stratified", 0.5, 5, 1000, seed=0)
    assert levels.shape == (5, 1000) and (levels[0] == 0.5).all()
    for s in range(1, 5):  # one level in each quarter of (0, 1)
        assert ((s - 1) / 4 <= levels[s]).all() and (levels[s] <= s / 4).all()
    np.testing.assert_array_equal(levels, sample_levels("stratified", 0.5, 5, 1000, seed=0))
    assert not np.array_equal(levels, sample_levels("stratified", 0.5, 5, 1000, seed=1))
    # A pixel of probability p is in a further sample with probability p.
    p = np.array([0.1, 0.3, 0.6, 0.9])
    hits = (p[None, None] > levels[1:, :, None]).mean((0, 1))
    np.testing.assert_allclose(hits, p, atol=0.03)
    with pytest.raises(InputError, match="sample levels"):
        sample_levels("random", 0.5, 2, 1, seed=0)


def test_stratified_levels_make_a_one_step_model_give_distinct_hypotheses():
    clip = make_clip(t=8)
    one = run(clip, SoftSegmenter())
    out = AmodalSegmentationPipeline(SoftSegmenter(), SegmentationConfig(progress=False, samples=3, seed=3))(
        clip, return_samples=True)
    np.testing.assert_array_equal(out.samples[0], one.amodal_masks)  # Top-1 is the single-sample reading
    area = out.samples.sum((1, 2, 3, 4))
    assert area[1] > area[0] > area[2]  # a generous and a tight hypothesis around it
    assert (out.samples & ~clip.modal_masks[None]).any() and (out.samples >= clip.modal_masks[None]).all()
    u = out.frequency[(out.frequency > 0) & (out.frequency < 1)]
    assert u.size  # the uncertainty map marks the ambiguous columns
    # The model's own mode is the default; fixed levels give identical copies of a model the noise does not move.
    fixed = AmodalSegmentationPipeline(SoftSegmenter(), SegmentationConfig(progress=False, samples=3, levels="fixed"))(
        clip, return_samples=True)
    assert all(np.array_equal(fixed.samples[0], s) for s in fixed.samples)
    with pytest.raises(InputError, match="--levels"):
        SegmentationConfig(levels="random")
