"""Red-team finding: `GET /metrics` (per-route counts, model spend) was open to anyone. It is off (404) unless
configured: a scraper's bearer token (VIVA_METRICS_TOKEN) or, explicitly, public (VIVA_METRICS_PUBLIC)."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app
from server.errors import SettingsError
from server.settings import load_settings
from tests.server.conftest import make_identity, server_settings

TOKEN = "metrics-scraper-secret-0123456789"


async def test_metrics_are_off_by_default(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data")
    async with AsyncTestClient(create_app(settings)) as client:
        anonymous = await client.get("/metrics")
        assert anonymous.status_code == 404 and "viva_" not in anonymous.text, anonymous.text
        admin = await make_identity(settings, "admin")
        assert (await client.get("/metrics", headers=admin.headers)).status_code == 404


async def test_metrics_need_the_configured_bearer_token(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_METRICS_TOKEN=TOKEN)
    async with AsyncTestClient(create_app(settings)) as client:
        admin = await make_identity(settings, "admin")
        refused = {
            "no header": {},
            "a wrong token": {"authorization": "Bearer " + TOKEN[:-1] + "x"},
            "a prefix of it": {"authorization": "Bearer " + TOKEN[:8]},
            "another scheme": {"authorization": "Basic " + TOKEN},
            "an admin's API token": admin.headers,
        }
        for why, headers in refused.items():
            answer = await client.get("/metrics", headers=headers)
            assert answer.status_code == 401 and "viva_http_requests_total" not in answer.text, why
        allowed = await client.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and "viva_http_requests_total" in allowed.text, allowed.text
        # The scraper's token opens /metrics only; elsewhere it is not an API token.
        assert (await client.get("/api/me", headers={"authorization": f"Bearer {TOKEN}"})).status_code == 401


async def test_metrics_public_only_when_configured(database_url: str, tmp_path: Path) -> None:
    settings = server_settings(database_url, tmp_path / "data", VIVA_METRICS_PUBLIC="true")
    async with AsyncTestClient(create_app(settings)) as client:
        answer = await client.get("/metrics")
        assert answer.status_code == 200 and "viva_http_requests_total" in answer.text


def test_metrics_settings_refuse_a_weak_or_ambiguous_configuration() -> None:
    with pytest.raises(SettingsError, match="not both"):
        load_settings({"VIVA_METRICS_TOKEN": TOKEN, "VIVA_METRICS_PUBLIC": "true"})
    with pytest.raises(SettingsError, match="at least 16"):
        load_settings({"VIVA_METRICS_TOKEN": "short"})
    assert load_settings({"VIVA_METRICS_TOKEN": ""}).metrics.token is None
