"""What a notification's earlier attempts leave for its next one: where to send, which devices have it.

Kept in the worker's memory (a retry usually runs on the worker of the attempt before) and, durable,
in each attempt's delivery-log row (`details.route`, `details.devices`): a retry on another worker or
after a restart reads it back from SQL. Only a retry ever reads; a first attempt starts fresh.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from activities.providers.chain import Route
from notifications.sql.engine import Database
from notifications.sql.store.attempts import EarlierAttempt, earlier_attempts

log = logging.getLogger("notifications.delivery")

_REMEMBERED = 10_000  # notifications between attempts, per worker


@dataclass
class Memory:
    run_id: str
    route: Route | None = None
    reached: dict[str, str] = field(default_factory=dict)  # device key -> provider message ID


class AttemptMemory:
    def __init__(self, db: Database, size: int = _REMEMBERED) -> None:
        self._db = db
        self._size = size
        self._kept: OrderedDict[str, Memory] = OrderedDict()

    def remember(self, notification_id: str, memory: Memory) -> None:
        self._kept[notification_id] = memory
        self._kept.move_to_end(notification_id)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)

    def forget(self, notification_id: str) -> None:
        self._kept.pop(notification_id, None)

    async def recall(self, notification_id: str, run_id: str) -> Memory:
        kept = self._kept.get(notification_id)
        if kept is not None and kept.run_id == run_id:
            return kept
        try:
            earlier = await earlier_attempts(self._db, notification_id, run_id)
        except Exception as exc:  # no memory: the first provider, every device (collapsed on the device)
            log.warning(
                "could not read the earlier attempts: %s",
                type(exc).__name__,
                extra={"notification_id": notification_id},
            )
            return Memory(run_id)
        return from_log(run_id, earlier)


def from_log(run_id: str, earlier: list[EarlierAttempt]) -> Memory:
    memory = Memory(run_id)
    for entry in earlier:
        route = Route.from_json(entry.details.get("route"))
        if route is not None:
            memory.route = route
        memory.reached.update(reached_devices(entry.details))
    return memory


def reached_devices(details: dict[str, object]) -> dict[str, str]:
    """The devices an attempt's per-device outcomes say it reached."""
    devices = details.get("devices")
    if not isinstance(devices, list):
        return {}
    return {
        str(d["key"]): str(d.get("messageId") or "")
        for d in devices
        if isinstance(d, dict) and d.get("outcome") == "sent" and d.get("key")
    }
