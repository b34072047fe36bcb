"""The host lifecycle: investigate a host over SSH, bootstrap it, keep watching it.

Modules: :mod:`.keys` (private run folders and key files), :mod:`.known_hosts`
(host keys, trusted on first use), :mod:`.runner` (ansible-runner), :mod:`.commands`
(per-OS command sets), :mod:`.bootstrap`, :mod:`.investigator` and :mod:`.watcher`
(the two services), :mod:`.beat` (the watcher's single beat scheduler). Playbooks,
command sets and templates ship as data files beside them.
"""
