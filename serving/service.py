"""The scoring service: BentoML endpoints for other systems, and the supervisor page.

Start it with `timpora serve` (which sets the environment below and runs
`bentoml serve serving.service:InspectionPriority`). At start it loads the
registry's champion (or the version in TIMPORA_MODEL_VERSION) and the data set
in TIMPORA_DATA, and scores the latest date once. Every response that carries
scores names the model version, and every such request is written to the audit
log with the caller's key label and role, never with readable person ids.

Settings (`serving.settings.ServiceSettings`, loaded once when this module is
imported: BentoML reads the traffic settings from the class decorator):
TIMPORA_DATA (data set directory), TIMPORA_MODEL_VERSION (pin a version instead
of the champion), TIMPORA_KEYS_FILE, TIMPORA_AUDIT_LOG, TIMPORA_AUDIT_SECRET, TIMPORA_TRACKING_URI,
TIMPORA_HOME and the `TIMPORA_SERVING__*` and `TIMPORA_DRIFT__*` pieces.
"""

from __future__ import annotations

import os

os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")  # no usage statistics: the service starts offline

import gc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from features.clock import utc_timestamp
from features.loading import load_valid_tables
from models.drift import drift_report
from models.mlflow_store import (
    CHAMPION,
    RegistryBusyError,
    VersionDetails,
    alias_version,
    load_risk_model,
    quiet_mlflow,
    version_details,
)
from serving import metrics_paths, service_log
from serving.access import STATE_KEY, AccessMiddleware, mark_audited
from serving.engine import RequestError, ScoringEngine
from serving.headers import SecurityHeaders
from serving.index import IndexPage
from serving.keys import ApiKey, Role
from serving.request_check import closed
from serving.request_log import AuditLog, hash_ids, load_or_create_secret
from serving.schemas import (
    Capacity,
    DesignKind,
    District,
    DriftInfo,
    ExplainResponse,
    ExplorationShare,
    InspectionListResponse,
    IsoDate,
    ListOptions,
    ModelInfo,
    PermitTypes,
    PersonId,
    PersonIds,
    RedrawReason,
    ScoreResponse,
    Seed,
)
from serving.settings import load_service_settings
from serving.slow_clients import install_header_timeout

PAGE_DIR = Path(__file__).resolve().parent / "page"

SETTINGS = load_service_settings()  # the service's edge: read once, passed down as typed pieces
_SERVING = SETTINGS.serving
logger = logging.getLogger("timpora.serving")
install_header_timeout(_SERVING.header_timeout_s)  # before uvicorn accepts a connection (slow clients)

web = FastAPI(title="Timpora pages", docs_url=None, redoc_url=None, openapi_url=None)


@dataclass(frozen=True)
class _Served:
    """What the service serves, swapped as one reference when the champion moves: a request takes it
    once and finishes on it, so it never mixes two models."""

    engine: ScoringEngine
    cases_latest: int  # cases on the date the data set is known through (the default date)
    drift: DriftInfo | None


def _caller(ctx: bentoml.Context) -> ApiKey | None:
    key = getattr(ctx.request.state, STATE_KEY, None)
    return key if isinstance(key, ApiKey) else None


def _error(ctx: bentoml.Context, error: RequestError) -> Any:
    """A 4xx JSON answer naming the field (BentoML passes a returned Response through unchanged)."""
    ctx.response.status_code = error.status
    return JSONResponse({"error": error.message, "field": error.field}, status_code=error.status)


def _request_key(request: Request) -> ApiKey | None:
    key = getattr(request.state, STATE_KEY, None)
    return key if isinstance(key, ApiKey) else None


