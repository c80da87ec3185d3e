"""Everything between files and the one :class:`amodal.Clip` layout.

- :mod:`~amodal.data.io`: readers and writers of frames, videos, masks and RLE JSON;
- :mod:`~amodal.data.datasets`: SAIL-VOS, TAO-Amodal, MOVi and synthetic sets as clips;
- :mod:`~amodal.data.synth`: the synthetic video world;
- :mod:`~amodal.data.geometry`: letterboxing frames onto a model's canvas and back;
- :mod:`~amodal.data.windows`: the one window planner (offline and streaming).
"""
