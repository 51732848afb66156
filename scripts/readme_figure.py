"""Render the README's example figure from the demo dataset (no network).

    python scripts/readme_figure.py   ->  docs/demo_lowlevel_r.png

A 10-subject x 800-TR demo, low-level acoustic + word-rate features, the
kit's encoding engine, and the mean held-out r painted on the cortex.
"""

import tempfile
from pathlib import Path

import numpy as np

from encoding_kit.analysis.brainmaps import plot_brain
from encoding_kit.data.story import load_story
from encoding_kit.demo.generate import make_demo_dataset
from encoding_kit.encoding.evaluate import evaluate_encoding
from encoding_kit.features.baseline import baseline_features

ROOT = Path(__file__).resolve().parent.parent


def main():
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_demo_dataset(Path(tmp) / "demo", n_subjects=10, n_trs=800, seed=0)
        story = load_story(folder)
        base = baseline_features(story.words, story.wav, story.sr, story.n_trs)
        X = np.concatenate([base[k] for k in ("envelope", "log_mel", "word_rate", "phoneme_rate")], axis=1)
        res = evaluate_encoding(X, story.fmri)
    out = ROOT / "docs" / "demo_lowlevel_r.png"
    plot_brain(np.nanmean(res.r, 0), title="Demo data: held-out r of low-level acoustic + word-rate features "
                     "(mean of 10 subjects)", cmap="magma", vmin=0, out=out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
