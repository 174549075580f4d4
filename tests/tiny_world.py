"""A hand-built world of six persons and two sponsors, small enough to work out by hand.

As of T = 2024-06-30 (see tests/test_features.py for the expected values):
- P1: VISIT then ITAS_WORK at S1 (a conversion), reports its address, one manpower tip.
- P2: entered on a VOA that expired 2024-02-08 and never left: overstaying 143 days.
- P3: ITAS_WORK at S1 valid until T exactly, no crossings; extended and cancelled after T.
- P4: visitor doing visa runs; overstayed 5 days before one exit; switched sponsor S2 -> S1.
- P5: left the country on 2024-05-01 although the permit is still valid: not a case.
- P6: ITAP holder with no crossings: a case through the valid permit.
Rows dated after T exist in several tables; they must not move any feature as of T.
"""

from __future__ import annotations

import pandas as pd

from features.tables import Tables, make_tables

AS_OF = "2024-06-30"


def _frame(columns: str, rows: list[tuple[object, ...]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns.split())


def tiny_tables() -> Tables:
    persons = _frame(
        "person_id nationality sex birth_year",
        [
            ("P1", "CHN", "M", 1985),
            ("P2", "RUS", "F", 1990),
            ("P3", "KOR", "M", 1979),
            ("P4", "AUS", "M", 1995),
            ("P5", "JPN", "F", 1970),
            ("P6", "NLD", "X", 1950),
        ],
    )
    sponsors = _frame(
        "sponsor_id sponsor_type sector district registered_date rptka_quota",
        [
            ("S1", "COMPANY", "C", "3672", "2020-01-01", 2),
            ("S2", "INDIVIDUAL", None, "3171", "2023-01-01", None),
        ],
    )
    permits = _frame(
        "permit_id person_id sponsor_id permit_type position work_district "
        "issue_date expiry_date cancelled_date",
        [
            ("PM1", "P1", "S1", "VISIT", None, None, "2024-01-01", "2024-02-29", None),
            ("PM2", "P1", "S1", "ITAS_WORK", "ENG", "3672", "2024-03-01", "2025-02-28", None),
            ("PM3", "P2", None, "VOA", None, None, "2024-01-10", "2024-02-08", None),
            ("PM4", "P3", "S1", "ITAS_WORK", "MGR", "3672", "2023-07-01", "2024-06-30", "2024-08-01"),
            ("PM5", "P3", "S1", "ITAS_WORK", "MGR", "3672", "2024-07-01", "2025-06-30", None),
            ("PM6", "P4", "S2", "VISIT", None, None, "2024-01-05", "2024-03-01", None),
            ("PM7", "P4", "S2", "VISIT", None, None, "2024-03-03", "2024-04-25", None),
            ("PM8", "P4", "S1", "VISIT", None, None, "2024-05-02", "2024-07-30", None),
            ("PM9", "P5", "S2", "ITAS_FAMILY", None, None, "2024-01-01", "2024-12-31", None),
            ("PM10", "P6", None, "ITAP", None, None, "2020-01-01", "2029-12-31", None),
        ],
    )
    crossings = _frame(
        "person_id crossing_date direction port",
        [
            ("P1", "2024-01-01", "IN", "CGK"),
            ("P2", "2024-01-10", "IN", "DPS"),
            ("P4", "2024-01-05", "IN", "DPS"),
            ("P4", "2024-03-01", "OUT", "DPS"),
            ("P4", "2024-03-03", "IN", "DPS"),
            ("P4", "2024-04-30", "OUT", "DPS"),
            ("P4", "2024-05-02", "IN", "DPS"),
            ("P5", "2024-01-01", "IN", "CGK"),
            ("P5", "2024-05-01", "OUT", "CGK"),
            ("P1", "2024-07-20", "OUT", "CGK"),
        ],
    )
    addresses = _frame(
        "person_id report_date district reporter",
        [
            ("P1", "2024-01-05", "3171", "HOTEL"),
            ("P1", "2024-03-10", "3672", "SPONSOR"),
            ("P1", "2024-06-01", "3673", "SELF"),
            ("P1", "2024-07-15", "3672", "SELF"),
            ("P4", "2024-01-06", "5103", "HOTEL"),
        ],
    )
    agency = _frame(
        "report_id report_date agency person_id sponsor_id category",
        [
            ("AR1", "2024-06-15", "MANPOWER", "P1", None, "ILLEGAL_WORK"),
            ("AR2", "2024-01-20", "POLICE", "P2", None, "PUBLIC_ORDER"),
            ("AR3", "2024-05-01", "PUBLIC", None, "S1", "OTHER"),
            ("AR4", "2024-07-05", "POLICE", "P1", None, "PUBLIC_ORDER"),
        ],
    )
    labour = _frame(
        "sponsor_id finding_date violation",
        [
            ("S1", "2023-03-01", "LEVY_UNPAID"),
            ("S1", "2024-02-01", "NO_RPTKA"),
            ("S1", "2024-08-01", "OTHER"),
        ],
    )
    inspections = _frame(
        "inspection_id person_id sponsor_id inspection_date trigger violation_found violation_type action "
        "selection_propensity",
        [
            ("I1", "P2", None, "2024-02-15", "TARGETED", False, None, "NONE", None),
            ("I2", "P3", "S1", "2024-04-01", "ROUTINE", True, "UNAPPROVED_WORK", "FINE", None),
            ("I3", "P1", "S1", "2024-05-01", "ROUTINE", False, None, "NONE", None),
            ("I4", "P2", None, "2024-07-10", "RANDOM", True, "OVERSTAY", "DEPORTATION", 0.05),
            ("I5", "P1", None, "2024-08-01", "TIP", False, None, "NONE", None),
            ("I6", "P6", None, "2024-09-01", "RANDOM", False, None, "NONE", 0.04),
        ],
    )
    return make_tables(
        {
            "persons": persons,
            "sponsors": sponsors,
            "permits": permits,
            "border_crossings": crossings,
            "address_reports": addresses,
            "agency_reports": agency,
            "labour_violations": labour,
            "inspections": inspections,
        }
    )
