"""A bounded map in Redis: entries expire after a TTL, and past `max_entries` the least recently used go first.

Values live under ``<prefix>:<key>`` with Redis's own expiry; a sorted set ``<prefix>:index`` ranks the keys by last
use so the map keeps its size across every worker. A read is one round trip (GET with the rank update
pipelined), a write one script call.
"""

from __future__ import annotations

import time

from .link import RedisLink

# KEYS: value key, index key. ARGV: value, ttl ms (0 = none), now, max entries, prefix, member.
_PUT = """
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[6])
if tonumber(ARGV[2]) > 0 then  -- unused for longer than the TTL: certainly expired
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[3]) - tonumber(ARGV[2]) / 1000)
end
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if excess > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, excess - 1)
  for _, member in ipairs(old) do redis.call('DEL', ARGV[5] .. ':' .. member) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, excess - 1)
end
return excess
"""


class RedisLRU:
    """`get` / `put` / `delete` of bytes; an unreachable Redis reads as a miss and drops writes (logged once)."""

    def __init__(self, link: RedisLink, prefix: str, max_entries: int, ttl: float | None = None):
        self.link = link
        self.prefix = prefix
        self.max_entries = max_entries
        self.ttl_ms = int(ttl * 1000) if ttl else 0
        self._index = prefix + ":index"
        self._put = link.client.register_script(_PUT)

    def get(self, key: str) -> bytes | None:
        def read(client):
            pipe = client.pipeline(transaction=False)
            pipe.get(f"{self.prefix}:{key}")
            pipe.zadd(self._index, {key: time.time()}, xx=True)
            return pipe.execute()[0]

        return self.link.run(read, None)

    def put(self, key: str, value: bytes | str) -> None:
        self.link.run(lambda client: self._put(keys=[f"{self.prefix}:{key}", self._index],
                                               args=[value, self.ttl_ms, time.time(), self.max_entries, self.prefix,
                                                     key], client=client), None)

    def delete(self, key: str) -> bool:
        def remove(client):
            pipe = client.pipeline(transaction=False)
            pipe.delete(f"{self.prefix}:{key}")
            pipe.zrem(self._index, key)
            return bool(pipe.execute()[0])

        return self.link.run(remove, False)

    def __len__(self) -> int:
        return int(self.link.run(lambda client: client.zcard(self._index), 0))
