"""An offline flake whose outputs are an arm64 Nix image, for ``devnix bootstrap`` tests and benchmarks.

No nixpkgs and no network: every derivation's builder is Debian's static arm64 busybox (so the amd64
builder can only build them with ``extra-platforms = aarch64-linux`` and binfmt, as on the seed's Apple
Silicon machine the other way round), and the image's root filesystem is the arm64 Nix stand-in
(Debian + nix-bin) exported with ``docker export``. Outputs under ``packages.aarch64-linux``:

- ``image``: a gzipped docker-archive (what ``dockerTools.buildImage`` makes), named
  ``devnix-test-flake/nix:image`` inside the archive;
- ``stream``: an executable that writes an unnamed docker-archive to stdout (what
  ``dockerTools.streamLayeredImage`` makes);
- ``layer``: the unpacked archive both share (manifest.json, config.json, layer.tar);

and ``images.mislabelled``, a stream whose config says amd64 over the arm64 file system.

The two big inputs (the rootfs tar, ~300 MB, and busybox) are cached under the stand-in cache, keyed to
the arm64 stand-in's image id, and hard-linked into each flake folder.

``make_small_flake`` writes a flake of a few MB (busybox only) with a ``slow`` output (sleeps) for the
tests that stop or fail a build, where copying 300 MB would only cost time.

``make_two_system_flake`` writes a flake with ``packages.x86_64-linux.default`` too, for the replay of the
workflow ``devnix ci github`` writes: the same recipe per system, each from its own folder (``arm64/``,
``amd64/``: that system's busybox-static, stand-in rootfs and image config), cached per stand-in.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from standins import NIX_AMD64, NIX_ARM64, EnvironmentMissing, StandinRecipe, image_id, run, seed_base

FLAKE_VERSION = 1
ARCHIVE_NAME = "devnix-test-flake/nix:image"
MISLABELLED_NAME = "devnix-test-flake/nix:mislabelled"
# The recipes other than arm64 cache their inputs in a folder of that name under cache_dir().
OTHER_ARCH_FOLDERS = ("amd64",)

FLAKE_NIX = r"""{
  description = "devnix tests: an arm64 Nix image as a docker-archive, built offline with busybox";

  outputs = { self }:
    let
      system = "aarch64-linux";
      busybox = "${self}/tools/busybox";
      run = name: script: extra: derivation ({
        inherit name system;
        builder = busybox;
        args = [ "sh" "-e" "${self}/scripts/${script}" ];
        bb = busybox;
        src = "${self}";
      } // extra);
    in
    {
      packages.${system} = rec {
        layer = run "nix-image-layer" "layer.sh" { };
        image = run "docker-image-nix.tar.gz" "image.sh" { inherit layer; tag = "@ARCHIVE_NAME@"; };
        stream = run "stream-nix-image" "stream.sh" { inherit layer; };
        default = image;
      };
      # Claims amd64 but holds the arm64 file system: verification must catch it (named without a
      # system so that it can be asked for with --system x86_64-linux).
      images.mislabelled = run "stream-mislabelled" "stream.sh" {
        layer = run "mislabelled-layer" "relabel.sh" {
          inherit (self.packages.${system}) layer;
          tag = "@MISLABELLED_NAME@";
        };
      };
    };
}
"""

SMALL_FLAKE_NIX = r"""{
  description = "devnix tests: a build that takes its time, offline";

  outputs = { self }:
    let
      system = "aarch64-linux";
      busybox = "${self}/tools/busybox";
      sh = name: script: derivation {
        inherit name system;
        builder = busybox;
        args = [ "sh" "-c" script ];
      };
    in
    {
      packages.${system} = {
        hello = sh "hello" "echo hello > $out";
        slow = sh "slow" "echo slow-build-started; ${busybox} sleep 600; ${busybox} touch $out";
      };
    };
}
"""

TWO_SYSTEM_FLAKE_NIX = r"""{
  description = "devnix tests: amd64 and arm64 Nix images as docker-archives, built offline with busybox";

  outputs = { self }:
    let
      # Each system's folder holds its busybox, its stand-in's file system and its image config.
      images = system: folder:
        let
          src = "${self}/${folder}";
          busybox = "${src}/tools/busybox";
          run = name: script: extra: derivation ({
            inherit name system src;
            builder = busybox;
            args = [ "sh" "-e" "${src}/scripts/${script}" ];
            bb = busybox;
          } // extra);
        in
        rec {
          layer = run "nix-image-layer" "layer.sh" { };
          image = run "docker-image-nix.tar.gz" "image.sh" { inherit layer; tag = "@ARCHIVE_NAME@"; };
          default = image;
        };
    in
    {
      packages.aarch64-linux = images "aarch64-linux" "arm64";
      packages.x86_64-linux = images "x86_64-linux" "amd64";
    };
}
"""

FLAKE_LOCK = '{\n  "nodes": {\n    "root": {}\n  },\n  "root": "root",\n  "version": 7\n}\n'

# The scripts run under busybox sh with an empty PATH: every tool is "$bb <applet>".
LAYER_SH = r"""
$bb mkdir -p "$out"
diff=$($bb sha256sum "$src/rootfs.tar" | $bb cut -d' ' -f1)
$bb ln -s "$src/rootfs.tar" "$out/layer.tar"
$bb sed "s/@DIFF_ID@/$diff/" "$src/scripts/config.json.in" > "$out/config.json"
$bb printf '%s' '[{"Config":"config.json","RepoTags":null,"Layers":["layer.tar"]}]' > "$out/manifest.json"
"""

IMAGE_SH = r"""
cd "$TMPDIR"
$bb ln -s "$layer/config.json" config.json
$bb ln -s "$layer/layer.tar" layer.tar
$bb printf '%s' '[{"Config":"config.json","RepoTags":["'"$tag"'"],"Layers":["layer.tar"]}]' > manifest.json
$bb tar -chf - manifest.json config.json layer.tar | $bb gzip -1 > "$out"
"""

RELABEL_SH = r"""
$bb mkdir -p "$out"
$bb sed 's/"architecture": "arm64"/"architecture": "amd64"/' "$layer/config.json" > "$out/config.json"
$bb ln -s "$layer/layer.tar" "$out/layer.tar"
manifest='[{"Config":"config.json","RepoTags":["'"$tag"'"],"Layers":["layer.tar"]}]'
$bb printf '%s' "$manifest" > "$out/manifest.json"
"""

# The image's config: what `docker save` writes, with the layer's digest filled in by layer.sh.
CONFIG = {
    "architecture": "arm64",
    "os": "linux",
    "created": "1970-01-01T00:00:01Z",
    "config": {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
        "Cmd": ["/bin/bash"],
    },
    "rootfs": {"type": "layers", "diff_ids": ["sha256:@DIFF_ID@"]},
    "history": [{"created": "1970-01-01T00:00:01Z", "created_by": "devnix test flake"}],
}

STREAM_SH = r"""
files="manifest.json config.json layer.tar"
$bb printf '#!%s sh\nexec %s tar -chf - -C %s %s\n' "$bb" "$bb" "$layer" "$files" > "$out"
$bb chmod 555 "$out"
"""


def cache_dir() -> Path:
    return seed_base().parent / "bootstrap-flake"


def _busybox(cache: Path, env: Mapping[str, str], arch: str = "arm64") -> Path:
    """Debian's static busybox for ``arch``, fetched with apt into a private lists folder (the system's
    apt configuration is left alone: no foreign architecture added)."""
    package = f"busybox-static:{arch}"
    target = cache / "busybox"
    if target.is_file():
        return target
    work = cache / f".apt-{os.getpid()}"
    lists = work / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    apt = [
        "-o", f"APT::Architecture={arch}",
        "-o", f"APT::Architectures={arch}",
        "-o", f"Dir::State::Lists={lists}",
        "-o", f"Dir::Cache::Archives={work}",
    ]  # fmt: skip
    try:
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise EnvironmentMissing(f"apt-get and dpkg are needed to fetch {package}")
        run(["apt-get", "update", "-q", *apt], env=env, timeout=600)
        run(["apt-get", "download", "-q", *apt, package], env=env, timeout=600, cwd=work)
        debs = sorted(work.glob(f"busybox-static_*_{arch}.deb"))
        if not debs:
            raise EnvironmentMissing(f"apt-get download {package} fetched nothing")
        run(["dpkg", "-x", str(debs[0]), str(work / "x")], env=env, timeout=120)
        tmp = cache / f".busybox-{os.getpid()}"
        shutil.copy2(work / "x" / "bin" / "busybox", tmp)
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _rootfs(cache: Path, env: Mapping[str, str], recipe: StandinRecipe = NIX_ARM64) -> Path:
    """A Nix stand-in's file system as one tar (``docker export`` of a container never started)."""
    target = cache / "rootfs.tar"
    if target.is_file():
        return target
    name = f"devnix-test-export-{os.getpid()}"
    run(["docker", "create", "--platform", recipe.platform, "--name", name, recipe.cache_ref], env=env)
    tmp = cache / f".rootfs-{os.getpid()}.tar"
    try:
        with tmp.open("wb") as out:
            proc = subprocess.run(
                ["docker", "export", name], stdout=out, stderr=subprocess.PIPE, env=dict(env), timeout=600
            )
        if proc.returncode != 0:
            raise RuntimeError(f"docker export failed: {proc.stderr.decode(errors='replace')[-500:]}")
        os.replace(tmp, target)
    finally:
        run(["docker", "rm", "-f", name], env=env, check=False)
        tmp.unlink(missing_ok=True)
    return target


def inputs(env: Mapping[str, str], recipe: StandinRecipe = NIX_ARM64) -> tuple[Path, Path]:
    """(busybox, rootfs.tar), cached per stand-in image of the recipe; older caches are dropped.

    arm64's caches sit in cache_dir() itself (where they always have), the others' in a folder named
    after their architecture."""
    key = hashlib.sha256(f"{FLAKE_VERSION}:{image_id(recipe.cache_ref, env)}".encode()).hexdigest()[:12]
    base = cache_dir() if recipe.arch == "arm64" else cache_dir() / recipe.arch
    cache = base / key
    cache.mkdir(parents=True, exist_ok=True)
    for old in base.iterdir():
        keep = old.name == key or old.name.startswith(".") or old.name in OTHER_ARCH_FOLDERS
        if old.is_dir() and not keep:
            shutil.rmtree(old, ignore_errors=True)
    return _busybox(cache, env, recipe.arch), _rootfs(cache, env, recipe)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def make_flake(dest: Path, env: Mapping[str, str], min_rootfs_bytes: int = 0) -> Path:
    """Write the image flake into ``dest`` (created) and return it.

    ``min_rootfs_bytes``: pad the root file system with a file of random bytes up to that size, for a
    benchmark that must move an image of at least some size whatever the stand-in weighs today.
    """
    busybox, rootfs = inputs(env)
    dest.mkdir(parents=True)
    flake_nix = FLAKE_NIX.replace("@ARCHIVE_NAME@", ARCHIVE_NAME).replace(
        "@MISLABELLED_NAME@", MISLABELLED_NAME
    )
    (dest / "flake.nix").write_text(flake_nix)
    (dest / "flake.lock").write_text(FLAKE_LOCK)
    scripts = dest / "scripts"
    scripts.mkdir()
    (scripts / "layer.sh").write_text(LAYER_SH)
    (scripts / "image.sh").write_text(IMAGE_SH)
    (scripts / "stream.sh").write_text(STREAM_SH)
    (scripts / "relabel.sh").write_text(RELABEL_SH)
    (scripts / "config.json.in").write_text(json.dumps(CONFIG))
    _place(busybox, dest / "tools" / "busybox")
    if rootfs.stat().st_size >= min_rootfs_bytes:
        _place(rootfs, dest / "rootfs.tar")
    else:
        _padded(rootfs, dest / "rootfs.tar", min_rootfs_bytes)
    return dest


def _padded(rootfs: Path, target: Path, size: int) -> None:
    shutil.copyfile(rootfs, target)
    missing = size - rootfs.stat().st_size + (1 << 20)
    info = tarfile.TarInfo("var/cache/devnix-benchmark-padding")
    info.size = missing
    info.mode = 0o644
    with tarfile.open(target, mode="a") as archive, open("/dev/urandom", "rb") as noise:
        archive.addfile(info, _Limited(noise, missing))


class _Limited:
    """A file object that reads at most ``left`` bytes from another (tarfile copies exactly info.size)."""

    def __init__(self, source: BinaryIO, left: int) -> None:
        self.source, self.left = source, left

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.source.read(size)
        self.left -= len(data)
        return data


def make_small_flake(dest: Path, env: Mapping[str, str]) -> Path:
    """A flake of a few MB: ``packages.aarch64-linux.slow`` sleeps for ten minutes, ``hello`` is instant."""
    busybox, _ = inputs(env)
    dest.mkdir(parents=True)
    (dest / "flake.nix").write_text(SMALL_FLAKE_NIX)
    (dest / "flake.lock").write_text(FLAKE_LOCK)
    _place(busybox, dest / "tools" / "busybox")
    return dest


def make_two_system_flake(dest: Path, env: Mapping[str, str]) -> Path:
    """A flake whose ``packages.<system>.default`` is a gzipped docker-archive of the Nix stand-in for
    ``aarch64-linux`` and ``x86_64-linux`` alike (the recipe of :func:`make_flake`, per system)."""
    dest.mkdir(parents=True)
    (dest / "flake.nix").write_text(TWO_SYSTEM_FLAKE_NIX.replace("@ARCHIVE_NAME@", ARCHIVE_NAME))
    (dest / "flake.lock").write_text(FLAKE_LOCK)
    for recipe in (NIX_ARM64, NIX_AMD64):
        busybox, rootfs = inputs(env, recipe)
        folder = dest / recipe.arch
        scripts = folder / "scripts"
        scripts.mkdir(parents=True)
        (scripts / "layer.sh").write_text(LAYER_SH)
        (scripts / "image.sh").write_text(IMAGE_SH)
        (scripts / "config.json.in").write_text(json.dumps({**CONFIG, "architecture": recipe.arch}))
        _place(busybox, folder / "tools" / "busybox")
        _place(rootfs, folder / "rootfs.tar")
    return dest
