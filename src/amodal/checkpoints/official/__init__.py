"""The official Diffusion-VAS checkpoints (``diffusion-vas-amodal-segmentation``,
``diffusion-vas-content-completion``): diffusers pipeline folders whose layout only
:mod:`~amodal.checkpoints.official.adapter` knows; :mod:`~amodal.checkpoints.official.config` holds
their typed settings and :mod:`~amodal.checkpoints.official.model` the networks plus the sampling loop.
Stage wrappers: :mod:`amodal.segmentation.official`, :mod:`amodal.completion.official`.
"""
