"""Benchmark: the scoring service over HTTP (a real `timpora serve`) against in-process predict.

    python bench/bench_serve.py            # 350,000 persons (about 100k cases); several minutes
    python bench/bench_serve.py --quick    # a small world and fewer requests: checks the script

Prepared once under var/bench/serve/ (--fresh rebuilds), in a child process so that
this process's peak memory is the measurement's: a model trained with default
options on a 20,000-person world (seed 7) in a bench-only MLflow store and promoted
to champion, and a served world of --persons persons (seed 8, the default period).
Then, on the served world's last date, one record per measurement:
- inprocess_{raw,booster,engine}_<n>: n ids without HTTP: `RiskModel.score(features.loc[ids])`
  on the `score_cases` features (raw), the booster alone on a numpy matrix, and the
  service's `ScoringEngine.score(...).to_json()` (it reads the date's cached scores);
- inprocess_single_reasons: `ScoringEngine.score` of one case with reasons;
- startup: `timpora serve` on a free loopback port until /readyz answers; server RSS;
- score_single, score_single_concurrent: /score of one case with reasons, one at a
  time, then from --concurrency threads (a 503 is retried once after 50 ms);
- score_batch_<n>[_reasons]: 1,000 and 10,000 ids without reasons, 1,000 with;
- inspection_list_k50[_district]: k=50, exploration share 0.1, all cases / one district.
The service caches reasons per case and date, so requests with reasons ask for cases
not asked before (a seeded permutation of the cases). One httpx.Client per thread.
Records append to bench/results/serve.jsonl; a table with the aims checked ends the run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import CODE_PATHS, before_measurement, count_as_own, peak_rss_mib, save

from features.loading import load_valid_tables
from features.tables import write_tables, write_truth
from models.mlflow_store import NoModelError, TrackingConfig, load_risk_model, quiet_mlflow
from models.ranker import feature_matrix
from serving.engine import ScoringEngine
from serving.keys import KeyStore, Role
from serving.process import free_port, running_service, serve_command
from simulator.world import WorldConfig, simulate_world
from training.model_registry import promote
from training.train import TrainOptions
from training.workflow import run_training

VAR = Path(__file__).resolve().parent.parent / "var" / "bench" / "serve"
TRACKING = TrackingConfig(tracking_uri=f"sqlite:///{VAR / 'mlflow.db'}", artifact_root=VAR / "artifacts")
TRAIN_PERSONS, TRAIN_SEED, SERVE_SEED = 20_000, 7, 8
CODE = (*CODE_PATHS, "serving")  # uncommitted changes here are noted in each record
Json = dict[str, Any]


def world_dir(persons: int, seed: int) -> Path:
    return VAR / f"world-{persons}-seed{seed}"


def prepare(persons: int) -> None:
    """Simulate the two worlds and train, register and promote the model, unless already there."""
    quiet_mlflow()
    for n, seed in ((TRAIN_PERSONS, TRAIN_SEED), (persons, SERVE_SEED)):
        out = world_dir(n, seed)
        if out.exists():
            continue
        start, partial = time.perf_counter(), out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        world = simulate_world(WorldConfig(persons=n, seed=seed))
        write_tables(world.tables, partial, "parquet")
        write_truth(world.truth, partial, "parquet")  # training evaluates on it; serving never reads it
        partial.rename(out)  # complete or absent
        print(f"simulated {n:,} persons (seed {seed}) into {out} in {time.perf_counter() - start:.0f} s")
    try:
        load_risk_model(TRACKING)
    except NoModelError:
        outcome = run_training(world_dir(TRAIN_PERSONS, TRAIN_SEED), TrainOptions(), TRACKING)
        if outcome.version is None:
            raise SystemExit(f"the gates refused the bench model: {outcome.gate_failures}") from None
        print(f"trained v{outcome.version}; promoted: {promote(TRACKING).promoted}")


class FreshIds:
    """Case ids in a seeded random order, none repeated until all were handed out."""

    def __init__(self, cases: Sequence[str], seed: int) -> None:
        self.order = [str(i) for i in np.random.default_rng(seed).permutation(np.asarray(cases))]
        self.next, self.wrapped = 0, 0

    def take(self, n: int) -> list[str]:
        if self.next + n > len(self.order):
            self.next, self.wrapped = 0, self.wrapped + 1
        self.next += n
        return self.order[self.next - n : self.next]


def clock(function: Callable[[Any], object], argument: Any, reps: int, warmup: int = 2) -> list[float]:
    """Seconds of each of `reps` calls of `function(argument)` after `warmup` untimed ones."""
    for _ in range(warmup):
        function(argument)
    seconds = []
    for _ in range(reps):
        start = time.perf_counter()
        function(argument)
        seconds.append(time.perf_counter() - start)
    return seconds


def latency(seconds: Sequence[float]) -> Json:
    ms = np.percentile(np.asarray(seconds) * 1000, [50, 90, 99, 100])
    return {
        name: round(float(v), 2) for name, v in zip(("p50_ms", "p90_ms", "p99_ms", "max_ms"), ms, strict=True)
    }


class Recorder:
    """Keeps this run's measurements and appends each to bench/results/serve.jsonl."""

    def __init__(self) -> None:
        self.base: Json = {}
        self.results: dict[str, Json] = {}

    def __call__(self, name: str, state: Json, **values: Any) -> None:
        self.results[name] = values
        save("serve", {"measurement": name, **self.base, **values, **state})


