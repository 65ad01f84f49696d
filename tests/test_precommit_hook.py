"""The hook in .pre-commit-hooks.yaml, run by the real pre-commit against a sample repository.

pre-commit installs the hook the way a user's machine does: it clones this repository at a commit,
builds a virtualenv and pip-installs devnix into it, then runs ``devnix validate`` with the names of the
devcontainer.json files it matched. ``pre-commit try-repo /work/main`` would be the short way, but it
cannot test a change before it is committed: its copy of a dirty repository takes the staged files and
the tracked ones (``git add -u``), never a new file such as the manifest itself, and it keeps its
environments in a temporary folder, so every run would install devnix again. So this test makes the
commit itself: the working tree's manifest and package (uncommitted edits included), at a commit whose
id depends only on their content, so an unchanged tree reuses the environment in .cache/precommit-test/.

Cold (a new environment: any change under devnix/ makes one) it takes 20-40 s, warm ~2 s. It
runs when DEVNIX_REQUIRE_DOCKER is set (CI: .ci/run), when DEVNIX_TEST_PRECOMMIT=1, or when this exact
tree's environment is installed already (then it is cheap); else it skips and says how to run it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import SCHEMAS, required

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "precommit-test"
HOOK_REPO = CACHE / "hook-repo.git"
PRE_COMMIT_HOME = CACHE / "pre-commit"
WARM = CACHE / "warm"  # an empty file named after the commit whose environment pre-commit installed
OPT_IN = "DEVNIX_TEST_PRECOMMIT"
# What pip needs to build devnix (pyproject.toml names README.md as the readme) and the manifest.
HOOK_FILES = (".pre-commit-hooks.yaml", "pyproject.toml", "README.md", "devnix")
# A fixed author and date: the same tree gives the same commit id, run after run.
SAME_COMMIT = {
    "GIT_AUTHOR_NAME": "devnix tests",
    "GIT_AUTHOR_EMAIL": "tests@devnix.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "devnix tests",
    "GIT_COMMITTER_EMAIL": "tests@devnix.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}

GOOD = '{\n\t// Nix\n\t"image": "debian:bookworm",\n\t"remoteUser": "root",\n}\n'
BAD = '{\n\t"image": "debian:bookworm",\n\t"remoteUsr": "root"\n}\n'

pytestmark = pytest.mark.shared  # DEVNIX_SCHEMA_DIR: the schema from ../shared, no download


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def hook_commit(index: Path) -> str:
    """Commit the working tree's HOOK_FILES into HOOK_REPO; this checkout's own index is not touched.

    Other test runs may do the same at the same time: each has its own index file, git writes objects
    atomically, and the same tree gives the same commit and the same tag.
    """
    if not (HOOK_REPO / "HEAD").is_file():
        git("init", "--quiet", "--bare", str(HOOK_REPO))
    env = {**os.environ, **SAME_COMMIT, "GIT_DIR": str(HOOK_REPO), "GIT_WORK_TREE": str(ROOT)}
    env["GIT_INDEX_FILE"] = str(index)
    # The checkout's .gitignore applies: no __pycache__, what a clone of a real commit would hold.
    git("add", "--", *HOOK_FILES, env=env)
    tree = git("write-tree", env=env)
    commit = git(
        "commit-tree", tree, "-m", "devnix's working tree, for tests/test_precommit_hook.py", env=env
    )
    # pre-commit fetches the commit by its id, and failing that the tags: a tag keeps it findable.
    tag = f"refs/tags/t-{commit}"
    subprocess.run(["git", "update-ref", tag, commit], env=env, capture_output=True, check=False)
    assert git("rev-parse", tag, env=env) == commit  # made here, or by a run beside this one
    return commit


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> str:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    CACHE.mkdir(parents=True, exist_ok=True)
    gitignore = ROOT / ".cache" / ".gitignore"  # as scripts/test does: .cache/ stays out of git
    if not gitignore.exists():
        gitignore.write_text("*\n")
    commit = hook_commit(tmp_path_factory.mktemp("hook") / "index")
    if not (required() or os.environ.get(OPT_IN) == "1" or (WARM / commit).exists()):
        pytest.skip(
            f"pre-commit would install devnix into a new environment (tens of seconds): "
            f"set {OPT_IN}=1 to run it (CI runs it: DEVNIX_REQUIRE_DOCKER)"
        )
    return commit


def readme_config(hook: str) -> str:
    """The .pre-commit-config.yaml the README tells users to paste, pointed at this tree's commit."""
    section = (ROOT / "README.md").read_text("utf-8").partition("\n## pre-commit\n")[2]
    snippet = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert snippet is not None, "README.md has no ```yaml block under ## pre-commit"
    config = snippet.group(1)
    assert "https://github.com/OWNER/devnix" in config and "rev: COMMIT" in config, config
    return config.replace("https://github.com/OWNER/devnix", str(HOOK_REPO)).replace("COMMIT", hook)


def sample_repo(folder: Path, hook: str, files: dict[str, str]) -> Path:
    folder.mkdir()
    git("init", "--quiet", cwd=folder)
    config = readme_config(hook)
    for name, text in {**files, ".pre-commit-config.yaml": config}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    git("add", "--all", cwd=folder)
    return folder


def pre_commit(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(PRE_COMMIT_HOME),
        # pip's wheels outlive an environment: the next new one (after any edit to devnix/) is quicker.
        "PIP_CACHE_DIR": str(CACHE / "pip"),
        "DEVNIX_SCHEMA_DIR": str(SCHEMAS),
        "PRE_COMMIT_COLOR": "never",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *(args or ("run", "--all-files"))],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


def forget_old_environments(hook: str, folder: Path) -> None:
    """One environment per tree would pile up (~55 MB each): pre-commit's gc drops those no config
    on disk uses any more (the samples of test runs pytest has since deleted), then stale markers go."""
    done = pre_commit(folder, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    for marker in WARM.glob("*"):
        if marker.name != hook:
            marker.unlink(missing_ok=True)


def test_the_hook_fails_on_a_bad_devcontainer_json_and_names_the_finding(tmp_path: Path, hook: str) -> None:
    files = {
        ".devcontainer/devcontainer.json": GOOD,
        ".devcontainer/broken/devcontainer.json": BAD,
        "notes.json": BAD,  # not a devcontainer.json: the hook's `files` pattern leaves it out
    }
    run = pre_commit(sample_repo(tmp_path / "bad", hook, files))
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    assert "devnix validate" in output and "Failed" in output, output
    # Both reached devnix in one call (pre-commit hands out 4 names a call at least), each reported.
    assert ".devcontainer/devcontainer.json: ok" in output, output
    assert ".devcontainer/broken/devcontainer.json:3:2: $.remoteUsr: unknown property 'remoteUsr'" in output
    assert "notes.json" not in output, output
    WARM.mkdir(exist_ok=True)
    (WARM / hook).touch()
    forget_old_environments(hook, tmp_path / "bad")


def test_the_hook_passes_when_every_devcontainer_json_is_good(tmp_path: Path, hook: str) -> None:
    files = {".devcontainer/devcontainer.json": GOOD, ".devcontainer/py/devcontainer.json": GOOD}
    run = pre_commit(sample_repo(tmp_path / "good", hook, files))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "devnix validate" in output and "Passed" in output, output
