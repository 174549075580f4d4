"""The feature registry: every model feature's name, family, meaning and unit.

This is the allow-list. The feature matrix holds exactly these columns in this
order; nothing reaches a model unless it is registered here, and no protected
attribute (nationality, sex, birth year) or anything derived from one may be.
Descriptions are in English and Bahasa Indonesia and feed the plain-language
reasons shown to supervisors.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from features.contract import PERMIT_TYPE, SPONSOR_TYPE

# KBLI 2020 sections (Indonesia's business classification), the sector vocabulary.
KBLI_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRSTU")


class Family(StrEnum):
    OVERSTAY = "overstay"
    PERMIT = "permit"
    EMPLOYER = "employer"
    SPONSORSHIP = "sponsorship"
    AGENCY = "agency"
    ADDRESS = "address"
    INSPECTION = "inspection"


FAMILY_LABELS: dict[Family, tuple[str, str]] = {
    Family.OVERSTAY: ("Overstay history", "Riwayat overstay"),
    Family.PERMIT: ("Permit patterns", "Pola izin tinggal"),
    Family.EMPLOYER: ("Employer violations", "Pelanggaran pemberi kerja"),
    Family.SPONSORSHIP: ("Sponsorship patterns", "Pola penjaminan"),
    Family.AGENCY: ("Agency reports", "Laporan instansi"),
    Family.ADDRESS: ("Address reporting", "Pelaporan alamat"),
    Family.INSPECTION: ("Past inspections", "Riwayat pemeriksaan"),
}


class Unit(StrEnum):
    COUNT = "count"
    DAYS = "days"
    FLAG = "flag"
    SHARE = "share"
    RATIO = "ratio"
    CATEGORY = "category"


@dataclass(frozen=True)
class Feature:
    name: str
    family: Family
    unit: Unit
    en: str
    id: str
    categories: tuple[str, ...] | None = None  # closed vocabulary for categorical features

    @property
    def is_categorical(self) -> bool:
        return self.categories is not None


def _f(
    name: str, family: Family, unit: Unit, en: str, id_: str, categories: tuple[str, ...] | None = None
) -> Feature:
    return Feature(name, family, unit, en, id_, categories)


O, P, E, S, A, D, I = (
    Family.OVERSTAY,
    Family.PERMIT,
    Family.EMPLOYER,
    Family.SPONSORSHIP,
    Family.AGENCY,
    Family.ADDRESS,
    Family.INSPECTION,
)

FEATURES: tuple[Feature, ...] = (
    # Overstay history
    _f("overstay_now", O, Unit.FLAG, "In the country without a valid permit", "Berada di Indonesia tanpa izin tinggal yang berlaku"),
    _f("overstay_days_now", O, Unit.DAYS, "Days since permit cover ended while still in the country", "Hari sejak izin tinggal berakhir dan masih berada di Indonesia"),
    _f("past_overstay_exits", O, Unit.COUNT, "Past departures after the permit had ended", "Keberangkatan sebelumnya setelah izin tinggal berakhir"),
    _f("past_overstay_days_total", O, Unit.DAYS, "Total days overstayed at past departures", "Total hari overstay pada keberangkatan sebelumnya"),
    _f("days_since_last_overstay_exit", O, Unit.DAYS, "Days since the last departure after an overstay", "Hari sejak keberangkatan terakhir setelah overstay"),
    # Permit patterns
    _f("current_permit_type", P, Unit.CATEGORY, "Type of the current permit", "Jenis izin tinggal saat ini", PERMIT_TYPE),
    _f("days_to_expiry", P, Unit.DAYS, "Days until the permit cover ends (negative: already ended)", "Hari hingga izin tinggal berakhir (negatif: sudah berakhir)"),
    _f("days_since_permit_issue", P, Unit.DAYS, "Days since the current permit was issued", "Hari sejak izin tinggal saat ini diterbitkan"),
    _f("permits_total", P, Unit.COUNT, "Permits held so far", "Jumlah izin tinggal yang pernah dimiliki"),
    _f("permit_extensions_365d", P, Unit.COUNT, "Permit extensions in the last 365 days", "Perpanjangan izin dalam 365 hari terakhir"),
    _f("permit_conversions_total", P, Unit.COUNT, "Changes of permit type so far", "Alih status izin tinggal sejauh ini"),
    _f("permit_cancellations_total", P, Unit.COUNT, "Permits cancelled early so far", "Izin tinggal yang dibatalkan lebih awal"),
    _f("visa_runs_365d", P, Unit.COUNT, "Quick exit-and-return trips (visa runs) in the last 365 days", "Keluar-masuk singkat (visa run) dalam 365 hari terakhir"),
    _f("entries_365d", P, Unit.COUNT, "Entries into the country in the last 365 days", "Kedatangan ke Indonesia dalam 365 hari terakhir"),
    _f("days_since_last_entry", P, Unit.DAYS, "Days since the last entry into the country", "Hari sejak kedatangan terakhir"),
    # Employer violations (the current sponsor)
    _f("sponsor_labour_findings_365d", E, Unit.COUNT, "Labour findings against the sponsor in the last 365 days", "Temuan ketenagakerjaan terhadap penjamin dalam 365 hari terakhir"),
    _f("sponsor_labour_findings_total", E, Unit.COUNT, "Labour findings against the sponsor so far", "Total temuan ketenagakerjaan terhadap penjamin"),
    _f("sponsor_permit_findings_365d", E, Unit.COUNT, "Sponsor findings for missing RPTKA or unapproved positions in the last 365 days", "Temuan RPTKA/jabatan tidak sesuai pada penjamin dalam 365 hari terakhir"),
    _f("sponsor_inspections_total", E, Unit.COUNT, "Past immigration inspections at the sponsor", "Pemeriksaan keimigrasian sebelumnya di tempat penjamin"),
    _f("sponsor_hit_rate_smoothed", E, Unit.SHARE, "Share of past inspections at the sponsor that found a violation (smoothed)", "Proporsi pemeriksaan di tempat penjamin yang menemukan pelanggaran (dihaluskan)"),
    # Sponsorship patterns
    _f("sponsor_type", S, Unit.CATEGORY, "Type of sponsor", "Jenis penjamin", SPONSOR_TYPE),
    _f("sponsor_sector", S, Unit.CATEGORY, "Business sector of the sponsor (KBLI section)", "Sektor usaha penjamin (seksi KBLI)", KBLI_SECTIONS),
    _f("sponsor_active_persons", S, Unit.COUNT, "Foreign nationals the sponsor currently sponsors", "Jumlah WNA yang saat ini dijamin penjamin"),
    _f("sponsor_active_workers", S, Unit.COUNT, "Foreign workers the sponsor currently sponsors", "Jumlah TKA yang saat ini dijamin penjamin"),
    _f("sponsor_quota_use", S, Unit.RATIO, "Sponsor's foreign workers per approved RPTKA position", "Rasio TKA penjamin terhadap kuota RPTKA"),
    _f("sponsor_workers_over_quota", S, Unit.COUNT, "Sponsor's foreign workers beyond its RPTKA quota", "Jumlah TKA penjamin di atas kuota RPTKA"),
    _f("sponsor_visit_share", S, Unit.SHARE, "Share of the sponsor's persons on visit visas", "Proporsi WNA penjamin yang memegang visa kunjungan"),
    _f("sponsor_growth_90d", S, Unit.RATIO, "Sponsor's new permits in the last 90 days per sponsored person", "Izin baru penjamin dalam 90 hari terakhir per WNA yang dijamin"),
    _f("sponsor_age_days", S, Unit.DAYS, "Days since the sponsor was registered", "Hari sejak penjamin terdaftar"),
    _f("sponsor_switches_total", S, Unit.COUNT, "Changes of sponsor so far", "Pergantian penjamin sejauh ini"),
    # Agency reports
    _f("person_reports_90d", A, Unit.COUNT, "Agency or public reports about the person in the last 90 days", "Laporan instansi/masyarakat tentang orang ini dalam 90 hari terakhir"),
    _f("person_reports_365d", A, Unit.COUNT, "Agency or public reports about the person in the last 365 days", "Laporan instansi/masyarakat tentang orang ini dalam 365 hari terakhir"),
    _f("person_reports_total", A, Unit.COUNT, "Agency or public reports about the person so far", "Total laporan tentang orang ini"),
    _f("person_illegal_work_reports_365d", A, Unit.COUNT, "Reports of illegal work by the person in the last 365 days", "Laporan kerja ilegal oleh orang ini dalam 365 hari terakhir"),
    _f("person_enforcement_reports_365d", A, Unit.COUNT, "Reports from police, military, intelligence, narcotics or prosecutors in the last 365 days", "Laporan Polri, TNI, BIN, BNN atau Kejaksaan dalam 365 hari terakhir"),
    _f("person_manpower_reports_365d", A, Unit.COUNT, "Reports from the manpower office about the person in the last 365 days", "Laporan Disnaker tentang orang ini dalam 365 hari terakhir"),
    _f("person_public_reports_365d", A, Unit.COUNT, "Reports from the public or local government in the last 365 days", "Laporan masyarakat atau pemda dalam 365 hari terakhir"),
    _f("days_since_last_person_report", A, Unit.DAYS, "Days since the last report about the person", "Hari sejak laporan terakhir tentang orang ini"),
    _f("sponsor_reports_90d", A, Unit.COUNT, "Reports about the sponsor in the last 90 days", "Laporan tentang penjamin dalam 90 hari terakhir"),
    _f("sponsor_reports_365d", A, Unit.COUNT, "Reports about the sponsor in the last 365 days", "Laporan tentang penjamin dalam 365 hari terakhir"),
    # Address reporting
    _f("days_since_last_address_report", D, Unit.DAYS, "Days since the last residence report", "Hari sejak laporan alamat terakhir"),
    _f("address_reports_365d", D, Unit.COUNT, "Residence reports in the last 365 days", "Laporan alamat dalam 365 hari terakhir"),
    _f("address_changes_365d", D, Unit.COUNT, "Changes of reported district in the last 365 days", "Perubahan wilayah alamat dalam 365 hari terakhir"),
    _f("no_report_since_entry", D, Unit.FLAG, "No residence report since the last entry", "Tidak ada laporan alamat sejak kedatangan terakhir"),
    _f("work_residence_mismatch", D, Unit.FLAG, "Reported residence differs from the approved work district", "Alamat berbeda dari wilayah kerja yang disetujui"),
    # Past inspections of the person
    _f("past_inspections_total", I, Unit.COUNT, "Past immigration inspections of the person", "Pemeriksaan keimigrasian sebelumnya terhadap orang ini"),
    _f("past_violations_found_total", I, Unit.COUNT, "Past inspections of the person that found a violation", "Pemeriksaan sebelumnya yang menemukan pelanggaran"),
    _f("past_violations_found_365d", I, Unit.COUNT, "Violations found in inspections of the person in the last 365 days", "Pelanggaran ditemukan dalam 365 hari terakhir"),
    _f("days_since_last_inspection", I, Unit.DAYS, "Days since the person was last inspected", "Hari sejak pemeriksaan terakhir"),
    _f("days_since_last_violation_found", I, Unit.DAYS, "Days since a violation was last found", "Hari sejak pelanggaran terakhir ditemukan"),
)  # fmt: skip

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURES_BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}


def features_of(family: Family) -> tuple[Feature, ...]:
    """The registered features of one family, in registry order."""
    return tuple(f for f in FEATURES if f.family == family)
