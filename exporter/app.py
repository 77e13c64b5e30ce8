"""The exporter's HTTP service: /metrics, /probe?target=, /discovery, /healthz."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import REGISTRY, generate_latest

from exporter import __version__
from exporter.assemble import scheduled_collectors
from exporter.aws.discovery import discovery_groups
from exporter.aws.render import AWSView
from exporter.config import ExporterConfig
from exporter.exposition import CONTENT_TYPE, Fragment, ordered_chunks
from exporter.probe import ProbeError, Probes, looks_like_dsn
from exporter.scrape import TargetScraper, target_label
from exporter.serving import ServeOptions
from exporter.target import Target

if TYPE_CHECKING:
    from exporter.aws.poller import AWSPoller

log = logging.getLogger("pgwarden.app")

SCRAPERS: web.AppKey[dict[str, TargetScraper]] = web.AppKey("scrapers", dict)
AWS: web.AppKey[AWSPoller] = web.AppKey("aws")
CONFIG: web.AppKey[ExporterConfig] = web.AppKey("config", ExporterConfig)
SERVING: web.AppKey[ServeOptions] = web.AppKey("serving", ServeOptions)
PROBES: web.AppKey[Probes] = web.AppKey("probes", Probes)
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"

LANDING = """<html><head><title>pgwarden exporter</title></head><body>
<h1>pgwarden exporter {version}</h1>
<p><a href="{metrics}">{metrics}</a> every target &middot; <code>/probe?target=NAME</code> one target
&middot; <a href="/discovery">/discovery</a> &middot; <a href="/healthz">/healthz</a></p>
<p>Targets: {targets}</p></body></html>"""


def make_app(
    config: ExporterConfig, targets: list[Target], serving: ServeOptions | None = None
) -> web.Application:
    """The aiohttp application serving `targets`; connections open lazily on the first scrape."""
    app = web.Application()
    app[CONFIG] = config
    app[SERVING] = serving = serving or ServeOptions()

    async def scrapers_ctx(app: web.Application) -> AsyncIterator[None]:
        app[SCRAPERS] = {t.name: TargetScraper(t, config, scheduled_collectors(config)) for t in targets}
        if serving.probes is not None:
            app[PROBES] = Probes(serving.probes, config, lambda: discovered_endpoints(app))
        yield
        await asyncio.gather(*(s.close() for s in app[SCRAPERS].values()), return_exceptions=True)
        if PROBES in app:
            await app[PROBES].close()

    async def aws_ctx(app: web.Application) -> AsyncIterator[None]:
        # Only with an `aws:` section or a target's `rds:`: without either there is no AWS call, no credentials.
        aws = config.polled_aws
        if aws is not None:
            from exporter.aws.poller import AWSPoller  # loads boto3: only when AWS is configured

            app[AWS] = AWSPoller(aws, config.targets)
            app[AWS].start()
        yield
        if AWS in app:
            await app[AWS].stop()

    app.cleanup_ctx.append(scrapers_ctx)
    app.cleanup_ctx.append(aws_ctx)
    app.router.add_get(serving.telemetry_path, metrics)
    app.router.add_get("/probe", probe)
    app.router.add_get("/discovery", discovery)
    app.router.add_get("/healthz", healthz)
    if serving.telemetry_path != "/":
        app.router.add_get("/", landing)
    return app


def scrape_deadline(request: web.Request) -> float | None:
    """When the answer must be written by (monotonic): the scrape timeout Prometheus sends in
    X-Prometheus-Scrape-Timeout-Seconds, less a tenth (at most 1 s) for writing it; None without one."""
    try:
        timeout = float(request.headers.get(SCRAPE_TIMEOUT_HEADER, ""))
    except ValueError:
        return None
    if not math.isfinite(timeout) or timeout <= 0:
        return None
    return time.monotonic() + timeout - min(1.0, timeout / 10)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Every configured target; with several, each series carries target="<name>"."""
    scrapers = list(request.app[SCRAPERS].values())
    labelled = len(scrapers) > 1
    deadline = scrape_deadline(request)
    serving = request.app[SERVING]
    groups: list[list[Fragment]] = await asyncio.gather(
        *(
            s.scrape(serving.labels(target_label(s.target.name) if labelled else ""), deadline)
            for s in scrapers
        )
    )
    poller = request.app.get(AWS)
    if poller is not None:  # from the pollers' cache: no AWS call here
        view = poller.view
        groups += [view.for_target(s.target.name, labelled) for s in scrapers]
        groups += [view.discovered(), poller.self_metrics()]
    return await stream(request, [*ordered_chunks(groups), generate_latest(REGISTRY)])


