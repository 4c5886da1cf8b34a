"""The demo county (示范县): a deterministic, believable county built from seed 003's figures.

``build_demo_county(db)`` fills an empty database with 14 townships, 149 hazard sites (81
landslides, 66 rockfalls, 2 debris flows) threatening 4,789 people and 7,236.5 万元, 32 steep cut
slopes, households, shelters, risk zones, responsible persons, monitors and demo users. All
personal data is synthetic (see ``geowarn.demo.names``).
"""

from geowarn.demo.build import DEMO_SEED, build_demo_county, generate
from geowarn.demo.summary import DemoSummary, DemoUser

__all__ = ["DEMO_SEED", "DemoSummary", "DemoUser", "build_demo_county", "generate"]
