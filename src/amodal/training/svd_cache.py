"""What the frozen encoders of an ``svd`` fine-tuning run compute, computed once per frame.

The VAE and the CLIP image encoder stay frozen, and the training data repeats itself: a
stage-1 window is frames of a fixed pool of tracks (cropped, flipped, played backwards),
a stage-2 sample one of a fixed pool of crops (flipped). Both encoders work frame by
frame (the VAE's encoder is 2-D; only its decoder is temporal), so their output for a
frame is a function of that frame's pixels alone. :class:`EncoderCache` keys it by a
hash of the pixels, which stays right whatever the data pipeline does (random windows,
pasted or painted occluders, time reversal: the reversed window's frames are the same
frames), and holds:

- ``vae``: the posterior moments ``(mean, std)`` of a frame. The target's latent
  ``s * (mean + std * n)`` is still drawn each step, with the same draw from the step's
  generator, so a cached run's targets are the uncached run's up to float rounding;
  ``mean`` is also the posterior mode of a clean condition frame;
- ``clip``: the CLIP image embedding of a clean condition-1 frame.

What it cannot hold exactly: the latents of noise-augmented conditions (the reference adds
the noise to the pixels, before the VAE, with a new draw every step). ``"exact"`` caching
encodes those every step; ``"latent-noise"`` (:func:`latent_noise_gain`) replaces them by an
approximation.

A frame missing from the cache is encoded on its own (a batch of one), whatever else the
step holds: a frame's cached value is then one fixed function of its pixels, so a run's
numbers do not depend on what was in the cache when (a resumed run with an empty or a
partly written cache, evictions) and exact resume stays exact.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import torch

KINDS = ("vae", "clip")
FLUSH_BYTES = 64 * 2**20  # new entries written to disk in parts of about this size


def frame_key(frame: torch.Tensor, context: str = "") -> str:
    """The hex digest of one frame's pixels (a CPU tensor of any shape and dtype) and of ``context``."""
    array = frame.detach().cpu().contiguous().numpy()
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{context}{array.dtype}{array.shape}".encode())
    h.update(array.data)
    return h.hexdigest()


def encoder_fingerprint(vae: torch.nn.Module, image_encoder: torch.nn.Module, *extra: str) -> str:
    """A digest of the frozen encoders' weights and of ``extra`` (precision, device): what makes a disk cache valid."""
    h = hashlib.blake2b(digest_size=16)
    h.update(torch.__version__.encode())
    for part in extra:
        h.update(part.encode())
    for name, module in (("vae", vae), ("image_encoder", image_encoder)):
        for key, tensor in module.state_dict().items():
            array = tensor.detach().cpu().contiguous()
            h.update(f"{name}.{key}{array.dtype}{tuple(array.shape)}".encode())
            h.update(array.reshape(-1).view(torch.uint8).numpy().data)
    return h.hexdigest()


def compute_context(device) -> str:
    """The precision the encoders run at on ``device`` here (autocast or not): part of every key, so that
    validation (no autocast) and training (mixed precision) never share an entry."""
    kind = torch.device(device).type
    dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else None
    return f"{kind}:{dtype}"


