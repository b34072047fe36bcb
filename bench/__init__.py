"""``commissaire-tasks bench``: what the framework costs over bare Celery, measured.

Run ``python -m bench`` (or ``commissaire-tasks bench``); see :mod:`bench.cli`.
"""
