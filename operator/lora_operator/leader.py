"""Leader election over a coordination.k8s.io Lease, so that only one of several replicas works.

A replica that is not the leader waits, serving its liveness probe, until it acquires
the Lease. A leader that fails to renew the Lease exits at once, because another replica
may take over right after, and two active operators would race on the same trainings.
Kubernetes then restarts it as a follower.
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


class _RepeatedElectionMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in REPEATED_ELECTION_MESSAGES)


logging.getLogger("leaderelection").addFilter(_RepeatedElectionMessages())


def replica_identity() -> str:
    """Return a name for this replica that is unique across restarts: the pod name plus a random suffix."""
    return f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"


def wait_for_leadership(api_client: client.ApiClient, *, namespace: str, lease: str, identity: str) -> None:
    """Block until this replica holds the Lease; later, exit the process when it loses it."""
    lock = LeaseLock(lease, namespace, identity)
    lock.api_instance = client.CoordinationV1Api(api_client)
    acquired = threading.Event()

    def lead() -> None:
        log.info("acquired Lease %s/%s as %s: starting work", namespace, lease, identity)
        acquired.set()
        threading.Event().wait()  # The renew loop runs as long as this callback does.

    def lost() -> None:
        log.error("lost Lease %s/%s: exiting so that only the new leader works", namespace, lease)
        os._exit(EXIT_LEADERSHIP_LOST)

    config = electionconfig.Config(
        lock, LEASE_DURATION_SECONDS, RENEW_DEADLINE_SECONDS, RETRY_PERIOD_SECONDS, lead, lost
    )
    log.info("waiting for Lease %s/%s as %s", namespace, lease, identity)
    threading.Thread(target=leaderelection.LeaderElection(config).run, name="leader-election", daemon=True).start()
    acquired.wait()


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
