"""Fixtures of the workflow tests: a scripted provider for both channels."""

from __future__ import annotations

import pytest

from activities.providers import Providers
from tests.support.scripted import ScriptedProvider


@pytest.fixture
def provider() -> ScriptedProvider:
    return ScriptedProvider()


@pytest.fixture
def providers(provider: ScriptedProvider) -> Providers:
    return Providers(email=provider, push=provider)
