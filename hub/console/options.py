"""The console's settings: intervals, retention and who witnesses its log book (from ``[console]`` and
``[logbook]`` in the hub's config, or given directly in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hub.console.logbook_blocks import BLOCK
from hub.core.clock import Clock


@dataclass(frozen=True, slots=True)
class ConsoleOptions:
    db_path: Path | None = None  # default: <data_dir>/console.db
    tick_interval: float = 5.0
    resend_window: float = 600.0
    ttl_minutes: int = 24 * 60
    clock: Clock | None = None  # roll-call deadlines; default: the hub's clock
    late_window: float = (
        12 * 3600.0
    )  # a roll-call nobody waits on any more is closed this long after its deadline
    board_save_interval: float = 1800.0
    """Changed board rows are saved this often (and at a clean stop), followed by the log book's sync:
    at 80 care homes every row changes between saves and a save writes them all, so fewer saves write
    less; a restart folds in what the store received since the last save. ``[console]
    board_save_minutes``; the Pi appliance saves every 60. A save for a SINE status (``radio_save_interval``)
    is followed by the sync too."""
    radio_save_interval: float = 300.0
    """A row a SINE status changed is saved within this: the store does not hold radio statuses, so a
    restart cannot fold them in."""
    logbook_received_interval: float = 60.0
    """The longest the log book holds the entries of received messages before writing them together
    (``LogBook.hold``): one write of the book's newest page a minute instead of one per status. At
    ``logbook_sync_interval`` or more, the tick writes them only with a sync, which writes what is held (as
    does anything else the book writes first: an entry a person writes, a board save, the head sent to the
    witnesses): at a steady rate console.db is then written in one moment per sync interval, and its WAL
    index (``console.db-shm``, a mapped file whose dirty pages the kernel writes back within 30 s) is written
    once for both. The Pi appliance holds them 600 s (``[logbook] received_hold_seconds``)."""
    logbook_sync_interval: float = 300.0
    """How often the log book's entries of received messages, written without an fsync of their own, are
    made durable (``LogBook.sync``): what a power cut can lose of them, which the next start writes again
    from the store. ``[logbook] sync_minutes``; the Pi appliance syncs every 10."""
    contact_interval: float = 3600.0
    """An institution silent for longer than this is flagged on the board (roll-calls and status reports
    are expected at least this often)."""
    confirm_within: float = 120.0
    """A life-safety message to an institution not confirmed end to end within this is flagged."""
    keepalive: float = 15.0  # seconds between comments on a quiet live-event stream
    rollcall_retention: float = 90 * 86400.0
    """Seconds a closed roll-call stays in the archive (``[console] rollcall_retention_days``)."""
    archive_purge_interval: float = 3600.0
    """How often closed roll-calls past their retention are purged and the log book is rotated."""
    witness_interval: float = 3600.0
    """How often the log book's head is sent to its witnesses (when it changed since the last time)."""
    witnesses: tuple[str, ...] | None = None
    """Roster names (or node ids) of the hubs that keep this hub's log-book heads; None: the staff hubs in
    the roster (not this one) and one more peer."""
    logbook_live_entries: int = 20_000
    """Log-book entries kept in console.db; older ones move to archive segments (``logbook_archive``)."""
    logbook_block: int = BLOCK
    """Entries per block of the live table, which moves to the archive whole (``logbook_blocks``): the
    live table holds up to a block more than ``logbook_live_entries``."""
    logbook_live_age: float = 7 * 86400.0
    """Seconds an entry stays in console.db at most (``[console] logbook_live_days``); then it moves to an
    archive segment too, except the newest page of entries."""
