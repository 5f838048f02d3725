"""MCP servers added or removed at runtime, shared through Redis so that every worker and instance applies them.

A change is written to a hash (server name → the admin entry, or a tombstone) with a version counter, and announced
on a channel. Each worker listens on the channel and also reads the version every POLL_SECONDS, so a message lost
while Redis was away is caught up, and brings its own pool in line with the hash.
"""

from __future__ import annotations

import json
import threading
import uuid

import redis
from loguru import logger

from ..errors import SharedStateUnavailable
from ..mcp.errors import MCPError
from ..store.link import RedisLink

CHANNEL = "llamagate:mcp:changes"
ENTRIES = "llamagate:mcp:servers"
VERSION = "llamagate:mcp:version"
REMOVED = "null"  # the tombstone of a removed server
POLL_SECONDS = 5.0


class MCPChangeFeed:
    """Publishes this worker's runtime changes and applies everyone else's to `runtime`'s pool."""

    def __init__(self, link: RedisLink, runtime, poll: float = POLL_SECONDS):
        self.link = link
        self.runtime = runtime
        self.poll = poll
        self._applied: dict[str, str] = {}  # name → the entry (or tombstone) this worker's pool reflects
        self._version: bytes | None = None
        self._lock = threading.Lock()  # one sync at a time
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender = uuid.uuid4().hex  # tells this worker's own announcements apart

    def publish(self, name: str, entry: dict | None) -> None:
        """Record that `name` was added as `entry` (None: removed); call just before making the change locally.

        :raises SharedStateUnavailable: Redis cannot be reached, so the change is refused rather than made in one
            worker only.
        """
        value = REMOVED if entry is None else json.dumps(entry, sort_keys=True)
        with self._lock:
            before = self._applied.get(name)
            self._applied[name] = value  # so this worker's own watcher does not apply it a second time
        try:
            self._send(lambda pipe: (pipe.hset(ENTRIES, name, value), pipe.incr(VERSION), pipe.publish(CHANNEL, "")))
        except SharedStateUnavailable:
            with self._lock:
                if before is None:
                    del self._applied[name]
                else:
                    self._applied[name] = before
            raise

    def announce(self, action: str, name: str) -> None:
        """Ask every other worker to `restart` or `refresh` server `name` too (an action, not kept)."""
        self._send(lambda pipe: pipe.publish(CHANNEL, f"{action} {name} {self._sender}"))

    def _send(self, fill) -> None:
        try:
            pipe = self.link.client.pipeline()
            fill(pipe)
            pipe.execute()
        except redis.RedisError as err:
            self.link.failed(err)
            raise SharedStateUnavailable("MCP server changes are shared through Redis, which is unreachable right "
                                         "now; retry once it is back.", headers={"Retry-After": "5"}) from None

    def start(self) -> None:
        self.sync()
        self._thread = threading.Thread(target=self._watch, name="mcp-changes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=self.poll + 1)

    def sync(self) -> None:
        """Apply every recorded change this worker has not applied yet (once per new version)."""
        with self._lock:
            version = self.link.run(lambda client: client.get(VERSION), None)
            if version is None or version == self._version:
                return
            entries = self.link.run(lambda client: client.hgetall(ENTRIES), None)
            if entries is None:
                return
            for name, value in sorted(entries.items()):
                self._apply(name.decode(), value.decode())
            self._version = version

    def _apply(self, name: str, value: str) -> None:
        if self._applied.get(name) == value:
            return
        self._applied[name] = value
        log = logger.bind(mcp_server=name)
        try:
            pool = self.runtime.pool
            if pool is not None and name in pool.names():
                pool.remove_server(name)
            if value != REMOVED:
                cfg = self.runtime.server_from_entry(json.loads(value))
                self.runtime.ensure_pool().add_server(cfg)
            log.info("MCP server {} {} by another worker", name, "removed" if value == REMOVED else "added")
        except MCPError as err:
            log.warning("MCP change from another worker not applied: {}", err)
        except Exception:  # an entry this worker refuses (its settings differ) must not stop the feed
            log.exception("MCP change from another worker not applied")

    def _act(self, data: str) -> None:
        action, _, rest = data.partition(" ")
        name, _, sender = rest.rpartition(" ")
        pool = self.runtime.pool
        if sender == self._sender or pool is None or name not in pool.names() or action not in ("restart", "refresh"):
            return
        try:
            getattr(pool, action)(name)
        except MCPError as err:
            logger.bind(mcp_server=name).warning("MCP {} asked by another worker failed: {}", action, err)

    def _watch(self) -> None:
        while not self._stopped.is_set():
            pubsub = None
            try:
                pubsub = self.link.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=self.poll)
                    if message and message.get("data"):
                        self._act(message["data"].decode())
                    self.sync()
            except redis.RedisError as err:
                self.link.failed(err)
                self._stopped.wait(1.0)
            finally:
                if pubsub is not None:
                    pubsub.close()
