"""PostgreSQL's per-send statements through asyncpg (notifications.sql.pg): the same decisions and the
same rows as the general path (`Database.run`), one connection pool, the row lock kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, update

from notifications.config import Settings
from notifications.sql import store
from notifications.sql.engine import Database
from notifications.sql.migrate import upgrade
from notifications.sql.models import DeliveryAttempt, Notification, OutboxMessage
from notifications.sql.store.sends import _begin_attempt, _finish_attempt
from notifications.types import NotificationInput, Status

RUN = "run-1"


@pytest.fixture
def database_url(postgresql_url: str) -> str:
    """PostgreSQL only (these are its own statements), for the suite's shared `db` fixture."""
    return postgresql_url


def _input(nid: str, channel: str = "email") -> NotificationInput:
    return NotificationInput(notificationId=nid, channel=channel, priority=5, to="a@example.com", subject="s")


async def _setup(db: Database, nid: str, scenario: str) -> None:
    """A notification in the state the scenario names (no row at all for `missing`)."""
    if scenario == "missing":
        return
    async with db.connection() as conn:
        await store.insert_notification(conn, _input(nid), Status.QUEUED)
        values: dict[str, Any] = {}
        if scenario == "paused":
            values = {"paused": True}
        elif scenario == "sent":
            values = {
                "status": "sent",
                "attempts": 2,
                "run_id": RUN,
                "provider": "outbox",
                "provider_message_id": "m-1",
                "completed_at": datetime(2026, 1, 2, tzinfo=UTC),
            }
        elif scenario in ("crashed", "failed"):
            values = {"status": "retrying" if scenario == "crashed" else "failed", "attempts": 2, "run_id": RUN}
            await conn.execute(
                DeliveryAttempt.__table__.insert(),
                {
                    "notification_id": nid,
                    "run_id": RUN,
                    "attempt": 2,
                    "started_at": datetime.now(UTC),
                    "outcome": "in_progress",
                    "details": {},
                },
            )
        elif scenario == "other-run":
            values = {"status": "retrying", "attempts": 4, "run_id": "run-0"}
        if values:
            await conn.execute(update(Notification).where(Notification.id == nid).values(**values))


async def _state(db: Database, nid: str) -> tuple[Any, ...]:
    """What a reader sees of a notification, without its ID and clocks."""
    async with db.sessions() as session:
        row = await session.get(Notification, nid)
        attempts = await session.scalars(
            select(DeliveryAttempt).where(DeliveryAttempt.notification_id == nid).order_by(DeliveryAttempt.attempt)
        )
        log = [(a.run_id, a.attempt, a.outcome, a.error_code, a.provider, a.details) for a in attempts]
    if row is None:
        return (None, log)
    return (row.status, row.attempts, row.paused, row.run_id, row.error_code, row.provider, row.completed_at, log)


SCENARIOS = ["fresh", "missing", "paused", "resumed", "queue-paused", "sent", "crashed", "failed", "other-run"]


@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_attempt_start_decides_and_writes_as_the_general_path(db: Database, scenario: str) -> None:
    """Each state a send can find its notification in: the one-statement attempt start answers and
    writes exactly what the three-statement transaction does."""
    after_resume = scenario == "resumed"
    setup = "paused" if scenario == "resumed" else "fresh" if scenario == "queue-paused" else scenario
    if scenario == "queue-paused":
        await store.set_queue_paused(db, "email", True, reason="test", actor="test")
    answers, states = [], []
    for nid, hot in ((f"{scenario}-hot", True), (f"{scenario}-general", False)):
        await _setup(db, nid, setup)
        if hot:
            start = await store.begin_attempt(db, _input(nid), RUN, 1, after_resume=after_resume)
        else:
            start = await db.run(_begin_attempt, _input(nid), RUN, 1, after_resume)
        answers.append(start)
        states.append(await _state(db, nid))
    assert answers[0] == answers[1]
    assert states[0] == states[1]
    expected_attempt = {"crashed": 3, "failed": 3, "sent": 2}.get(scenario, 1)
    if scenario == "queue-paused":
        assert answers[0] is None
    else:
        assert answers[0] is not None and answers[0].attempt == expected_attempt
        assert answers[0].paused == (scenario == "paused")
        assert (answers[0].already_sent is not None) == (scenario == "sent")
    if scenario == "crashed":  # the attempt a dead worker left open is closed, the new one opened
        assert [entry[2:4] for entry in states[0][-1]] == [("interrupted", "WORKER_LOST"), ("in_progress", None)]
    if scenario == "failed":  # a terminal row keeps its status; the attempt is still logged
        assert states[0][0] == "failed" and len(states[0][-1]) == 2


