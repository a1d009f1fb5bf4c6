"""Workflow-safe contracts of campaigns: names, statuses and the dataclasses between the client,
`CampaignWorkflow` and its activities (no I/O here; the workflow imports this module). No postponed
annotations: Temporal's converter resolves the dataclasses' field types inside the workflow sandbox."""

from dataclasses import dataclass, field
from enum import StrEnum

CAMPAIGN_WORKFLOW_NAME = "CampaignWorkflow"
# Campaign workflows and their batches poll a queue of their own: a campaign's backlog never sits
# in front of a single notification's tasks on `notification-email` / `notification-push`.
CAMPAIGN_TASK_QUEUE = "notification-campaign"
SEND_CAMPAIGN_BATCH_ACTIVITY = "send_campaign_batch"
RECORD_CAMPAIGN_ACTIVITY = "record_campaign"
PROGRESS_QUERY = "progress"
# A campaign runs below every single notification: Temporal's least urgent priority key.
CAMPAIGN_PRIORITY_KEY = 10
MAX_INLINE_RECIPIENTS = 10_000
# A batch heartbeats this often; one silent for BATCH_HEARTBEAT_TIMEOUT_SECONDS ran on a dead worker.
HEARTBEAT_EVERY_SECONDS = 1.0
BATCH_HEARTBEAT_TIMEOUT_SECONDS = 5.0


def campaign_workflow_id(campaign_id: str) -> str:
    return f"campaign-{campaign_id}"


def recipient_notification_id(campaign_id: str, seq: int) -> str:
    """The default notificationId of a campaign's recipient: `<campaignId>-<n>`."""
    return f"{campaign_id}-{seq}"


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # recipients may be added; not started
    SCHEDULED = "scheduled"  # started, waiting for its sendAt
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"  # every batch ran (a recipient handed to its own workflow may still be retrying)
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (CampaignStatus.COMPLETED, CampaignStatus.CANCELLED)


@dataclass
class CampaignCounts:
    """What the campaign's batches did with their recipients."""

    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    expired: int = 0
    handedOff: int = 0  # deferred by quiet hours or failed transiently: now retried by its own NotificationWorkflow

    def add(self, other: "CampaignCounts") -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.suppressed += other.suppressed
        self.expired += other.expired
        self.handedOff += other.handedOff

    @property
    def done(self) -> int:
        return self.sent + self.failed + self.suppressed + self.expired + self.handedOff


@dataclass
class CampaignInput:
    """A campaign's workflow input; continue-as-new carries it on with `nextSeq` and the counts so far."""

    campaignId: str
    channel: str
    lastSeq: int  # the highest `campaign_seq` among its recipients
    nextSeq: int = 1
    batchSize: int = 500
    maxInFlight: int = 4
    rateLimitPerSecond: int | None = None
    sendAt: str | None = None
    startedAt: str | None = None
    paused: bool = False
    queuePaused: bool = False
    queuePauseRecheckMs: int = 60_000
    maxAttempts: int = 5
    counts: CampaignCounts = field(default_factory=CampaignCounts)
    batchesPerRun: int = 500  # then it continues as new, its history bounded
    again: list[list[int]] = field(default_factory=list)  # ranges a queue pause sent back, to run again
    total: int = 0  # recipients stored (lastSeq counts the ones skipped as duplicates too)


@dataclass
class CampaignBatch:
    """One range of a campaign's recipients (`campaign_seq` from..to), one activity."""

    campaignId: str
    channel: str
    seqFrom: int
    seqTo: int
    maxAttempts: int = 5


@dataclass
class CampaignBatchResult:
    counts: CampaignCounts = field(default_factory=CampaignCounts)
    queuePaused: bool = False  # the channel's queue is paused: nothing claimed, run the range again later


@dataclass
class CampaignUpdate:
    """Input of `record_campaign`: the workflow's view of its campaign, mirrored to SQL."""

    campaignId: str
    status: str
    startedAt: str | None = None
    completedAt: str | None = None
    cancelRemaining: bool = False  # cancelled: its recipients no batch claimed end `cancelled`
