"""How the Pulumi engine starts a Python policy pack, reproduced so tests can start it the same way.

What the engine does (pulumi/pulumi, `pkg/resource/plugin/plugin.go` and
`sdk/python/cmd/pulumi-language-python/main.go`, `RunPlugin` for an analyzer plugin):

* it reads `PulumiPolicy.yaml`'s `runtime.options` and resolves `virtualenv` relative to the pack
  folder (`toolchain/pip.go`, `resolveVirtualEnvironmentPath(root, virtualenv)`, where root is the
  absolute pack folder); a plugin with the pip toolchain and no `virtualenv` gets `venv`;
* it runs `<virtualenv>/bin/python -u -m pulumi.policy <engine address> <pack dir>` with the
  virtualenv activated (`VIRTUAL_ENV`, its `bin` first on `PATH`, no `PYTHONHOME`) and the pack
  folder as the working directory ("python policy packs used to always run with the working
  directory set to the policy pack directory");
* `pulumi.policy` (pulumi SDK, `lib/pulumi/policy/__main__.py`) parses both arguments and runs the
  pack's `__main__.py` with `runpy.run_path`; the pack prints its gRPC port on stdout.

Nothing here creates a virtualenv: the engine does not either (only `pulumi install` in the pack
folder, or the CLI when it installs a *published* pack for enforcement, does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import yaml

from .errors import RolloutError

__all__ = ["PackLaunch", "PackLaunchError", "engine_launch"]


class PackLaunchError(RolloutError):
    """The policy pack cannot be started the way the engine starts it."""


@dataclass(frozen=True)
class PackLaunch:
    """The command, working directory and virtualenv the engine would use for a pack."""

    argv: tuple[str, ...]
    cwd: Path
    virtualenv: Path

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` with the virtualenv activated as `toolchain.ActivateVirtualEnv` does."""
        env = {k: v for k, v in base.items() if k != "PYTHONHOME"}
        env["VIRTUAL_ENV"] = str(self.virtualenv)
        env["PATH"] = os.pathsep.join([str(self.virtualenv / "bin"), env.get("PATH", "")])
        return env


def engine_launch(pack_dir: Path | str, engine_address: str) -> PackLaunch:
    """What `pulumi preview/up --policy-pack <pack_dir>` would execute; refuses what the engine can't run."""
    pack = Path(pack_dir).resolve()
    try:
        project = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PackLaunchError(f"{pack}: cannot read PulumiPolicy.yaml: {e}") from None
    runtime = project.get("runtime") if isinstance(project, dict) else None
    name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if name != "python":
        raise PackLaunchError(f"{pack}/PulumiPolicy.yaml: runtime must be python, got {name!r}")
    options = (runtime.get("options") if isinstance(runtime, dict) else None) or {}
    toolchain = options.get("toolchain", "pip")
    if toolchain not in ("pip", "auto"):
        raise PackLaunchError(f"{pack}/PulumiPolicy.yaml: runtime.options.toolchain: only pip is reproduced here, got {toolchain!r}")
    venv = Path(options.get("virtualenv") or "venv")
    venv = venv if venv.is_absolute() else pack / venv
    python = venv / "bin" / "python"
    if not python.exists():
        raise PackLaunchError(
            f"{pack}/PulumiPolicy.yaml: runtime.options.virtualenv resolves to {venv}, which has no bin/python: "
            "the engine would report 'policy pack failed to start'"
        )
    return PackLaunch(argv=(str(python), "-u", "-m", "pulumi.policy", engine_address, str(pack)), cwd=pack, virtualenv=venv)
