"""The Raspberry Pi appliance: power source and UPS readings, status LEDs and buttons, and the monitor
that reports power changes as messages.
"""
