"""The container health check script, deploy/healthcheck.py, loaded as a module (it is not in a package)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.support.system import ROOT

HEALTHCHECK_SCRIPT = ROOT / "deploy" / "healthcheck.py"


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", HEALTHCHECK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
