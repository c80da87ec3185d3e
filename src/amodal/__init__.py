"""amodal: video amodal segmentation and content completion with video diffusion priors.

Importing this package has no side effects and imports no heavy dependency; the
library's modules are imported where they are used.
"""

__version__ = "0.1.0"

from amodal.clip import Clip
from amodal.errors import AmodalError, InputError

__all__ = ["Clip", "AmodalError", "InputError", "__version__"]
