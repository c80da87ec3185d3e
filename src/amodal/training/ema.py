"""Exponential moving average of model weights: the weights that get exported."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` over the first
    updates so the average is not dominated by the random initial weights.
    Buffers (none in ``lite``) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float, names: tuple[str, ...] | None = None):
        """``names``: the parameters to average (default: the whole state dict, buffers copied)."""
        self.decay = decay
        self.updates = 0
        state = model.state_dict()
        keys = state if names is None else names
        self.shadow = {k: state[k].detach().clone().float() for k in keys}

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        params = dict(model.named_parameters())
        state = model.state_dict()
        for key in self.shadow:
            value = state[key]
            if key in params:
                self.shadow[key].lerp_(value.detach().float(), 1.0 - decay)
            else:
                self.shadow[key].copy_(value)
        self.updates += 1

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights (float32), keyed like the model's state dict."""
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        missing = sorted(set(self.shadow) - set(state))
        unexpected = sorted(set(state) - set(self.shadow))
        if missing or unexpected:
            from amodal.errors import CheckpointError

            raise CheckpointError(f"EMA weights do not match the model: missing {missing}, unexpected {unexpected}")
        for key in self.shadow:
            self.shadow[key].copy_(state[key])
        self.updates = updates
