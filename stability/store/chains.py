"""Message chains: each message of a call's request stored once, as a node addressed by its content and parent.

A conversation's shared prefix (a system prompt, the instructions, the earlier turns of an in-context run) is
then stored once across calls and runs, the way simonw/llm stores conversations. A node is one message and the
hash of the node before it; its hash is the sha256 of both, so the same prefix reached by any call is the same
rows. A call keeps its request JSON without ``messages`` and the hash of its chain's last node (``calls.chain``).
The hashes are short (:func:`node_hash`: 128 bits, 22 characters): each is stored twice per node (its own, its
child's ``parent``), once per call, and in the primary-key index, where DuckDB's cost grows with the key's length.

Every reader of calls in the store rebuilds ``request.messages`` from the chain (:func:`with_messages`,
:func:`full_request_texts`): the request read back is the one stored before chains existed, serialised to the
same JSON text (:func:`stability.store.json_values.to_json`). A request with no non-empty list of message objects is
stored whole, with no chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import duckdb

from stability.errors import StabilityError
from stability.store.json_values import to_json

#: rows of ``calls`` converted per statement by :func:`chain_stored_calls`
_BATCH = 2000
#: up to this many node hashes are looked up by primary key; more by a scan of the table
_POINT_LOOKUPS = 256


def node_hash(parent: str | None, message_json: str) -> str:
    """The address of a node: the first 128 bits of the sha256 over its parent's address (empty at the root) and
    its message's JSON, in 22 characters of URL-safe base64 (``m014_short_chain_hashes``; the nodes stored before
    it keep their 71-character ``sha256:`` addresses, which readers follow the same way)."""
    digest = hashlib.sha256(f"{parent or ''}\n{message_json}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def split(request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], str | None]:
    """(the request to store, the chain's nodes root first, the last node's hash); a request whose ``messages``
    is not a non-empty list of objects comes back whole, with no nodes and no chain."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return request, [], None
    nodes: list[dict[str, Any]] = []
    parent: str | None = None
    for message in messages:
        text = to_json(message)
        digest = node_hash(parent, text)
        role = message.get("role")
        nodes.append({"hash": digest, "parent": parent, "role": role if isinstance(role, str) else None,
                      "message": text})
        parent = digest
    return {k: v for k, v in request.items() if k != "messages"}, nodes, parent


def _nodes(con: duckdb.DuckDBPyConnection, tips: set[str], catalog: str) -> dict[str, tuple[str | None, str]]:
    """hash -> (parent, message JSON) of every node on the chains ending at ``tips``: one query per level, up from
    the tips. A few hashes are asked as a list of constants (primary-key lookups, which a cache hit needs); many
    (a whole run's calls, a frame) as one list joined against the table (a scan)."""
    found: dict[str, tuple[str | None, str]] = {}
    wanted = set(tips)
    while wanted:
        asked = sorted(wanted)
        if len(asked) <= _POINT_LOOKUPS:
            rows = con.execute(f"SELECT hash, parent, message::VARCHAR FROM {catalog}.messages "
                               f"WHERE hash IN ({', '.join('?' for _ in asked)})", asked).fetchall()
        else:
            rows = con.execute(f"SELECT hash, parent, message::VARCHAR FROM {catalog}.messages "
                               "WHERE hash IN (SELECT unnest(?::VARCHAR[]))", [asked]).fetchall()
        found.update((h, (p, m)) for h, p, m in rows)
        wanted = {p for _, p, _ in rows if p is not None and p not in found}
    return found


class _Chains:
    """The message JSON texts of chains, root first, each chain walked once."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tips: set[str], catalog: str) -> None:
        self._nodes = _nodes(con, tips, catalog) if tips else {}
        self._done: dict[str, list[str]] = {}

    def texts(self, tip: str, owner: str) -> list[str]:
        if tip not in self._done:
            out: list[str] = []
            at: str | None = tip
            while at is not None:
                node = self._nodes.get(at)
                if node is None:
                    raise StabilityError(f"call {owner}: its message chain {tip} is incomplete in the store "
                                         f"(no node {at})")
                out.append(node[1])
                at = node[0]
            out.reverse()
            self._done[tip] = out
        return self._done[tip]


def _full(request: dict[str, Any], messages: list[str]) -> dict[str, Any]:
    full = {**request, "messages": [json.loads(m) for m in messages]}
    return {k: full[k] for k in sorted(full)}  # the key order of the JSON stored before chains


def with_messages(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]],
                  catalog: str = "main") -> list[dict[str, Any]]:
    """Rows of ``calls`` (dicts, as read) with ``request`` decoded and its ``messages`` rebuilt from ``chain``,
    which is removed; ``catalog``: the database the rows were read from."""
    chains = _Chains(con, {r["chain"] for r in rows if r.get("chain")}, catalog)
    for row in rows:
        tip = row.pop("chain", None)
        request = row["request"]
        if isinstance(request, str):
            request = json.loads(request)
        row["request"] = _full(request, chains.texts(tip, row["id"])) if tip else request
    return rows


def full_request_texts(con: duckdb.DuckDBPyConnection, ids: list[str], requests: list[str | None],
                       tips: list[str | None], catalog: str = "main") -> list[str | None]:
    """The stored request JSON texts with their messages put back: the same text a store without chains held."""
    tips = [t if isinstance(t, str) else None for t in tips]  # (a DataFrame's missing values are not None)
    chains = _Chains(con, {t for t in tips if t}, catalog)
    return [to_json(_full(json.loads(request), chains.texts(tip, call_id))) if tip and request is not None
            else request for call_id, request, tip in zip(ids, requests, tips, strict=True)]


def insert_nodes(con: duckdb.DuckDBPyConnection, nodes: list[dict[str, Any]]) -> None:
    """Write nodes now, on ``con`` (a node stored already is left as it is)."""
    if nodes:
        con.execute("""INSERT OR IGNORE INTO messages (hash, parent, role, message)
                       SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                              unnest(?::VARCHAR[])""",
                    [[n["hash"] for n in nodes], [n["parent"] for n in nodes], [n["role"] for n in nodes],
                     [n["message"] for n in nodes]])


def chain_stored_calls(con: duckdb.DuckDBPyConnection) -> int:
    """Move the messages of calls stored whole (before chains, or imported from an export, which carries whole
    requests) into chains, in the caller's transaction. Returns the calls converted."""
    converted = 0
    last = ""
    while True:
        rows = con.execute(
            """SELECT id, request::VARCHAR FROM calls WHERE chain IS NULL AND id > ?
                 AND json_type(request, '$.messages') = 'ARRAY' ORDER BY id LIMIT ?""", [last, _BATCH]).fetchall()
        if not rows:
            return converted
        last = rows[-1][0]
        ids, requests, tips = [], [], []
        nodes: dict[str, dict[str, Any]] = {}
        for call_id, text in rows:
            stored, chain, tip = split(json.loads(text))
            if tip is None:
                continue
            ids.append(call_id)
            requests.append(to_json(stored))
            tips.append(tip)
            nodes.update((n["hash"], n) for n in chain)
        insert_nodes(con, list(nodes.values()))
        if ids:
            con.execute("""UPDATE calls SET request = v.request, chain = v.chain
                           FROM (SELECT unnest(?::VARCHAR[]) AS id, unnest(?::VARCHAR[]) AS request,
                                        unnest(?::VARCHAR[]) AS chain) v WHERE calls.id = v.id""",
                        [ids, requests, tips])
            converted += len(ids)
