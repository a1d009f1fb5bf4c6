"""The dashboard's spent tokens: a sign-in link's first use and a session's sign-out, recorded once.

The row's primary key is the token's `jti`, so of two requests racing to use one link exactly one
inserts it; expired rows are purged, since their tokens are refused by their `exp` anyway.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select

from notifications.sql.dialect import insert_ignore
from notifications.sql.engine import Database
from notifications.sql.models import DashboardToken, utcnow


async def spend_token(db: Database, *, jti: str, kind: str, subject: str, expires_at: datetime) -> bool:
    """True when this call recorded the token; False when it was spent already."""
    async with db.transaction() as session:
        await session.execute(delete(DashboardToken).where(DashboardToken.expires_at < utcnow()))
        values = {"jti": jti, "kind": kind, "subject": subject[:128], "used_at": utcnow(), "expires_at": expires_at}
        return await insert_ignore(session, DashboardToken, values, ["jti"])


async def token_spent(db: Database, jti: str) -> bool:
    async with db.sessions() as session:
        return await session.scalar(select(DashboardToken.jti).where(DashboardToken.jti == jti)) is not None
