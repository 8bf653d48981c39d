"""Joining a Ray cluster, or starting a small one on this machine's loopback, quietly.

Ray is an optional extra (`pip install longhorizon[ray]`); this module imports it, so only
the `--ray` paths import this module. A local cluster binds 127.0.0.1 only: Ray otherwise
swaps a loopback address for the host's outward one (`resolve_ip_for_localhost`), which it
skips when it believes it runs on a single-machine OS; we tell it so, for this process
(the constant) and for the processes it starts (the variable).
"""

from __future__ import annotations

import logging
import os

try:
    import ray
    from ray._private import ray_constants
except ImportError as exc:  # the extra is not installed
    raise ImportError(
        "--ray needs Ray: pip install 'longhorizon[ray]' (or scripts/install.sh)"
    ) from exc

__all__ = ["LOCAL_OBJECT_STORE_BYTES", "connect", "gcs_address"]

LOCAL_OBJECT_STORE_BYTES = 200 * 2**20  # trajectories are small; Ray's default is 30% of RAM


def _loopback_only() -> None:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def connect(address: str | None = None, *, num_cpus: int | None = None) -> str:
    """Join the cluster at `address` ("auto": the one `ray start` left here), or start a
    local one (`num_cpus` CPUs, a 200 MB object store) on 127.0.0.1; the GCS address."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return gcs_address()
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}  # worker logs stay in files
    if address is None:
        _loopback_only()
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
            include_dashboard=False,
            **quiet,  # type: ignore[arg-type]
        )
    else:
        if address.split(":")[0] in ("127.0.0.1", "localhost"):
            _loopback_only()
        ray.init(address=address, **quiet)  # type: ignore[arg-type]
    return gcs_address()


def gcs_address() -> str:
    """host:port that another driver passes to `--ray` to join this cluster."""
    return str(ray.get_runtime_context().gcs_address)
