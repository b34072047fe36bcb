"""Bootstrap: run a host's OS command set, with the variables its templates use.

The network of the host's cluster decides the flannel configuration, as in the
original: ``flannel_etcd`` points flanneld at etcd (``etcd_endpoints`` and
``flannel_key_prefix`` from the investigator's config), ``flannel_server`` at the
flannel server in the network's ``options.address``. The registry mirror comes
from the config (``registry_mirror``) instead of being hard-coded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from commissaire_tasks.models import Network

from .commands import CommandSet
from .target import SSHTarget

__all__ = ["DEFAULT_FLANNEL_KEY_PREFIX", "bootstrap_playbook", "bootstrap_variables"]

#: Where flanneld reads its network config in etcd when the config names none.
DEFAULT_FLANNEL_KEY_PREFIX = "/atomic01/network"
#: The etcd flanneld uses when the config names none.
DEFAULT_ETCD_ENDPOINTS = "http://127.0.0.1:2379"


def bootstrap_playbook(command_set: CommandSet) -> list[dict[str, Any]]:
    """One play running the set's steps in order (no fact gathering: facts are saved)."""
    play = {"name": "bootstrap", "hosts": "all", "gather_facts": False}
    return [{**play, "tasks": command_set.tasks()}]


def bootstrap_variables(
    target: SSHTarget, network: Network, config: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``commissaire_*`` variables every template and step may use."""
    options = network.options or {}
    return {
        "commissaire_address": target.address,
        "commissaire_bootstrap_ip": target.host,
        "commissaire_network_name": network.name,
        "commissaire_network_type": network.type,
        "commissaire_flannel_server": str(options.get("address", "")),
        "commissaire_etcd_endpoints": config.get("etcd_endpoints", DEFAULT_ETCD_ENDPOINTS),
        "commissaire_flannel_key": config.get("flannel_key_prefix", DEFAULT_FLANNEL_KEY_PREFIX),
        "commissaire_registry_mirror": config.get("registry_mirror", ""),
    }