@pytest.mark.parametrize("status", [Status.SENT, Status.RETRYING, Status.FAILED])
async def test_attempt_end_writes_as_the_general_path(db: Database, status: Status) -> None:
    from notifications.sql import rows

    states = []
    for nid, hot in ((f"{status}-hot", True), (f"{status}-general", False)):
        await _setup(db, nid, "fresh")
        await store.begin_attempt(db, _input(nid), RUN, 1)
        outcome: dict[str, Any] = (
            {"outcome": "sent", "provider": "outbox", "provider_message_id": "m-1"}
            if status == Status.SENT
            else {"outcome": "transient_error", "provider": "outbox", "error_code": "E", "error_message": "m"}
        )
        if hot:
            await store.finish_attempt(db, nid, RUN, 1, status=status, details={"k": [1, "v"]}, **outcome)
        else:
            attempt_row, values = rows.finished(
                nid,
                RUN,
                1,
                status=status,
                details={"k": [1, "v"]},
                provider_message_id=outcome.get("provider_message_id"),
                error_code=outcome.get("error_code"),
                error_message=outcome.get("error_message"),
                next_retry_at=None,
                outcome=outcome["outcome"],
                provider="outbox",
            )
            await db.run(_finish_attempt, attempt_row, values)
        state = await _state(db, nid)
        states.append((state[0], state[1], state[2], state[4], state[5], state[6] is None, state[7]))
    assert states[0] == states[1]
    assert states[0][0] == status.value and states[0][-1][0][2] != "in_progress"
    assert states[0][-1][0][5] == {"k": [1, "v"]}  # JSON round trip


async def test_concurrent_attempt_starts_of_one_notification_take_turns(db: Database) -> None:
    """Two workers starting the same notification at once (a retried activity whose first run is
    still going): the row lock makes one wait for the other, so each gets its own attempt."""
    await _setup(db, "twice", "fresh")
    starts = await asyncio.gather(*(store.begin_attempt(db, _input("twice"), RUN, 1) for _ in range(4)))
    assert sorted(s.attempt for s in starts if s is not None) == [1, 2, 3, 4]
    state = await _state(db, "twice")
    assert state[1] == 4 and [entry[1] for entry in state[-1]] == [1, 2, 3, 4]


async def test_the_hot_path_uses_the_asyncpg_pool_only(db: Database) -> None:
    """Enqueue insert, attempt start, outbox record and attempt end: none of them checks out a
    connection of the SQLAlchemy engine (whose checkout pings the server first)."""
    checkouts: list[object] = []
    from sqlalchemy import event

    event.listen(db.engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
    values = {"id": "pooled", "channel": "email", "status": "queued", "workflow_id": "w", "content": {}}
    now = datetime.now(UTC)
    assert await store.insert_row(db, {**values, "created_at": now, "updated_at": now})
    assert not await store.insert_row(db, {**values, "created_at": now, "updated_at": now})
    start = await store.begin_attempt(db, _input("pooled"), RUN, 1)
    assert start is not None and start.attempt == 1
    payload = {"notification_id": "pooled", "channel": "email", "body": {}, "provider_message_id": "m"}
    await store.record_outbox(db, payload)
    await store.record_outbox(db, payload)
    await store.finish_attempt(db, "pooled", RUN, 1, outcome="sent", status=Status.SENT, provider="outbox")
    assert checkouts == []
    async with db.sessions() as session:
        assert len(list(await session.scalars(select(OutboxMessage)))) == 1
        row = await session.get(Notification, "pooled")
    assert row is not None and row.status == "sent"


async def test_connections_the_server_closed_are_replaced(db: Database, postgresql_url: str) -> None:
    """A server restart closes every connection: the next sends reconnect, with no error."""
    await _setup(db, "again", "fresh")
    assert await store.begin_attempt(db, _input("again"), RUN, 1) is not None
    name = postgresql_url.rsplit("/", 1)[1]
    admin = postgresql_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,)
        ).fetchone()
    assert killed and killed[0] >= 1
    # At once, before the loop has read the server's goodbye on the socket; and once it has.
    assert (await store.begin_attempt(db, _input("again"), RUN, 1)) is not None
    await asyncio.sleep(0.2)
    starts = await asyncio.gather(*(store.begin_attempt(db, _input("again"), RUN, 1) for _ in range(3)))
    assert sorted(s.attempt for s in starts if s is not None) == [3, 4, 5]


async def test_an_unreachable_database_is_sqlalchemys_unavailable(db: Database, postgresql_url: str) -> None:
    """The hot path's failures read as the general path's: the attempt pipeline and the client's
    `is_unavailable` see SQLAlchemy's OperationalError, never a raw asyncpg error."""
    from sqlalchemy.exc import SQLAlchemyError

    from notifications.sql.engine import is_unavailable

    await _setup(db, "down", "fresh")
    name = postgresql_url.rsplit("/", 1)[1]
    admin = postgresql_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        with pytest.raises(SQLAlchemyError) as caught:
            await store.begin_attempt(db, _input("down"), RUN, 1)
        assert caught.value.orig is not None  # type: ignore[attr-defined]
        await db.dispose()  # every connection gone: the next statement must open one
        with pytest.raises(SQLAlchemyError) as caught:
            await store.insert_row(db, {"id": "x", "channel": "email", "status": "queued", "workflow_id": "w"})
        assert is_unavailable(caught.value) or "accepting connections" in str(caught.value)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    start = await store.begin_attempt(db, _input("down"), RUN, 1)
    assert start is not None


