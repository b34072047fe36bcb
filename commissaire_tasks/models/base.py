"""Model bases: the original Commissaire record API as a thin layer over pydantic.

Services and storage keep speaking the original API (``new``, ``to_dict``,
``to_dict_safe``, ``_coerce``, ``_validate``, ``primary_key``); pydantic does the
type work. Values are checked in three separate passes, so that reading a record
never fails on a rule and a wrong type is told apart from a broken rule:

* :meth:`Model.from_dict` (reading storage or a notification) casts types
  leniently ("4" -> 4) and checks no rules.
* :meth:`Model._coerce` casts the current attribute values in place.
* :meth:`Model._validate` checks the current values strictly, types and rules
  (see :func:`.fields.rule`), and reports every problem at once.

Attributes may be assigned freely (``host.status = "active"``); as in the
original, such values are checked when ``_coerce``/``_validate`` run before a save.

Field metadata and rules are declared with the markers of :mod:`.fields`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from typing import Any, ClassVar, Self, get_args, get_origin

import pydantic
from pydantic import BaseModel, ConfigDict

from ..errors import CoercionError, ValidationError
from .fields import COMPUTED, HIDDEN, SECRET, FieldRole, empty_problem, rules_context

_REGISTRY: dict[str, type[Model]] = {}


class Model(BaseModel):
    """Base of every record model; concrete subclasses register themselves by class name.

    Pass ``abstract=True`` in the class statement to define a base that is not registered.
    """

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    #: Field whose value identifies a record; None for models not stored by key.
    primary_key_field: ClassVar[str | None] = None
    #: True for models that hold secrets (see :class:`SecretModel`).
    secret: ClassVar[bool] = False

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)

    @classmethod
    def __pydantic_init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        # Runs once the fields are known, so a bad declaration fails at import time.
        super().__pydantic_init_subclass__(**kwargs)
        if not abstract:
            cls._check_declaration()
            _register(cls)

    @classmethod
    def _check_declaration(cls) -> None:
        key = cls.primary_key_field
        if key is not None and key not in cls.model_fields:
            raise TypeError(f"{cls.__name__}.primary_key_field {key!r} is not a field")
        if cls.secret_fields() and not cls.secret:
            raise TypeError(f"{cls.__name__} has SECRET fields but is not a SecretModel")

    # Building

    @classmethod
    def new(cls, **kwargs: Any) -> Self:
        """Build from keyword arguments, filling defaults; values are checked later, on save.

        Raises:
            TypeError: a field without a default is missing, or a keyword is not a field.
        """
        unknown = [name for name in kwargs if name not in cls.model_fields]
        if unknown:
            raise TypeError(f"{cls.__name__}.new() got unknown field(s): {_listed(unknown)}")
        missing = [
            name
            for name, field in cls.model_fields.items()
            if field.is_required() and name not in kwargs
        ]
        if missing:
            raise TypeError(f"{cls.__name__}.new() missing required field(s): {_listed(missing)}")
        return cls.model_construct(**kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from stored or received data, casting types leniently and checking no rules.

        Raises:
            ValidationError: the data does not fit the fields (lists every problem).
        """
        with _reported(cls):
            return cls.model_validate(data)

    @classmethod
    def checked(cls, data: Mapping[str, Any]) -> Self:
        """Build from untrusted data in one pydantic pass that casts and checks every rule.

        Only a failure takes the stepwise path (:meth:`from_dict`, :meth:`_coerce`,
        :meth:`_validate`), so errors keep their types and name every problem.
        """
        try:
            model = cls.model_validate(data, strict=False, context=rules_context())
        except pydantic.ValidationError:
            model = None
        if model is None or model._key_problem() is not None:
            model = cls.from_dict(data)
            model._coerce()
            model._validate()
        return model

    @classmethod
    def trusted(cls, data: Mapping[str, Any]) -> Self:
        """Build from data that was checked when it was stored or sent: no validation."""
        return cls.model_construct(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Build from a JSON document, as :meth:`from_dict` does from a dict."""
        with _reported(cls):
            return cls.model_validate_json(text)

    # Rendering

    def to_dict(self) -> dict[str, Any]:
        """Every field, for storage and trusted callers."""
        return self.model_dump(warnings=False)

    def to_json(self) -> str:
        """Every field, as compact JSON."""
        return self.model_dump_json(warnings=False)

    def to_dict_safe(self) -> dict[str, Any]:
        """The fields that may be shown anywhere: no hidden or secret ones."""
        return self.model_dump(exclude=self._unsafe_fields(), warnings=False)

    def to_json_safe(self) -> str:
        """The safe rendering, as compact JSON."""
        return self.model_dump_json(exclude=self._unsafe_fields(), warnings=False)

    def stored_dict(self) -> dict[str, Any]:
        """The fields a store handler persists (no computed ones)."""
        return self.model_dump(include=set(self.stored_fields()), warnings=False)

    # Metadata

    @property
    def primary_key(self) -> Any:
        """The value of the key field, or None for a model without a key."""
        field = self.primary_key_field
        return None if field is None else getattr(self, field)

    @classmethod
    def hidden_fields(cls) -> frozenset[str]:
        """Fields marked :data:`HIDDEN`."""
        return _marked(cls, HIDDEN)

    @classmethod
    def secret_fields(cls) -> frozenset[str]:
        """Fields marked :data:`SECRET`."""
        return _marked(cls, SECRET)

    @classmethod
    def stored_fields(cls) -> tuple[str, ...]:
        """Fields persisted by storage, in declaration order (all but :data:`COMPUTED` ones)."""
        computed = _marked(cls, COMPUTED)
        return tuple(name for name in cls.model_fields if name not in computed)

    @classmethod
    def _unsafe_fields(cls) -> dict[str, Any]:
        """A pydantic ``exclude`` spec for the safe renderings."""
        return {name: True for name in cls.hidden_fields() | cls.secret_fields()}

    # Checking current values (the original's private API, kept for its callers)

    def _coerce(self) -> None:
        """Cast each attribute to its declared type in place (e.g. cpus "4" -> 4).

        Raises:
            CoercionError: naming each field whose value cannot be cast, and the value.
        """
        try:
            cast = self.model_validate(self._values())
        except pydantic.ValidationError as exc:
            problems = _describe(exc, type(self))
            raise CoercionError(
                f"cannot coerce {type(self).__name__}: {'; '.join(problems)}", errors=problems
            ) from exc
        for name in type(self).model_fields:
            setattr(self, name, getattr(cast, name))

    def _validate(self) -> None:
        """Check the current values: exact types and every rule, without casting.

        Raises:
            ValidationError: ``errors`` lists every problem found, not only the first.
        """
        problems = self._problems()
        if problems:
            name = type(self).__name__
            raise ValidationError(f"invalid {name}: {'; '.join(problems)}", errors=problems)

    def _prepare(self) -> None:
        """Coerce, then validate, as a save does (one pass unless something is wrong).

        Raises:
            CoercionError: a value cannot be cast; ``errors`` also lists the rules
                the other fields break, so the caller sees everything at once.
            ValidationError: the cast values break a rule.
        """
        cast = self._checked_copy()
        if cast is not None:
            for name in type(self).model_fields:
                setattr(self, name, getattr(cast, name))
            return
        try:
            self._coerce()
        except CoercionError:
            problems = self._problems(strict=False)
            name = type(self).__name__
            raise CoercionError(f"invalid {name}: {'; '.join(problems)}", errors=problems) from None
        self._validate()

    def _checked_copy(self) -> Self | None:
        """The current values cast and checked in one pass, or None if anything is wrong."""
        try:
            cast = self.model_validate(self._values(), strict=False, context=rules_context())
        except pydantic.ValidationError:
            return None
        return cast if cast._key_problem() is None else None

    def _key_problem(self) -> str | None:  # the key rule pydantic does not check
        key = self.primary_key_field
        return None if key is None else empty_problem(getattr(self, key))

    def _problems(self, strict: bool = True) -> list[str]:
        """Every problem of the current values; ``strict=False`` checks them as cast."""
        problems: list[str] = []
        try:
            self.model_validate(self._values(), strict=strict, context=rules_context())
        except pydantic.ValidationError as exc:
            problems.extend(_describe(exc, type(self)))
        key = self.primary_key_field
        if key is not None and not any(p.startswith(f"{key}:") for p in problems):
            problem = empty_problem(getattr(self, key))
            if problem is not None:
                problems.insert(0, f"{key}: {problem} (got {getattr(self, key)!r})")
        return problems

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}


class SecretModel(Model, abstract=True):
    """Base of models that hold secrets (HostCreds): :data:`SECRET` fields are never shown.

    Safe renderings leave secret fields out, ``repr`` masks them (models end up in
    logs) and error messages never quote a secret model's values.
    """

    secret: ClassVar[bool] = True

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        secret = self.secret_fields()
        for name, value in super().__repr_args__():
            yield name, ("***" if name in secret else value)


class ListModel(Model, abstract=True):
    """A list of one record type (Hosts, Clusters, ...), as the original had; never stored.

    A concrete list model declares a single ``list[Child]`` field; ``items_field`` and
    ``child_model`` are derived from it, so they cannot disagree.
    """

    #: The record type of the items.
    child_model: ClassVar[type[Model]]
    #: The field holding the items (e.g. ``"hosts"``).
    items_field: ClassVar[str]

    @classmethod
    def _check_declaration(cls) -> None:
        super()._check_declaration()
        fields = list(cls.model_fields.items())
        if len(fields) == 1:
            name, field = fields[0]
            args = get_args(field.annotation)
            if get_origin(field.annotation) is list and _is_model(args[0] if args else None):
                cls.items_field, cls.child_model = name, args[0]
                return
        raise TypeError(f"{cls.__name__} must declare exactly one field, of type list[SomeModel]")

    @classmethod
    def new(cls, items: Iterable[Model] | None = None, /, **kwargs: Any) -> Self:
        """Build from the items (``Hosts.new([host, ...])``) or from keywords."""
        if items is not None:
            if cls.items_field in kwargs:
                raise TypeError(f"{cls.__name__}.new() got the items twice")
            kwargs[cls.items_field] = list(items)
        return super().new(**kwargs)

    @property
    def items(self) -> list[Model]:
        """The child records."""
        return list(getattr(self, self.items_field))

    @classmethod
    def _unsafe_fields(cls) -> dict[str, Any]:
        return {cls.items_field: {"__all__": cls.child_model._unsafe_fields()}}

    def _coerce(self) -> None:
        super()._coerce()
        for child in self.items:
            child._coerce()

    def _checked_copy(self) -> Self | None:
        return None  # items are model instances pydantic would not check again: stepwise

    def _problems(self, strict: bool = True) -> list[str]:
        problems = super()._problems(strict)
        for index, child in enumerate(self.items):
            if isinstance(child, self.child_model):
                prefix = f"{self.items_field}.{index}."
                problems.extend(prefix + problem for problem in child._problems(strict))
        return problems


def model_class(name: str) -> type[Model]:
    """The registered model class called ``name`` (e.g. ``"Host"``, ``"Hosts"``).

    Raises:
        ValidationError: no model has that name.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        message = f"unknown model type {name!r}"
        raise ValidationError(message, errors=[message]) from None


def model_types() -> dict[str, type[Model]]:
    """Every registered model class by name (a copy)."""
    return dict(_REGISTRY)


def _register(cls: type[Model]) -> None:
    known = _REGISTRY.get(cls.__name__)
    if known is not None and (known.__module__, known.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise TypeError(
            f"model name {cls.__name__!r} is taken by {known.__module__}.{known.__qualname__}"
        )
    _REGISTRY[cls.__name__] = cls


@cache
def _marked(cls: type[Model], role: FieldRole) -> frozenset[str]:
    return frozenset(name for name, field in cls.model_fields.items() if role in field.metadata)


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, Model)


def _listed(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _describe(exc: pydantic.ValidationError, cls: type[Model]) -> list[str]:
    """One line per pydantic error: ``field: problem (got value)``.

    Values are not quoted for a secret model, so errors never carry a secret.
    """
    lines = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        where = ".".join(str(part) for part in loc) or "<data>"
        shown = loc and error["type"] != "missing" and not cls.secret
        got = f" (got {error['input']!r})" if shown else ""
        lines.append(f"{where}: {error['msg']}{got}")
    return lines


@contextmanager
def _reported(cls: type[Model]) -> Iterator[None]:
    """Turn pydantic's errors into ours, listing every problem."""
    try:
        yield
    except pydantic.ValidationError as exc:
        problems = _describe(exc, cls)
        raise ValidationError(
            f"invalid {cls.__name__} data: {'; '.join(problems)}", errors=problems
        ) from exc
