"""Grading for the course: ``vae-course grade``, ``progress``, ``check-tamper``, ``generate``.

- ``lessons``   where the course is, which lesson a learner means
- ``autograde`` nbgrader's autograder on a private course, in an isolated worker process
- ``tamper``    the static tamper scan and the run-time guard
- ``record``    the append-only grade record (``.vae_course/grades.jsonl``)
- ``cli``       the ``vae-course`` command

Importing it does nothing (nbgrader is only imported when grading runs).
"""
