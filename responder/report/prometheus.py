"""A small Prometheus HTTP API client: instant and range queries, over aiohttp."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import aiohttp

from pgwarden.redact import redact, redact_url


class PrometheusError(Exception):
    """Prometheus did not answer, or refused the query."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value), NaN dropped


class Prometheus:
    """Queries one Prometheus; the session is the caller's."""

    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        try:
            async with self.session.post(f"{self.url}{path}", data=params, timeout=self.timeout) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise PrometheusError(redact(f"{redact_url(self.url)}: {type(exc).__name__}: {exc}")) from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise PrometheusError(redact(f"query {params.get('query')!r} failed: {error}"))
        return body["data"]

    async def instant(self, expr: str, at: float) -> list[Sample]:
        data = await self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        out = []
        for item in data.get("result", []):
            value = float(item["value"][1])
            if not math.isnan(value):
                out.append(Sample(dict(item["metric"]), value))
        return out

    async def range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = await self._get(
            "/api/v1/query_range",
            {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        out = []
        for item in data.get("result", []):
            points = [(float(t), float(v)) for t, v in item["values"] if not math.isnan(float(v))]
            if points:
                out.append(Series(dict(item["metric"]), points))
        return out
