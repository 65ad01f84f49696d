"""``devnix bootstrap``: build a Nix image for the target system in a builder container, load it, tag it.

The seed's recipe as one command: run a Nix image the engine has (an x86_64 one, emulated on Apple
Silicon) with the settings the situation needs, build a flake output that is a Docker image for the
target system, stream it straight from the builder into the engine, check it, and only then name it.

Everything is a transaction: whatever fails, or a Ctrl-C, removes the builder container and every name
this run set or moved; the builder container also ends by itself when devnix dies without cleaning up
(its main process reads the stdin devnix holds open). The store volume is a cache and stays: it keeps
/nix between runs, so a second run of an unchanged flake builds nothing and loads nothing.

Progress is reported through ``on_event`` (nothing here prints; :mod:`devnix.present.bootstrap` shows it).
The modules: ``pipeline`` (the run, its options and result), ``steps`` (events, undo, signals),
``builder``, ``flakecopy``, ``build`` (nix build and its log), ``image`` (load, verify, tag, push).
"""

from __future__ import annotations

from devnix.bootstrap import NixBuildError, VerifyError
from devnix.commands.bootstrap.pipeline import BootstrapOptions, BootstrapResult, run
from devnix.commands.bootstrap.steps import Event, EventSink, StepTime

__all__ = [
    "BootstrapOptions",
    "BootstrapResult",
    "Event",
    "EventSink",
    "NixBuildError",
    "StepTime",
    "VerifyError",
    "run",
]
