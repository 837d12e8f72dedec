"""The Redis backend of :mod:`oidc_guard.cache` (redis-py, imported only
when a :class:`RedisCache` is made).  Users import it from
``oidc_guard.cache``; see that module for the contract every backend keeps.
Its log lines are those of the ``oidc_guard.cache`` logger."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Optional, Tuple, Type
from urllib.parse import urlsplit

from ._cache_base import MAX_VALUE_BYTES, Cache, CacheUnavailable, check_entry
from .errors import ConfigurationError

__all__ = ["RedisCache", "SAFE_EVICTION_POLICY", "POLICY_RECHECK_SECONDS", "ACCEPT_EVICTING_KEYWORD"]

log = logging.getLogger("oidc_guard.cache")

# Redis's maxmemory-policy under which a key is never dropped before its
# expiry: every other policy (allkeys-*, volatile-*) evicts keys when
# maxmemory is reached, and a DPoP replay record that is evicted lets its
# proof be accepted again (RFC 9449 section 11.1).  Under noeviction a full
# Redis refuses writes instead, which the replay store turns into 503.
SAFE_EVICTION_POLICY = "noeviction"

# Seconds between two reads of the policy by one RedisCache connection: an
# operator's CONFIG SET is noticed (either way) within this time.
POLICY_RECHECK_SECONDS = 60.0

# The keyword that accepts an evicting Redis for DPoP replay records (named
# in the error that explains the risk).
ACCEPT_EVICTING_KEYWORD = "dpop_accept_evicting_redis"


def _describe_url(url: str) -> str:
    """``redis://host:port/db`` without user name or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or 6379
    db = parts.path.lstrip("/") or "0"
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{host}:{port}/{db}"


def _describe_client(client: Any) -> str:
    try:
        kwargs = client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        scheme = "rediss" if client.connection_pool.connection_class.__name__.startswith("SSL") else "redis"
        return f"{scheme}://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
    except Exception:  # a client of another shape: say nothing about it
        return "redis client"


