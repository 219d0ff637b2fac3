"""The policy pack starts exactly as the Pulumi engine starts it, after only the documented setup,
from a fresh clone; and the published bundle starts the same way in the folder `pulumi policy
publish` (and an enforcing CLI) uses.

The engine's command is `rollout.pack_launch.engine_launch`: the interpreter from PulumiPolicy.yaml's
`virtualenv`, resolved relative to the pack folder, then `python -u -m pulumi.policy <engine address>
<pack dir>` with the pack folder as working directory.

The documented setup is `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt` at the
repository root (README). Installing from PyPI in every test run is slow, so by default the clone's
`.venv` is a symlink to the environment running the tests (it has requirements-dev.txt, a superset);
set BLUEGREEN_REAL_SETUP=1 to run the documented pip install instead (and for the bundle,
`bundle.py --venv`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rollout.analyzer import REPO, PolicyPackClient, policy_pack_env
from rollout.pack_launch import PackLaunchError, engine_launch

REAL_SETUP = os.environ.get("BLUEGREEN_REAL_SETUP") == "1"
SHARED_VENV = Path(sys.prefix)
ENGINE_ADDRESS = "127.0.0.1:1"  # `pulumi.policy` parses it; nothing in the pack dials the engine
POLICIES = {
    "healthy-promotion",
    "one-step-at-a-time",
    "bake-time",
    "valid-weights",
    "migration-guard",
    "alb-https-only",
    "alb-access-logs",
}


def _run(*cmd: str, cwd: Path | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=900)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh `git clone` of this checkout's HEAD with the README's setup done."""
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    dest = tmp_path_factory.mktemp("fresh") / "bluegreen"
    _run("git", "clone", "-q", str(REPO), str(dest))
    if REAL_SETUP:
        _run(sys.executable, "-m", "venv", ".venv", cwd=dest)
        _run(".venv/bin/pip", "install", "-q", "-r", "requirements.txt", cwd=dest)
    else:
        (dest / ".venv").symlink_to(SHARED_VENV, target_is_directory=True)
    return dest


def _start_and_check(pack_dir: Path, scratch: Path) -> None:
    launch = engine_launch(pack_dir, ENGINE_ADDRESS)
    assert launch.cwd == pack_dir.resolve()
    assert launch.argv[1:4] == ("-u", "-m", "pulumi.policy") and launch.argv[-1] == str(pack_dir.resolve())
    env = policy_pack_env("http://127.0.0.1:9", scratch)
    env.pop("PYTHONPATH", None)
    with PolicyPackClient(pack_dir, command=launch.argv, cwd=launch.cwd, env=launch.env(env)) as client:
        assert client.info().name == "bluegreen"
        assert POLICIES <= set(client.policies()), client.policies()
        client.configure_file(pack_dir / "production.json")
        result = client.analyze("aws:lb/loadBalancer:LoadBalancer", {"loadBalancerType": "application"}, name="lb")
        assert result.find("alb-deletion-protection", "deletion protection"), result


def test_local_pack_starts_like_the_engine_starts_it_from_a_fresh_clone(clone, tmp_path):
    _start_and_check(clone / "policy", tmp_path)


def test_published_bundle_starts_like_the_engine_starts_it(clone, tmp_path):
    """`bundle.py OUT` (+ its venv) outside any checkout: the folder publish archives and enforcement installs."""
    out = tmp_path / "dist" / "bluegreen-policy"
    _run(str(clone / ".venv" / "bin" / "python"), str(clone / "policy" / "bundle.py"), str(out), *(["--venv"] if REAL_SETUP else []))
    shutil.rmtree(clone / "rollout")  # the bundle must not lean on the checkout it came from
    project = yaml.safe_load((out / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["options"]["virtualenv"] == "venv"  # what the CLI creates when it installs a published pack
    assert "venv/" in (out / ".gitignore").read_text()  # publish archives the folder minus .gitignore
    if not REAL_SETUP:
        (out / "venv").symlink_to(SHARED_VENV, target_is_directory=True)
    _start_and_check(out, tmp_path)


def test_a_virtualenv_nobody_creates_is_refused_before_start(tmp_path):
    """The shipped `virtualenv: venv` (no step of the setup makes policy/venv) could never start."""
    pack = tmp_path / "pack"
    shutil.copytree(REPO / "policy", pack, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    project = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())
    project["runtime"]["options"]["virtualenv"] = "venv"
    (pack / "PulumiPolicy.yaml").write_text(yaml.safe_dump(project))
    with pytest.raises(PackLaunchError, match="virtualenv resolves to .*pack/venv"):
        engine_launch(pack, ENGINE_ADDRESS)


def test_the_policy_doc_no_longer_says_the_cli_creates_a_local_venv():
    text = (REPO / "docs" / "policy.md").read_text()
    assert "the CLI does this for a local pack" not in text
    assert "../.venv" in text
