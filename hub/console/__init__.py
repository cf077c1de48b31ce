"""Beredt's web console, served by the hub itself: a staff view and an institution view (Danish first).

``hub.console.routes.setup_console(app, hub)`` mounts it on the hub's aiohttp application; the
console's state and background loops live in ``hub.console.service``; ``hub.console.board`` ranks the
institutions on the staff's status board; ``static/`` holds the plain HTML, CSS and JavaScript app.
"""
