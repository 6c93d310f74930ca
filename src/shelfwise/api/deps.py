"""Typed FastAPI dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shelfwise.runtime import Runtime


def runtime_from(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a sync dependency would cost a thread-pool hop on every request
    return runtime_from(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
