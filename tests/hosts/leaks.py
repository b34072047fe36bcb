"""Looking for a private key where it must never be: logs, Redis, results, files on disk.

Every key the tests generate is remembered (:data:`.sshd.GENERATED_KEYS`), so the
package's final check looks for all of them, whichever path used them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from commissaire_tasks.testing import RedisServer, WorkerProcess

from .sshd import GENERATED_KEYS

#: Files bigger than this are not read (logs and artifacts are far smaller).
MAX_FILE_BYTES = 20_000_000


def assert_key_nowhere(
    key_file: Path,
    key_dir: Path,
    redis_server: RedisServer,
    workers: Mapping[str, WorkerProcess],
    *results: Any,
) -> None:
    """No run folder is left, and the key is in no worker log, Redis value or result."""
    assert sorted(key_dir.glob("run-*")) == []
    places = {name: worker.log() for name, worker in workers.items()}
    places["results"] = json.dumps(results)
    places["redis"] = everything_in(redis_server)
    assert_absent(GENERATED_KEYS[key_file], places)


def assert_no_key_anywhere(
    redis_server: RedisServer, folders: Iterable[Path], key_dir: Path
) -> None:
    """Every generated key is absent from Redis and every file under ``folders``.

    The generated key files themselves (and their public halves) are skipped.
    """
    assert sorted(key_dir.glob("run-*")) == []
    texts = [text for texts in GENERATED_KEYS.values() for text in texts]
    assert_absent(texts, {"redis": everything_in(redis_server)})
    own = {path for key in GENERATED_KEYS for path in (key, Path(f"{key}.pub"))}
    for folder in folders:
        for path in _files(folder):
            if path not in own:
                assert_absent(texts, {str(path): path.read_bytes().decode(errors="replace")})


def assert_absent(texts: Iterable[str], places: Mapping[str, str]) -> None:
    for name, content in places.items():
        for text in texts:
            assert text not in content, f"a private key is in {name}"


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink() and path.stat().st_size <= MAX_FILE_BYTES
    ]


def everything_in(redis_server: RedisServer) -> str:
    """Every key and value in Redis, with queued messages' base64 bodies decoded too."""
    client = redis_server.client()
    values: list[Any] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values.append(client.get(key) or b"")
        elif kind == b"hash":
            values += [f for pair in client.hgetall(key).items() for f in pair]
        elif kind in (b"list", b"set", b"zset"):
            members = _members(client, key, kind)
            values += [*members, *(_message_body(m) for m in members)]
        values.append(key)
    return "\n".join(v.decode(errors="replace") for v in values)


def _members(client: Any, key: bytes, kind: bytes) -> list[Any]:
    if kind == b"list":
        return list(client.lrange(key, 0, -1))
    if kind == b"set":
        return list(client.smembers(key))
    return list(client.zrange(key, 0, -1))


def _message_body(member: Any) -> bytes:
    try:
        return base64.b64decode(json.loads(member)["body"])
    except (ValueError, KeyError, TypeError):
        return b""
