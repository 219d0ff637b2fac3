"""What the synthetic requests may GET (`bluegreen:probe.syntheticPath`): the rule the validator applies.

The path travels to the probe function in its environment (``BLUEGREEN_SYNTHETIC_PATH``), and Lambda
refuses a function whose variables together exceed 4 KB: it measures them as one JSON object
(``{"NAME":"value",...}``, UTF-8; its error quotes the "String measured"). The cap is computed here
from that limit and the longest value every other variable of the function can have, so that any path
the validator accepts fits next to the longest stack name, ARN and hostname the program can pass.

The path must be printable ASCII from RFC 3986's path, query and fragment characters, with every
``%`` starting a ``%XX`` escape: anything else (a space, a tab, a newline, non-ASCII) cannot be put in
an HTTP request line as it is, so every synthetic request would fail, on both colours alike.

Pure, standard library only.
"""

from __future__ import annotations

import json
import re
from typing import Mapping

__all__ = [
    "LAMBDA_ENVIRONMENT_LIMIT",
    "SYNTHETIC_PATH_VARIABLE",
    "LONGEST_OTHER_VALUES",
    "SYNTHETIC_PATH_MAX_LENGTH",
    "environment_size",
    "synthetic_path_problem",
    "same_endpoint",
]

LAMBDA_ENVIRONMENT_LIMIT = 4096  # bytes: all of a function's environment variables together (Lambda quotas)
SYNTHETIC_PATH_VARIABLE = "BLUEGREEN_SYNTHETIC_PATH"

# The longest value each other variable of the probe function can hold (rollout.probe_settings.ProbeSettings.ENV;
# a test keeps the names equal).
LONGEST_OTHER_VALUES: Mapping[str, str] = {
    "BLUEGREEN_STACK": "s" * 100,  # Pulumi refuses stack names longer than 100 characters
    # arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>: partitions are at most
    # 9 characters (aws-iso-b), regions 19 (us-isof-southeast-1; 24 allowed), ALB names 32, ids 16 hex digits.
    "BLUEGREEN_LOAD_BALANCER_ARN": f"arn:{'p' * 9}:elasticloadbalancing:{'r' * 24}:{'1' * 12}:loadbalancer/app/{'n' * 32}/{'f' * 16}",
    "BLUEGREEN_TEST_HOSTNAME": "h" * 253,  # bluegreen:traffic.testHostname: a DNS name, at most 253 characters
    "BLUEGREEN_PROBES": "50",  # bluegreen:probe.probes 1..50
    "BLUEGREEN_PROBE_TIMEOUT_SECONDS": "10",  # bluegreen:probe.timeoutSeconds 1..10
    "BLUEGREEN_EXPECTED_STATUS": "599",  # bluegreen:probe.expectedStatus 100..599
    "BLUEGREEN_SYNTHETIC_PER_MINUTE": "1000",  # bluegreen:probe.syntheticPerMinute 0..1000
    "BLUEGREEN_SYNTHETIC_REPRESENTATIVE": "true",  # bluegreen:probe.syntheticRepresentative (absent when false)
}


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes Lambda counts against its 4 KB: the variables as one compact JSON object, UTF-8."""
    return len(json.dumps(dict(variables), separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


# What is left for the path with every other variable at its longest: 4096 - 787 = 3309 bytes. The cap is lower:
# 2048 leaves over 1 KB for variables added later, and keeps "GET <path> HTTP/1.1" under the request-line limits
# of common servers (gunicorn's default is 4094 bytes).
_BUDGET = LAMBDA_ENVIRONMENT_LIMIT - environment_size({**LONGEST_OTHER_VALUES, SYNTHETIC_PATH_VARIABLE: ""})
SYNTHETIC_PATH_MAX_LENGTH = min(2048, _BUDGET)

# RFC 3986: pchar = unreserved / pct-encoded / sub-delims / ":" / "@", plus "/", "?" (query) and "#" (fragment).
_PATH_RE = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#]|%[0-9A-Fa-f]{2})*")


def synthetic_path_problem(path: str) -> str | None:
    """None when ``path`` may be a synthetic path, else what it must be (one line, for a ConfigError)."""
    if len(path) > SYNTHETIC_PATH_MAX_LENGTH or not _PATH_RE.fullmatch(path):
        return (f"must be an absolute URL path such as /api/ping of at most {SYNTHETIC_PATH_MAX_LENGTH} characters: "
                "letters, digits and - . _ ~ ! $ & ' ( ) * + , ; = : @ / ? # and %XX escapes (no spaces, tabs, newlines "
                f"or non-ASCII; got {len(path)} characters)")
    return None


def same_endpoint(path: str, health_path: str) -> bool:
    """Whether ``path`` asks for the health-check endpoint itself: the same path once the query, the fragment and
    trailing slashes are set aside (``/healthz?deep=1`` is still the health check)."""

    def bare(p: str) -> str:
        return re.split(r"[?#]", p, maxsplit=1)[0].rstrip("/") or "/"

    return bare(path) == bare(health_path)
