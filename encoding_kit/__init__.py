"""encoding_kit: voxelwise (ROI-wise) encoding models of a story-listening fMRI dataset.

Modules follow the pipeline stages: ``timebase`` and ``data`` (time alignment
and loading), ``features`` (stimulus features), ``encoding`` (ridge models and
cross-validation), ``stats`` (noise ceiling, significance), ``brainmaps``
(ROI names and surface plots), ``demo`` (offline dataset with planted truth)
and ``runner`` (executing the notebooks). ``utils.py`` re-exports the public API.
"""

__version__ = "0.1.0"
