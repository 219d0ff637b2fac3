"""Make a self-contained copy of the pack for `pulumi policy publish`.

The pack imports `rollout/` (rules, live reads, health gate) from the repository. A published pack
is only its own folder, so this copies the pack and the `rollout` package into OUT and points the
bundle's PulumiPolicy.yaml at a virtualenv inside it (`venv`):

    python policy/bundle.py dist/bluegreen-policy --venv
    cd dist/bluegreen-policy && pulumi policy publish <org>

`pulumi policy publish` starts the pack (with the engine's command, in the bundle folder) to read its
name, version and policies, so the bundle's `venv/` must exist first: `--venv` creates it and installs
`requirements.txt` (by hand: `python -m venv OUT/venv && OUT/venv/bin/pip install -r OUT/requirements.txt`).
`venv/` is in the bundle's `.gitignore`, so it is not uploaded; when a policy group enforces the pack,
the CLI downloads it and creates that same `venv/` from `requirements.txt` (pulumi/pulumi
`pkg/backend/httpstate/policypack.go`, `installRequiredPolicy`).

Nothing in the checkout changes. In the bundle `__main__.py` finds `rollout/` next to itself.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BUNDLE_VENV = "venv"  # relative to the bundle; what the CLI creates for an installed published pack
_IGNORE = shutil.ignore_patterns("venv", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")


def _point_at_own_venv(project_file: Path) -> None:
    project = yaml.safe_load(project_file.read_text())
    project["runtime"].setdefault("options", {})["virtualenv"] = BUNDLE_VENV
    project_file.write_text(yaml.safe_dump(project, sort_keys=False))


def bundle(out: Path, *, repo: Path = REPO, force: bool = False) -> Path:
    """Copy the pack and `rollout/` into `out` (which must not exist unless force)."""
    out = out.resolve()
    pack = repo / "policy"
    if out == pack or pack in out.parents:
        raise SystemExit(f"bundle: OUT must be outside the pack folder, got {out}")
    if out.exists():
        if not force:
            raise SystemExit(f"bundle: {out} exists (use --force to replace it)")
        shutil.rmtree(out)
    shutil.copytree(pack, out, ignore=_IGNORE)
    shutil.copytree(repo / "rollout", out / "rollout", ignore=_IGNORE)
    _point_at_own_venv(out / "PulumiPolicy.yaml")
    return out


def make_venv(out: Path, python: str = sys.executable) -> Path:
    """Create OUT/venv with the pack's requirements (what publish needs to start the pack)."""
    venv = out / BUNDLE_VENV
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(out / "requirements.txt")], check=True)
    return venv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create, e.g. dist/bluegreen-policy")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    parser.add_argument("--venv", action="store_true", help="also create OUT/venv with the pack's requirements (needed to publish)")
    args = parser.parse_args(argv)
    out = bundle(args.out, force=args.force)
    if args.venv:
        make_venv(out)
    else:
        print(f"before publishing: python -m venv {out}/venv && {out}/venv/bin/pip install -r {out}/requirements.txt")
    print(f"bundled the bluegreen policy pack into {out}; publish with: cd {out} && pulumi policy publish <org>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
