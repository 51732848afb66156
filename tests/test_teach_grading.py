"""`grade --rubric`: a synthetic class (solution, untouched release, half done, each planted mistake) scored item by item.

The class runs the assignment's own exercise cells on a tiny stand-in story (encoding_kit/teach/synthetic.py):
9 notebooks of about 2 s each.
"""

import pandas as pd
import pytest

from encoding_kit.grading import grade
from encoding_kit.teach.rubric import DEFAULT_RUBRIC, load_rubric, read_lms_csv
from encoding_kit.teach.synthetic import MISTAKES, synthetic_class

RUBRIC = load_rubric(DEFAULT_RUBRIC)
POINTS = {item["id"]: item["points"] for item in RUBRIC["items"]}
AUTOMATIC = [item["id"] for item in RUBRIC["items"] if item["check"] != "manual"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("teach")
    klass = synthetic_class(root / "class")
    data = root / "no_data"
    data.mkdir()
    table = grade(klass, root / "out", data_dir=data, quick=True, timeout=120, jobs=3, rubric=DEFAULT_RUBRIC)
    return table, pd.read_csv(root / "out" / "rubric.csv").set_index("student"), root / "out"


def test_the_solution_gets_every_automatic_point_and_the_manual_columns_stay_for_the_ta(graded):
    table, book, _ = graded
    assert dict(zip(table["student"], table["status"]))["solution"] == "ok"
    assert {item: book.loc["solution", item] for item in AUTOMATIC} == {item: POINTS[item] for item in AUTOMATIC}
    assert book.loc["solution", "interpretation"] == 0 and book.loc["solution", "max"] == sum(POINTS.values())
    assert book["comment"].isna().all()  # the TA's column, empty


def test_the_untouched_release_is_graded_without_crashing_and_scores_zero(graded):
    table, book, _ = graded
    row = table.set_index("student").loc["empty"]
    assert row["status"] == "error" and row["error"].startswith("NotImplementedError: task 1 (time_base)")
    assert book.loc["empty", "total"] == 0


def test_half_done_gets_partial_credit_item_by_item(graded):
    _, book, _ = graded
    partial = book.loc["partial"]
    expected = {**{item: 0 for item in POINTS},
                "public_checks": POINTS["public_checks"] * 3 / 5,  # 3 of the 5 checks ran and passed
                "models_per_modality": round(POINTS["models_per_modality"] * 2 / 3, 2),  # text and audio only
                **{f"hidden_{t}": POINTS[f"hidden_{t}"] for t in ("time_base", "audio_window_end", "scaler_in_fold",
                                                                   "all_folds", "gap")}}
    assert {item: partial[item] for item in POINTS} == expected


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_each_planted_mistake_loses_exactly_its_item(graded, mistake):
    _, book, _ = graded
    row = book.loc[mistake.replace("hidden_", "mistake_")]
    lost = [item for item in AUTOMATIC if row[item] != POINTS[item]]
    assert lost == [mistake] and row[mistake] == 0


def test_the_lms_csv_round_trips(graded):
    _, book, out = graded
    assert read_lms_csv(out / "lms.csv") == {student: float(total) for student, total in book["total"].items()}
    assert (out / "lms.csv").read_text().splitlines()[0] == "student_id,total"
    assert "<table" in (out / "rubric.html").read_text()
