"""Stage 1, data and time base: the course files, their checks, the ROIs, one time base, the story."""

from ..core.lazy import lazy_attribute

PUBLIC = {  # name: the module that defines it
    "Story": "story",
    "load_story": "story",
    "load_fmri": "course_files",
    "load_align": "course_files",
    "load_audio": "course_files",
    "load_truth": "course_files",
    "N_ROIS": "course_files",
    "AUDIO_SR": "course_files",
    "DataFileError": "course_files",
    "TR": "timebase",
    "TimeBase": "timebase",
    "pool_to_trs": "timebase",
    "audio_windows": "timebase",
    "POOL_METHODS": "timebase",
    "roi_names": "rois",
    "roi_table": "rois",
    "roi_index": "rois",
}
"""The public API of this stage (imported from its module on first use)."""
__all__ = sorted(PUBLIC)


__getattr__ = lazy_attribute(__name__, PUBLIC)
