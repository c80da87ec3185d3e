"""Stage 2, content completion: an object's visible pixels and amodal mask in, its full appearance out.

- :mod:`~amodal.completion.official`: an official Diffusion-VAS content-completion checkpoint;
- :mod:`~amodal.completion.pipeline`: windowing and resizing of whole clips around any completer.
"""
