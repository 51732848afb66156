"""The offline demo: a course-format dataset with planted ground truth (eSpeak speech, planted drivers)."""
