"""Two operator replicas with leader election: one works, the other takes over when it dies."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import replace

import pytest
from kubernetes import client

from tests.cluster.operator.conftest import OperatorProcess, Trainings, training_manifest
from tests.harness.ports import free_ports
from tests.harness.waiting import poll_until

pytestmark = pytest.mark.cluster


def elected(operator: OperatorProcess, namespace: str) -> OperatorProcess:
    operator.environment.update({
        "LORA_OPERATOR_LEADER_ELECTION": "true",
        "LORA_OPERATOR_LEADER_ELECTION_NAMESPACE": namespace,
    })
    return operator


def healthy(operator: OperatorProcess) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.ports[1]}/healthz", timeout=5) as response:
        return response.status == 200


def replica(operator: OperatorProcess, tmp_path, name: str) -> OperatorProcess:
    """Return a second operator process with the same environment, its own log and ports."""
    return replace(operator, environment=dict(operator.environment), log_path=tmp_path / f"{name}.log",
                   ports=free_ports(2), process=None, starts=0)


def leader_identity(operator: OperatorProcess) -> str:
    match = re.search(r"acquired Lease \S+ as (\S+):", operator.log())
    assert match, operator.log()[-3000:]
    return match.group(1)


def test_standby_takes_over(operator, trainings: Trainings, namespace, tmp_path):
    # The fixture's operator runs without election: restart it as a candidate, then add a second one.
    operator.stop()
    first = elected(operator, namespace)
    first.start()
    poll_until(lambda: "acquired Lease" in first.log(), timeout=60, description="the first replica leads")
    second = elected(replica(first, tmp_path, "second"), namespace)
    second.start()
    try:
        poll_until(lambda: "waiting for Lease" in second.log(), timeout=60, description="the second replica waits")
        poll_until(lambda: healthy(second), timeout=30, description="the standby answers its liveness probe")

        trainings.create(training_manifest("led"))
        trainings.wait_job("led-attempt-1")
        # The Job can be visible before the operator has written its log line about it.
        poll_until(lambda: "created Job led-attempt-1" in first.log(), timeout=30, description="the leader logs its Job")
        assert "created Job" not in second.log()

        # The election library's per-try messages are filtered, so a standby's log stays short.
        assert "yet to finish lease_duration" not in second.log()

        first.kill()
        poll_until(lambda: "acquired Lease" in second.log(), timeout=60, description="the standby takes over")
        trainings.create(training_manifest("after-failover"))
        trainings.wait_job("after-failover-attempt-1")
        poll_until(lambda: "created Job after-failover-attempt-1" in second.log(), timeout=30,
                   description="the new leader logs its Job")
    finally:
        second.stop()


def test_stopping_leader_releases_lease(operator, trainings: Trainings, namespace, tmp_path):
    operator.stop()
    first = elected(operator, namespace)
    first.start()
    poll_until(lambda: "acquired Lease" in first.log(), timeout=60, description="the first replica leads")
    first_identity = leader_identity(first)
    second = elected(replica(first, tmp_path, "second"), namespace)
    second.start()
    try:
        poll_until(lambda: "waiting for Lease" in second.log(), timeout=60, description="the second replica waits")

        first.stop()
        lease = client.CoordinationV1Api(trainings.core.api_client).read_namespaced_lease("lora-operator", namespace)
        # Right after the leader exits, the Lease is free or already the standby's, not left to expire.
        assert lease.spec.holder_identity != first_identity
        assert "released Lease" in first.log()
        assert "Traceback" not in first.log()

        poll_until(lambda: "acquired Lease" in second.log(), timeout=60, description="the standby takes over")
        trainings.create(training_manifest("after-handover"))
        trainings.wait_job("after-handover-attempt-1")
    finally:
        second.stop()
