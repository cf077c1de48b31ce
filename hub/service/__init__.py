"""The composition root: configuration, assembling the hub from its config (identity, transports, engine)
and ``beredt run``'s service life cycle (API, console, appliance, systemd notification) in one TaskGroup.
"""