async def test_another_event_loop_gets_no_pool(db: Database) -> None:
    """asyncpg connections belong to the loop that opened them: from a second loop (a thread
    running its own) the pool is not offered, and the store takes the SQLAlchemy path there."""
    assert db.pg is not None
    pg = db.pg
    assert await pg.pool() is not None

    async def in_other_loop() -> object:
        return await pg.pool()

    assert await asyncio.to_thread(asyncio.run, in_other_loop()) is None


async def test_concurrent_inserts_share_statements_and_each_learns_its_own_outcome(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 enqueues of 100 IDs at once (each ID twice, in one batch or in two): every ID gets one
    row and exactly one caller told `inserted`, and the rows went in far fewer statements than 200."""
    from notifications.sql import pg

    statements: list[str] = []
    run = pg._run

    async def counted(pool: Any, method: str, sql: str, args: tuple[Any, ...]) -> Any:
        statements.append(sql)
        return await run(pool, method, sql, args)

    monkeypatch.setattr(pg, "_run", counted)
    now = datetime.now(UTC)

    def row(i: int) -> dict[str, Any]:
        nid = f"many-{i % 100}"
        return {"id": nid, "channel": "email", "status": "queued", "workflow_id": nid, "created_at": now}

    answers = await asyncio.gather(*(store.insert_row(db, row(i)) for i in range(200)))
    per_id: dict[str, list[bool]] = {}
    for i, inserted in enumerate(answers):
        per_id.setdefault(f"many-{i % 100}", []).append(inserted)
    assert all(sorted(v) == [False, True] for v in per_id.values()), per_id
    assert 1 <= len(statements) < 20, len(statements)
    async with db.sessions() as session:
        assert len(list(await session.scalars(select(Notification.id)))) == 100


async def test_an_attempt_start_run_again_after_its_answer_was_lost_opens_nothing_new(db: Database) -> None:
    """`_run` runs a statement again when its connection dropped; an attempt start that did commit
    the first time answers the attempt it opened then, and does not spend another."""
    from notifications.sql import pg

    await _setup(db, "lost", "fresh")
    pool = await db.pg.pool() if db.pg else None
    assert pool is not None
    now = datetime.now(UTC)
    keys = pg.PreferenceKeys("default", ["tenant"], [])
    first = await pg.begin_attempt(pool, "lost", "email", RUN, 1, False, now, keys)
    again = await pg.begin_attempt(pool, "lost", "email", RUN, 1, False, now, keys)
    assert first is not None and again is not None
    assert (first["action"], first["attempt"]) == (again["action"], again["attempt"]) == ("open", 1)
    state = await _state(db, "lost")
    assert state[1] == 1 and [entry[1:3] for entry in state[-1]] == [(1, "in_progress")]
    later = await pg.begin_attempt(pool, "lost", "email", RUN, 1, False, datetime.now(UTC), keys)
    assert later is not None and later["attempt"] == 2  # a new start (a retry) is a new attempt


async def test_a_row_refused_in_a_batch_fails_only_its_own_caller(db: Database) -> None:
    """A batch the database refuses because of one row goes again row by row: the others land, and
    a value too long is refused as the one-row statement refuses it, never cut short."""
    now = datetime.now(UTC)

    def row(i: int, channel: str = "email") -> dict[str, Any]:
        return {"id": f"batch-{i}", "channel": channel, "status": "queued", "workflow_id": "w", "created_at": now}

    rows = [row(i) for i in range(30)]
    rows[17] = row(17, channel="x" * 40)  # channel is VARCHAR(16)
    answers = await asyncio.gather(*(store.insert_row(db, r) for r in rows), return_exceptions=True)
    failed = [i for i, a in enumerate(answers) if isinstance(a, Exception)]
    assert failed == [17] and all(a is True for i, a in enumerate(answers) if i != 17)
    async with db.sessions() as session:
        ids = set(await session.scalars(select(Notification.id)))
    assert ids == {f"batch-{i}" for i in range(30) if i != 17}


async def test_url_parameters_reach_the_pool_as_sqlalchemy_reads_them(postgresql_url: str, tmp_path: Path) -> None:
    """`?ssl=...` is SQLAlchemy's asyncpg spelling; the hot path's pool connects with it too."""
    settings = Settings(database_url=postgresql_url + "?ssl=disable", data_dir=tmp_path)
    await asyncio.to_thread(upgrade, Settings(database_url=postgresql_url, data_dir=tmp_path))
    database = Database.from_settings(settings)
    try:
        now = datetime.now(UTC)
        assert await store.insert_row(
            database, {"id": "tls", "channel": "email", "status": "queued", "workflow_id": "w", "created_at": now}
        )
        assert database.pg is not None and await database.pg.pool() is not None
    finally:
        await database.dispose()
