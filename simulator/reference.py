"""Reference vocabularies of the simulated world: nationalities, places, sectors, job codes, visa codes.

Values are integer-coded by their position in these tuples until the frames
are built. Weights are rough shares, not official statistics.
"""

from __future__ import annotations

import numpy as np

from simulator.period import FloatArray

# ISO 3166-1 alpha-3 with a skew like Indonesia's foreign population.
NATIONALITY_WEIGHTS: dict[str, float] = {
    "CHN": 0.22,
    "KOR": 0.06,
    "JPN": 0.07,
    "IND": 0.05,
    "AUS": 0.08,
    "USA": 0.05,
    "MYS": 0.07,
    "SGP": 0.04,
    "RUS": 0.05,
    "GBR": 0.04,
    "DEU": 0.03,
    "FRA": 0.03,
    "NLD": 0.02,
    "PHL": 0.03,
    "TWN": 0.02,
    "THA": 0.015,
    "VNM": 0.015,
    "ITA": 0.01,
    "CAN": 0.01,
    "NZL": 0.01,
    "TUR": 0.01,
    "UKR": 0.01,
    "BGD": 0.01,
    "PAK": 0.01,
    "SAU": 0.01,
}
NATIONALITIES: tuple[str, ...] = tuple(NATIONALITY_WEIGHTS)
# Nationalities whose citizens come more often to work, or more often to visit or retire.
# Only the role mix leans on these, and only mildly; violations never look at nationality.
WORK_LEANING = frozenset({"CHN", "KOR", "JPN", "IND", "PHL", "TWN", "MYS", "VNM", "BGD", "PAK"})
LEISURE_LEANING = frozenset({"AUS", "USA", "GBR", "DEU", "FRA", "NLD", "RUS", "ITA", "CAN", "NZL", "UKR"})

# Immigration checkpoints (TPI) and the BPS district codes of the region each one serves.
REGIONS: dict[str, tuple[str, ...]] = {
    "CGK": (
        "3171",
        "3172",
        "3173",
        "3174",
        "3175",
        "3603",
        "3671",
        "3672",
        "3674",
        "3216",
        "3275",
        "3215",
        "3201",
        "3273",
    ),
    "DPS": ("5103", "5171", "5104"),
    "KNO": ("1271", "1207"),
    "BTH": ("2171", "2102"),
    "SUB": ("3578", "3515", "3525"),
    "UPG": ("7371", "7206", "7404"),
    "BPN": ("6471", "6472"),
    "LOP": ("5201", "5271"),
    "YIA": ("3471", "3404"),
    "MDC": ("7171", "7172"),
}
PORTS: tuple[str, ...] = tuple(REGIONS)
DISTRICTS: tuple[str, ...] = tuple(d for districts in REGIONS.values() for d in districts)
DISTRICT_REGION: np.ndarray = np.array(
    [PORTS.index(port) for port, districts in REGIONS.items() for _ in districts], dtype=np.int64
)
# Where people cross when not at their home region's checkpoint: the big hubs.
HUB_WEIGHTS: dict[str, float] = {"CGK": 0.6, "DPS": 0.25, "SUB": 0.15}

# KBLI 2020 sections used by sponsors, with the regions where each sector's sponsors sit.
COMPANY_SECTORS: dict[str, float] = {
    "C": 0.24,
    "F": 0.12,
    "B": 0.08,
    "G": 0.14,
    "I": 0.10,
    "J": 0.07,
    "K": 0.04,
    "M": 0.10,
    "H": 0.05,
    "N": 0.06,
}
INSTITUTION_SECTORS: dict[str, float] = {"P": 0.8, "Q": 0.2}
SECTORS: tuple[str, ...] = (*COMPANY_SECTORS, *INSTITUTION_SECTORS)
RETIREMENT_AGENT_SECTOR = "N"  # administrative and support services: visa agents
UNIVERSITY_SECTOR = "P"

