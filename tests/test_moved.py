"""Old import paths of moved modules still work, and warn naming the new place."""

from __future__ import annotations

import importlib
import warnings

import pytest

#: (old module, a name it had, the module that holds the name now)
MOVED = [
    ("commissaire_tasks._registry", "registry", "commissaire_tasks.runtime.registry"),
    ("commissaire_tasks._startup", "ServiceStartup", "commissaire_tasks.runtime.startup"),
    ("commissaire_tasks._tasks", "register_task", "commissaire_tasks.runtime.tasks"),
    ("commissaire_tasks._results", "BoundedResult", "commissaire_tasks.runtime.results"),
    ("commissaire_tasks._transport", "Channel", "commissaire_tasks.runtime.transport"),
    ("commissaire_tasks._consumer", "Consumer", "commissaire_tasks.runtime.consumer"),
    ("commissaire_tasks.deadletters", "DeadLetter", "commissaire_tasks.runtime.deadletters"),
    ("commissaire_tasks.ops.logs", "JsonFormatter", "commissaire_tasks.runtime.logs"),
    ("commissaire_tasks.ops.introspect", "find_conflicts", "commissaire_tasks.runtime.introspect"),
    ("commissaire_tasks.ops.services", "load_service_modules", "commissaire_tasks.runtime.loader"),
    ("commissaire_tasks.storage.notifications", "Notifier", "commissaire_tasks.storage.notifier"),
    (
        "commissaire_tasks.storage.notifications",
        "register_callback",
        "commissaire_tasks.storage.subscriber",
    ),
    (
        "commissaire_tasks.storage.notifications",
        "NOTIFY_EVENT_CREATED",
        "commissaire_tasks.storage.subscriptions",
    ),
]


@pytest.mark.parametrize(("old", "name", "new"), MOVED)
def test_a_name_read_through_its_old_module_is_the_new_one_and_warns_where_it_lives(
    old: str, name: str, new: str
) -> None:
    with pytest.warns(DeprecationWarning, match=rf"{old} moved: import {name} from {new}$"):
        value = getattr(importlib.import_module(old), name)
    assert value is getattr(importlib.import_module(new), name)


def test_from_import_of_an_old_path_works_and_the_warning_points_at_the_importer() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from commissaire_tasks._registry import registry  # noqa: F401
    assert [w.filename for w in caught] == [__file__]


def test_a_name_the_new_module_lacks_is_an_attribute_error_naming_both_places() -> None:
    old = importlib.import_module("commissaire_tasks._tasks")
    with pytest.raises(
        AttributeError, match=r"_tasks' \(moved to commissaire_tasks.runtime.tasks\)"
    ):
        old.no_such_name  # noqa: B018
