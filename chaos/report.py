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
    if name in OWN_TARGETS:
        return OWN_TARGETS[name](row)
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
    by = row.get("sent_by") or {}
    if name in ("provider-failover", "provider-auth"):
        out["sent_by_smtp==sent"] = by.get("smtp", 0) == row["sent"]
        most = 1 if name == "provider-auth" else row.get("failover_after_attempts", 2)
        out[f"max_resend_attempts<={most}"] = row.get("max_resend_attempts", most + 1) <= most
    if name == "ambiguous-timeout":
        out["sent_by_smtp==0"] = by.get("smtp", 0) == 0
        out["timeouts>0"] = (row.get("resend_error_codes") or {}).get("TIMEOUT", 0) > 0
    return out


def _two_apis(row: dict[str, Any]) -> dict[str, bool]:
    return {
        "allowed==API_RATE_LIMIT": row["allowed"] == row["rate_limit"],
        "refused==429_with_Retry-After": row["refused_429"] == row["operations"] - row["allowed"]
        and row["refused_without_retry_after"] == 0,
    }


def _worker_death(row: dict[str, Any]) -> dict[str, bool]:
    return {
        "healthy_before": bool(row["healthy_before"]),
        "detected_s<=15": bool(row["detected_within_15s"]),
        "healthy_again": row["healthy_again_s"] is not None,
    }


def _channel_fallback(row: dict[str, Any]) -> dict[str, bool]:
    accepted = row["accepted"]
    return {
        "accepted==enqueued": accepted == row["enqueued"],
        "pushes_failed==accepted": row["pushes_failed"] == accepted,
        "pushes_delivered==0": row["pushes_delivered"] == 0,
        "fallback_emails==accepted": row["fallback_emails"] == accepted,
        "fallback_duplicated==0": row["fallback_duplicated"] == 0,
        "fallback_linked==accepted": row["fallback_linked"] == accepted,
    }


# Scenarios measured by their own figures, not by the enqueues and deliveries of the others
OWN_TARGETS = {"two-api-processes": _two_apis, "worker-death": _worker_death, "channel-fallback": _channel_fallback}
HIGHLIGHTS = {
    "two-api-processes": ("allowed", "rate_limit", "allowed_by_process", "refused_429"),
    "worker-death": ("detected_s", "healthy_again_s"),
    "provider-failover": ("sent_by", "resend_attempts_per_email"),
    "provider-auth": ("sent_by", "resend_attempts_per_email"),
    "ambiguous-timeout": ("sent_by", "resend_error_codes"),
    "channel-fallback": ("accepted", "pushes_failed", "fallback_emails", "fallback_duplicated", "fallback_linked"),
}


def table(results: dict[str, Any]) -> str:
    """A markdown table, a row per scenario (and per run where a scenario has a few), then the misses."""
    header = "| scenario | " + " | ".join(label for _, label in COLUMNS) + " | wall s |"
    lines = [header, "|---" * (len(COLUMNS) + 2) + "|"]
    notes: list[str] = []
    for name, sc in results["scenarios"].items():
        if "error" in sc:
            notes.append(f"{name}: {sc['error']}")
            continue
        if name in OWN_TARGETS:
            continue  # no enqueues: their figures are in the notes
        runs = sc.get("runs") or []
        rows = [(name, sc["summary"])]
        if 1 < len(runs) <= 3:
            rows += [(f"{name} ({r.get('label', i + 1)})", r) for i, r in enumerate(runs)]
        for label, row in rows:
            cells = [_fmt(row.get(key)) for key, _ in COLUMNS]
            wall = _fmt(sc.get("seconds")) if row is sc["summary"] else ""
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {wall} |")
    for name, sc in results["scenarios"].items():
        if name in HIGHLIGHTS and "summary" in sc:
            shown = ", ".join(f"{key} {sc['summary'].get(key)}" for key in HIGHLIGHTS[name])
            notes.append(f"{name}: {shown}")
    missed = [k for k, ok in results["targets"].items() if not ok]
    notes.append("targets: all met" if not missed else "targets missed: " + ", ".join(missed))
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes)
