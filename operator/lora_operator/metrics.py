"""Prometheus metrics of the operator, served on /metrics."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

PHASES = ("Pending", "Queued", "Running", "Succeeded", "Failed", "Suspended")
# Seconds, from sub-second operator reactions to day-long trainings.
BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600)


def _parse_time(value: str) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _seconds_between(start: str, end: str) -> float | None:
    first, last = _parse_time(start), _parse_time(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


class Metrics:
    """The operator's metrics; one registry per instance so tests can read them apart."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.trainings = Gauge("lora_trainings", "LoRATrainings by phase, as last seen", ["phase"], registry=self.registry)
        self.reconcile_errors = Counter(
            "lora_reconcile_errors", "Reconciles that raised an error and will be retried", registry=self.registry
        )
        self.create_to_job = Histogram(
            "lora_create_to_job_seconds", "Seconds from a training's creation to its first Job",
            buckets=BUCKETS, registry=self.registry,
        )
        self.queue_time = Histogram(
            "lora_queue_seconds", "Seconds from an attempt's Job creation to its pod running",
            buckets=BUCKETS, registry=self.registry,
        )
        self.run_time = Histogram(
            "lora_run_seconds", "Seconds from a training's start to its end", buckets=BUCKETS, registry=self.registry
        )
        self.api_requests = Counter(
            "lora_api_requests", "Kubernetes API requests of the reconciler, watches excluded",
            ["verb", "resource"], registry=self.registry,
        )
        self._phases: dict[str, str] = {}

    def count_request(self, verb: str, resource: str) -> None:
        self.api_requests.labels(verb=verb, resource=resource).inc()

    def observe_job_created(self, body: dict[str, Any]) -> None:
        if (body.get("status") or {}).get("attempt"):
            return  # Only the first Job counts for create-to-Job.
        created = body["metadata"].get("creationTimestamp", "")
        seconds = _seconds_between(created, datetime.now(timezone.utc).isoformat())
        if seconds is not None:
            self.create_to_job.observe(seconds)

    def observe_phase(self, body: dict[str, Any], *, old_phase: str, phase: str, status: dict[str, Any]) -> None:
        key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
        self._phases[key] = phase
        for name in PHASES:
            self.trainings.labels(phase=name).set(sum(1 for value in self._phases.values() if value == name))
        if phase == "Running" and old_phase != "Running":
            queued = _seconds_between(status.get("jobCreatedAt", ""), status.get("startTime", ""))
            if queued is not None:
                self.queue_time.observe(queued)
        if phase in ("Succeeded", "Failed"):
            ran = _seconds_between(status.get("startTime", ""), status.get("completionTime", ""))
            if ran is not None:
                self.run_time.observe(ran)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted training from the phase gauge, so memory stays flat in the number seen."""
        self._phases.pop(f"{namespace}/{name}", None)
        for phase in PHASES:
            self.trainings.labels(phase=phase).set(sum(1 for value in self._phases.values() if value == phase))
