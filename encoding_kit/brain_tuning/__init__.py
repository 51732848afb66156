"""Brain-tuned language models (notebook 08): fine-tune a text model on the listeners' brain data.

Modules, in the order a run uses them:

* :mod:`.compress` - the compressed brain state (top-ceiling ROIs, ridge-selected ROIs, PCA; BrainLM where loadable);
* :mod:`.windows` - training examples (text window + delayed brain state) from a fold's training TRs only;
* :mod:`.model` - the encoder with a masked-LM head and a brain input (BrainAligner) or a brain head (direct);
* :mod:`.train` - the seeded training loop and the tuned-weight cache;
* :mod:`.study` - tuning fold by fold and scoring like the baseline;
* :mod:`.report` - the study's table, subjects, ROI groups, paired test, planted truth, leak check.
"""

from .compress import COMPRESSIONS, BrainCompressor  # noqa: F401
from .model import METHODS, check_mlm_model  # noqa: F401
from .report import (  # noqa: F401
    group_table,
    leak_table,
    mask_rate_rows,
    paired_test,
    planted_effect,
    planted_text,
    study_table,
    subject_table,
)
from .study import BrainTuningStudy, combine_folds  # noqa: F401
from .train import TuningConfig, tune_encoder, tuned_weights  # noqa: F401
from .windows import MIN_TRAINING_TRS, contiguous_runs, training_examples  # noqa: F401
