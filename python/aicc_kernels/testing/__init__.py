"""Test support shared by the project's tests, the conformance runner and chip teams:

    tolerance.py       the tolerance table (how far a result may be from the reference)
    strategies.py      hypothesis building blocks (edge sizes, value kinds, strided views)
    cases/             one op suite per module: case generator + reference check
                       (tests/test_gemm.py and the runner draw from the same ones)
    conformance.py     the runner: `python -m aicc_kernels.testing --backend NAME`
    pytest_plugin.py   the runner inside pytest (`-p aicc_kernels.testing.pytest_plugin`)

docs/PORTING.md explains how a new backend uses them.
"""