def in_process(data: Path, record: Recorder, reps: int, singles: int, seed: int) -> tuple[list[str], Json]:
    """The same rows scored without HTTP; returns the case ids, the batches' ids and a busy district."""
    model, version = load_risk_model(TRACKING)
    engine = ScoringEngine(model, version, load_valid_tables(data))
    scored = engine.scored(engine.last_date)
    cases = [str(i) for i in scored.table.index]
    rng = np.random.default_rng(seed)
    batches = {n: [str(i) for i in rng.choice(cases, n, replace=n > len(cases))] for n in (1_000, 10_000)}
    district, district_cases = next(iter(scored.table["district"].value_counts().items()))
    record.base |= {"as_of": engine.last_date.isoformat(), "cases": len(cases), "model_version": version}
    record.base["trees"] = model.booster.num_trees()
    print(f"served world: {len(cases):,} cases on {engine.last_date}; model v{version}")
    features = scored.features
    for n, ids in batches.items():
        matrix = feature_matrix(features.loc[ids], model.feature_names)
        for name, function, argument in (
            ("raw", lambda i: model.score(features.loc[i]), ids),
            ("booster", lambda m: model.booster.predict(m, raw_score=True), matrix),
            ("engine", lambda i: engine.score(i, None, False).to_json(), ids),
        ):
            state = before_measurement(CODE)
            median = statistics.median(clock(function, argument, reps))
            timing = {"median_ms": round(median * 1000, 2), "rows_per_s": round(n / median)}
            record(f"inprocess_{name}_{n}", state, ids=n, reps=reps, **timing)
    state, fresh = before_measurement(CODE), FreshIds(cases, seed + 1)
    single = clock(lambda i: engine.score(fresh.take(i), None, True).to_json(), 1, singles, warmup=5)
    record("inprocess_single_reasons", state, requests=singles, **latency(single))
    return cases, {"batches": batches, "district": str(district), "district_cases": int(district_cases)}


class ServerGroup:
    """The processes of the server's process group (it leads a new session): RSS and CPU seconds."""

    def __init__(self, pid: int) -> None:
        self.pid, self.last_cpu_s = pid, 0.0

    def processes(self) -> list[tuple[str, float, float]]:
        """(command, RSS MiB, CPU s) of each live process of the group: psutil, else /proc."""
        try:
            import psutil
        except ImportError:
            found, hz = [], os.sysconf("SC_CLK_TCK")
            for entry in Path("/proc").glob("[0-9]*"):
                try:
                    stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                    status = (entry / "status").read_text()
                    command = b" ".join((entry / "cmdline").read_bytes().split(b"\0")[1:4]).decode()
                except OSError:
                    continue
                if int(stat[2]) == self.pid:  # the process group
                    rss = int(status.split("VmRSS:")[1].split()[0]) / 1024 if "VmRSS:" in status else 0.0
                    found.append((command, rss, (int(stat[11]) + int(stat[12])) / hz))
            return found
        try:
            group = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
            return [
                (" ".join(p.cmdline()[1:4]), p.memory_info().rss / 2**20, sum(p.cpu_times()[:2]))
                for p in group
            ]
        except psutil.Error:  # gone, or going
            return []

    def rss_mib(self) -> Json:
        found = self.processes()
        each = {p[0]: round(p[1], 1) for p in found}
        return {"server_rss_mib": round(sum(p[1] for p in found), 1), "server_processes": each}

    def cpu_s(self) -> float:
        self.last_cpu_s = max(self.last_cpu_s, sum(p[2] for p in self.processes()))  # kept after it exits
        return self.last_cpu_s


