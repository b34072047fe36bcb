"""Task events on demand: off until a monitor asks, off again after a quiet period.

Task events (received, started, succeeded, ... for every call) are what Flower's
live view is made of, and a measurable share of every call's CPU (README,
"Performance"). With ``COMMISSAIRE_TASK_EVENTS=demand`` (the default) a worker sends only
its own heartbeats until a monitor asks for task events, then sends them until
no monitor has asked for ``COMMISSAIRE_EVENTS_QUIET_S`` seconds.

Monitors ask with Celery's own remote-control commands, which this module
observes (Celery's handlers still do the work; the messages are Celery's):

* ``enable_events``: Flower broadcasts it every 5 s while it runs;
  ``celery control enable_events``, ``commissaire-tasks flower`` and
  ``commissaire-tasks status`` send it too;
* ``heartbeat``: every event receiver that starts listening asks for one
  (Flower, ``celery events``), so a monitor opened after the workers sees the
  calls that follow at once;
* ``disable_events`` turns them off now.

A worker that starts while other workers have them on (a monitor asked them
lately) turns them on too, until that request's quiet period ends.

``on`` keeps them on (Celery's ``worker_send_task_events``); ``off`` keeps them
off and answers requests with a refusal. ``celery inspect task_events`` tells
each worker's state. A worker started with ``-E`` sends them always.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, bootsteps
from celery.worker.control import Panel, inspect_command
from kombu.connection import Connection

from ..config import TASK_EVENTS_DEMAND, TASK_EVENTS_OFF, TASK_EVENTS_ON

__all__ = [
    "EventsOnDemand",
    "TaskEventsOnDemand",
    "ask_for_task_events",
    "install",
    "task_events_state",
]

logger = logging.getLogger(__name__)

#: The event group task events belong to (Celery's name).
TASK_GROUP = "task"
#: Seconds between two checks of the quiet period (on the worker's own timer).
CHECK_INTERVAL_S = 1.0
#: Attribute of the worker's consumer that holds its :class:`EventsOnDemand`.
_CONSUMER_ATTRIBUTE = "commissaire_task_events"
#: Seconds a starting worker waits for the other workers to say whether theirs are on.
PEERS_TIMEOUT_S = 1.0
#: The remote-control commands through which monitors ask for task events.
REQUESTS = ("enable_events", "heartbeat")


class EventsOnDemand:
    """Switches the ``task`` group of one worker's event dispatcher on and off.

    Args:
        mode: ``demand`` or ``off`` (``on`` needs no switching).
        quiet_s: Seconds task events stay on after the last request.
        clock: Monotonic seconds (a parameter so the logic is testable alone).
    """

    def __init__(
        self, mode: str, quiet_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.mode = mode
        self.quiet_s = quiet_s
        self.clock = clock
        self.dispatcher: Any = None
        #: Monotonic time at which task events stop; None while they are off.
        self.until: float | None = None

    def attach(self, dispatcher: Any) -> None:
        """Use ``dispatcher`` (a new one after each reconnection) in the current state."""
        self.dispatcher = dispatcher
        if self.until is None:
            dispatcher.groups.discard(TASK_GROUP)
        else:
            dispatcher.groups.add(TASK_GROUP)

    def requested(self, by: str) -> bool:
        """A monitor asked (``by`` names how); False when this worker refuses (mode off)."""
        if self.mode == TASK_EVENTS_OFF or self.dispatcher is None:
            return False
        if self.until is None:
            logger.info(
                "Task events on: requested by %s (off after %g s without one)", by, self.quiet_s
            )
        self.until = self.clock() + self.quiet_s
        self.dispatcher.groups.add(TASK_GROUP)
        return True

    def follow(self, peer: str, left_s: float, asked_at: float) -> None:
        """A peer had task events on for ``left_s`` more seconds at ``asked_at``: do the same."""
        if self.mode == TASK_EVENTS_OFF or self.dispatcher is None or self.until is not None:
            return
        logger.info(
            "Task events on: %s has them on (off after %g s without a request)", peer, left_s
        )
        self.until = asked_at + min(left_s, self.quiet_s)
        self.dispatcher.groups.add(TASK_GROUP)

    def stop(self, why: str) -> None:
        if self.until is not None:
            logger.info("Task events off: %s", why)
        self.until = None
        if self.dispatcher is not None:
            self.dispatcher.groups.discard(TASK_GROUP)

    def expire(self) -> None:
        """Turn task events off when the quiet period has passed (called every second)."""
        if self.until is not None and self.clock() >= self.until:
            self.stop(f"no monitor asked for {self.quiet_s:g} s")

    def describe(self) -> dict[str, Any]:
        left = None if self.until is None else max(0.0, round(self.until - self.clock(), 1))
        return {"mode": self.mode, "on": self.until is not None, "off_in_s": left}


class TaskEventsOnDemand(bootsteps.StartStopStep):  # type: ignore[misc]
    """Consumer bootstep: attach :class:`EventsOnDemand` to the event dispatcher."""

    label = "task events on demand"
    requires = ("celery.worker.consumer.events:Events",)

    def __init__(self, c: Any, **kwargs: Any) -> None:
        super().__init__(c, **kwargs)
        self.demand: EventsOnDemand | None = None
        self.timer_entry: Any = None

    def start(self, c: Any) -> None:
        dispatcher = c.event_dispatcher
        mode = _mode(c.app)
        if dispatcher is None or not dispatcher.groups or mode == TASK_EVENTS_ON:
            return  # task events always on (or no events at all): nothing to switch
        first_start = self.demand is None
        if self.demand is None:
            self.demand = EventsOnDemand(mode, c.app.settings.events_quiet_s)
        self.demand.attach(dispatcher)
        setattr(c, _CONSUMER_ATTRIBUTE, self.demand)
        if mode == TASK_EVENTS_DEMAND:
            self.timer_entry = c.timer.call_repeatedly(CHECK_INTERVAL_S, self.demand.expire)
            if first_start:  # a monitor may be watching the other workers already
                threading.Thread(
                    target=_follow_peers,
                    args=(c.app, c.hostname, self.demand),
                    name="task-events-peers",
                    daemon=True,
                ).start()

    def stop(self, c: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None

    shutdown = stop


def _follow_peers(app: Celery, hostname: str, demand: EventsOnDemand) -> None:
    """Turn task events on when another worker has them on (a monitor asked it lately).

    Covers a worker started while Flower is open beside other workers, until
    Flower's next request; a worker alone waits for that request (at most 5 s).
    """
    asked_at = demand.clock()  # the replies come when the timeout ends
    try:
        peers = task_events_state(app, timeout_s=PEERS_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a courtesy; the next request turns them on
        logger.debug("Could not ask the other workers about task events: %r", exc)
        return
    left = [
        (float(state["off_in_s"]), host)
        for host, state in peers.items()
        if host != hostname
        and isinstance(state, dict)
        and state.get("on")
        and state.get("off_in_s")
    ]
    if left:
        left_s, peer = max(left)
        demand.follow(peer, left_s, asked_at)


def _mode(app: Celery) -> str:
    settings = getattr(app, "settings", None)
    return settings.task_events if settings is not None else TASK_EVENTS_ON


def _demand_of(state: Any) -> EventsOnDemand | None:
    return getattr(getattr(state, "consumer", None), _CONSUMER_ATTRIBUTE, None)


def _observe(name: str, after: Callable[[EventsOnDemand, Any], Any]) -> None:
    """Wrap Celery's control command ``name``: run it, then ``after(demand, reply)``."""
    original = Panel.data[name]
    if getattr(original, "__commissaire_observed__", False):
        return

    @functools.wraps(original)
    def observed(state: Any, **kwargs: Any) -> Any:
        demand = _demand_of(state)
        if demand is not None and demand.mode == TASK_EVENTS_OFF and name == "enable_events":
            return {"ok": "task events stay off on this worker (COMMISSAIRE_TASK_EVENTS=off)"}
        reply = original(state, **kwargs)
        return reply if demand is None else after(demand, reply)

    observed.__commissaire_observed__ = True  # type: ignore[attr-defined]
    Panel.data[name] = observed


