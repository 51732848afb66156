"""The website's generated parts and its offline link check, on tiny inputs (the whole build: tests/test_browser.py)."""

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "docs" / "_ext"))
sys.path.insert(0, str(ROOT / "docs"))

import check_links  # noqa: E402
import kit_generated  # noqa: E402


def test_a_benchmark_file_becomes_a_table_with_its_date_machine_and_commit(tmp_path):
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    (folder / "ridge.csv").write_text("date,machine,commit,setting,seconds\n"
                                      "2026-12-06,2-core Xeon,abc1234,kit,25.3\n2026-12-06,2-core Xeon,abc1234,course,229\n")
    (folder / "fidelity.json").write_text('{"meta": {"date": "2026-12-05", "commit": "def5678"}, '
                                          '"rows": [{"lever": "bf16", "median_r": 1.0}]}')
    text = kit_generated.benchmark_files(tmp_path)
    assert "Run: date 2026-12-06; machine 2-core Xeon; commit abc1234." in text
    assert "| setting | seconds |" in text and "| kit | 25.3 |" in text
    assert "date 2026-12-05; commit def5678" in text and "| bf16 | 1.0 |" in text


def test_a_file_without_its_run_says_so_and_no_file_says_how_to_make_one(tmp_path):
    assert "`benchmarks/results/` is empty" in kit_generated.benchmark_files(tmp_path)
    folder = tmp_path / "benchmarks" / "results"
    folder.mkdir(parents=True)
    (folder / "x.csv").write_text("a,b\n1,2|3\n")
    text = kit_generated.benchmark_files(tmp_path)
    assert "records no date, machine or commit" in text and "2\\|3" in text


def test_a_page_that_another_change_adds_is_included_once_it_exists(tmp_path):
    assert "not written yet" in kit_generated.optional_include("reliability.md", False, "The reliability figures")
    assert "{include} /reliability.md" in kit_generated.optional_include("reliability.md", True, "x")


def test_the_link_check_finds_a_missing_page_and_a_missing_anchor(tmp_path):
    (tmp_path / "index.html").write_text('<a href="b.html#here">b</a> <a href="c.html">c</a> <img src="i.png">'
                                         '<a href="https://example.org/x">out</a>')
    (tmp_path / "b.html").write_text('<h1 id="there">b</h1>')
    problems = check_links.broken_links(tmp_path)
    assert sorted(problems) == ["index.html: b.html#here (no id 'here' on that page)", "index.html: c.html (no such file)",
                                "index.html: i.png (no such file)"]
    (tmp_path / "b.html").write_text('<h1 id="here">b</h1>')
    (tmp_path / "c.html").write_text("c")
    (tmp_path / "i.png").write_bytes(b"png")
    assert check_links.broken_links(tmp_path) == []
