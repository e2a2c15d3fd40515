"""Test support shared by the project's tests and the conformance runner: the tolerance
table (tolerance.py) and the hypothesis case generators (strategies.py)."""
