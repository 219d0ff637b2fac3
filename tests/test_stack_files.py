"""The shipped stack files are deployable as they are (apart from the account ids they say to replace),
and the header route accepts only a custom header with one exact value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rollout.config import parse_stack_config
from rollout.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# What public sample images serve, from their own sources: the nginx image's Dockerfile says
# `EXPOSE 80` and its default server answers `/` with the welcome page (nginxinc/docker-nginx); it has
# no /healthz, so a health check there gets 404 and the colour never becomes healthy.
SAMPLE_IMAGES = {"nginx": {"port": 80, "paths": {"/", "/index.html"}}}


def _raw(stack: str) -> dict:
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("bluegreen:")}


def _sample(image: str) -> dict | None:
    repo = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return SAMPLE_IMAGES.get(repo)


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_sample_images_are_probed_where_they_answer(stack):
    cfg = parse_stack_config(_raw(stack))
    for color, c in cfg.colors.items():
        facts = _sample(c.image)
        if facts is None:
            continue  # the team's own image (an account id to replace)
        assert cfg.service.port == facts["port"], f"{stack}: {color} runs {c.image}, which listens on {facts['port']}, not {cfg.service.port}"
        assert cfg.service.health_path in facts["paths"], f"{stack}: {c.image} does not answer {cfg.service.health_path}"


def test_staging_needs_no_account_specific_value():
    """Staging creates its own VPC and runs public images: nothing in it needs replacing."""
    text = (ROOT / "Pulumi.staging.yaml").read_text()
    assert "123456789012" not in text and "vpc-" not in text and "arn:aws" not in text


def _with_route(route: dict) -> dict:
    raw = _raw("production")
    raw["traffic"] = {**raw["traffic"], "headerRoute": route}
    return raw


@pytest.mark.parametrize(
    "route, key",
    [
        ({"name": "User-Agent", "value": "curl"}, "headerRoute.name"),
        ({"name": "host", "value": "example.com"}, "headerRoute.name"),
        ({"name": "Cookie", "value": "a"}, "headerRoute.name"),
        ({"name": "X-Forwarded-For", "value": "10.0.0.1"}, "headerRoute.name"),
        ({"name": "Sec-Fetch-Mode", "value": "navigate"}, "headerRoute.name"),
        ({"name": "X-Canary", "value": "*"}, "headerRoute.value"),
        ({"name": "X-Canary", "value": "alw?ys"}, "headerRoute.value"),
        ({"name": "X-Canary", "value": "a b"}, "headerRoute.value"),
        ({"name": "X-Canary", "value": "x" * 129}, "headerRoute.value"),
        ({"name": "X Canary", "value": "always"}, "headerRoute.name"),
    ],
)
def test_header_route_refuses_standard_headers_and_wildcards(route, key):
    with pytest.raises(ConfigError) as e:
        parse_stack_config(_with_route(route))
    message = str(e.value)
    assert e.value.key == f"bluegreen:traffic.{key}", message
    assert "\n" not in message and ("X-Canary" in message or "always" in message), message  # says what is allowed


def test_a_custom_header_route_is_accepted():
    cfg = parse_stack_config(_with_route({"name": "X-Canary", "value": "always"}))
    assert (cfg.traffic.header_route_name, cfg.traffic.header_route_value) == ("X-Canary", "always")


def test_every_update_refreshes_first_so_the_reflex_marker_is_cleared():
    """Pulumi Deployments runs a plain `pulumi up`: only the project's `options.refresh: always` makes it
    read the reflex's out-of-band rollback and remove its bluegreen:aborted marker (docs/reflex.md)."""
    import yaml as _yaml

    project = _yaml.safe_load((Path(__file__).resolve().parent.parent / "Pulumi.yaml").read_text())
    assert project.get("options", {}).get("refresh") == "always", project
