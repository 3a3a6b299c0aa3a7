"""Two operator replicas with leader election: one works, the other takes over when it dies."""

from __future__ import annotations

import urllib.request
from dataclasses import replace

import pytest

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


def test_standby_takes_over(operator, trainings: Trainings, namespace, tmp_path):
    # The fixture's operator runs without election: restart it as a candidate, then add a second one.
    operator.stop()
    first = elected(operator, namespace)
    first.start()
    poll_until(lambda: "acquired Lease" in first.log(), timeout=60, description="the first replica leads")
    second = elected(
        replace(first, environment=dict(first.environment), log_path=tmp_path / "second.log", ports=free_ports(2),
                process=None, starts=0),
        namespace,
    )
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
