"""Teaching the kit as an assignment: the student release, public and hidden checks, the rubric.

``markers``  the exercise markers in the jupytext sources and the otter-grader master notebooks built from them
``release``  ``python -m encoding_kit release``: the student kit (otter-grader strips the solutions)
``checks``   ``check(name, ...)``: the public checks students run on their own objects (shipped to students)
``hidden``   the TAs' hidden tests on what ``check`` recorded (left out of the student release)
``rubric``   the course rubric (an instructor-editable YAML file) scored from a graded class; the LMS CSV
"""
