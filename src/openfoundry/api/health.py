"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.responses import JSONResponse, Response

from openfoundry.store.db import Database
from openfoundry.telemetry.metrics import Metrics


def add_routes(app: FastAPI, db: Database, metrics: Metrics) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> Response:
        try:
            await db.ping()
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "database": f"{exc.__class__.__name__}"}, 503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["health"])
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")
