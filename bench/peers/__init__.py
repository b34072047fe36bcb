"""Side by side with the peers: Nameko, Dramatiq, bare Celery, the original Commissaire bus.

``python -m bench --peers`` (or ``python -m bench.peers``). Each peer runs in a
virtual environment of its own (:mod:`.venvs`), its workers and its caller are
processes of their own (:mod:`.contenders`), the callers share one timing loop
(:mod:`.driver`), and :mod:`.run` interleaves the rounds; :mod:`.report` checks
the targets.
"""
