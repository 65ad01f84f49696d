"""The image store's stream helpers that need no engine: gunzipping an archive on its way to Podman."""

from __future__ import annotations

import gzip
import os

import pytest

from devnix.engine import imagestore
from devnix.errors import EngineError


def _chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [7, 4096, 1 << 20])
def test_gunzip_reads_members_one_after_another_and_padding(size: int) -> None:
    data = os.urandom(300_000) + bytes(5_000_000) + b"end"
    # Two members (pigz, concatenated files) and zeros after the last one (tape-style padding).
    stream = gzip.compress(data[:100_000]) + gzip.compress(data[100_000:]) + bytes(3000)
    out = list(imagestore.gunzip(_chunks(stream, size)))
    assert b"".join(out) == data
    assert max(len(chunk) for chunk in out) <= imagestore.CHUNK  # zeros never inflate past a chunk


def test_gunzip_refuses_a_cut_or_broken_stream() -> None:
    stream = gzip.compress(os.urandom(100_000))
    with pytest.raises(EngineError, match="ends in the middle"):
        list(imagestore.gunzip([stream[:-100]]))
    with pytest.raises(EngineError, match="not valid gzip"):
        list(imagestore.gunzip([imagestore.GZIP_MAGIC + b"not deflate at all"]))
