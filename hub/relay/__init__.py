"""The relay engine: store, delivery state, link health, policy, router, inbound pipeline, acks, roster
and admission, and ``Hub`` which wires them to the links it is given. Knows links only through
``hub.core.transport``.
"""
