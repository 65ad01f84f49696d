"""devnix: Nix in dev containers on any machine, Apple Silicon included."""

__version__ = "0.1.0"
