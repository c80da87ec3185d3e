"""Where weights come from and how they are read.

- :mod:`~amodal.checkpoints.registry`: bundled model names, the one folder-format detector, and the
  loaders of every stage-1 and stage-2 model;
- :mod:`~amodal.checkpoints.safetensors`: strict safetensors reading (missing and unexpected keys listed);
- :mod:`~amodal.checkpoints.official`: the official Diffusion-VAS checkpoint layout (the only place
  that knows it) and the two-condition sampling loop both official stages share;
- :mod:`~amodal.checkpoints.surgery`: changes of a trained model that keep what it computes
  (widening its condition, turning the regression twin into a diffusion model).
"""