async def probe(request: web.Request) -> web.StreamResponse:
    """One target (Prometheus' multi-target pattern); the target label is left to relabelling. A configured
    target's name, a discovered RDS instance's identifier, or, as postgres_exporter takes it, a DSN
    (`host:port/db`, a URL or key=value pairs) with an `auth_module` of the --config.file."""
    name = request.query.get("target", "")
    module = request.query.get("auth_module", "")
    if not name:
        raise web.HTTPBadRequest(text="target is required\n")
    scraper = request.app[SCRAPERS].get(name) if not module else None
    poller = request.app.get(AWS)
    view = poller.view if poller is not None else AWSView()  # one consistent cache for the whole answer
    serving = request.app[SERVING]
    if scraper is not None:
        fragments = await scraper.scrape(serving.labels(), scrape_deadline(request))
        return await stream(request, ordered_chunks([fragments, view.for_target(name, False)]))
    found = view.find(name) if not module else []
    if len(found) == 1:  # a discovered RDS instance: its RDS series only
        return await stream(request, ordered_chunks([view.plain[found[0].key]]))
    if len(found) > 1:
        refs = ", ".join("/".join(i.key) for i in found)
        raise web.HTTPNotFound(text=f"target {name!r} names several instances; use one of {refs}\n")
    probes = request.app.get(PROBES)
    if probes is not None and (module or looks_like_dsn(name)):
        try:
            fragments = await probes.scrape(name, module, serving.labels(), scrape_deadline(request))
        except ProbeError as exc:
            raise _probe_error(exc) from None
        return await stream(request, ordered_chunks([fragments]))
    raise web.HTTPNotFound(
        text=f"unknown target {name!r}: /probe takes a configured target name, a discovered dbidentifier, or a "
        "DSN (host:port/dbname) with an auth_module\n"
    )


def _probe_error(exc: ProbeError) -> web.HTTPException:
    cls = web.HTTPForbidden if exc.status == 403 else web.HTTPBadRequest
    return cls(text=f"{exc}\n")


def discovered_endpoints(app: web.Application) -> set[str]:
    """The host names of the RDS instances the AWS poller found (for the `discovered_rds` allowlist)."""
    poller = app.get(AWS)
    if poller is None:
        return set()
    return {i.endpoint for i in poller.view.instances if i.endpoint}


async def discovery(request: web.Request) -> web.Response:
    """Prometheus HTTP service discovery: every target, each scraped through /probe at this address."""
    poller = request.app.get(AWS)
    groups = discovery_groups(
        request.host, request.app[CONFIG].targets, poller.view if poller is not None else None
    )
    return web.json_response(groups)


async def stream(request: web.Request, chunks: list[bytes]) -> web.StreamResponse:
    """Write the exposition chunk by chunk (a 50 MB scrape is never copied into one more buffer), gzipped at
    level 1 in a thread when the client accepts it, as Prometheus does: zlib releases the GIL."""
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPE})
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        chunks = [await asyncio.to_thread(_gzip, chunks)]
        response.headers["Content-Encoding"] = "gzip"
    response.content_length = sum(len(c) for c in chunks)
    await response.prepare(request)
    for chunk in chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


def _gzip(chunks: list[bytes]) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # wbits 31: gzip framing
    return b"".join([*(compressor.compress(c) for c in chunks), compressor.flush()])


async def healthz(request: web.Request) -> web.Response:
    body: dict[str, object] = {"status": "ok", "version": __version__, "targets": len(request.app[SCRAPERS])}
    poller = request.app.get(AWS)
    if poller is not None:
        body["aws_instances"] = len(poller.view.instances)
    return web.json_response(body)


async def landing(request: web.Request) -> web.Response:
    names = ", ".join(f"<code>{name}</code>" for name in request.app[SCRAPERS]) or "none"
    text = LANDING.format(version=__version__, targets=names, metrics=request.app[SERVING].telemetry_path)
    return web.Response(text=text, content_type="text/html")
