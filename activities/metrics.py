"""Prometheus metrics of the worker, exported through the Temporal SDK's own endpoint.

One scrape target per worker (`METRICS_BIND`) carries the SDK's metrics (task
latencies, slots, polls: prefixed `temporal_`) and ours (prefixed
`notification`), with Prometheus naming: counters end in `_total`, durations are
in seconds and say so in their names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig


def prometheus_runtime(bind: str) -> Runtime:
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=bind, counters_total_suffix=True, durations_as_seconds=True)
        )
    )


class DeliveryMetrics:
    """Instruments created once per worker; label values are low-cardinality (no IDs, no addresses)."""

    def __init__(self, meter: MetricMeter) -> None:
        self.sent = meter.create_counter("notifications_sent", "notifications delivered", "1")
        self.failed = meter.create_counter("notifications_failed", "notifications failed for good", "1")
        self.attempts = meter.create_counter("notification_send_attempts", "send attempts by outcome", "1")
        self.held_back = meter.create_counter(
            "notifications_held_back", "sends stopped (opted_out) or deferred (quiet) by preferences", "1"
        )
        self.provider_latency = meter.create_histogram_float(
            "notification_provider_call_duration_seconds", "time spent in one provider call", "s"
        )
        self.failovers = meter.create_counter(
            "notification_failovers", "attempts moved to the next provider, by reason", "1"
        )
        self.end_to_end = meter.create_histogram_float(
            "notification_end_to_end_latency_seconds", "from enqueue to sent", "s"
        )

    def attempt(self, channel: str, outcome: str, error_code: str | None) -> None:
        self.attempts.add(1, {"channel": channel, "outcome": outcome, "error_code": error_code or "none"})

    def preferences(self, channel: str, type_: str | None, action: str) -> None:
        self.held_back.add(1, {"channel": channel, "type": type_ or "none", "action": action})

    def provider_call(self, channel: str, provider: str, seconds: float) -> None:
        self.provider_latency.record(seconds, {"channel": channel, "provider": provider})

    def failover(self, channel: str, source: str, target: str, reason: str) -> None:
        self.failovers.add(1, {"channel": channel, "from": source, "to": target, "reason": reason})

    def delivered(self, channel: str, type_: str | None, provider: str, enqueued_at: str | None) -> None:
        self.sent.add(1, {"channel": channel, "type": type_ or "none", "provider": provider})
        if enqueued_at:
            started = datetime.fromisoformat(enqueued_at)
            if started.tzinfo is None:
                started = started.replace(tzinfo=UTC)
            now = datetime.now(UTC)
            self.end_to_end.record(max((now - started) / timedelta(seconds=1), 0.0), {"channel": channel})

    def gave_up(self, channel: str, type_: str | None, error_code: str) -> None:
        self.failed.add(1, {"channel": channel, "type": type_ or "none", "error_code": error_code})
