"""Make a self-contained copy of the pack for `pulumi policy publish`.

The pack imports `rollout/` (rules, live reads, health gate) from the repository. A published pack
is only its own folder, so this copies the pack and the `rollout` package into OUT:

    python policy/bundle.py dist/bluegreen-policy
    cd dist/bluegreen-policy && pulumi policy publish <org>

Nothing in the checkout changes. In the bundle `__main__.py` finds `rollout/` next to itself.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
_IGNORE = shutil.ignore_patterns("venv", ".venv", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")


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
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create, e.g. dist/bluegreen-policy")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    out = bundle(args.out, force=args.force)
    print(f"bundled the bluegreen policy pack into {out}; publish with: cd {out} && pulumi policy publish <org>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
