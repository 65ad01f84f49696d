"""Pure: what ``devnix doctor`` concludes from what the engine, the host and the project answered.

Nothing here talks to the engine: :mod:`devnix.commands.doctor` gathers :class:`Facts` (the engine's
``/info`` and ``/version``, probe containers' outcomes, the project's files) and :func:`report` turns them
into verdicts. That split is what lets recorded answers of engines that cannot run on a Linux CI machine
(Docker Desktop on a Mac, Colima, OrbStack, ...) be tested for kind, architecture and hints.

- :mod:`.model`: the words (statuses, engine kinds, checks) and the facts;
- :mod:`.engines`: which engine answered, and the hints for each kind;
- :mod:`.server`: the probe of whether VS Code's server can start in an image;
- :mod:`.project`: the checks of the project's devcontainer.json;
- :mod:`.report`: all of it, in the order the table shows.
"""

from devnix.doctor.engines import detect_kind, kind_from_endpoint, rootless_of
from devnix.doctor.model import (
    GIB,
    STORE_VOLUME_PREFIX,
    Check,
    Devcontainer,
    Disk,
    EndpointFacts,
    EngineSummary,
    Facts,
    Kind,
    Probe,
    RemoteBuilder,
    Report,
    Status,
    VSCodeSettings,
)
from devnix.doctor.project import devcontainer_from_config
from devnix.doctor.report import report
from devnix.doctor.server import SERVER_PROBE, ServerProbe, parse_server_probe

__all__ = [
    "GIB",
    "SERVER_PROBE",
    "STORE_VOLUME_PREFIX",
    "Check",
    "Devcontainer",
    "Disk",
    "EndpointFacts",
    "EngineSummary",
    "Facts",
    "Kind",
    "Probe",
    "RemoteBuilder",
    "Report",
    "ServerProbe",
    "Status",
    "VSCodeSettings",
    "detect_kind",
    "devcontainer_from_config",
    "kind_from_endpoint",
    "parse_server_probe",
    "report",
    "rootless_of",
]
