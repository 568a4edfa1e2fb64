"""The bare floor of bench row (y): FastAPI returning a constant dict, no concerns at all, on the same
server as the peers (granian ASGI, one worker, uvloop). Nothing a real endpoint does costs less.

    cd bench/peers && .venv/bin/granian --interface asgi --loop uvloop --workers 1 floor_peer:app
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/floor")
async def floor() -> dict[str, Any]:
    return {"id": "00000000-0000-4000-8000-000000000000", "title": "constant", "version": 1}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
