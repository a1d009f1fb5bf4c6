"""The cuttable TCP link (fakes/tcpproxy.py) on its own, with a local listener: no server behind it.

It is the fault tests/integration/notifications/test_client_outage.py puts between the system and PostgreSQL
or Temporal.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from fakes.tcpproxy import TcpProxy


async def test_a_cut_link_refuses_connections_and_a_restored_one_serves() -> None:
    """The fault the client-outage tests rely on, as PostgreSQL stopped and started again looks."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        async with TcpProxy("127.0.0.1", listener.getsockname()[1]) as proxy:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.close()
            await proxy.cut()
            with pytest.raises(ConnectionRefusedError):
                await asyncio.open_connection("127.0.0.1", proxy.port)
            await proxy.restore()
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.close()
