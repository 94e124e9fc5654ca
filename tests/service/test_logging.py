"""Structured JSON logs: one JSON object per line, request ids, and never an API key."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from dealscore_service.logging import redact_secrets, request_id_from


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_requests_log_json_lines_with_request_ids_and_no_keys(
    make_client: Callable[..., TestClient], keys: dict[str, str], capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_client(log_level="INFO")
    capsys.readouterr()
    key = keys["manager"]
    r = client.get("/v1/deals/at-risk", headers={"X-API-Key": key, "X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    client.get("/v1/model", headers={"Authorization": f"Bearer {keys['admin']}"})
    client.get("/v1/model", headers={"X-API-Key": key + "x"})  # a wrong key is not logged either
    err = capsys.readouterr().err
    assert key not in err and keys["admin"] not in err
    records = _lines(err)
    access = [x for x in records if x.get("event") == "request"]
    assert len(access) == 3
    first = access[0]
    assert first["request_id"] == "abc-123" and first["route"] == "/v1/deals/at-risk" and first["status"] == 200
    assert first["key_name"] == "manager" and "duration_ms" in first and first["level"] == "info"
    assert access[2]["status"] == 401 and access[2]["key_name"] is None
    assert len({x["request_id"] for x in access}) == 3


def test_unsafe_request_ids_are_replaced() -> None:
    assert request_id_from("abc-123_X.y") == "abc-123_X.y"
    assert request_id_from("a" * 65) is None
    assert request_id_from("bad id\nwith newline") is None
    assert request_id_from(None) is None


def test_redaction_catches_keys_anywhere() -> None:
    event = {"event": "oops dsk_abcdefghijklmnop leaked", "api_key": "dsk_xyz", "headers": {"x": 1}, "n": 3}
    out = redact_secrets(None, "info", event)
    assert out == {"event": "oops [redacted] leaked", "api_key": "[redacted]", "headers": "[redacted]", "n": 3}
