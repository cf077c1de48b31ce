"""Exercises: a scenario of timed injects run on real hubs, every message marked CAP status Exercise.

``scenario`` reads the scenario file, ``record`` is the journal the timeline and the after-action report
read. The console and the CLI drive exercises through this package; it sits above the engine
(``hub.relay``) and below the console.
"""
