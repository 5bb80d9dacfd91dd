"""Typed keys of the aiohttp application's state."""

from __future__ import annotations

import weakref
from typing import Any

from aiohttp import web

from .guard import Guard
from .liveness import Liveness
from .router import Router

ROUTER = web.AppKey("router", Router)
GUARD = web.AppKey("guard", Guard)
LIVENESS = web.AppKey("liveness", Liveness)
SOCKETS: web.AppKey[weakref.WeakSet[Any]] = web.AppKey("sockets")
