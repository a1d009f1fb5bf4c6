"""The payload converter: the SDK's default, with a cheaper JSON encoding of dataclasses.

The SDK's JSON encoder turns a dataclass into a dict with `dataclasses.asdict`, which deep-copies
every field on the way (a quarter of a millisecond per notification input, on the client and again
in the worker; docs/decisions/0022). This encoder hands `json` the fields as they are and lets it
recurse: the bytes are the same, so recorded histories replay unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


class DataclassFieldsEncoder(AdvancedJSONEncoder):
    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {name: getattr(o, name) for name in _field_names(type(o))}
        return super().default(o)


class PayloadConverter(CompositePayloadConverter):
    """The default converters, the JSON one with `DataclassFieldsEncoder`."""

    def __init__(self) -> None:
        super().__init__(
            *(
                JSONPlainPayloadConverter(encoder=DataclassFieldsEncoder)
                if isinstance(c, JSONPlainPayloadConverter)
                else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
