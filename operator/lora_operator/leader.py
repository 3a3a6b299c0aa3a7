"""Leader election over a coordination.k8s.io Lease, so that only one of several replicas works.

A replica that is not the leader waits, serving its liveness probe, until it acquires
the Lease. A leader that fails to renew the Lease exits at once, because another replica
may take over right after, and two active operators would race on the same trainings.
Kubernetes then restarts it as a follower. A leader that shuts down cleanly clears the
Lease's holder, so that a standby takes over within a retry period.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

# A new leader takes over at most about 15 s after the old one stops renewing the Lease.
LEASE_DURATION_SECONDS = 15
RENEW_DEADLINE_SECONDS = 10
RETRY_PERIOD_SECONDS = 2
EXIT_LEADERSHIP_LOST = 3
log = logging.getLogger("lora_operator.leader")
# Messages that the kubernetes client's election logs at INFO on every try, that is every
# RETRY_PERIOD_SECONDS on the leader and on each standby. Its other messages, errors
# included, stay in the log.
REPEATED_ELECTION_MESSAGES = ("yet to finish lease_duration", "has successfully acquired lease")


class _Resigned(Exception):
    """Raised in the leading callback to make the election library stop renewing the Lease."""


class _ElectionNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _Resigned):
            return False  # The library logs the resignation as a failed callback.
        message = record.getMessage()
        return not any(text in message for text in REPEATED_ELECTION_MESSAGES)


logging.getLogger("leaderelection").addFilter(_ElectionNoise())


def replica_identity() -> str:
    """Return a name for this replica that is unique across restarts: the pod name plus a random suffix."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


class Leadership:
    """The Lease this replica has acquired, and its hand-over on shutdown.

    Without a hand-over a standby waits a whole LEASE_DURATION_SECONDS after the last renewal,
    so every rolling upgrade would leave the trainings unwatched for that long.
    """

    def __init__(self, lock: LeaseLock) -> None:
        self.lock = lock
        self.acquired = threading.Event()
        self._resigning = threading.Event()
        self._released = threading.Event()

    def lead(self) -> None:
        log.info("acquired Lease %s/%s as %s: starting work", self.lock.namespace, self.lock.name, self.lock.identity)
        self.acquired.set()
        # The library renews the Lease as long as this callback runs, and stops once it raises.
        self._resigning.wait()
        raise _Resigned

    def stopped_leading(self) -> None:
        if not self._resigning.is_set():
            log.error("lost Lease %s/%s: exiting so that only the new leader works", self.lock.namespace, self.lock.name)
            os._exit(EXIT_LEADERSHIP_LOST)
        try:
            self._clear_holder()
        finally:
            self._released.set()

    def resign(self) -> None:
        """Stop renewing the Lease and clear its holder, so that a standby takes over at its next try."""
        if not self.acquired.is_set():
            return
        self._resigning.set()
        # The renew loop notices the resignation after at most one retry period.
        if not self._released.wait(RETRY_PERIOD_SECONDS + RENEW_DEADLINE_SECONDS):
            log.warning("timed out releasing Lease %s/%s: a standby takes over once it expires",
                        self.lock.namespace, self.lock.name)

    def _clear_holder(self) -> None:
        found, record = self.lock.get(self.lock.name, self.lock.namespace)
        if not found:
            # The library returns the ApiException in place of the record.
            log.warning("failed to read Lease %s/%s before releasing it: %s. A standby takes over once it expires",
                        self.lock.namespace, self.lock.name, getattr(record, "reason", record))
            return
        if record.holder_identity != self.lock.identity:
            return  # Another replica has taken it over.
        lease = self.lock.lease_reference
        lease.spec.holder_identity = None
        lease.spec.lease_duration_seconds = 1
        try:
            # The read's resourceVersion makes this fail rather than clear another holder's Lease.
            self.lock.api_instance.replace_namespaced_lease(self.lock.name, self.lock.namespace, lease)
        except client.ApiException as error:
            log.warning("failed to release Lease %s/%s: %s. A standby takes over once it expires",
                        self.lock.namespace, self.lock.name, error.reason)
            return
        log.info("released Lease %s/%s", self.lock.namespace, self.lock.name)


def wait_for_leadership(api_client: client.ApiClient, *, namespace: str, lease: str, identity: str) -> Leadership:
    """Block until this replica has the Lease; later, exit the process when it loses it, unless it resigned."""
    lock = LeaseLock(lease, namespace, identity)
    lock.api_instance = client.CoordinationV1Api(api_client)
    leadership = Leadership(lock)
    config = electionconfig.Config(
        lock, LEASE_DURATION_SECONDS, RENEW_DEADLINE_SECONDS, RETRY_PERIOD_SECONDS,
        leadership.lead, leadership.stopped_leading,
    )
    log.info("waiting for Lease %s/%s as %s", namespace, lease, identity)
    threading.Thread(target=leaderelection.LeaderElection(config).run, name="leader-election", daemon=True).start()
    leadership.acquired.wait()
    return leadership


class _HealthHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        healthy = self.path.split("?")[0] == "/healthz"
        self.send_response(200 if healthy else 404)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"standby\n" if healthy else b"not found\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server interface
        return  # Probes every few seconds would flood the log.


@contextmanager
def standby_health(bind_address: str, port: int) -> Iterator[None]:
    """Serve /healthz on ``port`` while the block runs; kopf's own liveness endpoint takes the port afterwards."""
    server = ThreadingHTTPServer((bind_address, port), _HealthHandler)
    thread = threading.Thread(target=server.serve_forever, name="standby-health", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
