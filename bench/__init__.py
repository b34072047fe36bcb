"""``python -m bench``: what the framework costs over bare Celery, measured.

Run ``python -m bench`` from a checkout; see :mod:`bench.cli`.
"""
