"""Beredt's web console, served by the hub itself: a staff view and an institution view (Danish first).

``routes.setup_console(app, hub)`` mounts it on the hub's aiohttp application. ``service`` holds the
console's state and background loops (hub events, the inbox, roll-call decisions); ``board`` ranks the
institutions on the staff's status board; ``messages`` turns stored frames into what the browser shows;
``exchange`` moves CAP 1.2 documents in and out; ``state`` keeps roll-calls across restarts; ``admin`` is
the shell tool for users and the log book; ``static/`` holds the plain HTML, CSS and JavaScript app.
"""
