"""The commands the TA guide shows for running, grading and releasing notebooks, written once.

docs/ta_guide.md quotes :data:`GRADING_COMMANDS` verbatim (``tests/test_readme_commands.py``
checks it, and runs the block in one plain ``bash`` without the venv on ``PATH``,
on a tiny demo and a tiny synthetic class; the ``run --quick`` line is the one
``tests/test_notebooks.py`` executes). :data:`RELEASE_COMMANDS`, the same way: the
student release and the rubric.
"""

ACTIVATE = "source .venv/bin/activate   # first, in the kit's folder: the venv `make` built (python, papermill, jupyter)"

RUN_QUICK = 'python -m encoding_kit run --quick --data-dir "$DATA"'

GRADING_COMMANDS = f"""\
{ACTIVATE}
DATA=/path/to/course/data   # the course files (or a demo: python -m encoding_kit demo --data-dir "$DATA")

# the kit's notebooks (in the order that extracts each feature once: 03 first), executed copies in results/executed/
{RUN_QUICK}

# one notebook with parameters (any name in its parameters cell: QUICK, DATA_DIR, MAX_TRS, SUBJECTS, ...)
papermill notebooks/01_text_models.ipynb 01_graded.ipynb -p QUICK True -p DATA_DIR "$DATA" -p MAX_TRS 120 -p SUBJECTS 2 --cwd notebooks

# one student's notebook as handed in (no parameters injected), in the kit's kernel; then a page to read
KIT_DATA_DIR="$DATA" jupyter nbconvert --to notebook --execute submissions/alice/assignment.ipynb --ExecutePreprocessor.kernel_name=encoding-kit --output-dir graded
jupyter nbconvert --to html graded/assignment.ipynb

# a whole class: one folder per student (or loose notebooks) -> grading/gradebook.csv and grading/gradebook.html
python -m encoding_kit grade submissions --data-dir "$DATA" --quick --jobs 4 --timeout 900 --out grading
"""

RELEASE_COMMANDS = f"""\
{ACTIVATE}
DATA=/path/to/course/data   # the course files (or a demo: python -m encoding_kit demo --data-dir "$DATA")

# the student kit: the notebooks with exercises (otter-grader strips the solutions), public checks, a student README
python -m encoding_kit release --out student-kit
# the same with the solution notebooks in solutions/ (for the TAs)
python -m encoding_kit release --out ta-kit --with-solutions

# the course rubric to edit (items, points, checks), then checked: one line per item
python -m encoding_kit rubric --out my_rubric.yaml
python -m encoding_kit rubric --check my_rubric.yaml

# a whole class scored with the rubric -> grading/rubric.csv, rubric.html and lms.csv (student id, total) besides the gradebook
python -m encoding_kit grade submissions --data-dir "$DATA" --quick --jobs 4 --timeout 900 --rubric my_rubric.yaml --out grading
"""
