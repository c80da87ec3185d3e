"""AmodalSystem's Python API: a clip or arrays, per-call settings for both stages or one, seeds, .to(device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amodal.backbones.lite import LiteConfig
from amodal.completion.model import CompleterConfig, build_completer
from amodal.completion.pipeline import ContentCompletionPipeline, PipelineConfig
from amodal.errors import InputError
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
from amodal.system import AmodalSystem

pytestmark = pytest.mark.usefixtures("one_thread")


class NoisySegmenter:
    """An ``AmodalSegmenter`` that adds generator noise to the modal mask and records its settings."""

    num_frames, height, width = 4, 16, 32
    uses_depth, threshold = True, 0.5
    default_steps, default_guidance = 1, 1.0

    def __init__(self):
        self.settings = []

    def sample(self, modal, depth, *, steps, guidance, generator):
        self.settings.append((steps, guidance, len(modal)))
        return (modal + 0.6 * torch.randn(modal.shape, generator=generator)).clamp(0, 1)


def tiny_system() -> AmodalSystem:
    torch.manual_seed(0)
    backbone = LiteConfig(in_channels=3, cond_channels=5, out_channels=3, channels=(8, 16), patch=2, heads=2, emb_dim=16, groups=4)
    completer = build_completer(CompleterConfig(backbone=backbone, num_frames=4, height=16, width=32)).eval()
    return AmodalSystem(
        AmodalSegmentationPipeline(NoisySegmenter(), SegmentationConfig(progress=False)),
        ContentCompletionPipeline(completer, PipelineConfig(progress=False)),
    )


def tiny_clip():
    from amodal.data.synth import SynthConfig, generate_clip

    return generate_clip(SynthConfig(height=32, width=64, num_frames=6, max_march_steps=16), 3).replace(
        amodal_masks=None, amodal_rgb=None)


def test_arrays_and_clips_give_the_same_result_and_seeds_repeat():
    system, clip = tiny_system(), tiny_clip()
    a = system(clip, seed=4, num_inference_steps=2)
    b = system(clip.frames, clip.modal_masks, depth=clip.depth, generator=torch.Generator().manual_seed(4),
               num_inference_steps=2)
    np.testing.assert_array_equal(a.amodal_masks, b.amodal_masks)
    np.testing.assert_array_equal(a.completion.samples, b.completion.samples)
    c = system(clip, seed=5, num_inference_steps=2)
    assert not np.array_equal(a.amodal_masks, c.amodal_masks) and not np.array_equal(a.completion.rgb, c.completion.rgb)
    with pytest.raises(InputError, match="modal_masks: missing"):
        system(clip.frames)
    with pytest.raises(InputError, match="depth: given beside an amodal.Clip"):
        system(clip, depth=clip.depth)


def test_shared_settings_reach_both_stages_and_one_stage_may_override_them():
    system, clip = tiny_system(), tiny_clip()
    seg = system.segmentation.segmenter
    out = system(clip, num_inference_steps=3, guidance_scale=2.0, num_samples=2,
                 segmentation_kwargs={"num_samples": 3, "return_samples": True})
    assert seg.settings[-1][:2] == (3, 2.0)
    assert out.segmentation.samples.shape[0] == 3 and out.completion.samples.shape[0] == 2
    assert system.segmentation.config.samples == 1 and system.completion.config.samples == 1  # unchanged
    # A stage's own seed replaces a shared generator for that stage only.
    mixed = system(clip, generator=torch.Generator().manual_seed(4), completion_kwargs={"seed": 9},
                   num_inference_steps=2)
    plain = system(clip, seed=4, completion_kwargs={"seed": 9}, num_inference_steps=2)
    np.testing.assert_array_equal(mixed.completion.samples, plain.completion.samples)
    np.testing.assert_array_equal(mixed.amodal_masks, system(clip, seed=4, num_inference_steps=2).amodal_masks)
    with pytest.raises(InputError, match="completion_kwargs must be a dict"):
        system(clip, completion_kwargs=[("seed", 1)])


def test_to_returns_the_system_and_names_a_device_this_machine_lacks():
    system = tiny_system()
    assert system.to("cpu") is system
    assert next(system.completion.completer.parameters()).device.type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device cuda") as error:
            system.to("cuda")
        assert "\n" not in str(error.value)
