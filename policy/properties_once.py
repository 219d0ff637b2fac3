"""Convert an Analyze request's properties once per call, not once per policy (speed only).

The SDK's `Analyze` (pulumi_policy/policy.py, `_PolicyAnalyzerServicer.Analyze`) converts the
request's protobuf Struct to Python -- `json_format.MessageToDict`, then `deserialize_properties` --
inside its loop over the pack's policies: 18 times for every resource, about a third of the pack's
time per resource (bench/policy_latency.py). Within one call the message is the same, and the
converted dict is only read by `unknown_checking_proxy`, which builds fresh dicts and lists for each
policy: a policy that writes into its `args.props` still cannot change what the next policy sees,
and unknown values still raise in each policy that reads them.

`PropertiesOncePerCall.install(sdk)` stands in for those two names in the SDK's module; the pack's
Analyze wrapper (policy/__main__.py) scopes the memo to one call with `once.call(request.properties)`.
Anything else (AnalyzeStack, Configure, Remediate, another thread's call) goes to the SDK's own code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["PropertiesOncePerCall"]


class PropertiesOncePerCall:
    """The SDK's `json_format` (MessageToDict) and `deserialize_properties`, memoised for one call."""

    def __init__(self, json_format: Any, deserialize_properties: Any) -> None:
        self._json_format = json_format
        self._deserialize = deserialize_properties
        self._call = threading.local()

    @classmethod
    def install(cls, sdk: Any) -> PropertiesOncePerCall | None:
        """Stand in for the SDK module's two names (it looks them up at call time); None if it has neither."""
        if not hasattr(sdk, "json_format") or not hasattr(sdk, "deserialize_properties"):
            return None
        once = cls(sdk.json_format, sdk.deserialize_properties)
        sdk.json_format = once
        sdk.deserialize_properties = once.deserialize_properties
        return once

    @contextlib.contextmanager
    def call(self, message: Any) -> Iterator[None]:
        """Within this block, on this thread, `message` is converted at most once."""
        call = self._call
        call.message, call.plain, call.deserialized = message, None, None
        try:
            yield
        finally:
            call.message = call.plain = call.deserialized = None

    def __getattr__(self, name: str) -> Any:  # the rest of json_format, unchanged
        return getattr(self._json_format, name)

    def MessageToDict(self, message: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - json_format's name
        call = self._call
        if args or kwargs or message is None or message is not getattr(call, "message", None):
            return self._json_format.MessageToDict(message, *args, **kwargs)
        if call.plain is None:
            call.plain = self._json_format.MessageToDict(message)
        return call.plain

    def deserialize_properties(self, props: Any, proxy_secrets: bool = False) -> Any:
        call = self._call
        if proxy_secrets or props is None or props is not getattr(call, "plain", None):
            return self._deserialize(props, proxy_secrets)
        if call.deserialized is None:
            call.deserialized = self._deserialize(props)
        return call.deserialized
