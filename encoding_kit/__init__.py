"""encoding_kit: voxelwise (ROI-wise) encoding models of a story-listening fMRI dataset.

Subpackages follow the pipeline, in the order data flows through them
(``docs/architecture.md`` has the table):

``data``      the course files, their checks, the ROIs, the one time base, the story
``features``  stimulus features from text, audio and multimodal models (and their loading)
``encoding``  gapped cross-validation, delays, ridge, banded ridge, networks, results
``decoding``  identification from brain activity, linear and deep
``analysis``  noise ceiling, significance, layer choice, ROI tables, figures, brain maps
``brain_tuning``  fine-tuning a text model on the listeners' brain data (training TRs only)
``demo``      the offline demo dataset with planted ground truth
``run``       the notebook runner, run profiles and the sweeps a notebook cell calls
``grading``   re-executing and grading the students' notebooks
``teach``     the assignment: the student release, public checks, hidden tests, the rubric
``core``      storage, device and precision, progress, quiet output, argument checks

``utils.py`` (next to this package) is the notebooks' one import surface.
"""

from .core.runtime import apply_wait_policy as _apply_wait_policy

# torch's OpenMP threads wait passively (sleep) instead of spinning: read when torch loads, so set before any import of
# it (core/runtime.py says why and what it measured; a value already in the environment wins).
_apply_wait_policy()

__version__ = "0.1.0"
