"""Which database errors mean "unreachable, try again" (the typed NotificationUnavailableError)."""

from __future__ import annotations

import asyncpg.exceptions
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from notifications.errors import NotificationUnavailableError
from notifications.sql.engine import is_unavailable, reachable


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("driver error")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),  # asyncpg's refused connect, bare
        TimeoutError(),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly")),
        DBAPIError("SELECT 1", {}, DriverError("57P03")),  # starting up, wrapped bare by SQLAlchemy
        DBAPIError("SELECT 1", {}, DriverError("08006")),  # connection failure
        DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
    ],
    ids=lambda e: type(e).__name__ + ("-" + str(getattr(e.orig, "sqlstate", "")) if hasattr(e, "orig") else ""),
)
def test_unreachable_database_errors_become_the_typed_error(error: Exception) -> None:
    assert is_unavailable(error)
    with pytest.raises(NotificationUnavailableError) as caught, reachable():
        raise error
    assert caught.value.service == "database" and caught.value.retry_after > 0


@pytest.mark.parametrize(
    "error",
    [
        IntegrityError("INSERT", {}, DriverError("23505")),
        DBAPIError("SELECT", {}, DriverError("42P01")),  # undefined table: a bug, not an outage
        ValueError("not a database error"),
    ],
)
def test_other_errors_pass_through(error: Exception) -> None:
    assert not is_unavailable(error)
    with pytest.raises(type(error)), reachable():
        raise error
