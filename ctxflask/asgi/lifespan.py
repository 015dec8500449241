"""The ``lifespan`` scope: serving starts and stops."""

from __future__ import annotations

import contextvars
import logging
import typing as t

import anyio

from .. import bridge
from .. import pipeline
from .types import Receive
from .types import Send

if t.TYPE_CHECKING:
    from .app import ASGIApp

logger = logging.getLogger("ctxflask.asgi")


class Lifespan:
    """The ``lifespan`` scope: ``before_serving`` at startup, ``after_serving`` at
    shutdown, each in an app context; a failure is reported with its message. Shutdown
    first waits for running background tasks, up to ``BACKGROUND_TASK_SHUTDOWN_TIMEOUT``.
    """

    def __init__(self, asgi: ASGIApp, receive: Receive, send: Send) -> None:
        self.asgi = asgi
        self.app = asgi.app
        self.receive = receive
        self.send = send

    async def run(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "lifespan.startup":
                if not await self._serve("startup"):
                    return
            elif message["type"] == "lifespan.shutdown":
                await self._wait_for_background_tasks()
                await self._serve("shutdown")
                return

    async def _wait_for_background_tasks(self) -> None:
        timeout = float(self.app.config.get("BACKGROUND_TASK_SHUTDOWN_TIMEOUT") or 0)
        if self.asgi.running_tasks:
            done = self.asgi._tasks_done = anyio.Event()
            with anyio.move_on_after(timeout):
                await done.wait()
        if self.asgi.running_tasks:
            logger.warning(
                "Shutting down with %d background task(s) still running after %s s"
                " (BACKGROUND_TASK_SHUTDOWN_TIMEOUT)",
                self.asgi.running_tasks,
                timeout,
            )

    async def _serve(self, phase: str) -> bool:
        asgi = self.asgi
        try:
            # The app's settings are read here, so a bad one fails the startup.
            lanes = asgi.lanes or asgi.configure()
            if phase == "startup":
                steps = pipeline.start_serving(self.app)
                bridge.watch_loop(asgi.loop_block_warning, asgi.step_names)
            else:
                steps = pipeline.stop_serving(self.app)
            if steps is not None:
                await bridge.run_steps_async(
                    steps,
                    contextvars.copy_context(),
                    lanes[0],
                    async_in_thread=asgi.async_in_thread,
                )
        except BaseException as e:
            logger.exception("ctxflask %s failed", phase)
            await self.send(
                {
                    "type": f"lifespan.{phase}.failed",
                    "message": f"{type(e).__name__}: {e}",
                }
            )
            return False
        await self.send({"type": f"lifespan.{phase}.complete"})
        return True
