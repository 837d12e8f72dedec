"""String sharing for the verified-token cache (internal).

Verified-token cache entries share their claim names and string values
(iss, aud, scope names, client_id, ...), which recur in every token of an
issuer: one str object each instead of one per entry.  This is how the
100,000-token memory target (bench/run.py ``--only memory``) is met.

One :class:`StringSharing` per ``TokenValidator``.  The payload of a token
that will be cached is parsed with :attr:`StringSharing.decoder`: one pass
that rejects duplicate member names (RFC 7515 section 4 / RFC 7519
section 4) and shares strings.  Strings not yet shared are collected per
thread (:meth:`StringSharing.start`) and only join the tables once the
signature is verified (:meth:`StringSharing.learn`), so unsigned junk can
never fill them.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List, Tuple

from ._bounded import Interned
# The one duplicate-member check (RFC 7515 section 4 / RFC 7519 section 4),
# importable from here as before (oidc_guard.http uses this name).
from ._jws import check_no_duplicates

__all__ = ["StringSharing", "check_no_duplicates"]

# Verified-token cache entries share their claim names and string values
# (iss, aud, scope names, client_id, ...), which recur in every token of an
# issuer: one str object each instead of one per entry.  Only immutable str
# objects are shared, never lists or dicts.  Bounded: an issuer that puts a
# new value in every token (jti) fills the table once and then those values
# are simply not shared.
_SHARED_STRINGS_MAX = 4096
_SHARED_STRING_MAX_LEN = 256
_SHARED_LISTS_MAX = 1024
_SHARED_LIST_MAX_LEN = 64
_STR_ONLY = frozenset((str,))


class StringSharing:
    """The shared-string tables of one validator and the decoder that uses
    them.  Thread-safe: the tables are :class:`~oidc_guard._bounded.Interned`
    pools (plain dicts only ever grown with setdefault, atomic; the decoder
    reads their ``data`` directly), and the misses list is per thread."""

    def __init__(self) -> None:
        # str -> the one shared instance (see _SHARED_STRINGS_MAX)
        self.strings: Interned[str] = Interned(_SHARED_STRINGS_MAX)
        # tuple of str items -> the same items as shared instances (lists of
        # str claims: aud, scope, amr); bounded (_SHARED_LISTS_MAX)
        self.lists: Interned[Tuple[str, ...]] = Interned(_SHARED_LISTS_MAX)
        # Strings not yet shared, noted by the hook for the payload being
        # parsed in this thread (set by start()).
        self._local = threading.local()
        self.decoder = json.JSONDecoder(object_pairs_hook=self._share_pairs)

    def start(self) -> List[Any]:
        """Before this thread parses a payload with :attr:`decoder`: a new
        list the hook notes strings not shared yet in; pass it to
        :meth:`learn` once the signature is verified."""
        misses: List[Any] = []
        self._local.misses = misses
        return misses

    def _share_pairs(self, pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
        """``object_pairs_hook`` of the payload of a token that will be
        cached (one pass instead of parse + copy): rejects duplicate member
        names exactly as _jws.reject_duplicates (RFC 7515 section 4
        / RFC 7519 section 4), and puts the shared instance in place of
        every claim name and str value (also items of lists of str) that is
        already shared.  Equal str only: the value never changes, only which
        object carries it.  Strings not shared yet are noted in this
        thread's misses list (start()); learn() adds them after the
        signature is verified (the payload is still unverified here).  Lists
        are the parser's own new lists (or new exactly-sized copies), so no
        two cache entries share a mutable object."""
        get = self.strings.data.get
        lists = self.lists.data
        misses: List[Any] = self._local.misses
        obj: Dict[str, Any] = {}
        for name, value in pairs:
            shared = get(name)
            if shared is None:
                misses.append(name)
            else:
                name = shared
            kind = type(value)
            if kind is str:
                shared = get(value)
                if shared is None:
                    misses.append(value)
                else:
                    value = shared
            elif kind is list and value:
                # A list of str only (aud, scope, amr: the common case): its
                # shared items come from one look-up of the whole tuple.
                # Only all-str tuples are ever put in the table (by
                # learn), and no JSON value other than a str equals
                # a str, so a hit means the items are these very str values
                # (1 == True == 1.0 can never swap one for another).  An
                # unhashable item (an object or list inside) is a TypeError.
                try:
                    shared_items = lists.get(tuple(value))
                except TypeError:
                    shared_items = None
                if shared_items is not None:
                    value = list(shared_items)  # exactly sized, this entry's own
                elif set(map(type, value)) <= _STR_ONLY:
                    items = tuple(value)
                    misses.append(items)
                    value = list([get(item) or item for item in items])
                else:
                    # [:] is deliberate: the list is kept in the cache, and a
                    # slice is exactly sized where the comprehension's own
                    # list is over-allocated (CPython 3.11: 88 -> 64 bytes
                    # for one item); the 100,000-token memory target is tight.
                    value = [(get(item) or item) if type(item) is str else item for item in value][:]
            obj[name] = value
        check_no_duplicates(pairs, obj)
        return obj

    def learn(self, misses: List[Any]) -> None:
        """After the signature is verified: share the strings (and tuples of
        str) the decoder did not find, within the tables' bounds
        (_SHARED_STRINGS_MAX, _SHARED_LISTS_MAX).  The payload already holds
        these very objects, so they become the shared instances."""
        share = self.strings.share  # not grown past _SHARED_STRINGS_MAX
        strings = self.strings.data
        for item in misses:
            if type(item) is str:
                if len(item) <= _SHARED_STRING_MAX_LEN:
                    share(item)
            else:
                for text in item:
                    if len(text) <= _SHARED_STRING_MAX_LEN:
                        share(text)
                if len(item) <= _SHARED_LIST_MAX_LEN:
                    # keyed by the items themselves: equal tuples, shared str
                    self.lists.share(tuple([strings.get(text) or text for text in item]))
