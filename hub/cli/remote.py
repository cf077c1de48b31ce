"""The ``beredt`` commands that talk to a running hub through its local HTTP API, over the hub's Unix
socket (``hub.api.local``): whoever may use the socket may use the API, so the CLI needs no token.

send, inbox, message, links, peers, routes, board and roll-call print tables (or JSON with ``--json``); a
hub that does not answer gives a message that says how to start one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from hub.api import local
from hub.api.local import Unreachable as Unreachable  # re-exported: the commands catch it
from hub.cli.words import danish
from hub.console.messages import local_zone
from hub.core.errors import BeredtError, UsageError
from hub.core.frame import Kind
from hub.core.kinds import SCHEMAS
from hub.core.kinds.fields import Choice, HexId, Schema, Text
from hub.relay.groups import group_address, group_key
from hub.relay.link_reasons import link_reason
from hub.service import config as config_module
from hub.service.config import HubConfig
from hub.service.node_identity import load_identity

EXIT_OK = 0
LOCAL = local_zone()


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
        raise BeredtError(f"hubben afviste ({status}): {reason}")
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
            raise UsageError(f"FELT: forventede felt=værdi, fik {pair!r} (se 'beredt send SLAGS --help')")
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


def _resolve(prefix: str, candidates: Sequence[tuple[str, str]], what: str) -> str:
    """A full id from a unique prefix of an id or a name among ``(id, name)`` pairs (an exact match wins)."""
    wanted = prefix.lower()
    exact = {i for i, name in candidates if i == wanted or (name and name.casefold() == prefix.casefold())}
    found = exact or {
        i
        for i, name in candidates
        if i.startswith(wanted) or (name and name.casefold().startswith(prefix.casefold()))
    }
    if len(found) == 1:
        return found.pop()
    if not found:
        raise UsageError(f"ingen {what} passer til {prefix!r}")
    raise UsageError(f"{prefix!r} passer til {len(found)}: giv flere cifre eller et længere navn ({what})")


def recipient(config: HubConfig, value: str) -> str:
    """'*', a full node id, 'group:NAME', or a node's unique prefix or name; a group's name where no node
    has exactly that name (the hub's groups, as ``GET /v1/groups`` lists them)."""
    if value in ("*", "all") or (len(value) == 16 and all(c in "0123456789abcdef" for c in value.lower())):
        return "*" if value == "all" else value.lower()
    if group_address(value) is not None:
        return value
    from hub.relay.roster import Roster

    roster = Roster.load(load_identity(config, create=False).card, config.roster_path)
    nodes = [(e.node_id.hex(), e.name) for e in roster]
    if not any(name.casefold() == value.casefold() for _, name in nodes):
        groups = api_call(config, "GET", "/v1/groups")["groups"]
        if any(group_key(g["name"]) == group_key(value) for g in groups):
            return f"group:{value}"
    return _resolve(value, nodes, "node i rosteren")


def local_time(when: float | None) -> str:
    """A moment as people here read it: local date and time (the hub's zone, Europe/Copenhagen)."""
    if when is None:
        return "-"
    moment = datetime.fromtimestamp(when, LOCAL)
    today = datetime.now(LOCAL).date()
    return moment.strftime("%H:%M:%S" if moment.date() == today else "%Y-%m-%d %H:%M")


def cmd_send(args: argparse.Namespace) -> int:
    config = load_config(args)
    kind = args.kind
    body: Any
    if kind == "text":
        body = " ".join(args.fields)
        if not body:
            raise UsageError("TEKST: en tekstbesked skal have en tekst: beredt send text TIL 'teksten'")
    elif args.body:
        body = json.loads(sys.stdin.read() if args.body == "-" else args.body)
    else:
        body = _parse_fields(args.fields, SCHEMAS.get(Kind[kind.upper().replace("-", "_")]))
    to = recipient(config, args.to)
    request = {"to": to, "kind": kind, "body": body, "priority": args.priority}
    if args.status:  # none given: the hub decides (exercise while it takes part in one)
        request["status"] = args.status
    if args.ttl:
        request["ttl_minutes"] = args.ttl
    if args.public:
        request["public"] = True
    answer = api_call(config, "POST", "/v1/messages", request)
    if args.json:
        print(json.dumps(answer))
        return EXIT_OK
    if answer.get("status") == "exercise":
        print("ØVELSE: sendt som øvelsesbesked (en reel besked kræver --actual)", file=sys.stderr)
    elif answer.get("status") == "actual" and args.status == "actual":
        print("REEL HÆNDELSE – IKKE ØVELSE: sendt som reel besked", file=sys.stderr)
    if "group" in answer:
        print(answer["id"])
        print(
            f"lagt i kø til {len(answer['messages'])} medlemmer af {answer['group']}, én besked hver;"
            f" ingen har kvitteret endnu; følg med: beredt group-message {answer['id']}",
            file=sys.stderr,
        )
    else:
        print(answer["id"])
        print(
            "gemt i denne hub og lagt i kø; modtageren har ikke kvitteret endnu; følg leveringen med:"
            f" beredt message {answer['id'][:12]}",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_inbox(args: argparse.Namespace) -> int:
    answer = api_call(load_config(args), "GET", f"/v1/inbox?limit={args.limit}")
    if args.json:
        print(json.dumps(answer["messages"], indent=2, ensure_ascii=False))
        return EXIT_OK
    rows = [
        (
            m["id"][:12],
            local_time(m["received"]),
            m["kind"],
            m["from_name"] or m["from"],
            m["priority"],
            m["via"] or "",
            _body_text(m["body"])[:60],
        )
        for m in answer["messages"]
    ]
    print_table(("ID", "MODTAGET", "SLAGS", "FRA", "PRIORITET", "VIA", "INDHOLD"), rows)
    return EXIT_OK


def _body_text(body: Any) -> str:
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


def cmd_message(args: argparse.Namespace) -> int:
    config = load_config(args)
    # a short id as 'beredt inbox', 'beredt send' and the console show it: the hub finds the one message
    # (sent, received or relayed) that begins with it, or says it is ambiguous
    message = api_call(config, "GET", f"/v1/messages/{args.id.lower()}")
    if args.json:
        print(json.dumps(message, indent=2, ensure_ascii=False))
        return EXIT_OK
    acked = message.get("end_to_end_acked_at")
    for label, value in (
        ("id", message["id"]), ("slags", message["kind"]),
        ("fra", message["from_name"] or message["from"]), ("til", message.get("to_name") or message["to"]),
        ("prioritet", message["priority"]), ("status", message["status"]),
        ("oprettet", local_time(message["created"])), ("gemt", local_time(message["received"])),
        ("tilstand", message.get("reason") or danish(message.get("state", "-"))),
        ("modtager", f"kvitteret {local_time(acked)}" if acked else "ikke kvitteret endnu"),
        ("indhold", _body_text(message["body"])),
    ):  # fmt: skip
        print(f"{label + ':':<12}{value}")
    hops = message.get("hops", [])
    if hops:
        print()
        print_table(
            ("NÆSTE HOP", "TILSTAND", "FORBINDELSE", "FORSØG", "OPDATERET", "SIDSTE FEJL"),
            [(h["next_hop"] or h["hop"], danish(h["state"]), h["link"] or "-", str(h["attempts"]),
              local_time(h["updated"]), (h["last_error"] or "")[:50]) for h in hops],
        )  # fmt: skip
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
            r["peer_name"] or r["peer"] or "(hele forbindelsen)",
            danish(r["state"]),
            _ago(r["since"]),
            _ago(r["last_success"]),
            str(r["queue_depth"]),
            link_reason(r["reason_code"], r["reason_params"])[:50],
        )
        for r in links
    ]
    print_table(
        ("FORBINDELSE", "SLAGS", "NABO", "TILSTAND", "SIDEN", "SIDST OK", "VENTER", "SIDSTE SKIFT"), rows
    )
    for link, credits in {r["link"]: r["route_credits"] for r in links if "route_credits" in r}.items():
        print(f"Ruteannonceringer over {link} har kostet {credits} kreditter, siden hubben startede")
    return EXIT_OK


