"""Run-time state on Redis: the same owners as in memory, shared by every replica.

``mockserver serve --state redis://...`` keeps what clients created, the journal, the scenario
selection, client bindings, ``times`` counters and run-time scenarios here, so any number of replicas answer as
one mock. Each owner has the interface of its in-memory twin (:class:`RedisStore` is a
:class:`~mockserver.state.store.ResourceStore`, :class:`RedisLedger` a
:class:`~mockserver.state.book.Ledger`); the code above them has one path.

Every change is one Lua script: Redis runs a script alone, so a change that touches several
keys (a put that evicts the oldest resource, a ``times`` counter taken only while below its
limit) is never seen half done, by any replica.

Keys, for a prefix ``P`` (one per mock, so tests and replicas of other mocks can share a server)
and the current generation ``G``::

    P:gen                  the generation: moves on at every reset
    P:gG:seq               creation counter (the scores below)
    P:gG:order             zset tenant+collection+key -> seq: every resource, oldest first
    P:gG:tenants           zset tenant -> seq of its arrival
    P:gG:tcount            hash tenant -> resources it holds (a tenant vanishes at 0)
    P:gG:dropped           resources evicted
    P:gG:i:TC              zset key -> seq: one tenant's collection in creation order
    P:gG:b:TC              hash key -> body (JSON)
    P:gG:s:TCkey           hash name -> value (JSON): a resource's write-only values
    P:gG:journal           stream of journal entries (JSON), trimmed exactly at the limit
    P:gG:jdropped          journal entries trimmed
    P:gG:times             hash scenario+client+rule -> uses
    P:gG:answers           hash scenario+rule -> times it answered, whoever chose it
    P:gG:active            the server-wide scenario: "s" + name, or "n" for none
    P:gG:bind              hash kind:sha256(credential) -> scenario
    P:gG:scen              hash name -> run-time scenario (JSON)
    P:gG:sver              version of the run-time scenarios (from P:sseq: never repeats)

``TC`` is the tenant and collection each written as ``length:text``, so no tenant, collection
or key can spell another's key; a credential is stored only as its SHA-256.

Reset is a barrier across replicas: every script reads ``G`` itself, in the same atomic step
as its work, so :meth:`RedisState.reset` is a single INCR after which no replica can read or
change anything of the old generation, and a request that raced it leaves its trace in the old
generation, where nothing looks. The old keys are then deleted (SCAN + UNLINK); that need not
be atomic, as nothing reads them, and each reset sweeps every older generation, so a late
write into one is swept by the next. Replicas learn of a reset by reading :meth:`generation`.

A lost server costs a bounded wait, never a hang: sockets time out, a failed command is retried
a few times with backoff, and every operation has an overall deadline; then it raises
:class:`StateUnavailable` (the server answers 503). The client reconnects by itself, and
scripts are loaded again, once the server is back. A command whose answer was lost may have
run; a retry runs it again, so a ``times`` use can be spent by a request that then answered 503.

Standalone Redis (or Valkey) 6.2 or later: scripts reach keys they compute, as a cluster
would not allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import re
from typing import Any, AsyncIterator, Sequence
from urllib.parse import parse_qsl, unquote, urlencode

import redis.exceptions as rexc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from .. import jsoncodec
from . import StateUnavailable
from .book import client_of
from .store import Forgotten, Stored, page_of, sort_key

__all__ = [
    "StateUnavailable", "RedisState", "RedisStore", "RedisJournal", "RedisLedger", "RedisDeliveryLines",
    "connect", "open_state", "redacted",
]

CONNECT_TIMEOUT = 1.0  # s to open a connection
SOCKET_TIMEOUT = None  # a stalled answer is bounded by DEADLINE: a socket timeout would cost a timer per command
RETRIES = 2
DEADLINE = 4.0  # s for a whole operation, retries included
MAX_CONNECTIONS = 64  # per replica; more concurrent operations wait their turn (within the deadline)
SCHEMES = ("redis", "rediss")
_SWEEP_BATCH = 500


# ---------------------------------------------------------------- URLs and connections


def _userinfo(url: str) -> tuple[str, str | None, str]:
    """(scheme, user[:password] or None, the rest). The userinfo ends at the last "@" before any
    "?": a password with an unescaped "/" or "#" still counts as one, never as a path."""
    scheme, _, rest = url.partition("://")
    at = rest.rfind("@", 0, rest.find("?") if "?" in rest else len(rest))
    if at == -1:
        return scheme, None, rest
    return scheme, rest[:at], rest[at + 1:]


def redacted(url: str) -> str:
    """The URL without its password (in the userinfo or a ``password=`` query option)."""
    if "://" not in url:
        return "<not a URL>"
    scheme, userinfo, rest = _userinfo(url)
    user = userinfo.partition(":")[0] if userinfo is not None else ""
    before, qmark, query = rest.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() != "password"]
        rest = before + (("?" + urlencode(kept)) if kept else "") + hash_ + fragment
    return f"{scheme}://{user + '@' if user else ''}{rest}"


def _password(url: str) -> list[str]:
    """Every spelling of the URL's password(s) that could turn up in a message."""
    _, userinfo, rest = _userinfo(url)
    found = [userinfo.partition(":")[2]] if userinfo else []
    query = rest.partition("?")[2].partition("#")[0]
    found += [v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() == "password"]
    return [s for raw in found if raw for s in {raw, unquote(raw)}]


