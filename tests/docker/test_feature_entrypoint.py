"""The nix Feature's entrypoint hands single-user Nix to its user's new uid, in a real container.

The devcontainer CLI's ``updateRemoteUserUID`` changes the remote user's uid in a layer built after the
Features (rootless Podman makes it the host user's, test_podman_templates.py goes through that end to
end). Here the same state is made by hand in the Debian Nix stand-in, so each branch of the handover is
seen: root hands the store over, an unchanged uid touches nothing, and a user without root or sudo gets
one line saying what to run while the container still starts.
"""

from __future__ import annotations

import subprocess

import pytest
from standins import BASE_ENV, REPO_ROOT, NixImages, run

pytestmark = pytest.mark.docker

ENTRYPOINT = REPO_ROOT / "features" / "src" / "nix" / "entrypoint.sh"
SHARE = "/usr/local/share/devnix/nix"

# The state install.sh leaves for a single-user store given to vscode as uid 1000, then the uid change
# updateRemoteUserUID makes (vscode becomes 2000), and a root-owned file that only a blanket chown
# would touch outside /nix.
SETUP = f"""
set -e
useradd --uid 2000 --user-group --create-home vscode
mkdir -p /nix/store /nix/var/nix/profiles/per-user && chown -R 1000:1000 /nix
mkdir -p {SHARE} /var/marker && touch /var/marker/root-owned
printf 'DEVNIX_NIX_MODE=single-user\\nDEVNIX_NIX_USER=vscode\\nDEVNIX_NIX_OWNER=%s\\n' "$RECORDED" \\
    >{SHARE}/feature.env
"""


def start(image: str, recorded: str, then: str, user: str = "root") -> subprocess.CompletedProcess[str]:
    """Set the state up as root, then run the entrypoint (as ``user``) with ``then`` as its command."""
    entry = f"{SHARE}/entrypoint.sh"
    as_user = "" if user == "root" else f"setpriv --reuid={user} --regid={user} --init-groups "
    script = f"{SETUP}\ncp /entrypoint.sh {entry} && chmod 0755 {entry}\nexec {as_user}{entry} sh -c '{then}'"
    return run(
        ["docker", "run", "--rm", "-e", f"RECORDED={recorded}", "-v", f"{ENTRYPOINT}:/entrypoint.sh:ro",
         "--entrypoint", "bash", image, "-c", script],
        env=BASE_ENV, check=False, timeout=300,
    )  # fmt: skip


OWNERS = "stat -c %u:%g /nix/store /nix/var/nix/profiles/per-user /var/marker/root-owned"


def test_root_hands_the_store_to_the_users_new_uid(nix_images: NixImages) -> None:
    done = start(nix_images.amd64, "1000:1000", OWNERS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2000:2000", "2000:2000", "0:0"], done.stdout


def test_a_second_start_finds_the_store_handed_over(nix_images: NixImages) -> None:
    twice = f"{SHARE}/entrypoint.sh {OWNERS}"
    done = start(nix_images.amd64, "1000:1000", twice)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2000:2000", "2000:2000", "0:0"], done.stdout


def test_an_unchanged_uid_touches_nothing(nix_images: NixImages) -> None:
    # Recorded as 2000: install.sh gave the store to the uid vscode still has, so the 1000-owned
    # files (made by SETUP) are left as they are.
    done = start(nix_images.amd64, "2000:2000", OWNERS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1000:1000", "1000:1000", "0:0"], done.stdout


def test_without_root_or_sudo_it_says_what_to_run_and_still_starts(nix_images: NixImages) -> None:
    done = start(nix_images.amd64, "1000:1000", f"echo started; {OWNERS}", user="vscode")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "1000:1000", "1000:1000", "0:0"], done.stdout
    assert done.stderr.strip() == (
        "[nix feature] /nix is 1000:1000's (vscode when Nix was installed), but vscode is now 2000:2000: "
        "run `sudo chown -R 2000:2000 /nix` once"
    ), done.stderr
