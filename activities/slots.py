"""A channel's provider slots (EMAIL_CONCURRENCY / PUSH_CONCURRENCY), held per attempt."""

from __future__ import annotations

import asyncio


class Slot:
    """A channel's send slot, held from the attempt's start until the provider has answered."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = False

    async def __aenter__(self) -> Slot:
        await self._semaphore.acquire()
        self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()
