"""The ``beredt`` commands that talk to a running hub through its local HTTP API, over the hub's Unix
socket (``hub.api.local``): whoever may use the socket may use the API, so the CLI needs no token.

send, inbox, message, links, peers, board and roll-call print tables (or JSON with ``--json``); a hub that
does not answer gives a message that says how to start one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hub.api import local
from hub.api.local import Unreachable as Unreachable  # re-exported: the commands catch it
from hub.core.errors import BeredtError, ConfigError
from hub.core.frame import Kind
from hub.core.kinds import SCHEMAS
from hub.core.kinds.fields import Choice, HexId, Schema, Text
from hub.service import config as config_module
from hub.service.config import HubConfig

EXIT_OK = 0


def config_path(args: argparse.Namespace) -> Path | None:
    value = args.config or os.environ.get("BEREDT_CONFIG")
    return Path(value) if value else None


def load_config(args: argparse.Namespace) -> HubConfig:
    return config_module.load(config_path(args))


def api_call(config: HubConfig, method: str, path: str, body: Any = None) -> Any:
    """The decoded answer of the hub's API; ``BeredtError`` with the hub's reason if it refused."""
    status, answer = local.request(config.socket_path, method, path, body)
    if status >= 400:
        reason = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise BeredtError(f"hub refused ({status}): {reason}")
    return answer


def _parse_fields(pairs: Sequence[str], schema: Schema | None = None) -> dict[str, Any]:
    """``field=value`` pairs as a body. Values parse as JSON (numbers, lists) unless the schema says the
    field is text, an id or a choice: a roll-call id such as 12345678 stays a string."""
    textual = (
        {e.name for e in schema.entries if isinstance(e.type, Text | HexId | Choice)} if schema else set()
    )
    body: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"expected field=value, got {pair!r}", key="FIELD")
        parsed: Any = value
        if key not in textual:
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                pass
        target = body
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = parsed
    return body


def cmd_send(args: argparse.Namespace) -> int:
    config = load_config(args)
    kind = args.kind
    body: Any
    if kind == "text":
        body = " ".join(args.fields)
        if not body:
            raise ConfigError("a text message needs some text", key="TEXT")
    elif args.json:
        body = json.loads(sys.stdin.read() if args.json == "-" else args.json)
    else:
        body = _parse_fields(args.fields, SCHEMAS.get(Kind[kind.upper().replace("-", "_")]))
    request = {"to": args.to, "kind": kind, "body": body, "priority": args.priority, "status": args.status}
    if args.ttl:
        request["ttl_minutes"] = args.ttl
    if args.sealed:
        request["sealed"] = True
    answer = api_call(config, "POST", "/v1/messages", request)
    print(answer["id"])
    return EXIT_OK


def cmd_inbox(args: argparse.Namespace) -> int:
    answer = api_call(load_config(args), "GET", f"/v1/inbox?limit={args.limit}")
    if args.json:
        print(json.dumps(answer["messages"], indent=2, ensure_ascii=False))
        return EXIT_OK
    rows = [
        (
            m["id"][:12],
            m["kind"],
            m["from_name"] or m["from"],
            m["priority"],
            m["via"] or "",
            json.dumps(m["body"], ensure_ascii=False)[:60],
        )
        for m in answer["messages"]
    ]
    print_table(("ID", "KIND", "FROM", "PRIORITY", "VIA", "BODY"), rows)
    return EXIT_OK


def cmd_message(args: argparse.Namespace) -> int:
    print(
        json.dumps(
            api_call(load_config(args), "GET", f"/v1/messages/{args.id}"), indent=2, ensure_ascii=False
        )
    )
    return EXIT_OK


def cmd_links(args: argparse.Namespace) -> int:
    links = api_call(load_config(args), "GET", "/v1/links")["links"]
    if args.json:
        print(json.dumps(links, indent=2))
        return EXIT_OK
    rows = [
        (
            r["link"],
            r["kind"],
            r["peer_name"] or r["peer"] or "(link)",
            r["state"],
            _ago(r["since"]),
            _ago(r["last_success"]),
            str(r["queue_depth"]),
            r["reason"][:50],
        )
        for r in links
    ]
    print_table(("LINK", "KIND", "PEER", "STATE", "SINCE", "LAST OK", "QUEUE", "LAST CHANGE"), rows)
    return EXIT_OK


def _ago(when: float | None) -> str:
    if when is None:
        return "-"
    seconds = max(0, int(time.time() - when))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def cmd_peers(args: argparse.Namespace) -> int:
    peers = api_call(load_config(args), "GET", "/v1/peers")["peers"]
    if args.json:
        print(json.dumps(peers, indent=2))
        return EXIT_OK
    rows = [
        (
            p["node"],
            p["name"],
            "yes" if p["trusted"] else "NO",
            " ".join(f"{k}:{v}" for k, v in p["state"].items()),
        )
        for p in peers
    ]
    print_table(("NODE", "NAME", "TRUSTED", "LINKS"), rows)
    return EXIT_OK


def cmd_board(args: argparse.Namespace) -> int:
    rows = api_call(load_config(args), "GET", "/v1/board")["institutions"]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    print_table(
        ("INSTITUTION", "CONCERN", "LAST HEARD", "VIA", "ROLL-CALL"),
        [
            (
                str(r.get("name", r.get("node", "?"))),
                str(r.get("concern") or "-"),
                _ago(r.get("last_heard")),
                str(r.get("last_link") or "-"),
                str(r.get("rollcall") or "-"),
            )
            for r in rows
        ],
    )
    return EXIT_OK


def cmd_rollcall(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.action == "list":
        print(json.dumps(api_call(config, "GET", "/v1/rollcalls")["rollcalls"], indent=2, ensure_ascii=False))
        return EXIT_OK
    body = {"question": args.question, "minutes": args.minutes, "institutions": args.institutions}
    print(api_call(config, "POST", "/v1/rollcalls", body)["request"])
    return EXIT_OK


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)] if rows else []
    if not rows:
        print("(none)")
        return
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
