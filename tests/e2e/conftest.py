"""The operator fixtures, for end-to-end runs that go through the real control plane."""

from tests.cluster.operator.conftest import api, crds_installed, operator, s3_secret, trainings  # noqa: F401