class EncoderCache:
    """Per-frame VAE posterior moments and CLIP embeddings, in memory up to ``max_mb``, optionally on disk.

    Args:
        vae: the frozen ``AutoencoderKLTemporalDecoder``.
        image_encoder: the frozen ``CLIPVisionModelWithProjection``.
        clip_config: the official ``ImageEncoderConfig`` (input size, mean, std).
        max_mb: memory for the entries, least recently used dropped first; the disk cache
            stops growing at the same size.
        folder: where the entries are written (safetensors parts) and read back at start;
            ``None`` keeps them in memory only.
        process: this process's index, in the names of the parts it writes.
    """

    def __init__(self, vae, image_encoder, clip_config, max_mb: float, folder: str | Path | None = None,
                 process: int = 0):
        self.vae, self.image_encoder, self.clip_config = vae, image_encoder, clip_config
        self.max_bytes = int(max_mb * 2**20)
        self.folder = None if folder is None else Path(folder)
        self.process = process
        self.entries: OrderedDict[tuple[str, str], tuple[torch.Tensor, ...]] = OrderedDict()
        self.bytes = 0
        self.encoded = {kind: 0 for kind in KINDS}  # frames run through each encoder
        self.hits = {kind: 0 for kind in KINDS}
        self._unsaved: list[tuple[str, str]] = []
        self._unsaved_bytes = 0
        self._on_disk = 0  # bytes in this folder's parts
        self._parts = 0
        if self.folder is not None:
            self._read_parts()

    # Lookups --------------------------------------------------------------------------------------
    @torch.no_grad()
    def vae_moments(self, frames: torch.Tensor, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)``, each ``(N, C, h, w) float32`` on ``device``, of ``frames (N, 3, H, W)`` in ``[-1, 1]`` (CPU)."""
        from amodal.backbones.svd import vae_dtype

        def encode(frame):
            dist = self.vae.encode(frame.to(device, vae_dtype(self.vae))).latent_dist
            return dist.mean.float(), dist.std.float()

        mean, std = self._lookup("vae", frames, device, encode)
        return mean, std

    @torch.no_grad()
    def clip_embeddings(self, frames: torch.Tensor, device) -> torch.Tensor:
        """``(N, D) float32`` on ``device``: the CLIP image embeddings of ``frames (N, 3, H, W)`` in ``[-1, 1]`` (CPU)."""
        from amodal.backbones.svd import image_embeddings
        from amodal.checkpoints.official import adapter

        def encode(frame):
            return (image_embeddings(self.image_encoder, adapter.clip_pixels(frame.to(device), self.clip_config)),)

        return self._lookup("clip", frames, device, encode)[0]

    def _lookup(self, kind: str, frames: torch.Tensor, device, encode) -> tuple[torch.Tensor, ...]:
        frames = frames.detach().cpu().float().contiguous()
        context = compute_context(device)
        rows = []
        for frame in frames:
            key = (kind, frame_key(frame, context))
            row = self.entries.get(key)
            if row is None:
                # Alone, so that the value does not depend on the rest of the batch (module docstring).
                row = tuple(t[0].cpu() for t in encode(frame[None]))
                self.encoded[kind] += 1
                self._store(key, row)
            else:
                self.hits[kind] += 1
                self.entries.move_to_end(key)
            rows.append(row)
        if self._unsaved_bytes >= FLUSH_BYTES:
            self.save()
        return tuple(torch.stack(column).to(device) for column in zip(*rows))

    def _store(self, key: tuple[str, str], row: tuple[torch.Tensor, ...], saved: bool = False) -> None:
        size = sum(t.numel() * t.element_size() for t in row)
        if key in self.entries or size > self.max_bytes:
            return
        self.entries[key] = row
        self.bytes += size
        if not saved and self.folder is not None and self._on_disk + self._unsaved_bytes + size <= self.max_bytes:
            self._unsaved.append(key)
            self._unsaved_bytes += size
        while self.bytes > self.max_bytes:
            _, dropped = self.entries.popitem(last=False)
            self.bytes -= sum(t.numel() * t.element_size() for t in dropped)

    # Disk -------------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write the entries made since the last save (those still in memory) as one more part."""
        from safetensors.torch import save_file

        from amodal.util.fs import atomic_path

        if self.folder is None or not self._unsaved:
            return
        tensors, metadata = {}, {}
        for kind in KINDS:
            keys = [k for k in self._unsaved if k[0] == kind and k in self.entries]
            if not keys:
                continue
            rows = [self.entries[k] for k in keys]
            for i, column in enumerate(zip(*rows)):
                tensors[f"{kind}.{i}"] = torch.stack(column).contiguous()
            metadata[kind] = ",".join(k[1] for k in keys)
        if tensors:
            while (path := self.folder / f"part-{self.process}-{self._parts:05d}.safetensors").exists():
                self._parts += 1
            with atomic_path(path) as tmp:
                save_file(tensors, str(tmp), metadata=metadata)
            self._parts += 1
        self._on_disk += self._unsaved_bytes
        self._unsaved, self._unsaved_bytes = [], 0

    def _read_parts(self) -> None:
        from safetensors import safe_open

        for path in sorted(self.folder.glob("part-*.safetensors")):
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                for kind in KINDS:
                    if not metadata.get(kind):
                        continue
                    columns = [f.get_tensor(f"{kind}.{i}") for i in range(2 if kind == "vae" else 1)]
                    for j, digest in enumerate(metadata[kind].split(",")):
                        row = tuple(c[j].clone() for c in columns)
                        self._on_disk += sum(t.numel() * t.element_size() for t in row)
                        if self.bytes < self.max_bytes:
                            self._store((kind, digest), row, saved=True)

    def summary(self) -> dict:
        """Frames encoded and cache hits per encoder, and the memory held (MB)."""
        return {"encoded": dict(self.encoded), "hits": dict(self.hits), "mb": self.bytes / 2**20}


@torch.no_grad()
def latent_noise_gain(vae, frames: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """``(C,)``: per latent channel, how much pixel noise of std ``sigma`` moves the VAE's posterior mode, per unit ``sigma``.

    The ``"latent-noise"`` approximation of condition augmentation adds ``gain * sigma_c * n``
    (``n`` white, in latent space) to the mode of the clean condition, where the reference
    encodes ``c + sigma_c * n`` (pixel space). ``frames``: ``(N, 3, H, W)`` in ``[-1, 1]``,
    frames like the conditions it is used for.
    """
    from amodal.backbones.svd import encode_mode

    clean = encode_mode(vae, frames[None])
    noisy = encode_mode(vae, (frames + sigma * torch.randn(frames.shape, generator=generator).to(frames.device))[None])
    shift = (noisy - clean)[0]  # (N, C, h, w)
    return shift.transpose(0, 1).flatten(1).std(dim=1) / sigma
