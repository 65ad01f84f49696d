"""Edge: the Docker engine. The only package that imports ``docker``, and only inside the functions that
need it, so that light commands (``devnix --version``, ``devnix init``) never pay for the SDK.

One module per job: :mod:`~devnix.engine.api` (which engine, and how a call reaches it), :mod:`~.lookups`
(quick questions), :mod:`~.probes` (doctor's throwaway containers), :mod:`~.containers` (bootstrap's
builders, exec streams, archives, volumes) and :mod:`~.imagestore` (pull, load, tag, remove, push). Every
public name is here too: callers write ``engine.version()``. A test that replaces a function patches the
module that looks it up (``engine.containers.remove_container``), not this package.
"""

from devnix.engine.api import (
    DEFAULT_HOST,
    QUICK_TIMEOUT,
    STREAM_TIMEOUT,
    Endpoint,
    ImageMissingError,
    client,
    endpoint,
)
from devnix.engine.containers import (
    BOOTSTRAP_LABEL,
    ExecStream,
    attach_stdin,
    create_container,
    create_container_raw,
    create_volume,
    exec_output,
    exec_stream,
    put_archive,
    remove_container,
    remove_container_promptly,
    remove_volume,
    start_container,
)
from devnix.engine.imagestore import (
    image_names,
    is_podman,
    load_image,
    pull,
    pull_with_progress,
    push_image,
    remove_image,
    stream_error,
    tag_image,
)
from devnix.engine.lookups import (
    EngineVersion,
    LocalImage,
    containers_with_label,
    image_details,
    image_ids,
    images_with_platforms,
    info,
    local_image,
    local_image_of,
    system_df,
    version,
    version_answer,
    volume_details,
    volumes,
)
from devnix.engine.probes import PROBE_LABEL, ProbeRun, remove_stale_probes, run_probe

__all__ = [
    "BOOTSTRAP_LABEL",
    "DEFAULT_HOST",
    "PROBE_LABEL",
    "QUICK_TIMEOUT",
    "STREAM_TIMEOUT",
    "Endpoint",
    "EngineVersion",
    "ExecStream",
    "ImageMissingError",
    "LocalImage",
    "ProbeRun",
    "attach_stdin",
    "client",
    "containers_with_label",
    "create_container",
    "create_container_raw",
    "create_volume",
    "endpoint",
    "exec_output",
    "exec_stream",
    "image_details",
    "image_ids",
    "image_names",
    "images_with_platforms",
    "info",
    "is_podman",
    "load_image",
    "local_image",
    "local_image_of",
    "pull",
    "pull_with_progress",
    "push_image",
    "put_archive",
    "remove_container",
    "remove_container_promptly",
    "remove_image",
    "remove_stale_probes",
    "remove_volume",
    "run_probe",
    "start_container",
    "stream_error",
    "system_df",
    "tag_image",
    "version",
    "version_answer",
    "volume_details",
    "volumes",
]
