"""The payload converter: the SDK's default, with cheaper JSON for dataclasses both ways.

Encoding: the SDK's JSON encoder turns a dataclass into a dict with `dataclasses.asdict`, which
deep-copies every field on the way (a quarter of a millisecond per notification input, on the
client and again in the worker; docs/decisions/0022). This encoder hands `json` the fields as they
are and lets it recurse: the bytes are the same, so recorded histories replay unchanged.

Both ways the SDK tries each of its converters in turn for every value and makes a JSON encoder per
value; a string or a dataclass (the summary and details of every start, every workflow and activity
input) goes straight to the JSON converter's bytes here, with one encoder kept.

Decoding: the SDK resolves a dataclass's type hints (`typing.get_type_hints`, which evaluates
every annotation) each time it decodes one, and tries each member of `str | None` in turn, by
raising and catching. `DataclassTypeConverter` builds the same objects with the hints resolved once
per class (docs/decisions/0030).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.common import RawValue
from temporalio.converter import (
    AdvancedJSONEncoder,
    CompositePayloadConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    JSONTypeConverter,
    value_to_type,
)

_PLAIN = (str, int, bool)  # value_to_type returns a value of exactly one of these types unchanged


# Bounded: a workflow module the sandbox re-imports for every run would bring new classes each time.
@functools.lru_cache(maxsize=256)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@functools.lru_cache(maxsize=256)
def _fields(cls: type) -> tuple[tuple[str, Any, bool, frozenset[type] | None], ...]:
    """(name, type hint, init, plain types) of each field, resolved once. A value whose exact type is
    among a field's plain types is kept as it is, as `value_to_type` would keep it; any other value
    goes through `value_to_type` (its conversions, and its errors worded as the SDK words them)."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name], f.init, _plain_types(hints[f.name])) for f in dataclasses.fields(cls))


def _plain_types(hint: Any) -> frozenset[type] | None:
    if hint in _PLAIN:
        return frozenset({hint})
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = typing.get_args(hint)
        if all(m in _PLAIN or m is type(None) for m in members):
            return frozenset(members)
    return None


class DataclassFieldsEncoder(AdvancedJSONEncoder):
    def default(self, o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {name: getattr(o, name) for name in _field_names(type(o))}
        return super().default(o)


class DataclassTypeConverter(JSONTypeConverter):
    """A dataclass from its JSON object exactly as the SDK's `value_to_type` builds it: unknown keys
    ignored, a missing required field refused by the constructor, a field that does not convert
    refused with its name, init=False fields set after construction."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict)):
            return JSONTypeConverter.Unhandled
        init_values: dict[str, Any] = {}
        later: dict[str, Any] = {}
        for name, field_hint, init, plain in _fields(hint):
            if name not in value:
                continue
            field_value = value[name]
            if plain is not None and type(field_value) in plain:
                converted = field_value
            else:
                try:
                    converted = value_to_type(field_hint, field_value, [self])
                except Exception as err:
                    raise TypeError(f"Failed converting field {name} on dataclass {hint}") from err
            (init_values if init else later)[name] = converted
        obj = hint(**init_values)
        for name, converted in later.items():
            object.__setattr__(obj, name, converted)
        return obj


class PayloadConverter(CompositePayloadConverter):
    """The default converters, the JSON one with `DataclassFieldsEncoder` and `DataclassTypeConverter`."""

    def __init__(self) -> None:
        json_plain = JSONPlainPayloadConverter(
            encoder=DataclassFieldsEncoder, custom_type_converters=[DataclassTypeConverter()]
        )
        super().__init__(
            *(
                json_plain if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )
        self._json_encoding = json_plain.encoding.encode()
        # The arguments `JSONPlainPayloadConverter.to_payload` gives `json.dumps`: the same bytes.
        self._encoder = DataclassFieldsEncoder(separators=(",", ":"), sort_keys=True)

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """A string or a dataclass instance as the JSON converter writes it (no converter before it
        takes one); any other value through the converters in turn."""
        payloads = []
        for value in values:
            if type(value) is str:
                data = json.encoder.encode_basestring_ascii(value)
            elif (
                hasattr(type(value), "__dataclass_fields__")
                # what the SDK passes through, or hands to a converter before the JSON one
                and not isinstance(value, RawValue | bytes | Message)
                and not hasattr(value, "parse_obj")  # the SDK's warning about pydantic v1
            ):
                data = self._encoder.encode(value)
            else:
                payloads.extend(super().to_payloads([value]))
                continue
            payloads.append(Payload(metadata={"encoding": self._json_encoding}, data=data.encode()))
        return payloads
