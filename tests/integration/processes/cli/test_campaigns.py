"""`notifications campaign ...` as a user runs it: a separate process on the test's Temporal and SQLite,
workers in the test process sending to the outbox."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from notifications.sql.models import AuditLog
from tests.support.processes import cli
from tests.support.system import System, outbox_providers, wait_until


def campaign_id(out: str) -> str:
    found = re.search(r"^campaign (\S+): ", out, re.M)
    assert found, out
    return found.group(1)


async def reaches(system: System, cid: str, status: str, timeout: float = 60) -> dict[str, Any]:
    record: dict[str, Any] = {}

    async def done() -> bool:
        record.update(await system.client.campaign(cid))
        return record["status"] == status

    await wait_until(done, timeout=timeout)
    return record


async def test_create_from_a_csv_reports_the_bad_line_and_sends_the_rest(system: System, tmp_path: Path) -> None:
    people = {"ada@example.com": "Ada", "cy@example.com": "Cy", "dee@example.com": "Dee"}
    csv = tmp_path / "recipients.csv"
    csv.write_text("to,name\nada@example.com,Ada\nnot-an-address,Bob\ncy@example.com,Cy\ndee@example.com,Dee\n")
    async with system.worker(outbox_providers(system)):
        # the example: the built-in `welcome` template, its `name` from the CSV's column
        created = await cli(system, "campaign", "create", "--channel", "email", "--type", "welcome", "--csv", csv)
        assert created.returncode == 0, created.stderr
        cid = campaign_id(created.stdout)
        assert "recipients: 3 added, 0 duplicates, 1 rejected" in created.stdout
        assert re.search(r"^  line 3: to: .*@", created.stdout, re.M), created.stdout
        assert "not-an-address" not in created.stdout + created.stderr
        record = await reaches(system, cid, "completed")
    assert record["name"] == "recipients" and record["type"] == "welcome"
    assert record["total"] == record["sent"] == 3 and record["failed"] == record["queued"] == 0
    sent = {}
    for seq in (1, 2, 3):
        row = await system.client.get(f"{cid}-{seq}")
        assert row.status == "sent" and row.campaign_id == cid
        sent[row.recipient] = row.subject
    assert sent == {to: f"Welcome to Uzima Health, {name}" for to, name in people.items()}
    async with system.db.sessions() as session:
        audit = list(await session.scalars(select(AuditLog).where(AuditLog.target == f"campaign:{cid}")))
    assert [(a.action, a.outcome) for a in audit] == [
        ("campaigns.create", "ok"),
        ("campaigns.recipients", "ok"),
        ("campaigns.start", "ok"),
    ]
    assert {a.actor for a in audit} == {f"cli:{getpass.getuser()}"}


async def test_draft_then_add_then_start(system: System, tmp_path: Path) -> None:
    content = ["--subject", "Hello {{ name }}", "--html", "<p>Hi {{ name }}, {{ season }} is here</p>"]
    created = await cli(
        system, "campaign", "create", "--channel", "email", "--name", "Winter", *content,
        "--data", '{"season": "winter"}', "--draft",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    cid = campaign_id(created.stdout)
    assert f"campaign {cid}: draft" in created.stdout and f"notifications campaign start {cid}" in created.stdout

    ndjson = tmp_path / "first.ndjson"
    ndjson.write_text('{"to": "a@example.com", "name": "A"}\n\n{"to": "b@example.com", "name": "B"\n')
    added = await cli(system, "campaign", "add", cid, "--ndjson", ndjson)
    assert added.returncode == 0, added.stderr
    assert "recipients: 1 added, 0 duplicates, 1 rejected" in added.stdout
    assert "  line 3: line: is not valid JSON" in added.stdout
    csv = tmp_path / "more.csv"
    csv.write_text("to,name\nA@example.com,again\nb@example.com,B\nc@example.com,C\n")
    added = await cli(system, "campaign", "add", cid, "--csv", csv, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"added": 2, "duplicates": 1, "rejected": [], "total": 3}

    async with system.worker(outbox_providers(system)):
        started = await cli(system, "campaign", "start", cid)
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"campaign {cid} started: running (3 recipients)"
        late = await cli(system, "campaign", "add", cid, "--csv", csv)
        assert late.returncode == 1 and "recipients go to a draft only" in late.stderr
        await reaches(system, cid, "completed")

    shown = await cli(system, "campaign", "status", cid, "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert set(record) >= {
        "campaignId", "name", "channel", "type", "tenant", "status", "total", "queued", "sent", "failed",
        "suppressed", "expired", "cancelled", "ratePerSecond", "rateLimitPerSecond", "sendAt", "createdAt",
        "startedAt", "completedAt", "etaSeconds",
    }  # fmt: skip
    assert record["campaignId"] == cid and record["name"] == "Winter" and record["channel"] == "email"
    assert (record["status"], record["total"], record["sent"], record["queued"]) == ("completed", 3, 3, 0)
    assert record["startedAt"] and record["completedAt"] and record["etaSeconds"] == 0
    readable = await cli(system, "campaign", "status", cid)
    assert readable.returncode == 0 and "status      completed" in readable.stdout
    assert "recipients  3: 3 sent, 0 queued, 0 failed" in readable.stdout
    listed = await cli(system, "campaign", "list")
    assert listed.returncode == 0 and re.search(rf"^{cid} +completed +email +3/3 +Winter$", listed.stdout, re.M)
    assert [r["campaignId"] for r in json.loads((await cli(system, "campaign", "list", "--json")).stdout)] == [cid]
    again = await cli(system, "campaign", "start", cid)
    assert again.returncode == 1 and f"campaign {cid} is completed: only a draft can be started" in again.stderr


async def test_pause_resume_and_cancel(system: System, tmp_path: Path) -> None:
    csv = tmp_path / "slow.csv"
    csv.write_text("to\n" + "".join(f"user{i}@example.com\n" for i in range(40)))
    content = ["--subject", "Hi", "--text", "Hello"]
    async with system.worker(outbox_providers(system)):
        created = await cli(
            system, "campaign", "create", "--channel", "email", *content, "--rate-limit", "2", "--csv", csv
        )
        assert created.returncode == 0, created.stderr
        cid = campaign_id(created.stdout)
        assert f"campaign {cid}: running" in created.stdout

        paused = await cli(system, "campaign", "pause", cid)
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.strip() == f"pause requested for campaign {cid}: paused"
        await reaches(system, cid, "paused", timeout=20)
        resumed = await cli(system, "campaign", "resume", cid)
        assert resumed.returncode == 0 and resumed.stdout.strip() == f"resume requested for campaign {cid}: running"
        await reaches(system, cid, "running", timeout=20)
        cancelled = await cli(system, "campaign", "cancel", cid)
        assert cancelled.returncode == 0 and f"cancel requested for campaign {cid}" in cancelled.stdout
        record = await reaches(system, cid, "cancelled", timeout=20)
    assert record["cancelled"] > 0 and record["sent"] + record["cancelled"] == 40

    late = await cli(system, "campaign", "pause", cid)
    assert late.returncode == 1 and f"error: campaign {cid} is cancelled: it cannot be paused or resumed" in late.stderr
    twice = await cli(system, "campaign", "cancel", cid)
    assert twice.returncode == 0 and twice.stdout.strip() == f"campaign {cid} is already cancelled"

    # a campaign due later is `scheduled` until then, and can be cancelled before it sends anything
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
    scheduled = await cli(
        system, "campaign", "create", "--channel", "email", *content, "--send-at", later, "--csv", csv
    )  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    sid = campaign_id(scheduled.stdout)
    assert f"campaign {sid}: scheduled" in scheduled.stdout
    async with system.worker(outbox_providers(system)):
        assert (await cli(system, "campaign", "cancel", sid)).returncode == 0
        record = await reaches(system, sid, "cancelled", timeout=20)
    assert record["sent"] == 0 and record["cancelled"] == 40


async def test_errors_are_clear_one_liners(system: System, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("to,name\nada@example.com,Ada\n")
    for action in ("status", "start", "pause", "resume", "cancel"):
        missing = await cli(system, "campaign", action, "nope")
        assert missing.returncode == 1, (action, missing.stderr)
        assert missing.stderr == "error: no campaign with ID 'nope'\n", (action, missing.stderr)
    missing = await cli(system, "campaign", "add", "nope", "--csv", good)
    assert missing.returncode == 1 and missing.stderr == "error: no campaign with ID 'nope'\n"

    no_to = tmp_path / "people.csv"
    no_to.write_text("name,email\nAda,ada@example.com\n")
    bad = await cli(system, "campaign", "create", "--channel", "email", "--type", "welcome", "--csv", no_to)
    assert bad.returncode == 2 and bad.stderr.startswith("error: to: ") and "`to` column" in bad.stderr
    assert "ada@example.com" not in bad.stderr

    welcome = ["campaign", "create", "--channel", "email", "--type", "welcome"]
    for args, message in (
        ([*welcome, "--csv", tmp_path / "absent.csv"], "error: csv: cannot read "),
        ([*welcome, "--csv", good, "--data", "{not json"], "error: data: not valid JSON"),
        ([*welcome, "--csv", good, "--data", "[1]"], "error: data: must be a JSON object"),
        ([*welcome, "--name", "x"], "error: recipients: give --csv or --ndjson"),
        (["campaign", "create", "--channel", "push", "--subject", "s", "--csv", good], "error: subject: is for email"),
        (["campaign", "create", "--channel", "email", "--type", "nosuch", "--csv", good], "error: type: no email"),
    ):
        result = await cli(system, *args)
        assert result.returncode == 2 and result.stderr.startswith(message), (args, result.stderr)
    assert json.loads((await cli(system, "campaign", "list", "--json")).stdout) == []  # nothing was stored

    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("to,name\nnope,A\n@example.com,B\n")
    none = await cli(system, *welcome, "--csv", only_bad)
    assert none.returncode == 2 and "recipients: 0 added, 0 duplicates, 2 rejected" in none.stdout
    assert "  line 2: to: " in none.stdout and "  line 3: to: " in none.stdout
    cid = campaign_id(none.stdout)
    assert f"no valid recipient in bad.csv; campaign {cid} stays a draft" in none.stderr
    assert (await system.client.campaign(cid))["status"] == "draft"
