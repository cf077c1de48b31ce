"""``beredt log verify``: the log book against its own chain and every head held of it elsewhere.

The heads come from three places: an anchor given on the command line (printed at the foot of a report),
this hub's record of the heads it sent to its witnesses (the key folder, ``hub.console.logbook_chain``),
and the heads the witnesses themselves hold, fetched from their ``/v1`` API with ``--witness URL``
(a token with the read scope, from ``--token-file``). The report names the first entry that differs, with
its number and time; exit code 3 if there is one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path

from hub.cli.remote import local_time
from hub.console.logbook import LogBook
from hub.console.logbook_chain import sent_heads
from hub.core.errors import BeredtError

EXIT_BROKEN = 3
_FETCH_TIMEOUT = 20.0


def add_verify_arguments(verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--anchor",
        action="append",
        default=[],
        help="NR:HASH fra en tidligere rapport: fanger også poster skåret af enden (kan gentages)",
    )
    verify.add_argument(
        "--witness",
        action="append",
        default=[],
        metavar="URL",
        help="et vidnes API, fx http://krisestab:8470: hent de hoveder, det har modtaget fra denne hub"
        " (kan gentages)",
    )
    verify.add_argument(
        "--token-file",
        type=Path,
        help="fil med et token med rettigheden read på vidnerne (beredt token add ... --scope read)",
    )


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
        raise ValueError("--anchor: forventede NR:HASH som trykt nederst i en rapport")
    return int(seq), digest.lower()


async def _fetch(url: str, node: str, token: str) -> list[tuple[int, str, str]]:
    """The heads of ``node``'s book that the witness at ``url`` holds, with the witness's node id (absent
    from a witness that answers in the older form: then its URL stands for it)."""
    import aiohttp  # here, not at the top: every other ``beredt`` command starts without it

    address = f"{url.rstrip('/')}/v1/logbook/witnessed/{node}"
    timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(address, headers={"Authorization": f"Bearer {token}"}) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 200:
                error = body.get("error") if isinstance(body, dict) else None
                raise BeredtError(f"vidnet {url} svarede {response.status}: {error or body}")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise BeredtError(f"vidnet {url} kunne ikke nås: {exc or type(exc).__name__}") from exc
    try:
        return [(int(h["seq"]), str(h["hash"]).lower(), str(h.get("witness") or url)) for h in body["heads"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise BeredtError(f"vidnet {url} svarede uventet: {exc}") from exc


async def verify(args: argparse.Namespace, book: LogBook, node: str) -> int:
    """Verify ``book`` (this hub's, node id ``node``) against every head given, recorded or fetched."""
    given = [_anchor(text) for text in args.anchor]
    recorded = await asyncio.to_thread(sent_heads, book.keys) if book.keys is not None else []
    witnessed: list[tuple[int, str, str]] = []
    if args.witness:
        if args.token_file is None:
            raise ValueError("--witness: angiv også --token-file med et token med rettigheden read")
        try:
            token = args.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"--token-file: kan ikke læse {args.token_file}: {exc.strerror}") from None
        for url in args.witness:
            witnessed += await _fetch(url, node, token)
    differs = await book.verify(anchors=[*given, *recorded, *((seq, digest) for seq, digest, _ in witnessed)])
    head = await book.head()
    held = len(given) + len(recorded) + len(witnessed)
    per_witness = Counter(witness for _, _, witness in witnessed)
    named = ", ".join(f"{count} hos {witness}" for witness, count in sorted(per_witness.items()))
    from_witnesses = f"{len(witnessed)} fra vidner ({named})" if named else "0 fra vidner"
    against = f"holdt op mod {held} hoveder: {from_witnesses}, {len(recorded)} sendt herfra"
    plain = book.chain.plain_until
    if plain:
        print(f"poster 1-{plain} er skrevet før kædenøglen og kædet uden nøgle (SHA-256)")
    if differs is None:
        print(f"intakt: {head[0] if head else 0} indførsler, seneste {head[1] if head else '-'}; {against}")
        return 0
    found = await book.entries(since=differs - 1, limit=1)
    if found and found[0].seq == differs:
        where = f"BRUDT ved indførsel {differs}, skrevet {local_time(found[0].time)}"
    else:
        where = f"BRUDT ved indførsel {differs}, som mangler (logbogen slutter ved {head[0] if head else 0})"
    print(
        f"{where}: den første, der afviger; logbogen er ændret, efter den blev skrevet ({against})",
        file=sys.stderr,
    )
    return EXIT_BROKEN