SECTOR_REGIONS: dict[str, dict[str, float]] = {
    "B": {"UPG": 0.5, "BPN": 0.35, "KNO": 0.05, "CGK": 0.1},
    "C": {"CGK": 0.55, "SUB": 0.2, "BTH": 0.15, "UPG": 0.05, "KNO": 0.05},
    "F": {"CGK": 0.5, "SUB": 0.1, "BPN": 0.15, "DPS": 0.1, "KNO": 0.05, "UPG": 0.1},
    "G": {"CGK": 0.6, "SUB": 0.15, "KNO": 0.1, "DPS": 0.1, "BTH": 0.05},
    "I": {"DPS": 0.6, "LOP": 0.2, "CGK": 0.1, "YIA": 0.05, "BTH": 0.05},
    "J": {"CGK": 0.8, "DPS": 0.1, "SUB": 0.1},
    "K": {"CGK": 0.95, "SUB": 0.05},
    "M": {"CGK": 0.8, "DPS": 0.1, "SUB": 0.1},
    "H": {"CGK": 0.5, "BTH": 0.2, "SUB": 0.2, "KNO": 0.1},
    "N": {"DPS": 0.6, "CGK": 0.3, "LOP": 0.1},
    "P": {"CGK": 0.4, "YIA": 0.3, "SUB": 0.15, "UPG": 0.05, "KNO": 0.05, "DPS": 0.05},
    "Q": {"CGK": 0.6, "DPS": 0.2, "SUB": 0.2},
}
HOUSEHOLD_REGIONS: dict[str, float] = {
    "CGK": 0.45,
    "DPS": 0.25,
    "SUB": 0.08,
    "KNO": 0.05,
    "BTH": 0.05,
    "YIA": 0.05,
    "LOP": 0.04,
    "MDC": 0.03,
}
TOURIST_REGIONS: dict[str, float] = {
    "DPS": 0.5,
    "CGK": 0.22,
    "LOP": 0.08,
    "YIA": 0.06,
    "BTH": 0.05,
    "KNO": 0.03,
    "SUB": 0.03,
    "MDC": 0.03,
}
VISA_RUN_REGIONS: dict[str, float] = {"DPS": 0.55, "BTH": 0.25, "CGK": 0.15, "LOP": 0.05}

# Approved job titles (KBJI-style 4-digit codes) by sponsor sector.
POSITIONS_BY_SECTOR: dict[str, tuple[str, ...]] = {
    "B": ("1322", "2146", "3117", "8111"),
    "C": ("1321", "2141", "2144", "3115", "7233"),
    "F": ("1323", "2142", "3112", "2151"),
    "G": ("1420", "2431", "3322"),
    "I": ("1411", "1412", "3434"),
    "J": ("1330", "2511", "2512"),
    "K": ("1211", "2411"),
    "M": ("2161", "2421", "2611"),
    "H": ("1324", "3152"),
    "N": ("1219", "4221"),
    "P": ("2310", "2320"),
    "Q": ("2211", "2212"),
}
POSITIONS: tuple[str, ...] = tuple(dict.fromkeys(p for ps in POSITIONS_BY_SECTOR.values() for p in ps))

# Visa / stay-permit index codes (open vocabulary in the contract).
VISA_INDEX: tuple[str, ...] = ("B1", "C1", "C2", "E23", "E28A", "E31A", "E31B", "E30A", "E33F")


def weights_over(names: tuple[str, ...], weights: dict[str, float]) -> FloatArray:
    """`weights` as a normalised vector aligned with `names` (missing names weigh 0)."""
    vec = np.array([weights.get(name, 0.0) for name in names], dtype=np.float64)
    return vec / vec.sum()


def district_weights(region_weights: dict[str, float]) -> FloatArray:
    """Weights over DISTRICTS: each region's weight shared evenly by its districts."""
    region = weights_over(PORTS, region_weights)
    sizes = np.bincount(DISTRICT_REGION, minlength=len(PORTS))
    return region[DISTRICT_REGION] / sizes[DISTRICT_REGION]
