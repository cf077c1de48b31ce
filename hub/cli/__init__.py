"""The ``beredt`` command: one argparse tree for running a hub, talking to a running one, users and the
log book, and the drill (``beredt simulate``).
"""