def _redraw_refusal(key: ApiKey | None, seed: int | None, reason: str | None) -> RequestError | None:
    """Why a request may not name a seed or re-draw (None if it may): only an analyst, and with a reason."""
    if seed is None and reason is None:
        return None
    if key is None or key.role != Role.ANALYST:
        return RequestError(
            "only an analyst may re-draw a committed list (with redraw_reason, optionally a seed); "
            "without them the list committed for this request is returned",
            "seed" if seed is not None else "redraw_reason",
        )
    if reason is None or not reason.strip():
        return RequestError(
            "a seed re-draws the committed list: give redraw_reason (it is recorded and the earlier "
            "list is superseded), or leave the seed out to get the committed list",
            "redraw_reason",
        )
    return None


@bentoml.service(
    name="timpora-inspection-priority",
    workers=1,  # one copy of the data in memory; LightGBM and numpy use the second core
    traffic={"timeout": _SERVING.request_timeout_s, "max_concurrency": _SERVING.max_concurrency},
    logging={"access": {"enabled": _SERVING.access_log}},
)
@bentoml.asgi_app(web, path="/")
class InspectionPriority:
    """Inspection priority scores with reasons, inspection lists, and the supervisor page."""

    def __init__(self) -> None:
        quiet_mlflow()
        self.tracking = SETTINGS.tracking
        pinned = SETTINGS.model_version
        model, version = load_risk_model(self.tracking, alias=CHAMPION, version=pinned)
        self.alias = None if pinned else CHAMPION
        self.data_dir = SETTINGS.data_dir.resolve()
        engine = ScoringEngine(
            model,
            version,
            load_valid_tables(self.data_dir),
            settings=_SERVING,
            data_dir=self.data_dir,
            dataset=SETTINGS.dataset,
        )
        self.served = self._prepare(engine)
        self._details: tuple[VersionDetails, str] | None = None  # the last details read, with their time
        self._version_details(version)  # shown by /model if the registry is locked later
        self.audit = AuditLog(SETTINGS.audit_path)
        self.audit_secret = load_or_create_secret(SETTINGS.audit_secret_path)  # keys `ids_hmac`
        gc.freeze()  # the data set's objects live as long as the service: keep them out of GC passes (250 ms)
        logger.info(
            "serving model v%s (%s) on %s: %d cases as of %s",
            version,
            self.alias or "pinned",
            self.data_dir,
            self.cases_latest,
            self.engine.known_through,
        )
        self._stopped = threading.Event()
        if self.alias and _SERVING.follow_interval_s > 0:  # a pinned version stays
            threading.Thread(target=self._follow_champion, name="follow-champion", daemon=True).start()

    @property
    def engine(self) -> ScoringEngine:
        return self.served.engine

    @property
    def cases_latest(self) -> int:
        return self.served.cases_latest

    @property
    def drift(self) -> DriftInfo | None:
        return self.served.drift

    def _prepare(self, engine: ScoringEngine) -> _Served:
        """The engine warmed before it serves: the default and the last date scored (about a second
        each; often the same date) and drift measured."""
        cases = len(engine.scored(engine.known_through).table)  # the date a request without as_of gets
        engine.scored(engine.last_date)  # often the same date
        return _Served(engine, cases, self._measure_drift(engine))

    @bentoml.on_shutdown
    def _stop_following(self) -> None:
        self._stopped.set()

    def _follow_champion(self) -> None:
        """Serve the registry's champion as `promote` and `rollback` move it, checked every
        follow_interval_s; a failed check keeps the model in hand and is tried again next time."""
        while not self._stopped.wait(_SERVING.follow_interval_s):
            try:
                self._switch_to_champion()
            except RegistryBusyError as error:
                logger.warning("champion not checked: %s", error)
            except Exception:
                logger.exception("champion not followed: still serving model v%s", self.engine.version)

    def _switch_to_champion(self) -> None:
        """Load, warm and then serve the champion if the alias points to another version than served."""
        current = self.served.engine
        wanted = alias_version(self.tracking, CHAMPION)
        if wanted is None or wanted == current.version:
            return
        start = time.perf_counter()
        model, version = load_risk_model(self.tracking, alias=CHAMPION)  # the version the alias has now
        if version == current.version:
            return
        self.served = self._prepare(current.for_model(model, version))  # one reference: an atomic swap
        self._version_details(version)
        logger.info(
            "champion moved: serving model v%s (was v%s), loaded and warmed in %.1f s",
            version,
            current.version,
            time.perf_counter() - start,
        )
        self.audit.append(
            {
                "event": "model_switched",
                "endpoint": None,
                "status": None,
                "from_version": current.version,
                "to_version": version,
                "model_version": version,
            }
        )

    def _measure_drift(self, engine: ScoringEngine) -> DriftInfo | None:
        """The latest date's cases against the model's training cases (recomputed from this data set)."""
        start = time.perf_counter()
        try:
            report = drift_report(
                engine.model,
                engine.timeline,
                engine.known_through,  # the default date: tables running ahead are stale beyond it
                current=engine.scored(engine.known_through).features,
                max_reference_dates=SETTINGS.drift.service_reference_dates,
                settings=SETTINGS.drift,
            )
        except (ValueError, KeyError) as error:  # e.g. no recorded training window: serve without drift
            logger.warning("drift not measured: %s", error)
            return None
        logger.info("drift measured in %.2f s: %s", time.perf_counter() - start, report.describe())
        s = report.summary
        return DriftInfo(
            as_of=report.as_of.isoformat(),
            reference=report.reference_window,
            max_psi=s.max_psi,
            score_psi=s.score_psi,
            level=s.level.value,
            worst=list(s.worst),
            warning=report.warning(SETTINGS.drift.warn_level),
        )

    def _audit(self, ctx: bentoml.Context, endpoint: str, status: int, **fields: object) -> None:
        self._audit_key(_caller(ctx), endpoint, status, **fields)

    def _audit_key(self, key: ApiKey | None, endpoint: str, status: int, **fields: object) -> None:
        mark_audited()  # this request's audit line: the access middleware writes no second one
        self.audit.append(
            {
                "key_id": key.key_id if key else None,
                "key_label": key.label if key else None,
                "role": key.role.value if key else None,
                "endpoint": endpoint,
                "status": status,
                "model_version": self.engine.version,
                **fields,
            }
        )

    @bentoml.api
    def score(
        self, person_ids: PersonIds, ctx: bentoml.Context, as_of: IsoDate | None = None, reasons: bool = True
    ) -> ScoreResponse:
        """Score, rank and percentile of each person as of a date, with the top reasons.

        Ids that are unknown or not a case on that date come back with their
        status instead of failing the request. Reasons cost about 0.5 ms per id;
        send `"reasons": false` for large batches that need scores only.
        """
        try:
            batch = self.engine.score(person_ids, as_of, reasons)
        except RequestError as error:
            self._audit(
                ctx, "/score", error.status, as_of=as_of, n_requested=len(person_ids), error_field=error.field
            )
            return _error(ctx, error)
        self._audit(
            ctx,
            "/score",
            200,
            as_of=batch.as_of,
            n_requested=len(person_ids),
            n_cases=batch.scored,
            ids_hmac=hash_ids(person_ids, self.audit_secret),
        )
        written: Any = Response(batch.to_json(), media_type="application/json")  # a ScoreResponse, by pandas
        return written  # BentoML passes a Response through

    @bentoml.api
    def explain(
        self, person_id: PersonId, ctx: bentoml.Context, as_of: IsoDate | None = None
    ) -> ExplainResponse:
        """Each feature's value and contribution for one case, by family; reasons in English and Bahasa."""
        try:
            result = self.engine.explain(person_id, as_of)
        except RequestError as error:
            self._audit(ctx, "/explain", error.status, as_of=as_of, n_requested=1, error_field=error.field)
            return _error(ctx, error)
        self._audit(
            ctx,
            "/explain",
            200,
            as_of=result.as_of,
            n_requested=1,
            n_cases=1,
            ids_hmac=hash_ids([person_id], self.audit_secret),
        )
        return result

    @bentoml.api
    def inspection_list(
        self,
        ctx: bentoml.Context,
        as_of: IsoDate | None = None,
        k: Capacity = _SERVING.default_k,
        district: District | None = None,
        permit_types: PermitTypes | None = None,
        exploration_share: ExplorationShare = _SERVING.exploration_share,
        exploration_design: DesignKind = _SERVING.exploration_design,
        seed: Seed | None = None,
        redraw_reason: RedrawReason | None = None,
    ) -> InspectionListResponse:
        """The committed list for a capacity k: the top cases, and an exploration share drawn at random.

        The first request for an as-of date, filters, k, exploration design and
        model version draws the list and commits it; the same request later
        returns that list. Each row says whether the model or the exploration
        draw chose it, with its selection propensity, so the outcomes of the
        visits are evidence. Only an analyst may re-draw a committed list, with a
        `redraw_reason` (and optionally a `seed`): it is recorded and the earlier
        list is superseded, never deleted.
        """
        key = _caller(ctx)
        request = {"as_of": as_of, "k": k, "filters": {"district": district, "permit_types": permit_types}}
        refusal = _redraw_refusal(key, seed, redraw_reason)
        if refusal is not None:
            self._audit(ctx, "/inspection_list", refusal.status, **request, error_field=refusal.field)
            return _error(ctx, refusal)
        try:
            listed = self.engine.inspection_list(
                as_of,
                k,
                district,
                permit_types,
                exploration_share,
                seed,
                exploration_design,
                redraw_reason,
                created_by=key.label if key else None,
            )
        except RequestError as error:
            self._audit(ctx, "/inspection_list", error.status, as_of=as_of, k=k, error_field=error.field)
            return _error(ctx, error)
        result, committed = listed.response, listed.committed
        self._audit(
            ctx,
            "/inspection_list",
            200,
            as_of=result.as_of,
            k=k,
            n_cases=len(result.rows),
            list_id=result.list_id,
            committed=listed.created,  # False: the list committed earlier for this request was returned
            ids_hmac=hash_ids((row.person_id for row in result.rows), self.audit_secret),
            filters={"district": district, "permit_types": list(permit_types or [])},
            exploration={
                **committed.design,
                "seed": committed.seed,
                "n_model": committed.n_model,
                "n_drawn": committed.n_exploration,
                "pool_size": committed.n_eligible - committed.n_model if committed.n_exploration else 0,
                "strata": [
                    {name: stratum[name] for name in ("name", "first_rank", "last_rank", "draws")}
                    for stratum in committed.strata
                ],
            },
            redraw=(
                {"reason": committed.redraw_reason, "replaces": committed.replaces}
                if listed.created and committed.redraw_reason
                else None
            ),
        )
        return result

    @web.get("/lists/{list_id}")
    def list_detail(self, list_id: str, request: Request) -> Any:
        """A committed list in the shape of the /inspection_list answer, with its status and outcomes."""
        key = _request_key(request)
        try:
            result = self.engine.list_response(self.engine.committed_list(list_id), with_outcomes=True)
        except RequestError as error:
            self._audit_key(key, "/lists", error.status, list_id=list_id[:80], error_field=error.field)
            return JSONResponse({"error": error.message, "field": error.field}, status_code=error.status)
        self._audit_key(
            key,
            "/lists",
            200,
            as_of=result.as_of,
            list_id=result.list_id,
            n_cases=len(result.rows),
            ids_hmac=hash_ids((row.person_id for row in result.rows), self.audit_secret),
        )
        return result

    @web.get("/lists/{list_id}/outcomes_template")
    def list_outcomes_template(self, list_id: str, request: Request) -> Response:
        """The list's cases as an inspections file to fill in and ingest (`timpora outcomes-template`)."""
        key = _request_key(request)
        try:
            text = self.engine.outcomes_template_csv(list_id)
        except RequestError as error:
            self._audit_key(
                key, "/lists/template", error.status, list_id=list_id[:80], error_field=error.field
            )
            return JSONResponse({"error": error.message, "field": error.field}, status_code=error.status)
        self._audit_key(key, "/lists/template", 200, list_id=list_id)
        disposition = f'attachment; filename="outcomes-{list_id}.csv"'
        return Response(text, media_type="text/csv", headers={"Content-Disposition": disposition})

    @web.get("/list_options")
    def list_options(self) -> ListOptions:
        """Dates, districts and permit types the supervisor page offers, and any drift warning."""
        return self.engine.options().model_copy(
            update={"drift_warning": self.drift.warning if self.drift else None}
        )

    def _version_details(self, version: str) -> tuple[VersionDetails, str | None] | None:
        """The registry's details of the version and None; while it is locked, the last details read of
        that version and their time (None if there are none). One try (about 0.5 s): an answer is due."""
        try:
            details = version_details(self.tracking, version, attempts=1)
        except RegistryBusyError as error:
            logger.warning("model details from the cache: %s", error)
            cached = self._details
            if cached is None or cached[0].version != version:
                return None
            return cached[0], f"busy, details as of {cached[1]}"
        self._details = (details, utc_timestamp())
        return details, None

    @web.get("/model", response_model=ModelInfo)
    def model(self) -> Any:  # a ModelInfo, or a 503 JSONResponse
        """The model version served: alias, trained-on window, headline metrics, bias flags and drift.

        `alias` is named only while the version served holds it. While the registry
        is locked, the last details read are shown (`registry` says since when), or
        503 if there are none.
        """
        served = self.served
        engine = served.engine
        found = self._version_details(engine.version)
        if found is None:
            return JSONResponse(
                {"error": "the model registry is busy: try again in a moment", "field": None}, status_code=503
            )
        details, registry = found
        model = engine.model
        window = model.info.get("window") or {"split": str(model.info.get("split", "unknown"))}
        return ModelInfo(
            model_name=self.tracking.model_name,
            version=engine.version,
            alias=self.alias if self.alias in details.aliases else None,
            aliases=list(details.aliases),
            objective=model.objective,
            horizon_days=model.horizon_days,
            contract_version=model.contract_version,
            trained_on={str(k): str(v) for k, v in window.items() if k != "train_dates"},
            metrics=details.metrics,
            bias_flags=details.bias_flags,
            data_dir=str(self.data_dir),
            data_last_date=engine.last_date.isoformat(),
            cases_latest=served.cases_latest,
            drift=served.drift,
            registry=registry,
        )

    @web.get("/ui", include_in_schema=False)
    def page_root(self, request: Request) -> RedirectResponse:
        return RedirectResponse(url=str(request.url_for("page", path="/")))


