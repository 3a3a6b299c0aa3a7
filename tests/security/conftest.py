"""Fixtures shared with the operator and chart tests, reused by import."""

from tests.cluster.operator.conftest import api, crds_installed, operator, s3_secret, trainings  # noqa: F401
from tests.helm.conftest import cluster_helm  # noqa: F401