def _on_request(name: str) -> Callable[[EventsOnDemand, Any], Any]:
    def after(demand: EventsOnDemand, reply: Any) -> Any:
        demand.requested(name)
        return reply

    return after


def _on_disable(demand: EventsOnDemand, reply: Any) -> Any:
    demand.stop("disable_events requested")
    return reply


@inspect_command()  # type: ignore[untyped-decorator,unused-ignore]
def task_events(state: Any) -> dict[str, Any]:
    """This worker's task events: mode, whether on, seconds until the quiet period ends."""
    demand = _demand_of(state)
    if demand is not None:
        return demand.describe()
    groups = getattr(state.consumer.event_dispatcher, "groups", None)
    on = groups is not None and (not groups or TASK_GROUP in groups)
    return {"mode": TASK_EVENTS_ON if on else TASK_EVENTS_OFF, "on": on, "off_in_s": None}


def task_events_state(
    app: Celery, hostnames: list[str] | None = None, timeout_s: float = 1.0
) -> dict[str, dict[str, Any]]:
    """Hostname -> what ``celery inspect task_events`` says, for the workers that answer."""
    replies = app.control.broadcast(
        "task_events", destination=hostnames, reply=True, timeout=timeout_s
    )
    return {host: state for reply in replies or () for host, state in reply.items()}


def install(app: Celery) -> None:
    """Give workers of ``app`` task events on demand (see the module docstring)."""
    for name in REQUESTS:
        _observe(name, _on_request(name))
    _observe("disable_events", _on_disable)
    app.steps["consumer"].add(TaskEventsOnDemand)


def ask_for_task_events(app: Celery, connection: Connection | None = None) -> bool:
    """Broadcast ``enable_events`` as a monitor does; False when the broker is unreachable."""
    try:
        if connection is None:
            with app.connection_for_write() as fresh:
                fresh.ensure_connection(max_retries=1, interval_start=0, timeout=2)
                app.control.enable_events(connection=fresh)
        else:
            app.control.enable_events(connection=connection)
    except Exception as exc:  # noqa: BLE001 - asking is a courtesy; the caller goes on
        # The type only: a connection error's text may name the broker URL.
        logger.warning("Could not ask the workers for task events (%s)", type(exc).__name__)
        return False
    return True
