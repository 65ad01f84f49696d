"""Edge: ``python -m devnix.reaper CONTAINER...`` finishes removing containers after devnix has exited.

Started detached by :func:`devnix.engine.remove_container_promptly` when a busy engine does not remove a
builder within a few seconds of a Ctrl-C: the user gets the prompt back, and nothing is left behind.
"""

from __future__ import annotations

import sys
import time

from devnix import engine
from devnix.errors import EngineError

GIVE_UP_AFTER = 600.0


def main(containers: list[str]) -> int:
    deadline = time.monotonic() + GIVE_UP_AFTER
    pending = list(containers)
    while pending and time.monotonic() < deadline:
        for container in list(pending):
            try:
                engine.remove_container(container, timeout=120.0)
                pending.remove(container)
            except EngineError:
                time.sleep(2)
    return 1 if pending else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
