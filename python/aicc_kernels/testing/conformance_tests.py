"""The conformance suites as pytest tests (collected with the pytest plugin):

    pytest -p aicc_kernels.testing.pytest_plugin --aicc-backend NAME --pyargs aicc_kernels.testing.conformance_tests
"""


def test_conformance(aicc_conformance):
    aicc_conformance.check()
