"""Pinned versions of the test-stack binaries and the cache folder derived from them.

scripts/build-components loads this file by path (it does not import the
`tests` package), so it uses the standard library only.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

# k8s.io/kubernetes tags releases as v1.X.Y and its staging modules
# (k8s.io/api, k8s.io/client-go, ...) as v0.X.Y. These pins resolved on the Go
# module proxy and built with Go 1.26.8 (linux/amd64, BUILD_RECIPE_REVISION 1).
KUBERNETES_VERSION = "v1.36.3"
KUBERNETES_STAGING_VERSION = "v0.36.3"
ETCD_VERSION = "v3.6.17"
KWOK_VERSION = "v0.8.0"
HELM_VERSION = "v4.3.2"

# Bump when scripts/build-components changes how it builds (flags, packages),
# so that caches built by the old recipe are not reused.
BUILD_RECIPE_REVISION = 1

KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
ETCD_BINARIES = ("etcd",)
KWOK_BINARIES = ("kwok",)
HELM_BINARIES = ("helm",)
ALL_BINARIES = KUBERNETES_BINARIES + ETCD_BINARIES + KWOK_BINARIES + HELM_BINARIES


def components_cache_key() -> str:
    """Return a short key that changes whenever a pinned version or the build recipe changes."""
    pins = [
        f"kubernetes={KUBERNETES_VERSION}",
        f"kubernetes-staging={KUBERNETES_STAGING_VERSION}",
        f"etcd={ETCD_VERSION}",
        f"kwok={KWOK_VERSION}",
        f"helm={HELM_VERSION}",
        f"recipe={BUILD_RECIPE_REVISION}",
        f"machine={platform.system()}-{platform.machine()}",
    ]
    digest = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12]
    return f"k8s-{KUBERNETES_VERSION}-{digest}"


def components_cache_root() -> Path:
    """Return the folder, outside the repository, that contains one subfolder per cache key."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "lora-operator" / "components"


def components_bin_dir() -> Path:
    """Return the folder that contains the binaries of the pinned versions."""
    return components_cache_root() / components_cache_key() / "bin"


def missing_binaries(bin_dir: Path) -> list[str]:
    """Return the names from ALL_BINARIES that are not executable files in bin_dir."""
    return [name for name in ALL_BINARIES if not os.access(bin_dir / name, os.X_OK)]
