"""Grade a synthetic class of tiny notebooks and render its HTML gradebook to docs/gradebook.png (README picture).

Rendered with headless Chromium when one is installed (``chromium`` / ``google-chrome``), else the script says so
and stops. Usage: ``python scripts/gradebook_screenshot.py [--out docs/gradebook.png]``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from encoding_kit.grading import grade
from encoding_kit.grading.synthetic import bad_inputs, three_students

ROOT = Path(__file__).resolve().parent.parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def render(page, png, width=1400, height=540):
    """Screenshot of ``page`` (HTML file) with headless Chromium; False when no browser is installed."""
    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        return False
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={width},{height}", f"--screenshot={png}", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "gradebook.png"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        klass = bad_inputs(three_students(tmp / "submissions"))
        (tmp / "data").mkdir()
        grade(klass, tmp / "grading", data_dir=tmp / "data", quick=True, timeout=15, jobs=2, tolerance=0.01)
        page = tmp / "grading" / "gradebook.html"
        if not render(page, Path(args.out).resolve()):
            print("No headless Chromium found (apt-get install chromium): the page is not rendered.", file=sys.stderr)
            return 1
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
