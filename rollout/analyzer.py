"""The engine's half of the Analyzer gRPC protocol: start a policy pack and ask it for verdicts.

    with PolicyPackClient(POLICY_DIR, env=offline_pack_env(token)) as pack:
        pack.configure({"one-step-at-a-time": {"enforcementLevel": "mandatory"}})
        result = pack.analyze("aws:lb/listener:Listener", props, urn=urn, name="web-traffic-production")
        assert not result.mandatory, result

The pack is started as the Pulumi engine starts it: `python <pack dir>` as a subprocess, which prints
its gRPC port on stdout. The client then calls `GetAnalyzerInfo`, `Configure` (the engine's config
reconciliation is reproduced here: schema defaults, then the `all` key, then each policy's section,
then JSON-schema validation), `Analyze` and `AnalyzeStack`. Properties travel as a protobuf Struct
exactly as the engine sends them: numbers become floats, unknown values are the engine's sentinel
strings (`UNKNOWN`), secrets are the signature object (`secret(value)`).

`python -m rollout plan` uses this module to run the pack on each simulated step in OFFLINE mode
(see `offline_pack_env` and docs/policy.md, "Offline verdicts"); the policy tests use it through
tests/policy_harness.py against a loopback moto_server.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from . import netguard

__all__ = [
    "POLICY_DIR",
    "UNKNOWN",
    "UNKNOWN_NUMBER",
    "UNKNOWN_BOOL",
    "OFFLINE_TOKEN_ENV",
    "OFFLINE_KEY",
    "NOT_EVALUATED_OFFLINE",
    "OFFLINE_AWS_ENDPOINT",
    "secret",
    "to_struct",
    "Violation",
    "AnalyzeResult",
    "PolicyPackClient",
    "PolicyPackError",
    "policy_pack_env",
    "offline_pack_env",
    "refuse_non_loopback",
]

# Offline mode (python -m rollout plan). BOTH must be present for the pack to judge traffic offline:
# this environment variable on the pack process, holding a random per-plan token, and an `offline`
# section in each policy's config carrying the same token. A real `pulumi preview/up` has neither.
OFFLINE_TOKEN_ENV = "BLUEGREEN_POLICY_OFFLINE_TOKEN"
OFFLINE_KEY = "offline"
# The message prefix of a policy that needs live AWS and so was not evaluated offline.
NOT_EVALUATED_OFFLINE = "not evaluated offline"
# Where boto3 in an offline pack would go if anything slipped through: a closed loopback port.
OFFLINE_AWS_ENDPOINT = "http://127.0.0.1:9"

REPO = Path(__file__).resolve().parent.parent
POLICY_DIR = REPO / "policy"  # the pack in this checkout

# The engine's sentinels for values not known during preview (pulumi_policy.proxy).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # string
UNKNOWN_NUMBER = "3eeb2bf0-c639-47a8-9e75-3b44932eb421"
UNKNOWN_BOOL = "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7"
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

_LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
_LEVEL_NAMES = {v: k for k, v in _LEVELS.items()}


def secret(value: Any) -> dict[str, Any]:
    """A property value marked secret, as the engine encodes it."""
    return {_SIG: _SECRET_SIG, "value": value}


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def policy_pack_env(aws_endpoint: str, scratch: Path | str, region: str = "us-east-1", **extra: str) -> dict[str, str]:
    """An environment for the pack process: this machine's, minus every AWS setting and proxy,
    plus boto3 aimed at `aws_endpoint` (a loopback moto_server) with fake credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in _PROXY_VARS}
    empty = Path(scratch) / "aws-empty"
    empty.write_text("")
    env.update(
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        AWS_CONFIG_FILE=str(empty),
        AWS_SHARED_CREDENTIALS_FILE=str(empty),
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra)
    return env


