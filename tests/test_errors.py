"""Errors survive the pool's pickle: a worker's pool process hands them to its main process.

billiard sends a task's exception from the pool process to the worker's main process
by pickle. An exception that cannot be rebuilt from its arguments raises inside the
main process's result handler and the worker loses the call (seen in CI: a storage
save requeued with ``Reject(BrokerUnavailable(...))`` during a Redis restart).
"""

from __future__ import annotations

import pickle

import pytest

from commissaire_tasks import errors

SAMPLES: list[errors.CommissaireTasksError] = [
    errors.NoRouteError("simple.add", "no binding"),
    errors.CallTimeout("simple.add", 2.5),
    errors.BrokerUnavailable("storage.save", "Connection refused"),
    errors.ValidationError("invalid Host", ["cpus: not a number"]),
    errors.CoercionError("invalid Host", ["cpus: not a number"]),
    errors.StorageLookupError("no record 'x'", data={"model": "Host"}),
    errors.ConfigurationError("no key"),
]


def _every_error_class(root: type[BaseException]) -> set[type[BaseException]]:
    found = set()
    for sub in root.__subclasses__():
        found |= {sub} | _every_error_class(sub)
    return found


@pytest.mark.parametrize("error", SAMPLES, ids=lambda e: type(e).__name__)
def test_an_error_comes_back_from_pickle_with_its_message_and_fields(
    error: errors.CommissaireTasksError,
) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_every_error_of_the_package_comes_back_from_pickle() -> None:
    # Constructed with the arguments their constructors require (most take a message).
    for cls in _every_error_class(errors.CommissaireTasksError):
        samples = [e for e in SAMPLES if type(e) is cls]
        error = samples[0] if samples else cls("something failed")
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is cls and str(copy) == str(error), cls
