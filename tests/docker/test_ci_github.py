"""The workflows ``devnix ci github`` writes, replayed on this machine: the commands they run work.

The project is the two-system test flake (``bootstrap_flake.make_two_system_flake``); ``devnix ci github``
writes its workflow into it as a user would, with three options that put this machine's stand-ins in the
runner's place: ``--registry <session registry>/devnix-test`` (for ghcr.io), ``--builder-image`` the
amd64 Nix stand-in (for nixos/nix) and ``--nix-option substituters=`` (no binary cache is reachable).
The YAML is then parsed and, job after job in ``needs`` order, each ``run:`` step goes to bash as the
runner runs it (``bash --noprofile --norc -eo pipefail``, in the checkout, with the workflow's, the job's
and the step's ``env``, and GitHub's default variables). Every ``${{ … }}`` goes through a small table,
matrix values included; an expression the table does not know fails the test.

What is not replayed, and why:
- ``actions/checkout``: the project folder is the checkout already;
- ``actions/setup-python``: .venv's Python is first on PATH;
- the step ``install-devnix`` (pip install from devnix's git repository, which is unreachable here):
  .venv's devnix is first on PATH instead; the step after it checks its version, as on the runner;
- ``runs-on``: the matrix rows run one after the other on this amd64 machine, not each on a runner of
  its own architecture, so the aarch64 row's build runs through binfmt (``extra-platforms``), which
  bootstrap adds by itself when the target is not the builder's system.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bootstrap_flake
import pytest
from ruamel.yaml import YAML
from standins import BASE_ENV, REPO_ROOT, EnvironmentMissing, Registry, image_id, run
from test_bootstrap import BUILDER, remove_tag, wait_for_no_leftovers

from devnix import __version__
from devnix.bootstrap import store_volume_name
from devnix.workflows import IMAGE_WORKFLOW, PUBLISH_WORKFLOW
from tests.support import skip_or_fail

OWNER = "devnix-test"
REPOSITORY = f"{OWNER}/project"
PASSWORD = f"replay-{secrets.token_hex(8)}"  # must show up in no step's output
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# `uses:` steps and what stands in for them here.
USES = {
    "actions/checkout@v4": "the project folder is the checkout",
    "actions/setup-python@v5": ".venv's Python is first on PATH",
}
SKIPPED_STEPS = {"install-devnix": "devnix's git repository is unreachable here; .venv's devnix is on PATH"}


def table(matrix: Mapping[str, str]) -> dict[str, str]:
    """Every expression the workflows may hold, and its value here."""
    return {
        "github.repository_owner": OWNER,
        "github.actor": OWNER,
        "secrets.GITHUB_TOKEN": PASSWORD,
        "secrets.REGISTRY_USERNAME": OWNER,
        "secrets.REGISTRY_PASSWORD": PASSWORD,
        "github.event_name != 'pull_request'": "true",  # a push to the branch
        **{f"matrix.{key}": value for key, value in matrix.items()},
    }


def substitute(value: Any, known: Mapping[str, str]) -> Any:
    """``value`` with every expression replaced; an unknown one fails the test, loudly."""
    if isinstance(value, str):

        def one(found: re.Match[str]) -> str:
            if found[1] not in known:
                pytest.fail(f"the replay has no value for the expression {found[0]!r}")
            return known[found[1]]

        return EXPRESSION.sub(one, value)
    if isinstance(value, list):
        return [substitute(item, known) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, known) for key, item in value.items()}
    return value


def in_needs_order(jobs: Mapping[str, Any]) -> list[str]:
    order: list[str] = []
    while len(order) < len(jobs):
        ready = [
            name for name, job in jobs.items() if name not in order and all(n in order for n in _needs(job))
        ]
        assert ready, f"the jobs' needs form a cycle or name a missing job: {list(jobs)}"
        order.extend(ready)
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


@dataclass
class StepRun:
    job: str
    name: str
    seconds: float
    output: str


@dataclass
class Replay:
    steps: list[StepRun]
    skipped: list[tuple[str, str]]  # (step, why)
    runners: list[str]  # runs-on of each job run, after substitution

    def seconds(self, job: str) -> float:
        return sum(s.seconds for s in self.steps if s.job == job)


def replay(workflow_path: Path, workspace: Path, docker_config: Path) -> Replay:
    workflow = YAML(typ="safe").load(workflow_path.read_text())
    shell = workflow.get("defaults", {}).get("run", {}).get("shell")
    assert shell == "bash", "the workflow's scripts are written for bash"
    done = Replay([], [], [])
    for job_name in in_needs_order(workflow["jobs"]):
        raw = workflow["jobs"][job_name]
        rows = raw.get("strategy", {}).get("matrix", {}).get("include") or [{}]
        for row in rows:
            known = table(row)
            job = substitute(raw, known)
            if "if" in job:
                assert job["if"] == "true", f"{job_name} would not run: if {raw['if']}"
            done.runners.append(job["runs-on"])
            env = _base_env(workspace, docker_config)
            env.update(substitute(workflow.get("env", {}), known))
            env.update(job.get("env", {}))
            for raw_step, step in zip(raw["steps"], job["steps"], strict=True):
                title = f"{job_name}{row and ' ' + json.dumps(row)}: {step.get('name') or step.get('uses')}"
                if "uses" in step:
                    assert step["uses"] in USES, f"no local stand-in for {step['uses']}"
                    done.skipped.append((title, USES[step["uses"]]))
                    continue
                if step.get("id") in SKIPPED_STEPS:
                    done.skipped.append((title, SKIPPED_STEPS[step["id"]]))
                    continue
                assert "${{" not in raw_step["run"], f"{title}: scripts read env, never expressions"
                started = time.monotonic()
                proc = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                    cwd=workspace,
                    env={**env, **step.get("env", {})},
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
                output = proc.stdout + proc.stderr
                done.steps.append(StepRun(job_name, title, time.monotonic() - started, output))
                assert proc.returncode == 0, f"{title} exited {proc.returncode}:\n{output[-4000:]}"
    return done


def _base_env(workspace: Path, docker_config: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in BASE_ENV.items() if not key.startswith(("GITHUB_", "RUNNER_"))}
    env.update(
        {
            "PATH": f"{venv_bin}{os.pathsep}{BASE_ENV.get('PATH', '')}",
            "DOCKER_CONFIG": str(docker_config),
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": REPOSITORY,
            "GITHUB_REPOSITORY_OWNER": OWNER,
            "GITHUB_ACTOR": OWNER,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_EVENT_NAME": "push",
        }
    )
    return env


def devnix(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devnix", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(env if env is not None else BASE_ENV),
        check=False,
    )


# ------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def project(standin_images: dict[str, str], docker_session_env: dict[str, str], tmp_path: Path) -> Path:
    try:
        return bootstrap_flake.make_two_system_flake(tmp_path / "project", docker_session_env)
    except EnvironmentMissing as err:
        skip_or_fail(str(err))
        raise


@pytest.fixture
def default_store_volume(standin_images: dict[str, str]) -> Iterator[str]:
    """The store volume bootstrap picks for the stand-in builder (the workflow names none, as a fresh
    runner needs none): removed afterwards when this test made it."""
    name = store_volume_name(image_id(BUILDER, BASE_ENV))
    existed = run(["docker", "volume", "inspect", name], env=BASE_ENV, check=False).returncode == 0
    yield name
    if not existed:
        deadline = time.monotonic() + 30
        while True:
            removed = run(["docker", "volume", "rm", name], env=BASE_ENV, check=False)
            # Right after a build, the builder being removed may hold the volume for a moment.
            gone = removed.returncode == 0 or "no such volume" in removed.stderr.lower()
            if gone or time.monotonic() > deadline:
                break
            time.sleep(0.5)


def write_workflows(project: Path, registry: Registry, *extra: str) -> None:
    written = devnix(
        "ci", "github", str(project),
        "--registry", f"{registry.host}/{OWNER}",
        "--builder-image", BUILDER,
        "--nix-option", "substituters=",
        "--devnix-repo", "https://github.com/devnix-test/devnix",
        "--json",
        *extra,
    )  # fmt: skip
    assert written.returncode == 0, written.stderr


# ------------------------------------------------------------------------------------------------
# The image workflow


def test_the_image_workflow_builds_both_architectures_and_one_two_platform_tag(
    project: Path, registry: Registry, default_store_volume: str, tmp_path: Path
) -> None:
    write_workflows(project, registry)
    image = f"{registry.host}/{OWNER}/nix"
    per_arch = [f"{image}:latest-amd64", f"{image}:latest-arm64"]
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    started = time.monotonic()
    try:
        done = replay(project / IMAGE_WORKFLOW, project, docker_config)
        seconds = time.monotonic() - started
    finally:
        for tag in per_arch:
            remove_tag(tag)
    # The jobs ran in needs order, the matrix rows on the runners they name.
    assert [s.job for s in done.steps if "Build and push" in s.name or "Join the tags" in s.name] == [
        "build", "build", "manifest",
    ]  # fmt: skip
    assert done.runners == ["ubuntu-24.04", "ubuntu-24.04-arm", "ubuntu-24.04"]
    assert {why for _, why in done.skipped} == {*USES.values(), *SKIPPED_STEPS.values()}
    # The login went through stdin: the password is in the Docker config, in no step's output.
    auths = json.loads((docker_config / "config.json").read_text())["auths"]
    assert registry.host in auths
    assert not any(PASSWORD in s.output for s in done.steps)
    version_checks = [s for s in done.steps if "Check devnix's version" in s.name]
    assert len(version_checks) == 3  # the step after the skipped install ran, against devnix __version__

    inspected = devnix("manifest", "inspect", "--json", f"{image}:latest")
    assert inspected.returncode == 0, inspected.stderr
    index = json.loads(inspected.stdout)
    assert index["index"] is True
    assert sorted(index["platforms"]) == ["linux/amd64", "linux/arm64"]
    # Each platform's entry is the very image its build job pushed.
    for tag, platform in zip(per_arch, ("linux/amd64", "linux/arm64"), strict=True):
        single = json.loads(devnix("manifest", "inspect", "--json", tag).stdout)
        entry = next(m for m in index["manifests"] if m["platform"] == platform)
        assert entry["digest"] == single["digest"], (tag, entry)
    assert wait_for_no_leftovers(per_arch[0]) == [] and wait_for_no_leftovers(per_arch[1]) == []
    print(
        f"replay: {seconds:.0f} s in all; build {done.seconds('build'):.0f} s (both rows), "
        f"manifest {done.seconds('manifest'):.1f} s; devnix {__version__}"
    )


# ------------------------------------------------------------------------------------------------
# The publish workflow


def test_the_publish_workflow_tests_then_publishes_the_collections(
    registry: Registry, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    for collection in ("features", "templates"):
        shutil.copytree(REPO_ROOT / collection / "src", project / collection / "src")
    write_workflows(project, registry, "--features")
    docker_config = tmp_path / "docker-config"
    docker_config.mkdir()
    done = replay(project / PUBLISH_WORKFLOW, project, docker_config)
    dry_runs = [s for s in done.steps if s.name.startswith("test") and "Test the" in s.name]
    publishes = [s for s in done.steps if s.name.startswith("publish") and "Publish the" in s.name]
    assert len(dry_runs) == 2 and len(publishes) == 2
    # NAMESPACE (the registry's path) / the repository's name / the kind: both kinds have a `nix`.
    for kind, item in (("features", "nix"), ("templates", "nix"), ("templates", "nix-flake")):
        tags = registry.request("GET", f"/v2/{REPOSITORY}/{kind}/{item}/tags/list")
        assert tags.status == 200, (kind, item, tags.body[:300])
        assert "latest" in tags.json()["tags"]
    assert not any(PASSWORD in s.output for s in done.steps)
