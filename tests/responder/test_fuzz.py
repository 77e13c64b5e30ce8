"""Generated and mutated webhook payloads: never a 5xx, never an action from a malformed payload.

The responder runs on a real port in a background thread (one app for the whole module); hypothesis drives it
with `requests`. ~1,500 examples in all.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.pgserver import free_port
from responder.app import make_app
from responder.config import build_config
from responder.core import ActionSpec, TargetKind
from responder.playbooks import default_registry
from tests.support.responder import AUTH, Recorder, RecordParams

pytestmark = pytest.mark.slow  # hypothesis against a running responder

ALERTNAMES = ["TestAlert", "PostgresLongRunningQuery", "RDSCPUHigh", "Other"]


@dataclass
class Running:
    base: str
    recorder: Recorder
    session: requests.Session

    def newest_id(self) -> int:
        rows = self.session.get(f"{self.base}/actions?limit=1", headers=AUTH, timeout=10).json()["actions"]
        return int(rows[0]["id"]) if rows else 0


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    recorder = Recorder()
    registry = default_registry()
    registry.register(ActionSpec(RecordParams, TargetKind.POSTGRES, recorder.run, name="record"))
    config = build_config(
        {
            "mode": "enforce",
            "token": AUTH["Authorization"].split()[1],
            "journal": f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'journal.db'}",
            "targets": [{"name": "production", "dsn": "postgresql://nobody@127.0.0.1:1/none"}],
            "max_body_bytes": 65536,
            "playbooks": [
                {
                    "name": "rec",
                    "match": {"alertname": ["TestAlert", "PostgresLongRunningQuery"]},
                    "action": "record",
                }
            ],
        },
        registry,
    )
    loop = asyncio.new_event_loop()
    port = free_port()
    runner = web.AppRunner(make_app(config))

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    with requests.Session() as session:
        yield Running(f"http://127.0.0.1:{port}", recorder, session)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(60)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


label_names = st.sampled_from(["target", "datname", "relname", "schemaname", "dbidentifier", "instance", "x"])
label_values = st.text(max_size=40)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.isoformat().replace("+00:00", "Z"))


@st.composite
def alerts(draw: st.DrawFn) -> dict[str, Any]:
    labels = draw(st.dictionaries(label_names, label_values, max_size=4))
    labels["alertname"] = draw(st.sampled_from(ALERTNAMES))
    return {
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "labels": labels,
        "annotations": draw(
            st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=20), max_size=2)
        ),
        "startsAt": draw(timestamps),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": draw(st.text("0123456789abcdef", min_size=1, max_size=16)),
        **draw(
            st.dictionaries(st.sampled_from(["extra", "silenceURL", "new_field"]), st.integers(), max_size=1)
        ),
    }


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "version": "4",
        "status": draw(st.sampled_from(["firing", "resolved"])),
        "receiver": "pgwarden",
        "groupKey": draw(st.text(max_size=20)),
        "truncatedAlerts": draw(st.integers(0, 5)),
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": draw(st.lists(alerts(), max_size=4)),
        **draw(st.dictionaries(st.sampled_from(["unknownTop", "future"]), st.booleans(), max_size=1)),
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = copy.deepcopy(draw(payloads()))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


def _post(running: Running, data: bytes) -> requests.Response:
    return running.session.post(
        f"{running.base}/webhook", data=data, timeout=10, headers={**AUTH, "Content-Type": "application/json"}
    )


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@fuzz(400)
@given(payloads())
def test_valid_payloads_are_accepted(running: Running, body: dict[str, Any]) -> None:
    resp = _post(running, json.dumps(body).encode())
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["decisions"]) >= len(body["alerts"])


@fuzz(800)
@given(mutated())
def test_mutated_payloads_never_5xx_and_never_act_when_rejected(running: Running, body: Any) -> None:
    before_id = running.newest_id()
    resp = _post(running, json.dumps(body).encode())
    assert resp.status_code in (202, 400), resp.text
    if resp.status_code == 400:
        assert "reason" in resp.json()
        assert running.newest_id() == before_id, "a rejected payload journaled something"
        # runs of earlier, accepted payloads may still start; none may belong to anything newer
        assert all(run["id"] <= before_id for run in running.recorder.runs)


@fuzz(300)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200).map(str.encode),
        payloads()
        .map(lambda p: json.dumps(p).encode())
        .flatmap(lambda b: st.integers(0, max(0, len(b) - 1)).map(lambda n: b[:n])),
    )
)
def test_garbage_is_400(running: Running, data: bytes) -> None:
    before_id = running.newest_id()
    resp = _post(running, data)
    assert resp.status_code == 400, resp.text
    assert running.newest_id() == before_id
