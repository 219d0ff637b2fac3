"""Drive the policy pack the way the Pulumi engine does: as a subprocess, over the Analyzer gRPC service.

    with PolicyPackClient(env={"AWS_ENDPOINT_URL": moto}) as pack:
        pack.configure_file("policy/production.json")
        result = pack.analyze("aws:lb/listener:Listener", props, name="web-traffic-production")
        assert not result.mandatory, result

The client is production code, `rollout.analyzer` (`python -m rollout plan` runs the pack with it);
this module keeps the tests' import path. `python policy` prints its gRPC port on stdout; the client
then calls `GetAnalyzerInfo`, `Configure` (with the engine's config reconciliation), `Analyze` and
`AnalyzeStack`. Properties travel as a protobuf Struct exactly as the engine sends them: numbers
become floats, unknown values are the engine's sentinel strings (`UNKNOWN`), secrets are the
signature object (`secret(value)`).
"""

from __future__ import annotations

from rollout.analyzer import (
    POLICY_DIR,
    REPO,  # noqa: F401 - kept for old imports
    UNKNOWN,
    UNKNOWN_BOOL,
    UNKNOWN_NUMBER,
    AnalyzeResult,
    PolicyPackClient,
    PolicyPackError,
    Violation,
    policy_pack_env,
    secret,
)

__all__ = [
    "POLICY_DIR",
    "UNKNOWN",
    "UNKNOWN_NUMBER",
    "UNKNOWN_BOOL",
    "secret",
    "Violation",
    "AnalyzeResult",
    "PolicyPackClient",
    "PolicyPackError",
    "policy_pack_env",
]