def _ago(when: float | None) -> str:
    if when is None:
        return "-"
    seconds = max(0, int(time.time() - when))
    if seconds < 120:
        return f"for {seconds} s siden"
    if seconds < 7200:
        return f"for {seconds // 60} min siden"
    return f"for {seconds // 3600} t siden"


def cmd_peers(args: argparse.Namespace) -> int:
    peers = api_call(load_config(args), "GET", "/v1/peers")["peers"]
    if args.json:
        print(json.dumps(peers, indent=2))
        return EXIT_OK
    rows = [
        (
            p["node"],
            p["name"],
            "ja" if p["trusted"] else "NEJ",
            " ".join(f"{k}:{v}" for k, v in p["state"].items()),
        )
        for p in peers
    ]
    print_table(("NODE", "NAVN", "BETROET", "FORBINDELSER"), rows)
    return EXIT_OK


def cmd_routes(args: argparse.Namespace) -> int:
    shown = api_call(load_config(args), "GET", "/v1/routes")
    if args.json:
        print(json.dumps(shown, indent=2, ensure_ascii=False))
        return EXIT_OK
    names = {r["destination"]: r["name"] for r in shown["routes"]} | {
        d["next_hop"]: d["name"] for d in shown["defaults"]
    }
    rows = [
        (
            names[r["destination"]] or r["destination"],
            names.get(v["next_hop"]) or v["next_hop"],
            v["link"] or "-",
            str(v["cost"]),
            str(len(v["path"])),
            _ago(v["heard"]),
        )
        for r in shown["routes"]
        for v in r["via"]
    ]
    print_table(("TIL", "VIA", "FORBINDELSE", "PRIS", "HOP", "SIDST FORTALT"), rows)
    for default in shown["defaults"]:
        who = default["name"] or default["next_hop"]
        print(f"Alt andet går via {who} over {default['link'] or '-'}")
    return EXIT_OK


