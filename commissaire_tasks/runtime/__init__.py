"""The runtime: what turns service classes into Celery tasks, workers and calls.

Layer 2 of the house (above errors, messages, models, settings and routing; below
bus, service, storage, ops, testing and the command line). Its modules are public
extension points: ``app`` (the app factory), ``registry`` (service specs and the
queue rule), ``tasks`` (task registration and this process's instances),
``startup`` (the worker bootstep and its hooks), ``events`` (task events on
demand), ``batches`` (``call_many``'s chunks), ``results``, ``consumer``,
``transport``, ``logs``, ``loader`` (service modules), ``introspect`` and
``deadletters``. Underscore modules are its private helpers.
"""
