"""`notifications chaos`: faults injected into a running system, and what it did with each notification.

Each scenario starts its own Temporal dev server, database, fake providers (tests/fakes, served
from this process) and worker processes in a temp dir, injects its fault, waits for the system
to settle and counts from the provider's side, from SQL and from what every caller was told.
Beside the runtime like the benchmark: no runtime package imports this one. See docs/chaos.md.
"""

from chaos.options import SCENARIOS, ChaosOptions
from chaos.run import main_async, run_chaos

__all__ = ["SCENARIOS", "ChaosOptions", "main_async", "run_chaos"]