def offline_pack_env(token: str, *, aws_endpoint: str = OFFLINE_AWS_ENDPOINT, region: str = "us-east-1", **extra: str) -> dict[str, str]:
    """An environment for a pack that must judge offline and never reach AWS.

    This machine's environment minus every AWS setting and proxy; no credentials at all; boto3 aimed
    at `aws_endpoint` (a closed loopback port by default); no instance metadata; and the offline
    token, which also makes the pack refuse every non-loopback connection (`refuse_non_loopback`).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in _PROXY_VARS}
    env.update(
        AWS_ENDPOINT_URL=aws_endpoint,
        AWS_DEFAULT_REGION=region,
        AWS_REGION=region,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env[OFFLINE_TOKEN_ENV] = token
    env.update(extra)
    return env


def refuse_non_loopback() -> None:
    """From now on, this process may connect to and look up loopback addresses only.

    Called by the pack's `__main__` when it runs offline: whatever a policy tries, no packet leaves
    the machine.
    """
    netguard.install("the policy pack runs offline and")

class PolicyPackError(RuntimeError):
    """The pack did not start, or a gRPC call failed (a policy let an exception escape)."""


@dataclass(frozen=True)
class Violation:
    """One diagnostic from the pack."""

    policy: str
    level: str  # advisory | mandatory | remediate | disabled
    message: str
    urn: str = ""

    def __str__(self) -> str:
        return f"[{self.level}] {self.policy}: {self.message}"


@dataclass
class AnalyzeResult:
    """What one Analyze / AnalyzeStack call reported."""

    violations: list[Violation] = field(default_factory=list)
    not_applicable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "mandatory"]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if v.level == "advisory"]

    def of(self, policy: str) -> list[Violation]:
        return [v for v in self.violations if v.policy == policy]

    def find(self, policy: str, substring: str) -> list[Violation]:
        return [v for v in self.of(policy) if substring in v.message]

    def __str__(self) -> str:
        if not self.violations:
            return "no violations"
        return "violations:\n" + "\n".join(f"  {v}" for v in self.violations)

    __repr__ = __str__


def to_struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties as the protobuf Struct the engine sends (numbers become floats)."""
    s = struct_pb2.Struct()
    s.update(dict(props))
    return s


