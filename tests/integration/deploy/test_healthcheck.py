"""The container health check script (deploy/healthcheck.py) for real, against the test Temporal server,
in-process workers and the API. The checks of the deployment files themselves, which need no server, are in
tests/unit/deploy/test_deployment.py.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from notifications.types import TASK_QUEUES
from tests.support.deploy import load_healthcheck


async def test_healthcheck_worker_sees_this_hosts_pollers(system: Any) -> None:
    hc = load_healthcheck()
    problem = await hc.check_worker(system.settings, hostname="no-such-container")
    assert problem and all(queue in problem for queue in TASK_QUEUES.values()), problem
    async with system.worker():
        problem = None
        for _ in range(50):  # pollers appear once the workers' first long polls reach the server
            problem = await hc.check_worker(system.settings, hostname=socket.gethostname())
            if problem is None:
                break
            await asyncio.sleep(0.1)
        assert problem is None, problem


async def test_healthcheck_api_answers_on_its_port(system: Any) -> None:
    from processes.apiserver import serve

    hc = load_healthcheck()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    assert await asyncio.to_thread(hc.check_api, port), "nothing listens yet: must be unhealthy"
    stop = asyncio.Event()
    task = asyncio.create_task(serve(system.settings, stop, host="127.0.0.1", port=port))
    try:
        problem: str | None = "not started"
        for _ in range(100):
            problem = await asyncio.to_thread(hc.check_api, port)
            if problem is None:
                break
            await asyncio.sleep(0.1)
        assert problem is None, problem
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
