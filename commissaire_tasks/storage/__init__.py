"""Storage: the storage service, its store handlers, the client and change notifications.

``commissaire_tasks.storage.client`` is what services import (StorageClient,
NOTIFY_EVENT_*, NotifyCallback); ``workers/storage.py`` runs the service.
"""
