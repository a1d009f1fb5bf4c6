"""Connecting to Temporal the way the `temporal` CLI does, and registering our search attributes."""

from __future__ import annotations

import logging

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.envconfig import ClientConfigProfile
from temporalio.runtime import Runtime

from notifications.codec import data_converter
from notifications.config import Settings
from notifications.types import SEARCH_ATTRIBUTES

log = logging.getLogger("notifications.temporal")


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """TLS, API key and `temporal.toml` profiles come from the standard TEMPORAL_* variables;
    address and namespace from our settings (which read the same variables)."""
    profile = ClientConfigProfile.load()
    config = profile.to_client_connect_config()
    config["target_host"] = settings.temporal_address
    config["namespace"] = settings.temporal_namespace
    keys = settings.encryption_keys.get_secret_value() if settings.encryption_keys else None
    return await Client.connect(**config, runtime=runtime, data_converter=data_converter(keys))


async def ensure_search_attributes(client: Client) -> None:
    """Register NotificationStatus/Channel/Type (Keyword) and NotificationPriority (Int) if missing."""
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
        log.info("registered search attributes %s", sorted(missing))
