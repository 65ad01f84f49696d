"""Benchmark: `devnix init` against `devcontainer templates apply`, and devnix's start-up.

Run after ./scripts/test has set the machine up (engine, registry binary, stand-in images, reference CLI):

    .venv/bin/python benchmarks/init.py [--runs N]

Both tools read the same local registry: devnix reads the two-platform stand-in's index and writes
.devcontainer/; the reference CLI applies an equivalent Template (the same two files, published to the
same registry by the reference CLI itself). They run alternately, whole processes, and the medians and
their ratio are printed. Targets (issue 2): init <= 0.5x apply; --version and --help <= 60 ms.
Issue 3: `init --merge` of a typical file (a commented corpus file) costs almost nothing beyond
start-up: its whole-process time against init's, and the in-process edit alone, are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "docker"))

from standins import (  # noqa: E402 - the test helpers live beside the tests
    ALL_RECIPES,
    MULTI_TAG,
    NIX_AMD64,
    docker_env,
    ensure_standins,
    find_devcontainer_cli,
    find_seed,
    publish_standins,
    start_registry,
)

DEVNIX = [str(Path(sys.executable).with_name("devnix"))]
TYPICAL = ROOT / ".." / "shared" / "corpus" / "devcontainer-json" / (
    "devcontainers__templates__src__rust__.devcontainer__devcontainer.json"
)


def timed(command: list[str], cwd: Path | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


def publish_equivalent_template(cli: Path, host: str, image: str, work: Path) -> str:
    """A Template holding exactly what `devnix init` writes for ``image``, published by the reference CLI."""
    sample = work / "sample"
    sample.mkdir()
    subprocess.run([*DEVNIX, "init", str(sample), "--image", image], check=True, capture_output=True)
    src = work / "templates" / "src" / "nix"
    shutil.copytree(sample / ".devcontainer", src / ".devcontainer")
    (src / "devcontainer-template.json").write_text(
        json.dumps({"id": "nix", "version": "1.0.0", "name": "Nix", "options": {}})
    )
    subprocess.run(
        [str(cli), "templates", "publish", "--registry", host, "--namespace", "bench", str(src.parent)],
        check=True,
        capture_output=True,
    )
    return f"{host}/bench/nix:1"


def in_process_merge_ms(image: str, runs: int = 50) -> float:
    """The JSONC edits of a merge, without start-up, registry or files: what editing itself costs."""
    from pathlib import PurePosixPath

    from devnix.images import parse_ref
    from devnix.merge import ConfigFile, merge_config
    from devnix.plan import Facts, Known, Source, decide
    from devnix.platforms import Platform
    from devnix.render import Layout

    amd64 = Platform("linux", "amd64")
    plan = decide(
        Facts(parse_ref(image), Known((amd64,), Source.REGISTRY), amd64, Source.ENGINE, nix_path="x")
    )
    config = ConfigFile(TYPICAL, TYPICAL.read_text(), PurePosixPath(".devcontainer"))
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        merge_config(config, plan, Layout(name="bench"))
        times.append(time.perf_counter() - started)
    return median_ms(times)


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()

    # pip compiles an installed package's bytecode; an editable checkout may not have it yet (and
    # PYTHONDONTWRITEBYTECODE may be set), which would time the compiler instead of devnix.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "devnix")], check=True)
    work = Path(tempfile.mkdtemp(prefix="devnix-bench-"))
    env = docker_env(work / "docker-config")
    registry = start_registry(work / "registry", seed=find_seed(ALL_RECIPES))
    try:
        ensure_standins(ALL_RECIPES, work / "build", env, registry)
        publish_standins(registry, env)
        image = f"{registry.host}/{NIX_AMD64.registry_repository}:{MULTI_TAG}"
        cli = find_devcontainer_cli()
        template = publish_equivalent_template(cli, registry.host, image, work)

        init_times: list[float] = []
        apply_times: list[float] = []
        merge_times: list[float] = []
        for run in range(args.runs):
            target = work / f"init-{run}"
            target.mkdir()
            init_times.append(timed([*DEVNIX, "init", str(target), "--image", image]))
            existing = work / f"merge-{run}" / ".devcontainer"
            existing.mkdir(parents=True)
            shutil.copy(TYPICAL, existing / "devcontainer.json")
            merge_times.append(timed([*DEVNIX, "init", str(existing.parent), "--merge", "--image", image]))
            applied = work / f"apply-{run}"
            applied.mkdir()
            apply_times.append(
                timed(
                    [
                        str(cli),
                        "templates",
                        "apply",
                        "--workspace-folder",
                        str(applied),
                        "--template-id",
                        template,
                    ]
                )
            )
        version_times = [timed([*DEVNIX, "--version"]) for _ in range(args.runs)]
        help_times = [timed([*DEVNIX, "--help"]) for _ in range(args.runs)]
        interpreter = [timed([sys.executable, "-c", "pass"]) for _ in range(args.runs)]

        init_ms, apply_ms = median_ms(init_times), median_ms(apply_times)
        ratio = init_ms / apply_ms
        print(f"runs per figure: {args.runs} (alternating init / apply)")
        print(f"devnix init (two-platform image, local registry): median {init_ms:.1f} ms")
        print(f"devcontainer templates apply (equivalent template):  median {apply_ms:.1f} ms")
        print(f"ratio init / apply: {ratio:.2f} (target <= 0.50) {'OK' if ratio <= 0.5 else 'MISSED'}")
        for name, values in (("devnix --version", version_times), ("devnix --help", help_times)):
            ms = median_ms(values)
            print(f"{name}: median {ms:.1f} ms (target <= 60) {'OK' if ms <= 60 else 'MISSED'}")
        print(f"python -c pass (this interpreter): median {median_ms(interpreter):.1f} ms")
        merge_ms = median_ms(merge_times)
        edit_ms = in_process_merge_ms(image)
        print(f"devnix init --merge (typical commented file): median {merge_ms:.1f} ms")
        print(f"  beyond init on an empty folder: {merge_ms - init_ms:+.1f} ms")
        print(f"  the edit itself, in process: median {edit_ms:.2f} ms ({edit_ms / init_ms:.3f}x init)")
        # Issue 3: "editing costs almost nothing beyond start-up". A merge does all of init's work
        # (start-up, engine, registry, render) and then edits, so the figures that can show it are
        # what the merge adds to init, and what the edit costs on its own.
        beyond_ok = merge_ms - init_ms < 30
        edit_ok = edit_ms < 0.5 * init_ms
        print(f"  target: merge - init < 30 ms: {'OK' if beyond_ok else 'MISSED'}")
        print(f"  target: the edit < 0.5x init: {'OK' if edit_ok else 'MISSED'}")
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
