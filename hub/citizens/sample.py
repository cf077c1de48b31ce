"""A fictitious register for drills and tests: made-up people whose CPR numbers are visibly fake.

Every CPR number has day 00, which no real CPR number has, so a sample row can never be mistaken for a
person (``hub.citizens.records`` accepts day 00 as the test range). Names, streets and contact people
are drawn from short lists of common Danish names; the output is the care system's CSV format.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hub.citizens.records import Citizen, to_csv

FIRST = ("Karen", "Jens", "Inge", "Poul", "Birthe", "Niels", "Hanne", "Erik", "Kirsten", "Ole", "Grethe",
         "Henning", "Lis", "Bent", "Ruth", "Knud")  # fmt: skip
LAST = ("Jensen", "Nielsen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen",
        "Rasmussen", "Jørgensen", "Petersen", "Madsen")  # fmt: skip
STREETS = ("Skovvej", "Bakkevej", "Møllegade", "Kirkevej", "Engvej", "Søndergade", "Vestergade", "Åvej")
BACKUP = ("", "ilt-flasker til 6 timer", "nabo har generator", "datter henter ved strømsvigt", "")
EQUIPMENT = (("oxygen",), ("oxygen",), ("dialysis",), ("ventilator",), ("suction",), ("oxygen", "suction"))
BATTERY = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0)


def sample_citizens(count: int, districts: Sequence[str], *, seed: int = 16) -> list[Citizen]:
    rng = random.Random(seed)
    people = []
    for number in range(count):
        district = districts[number % len(districts)]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        equipment = rng.choice(EQUIPMENT)
        people.append(
            Citizen(
                name=f"{first} {last}",
                cpr=f"00{rng.randint(1, 12):02d}{rng.randint(20, 99):02d}-{number:04d}",
                address=f"{rng.choice(STREETS)} {rng.randint(1, 120)}, {district}",
                district=district,
                equipment=equipment,
                battery_hours=rng.choice(BATTERY),
                backup=rng.choice(BACKUP),
                contact=f"{rng.choice(FIRST)} {last}, tlf. 2{rng.randint(0, 9999999):07d}",
                id=f"{rng.getrandbits(32):08x}",
            )
        )
    return people


def sample_csv(count: int, districts: Sequence[str], *, seed: int = 16) -> str:
    return to_csv(sample_citizens(count, districts, seed=seed))
