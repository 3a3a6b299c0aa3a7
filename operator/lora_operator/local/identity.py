"""Stable identities of local runs, so the same manifest maps to the same run folder."""

from __future__ import annotations

import json
import uuid

from lora_operator.api.training import LoRATraining

# Fixed namespace for uuid5, so a manifest's run uid is the same on every machine.
LOCAL_RUN_NAMESPACE = uuid.UUID("5b0c7e52-6f0e-4c4f-9a51-3f1d3c0b7a10")


def local_run_uid(training: LoRATraining) -> str:
    """Derive the run uid from the namespace, name and spec: a changed spec starts a new run.

    ``suspend`` and ``retry`` are left out because changing them does not change what is trained.
    """
    spec = training.spec.to_wire()
    spec.pop("suspend", None)
    spec.pop("retry", None)
    identity = {"namespace": training.metadata.namespace, "name": training.metadata.name, "spec": spec}
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(uuid.uuid5(LOCAL_RUN_NAMESPACE, canonical))
