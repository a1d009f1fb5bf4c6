"""The provider fakes of tests/fakes, importable from the installed `notifications` command too.

An editable install puts only the runtime packages on sys.path, not the repository root
where `tests/` lives; the benchmark does the same for its fake Resend API.
"""

from __future__ import annotations

import sys

from notifications.bench import ROOT

if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

# Imported after the path is set, on purpose.
from tests.fakes.fcm import FakeFCM
from tests.fakes.fcm import Step as FcmStep
from tests.fakes.fcm import error as fcm_error
from tests.fakes.http import Exchange
from tests.fakes.resend import FakeResend, Storm
from tests.fakes.resend import Step as ResendStep
from tests.fakes.resend import error as resend_error

__all__ = ["Exchange", "FakeFCM", "FakeResend", "FcmStep", "ResendStep", "Storm", "fcm_error", "resend_error"]
