"""Container managers and the ``container`` service.

Modules: :mod:`.manager` (the contract every manager implements), :mod:`.trivial`
(nodes kept in Redis), :mod:`.kubernetes` (the official Kubernetes client; OpenShift
is the same manager), :mod:`.table` (the managers of the stored configs, kept
current), :mod:`.membership` (cluster membership drives registration) and
:mod:`.service` (the bus methods).
"""
