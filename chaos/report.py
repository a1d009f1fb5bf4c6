"""The issue's targets per scenario, and the table printed after a run."""

from __future__ import annotations

from typing import Any

from bench.report import _fmt

COLUMNS: list[tuple[str, str]] = [
    ("enqueued", "enqueued"),
    ("accepted", "accepted"),
    ("refused", "refused"),
    ("stored_for_refused", "stored for refused"),
    ("sent", "sent"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("repeated_provider_calls", "repeated calls"),
    ("told_failed_but_sent", "told failed, sent"),
    ("missing_log_rows", "missing log rows"),
    ("retry_after_margin_s", "retry - Retry-After s"),
    ("recovery_s", "sent s after fault"),
    ("http_5xx", "5xx"),
    ("http_5xx_undocumented", "5xx undocumented"),
]


def targets(name: str, row: dict[str, Any], recovery_target_s: float) -> dict[str, bool]:
    """Pass or miss for each target the issue sets, on one scenario's merged figures."""
    if "error" in row:
        return {"ran": False}
    recovery = row.get("recovery_s")
    out = {
        "accepted+refused==enqueued": row["accepted"] + row["refused"] == row["enqueued"],
        "lost==0": row["lost"] == 0,
        "duplicated==0": row["duplicated"] == 0,
        "told_failed_but_sent==0": row["told_failed_but_sent"] == 0,
        "stored_for_refused==0": row["stored_for_refused"] == 0,
        "missing_log_rows==0": row["missing_log_rows"] == 0,
        f"recovery_s<={recovery_target_s:g}": recovery is not None and recovery <= recovery_target_s,
        "http_5xx_undocumented==0": row["http_5xx_undocumented"] == 0,
    }
    if "sent_while_paused" in row:
        out["sent_while_paused==0"] = row["sent_while_paused"] == 0
    if name == "provider-storm":
        margin = row.get("retry_after_margin_s")
        out["retry_after_margin_s>=0"] = margin is not None and margin >= 0
    return out


def table(results: dict[str, Any]) -> str:
    """A markdown table, a row per scenario (and per run where a scenario has a few), then the misses."""
    header = "| scenario | " + " | ".join(label for _, label in COLUMNS) + " | wall s |"
    lines = [header, "|---" * (len(COLUMNS) + 2) + "|"]
    notes: list[str] = []
    for name, sc in results["scenarios"].items():
        if "error" in sc:
            notes.append(f"{name}: {sc['error']}")
            continue
        runs = sc.get("runs") or []
        rows = [(name, sc["summary"])]
        if 1 < len(runs) <= 3:
            rows += [(f"{name} ({r.get('label', i + 1)})", r) for i, r in enumerate(runs)]
        for label, row in rows:
            cells = [_fmt(row.get(key)) for key, _ in COLUMNS]
            wall = _fmt(sc.get("seconds")) if row is sc["summary"] else ""
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {wall} |")
    missed = [k for k, ok in results["targets"].items() if not ok]
    notes.append("targets: all met" if not missed else "targets missed: " + ", ".join(missed))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)
