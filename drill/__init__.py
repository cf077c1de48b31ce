"""The telecom-collapse drill: five real hubs, every field link simulated, and a script of faults.

``topology`` writes the hubs' configs, keys and rosters; ``proxy`` is the switch that cuts the internet;
``sims`` runs Mosquitto and the radio and satellite simulators; ``runner`` starts the hubs and applies
faults; ``script`` plays the stages and measures them; ``cli`` registers ``beredt simulate``.
"""

from hub.core.errors import DrillError

__all__ = ["DrillError"]