class PolicyPackClient:
    """Start `python <pack dir>` and talk to it as the engine does. A context manager."""

    def __init__(
        self,
        pack_dir: Path | str = POLICY_DIR,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        python: str = sys.executable,
        startup_timeout: float = 60.0,
        rpc_timeout: float = 90.0,
        project: str = "bluegreen",
        stack: str = "production",
        command: Iterable[str] | None = None,
    ) -> None:
        self.pack_dir = Path(pack_dir)
        # The default `python -u <pack dir>` runs the same __main__.py; `rollout.pack_launch.engine_launch`
        # gives the engine's exact command (virtualenv from PulumiPolicy.yaml, `-m pulumi.policy`).
        self.command = list(command) if command is not None else None
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = Path(cwd) if cwd is not None else self.pack_dir  # the engine runs plugins in their dir
        self.python = python
        self.startup_timeout = startup_timeout
        self.rpc_timeout = rpc_timeout
        self.project = project
        self.stack = stack
        self._proc: subprocess.Popen | None = None
        self._stderr = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._info: analyzer_pb2.AnalyzerInfo | None = None
        self.port: int | None = None

    # -- lifecycle
    def start(self) -> PolicyPackClient:
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(
            self.command or [self.python, "-u", str(self.pack_dir)],
            cwd=str(self.cwd),
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=lambda: lines.put(self._proc.stdout.readline()), daemon=True).start()
        try:
            first = lines.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.stop()
            raise PolicyPackError(f"the pack printed no port within {self.startup_timeout:g} s") from None
        try:
            self.port = int(first.strip())
        except ValueError:
            err = self.stderr()
            self.stop()
            raise PolicyPackError(f"the pack did not print a port; stdout {first!r}; stderr:\n{err}") from None
        self._channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        return self

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(timeout=10)
            if self._proc.stdout:
                self._proc.stdout.close()
            self._proc = None

    def stderr(self) -> str:
        """What the pack wrote on stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def __enter__(self) -> PolicyPackClient:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- calls
    def call(self, method: str, request: Any) -> Any:
        """One raw Analyzer RPC (`Analyze`, `AnalyzeStack`, …) with a prepared protobuf request."""
        if self._stub is None:
            raise PolicyPackError("the pack is not started")
        try:
            return getattr(self._stub, method)(request, timeout=self.rpc_timeout)
        except grpc.RpcError as e:
            raise PolicyPackError(f"{method} failed: {e.code()}: {e.details()}\npack stderr:\n{self.stderr()[-4000:]}") from e

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        if self._info is None:
            self._info = self.call("GetAnalyzerInfo", empty_pb2.Empty())
        return self._info

    def plugin_version(self) -> str:
        return self.call("GetPluginInfo", empty_pb2.Empty()).version

    def policies(self) -> dict[str, dict[str, Any]]:
        """name -> {description, level, schema (JSON schema properties), required}."""
        out: dict[str, dict[str, Any]] = {}
        for p in self.info().policies:
            out[p.name] = {
                "description": p.description,
                "level": _LEVEL_NAMES[p.enforcementLevel],
                "schema": json_format.MessageToDict(p.configSchema.properties),
                "required": list(p.configSchema.required),
            }
        return out

    def reconcile(self, config: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
        """The engine's ReconcilePolicyPackConfig: defaults, `all`, per-policy, then validation."""
        policies = self.policies()
        result = {
            name: {"level": p["level"], "properties": {k: v["default"] for k, v in p["schema"].items() if "default" in v}}
            for name, p in policies.items()
        }
        config = dict(config or {})
        if "all" in config:
            lvl = config["all"] if isinstance(config["all"], str) else config["all"].get("enforcementLevel")
            if lvl:
                for r in result.values():
                    r["level"] = lvl
        for name, given in config.items():
            if name == "all" or name not in result:
                continue
            if isinstance(given, str):
                result[name]["level"] = given
                continue
            given = dict(given)
            lvl = given.pop("enforcementLevel", None)
            if lvl:
                result[name]["level"] = lvl
            result[name]["properties"].update(given)
        for name, r in result.items():
            if r["level"] not in _LEVELS:
                raise ValueError(f"{name}: {r['level']!r} is not a valid enforcement level")
        import fastjsonschema  # the engine validates pack config against each policy's schema; so do we (draft 7)

        errors = []
        for name, p in policies.items():
            schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": p["schema"]}
            if p["required"]:
                schema["required"] = p["required"]
            try:
                fastjsonschema.compile(schema)(result[name]["properties"])
            except fastjsonschema.JsonSchemaValueException as err:  # the first error of each policy
                where = ".".join(str(x) for x in err.path[1:])
                text = err.message[len(err.name) + 1:] if err.name and err.message.startswith(err.name + " ") else err.message
                errors.append(f"{name}: {where + ': ' if where else ''}{text}")
        if errors:
            raise ValueError("policy pack configuration is invalid: " + "; ".join(errors))
        return result

    def configure(self, config: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Send the reconciled config (as `--policy-pack-config` would); returns what was sent."""
        reconciled = self.reconcile(config)
        self.send_config(reconciled)
        return reconciled

    def send_config(self, reconciled: Mapping[str, Mapping[str, Any]]) -> None:
        """Send a config `reconcile` already produced and validated, without validating it again."""
        request = analyzer_pb2.ConfigureAnalyzerRequest(
            policyConfig={
                name: analyzer_pb2.PolicyConfig(enforcementLevel=_LEVELS[r["level"]], properties=to_struct(r["properties"]))
                for name, r in reconciled.items()
            }
        )
        self.call("Configure", request)

    def configure_file(self, path: Path | str, overrides: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Configure from a `--policy-pack-config` JSON file, with per-policy overrides merged in."""
        config = json.loads(Path(path).read_text())
        for name, extra in (overrides or {}).items():
            base = config.get(name, {})
            base = {"enforcementLevel": base} if isinstance(base, str) else dict(base)
            if isinstance(extra, str):
                base["enforcementLevel"] = extra
            else:
                base.update(extra)
            config[name] = base
        return self.configure(config)

    def _urn(self, type_: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_}::{name}"

    @staticmethod
    def _result(response: analyzer_pb2.AnalyzeResponse) -> AnalyzeResult:
        return AnalyzeResult(
            violations=[
                Violation(d.policyName, _LEVEL_NAMES.get(d.enforcementLevel, str(d.enforcementLevel)), d.message, d.urn)
                for d in response.diagnostics
            ],
            not_applicable=[(n.policy_name, n.reason) for n in response.not_applicable],
        )

    def analyze(
        self, type_: str, props: Mapping[str, Any], *, urn: str | None = None, name: str = "resource"
    ) -> AnalyzeResult:
        """One resource, before it is created or updated (a resource policy)."""
        request = analyzer_pb2.AnalyzeRequest(
            type=type_,
            properties=to_struct(props),
            urn=urn or self._urn(type_, name),
            name=name,
            options=analyzer_pb2.AnalyzerResourceOptions(),
        )
        return self._result(self.call("Analyze", request))

    def analyze_stack(self, resources: Iterable[Mapping[str, Any]]) -> AnalyzeResult:
        """All resources after the update: each {type, props, name, urn?, parent?}."""
        items = []
        for r in resources:
            items.append(
                analyzer_pb2.AnalyzerResource(
                    type=r["type"],
                    properties=to_struct(r.get("props", {})),
                    urn=r.get("urn") or self._urn(r["type"], r["name"]),
                    name=r["name"],
                    options=analyzer_pb2.AnalyzerResourceOptions(),
                    parent=r.get("parent") or "",
                )
            )
        return self._result(self.call("AnalyzeStack", analyzer_pb2.AnalyzeStackRequest(resources=items)))

