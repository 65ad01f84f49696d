"""The workflows ``devnix ci github`` writes: their decisions, their safety, and actionlint and the
workflow schema on every shape they can take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devnix import __version__
from devnix.errors import UsageError
from devnix.workflows import (
    IMAGE_WORKFLOW,
    PUBLISH_WORKFLOW,
    Collection,
    WorkflowOptions,
    render,
    spec,
)
from tests.workflow_lint import actionlint, actionlint_all, known_to_be_newer, schema_check

REQUIREMENT = f"devnix @ git+https://github.com/acme/devnix@v{__version__}"
BOTH = (Collection("features", "features/src"), Collection("templates", "templates/src"))

# Every option that changes a workflow's shape (which steps, triggers, login, matrix rows).
SHAPES: dict[str, dict[str, Any]] = {
    "default": {},
    "schedule": {"schedule": "0 4 * * 1"},
    "arm64-only": {"systems": ("aarch64-linux",)},
    "amd64-only": {"systems": ("x86_64-linux",)},
    "other-registry": {"registry": "docker.io/acme", "image": "nix-image", "tag": "2.24"},
    "remote-flake": {"flake": "github:acme/images#nix", "schedule": "30 2 * * *"},
    "subfolder-flake-and-options": {
        "flake": "./images#nix",
        "nix_options": (("substituters", ""), ("extra-trusted-public-keys", "a b")),
        "builder_image": "docker.io/nixos/nix:2.24.9",
    },
    "features": {"collections": BOTH},
    "features-only": {"collections": (Collection("features", "features/src"),)},
    "templates-other-registry": {
        "collections": (Collection("templates", "templates/src"),),
        "registry": "registry.example.com:5000/team",
    },
}


def files_of(**changes: Any) -> dict[str, str]:
    return render(spec(WorkflowOptions(devnix_requirement=REQUIREMENT, **changes)))


def load(text: str) -> Any:
    return YAML(typ="safe").load(text)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    paths = []
    for shape, changes in SHAPES.items():
        for relative, text in files_of(**changes).items():
            path = tmp_path_factory.mktemp(shape) / relative
            path.parent.mkdir(parents=True)
            path.write_text(text)
            paths.append(path)
    return paths


# ------------------------------------------------------------------------------------------------
# actionlint and the schema, on every shape


def test_every_shape_is_actionlint_clean(written: list[Path]) -> None:
    assert len(written) == len(SHAPES) + sum(1 for c in SHAPES.values() if c.get("collections"))
    assert actionlint(written) == []


def test_every_shape_passes_the_github_workflow_schema(written: list[Path]) -> None:
    result = schema_check(written)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_what_is_wrong_and_sets_aside_only_the_newer_labels(tmp_path: Path) -> None:
    text = files_of()[IMAGE_WORKFLOW]
    broken = text.replace("runner: ubuntu-24.04-arm", "runner: ubuntu-24.04-armm").replace(
        "SYSTEM: ${{ matrix.system }}", "SYSTEM: ${{ matrix.sytem }}"
    )
    path = tmp_path / "broken.yml"
    path.write_text(broken)
    everything = actionlint_all([path])
    kept = [r["message"] for r in everything if not known_to_be_newer(r)]
    assert any('label "ubuntu-24.04-armm" is unknown' in message for message in kept), kept
    assert any('property "sytem" is not defined' in message for message in kept), kept
    # The set-aside findings are real ones (v1.6.22 does not know the 24.04 images), and only those.
    set_aside = [r["message"] for r in everything if known_to_be_newer(r)]
    assert [message.split('"')[1] for message in set_aside] == ["ubuntu-24.04", "ubuntu-24.04"]


def test_the_schema_check_fails_on_a_broken_workflow(tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(files_of()[IMAGE_WORKFLOW].replace("packages: write", "packages: admin"))
    result = schema_check([path])
    assert result.returncode != 0


# ------------------------------------------------------------------------------------------------
# What the image workflow does


def test_each_system_builds_on_its_native_runner_then_one_job_joins_the_tags() -> None:
    workflow = load(files_of()[IMAGE_WORKFLOW])
    build, manifest = workflow["jobs"]["build"], workflow["jobs"]["manifest"]
    assert build["strategy"]["matrix"]["include"] == [
        {"runner": "ubuntu-24.04", "system": "x86_64-linux", "arch": "amd64"},
        {"runner": "ubuntu-24.04-arm", "system": "aarch64-linux", "arch": "arm64"},
    ]
    assert build["runs-on"] == "${{ matrix.runner }}"
    script = build["steps"][-1]["run"]
    assert 'devnix bootstrap --system "$SYSTEM" --flake "$FLAKE"' in script
    assert '--tag "$image:$TAG-$ARCH" --push' in script
    assert manifest["needs"] == "build"
    joined = manifest["steps"][-1]["run"]
    assert 'devnix manifest create "$image:$TAG" "$image:$TAG-amd64" "$image:$TAG-arm64" --push' in joined
    assert workflow["permissions"] == {"contents": "read", "packages": "write"}
    assert workflow["env"]["IMAGE"] == "ghcr.io/${{ github.repository_owner }}/nix"
    assert workflow["env"]["DEVNIX_REQUIREMENT"] == REQUIREMENT
    assert workflow["env"]["DEVNIX_VERSION"] == __version__


def test_one_system_still_ends_in_one_multi_platform_tag() -> None:
    workflow = load(files_of(systems=("aarch64-linux",))[IMAGE_WORKFLOW])
    assert [row["arch"] for row in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]] == ["arm64"]
    assert '"$image:$TAG" "$image:$TAG-arm64" --push' in workflow["jobs"]["manifest"]["steps"][-1]["run"]


def test_it_re_runs_on_the_flake_files_by_hand_and_on_the_schedule_only() -> None:
    workflow = load(files_of(schedule="0 4 * * 1", flake="./images#nix")[IMAGE_WORKFLOW])
    triggers = workflow["on"]
    assert set(triggers) == {"push", "workflow_dispatch", "schedule"}
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["push"]["paths"] == [
        "images/flake.nix",
        "images/flake.lock",
        "images/**.nix",
        IMAGE_WORKFLOW,
    ]
    assert triggers["schedule"] == [{"cron": "0 4 * * 1"}]
    assert "schedule" not in load(files_of()[IMAGE_WORKFLOW])["on"]


def test_a_remote_flake_is_rebuilt_by_hand_or_schedule_and_says_so() -> None:
    decided = spec(WorkflowOptions(devnix_requirement=REQUIREMENT, flake="github:acme/images#nix"))
    assert decided.watched == (IMAGE_WORKFLOW,)
    assert any("not in the repository" in note for note in decided.notes)


def test_the_password_reaches_docker_login_through_stdin_only() -> None:
    for relative, text in files_of(collections=BOTH).items():
        for job in load(text)["jobs"].values():
            logins = [s for s in job["steps"] if "docker login" in s.get("run", "")]
            assert logins, (relative, job)
            for step in logins:
                assert step["env"]["PASSWORD"] == "${{ secrets.GITHUB_TOKEN }}"
                assert step["run"].endswith('--password-stdin <<<"$PASSWORD"')
                assert "echo" not in step["run"]


def test_another_registry_logs_in_with_the_repository_secrets() -> None:
    decided = spec(WorkflowOptions(devnix_requirement=REQUIREMENT, registry="docker.io/acme"))
    workflow = load(render(decided)[IMAGE_WORKFLOW])
    login = next(s for s in workflow["jobs"]["build"]["steps"] if "docker login" in s.get("run", ""))
    assert login["env"] == {
        "USERNAME": "${{ secrets.REGISTRY_USERNAME }}",
        "PASSWORD": "${{ secrets.REGISTRY_PASSWORD }}",
    }
    assert workflow["env"]["IMAGE"] == "docker.io/acme/nix" and workflow["env"]["REGISTRY"] == "docker.io"
    assert any("REGISTRY_USERNAME" in note for note in decided.notes)


def test_no_script_holds_an_expression_or_a_value_the_user_gave() -> None:
    given = {"flake": "./my images#nix", "tag": "v2", "registry": "docker.io/acme", "image": "nixy"}
    for text in files_of(**given, collections=BOTH).values():
        for job in load(text)["jobs"].values():
            for step in job["steps"]:
                script = step.get("run", "")
                assert "${{" not in script
                for value in given.values():
                    assert value not in script


def test_nix_options_are_shell_quoted_words() -> None:
    text = files_of(nix_options=(("substituters", ""), ("extra-substituters", "https://a b")))[IMAGE_WORKFLOW]
    assert "--push --option substituters '' --option extra-substituters 'https://a b'" in text


# ------------------------------------------------------------------------------------------------
# The publish workflow


def test_the_publish_workflow_tests_on_pull_requests_and_publishes_from_the_branch() -> None:
    files = files_of(collections=BOTH)
    assert set(files) == {IMAGE_WORKFLOW, PUBLISH_WORKFLOW}
    workflow = load(files[PUBLISH_WORKFLOW])
    assert set(workflow["on"]) == {"push", "pull_request", "workflow_dispatch"}
    assert workflow["on"]["pull_request"]["paths"] == [
        "features/src/**",
        "templates/src/**",
        PUBLISH_WORKFLOW,
    ]
    test, publish = workflow["jobs"]["test"], workflow["jobs"]["publish"]
    checks = [s["run"] for s in test["steps"] if "devnix publish" in s.get("run", "")]
    assert len(checks) == 2 and all(c.rstrip().endswith("--dry-run") for c in checks)
    assert test["permissions"]["packages"] == "read"
    assert publish["needs"] == "test" and publish["permissions"]["packages"] == "write"
    assert publish["if"] == "${{ github.event_name != 'pull_request' }}"
    pushes = [s["run"] for s in publish["steps"] if "devnix publish" in s.get("run", "")]
    assert [p.split()[3:5] for p in pushes] == [["features", "features/src"], ["templates", "templates/src"]]
    assert not any("--dry-run" in p for p in pushes)
    # Published together, each kind has a namespace of its own (their collections and ids would clash).
    assert [p.splitlines()[0] for p in pushes] == [
        'namespace="$NAMESPACE/${GITHUB_REPOSITORY#*/}/features"',
        'namespace="$NAMESPACE/${GITHUB_REPOSITORY#*/}/templates"',
    ]
    alone = load(files_of(collections=BOTH[:1])[PUBLISH_WORKFLOW])["jobs"]["publish"]["steps"][-1]["run"]
    assert alone.splitlines()[0] == 'namespace="$NAMESPACE/${GITHUB_REPOSITORY#*/}"'


def test_without_collections_there_is_no_publish_workflow() -> None:
    assert set(files_of()) == {IMAGE_WORKFLOW}


# ------------------------------------------------------------------------------------------------
# Bad input: one UsageError with a hint


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"systems": ("riscv64-linux",)}, "no GitHub-hosted runner builds 'riscv64-linux'"),
        ({"systems": ()}, "no system to build"),
        ({"registry": "ghcr.io"}, "has no namespace"),
        ({"registry": "my-org/images"}, "does not start with a registry host"),
        ({"registry": "ghcr.io/Acme"}, "--registry/--image"),
        ({"image": "Nix"}, "--registry/--image"),
        ({"tag": "no/slash"}, "is not a tag"),
        ({"schedule": "every monday"}, "is not a cron expression"),
        ({"schedule": "0 4 * *"}, "is not a cron expression"),
        ({"branch": "a..b"}, "is not a branch name"),
        ({"flake": "/abs/images#nix"}, "not inside the repository"),
        ({"flake": "../images#nix"}, "outside the repository"),
        ({"flake": ".#packages.x86_64-linux.nix"}, "is for x86_64-linux, but the target system is"),
        ({"builder_image": "not an image"}, "--builder-image"),
        ({"nix_options": (("Bad Name", "x"),)}, "is not a Nix setting name"),
        ({"tag": "${{ github.sha }}"}, "GitHub would evaluate as an expression"),
        ({"flake": ".#nix\nrun: evil"}, "spans lines"),
    ],
)
def test_bad_options_are_one_usage_error_with_a_hint(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError) as raised:
        spec(WorkflowOptions(devnix_requirement=REQUIREMENT, **changes))
    assert words in raised.value.message
    assert raised.value.hint
