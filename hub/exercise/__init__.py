"""Exercises: a scenario of timed injects run on real hubs, every message marked CAP status Exercise.

``scenario`` reads the scenario file, ``audience`` resolves its names against the roster, ``runner``
sends the injects on the hub's clock (pause, resume, end), ``record`` is the journal the timeline and the
after-action report (``report``) read. What every hub does with an exercise's signed controls (banner,
simulated outages) is the engine's (``hub.relay.exercises``). The console and the CLI drive exercises
through this package; it sits above the engine (``hub.relay``) and below the console.
"""
