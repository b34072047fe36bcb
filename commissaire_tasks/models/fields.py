"""Field metadata for models: roles that change how a field is rendered or kept, and rules.

Both go in a field's ``Annotated[...]``::

    hostset: Annotated[list[str], HIDDEN] = Field(default_factory=list)
    status: Annotated[str, one_of(("", "active"))] = ""

Rules are pydantic validators that only run under :func:`rules_context`, which
``Model._validate`` sets: reading a stored record or casting values never trips
a rule, while validation reports broken rules together with wrong types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import AfterValidator, ValidationInfo
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class FieldRole:
    """A marker for a field's ``Annotated`` metadata: how the field is rendered or kept."""

    name: str


#: Left out of safe renderings (``to_dict_safe``/``to_json_safe``), e.g. a Cluster's hostset.
HIDDEN = FieldRole("hidden")
#: A secret model's secret: left out of safe renderings; only allowed on a :class:`SecretModel`.
SECRET = FieldRole("secret")
#: Filled in when a record is read, never persisted: left out of ``stored_fields()``.
COMPUTED = FieldRole("computed")

#: Validation-context key that switches field rules on (only ``_validate`` sets it).
_RULES = "commissaire_rules"


def rules_context() -> dict[str, Any]:
    """The pydantic validation context under which field rules are enforced."""
    return {_RULES: True}


def rule(check: Callable[[Any], str | None]) -> AfterValidator:
    """A field rule that only ``_validate`` enforces, so stored records stay readable.

    Args:
        check: returns a description of the problem with a value, or None when it is fine.
    """

    def run(value: Any, info: ValidationInfo) -> Any:
        if isinstance(info.context, Mapping) and info.context.get(_RULES):
            problem = check(value)
            if problem is not None:
                raise PydanticCustomError("model_rule", "{problem}", {"problem": problem})
        return value

    return AfterValidator(run)


def non_empty() -> AfterValidator:
    """Rule: the value must not be empty (key fields get this check automatically)."""
    return rule(empty_problem)


def one_of(choices: Iterable[str]) -> AfterValidator:
    """Rule: the value must be one of ``choices``."""
    allowed = tuple(choices)
    listed = ", ".join(repr(choice) for choice in allowed)
    return rule(lambda value: None if value in allowed else f"must be one of {listed}")


def timestamp(fmt: str) -> AfterValidator:
    """Rule: the value must parse with ``datetime.strptime(value, fmt)``."""

    def check(value: Any) -> str | None:
        try:
            datetime.strptime(value, fmt)
        except (TypeError, ValueError):
            return f"must be a timestamp in the format {fmt!r}"
        return None

    return rule(check)


def empty_problem(value: Any) -> str | None:
    """The problem with an empty value (shared by :func:`non_empty` and key checks)."""
    return "must not be empty" if value == "" else None
