"""Brain-tuned language models (notebook 08): fine-tune a text model on the listeners' brain data.

Modules, in the order a run uses them:

* :mod:`.compress` - the compressed brain state (top-ceiling ROIs, ridge-selected ROIs, PCA; BrainLM where loadable);
* :mod:`.windows` - training examples (text window + delayed brain state) from a fold's training TRs only;
* :mod:`.model` - the encoder with a masked-LM head and a brain input (BrainAligner) or a brain head (direct);
* :mod:`.train` - the seeded training loop and the tuned-weight cache;
* :mod:`.frozen` - the frozen lower layers' states, computed once per distinct input and shared by every run;
* :mod:`.controls` - the text-only and shuffled-brain controls, the checks of seeds and shifts;
* :mod:`.folds` - the study's outer folds and results combined over folds;
* :mod:`.study` - tuning fold by fold and scoring like the baseline; repeated runs (seeds x folds);
* :mod:`.verdict` - effects, bootstrap intervals and verdicts of the repeated runs;
* :mod:`.report` - the study's table, subjects, ROI groups, paired test, planted truth, leak check.
"""

from .compress import COMPRESSIONS, BrainCompressor  # noqa: F401
from .controls import AC_THRESHOLD, CONTROLS, autocorrelation_min_shift, check_seeds, shift_within_runs  # noqa: F401
from .frozen import FrozenStates, TopLayers  # noqa: F401
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
from .verdict import (  # noqa: F401
    effect_interval,
    leak_contrast,
    literature_sentence,
    model_table,
    paired_differences,
    planted_sentence,
    subject_means,
    tuning_verdict,
    tuning_verdict_text,
)
from .windows import MIN_TRAINING_TRS, contiguous_runs, inner_validation_split, training_examples  # noqa: F401