def connect(url: str, *, connect_timeout: float = CONNECT_TIMEOUT, socket_timeout: float = SOCKET_TIMEOUT,
            retries: int = RETRIES, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client for a ``redis://`` or ``rediss://`` URL (``[user[:password]@]host[:port][/db]``).

    Opens nothing yet: :func:`open_state` checks that the server answers. ValueError, naming
    the URL without its password, for any other URL. A burst of operations beyond
    ``max_connections`` waits for a connection instead of failing.
    """
    scheme = url.partition("://")[0].lower()
    if scheme not in SCHEMES:
        raise ValueError(f"the state store must be a redis:// or rediss:// URL, not {redacted(url)}")
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=DEADLINE,
            socket_connect_timeout=connect_timeout,
            socket_timeout=socket_timeout,
            retry=Retry(ExponentialBackoff(cap=0.25, base=0.05), retries),
            retry_on_error=[rexc.ConnectionError, rexc.TimeoutError],
            # A header value the mock read with surrogateescape goes back to its own bytes.
            encoding_errors="surrogateescape",
            decode_responses=False,
        )
    except (ValueError, TypeError):
        raise ValueError(f"not a valid Redis URL: {redacted(url)}") from None
    return Redis.from_pool(pool)


async def open_state(url: str, prefix: str = "mockserver", *, deadline: float = DEADLINE,
                     **options: Any) -> RedisState:
    """Connect and check the server answers; StateUnavailable (one line, no password) if not."""
    client = connect(url, **options)
    state = RedisState(client, url, prefix, deadline=deadline)
    try:
        await state.ping()
    except StateUnavailable as exc:
        await client.aclose()
        raise StateUnavailable(f"cannot reach the state store at {state.where}: {exc.reason}", exc.reason) from None
    return state


# ---------------------------------------------------------------- scripts

# Every script starts here: ARGV[1] is the prefix, KEYS[1] the generation key.
_PREAMBLE = """
local P = ARGV[1]
local B = P .. 'g' .. (redis.call('GET', KEYS[1]) or '0') .. ':'
local function pack(x) return #x .. ':' .. x end
local function field(s, i)
  local colon = string.find(s, ':', i, true)
  local n = tonumber(string.sub(s, i, colon - 1))
  return string.sub(s, colon + 1, colon + n), colon + n + 1
end
local function split3(s)
  local t, i = field(s, 1)
  local c, j = field(s, i)
  return t, c, string.sub(s, j)
end
local function hmget_all(key, fields)
  -- unpack() of more than a few thousand values overflows Lua's stack: in slices
  local out = {}
  for first = 1, #fields, 1000 do
    local part = redis.call('HMGET', key, unpack(fields, first, math.min(first + 999, #fields)))
    for _, v in ipairs(part) do out[#out + 1] = v end
  end
  return out
end
local function clear_times(scenario, client)
  local key = B .. 'times'
  if not scenario and not client then redis.call('DEL', key) return end
  for _, f in ipairs(redis.call('HKEYS', key)) do
    local s, i = field(f, 1)
    local c = field(f, i)
    if (not scenario or s == scenario) and (not client or c == client) then redis.call('HDEL', key, f) end
  end
end
local function clear_answers(scenario)
  local key = B .. 'answers'
  if not scenario then redis.call('DEL', key) return end
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if field(f, 1) == scenario then redis.call('HDEL', key, f) end
  end
end
local function runtime_changed()
  redis.call('SET', B .. 'sver', redis.call('INCR', P .. 'sseq'))
end
local function take_head(W, me, event)
  -- The head leaves a webhook's queue only for the lease's holder, and only if it is that event.
  if redis.call('GET', B .. 'l:' .. W) ~= me then return false end
  if redis.call('LINDEX', B .. 'q:' .. W, 0) ~= event then return false end
  redis.call('LPOP', B .. 'q:' .. W)
  return true
end
local function remove(t, c, k)
  local tc = pack(t) .. pack(c)
  local bodies = B .. 'b:' .. tc
  local body = redis.call('HGET', bodies, k)
  if not body then return false end
  local skey = B .. 's:' .. tc .. k
  local secrets = redis.call('HGETALL', skey)
  redis.call('DEL', skey)
  redis.call('HDEL', bodies, k)
  redis.call('ZREM', B .. 'i:' .. tc, k)
  redis.call('ZREM', B .. 'order', tc .. k)
  if redis.call('HINCRBY', B .. 'tcount', t, -1) <= 0 then
    redis.call('HDEL', B .. 'tcount', t)
    redis.call('ZREM', B .. 'tenants', t)
  end
  return {body, secrets}
end
"""

_SCRIPTS = {
    # ARGV: P, tenant, collection, key, body, limit, secret name, secret value, ...
    "put": """
local t, c, k, limit = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[6])
local tc = pack(t) .. pack(c)
local added = redis.call('HSET', B .. 'b:' .. tc, k, ARGV[5])
for i = 7, #ARGV, 2 do redis.call('HSET', B .. 's:' .. tc .. k, ARGV[i], ARGV[i + 1]) end
local evicted = {}
if added == 1 then
  local seq = redis.call('INCR', B .. 'seq')
  redis.call('ZADD', B .. 'i:' .. tc, seq, k)
  redis.call('ZADD', B .. 'order', seq, tc .. k)
  if redis.call('HINCRBY', B .. 'tcount', t, 1) == 1 then redis.call('ZADD', B .. 'tenants', seq, t) end
  while redis.call('ZCARD', B .. 'order') > limit do
    local ot, oc, ok = split3(redis.call('ZRANGE', B .. 'order', 0, 0)[1])
    remove(ot, oc, ok)
    redis.call('INCR', B .. 'dropped')
    evicted[#evicted + 1] = ot
    evicted[#evicted + 1] = oc
    evicted[#evicted + 1] = ok
  end
end
return {tonumber(redis.call('GET', B .. 'dropped') or '0'), evicted}
""",
    # ARGV: P, tenant, collection, key
    "get": """
local tc = pack(ARGV[2]) .. pack(ARGV[3])
local body = redis.call('HGET', B .. 'b:' .. tc, ARGV[4])
if not body then return false end
return {body, redis.call('HGETALL', B .. 's:' .. tc .. ARGV[4])}
""",
    "delete": "return remove(ARGV[2], ARGV[3], ARGV[4])",
    # ARGV: P, tenant, collection, page, limit, descending, all ('1' or '0')
    "page": """
local tc = pack(ARGV[2]) .. pack(ARGV[3])
local items = B .. 'i:' .. tc
local n = redis.call('ZCARD', items)
local keys
if ARGV[7] == '1' then
  keys = redis.call('ZRANGE', items, 0, -1)
else
  local limit = tonumber(ARGV[5])
  local start = (tonumber(ARGV[4]) - 1) * limit
  if start >= n then return {n, {}} end
  local stop = math.min(start + limit - 1, n - 1)
  if ARGV[6] == '1' then keys = redis.call('ZREVRANGE', items, start, stop)
  else keys = redis.call('ZRANGE', items, start, stop) end
end
if #keys == 0 then return {n, {}} end
return {n, hmget_all(B .. 'b:' .. tc, keys)}
""",
    # ARGV: P, collection
    "everywhere": """
local out = {}
for _, t in ipairs(redis.call('ZRANGE', B .. 'tenants', 0, -1)) do
  local tc = pack(t) .. pack(ARGV[2])
  local keys = redis.call('ZRANGE', B .. 'i:' .. tc, 0, -1)
  if #keys > 0 then
    local bodies = hmget_all(B .. 'b:' .. tc, keys)
    for i, k in ipairs(keys) do out[#out + 1] = {t, bodies[i], redis.call('HGETALL', B .. 's:' .. tc .. k)} end
  end
end
return out
""",
    "clear_store": """
local seen = {}
for _, m in ipairs(redis.call('ZRANGE', B .. 'order', 0, -1)) do
  local t, c, k = split3(m)
  local tc = pack(t) .. pack(c)
  redis.call('DEL', B .. 's:' .. tc .. k)
  if not seen[tc] then
    seen[tc] = true
    redis.call('DEL', B .. 'b:' .. tc, B .. 'i:' .. tc)
  end
end
redis.call('DEL', B .. 'order', B .. 'tenants', B .. 'tcount', B .. 'dropped')
return 0
""",
    "tenants": "return redis.call('ZCARD', B .. 'tenants')",
    # ARGV: P, limit, entry
    "append": """
local key = B .. 'journal'
local before = redis.call('XLEN', key)
redis.call('XADD', key, 'MAXLEN', ARGV[2], '*', 'e', ARGV[3])
local trimmed = before + 1 - redis.call('XLEN', key)
if trimmed > 0 then redis.call('INCRBY', B .. 'jdropped', trimmed) end
return trimmed
""",
    "read_journal": """
return {tonumber(redis.call('GET', B .. 'jdropped') or '0'), redis.call('XRANGE', B .. 'journal', '-', '+')}
""",
    "journal_length": "return redis.call('XLEN', B .. 'journal')",
    "clear_journal": """
local cleared = redis.call('XLEN', B .. 'journal')
redis.call('DEL', B .. 'journal', B .. 'jdropped')
return cleared
""",
    # ARGV: P, counter field, times (-1: no limit), answers field
    "take": """
local key = B .. 'times'
local limit = tonumber(ARGV[3])
if limit >= 0 and tonumber(redis.call('HGET', key, ARGV[2]) or '0') >= limit then return 0 end
redis.call('HINCRBY', key, ARGV[2], 1)
redis.call('HINCRBY', B .. 'answers', ARGV[4], 1)
return 1
""",
    # ARGV: P, counter field, answers field
    "refund": """
local refunded = 0
for i, key in ipairs({B .. 'times', B .. 'answers'}) do
  if tonumber(redis.call('HGET', key, ARGV[i + 1]) or '0') > 0 then
    redis.call('HINCRBY', key, ARGV[i + 1], -1)
    refunded = 1
  end
end
return refunded
""",
    "counters": "return redis.call('HGETALL', B .. 'times')",
    "answers": "return redis.call('HGETALL', B .. 'answers')",
    # ARGV: P, scenario, answers too ('1' or '0')
    "restart": """
clear_times(ARGV[2], false)
if ARGV[3] == '1' then clear_answers(ARGV[2]) end
return 0
""",
    # ARGV: P, name, document
    "put_scenario": "redis.call('HSET', B .. 'scen', ARGV[2], ARGV[3]) runtime_changed() return 0",
    "drop_scenario": "redis.call('HDEL', B .. 'scen', ARGV[2]) runtime_changed() return 0",
    "runtime": "return {tonumber(redis.call('GET', B .. 'sver') or '0'), redis.call('HGETALL', B .. 'scen')}",
    # ARGV: P, binding field, ...
    "lookup": """
local out = {redis.call('GET', B .. 'active'), tonumber(redis.call('GET', B .. 'sver') or '0')}
for i = 2, #ARGV do out[#out + 1] = redis.call('HGET', B .. 'bind', ARGV[i]) end
return out
""",
    "set_active": "redis.call('SET', B .. 'active', ARGV[2]) return 0",
    # ARGV: P, binding field, scenario ('' with unbind), unbind ('1' or '0'), client
    "bind": """
if ARGV[4] == '1' then redis.call('HDEL', B .. 'bind', ARGV[2])
else redis.call('HSET', B .. 'bind', ARGV[2], ARGV[3]) end
clear_times(false, ARGV[5])
return 0
""",
    "bindings": "return redis.call('HGETALL', B .. 'bind')",
    # ARGV: P, scenario
    "forget": """
local was = 0
if redis.call('GET', B .. 'active') == 's' .. ARGV[2] then
  redis.call('SET', B .. 'active', 'n')
  was = 1
end
local unbound = 0
local all = redis.call('HGETALL', B .. 'bind')
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[2] then
    redis.call('HDEL', B .. 'bind', all[i])
    unbound = unbound + 1
  end
end
clear_times(ARGV[2], false)
clear_answers(ARGV[2])
return {was, unbound}
""",
    "clear_book": """
redis.call('DEL', B .. 'active', B .. 'bind', B .. 'times', B .. 'answers', B .. 'scen')
runtime_changed()
return 0
""",
    # Deliveries. W (ARGV[2]) is a webhook: tenant and id, packed. Its line is d:W (hash: held,
    # since, count, retry_at, cause, dropped), its queue q:W (list), its lease l:W (the holder).
    # ARGV: P, W, event, queue limit
    "enqueue": """
local W = ARGV[2]
redis.call('SADD', B .. 'dhooks', W)
if redis.call('LLEN', B .. 'q:' .. W) >= tonumber(ARGV[4]) then
  return redis.call('HINCRBY', B .. 'd:' .. W, 'dropped', 1) * -1
end
redis.call('RPUSH', B .. 'q:' .. W, ARGV[3])
redis.call('SADD', B .. 'dpending', W)
return 1
""",
    # Take the lease of a line with something to send and nothing held. ARGV: P, W, me, ttl ms
    "claim": """
local W = ARGV[2]
if redis.call('HEXISTS', B .. 'd:' .. W, 'held') == 1 or redis.call('LLEN', B .. 'q:' .. W) == 0 then
  redis.call('SREM', B .. 'dpending', W)
  return 0
end
local lease = B .. 'l:' .. W
local holder = redis.call('GET', lease)
if holder and holder ~= ARGV[3] then return 0 end
redis.call('SET', lease, ARGV[3], 'PX', ARGV[4])
return 1
""",
    # The event at the head of the line, while the lease is mine (renewed); false otherwise.
    # ARGV: P, W, me, ttl ms
    "head": """
local W = ARGV[2]
local lease = B .. 'l:' .. W
if redis.call('GET', lease) ~= ARGV[3] then return false end
if redis.call('HEXISTS', B .. 'd:' .. W, 'held') == 1 then return false end
local event = redis.call('LINDEX', B .. 'q:' .. W, 0)
if not event then
  redis.call('SREM', B .. 'dpending', W)
  return false
end
redis.call('PEXPIRE', lease, ARGV[4])
return event
""",
    # ARGV: P, W, me, ttl ms: keep the lease while a long delivery is under way; 0 if it was lost
    "renew": """
local lease = B .. 'l:' .. ARGV[2]
if redis.call('GET', lease) ~= ARGV[3] then return 0 end
redis.call('PEXPIRE', lease, ARGV[4])
return 1
""",
    # The head was delivered (or dropped): it leaves the queue. ARGV: P, W, me, event
    "ack": "return take_head(ARGV[2], ARGV[3], ARGV[4]) and 1 or 0",
    # The head failed every attempt: it moves into the penalty box, in one step.
    # ARGV: P, W, me, event, since, count, retry_at, cause
    "box": """
local W = ARGV[2]
if not take_head(W, ARGV[3], ARGV[4]) then return 0 end
redis.call('HSET', B .. 'd:' .. W, 'held', ARGV[4], 'since', ARGV[5], 'count', ARGV[6], 'retry_at', ARGV[7],
           'cause', ARGV[8])
redis.call('SREM', B .. 'dpending', W)
return 1
""",
    # ARGV: P, W, me
    "let_go": """
if redis.call('GET', B .. 'l:' .. ARGV[2]) == ARGV[3] then redis.call('DEL', B .. 'l:' .. ARGV[2]) end
return 0
""",
    # One release at a time, whichever replica: ARGV: P, W, ttl ms. 1: this caller sends; 0: another
    # is sending; -1: nothing is held.
    "start_release": """
local W = ARGV[2]
if redis.call('HEXISTS', B .. 'd:' .. W, 'held') == 0 then return -1 end
if not redis.call('SET', B .. 'r:' .. W, '1', 'NX', 'PX', ARGV[3]) then return 0 end
return 1
""",
    # ARGV: P, W, held event, ok ('1' or '0'), count, retry_at, cause
    "end_release": """
local W = ARGV[2]
redis.call('DEL', B .. 'r:' .. W)
if redis.call('HGET', B .. 'd:' .. W, 'held') ~= ARGV[3] then return 0 end
if ARGV[4] == '1' then
  redis.call('HDEL', B .. 'd:' .. W, 'held', 'since', 'count', 'retry_at', 'cause')
  if redis.call('LLEN', B .. 'q:' .. W) > 0 then redis.call('SADD', B .. 'dpending', W) end
else
  redis.call('HSET', B .. 'd:' .. W, 'count', ARGV[5], 'retry_at', ARGV[6], 'cause', ARGV[7])
end
return 1
""",
    "pending": "return redis.call('SMEMBERS', B .. 'dpending')",
    # ARGV: P, W...: each line as a flat hash, its queue's length, and whether a lease or a release holds it
    "lines": """
local out = {}
local hooks = {}
if #ARGV > 1 then for i = 2, #ARGV do hooks[#hooks + 1] = ARGV[i] end
else hooks = redis.call('SMEMBERS', B .. 'dhooks') end
for _, W in ipairs(hooks) do
  local busy = redis.call('EXISTS', B .. 'l:' .. W) + redis.call('EXISTS', B .. 'r:' .. W)
  out[#out + 1] = {W, redis.call('HGETALL', B .. 'd:' .. W), redis.call('LLEN', B .. 'q:' .. W), busy}
end
return out
""",
    # A webhook is gone: its line ends with it. ARGV: P, W
    "end_line": """
local W = ARGV[2]
redis.call('DEL', B .. 'd:' .. W, B .. 'q:' .. W, B .. 'l:' .. W, B .. 'r:' .. W)
redis.call('SREM', B .. 'dhooks', W)
redis.call('SREM', B .. 'dpending', W)
return 0
""",
    # ARGV: P, limit, attempt (JSON)
    "attempt": "redis.call('XADD', B .. 'attempts', 'MAXLEN', ARGV[2], '*', 'e', ARGV[3]) return 0",
    "attempts": "return redis.call('XRANGE', B .. 'attempts', '-', '+')",
}

_TRANSIENT = ("MISCONF", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "LOADING")


def _is_unavailable(exc: BaseException) -> bool:
    """Errors that say the store cannot serve now (as opposed to a bug in a command)."""
    if isinstance(exc, (rexc.ConnectionError, rexc.TimeoutError, rexc.ReadOnlyError, rexc.OutOfMemoryError,
                        rexc.NoPermissionError, OSError)):
        return True
    return isinstance(exc, rexc.ResponseError) and str(exc).startswith(_TRANSIENT)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def _secrets(flat: Sequence[bytes]) -> dict[str, Any]:
    return {_text(flat[i]): jsoncodec.loads(flat[i + 1]) for i in range(0, len(flat), 2)}


def _pack(text: str) -> bytes:
    """``length:text`` as the scripts' pack() writes it (length in bytes)."""
    raw = text.encode("utf-8", "surrogateescape")
    return str(len(raw)).encode() + b":" + raw


# ---------------------------------------------------------------- the owners


class RedisState:
    """One mock's state on one Redis: the connection, the key prefix, the generation, and a
    factory for each owner. ``where`` is the URL without its password, for messages."""

    def __init__(self, client: Redis, url: str = "redis://", prefix: str = "mockserver", *,
                 deadline: float = DEADLINE) -> None:
        if not prefix:
            raise ValueError("the key prefix must not be empty")
        self.client = client
        self.where = redacted(url)
        self.prefix = prefix + ":"
        self.deadline = deadline
        self.passwords = tuple(_password(url))  # kept out of messages here; scrubbed from logs by the mock
        self._gen = self.prefix + "gen"
        self._scripts = {name: client.register_script(_PREAMBLE + body) for name, body in _SCRIPTS.items()}
        self._waiting: list[tuple[Any, tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sending: set[asyncio.Task[None]] = set()

    def store(self, limit: int = 10_000) -> RedisStore:
        return RedisStore(self, limit)

    def journal(self, limit: int = 10_000) -> RedisJournal:
        return RedisJournal(self, limit)

    def ledger(self) -> RedisLedger:
        return RedisLedger(self)

    def delivery_lines(self, me: str, attempts_limit: int = 10_000) -> RedisDeliveryLines:
        return RedisDeliveryLines(self, me, attempts_limit)

    async def ping(self) -> None:
        await self._guard(self.client.ping())

    async def generation(self) -> int:
        """The current generation: it moves on at every reset, whichever replica asked for it."""
        return int(await self._guard(self.client.get(self._gen)) or 0)

    async def reset(self) -> int:
        """Every owner back to empty, for every replica, in one atomic step; returns the new
        generation. The old generations' keys are deleted afterwards (best effort)."""
        generation = int(await self._guard(self.client.incr(self._gen)))
        try:
            await self.sweep(generation)
        except StateUnavailable:
            pass  # the next reset sweeps what this one could not
        return generation

    async def sweep(self, current: int | None = None) -> int:
        """Delete the keys of generations older than ``current`` (default: the current one);
        returns how many were deleted."""
        if current is None:
            current = await self.generation()
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + "g*"
        mine = re.compile(re.escape(self.prefix.encode()) + rb"g(\d+):")
        deleted, cursor = 0, 0
        while True:
            cursor, keys = await self._guard(self.client.scan(cursor, match=pattern, count=_SWEEP_BATCH))
            old = [k for k in keys if (m := mine.match(k)) is not None and int(m.group(1)) < current]
            if old:
                deleted += int(await self._guard(self.client.unlink(*old)))
            if not cursor:
                return deleted

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self, script: str, *args: Any) -> Any:
        """Run one of the scripts with the prefix and these arguments.

        Every script asked for in the same turn of the event loop (the requests that arrived
        together) goes to Redis in one pipeline: one write and one read for all of them, where
        each alone would cost a round trip of its own. Each script is still its own atomic step.
        """
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append((self._scripts[script], args, answer))
        if len(self._waiting) == 1:
            asyncio.get_running_loop().call_soon(self._flush)
        return await answer

    def _flush(self) -> None:
        batch, self._waiting = self._waiting, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Any, tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        keys = (self._gen,)
        try:
            async with self._bounded():
                pipe = self.client.pipeline(transaction=False)
                for script, args, _ in batch:
                    pipe.evalsha(script.sha, 1, *keys, self.prefix, *args)
                results = await pipe.execute(raise_on_error=False)
                for i, result in enumerate(results):
                    if isinstance(result, rexc.NoScriptError):  # a restarted Redis forgot them
                        script, args, _ = batch[i]
                        results[i] = await script(keys=list(keys), args=[self.prefix, *args])
        except BaseException as exc:
            for _, _, answer in batch:
                if not answer.done():
                    answer.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, _, answer), result in zip(batch, results):
            if answer.done():
                continue
            if isinstance(result, Exception):
                answer.set_exception(self._unavailable(self._reason(result)) if _is_unavailable(result) else result)
            else:
                answer.set_result(result)

    async def _guard(self, call: Any) -> Any:
        async with self._bounded():
            return await call

    @contextlib.asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        """Within the deadline, and a lost or unready store as StateUnavailable (no password)."""
        try:
            async with asyncio.timeout(self.deadline):
                yield
        except TimeoutError:
            raise self._unavailable(f"no answer within {self.deadline:g} s") from None
        except (rexc.RedisError, OSError) as exc:
            if not _is_unavailable(exc):
                raise
            raise self._unavailable(self._reason(exc)) from None

    def _reason(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        for secret in self.passwords:
            text = text.replace(secret, "[redacted]")
        return text

    def _unavailable(self, reason: str) -> StateUnavailable:
        return StateUnavailable(f"the state store at {self.where} is unavailable: {reason}", reason)


class RedisStore:
    """:class:`~mockserver.state.store.ResourceStore` on Redis, with the rules of
    :class:`~mockserver.state.store.MemoryStore`: bounded at ``limit`` resources in all (the
    oldest evicted), tenants vanish when empty, ``on_forget`` told of deletes and evictions.

    The listeners are this replica's: they hear of what this replica deleted or evicted.
    ``dropped`` is the count as this replica last saw it.
    """

    def __init__(self, state: RedisState, limit: int = 10_000) -> None:
        self.state = state
        self.limit = max(1, limit)
        self.dropped = 0
        self._listeners: list[Forgotten] = []

    def on_forget(self, callback: Forgotten) -> None:
        """Call ``callback(tenant, collection, key)`` whenever this replica deletes or evicts a resource."""
        self._listeners.append(callback)

    async def put(self, tenant: str, collection: str, key: str, body: dict[str, Any],
                  secrets: dict[str, Any] | None = None) -> None:
        pairs: list[Any] = []
        for name, value in (secrets or {}).items():
            pairs += [name, jsoncodec.dumps(value)]
        dropped, evicted = await self.state.run("put", tenant, collection, key, jsoncodec.dumps(body), self.limit,
                                                *pairs)
        self.dropped = int(dropped)
        for i in range(0, len(evicted), 3):
            self._forgot(_text(evicted[i]), _text(evicted[i + 1]), _text(evicted[i + 2]))

    async def get(self, tenant: str, collection: str, key: str) -> Stored | None:
        found = await self.state.run("get", tenant, collection, key)
        return None if found is None else Stored(jsoncodec.loads(found[0]), _secrets(found[1]))

    async def delete(self, tenant: str, collection: str, key: str) -> Stored | None:
        found = await self.state.run("delete", tenant, collection, key)
        if found is None:
            return None
        self._forgot(tenant, collection, key)
        return Stored(jsoncodec.loads(found[0]), _secrets(found[1]))

    async def page(self, tenant: str, collection: str, number: int, limit: int, order_by: str | None = None,
                   descending: bool = False) -> tuple[list[dict[str, Any]], int]:
        """One page of a tenant's collection (pages count from 1) and the number of pages."""
        if order_by or number < 1 or limit < 1:
            # Sorted by a field (or an odd page): every body comes over, and is paged as in memory.
            _, raws = await self.state.run("page", tenant, collection, 1, 1, 0, 1)
            bodies = [jsoncodec.loads(raw) for raw in raws]
            if order_by:
                bodies.sort(key=lambda item: sort_key(item.get(order_by)), reverse=descending)
            elif descending:
                bodies.reverse()
            return page_of(bodies, number, limit)
        count, raws = await self.state.run("page", tenant, collection, number, limit, int(descending), 0)
        return [jsoncodec.loads(raw) for raw in raws], max(1, math.ceil(count / limit))

    async def everywhere(self, collection: str) -> list[tuple[str, Stored]]:
        """Every stored item of a collection with its tenant (event fan-out)."""
        found = await self.state.run("everywhere", collection)
        return [(_text(tenant), Stored(jsoncodec.loads(body), _secrets(flat))) for tenant, body, flat in found]

    async def clear(self) -> None:
        """Forget every resource (of this generation) at once; listeners are not told, as in memory."""
        await self.state.run("clear_store")
        self.dropped = 0

    async def tenants(self) -> int:
        """How many tenants hold anything (async here: it asks the server)."""
        return int(await self.state.run("tenants"))

    def _forgot(self, tenant: str, collection: str, key: str) -> None:
        for callback in self._listeners:
            callback(tenant, collection, key)


class RedisJournal:
    """The journal's entries on Redis: one stream that every replica appends to, trimmed at
    ``limit`` (exactly), read oldest first in the order the server received them.

    Entries are JSON-able dicts, stored as given: what is kept out of them (secrets) is the
    caller's to remove before :meth:`append`.
    """

    def __init__(self, state: RedisState, limit: int = 10_000) -> None:
        self.state = state
        self.limit = max(1, limit)

    async def append(self, entry: dict[str, Any]) -> None:
        await self.state.run("append", self.limit, jsoncodec.dumps(entry))

    async def read(self) -> tuple[list[dict[str, Any]], int]:
        """Every entry, oldest first, and how many were trimmed off the front, in one step."""
        dropped, rows = await self.state.run("read_journal")
        return [jsoncodec.loads(_entry(fields)) for _id, fields in rows], int(dropped)

    async def entries(self) -> list[dict[str, Any]]:
        return (await self.read())[0]

    async def length(self) -> int:
        return int(await self.state.run("journal_length"))

    async def clear(self) -> int:
        """Forget every entry; returns how many there were (counted in the same step)."""
        return int(await self.state.run("clear_journal"))


def _entry(fields: Sequence[bytes]) -> bytes:
    for i in range(0, len(fields), 2):
        if fields[i] == b"e":
            return fields[i + 1]
    raise ValueError("a journal entry without its JSON")


def _counter(scenario: str, client: str | None, rule: int | str) -> bytes:
    return _pack(scenario) + _pack(_client(client)) + str(rule).encode()


def _answers_field(scenario: str, rule: int) -> bytes:
    return _pack(scenario) + str(rule).encode()


def _client(client: str | None) -> str:
    """How a counter names its client: "" for none, "=" + name otherwise (so "" is a name too)."""
    return "" if client is None else "=" + client


def _unpack(raw: bytes, at: int = 0) -> tuple[str, int]:
    """One ``length:text`` from ``raw`` at ``at``: the text and where the next field starts."""
    colon = raw.index(b":", at)
    end = colon + 1 + int(raw[at:colon])
    return _text(raw[colon + 1:end]), end


def _sha256(credential: str) -> str:
    return hashlib.sha256(credential.encode("utf-8", "surrogatepass")).hexdigest()


def credential_digest(kind: str, credential: str) -> str:
    """How a binding names a client: its kind and the SHA-256 of its credential (never the credential)."""
    return f"{kind}:{_sha256(credential)}"


class RedisLedger:
    """The scenario book's :class:`~mockserver.state.book.Ledger` on Redis, shared by every replica.

    ``times`` counters are taken in one step with the check that a use is left, so a rule
    with ``times: N`` answers exactly N times in all, however many replicas and requests race
    for it. Bindings keep the SHA-256 of a credential and show its fingerprint. Run-time
    scenarios are kept as documents, with a version that moves on at every change; every
    lookup returns it, so a replica knows in the same round trip when to compile them again.
    Unset (after a reset) the server-wide scenario is each replica's start-up ``default``.
    """

    shared = True

    def __init__(self, state: RedisState) -> None:
        self.state = state

    async def lookup(self, credentials: Sequence[tuple[str, str]],
                     default: str | None = None) -> tuple[str | None, list[str | None], int]:
        found = await self.state.run("lookup", *(credential_digest(k, v) for k, v in credentials))
        raw = found[0]
        active = default if raw is None else (None if raw == b"n" else _text(raw[1:]))
        return active, [None if name is None else _text(name) for name in found[2:]], int(found[1])

    async def take(self, scenario: str, client: str | None, rule: int, times: int | None) -> bool:
        return bool(await self.state.run("take", _counter(scenario, client, rule), -1 if times is None else times,
                                         _answers_field(scenario, rule)))

    async def refund(self, scenario: str, client: str | None, rule: int) -> None:
        await self.state.run("refund", _counter(scenario, client, rule), _answers_field(scenario, rule))

    async def set_active(self, name: str | None) -> None:
        await self.state.run("set_active", "n" if name is None else "s" + name)

    async def bind(self, kind: str, credential: str, name: str | None) -> None:
        await self.state.run("bind", credential_digest(kind, credential), name or "", int(name is None),
                             _client(client_of(kind, credential)))

    async def bindings(self) -> list[tuple[str, str, str]]:
        flat = await self.state.run("bindings")
        out = []
        for i in range(0, len(flat), 2):
            kind, _, digest = _text(flat[i]).rpartition(":")
            out.append((kind, f"sha256:{digest[:12]}", _text(flat[i + 1])))
        return sorted(out)

    async def forget(self, name: str) -> tuple[bool, int]:
        was, unbound = await self.state.run("forget", name)
        return bool(was), int(unbound)

    async def restart(self, name: str, answers: bool = True) -> None:
        await self.state.run("restart", name, int(answers))

    async def answered(self, name: str) -> dict[int, int]:
        flat = await self.state.run("answers")
        out = {}
        for i in range(0, len(flat), 2):
            scenario, at = _unpack(flat[i])
            if scenario == name:
                out[int(flat[i][at:])] = int(flat[i + 1])
        return out

    async def counters(self) -> dict[tuple[str, str | None], dict[int, int]]:
        flat = await self.state.run("counters")
        out: dict[tuple[str, str | None], dict[int, int]] = {}
        for i in range(0, len(flat), 2):
            scenario, at = _unpack(flat[i])
            client, at = _unpack(flat[i], at)
            out.setdefault((scenario, client[1:] if client else None), {})[int(flat[i][at:])] = int(flat[i + 1])
        return out

    async def put_scenario(self, name: str, document: str) -> None:
        await self.state.run("put_scenario", name, document)

    async def drop_scenario(self, name: str) -> None:
        await self.state.run("drop_scenario", name)

    async def runtime(self) -> tuple[int, dict[str, str]]:
        version, flat = await self.state.run("runtime")
        return int(version), {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def clear(self) -> None:
        await self.state.run("clear_book")


def webhook_key(tenant: str, webhook_id: str) -> bytes:
    """How the delivery scripts name one webhook's line."""
    return _pack(tenant) + _pack(webhook_id)


def webhook_of(key: bytes) -> tuple[str, str]:
    tenant, at = _unpack(key)
    webhook_id, _ = _unpack(key, at)
    return tenant, webhook_id


class RedisDeliveryLines:
    """Every webhook's delivery line on Redis, shared by every replica: its queue of events (in
    order), the event held in the penalty box with the box's fields, what was dropped, and a
    lease naming the one replica that delivers it now. A holder that dies stops renewing its
    lease, and once it expires another replica claims the line and sends the head event again:
    deliveries are at least once, in order, one replica at a time. Events are opaque text here.
    """

    def __init__(self, state: RedisState, me: str, attempts_limit: int = 10_000) -> None:
        self.state = state
        self.me = me  # this replica, as a lease names its holder
        self.attempts_limit = max(1, attempts_limit)

    async def enqueue(self, tenant: str, webhook_id: str, event: str, limit: int) -> int:
        """1 when queued; else minus the line's dropped count (the queue was full)."""
        return int(await self.state.run("enqueue", webhook_key(tenant, webhook_id), event, limit))

    async def claim(self, key: bytes, ttl_ms: int) -> bool:
        return bool(await self.state.run("claim", key, self.me, ttl_ms))

    async def head(self, key: bytes, ttl_ms: int) -> str | None:
        raw = await self.state.run("head", key, self.me, ttl_ms)
        return None if raw is None else _text(raw)

    async def renew(self, key: bytes, ttl_ms: int) -> bool:
        return bool(await self.state.run("renew", key, self.me, ttl_ms))

    async def ack(self, key: bytes, event: str) -> bool:
        return bool(await self.state.run("ack", key, self.me, event))

    async def box(self, key: bytes, event: str, since: str, count: int, retry_at: str, cause: str) -> bool:
        return bool(await self.state.run("box", key, self.me, event, since, count, retry_at, cause))

    async def let_go(self, key: bytes) -> None:
        await self.state.run("let_go", key, self.me)

    async def start_release(self, key: bytes, ttl_ms: int) -> int:
        return int(await self.state.run("start_release", key, ttl_ms))

    async def end_release(self, key: bytes, held: str, ok: bool, count: int, retry_at: str, cause: str) -> None:
        await self.state.run("end_release", key, held, int(ok), count, retry_at, cause)

    async def pending(self) -> list[bytes]:
        return list(await self.state.run("pending"))

    async def lines(self, keys: Sequence[bytes] = ()) -> list[dict[str, Any]]:
        """Each line (all, or those of ``keys``): tenant, webhook_id, queued, dropped, busy, and the
        box's fields (held, since, count, retry_at, cause) when one is held."""
        out = []
        for key, flat, queued, busy in await self.state.run("lines", *keys):
            tenant, webhook_id = webhook_of(key)
            fields = {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}
            out.append({"tenant": tenant, "webhook_id": webhook_id, "queued": int(queued),
                        "busy": bool(busy), **fields})
        return out

    async def end_line(self, tenant: str, webhook_id: str) -> None:
        await self.state.run("end_line", webhook_key(tenant, webhook_id))

    async def record(self, attempt: dict[str, Any]) -> None:
        await self.state.run("attempt", self.attempts_limit, jsoncodec.dumps(attempt))

    async def attempts(self) -> list[dict[str, Any]]:
        return [jsoncodec.loads(_entry(fields)) for _id, fields in await self.state.run("attempts")]
