"""The kernel every layer may use: the exception tree, frame codec, fragmentation, clock, keys, sealing,
message kinds, the transport contract and task helpers. Nothing here imports another Beredt package.
"""