web.mount("/ui", StaticFiles(directory=PAGE_DIR, html=True, check_dir=False), name="page")
InspectionPriority.add_asgi_middleware(  # type: ignore[attr-defined]
    SecurityHeaders  # on every answer, refusals included (see serving/headers.py)
)
InspectionPriority.add_asgi_middleware(  # type: ignore[attr-defined]
    AccessMiddleware,
    keys_file=SETTINGS.keys_path,
    max_body_bytes=_SERVING.max_body_bytes,
    audit_log=SETTINGS.audit_path,  # refusals (400, 401, 403, 413, 415, 5xx) too, rate-limited per source
    input_models={api.route: closed(api.input_spec) for api in InspectionPriority.apis.values()},  # type: ignore[attr-defined]
    metrics_access=_SERVING.metrics_access,
)
metrics_paths.install()  # /metrics: one label for every path outside the service's routes
service_log.install()  # refusals in one INFO line, failed requests without request values


def _served_version() -> str | None:
    """The model version this worker serves now (for `/docs.json`); None before the service starts."""
    try:
        service = bentoml.get_current_service()
    except bentoml.exceptions.BentoMLException:
        return None
    served: _Served | None = getattr(service, "served", None)
    return served.engine.version if served is not None else None


InspectionPriority.add_asgi_middleware(  # type: ignore[attr-defined]  # `/`: our page, not BentoML's
    IndexPage, model_version=_served_version
)