def cmd_board(args: argparse.Namespace) -> int:
    rows = api_call(load_config(args), "GET", "/v1/board")["institutions"]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return EXIT_OK
    print_table(
        ("INSTITUTION", "VURDERING", "SIDST HØRT", "VIA", "STATUSRUNDE"),
        [
            (
                str(r.get("name", r.get("node", "?"))),
                danish(str(r.get("concern") or "-")),
                f"{local_time(r.get('last_heard'))} ({_ago(r.get('last_heard'))})"
                if r.get("last_heard")
                else "aldrig",
                str(r.get("last_link") or "-"),
                danish(str(r.get("rollcall") or "-")),
            )
            for r in rows
        ],
    )
    return EXIT_OK


def cmd_rollcall(args: argparse.Namespace) -> int:
    config = load_config(args)
    if args.action == "list":
        calls = api_call(config, "GET", "/v1/rollcalls")["rollcalls"]
        if args.json:
            print(json.dumps(calls, indent=2, ensure_ascii=False))
            return EXIT_OK
        rows = [
            (call["request"], call["question"], local_time(call["deadline"]),
             target.get("name") or target["institution"], danish(target["state"]),
             local_time(target["answer"]["at"]) if target.get("answer") else "-")
            for call in calls for target in call["targets"]
        ]  # fmt: skip
        print_table(("STATUSRUNDE", "SPØRGSMÅL", "FRIST", "INSTITUTION", "TILSTAND", "SVARET"), rows)
        return EXIT_OK
    body = {"question": args.question, "minutes": args.minutes, "institutions": args.institutions}
    print(api_call(config, "POST", "/v1/rollcalls", body)["request"])
    return EXIT_OK


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)] if rows else []
    if not rows:
        print("(ingen)")
        return
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
