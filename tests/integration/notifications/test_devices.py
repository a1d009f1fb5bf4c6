"""Device tokens in SQL through the Python client and the `notifications devices` CLI."""

from __future__ import annotations

import json
import uuid

import pytest

from notifications.devices import mark_invalid, valid_tokens
from notifications.errors import NotificationConflictError, NotificationValidationError
from tests.support.system import System, run_cli


async def test_register_list_remove_through_the_client(system: System) -> None:
    client = system.client
    t1, t2 = f"tok-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    first = await client.register_device("u1", t1, platform="android")
    assert first.user_id == "u1" and first.valid and first.platform == "android"
    again = await client.register_device("u1", t1)  # idempotent; the platform is kept
    assert again.id == first.id and again.platform == "android"
    await client.register_device("u2", t2, platform="ios")
    moved = await client.register_device("u2", t1)  # a token moves to its new owner
    assert moved.id == first.id and moved.user_id == "u2"
    assert {d.token for d in await client.list_devices("u2")} == {t1, t2}
    assert await client.list_devices("u1") == []
    assert first.to_json()["token"] == "…" + t1[-4:] and first.to_json(reveal_token=True)["token"] == t1

    await mark_invalid(system.db, [t2], "UNREGISTERED")
    assert await valid_tokens(system.db, "u2") == [t1]
    assert [d.token for d in await client.list_devices("u2", include_invalid=False)] == [t1]
    with pytest.raises(NotificationConflictError):
        await client.register_device("u2", t2)  # an unregistered token stays dead

    assert await client.remove_device(t1) is True
    assert await client.remove_device(t1) is False
    assert await client.remove_device(device_id=(await client.list_devices("u2"))[0].id) is True
    assert await client.list_devices() == []


async def test_registration_is_validated(system: System) -> None:
    with pytest.raises(NotificationValidationError) as info:
        await system.client.register_device("", "has space", platform="symbian")
    assert [e["field"] for e in info.value.errors] == ["userId", "token", "platform"]


async def test_cli_devices(system: System) -> None:
    env = {"DATABASE_URL": system.settings.database_url, "DATA_DIR": str(system.settings.data_dir)}
    token = f"cli-{uuid.uuid4().hex}"
    done = run_cli("devices", "register", "--user", "u9", "--token", token, "--platform", "web", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["userId"] == "u9"
    assert token not in done.stdout  # masked unless --reveal

    listed = run_cli("devices", "list", "--user", "u9", "--reveal", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [d["token"] for d in json.loads(listed.stdout)] == [token]

    removed = run_cli("devices", "remove", "--token", token, env=env)
    assert removed.returncode == 0 and json.loads(removed.stdout) == {"removed": True}
    assert await system.client.list_devices("u9") == []
    bad = run_cli("devices", "register", "--user", "u9", "--token", "a b", env=env)
    assert bad.returncode == 2 and "token" in bad.stderr


async def test_a_tenants_devices_get_only_that_tenants_pushes(system: System) -> None:
    """Two tenants' users may share an ID: a device registered for one tenant never gets the
    other's push; one registered without a tenant gets its user's pushes of any tenant."""
    user = f"shared-{uuid.uuid4().hex[:6]}"
    acme, globex, anyone = (f"tok-{name}-{uuid.uuid4().hex}" for name in ("acme", "globex", "anyone"))
    await system.client.register_device(user, acme, tenant="acme")
    await system.client.register_device(user, globex, tenant="globex")
    await system.client.register_device(user, anyone)
    assert set(await valid_tokens(system.db, user, tenant="acme")) == {acme, anyone}
    assert set(await valid_tokens(system.db, user, tenant="globex")) == {globex, anyone}
    assert set(await valid_tokens(system.db, user)) == {anyone}  # the default tenant
