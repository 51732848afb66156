"""The TAs' hidden tests: the classic mistakes, found in what a graded notebook's ``check`` calls recorded.

Left out of the student release. Each test reads ``checks/<record>.npz`` (``allow_pickle=False``: a
submission's files never run here) and returns ``(passed, message)``; a missing record fails with
"not recorded".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MIN_GAP = 2  # TRs: the least distance between a training TR and the test block (the kit uses 4, the largest delay)


def time_base(rec):
    """Words and audio on one time base: each word's onset lies in the TR the student gave it (t = 0: audio onset)."""
    onsets, trs, tr = rec["word_onsets"], rec["word_trs"], float(rec["tr"])
    wrong = (onsets < trs * tr - 1e-6) | (onsets >= (trs + 1) * tr + 1e-6)
    return not wrong.any(), f"{int(wrong.sum())} of {len(onsets)} words are in a TR that does not contain their onset"


def audio_window_end(rec):
    """No audio window reaches past the end of its TR (the response cannot depend on later sound)."""
    ends, tr = rec["audio_spans"][:, 1], float(rec["tr"])
    late = ends > tr * (np.arange(len(ends)) + 1) + 1e-6
    return not late.any(), f"{int(late.sum())} audio windows end after their TR ({np.max(ends - tr * (np.arange(len(ends)) + 1)):.2f} s past)"


def scaler_in_fold(rec):
    """The scaler / PCA of each fold was fitted on that fold's training TRs, not on all TRs."""
    roles, means, X = rec["roles"], rec["means_proj"], rec["X_proj"]
    if len(means) != len(roles):
        return False, f"{len(means)} fitted means for {len(roles)} folds"
    bad = [i for i, row in enumerate(roles) if not np.allclose(means[i], X[row == 1].mean(0), rtol=1e-4, atol=1e-6)]
    return not bad, f"folds {bad}: the fitted mean is not the training TRs' mean (fitted on all TRs?)"


def all_folds(rec):
    """Every fold is scored and the reported r is their mean: not the last fold only."""
    roles, fold_r, r_cv = rec["roles"], rec["fold_r"], rec["r_cv"]
    covered = (roles == 2).any(0).mean()
    mean = np.tanh(np.arctanh(np.clip(fold_r, -0.999999, 0.999999)).mean(0))
    ok = len(fold_r) == len(roles) >= 2 and covered > 0.95 and (np.allclose(r_cv, fold_r.mean(0), atol=1e-4)
                                                                 or np.allclose(r_cv, mean, atol=1e-4))
    return ok, (f"{len(fold_r)} fold scores for {len(roles)} folds, test blocks cover {covered:.0%} of the TRs, "
                "r_cv is not the mean over folds")


def gap(rec):
    """No training TR within :data:`MIN_GAP` TRs of its test block (BOLD is autocorrelated)."""
    closest = []
    for row in rec["roles"]:
        train, test = np.flatnonzero(row == 1), np.flatnonzero(row == 2)
        closest.append(np.abs(train[:, None] - test[None, :]).min() if len(train) and len(test) else 0)
    return min(closest, default=0) > MIN_GAP, f"a training TR lies {min(closest, default=0)} TR(s) from its test block"


def held_out_layer(rec):
    """The best layer is chosen on some subjects and reported on the others (not on the choosing ones)."""
    layer_r, layers = rec["layer_r"], list(rec["layers"])
    chosen, reported = rec["chosen_on"], rec["reported_on"]
    best = layers[int(np.argmax(layer_r[chosen].mean(0)))] if len(chosen) else None
    column = layers.index(rec["best_layer"].item())
    ok = (len(chosen) and len(reported) and not np.intersect1d(chosen, reported).size and best == rec["best_layer"].item()
          and np.isclose(rec["reported_r"].item(), layer_r[reported, column].mean(), atol=1e-4))
    return bool(ok), (f"layer chosen on subjects {chosen.tolist()}, reported on {reported.tolist()}: the reported r must come "
                      "from subjects that did not choose the layer")


TESTS = {"time_base": ("time_base", time_base), "audio_window_end": ("time_base", audio_window_end),
         "scaler_in_fold": ("cross_validation", scaler_in_fold), "all_folds": ("cross_validation", all_folds),
         "gap": ("cross_validation", gap), "held_out_layer": ("layer_choice", held_out_layer)}
"""{hidden test: (the check record it reads, the test)}."""


def run_hidden(name, results):
    """Run hidden test ``name`` on every record under ``results`` (a graded submission's results folders).

    Returns
    -------
    (bool, str)
        Passed only when a record exists and every record passes.
    """
    record, test = TESTS[name]
    files = sorted(p for p in Path(results).rglob(f"checks/{record}.npz") if "previous" not in p.parts)
    if not files:
        return False, f"not recorded (no check({record!r}, out=...) ran)"
    for path in files:
        try:
            with np.load(path, allow_pickle=False) as data:
                passed, message = test({k: data[k] for k in data.files})
        except Exception as exc:  # a damaged or forged record: the test fails, the grader goes on
            return False, f"{path.name}: unreadable record ({type(exc).__name__})"
        if not passed:
            return False, message
    return True, "passed"
