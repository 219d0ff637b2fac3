"""Edit `Pulumi.<stack>.yaml` as `pulumi config set --path` would, without the Pulumi CLI.

`--config-only` (the watcher's git-first rollback, a pull request that moves a step) only needs the
stack file changed; it must work where no Pulumi CLI is installed. ruamel.yaml's round-trip mode keeps
the file's comments, order and `secure:` values as they are; only the one value changes.

Paths are Pulumi's: `bluegreen:rollout.step` is the key `bluegreen:rollout` under `config:`, then
`step` inside it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .errors import ConfigError

__all__ = ["set_config_path"]


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def set_config_path(stack_file: Path, path: str, value: Any) -> None:
    """Set one `--path` config value in the stack file (creating missing objects along the path)."""
    ns_key, _, rest = path.partition(".")
    if ":" not in ns_key:
        raise ConfigError(path, "must start with a namespaced key such as bluegreen:rollout")
    y = _yaml()
    text = stack_file.read_text()
    doc = y.load(text) or {}
    config = doc.setdefault("config", {})
    if not rest:
        config[ns_key] = value
    else:
        node = config.setdefault(ns_key, {})
        parts = rest.split(".")
        for part in parts[:-1]:
            if not isinstance(node, dict):
                raise ConfigError(path, f"cannot set {part!r} inside a value that is not an object")
            node = node.setdefault(part, {})
        if not isinstance(node, dict) or (isinstance(node.get(parts[-1]), dict) and "secure" in node.get(parts[-1])):
            raise ConfigError(path, "is not a plain value in the stack file (an object or a secret): set it with pulumi config set")
        node[parts[-1]] = value
    out = io.StringIO()
    y.dump(doc, out)
    stack_file.write_text(out.getvalue())
