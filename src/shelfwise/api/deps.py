"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shelfwise.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost a thread-pool hop on every request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