@contextmanager
def serving(data: Path, keys: Path, audit: Path, log: Path) -> Iterator[tuple[str, ServerGroup, float]]:
    """`timpora serve` on a free loopback port, once ready; the whole process group is stopped after."""
    env = {
        **os.environ,
        "TIMPORA_TRACKING_URI": TRACKING.tracking_uri,
        "TIMPORA_ARTIFACT_ROOT": str(TRACKING.artifact_root),
        "TIMPORA_KEYS_FILE": str(keys),
        "TIMPORA_AUDIT_LOG": str(audit),
        "BENTOML_HOME": str(VAR / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    port = free_port()
    with running_service(serve_command(data, port), env, port, log, timeout_s=600) as service:
        yield service.url, ServerGroup(service.pid), service.startup_s


class Api:
    """One persistent httpx.Client per thread and role."""

    def __init__(self, url: str, keys: dict[Role, str]) -> None:
        self.url, self.keys, self.local = url, keys, threading.local()
        self.clients: list[httpx.Client] = []

    def post(self, path: str, body: Json, role: Role = Role.SYSTEM) -> tuple[float, httpx.Response]:
        client = getattr(self.local, role.value, None)
        if client is None:
            headers = {"Authorization": f"Bearer {self.keys[role]}"}
            client = httpx.Client(base_url=self.url, headers=headers, timeout=120)
            setattr(self.local, role.value, client)
            self.clients.append(client)
        start = time.perf_counter()
        response = client.post(path, json=body)
        return time.perf_counter() - start, response

    def score_one(self, person: str) -> tuple[float, int, int]:
        """Seconds (with a retry), first and final status of /score for one case with reasons."""
        seconds, response = self.post("/score", {"person_ids": [person], "reasons": True})
        first = response.status_code
        if first == 503:  # overloaded: back off briefly and retry once, as a client should
            time.sleep(0.05)
            again, response = self.post("/score", {"person_ids": [person], "reasons": True})
            seconds += 0.05 + again
        return seconds, first, response.status_code


@contextmanager
def cpu_used(server: ServerGroup, values: Json) -> Iterator[None]:
    """CPU seconds the server and this client spend in the block, added to `values`."""
    server_start, client_start = server.cpu_s(), time.process_time()
    yield
    values["server_cpu_s"] = round(server.cpu_s() - server_start, 2)
    values["client_cpu_s"] = round(time.process_time() - client_start, 2)


def over_http(api: Api, server: ServerGroup, record: Recorder, fresh: FreshIds, ids: Json, opt: Json) -> None:
    """The HTTP measurements, each recorded. `errors`: failed after a retry, or not a full answer."""
    for name, threads in (("score_single", 1), ("score_single_concurrent", opt["concurrency"])):
        state = before_measurement(CODE)
        values: Json = {"threads": threads}
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(api.score_one, fresh.take(opt["warmup"])))  # and each thread's connection
            with cpu_used(server, values):
                start = time.perf_counter()
                done = list(pool.map(api.score_one, fresh.take(opt["requests"])))
                values["requests_per_s"] = round(len(done) / (time.perf_counter() - start), 1)
        values |= {"raw_503": sum(d[1] == 503 for d in done), "raw_non_200": sum(d[1] != 200 for d in done)}
        record(name, state, **latency([d[0] for d in done]), **values, errors=sum(d[2] != 200 for d in done))

    batches = ((1_000, False, opt["reps"]), (10_000, False, opt["reps"]), (1_000, True, opt["reps_reasons"]))
    for n, reasons, reps in batches:
        state, values = before_measurement(CODE), {"ids": n, "reasons": reasons, "reps": reps}
        seconds: list[float] = []
        checks: list[tuple[bool, int, float]] = []
        warmup = 1 if reasons else 2
        with cpu_used(server, values):
            for i in range(warmup + reps):
                asked = fresh.take(n) if reasons else ids["batches"][n]  # reasons are cached: new ids
                took, response = api.post("/score", {"person_ids": asked, "reasons": reasons})
                parse = time.perf_counter()
                ok = response.status_code == 200 and response.json()["scored"] == n
                if i >= warmup:
                    seconds.append(took)
                    checks.append((ok, len(response.content), time.perf_counter() - parse))
        median = statistics.median(seconds)
        values |= {"median_ms": round(1000 * median, 2), "rows_per_s": round(n / median)}
        if not reasons:
            raw = record.results[f"inprocess_raw_{n}"]["rows_per_s"]
            values |= {"raw_rows_per_s": raw, "http_over_raw": round(n / median / raw, 3)}
        values["response_bytes"] = checks[-1][1]
        values["client_parse_ms"] = round(1000 * statistics.median(c[2] for c in checks), 2)
        name = f"score_batch_{n}" + ("_reasons" if reasons else "")
        record(name, state, **values, errors=sum(not c[0] for c in checks))

    for name, district in (("inspection_list_k50", None), ("inspection_list_k50_district", ids["district"])):
        state = before_measurement(CODE)
        values = {"k": 50, "exploration_share": 0.1, "reps": opt["list_reps"]}
        where = {"district": district} if district else {}
        if district:
            values |= {"district": district, "district_cases": ids["district_cases"]}
        seconds, errors = [], 0
        with cpu_used(server, values):
            for i in range(3 + opt["list_reps"]):  # 3 warm-up
                body = {"k": 50, "exploration_share": 0.1, "seed": i, **where}
                took, response = api.post("/inspection_list", body, Role.SUPERVISOR)
                if i >= 3:
                    seconds.append(took)
                    errors += response.status_code != 200 or len(response.json()["rows"]) != 50
        values["median_ms"] = round(1000 * statistics.median(seconds), 2)
        record(name, state, **values, **latency(seconds), errors=errors)
    record("server_after", {}, **server.rss_mib(), fresh_ids_wrapped=fresh.wrapped)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--persons", type=int, help="persons in the served world (350,000; quick 40,000)")
    parser.add_argument("--requests", type=int, help="single-id requests per run (2,000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads of the concurrent run")
    parser.add_argument("--fresh", action="store_true", help="rebuild worlds and model in var/bench/serve")
    parser.add_argument("--quick", action="store_true", help="a small world, fewer requests (a minute)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the ids asked for")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    persons = args.persons or (40_000 if args.quick else 350_000)
    if args.prepare_only:
        prepare(persons)
        return
    if args.fresh:
        shutil.rmtree(VAR, ignore_errors=True)
    subprocess.run([sys.executable, __file__, "--prepare-only", "--persons", str(persons)], check=True)
    quiet_mlflow()
    quick = args.quick
    opt = {
        "requests": args.requests or (200 if quick else 2_000),
        "warmup": 10 if quick else 50,
        "concurrency": args.concurrency,
        "reps": 3 if quick else 20,
        "reps_reasons": 2 if quick else 5,
        "list_reps": 10 if quick else 50,
    }
    record, data = Recorder(), world_dir(persons, SERVE_SEED)
    record.base.update(persons=persons, data=str(data), quick=quick, **opt)
    cases, ids = in_process(data, record, opt["reps"], min(opt["requests"], 500), args.seed)

    keys_file, audit = VAR / "keys.json", VAR / "audit.jsonl"
    keys_file.unlink(missing_ok=True)
    audit.unlink(missing_ok=True)  # a bench-only log: this run's requests
    store = KeyStore(keys_file)
    keys = {role: store.create(role, f"bench-{role.value}")[1] for role in (Role.SYSTEM, Role.SUPERVISOR)}
    with serving(data, keys_file, audit, VAR / "service.log") as (url, server, startup_s):
        count_as_own(server.cpu_s)  # the server's CPU is this benchmark's, not "other processes"
        record("startup", before_measurement(CODE), startup_s=round(startup_s, 2), **server.rss_mib())
        api = Api(url, keys)
        try:
            over_http(api, server, record, FreshIds(cases, args.seed + 2), ids, opt)
        finally:
            for client in api.clients:
                client.close()

    r = record.results
    errors = r["score_single"]["errors"] + r["score_single_concurrent"]["errors"]
    ratio = r["score_batch_10000"]["http_over_raw"]
    aims = {
        "/score 10,000 ids: rows/s >= 0.5 x raw in-process rows/s": ratio >= 0.5,
        "/score 1 id + reasons, one at a time: p99 < 15 ms": bool(r["score_single"]["p99_ms"] < 15),
        "zero errors under the bounded load (a 503 retried once)": errors == 0,
    }
    record("aims", {}, aims=aims, client_peak_rss_mib=round(peak_rss_mib(), 1))
    print_summary(record.base, r, aims)


COLUMNS = {  # heading: record key
    "p50 ms": "p50_ms",
    "p90 ms": "p90_ms",
    "p99 ms": "p99_ms",
    "max ms": "max_ms",
    "median ms": "median_ms",
    "req/s": "requests_per_s",
    "rows/s": "rows_per_s",
    "x raw": "http_over_raw",
    "503s": "raw_503",
    "errors": "errors",
    "server cpu s": "server_cpu_s",
    "client cpu s": "client_cpu_s",
}


def print_summary(base: Json, r: dict[str, Json], aims: dict[str, bool]) -> None:
    """This run's numbers as a table, then the aims."""
    start, after = r["startup"], r["server_after"]
    print(
        f"\n{base['persons']:,} persons, {base['cases']:,} cases on {base['as_of']}; "
        f"model v{base['model_version']} ({base['trees']} trees). To /readyz {start['startup_s']} s; "
        f"server RSS {start['server_rss_mib']:,.0f} MiB when ready, {after['server_rss_mib']:,.0f} MiB after."
    )
    rows = [["measurement", *COLUMNS]]
    for name, x in r.items():
        if any(key in x for key in COLUMNS.values()):
            rows.append([name, *(f"{x[key]:,}" if key in x else "" for key in COLUMNS.values())])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for first, *cells in rows:
        print(first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(cells, widths[1:], strict=True)), sep="  ")
    print("aims:\n" + "\n".join(f"  [{'PASS' if ok else 'MISS'}] {aim}" for aim, ok in aims.items()))


if __name__ == "__main__":
    main()