class RedisCache(Cache):
    """Redis backend (redis-py, imported only when this class is used).

    ``target``
        a URL ``redis://[:password@]host:port/db`` (or ``rediss://`` for TLS,
        ``unix://``), or a ready ``redis.Redis`` client.  A client you pass
        keeps its own timeouts and retry policy; give it short ones.
    ``prefix``
        put in front of every key: callers make it name the issuer and the
        configuration, e.g. ``oidc_guard:v1:<issuer>:introspection:<hash>:``.
    ``timeout``
        socket connect and read timeout in seconds for a client built from a
        URL (default 0.25 s): a slow Redis costs at most this, then the
        caller falls back (introspection) or fails closed (DPoP).  redis-py's
        own retries are switched off for such a client, so one operation is
        one attempt.
    ``cooldown``
        after a failure, further operations fail at once (no network) for
        this many seconds, then the next operation tries Redis again: a dead
        Redis costs one timeout per cooldown, not one per request, and the
        cache recovers by itself.
    ``accept_evicting_for_replay``
        ``True`` lets :meth:`replay_problem` accept a Redis whose
        ``maxmemory-policy`` evicts keys (logged at WARNING): DPoP proofs can
        then be replayed once their record is evicted.  Default ``False``.

    Errors raise :class:`CacheUnavailable`.  ``repr`` and error texts name
    the server without its password.
    """

    shared = True

    def __init__(
        self,
        target: Any,
        *,
        prefix: str = "oidc_guard:",
        timeout: float = 0.25,
        cooldown: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        accept_evicting_for_replay: bool = False,
    ) -> None:
        if not isinstance(accept_evicting_for_replay, bool):
            raise ConfigurationError("accept_evicting_for_replay must be True or False")
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:  # pragma: no cover - depends on the install
            raise ConfigurationError(
                "shared_cache needs the redis package: pip install 'oidc_guard[redis]'"
            ) from None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 10:
            raise ConfigurationError("RedisCache timeout must be a number of seconds in (0, 10]")
        self._redis_errors: Tuple[Type[BaseException], ...] = (redis.exceptions.RedisError, OSError)
        if isinstance(target, str):
            scheme = urlsplit(target).scheme
            if scheme not in ("redis", "rediss", "unix"):
                raise ConfigurationError(
                    "shared_cache must be a redis://host:port/db URL (or rediss://, unix://) "
                    "or a redis.Redis client"
                )
            self._where = _describe_url(target)
            try:
                self._client: Any = redis.Redis.from_url(
                    target,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 0),
                    retry_on_timeout=False,
                    health_check_interval=0,
                )
            except (ValueError, redis.exceptions.RedisError) as exc:
                raise ConfigurationError(
                    f"shared_cache {self._where}: unusable URL ({exc.__class__.__name__})"
                ) from None
        elif hasattr(target, "set") and hasattr(target, "get") and hasattr(target, "connection_pool"):
            self._client = target
            self._where = _describe_client(target)
        else:
            raise ConfigurationError(
                "shared_cache must be a redis://host:port/db URL or a redis.Redis client"
            )
        # Values are bytes (MAC-sealed introspection entries, replay
        # records): a client that decodes replies to str would raise
        # UnicodeDecodeError on any non-UTF-8 value an attacker plants, and a
        # str cannot be MAC-checked byte for byte.  Refuse it now rather than
        # fail on requests.  (A URL can ask for it too: ?decode_responses=true.)
        if _decodes_responses(self._client):
            raise ConfigurationError(
                f"shared_cache {self._where}: the redis client decodes replies to str "
                "(decode_responses=True); oidc_guard stores bytes and needs a client that returns "
                "them: build it with decode_responses=False (the redis-py default) or pass the URL"
            )
        self.prefix = prefix
        self.accept_evicting_for_replay = accept_evicting_for_replay
        self._cooldown = float(cooldown)
        self._clock = clock
        # The cooldown state is shared with every namespaced() view, so one
        # dead Redis is noticed (and logged) once.
        self._shared_state = _State()

    def __repr__(self) -> str:
        return f"RedisCache({self._where}, prefix={self.prefix!r})"

    @property
    def where(self) -> str:
        """The server as ``redis://host:port/db``, safe to print."""
        return self._where

    def namespaced(self, prefix: str) -> "RedisCache":
        """A view on the same connection whose keys are under ``prefix`` (in
        addition to this one's).  Shares the failure cooldown."""
        view = object.__new__(RedisCache)
        view.__dict__.update(self.__dict__)  # same client, same _shared_state
        view.prefix = self.prefix + prefix
        return view

    def _state(self) -> "_State":
        return self._shared_state

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        state = self._state()
        now = self._clock()
        if now < state.down_until:
            raise CacheUnavailable(
                f"shared cache {self._where} is unavailable (retrying in "
                f"{state.down_until - now:.1f} s)", retry_after=state.down_until - now
            )
        try:
            result = fn()
        except self._redis_errors as exc:
            with state.lock:
                state.down_until = self._clock() + self._cooldown
                first = not state.logged
                state.logged = True
            reason = _reason(exc)
            if first:
                log.warning(
                    "shared cache %s unavailable (%s during %s); going on without it, "
                    "retrying every %.1f s", self._where, reason, what, self._cooldown,
                )
            raise CacheUnavailable(f"shared cache {self._where}: {reason} during {what}") from None
        if state.logged:
            with state.lock:
                was = state.logged
                state.logged = False
            if was:
                log.warning("shared cache %s reachable again", self._where)
        return result

    def _value(self, raw: Any) -> Optional[bytes]:
        # raw is the reply of GETRANGE key 0 MAX_VALUE_BYTES: at most one
        # byte more than the limit, b"" for a missing key.
        if not isinstance(raw, (bytes, bytearray)):  # clients that decode are refused at construction
            raise CacheUnavailable(f"shared cache {self._where}: answered a {type(raw).__name__}, not a value")
        if not raw:
            return None
        if len(raw) > MAX_VALUE_BYTES:
            raise CacheUnavailable(
                f"shared cache {self._where}: a value of more than {MAX_VALUE_BYTES} bytes (the limit); "
                "only its first bytes were read"
            )
        return bytes(raw)

    @staticmethod
    def _px(ttl_seconds: float) -> int:
        # Redis PX: milliseconds, at least 1 (0 is an error for Redis).
        return max(1, int(math.ceil(ttl_seconds * 1000)))

    def get(self, key: str) -> Optional[bytes]:
        # GETRANGE, not GET: whatever is stored under the key (anyone who can
        # write to Redis can plant 500 MB there), Redis sends at most
        # MAX_VALUE_BYTES + 1 bytes, so an oversized value is recognised
        # without being transferred or allocated.  GETRANGE answers b"" for
        # a missing key; empty values are never stored (_check_entry).
        # A key of another type answers WRONGTYPE, as GET would.
        full = self.prefix + key
        return self._value(self._call("GETRANGE", lambda: self._client.getrange(full, 0, MAX_VALUE_BYTES)))

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        check_entry(key, value, ttl_seconds)
        if ttl_seconds <= 0:
            self.delete(key)
            return
        full, px = self.prefix + key, self._px(ttl_seconds)
        self._call("SET", lambda: self._client.set(full, bytes(value), px=px))

    def add(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """``SET key value NX PX ttl``: atomic; ``True`` when stored."""
        check_entry(key, value, ttl_seconds)
        if ttl_seconds <= 0:
            raise ValueError("add() needs a positive ttl_seconds")
        full, px = self.prefix + key, self._px(ttl_seconds)
        result = self._call("SET NX", lambda: self._client.set(full, bytes(value), nx=True, px=px))
        return bool(result)

    def delete(self, key: str) -> None:
        full = self.prefix + key
        self._call("DEL", lambda: self._client.delete(full))

    def ping(self) -> None:
        """Raise :class:`CacheUnavailable` unless Redis answers now (ignores the cooldown)."""
        self._state().down_until = 0.0
        self._call("PING", lambda: self._client.ping())

    # --- may this Redis hold DPoP replay records? ------------------------------
    def eviction_policy(self) -> Optional[str]:
        """Redis's ``maxmemory-policy`` now, e.g. ``"noeviction"``.

        Asked with ``CONFIG GET maxmemory-policy``; where CONFIG is disabled,
        renamed or not permitted (managed Redis services, ACLs), read from
        the ``maxmemory_policy`` line of ``INFO memory``.  ``None`` when the
        server refuses both.  :class:`CacheUnavailable` when Redis cannot be
        reached.
        """
        import redis

        def read() -> Optional[str]:
            try:
                policy = _config_policy(self._client.execute_command("CONFIG", "GET", "maxmemory-policy"))
                if policy is not None:
                    return policy
            except redis.exceptions.ResponseError:  # unknown command, NOPERM: the answer of a live server
                pass
            try:
                return _info_policy(self._client.execute_command("INFO", "memory"))
            except redis.exceptions.ResponseError:
                return None

        result: Optional[str] = self._call("CONFIG GET maxmemory-policy", read)
        return result

    def replay_problem(self, *, fresh: bool = False) -> Optional[str]:
        """``None`` when DPoP replay records may be kept in this Redis, else
        why not (a sentence naming the policy and the fix).

        Only ``noeviction`` guarantees a record lives until its expiry.  The
        policy is read at first use and again every
        ``POLICY_RECHECK_SECONDS`` (60 s; shared by the views of one
        connection); a policy that cannot be read is not trusted either.
        With ``accept_evicting_for_replay`` an evicting or unreadable policy
        is accepted and a WARNING says so once.  :class:`CacheUnavailable`
        when Redis cannot be reached.  ``fresh=True`` reads the policy now
        (the start-up check).
        """
        state = self._state()
        now = self._clock()
        if fresh or state.policy_read_at is None or now - state.policy_read_at >= POLICY_RECHECK_SECONDS:
            policy = self.eviction_policy()
            state.policy, state.policy_read_at = policy, now
        policy = state.policy
        if policy == SAFE_EVICTION_POLICY:
            return None
        if policy is None:
            problem = (
                f"the maxmemory-policy of the shared cache {self._where} cannot be read (CONFIG GET and "
                "INFO memory both refused), so it is unknown whether Redis may evict DPoP replay records "
                "before they expire; an evicted record lets a captured proof be replayed (RFC 9449 "
                "section 11.1). Allow INFO for this client and set maxmemory-policy noeviction"
            )
        else:
            problem = (
                f"the shared cache {self._where} has maxmemory-policy {policy!r}, which evicts keys when "
                "Redis is full: an attacker sending fresh DPoP proofs can have a victim's replay record "
                "evicted and replay the victim's captured proof (RFC 9449 section 11.1). Set "
                "maxmemory-policy noeviction on this Redis (CONFIG SET maxmemory-policy noeviction, or the "
                "provider's parameter group; a full Redis then refuses DPoP requests with 503 instead "
                "of forgetting)"
            )
        if self.accept_evicting_for_replay:
            with state.lock:
                first = not state.accept_logged
                state.accept_logged = True
            if first:
                log.warning("oidc_guard: accepting the risk as configured (%s=True): %s",
                            ACCEPT_EVICTING_KEYWORD, problem)
            return None
        return (f"{problem}, or pass {ACCEPT_EVICTING_KEYWORD}=True to TokenValidator "
                f"(OIDC_GUARD_{ACCEPT_EVICTING_KEYWORD.upper()}) to accept the risk")


def _decodes_responses(client: Any) -> bool:
    """True when a redis-py client turns replies into str."""
    try:
        return bool(client.connection_pool.connection_kwargs.get("decode_responses"))
    except Exception:  # a client of another shape: its replies are checked one by one
        return False


def _text(value: Any) -> Optional[str]:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else None


def _config_policy(reply: Any) -> Optional[str]:
    """The policy from a ``CONFIG GET maxmemory-policy`` reply: redis-py
    makes it a dict; a raw reply is the flat list [name, value]."""
    if isinstance(reply, dict):
        items = list(reply.items())
    elif isinstance(reply, (list, tuple)) and len(reply) % 2 == 0:
        items = list(zip(reply[::2], reply[1::2]))
    else:
        return None
    for name, value in items:
        if _text(name) == "maxmemory-policy":
            return _text(value)
    return None


def _info_policy(reply: Any) -> Optional[str]:
    """The policy from an ``INFO memory`` reply (redis-py: a dict; raw: the
    ``name:value`` lines)."""
    if isinstance(reply, dict):
        return _text(reply.get("maxmemory_policy"))
    text = _text(reply)
    if text is None:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "maxmemory_policy":
            return value.strip()
    return None


class _State:
    __slots__ = ("down_until", "logged", "lock", "policy", "policy_read_at", "accept_logged")

    def __init__(self) -> None:
        self.down_until = 0.0
        self.logged = False
        self.lock = threading.Lock()
        # maxmemory-policy as last read (replay_problem), and when
        self.policy: Optional[str] = None
        self.policy_read_at: Optional[float] = None
        self.accept_logged = False


def _reason(exc: BaseException) -> str:
    """A short reason that never carries a password.

    redis-py error messages name host and port and sometimes the server's
    reply (``invalid password``), never the password itself; still, keep
    only the exception class and the first line, and cut it short.
    """
    text = str(exc).splitlines()[0] if str(exc) else ""
    if "@" in text:  # a URL with credentials would have one: drop the text
        text = ""
    text = text[:120]
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__

