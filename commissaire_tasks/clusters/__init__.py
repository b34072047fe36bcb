"""Cluster-wide operations: rolling upgrade, restart and deploy as Celery canvases.

Modules: :mod:`.operations` (the three kinds, batches), :mod:`.lock` (one operation
per cluster), :mod:`.records` (the operation records, changed one at a time),
:mod:`.steps` (one host's playbook run, the wait for SSH after a restart) and
:mod:`.service` (the ``clusterexec`` service and its canvas). Playbooks ship as data
files in ``playbooks/``.
"""
