"""Reports, erasure and retention through the product's own API.

The data: a documented generator (`plan()`, fixed seed) makes 40 clients x
8 visits = 320 visits of two therapists. Each client alternates online
(video) and in-person visits (half the clients start online, so every
visit number has both modalities). Four clients (C-R09, C-R19, C-R29,
C-R39) refuse research consent. The client's end-of-visit total (ap-end,
0..40) is drawn from N(29 + 0.25 (k - 4.5), 4) in person and from the same
minus 2 online (k: the visit number): a planted online - in-person
difference of d = 2/4 = -0.5 (the small formation trend widens the
within-modality SD by about 1 %). The therapist's own end total is the
client's plus N(1, 1.5). Totals are rounded to the 0.1 grid of the VAS
items and split into the four items.

Every visit is loaded with the requests a clinic would send: create (with
its modality, no in-session pulses), therapist join, client join (with its
consent), admit, end, and both end answers with the `answer` request (no
media: in-person visits never have any, and video visits can be created and
ended without it; the end pulses then arrive as Janus events). The
connection-quality side of `compare` needs media, so it is not planted
here: the unit test tests/unit/test_report.c plants and recovers it; here
it must come out empty (n = 0, nothing invented).

Checked:
* `compare` recovers the planted difference: Hedges' g (video - in person)
  equals g computed in Python from the generated totals (to 1e-9), its
  95 % CI contains -0.5 and excludes 0; the formation curve equals the
  per-visit-number means of the generated data;
* research consent: the four clients are absent from `compare`, from
  `visits` with research:true and from the research exports, and present in
  the clinical `summary`;
* `alliance-report` on this database (while Janus runs): `--kind compare
  --format csv` gives the same g, `--export answers` the consented rows
  only, `--html` a self-contained page (mode 0600);
* refusals: 475 wrong key (also a therapist's), 473/474 bad fields, 476 an
  unknown visit, 483 `forget` while the client has an open visit;
* `forget` through the API removes every row about the client, table by
  table (checked with sqlite3), returns that many rows, logs a "forget"
  event naming nobody, and leaves the other clients' rows untouched;
* retention (`retention_days`): an old visit written into the database is
  erased when Janus starts again, and logged.
"""
import array
import asyncio
import csv
import fcntl
import hashlib
import io
import json
import math
import os
import random
import sqlite3
import stat
import subprocess
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import pytest

from harness import store
from harness.alliance import Scope, create_visit, expect, expect_error, join_client, join_therapist
from harness.janus import REPO_ROOT, plugin_so_path


def _report_exe() -> Path:
    """The alliance-report built with the plugin under test: the build dir
    run-all names, else next to the plugin's build tree, else in-tree."""
    build = os.environ.get("ALLIANCE_BUILD_DIR")
    if build:
        return Path(build) / "alliance-report"
    so = plugin_so_path()                    # <build>/plugin/.libs/libjanus_alliance.so
    beside = so.parent.parent.parent / "alliance-report"
    return beside if beside.exists() else REPO_ROOT / "alliance-report"
from harness.pulses import api_answer, expect_stored

GRACE_S = 12      # the end pulses are answered right after `end`; under a loaded machine 2 s was too short
RETENTION_DAYS = 3650
NI_MARGIN = 3.5              # general.noninferiority_margin of this Janus
ALLIANCE_CONFIG = {"end_grace_s": GRACE_S, "max_visits": 1000,
                   "extra_general": f"retention_days = {RETENTION_DAYS}\n"
                                    f"noninferiority_margin = {NI_MARGIN}"}

# -- the generator ---------------------------------------------------------------------
SEED = 20240501
N_CLIENTS = 40
N_VISITS = 8
NO_CONSENT = {9, 19, 29, 39}
SD = 4.0
MEAN_IN_PERSON = 29.0
TREND = 0.25                 # points per visit number, both modalities
D_PLANTED = -0.5             # online minus in person, in SDs
CONCURRENCY = 10


@dataclass
class Planned:
    client: str
    therapist: str
    consent: bool
    number: int              # the client's visit number, 1-based
    modality: str
    total: float             # the client's ap-end total
    ttotal: float            # the therapist's ap-therapist-end total
    visit_id: str = ""


def plan() -> List[Planned]:
    rng = random.Random(SEED)
    out = []
    for c in range(N_CLIENTS):
        for k in range(1, N_VISITS + 1):
            video = (k - 1 + c) % 2 == 0
            mean = MEAN_IN_PERSON + TREND * (k - 4.5) + (D_PLANTED * SD if video else 0.0)
            total = min(40.0, max(0.0, round(rng.gauss(mean, SD), 1)))
            ttotal = min(40.0, max(0.0, round(total + rng.gauss(1.0, 1.5), 1)))
            out.append(Planned(f"C-R{c:02d}", "T-01" if c < N_CLIENTS // 2 else "T-02",
                               c not in NO_CONSENT, k, "video" if video else "in_person", total, ttotal))
    return out


def items(total: float) -> Dict[str, float]:
    """The four 0..10 VAS items (step 0.1) whose sum is `total`: the total's
    tenths shared out as evenly as possible."""
    tenths = int(round(total * 10))
    parts = [tenths // 4 + (1 if i < tenths % 4 else 0) for i in range(4)]
    vals = [p / 10 for p in parts]
    assert all(0 <= x <= 10 for x in vals) and abs(sum(vals) - total) < 1e-9, (total, vals)
    return dict(zip(["goals", "tasks", "bond", "overall"], vals))


def hedges_g(a: List[float], b: List[float]):
    """docs/statistics.md: g = J d, large-sample SE, normal 95 % interval."""
    na, nb = len(a), len(b)
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    sp = math.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    g = (1 - 3 / (4 * (na + nb) - 9)) * (ma - mb) / sp
    se = math.sqrt((na + nb) / (na * nb) + g * g / (2 * (na + nb)))
    return g, g - 1.959963984540054 * se, g + 1.959963984540054 * se


# -- loading through the API -------------------------------------------------------------
LOADED: Dict[str, object] = {}


async def run_visit(janus, keys, v: Planned) -> None:
    async with Scope(janus) as sc:
        key = keys.therapist(v.therapist)
        th = await sc.handle()
        created = await create_visit(th, key, v.client, modality=v.modality,
                                     schedule={"in_session_at_s": []})
        v.visit_id = created["visit_id"]
        await join_therapist(th, v.visit_id, key)
        cl = await sc.handle()
        await join_client(cl, created["invite"], research=v.consent)
        await th.wait_event(alliance="waiting", timeout=5)
        expect(await th.request({"request": "admit"}), "admitted")
        await cl.wait_event(alliance="admitted", timeout=5)
        expect(await th.request({"request": "end"}), "ended")
        cp = (await cl.wait_event(alliance="pulse", timeout=5)).data
        tp = (await th.wait_event(alliance="pulse", timeout=5)).data
        assert cp["instrument"]["id"] == "ap-end" and tp["instrument"]["id"] == "ap-therapist-end"
        expect_stored(await api_answer(cl, cp["pulse_id"], items(v.total)), cp["pulse_id"], True)
        expect_stored(await api_answer(th, tp["pulse_id"], items(v.ttotal)), tp["pulse_id"], True)


async def load(janus, keys) -> List[Planned]:
    """Every planned visit through the API, visit number by visit number
    (so each client's visits are created in order), CONCURRENCY at a time;
    then wait until all are closed (their summaries final)."""
    if "plan" in LOADED:
        return LOADED["plan"]
    visits = plan()
    started = time.monotonic()
    for k in range(1, N_VISITS + 1):
        wave = [v for v in visits if v.number == k]
        for i in range(0, len(wave), CONCURRENCY):
            await asyncio.gather(*(run_visit(janus, keys, v) for v in wave[i:i + CONCURRENCY]))
    ids = [v.visit_id for v in visits]
    assert len(set(ids)) == len(ids)
    await store.wait_rows(janus.db_path, "SELECT count(*) AS n FROM visits WHERE state = 'closed'",
                          predicate=lambda r: r[0]["n"] >= len(visits), timeout=GRACE_S + 20)
    print(f"loaded {len(visits)} visits through the API in {time.monotonic() - started:.1f} s")
    LOADED["plan"] = visits
    return visits


async def report(h, keys, kind, **body):
    r = await h.request({"request": "report", "supervisor_key": keys.supervisor(), "kind": kind, **body})
    # answered off the call path: an event with the request's transaction
    # (PROTOCOL.md v1.1 "Scale"; the harness waits for it)
    assert not r.sync, "report is answered asynchronously"
    return r


def consented(visits):
    return [v for v in visits if v.consent]


# -- tests --------------------------------------------------------------------------------
@pytest.mark.timeout_s(400)
async def test_compare_recovers_planted_difference(janus, keys):
    visits = await load(janus, keys)
    rs = consented(visits)
    async with Scope(janus) as sc:
        h = await sc.handle()
        d = expect(await report(h, keys, "compare"), "report")
    assert d["kind"] == "compare" and d["instrument"] == "ap-end", d.get("instrument")
    assert d["filters"]["research"] is True
    assert d["visits"] == len(rs) == 288
    total = d["scores"][0]
    assert total["score"] == "total"
    a = [v.total for v in rs if v.modality == "video"]
    b = [v.total for v in rs if v.modality == "in_person"]
    assert total["video"]["n"] == len(a) == 144 and total["in_person"]["n"] == len(b) == 144
    assert abs(total["video"]["mean"] - sum(a) / len(a)) < 1e-9
    g, lo, hi = hedges_g(a, b)
    hg = total["hedges_g"]
    print(f"planted d = {D_PLANTED}: g = {hg['g']:.3f} [{hg['lo']:.3f}, {hg['hi']:.3f}] "
          f"(Python: {g:.3f} [{lo:.3f}, {hi:.3f}])")
    assert abs(hg["g"] - g) < 1e-9 and abs(hg["lo"] - lo) < 1e-9 and abs(hg["hi"] - hi) < 1e-9
    assert hg["lo"] <= D_PLANTED <= hg["hi"], "the planted difference is outside the 95 % CI"
    assert hg["hi"] < 0, "the planted difference was not detected"
    # subscales: the four items, each its own subscale
    assert sorted(s["score"] for s in d["scores"][1:]) == ["bond", "goals", "overall", "tasks"]
    # the formation curve: the generated means per visit number
    for mod in ("video", "in_person"):
        pts = d["formation"][mod]
        assert [p["visit"] for p in pts] == list(range(1, N_VISITS + 1)), pts
        for p in pts:
            xs = [v.total for v in rs if v.modality == mod and v.number == p["visit"]]
            assert p["n"] == len(xs) and abs(p["mean"] - sum(xs) / len(xs)) < 1e-9, (mod, p)
            assert p["lo"] < p["mean"] < p["hi"]
    # congruence: client and therapist totals of every visit
    cg = d["congruence"]["all"]
    assert cg["n"] == len(rs)
    assert abs(cg["mean_abs_diff"] - sum(abs(v.total - v.ttotal) for v in rs) / len(rs)) < 1e-9
    assert cg["pearson"]["r"] > 0.8
    # no media, so no connection quality: nothing may be invented
    for q in ("mean_mos", "loss_pct", "freeze_s", "incidents"):
        assert d["quality"][q]["n"] == 0 and d["quality"][q]["rho"] is None, d["quality"]


def lmer_reference(rows):
    """R lme4 + lmerTest (tests/unit/lmm_ref.R) on (total, client, video)
    rows, run now: the online coefficient's estimate, SE, df and 95 % CI."""
    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        f.write("y,g,x1\n")
        for y, g, x in rows:
            f.write(f"{y!r},{g},{x}\n")
        path = f.name
    try:
        out = subprocess.run(["Rscript", "--vanilla", str(REPO_ROOT / "tests" / "unit" / "lmm_ref.R"), path],
                             capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        os.unlink(path)
    for line in out.splitlines():
        parts = line.split()
        if parts[:2] == ["coef", "1"]:
            est, se, df, lo, hi = map(float, parts[2:7])
            return {"estimate": est, "se": se, "df": df, "ci": [lo, hi]}
    raise AssertionError(f"no coefficient in the R output: {out}")


@pytest.mark.timeout_s(400)
async def test_compare_mixed_model_and_noninferiority(janus, keys):
    """`mixed` of the visits loaded through the API agrees with R lmerTest
    run here on the same visits (1e-4); `noninferiority` uses the
    configured margin, or filters.margin, against the mixed CI."""
    visits = await load(janus, keys)
    rs = consented(visits)
    clients = {c: i for i, c in enumerate(sorted({v.client for v in rs}))}
    ref = lmer_reference([(v.total, clients[v.client], int(v.modality == "video")) for v in rs])
    async with Scope(janus) as sc:
        h = await sc.handle()
        d = expect(await report(h, keys, "compare"), "report")
        narrow = expect(await report(h, keys, "compare", filters={"margin": 0.25}), "report")
        for bad in (0, -1, "wide", 1e6):
            expect_error(await h.request({"request": "report", "supervisor_key": keys.supervisor(),
                                          "kind": "compare", "filters": {"margin": bad}}), 474)
    m = d["scores"][0]["mixed"]
    print(f"mixed: {m['estimate']:.4f} [{m['ci'][0]:.4f}, {m['ci'][1]:.4f}] se {m['se']:.4f} df {m['df']:.2f}; "
          f"R: {ref['estimate']:.4f} [{ref['ci'][0]:.4f}, {ref['ci'][1]:.4f}] se {ref['se']:.4f} df {ref['df']:.2f}")
    for k in ("estimate", "se"):
        assert abs(m[k] - ref[k]) < 1e-4, (k, m, ref)
    assert abs(m["ci"][0] - ref["ci"][0]) < 1e-4 and abs(m["ci"][1] - ref["ci"][1]) < 1e-4, (m, ref)
    assert m["n_clients"] == len(clients) == 36 and m["n_therapists"] == 2 and m["refused"] is None
    # two therapists: too few for a therapist term, so the client-only model, which says why
    assert m["model"] == "client" and m["therapist_term"] == "fewer than 5 therapists", m
    assert m["sd_therapist"] is None and "(1 | therapist/client)" not in m["method"], m
    ni = d["scores"][0]["noninferiority"]
    assert ni["margin"] == NI_MARGIN and ni["margin_source"] == "default", ni
    assert ni["lower_bound"] == m["ci"][0] and ni["upper_bound"] == m["ci"][1]
    want = "noninferior" if m["ci"][0] > -NI_MARGIN else "inferior" if m["ci"][1] < -NI_MARGIN else "inconclusive"
    assert ni["conclusion"] == want, (ni, m)
    nn = narrow["scores"][0]["noninferiority"]
    assert nn["margin"] == 0.25 and nn["margin_source"] == "filter" and narrow["filters"]["margin"] == 0.25
    # the planted difference (-2 points) is far beyond a quarter point
    assert nn["conclusion"] == "inferior", nn
    # the naive figures stay beside the model
    assert d["scores"][0]["hedges_g"]["g"] is not None


@pytest.mark.timeout_s(400)
async def test_research_consent_in_reports(janus, keys):
    visits = await load(janus, keys)
    refused = {f"C-R{c:02d}" for c in NO_CONSENT}
    refused_ids = {v.visit_id for v in visits if not v.consent}
    async with Scope(janus) as sc:
        h = await sc.handle()
        summary = expect(await report(h, keys, "summary"), "report")
        research_list = expect(await report(h, keys, "visits", filters={"research": True}), "report")
        clinical_list = expect(await report(h, keys, "visits"), "report")
        one = expect(await report(h, keys, "visit", visit_id=sorted(refused_ids)[0]), "report")
        r = await report(h, keys, "visit", visit_id=sorted(refused_ids)[0], filters={"research": True})
        expect_error(r, 476)
    # the clinical summary has every client, with all their visits
    clients = {c["client_code"]: c for c in summary["clients"]}
    assert refused <= set(clients)
    for code in refused:
        assert clients[code]["visits"] == N_VISITS and clients[code]["scored"] == N_VISITS
    assert summary["visits"] == len(visits)
    assert {t["therapist_code"] for t in summary["therapists"]} == {"T-01", "T-02"}
    # the research list has none of their visits; the clinical one has them all
    assert not refused_ids & {v["visit_id"] for v in research_list["visits"]}
    assert research_list["n"] == len(consented(visits))
    assert refused_ids <= {v["visit_id"] for v in clinical_list["visits"]}
    # the supervisor can read one such visit clinically
    assert one["visit"]["research_consent"] is False and len(one["pulses"]) == 2
    assert {p["role"] for p in one["participants"]} == {"therapist", "client"}


def db_args(janus):
    """alliance-report's database option for this Janus's store."""
    db = janus.db_path
    return ["--db-url", db.url] if hasattr(db, "url") else ["--db", str(db)]


def on_pg(janus) -> bool:
    return hasattr(janus.db_path, "url")


def cli(*args, check=True):
    exe = Path(os.environ.get("ALLIANCE_REPORT", _report_exe()))
    assert exe.exists(), f"{exe} not built (make)"
    r = subprocess.run([str(exe), "--instruments", str(REPO_ROOT / "conf" / "instruments"), *args],
                       capture_output=True, text=True, timeout=120)
    if check:
        assert r.returncode == 0, f"alliance-report {args}: {r.returncode}\n{r.stderr}"
    return r


@pytest.mark.timeout_s(400)
async def test_alliance_report_on_the_database(janus, keys, tmp_path):
    visits = await load(janus, keys)
    db = db_args(janus)
    # compare as tidy CSV: the same g as the API and as Python
    r = cli(*db, "--kind", "compare", "--format", "csv", "-q")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    g_row = [x for x in rows if x["section"] == "hedges_g" and x["score"] == "total"][0]
    rs = consented(visits)
    g, _, _ = hedges_g([v.total for v in rs if v.modality == "video"],
                       [v.total for v in rs if v.modality == "in_person"])
    assert abs(float(g_row["estimate"]) - g) < 1e-9 and int(g_row["n"]) == 288, g_row
    # and the model of clients, the same as R's on the same visits; --margin
    clients = {c: i for i, c in enumerate(sorted({v.client for v in rs}))}
    ref = lmer_reference([(v.total, clients[v.client], int(v.modality == "video")) for v in rs])
    r = cli(*db, "--kind", "compare", "--format", "csv", "-q", "--margin", "0.25")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    m_row = [x for x in rows if x["section"] == "mixed" and x["score"] == "total"][0]
    assert m_row["modality"] == "video - in_person" and int(m_row["n"]) == 288, m_row
    for k, want in (("estimate", ref["estimate"]), ("lo", ref["ci"][0]), ("hi", ref["ci"][1])):
        assert abs(float(m_row[k]) - want) < 1e-4, (k, m_row, ref)
    ni_row = [x for x in rows if x["section"] == "noninferiority" and x["score"] == "total"][0]
    assert float(ni_row["estimate"]) == 0.25 and ni_row["modality"] == "inferior", ni_row
    assert cli(*db, "--kind", "compare", "--margin", "-1", check=False).returncode == 2
    # the research export of answers: one row per item of consented visits only
    out = tmp_path / "answers.csv"
    r = cli(*db, "--export", "answers", "-o", str(out))
    assert "answers rows written" in r.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with open(out, newline="") as f:
        ans = list(csv.DictReader(f))
    assert len(ans) == len(rs) * 8          # 4 client + 4 therapist items per visit
    assert not {a["client_code"] for a in ans} & {f"C-R{c:02d}" for c in NO_CONSENT}
    by_visit = {v.visit_id: v for v in rs}
    for a in ans:
        v = by_visit[a["visit_id"]]
        assert a["modality"] == v.modality and int(a["visit_number"]) == v.number
        assert a["final"] == "true" and a["kind"] == "end"
    client_sum = {}
    for a in ans:
        if a["role"] == "client":
            client_sum[a["visit_id"]] = client_sum.get(a["visit_id"], 0) + float(a["value"])
    assert all(abs(client_sum[i] - by_visit[i].total) < 1e-9 for i in client_sum)
    # the visits export and the JSON format
    cli(*db, "--export", "visits", "--format", "json", "-o", str(tmp_path / "v.json"))
    doc = json.loads((tmp_path / "v.json").read_text())
    assert doc["research_only"] is True and len(doc["rows"]) == len(rs)
    # the HTML report
    html = tmp_path / "report.html"
    cli(*db, "--html", str(html), "-q")
    page = html.read_text()
    assert stat.S_IMODE(os.stat(html).st_mode) == 0o600
    assert page.count("<svg") == 3 and "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "C-R00" in page                    # the clinical tables
    # usage errors
    assert cli(*db, "--kind", "nope", check=False).returncode == 2
    assert cli("--db", str(tmp_path / "missing.sqlite"), check=False).returncode == 1
    assert not (tmp_path / "missing.sqlite").exists()


def _data_files(db) -> Dict[str, str]:
    """SHA-256 of the database file and its WAL (the -shm holds the readers'
    marks, not data; a missing WAL and an empty one hold the same: nothing)."""
    out = {}
    for suffix in ("", "-wal"):
        p = Path(str(db) + suffix)
        data = p.read_bytes() if p.exists() else b""
        out[suffix or "db"] = hashlib.sha256(data).hexdigest()
    return out


def _pipe_filled(fd) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf, True)
    return buf[0]


@pytest.mark.timeout_s(400)
async def test_alliance_report_next_to_the_plugin(janus, keys, tmp_path):
    """alliance-report beside a running plugin: its reads write nothing (the
    database and its WAL are byte for byte the same afterwards), an export
    stalled mid-read (its output pipe full, its read transaction open) does
    not delay the plugin's writes (a visit runs and its answers are
    acknowledged after commit meanwhile; the export, one snapshot, does not
    see them), a database of another schema version is refused untouched,
    and --forget honours the open-visit guard of the plugin's `forget`."""
    visits = await load(janus, keys)
    rs = consented(visits)
    db = str(janus.db_path)
    dba = db_args(janus)
    # 1. reads write nothing (the plugin is idle: no visit runs). SQLite: the
    # files are compared; PostgreSQL: the sessions are read-only (the unit
    # test open/for-reading shows a write refused), nothing to compare here
    await asyncio.sleep(0.5)
    before = _data_files(db) if not on_pg(janus) else None
    for args in (("--kind", "summary"), ("--kind", "compare", "--format", "json"),
                 ("--kind", "visits", "--format", "csv"), ("--export", "samples"),
                 ("--html", str(tmp_path / "r.html"))):
        cli(*dba, "-q", *args)
    if before is not None:
        assert _data_files(db) == before, "alliance-report changed the database"

    # 2. no lock: an export that stops mid-read while the plugin writes
    exe = Path(os.environ.get("ALLIANCE_REPORT", _report_exe()))
    p = subprocess.Popen([str(exe), "--instruments", str(REPO_ROOT / "conf" / "instruments"), *dba,
                          "--export", "answers", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _pipe_filled(p.stdout.fileno()) < 60000:
            assert p.poll() is None, f"the export ended early: {p.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the export did not fill its pipe"
            await asyncio.sleep(0.05)
        extra = Planned(therapist="T-01", client="C-LIVE", number=1, modality="video",
                        consent=True, total=20.0, ttotal=21.0)
        await run_visit(janus, keys, extra)        # acked after commit, or it fails
        got = store.rows(janus.db_path, "SELECT count(*) AS n FROM answer_items i JOIN pulses p"
                         " USING (pulse_id) WHERE p.visit_id = ?", (extra.visit_id,))
        assert got[0]["n"] == 8, got
        assert p.poll() is None, "the export should still be waiting on its pipe"
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode()
    exported = list(csv.DictReader(io.StringIO(out.decode())))
    assert len(exported) == len(rs) * 8, "the export is one snapshot: the visit run meanwhile is not in it"
    assert "C-LIVE" not in {a["client_code"] for a in exported}

    # 3. another schema version: refused, the file untouched (SQLite; the
    # PostgreSQL open's version check: unit test open/for-reading)
    if not on_pg(janus):
        refuse_other_version(db, tmp_path)

    # 4. --forget: refused while the client's visit is open, then done
    async with Scope(janus) as sc:
        key = keys.therapist()
        th = await sc.handle()
        created = await create_visit(th, key, "C-CLIOPEN")
        await join_therapist(th, created["visit_id"], key)
        await store.wait_row(janus.db_path, "SELECT 1 FROM visits WHERE client_code = 'C-CLIOPEN'")
        r = cli(*dba, "--forget", "C-CLIOPEN", check=False)
        assert r.returncode == 1 and "not closed" in r.stderr, r.stderr
        assert store.rows(janus.db_path, "SELECT visit_id FROM visits WHERE client_code = 'C-CLIOPEN'")
        expect(await th.request({"request": "end"}), "ended")
        await store.wait_row(janus.db_path, "SELECT 1 FROM visits WHERE client_code = 'C-CLIOPEN'"
                             " AND state = 'closed'", timeout=GRACE_S + 5)
    r = cli(*dba, "--forget", "C-CLIOPEN")
    assert "erased" in r.stdout, r.stdout
    assert not store.rows(janus.db_path, "SELECT visit_id FROM visits WHERE client_code = 'C-CLIOPEN'")


def refuse_other_version(db, tmp_path):
    old = tmp_path / "old.sqlite"
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(str(old))
    src.backup(dst)
    src.close()
    dst.execute("DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    dst.commit()
    dst.close()
    os.chmod(old, 0o600)
    old_before = _data_files(old)
    r = cli("--db", str(old), "--kind", "summary", check=False)
    assert r.returncode == 1 and "schema version" in r.stderr and "never writes" in r.stderr, r.stderr
    assert _data_files(old) == old_before


@pytest.mark.timeout_s(120)
async def test_report_and_forget_refusals(janus, keys):
    async with Scope(janus) as sc:
        h = await sc.handle()
        sup = keys.supervisor()
        cases = [
            ({"request": "report", "supervisor_key": "x" * 43, "kind": "summary"}, 475),
            ({"request": "report", "supervisor_key": keys.therapist(), "kind": "summary"}, 475),
            ({"request": "report", "kind": "summary"}, 473),
            ({"request": "report", "supervisor_key": sup}, 473),
            ({"request": "report", "supervisor_key": sup, "kind": "everything"}, 474),
            ({"request": "report", "supervisor_key": sup, "kind": "visit"}, 473),
            ({"request": "report", "supervisor_key": sup, "kind": "visit", "visit_id": "nope"}, 476),
            ({"request": "report", "supervisor_key": sup, "kind": "compare", "format": "csv"}, 474),
            ({"request": "report", "supervisor_key": sup, "kind": "visits",
              "filters": {"from": "yesterday"}}, 474),
            ({"request": "report", "supervisor_key": sup, "kind": "visits",
              "filters": {"therapist_code": "T-01"}}, 474),
            ({"request": "forget", "supervisor_key": sup}, 473),
            ({"request": "forget", "supervisor_key": sup, "client_code": "Jane Doe"}, 474),
            ({"request": "forget", "supervisor_key": "x" * 43, "client_code": "C-R01"}, 475),
        ]
        for body, code in cases:
            expect_error(await h.request(body), code)
        # a client with an open visit cannot be forgotten yet
        key = keys.therapist()
        th = await sc.handle()
        created = await create_visit(th, key, "C-OPEN")
        await join_therapist(th, created["visit_id"], key)
        expect_error(await h.request({"request": "forget", "supervisor_key": sup,
                                      "client_code": "C-OPEN"}), 483)
        # (the visit row is a queued write: wait for it rather than read at once)
        await store.wait_row(janus.db_path, "SELECT count(*) AS n FROM visits WHERE client_code = 'C-OPEN'",
                             predicate=lambda r: r["n"] == 1)
        expect(await th.request({"request": "end"}), "ended")
        await store.wait_row(janus.db_path, "SELECT 1 FROM visits WHERE client_code = 'C-OPEN'"
                             " AND state = 'closed'", timeout=GRACE_S + 5)
        await asyncio.sleep(0.5)                 # the close is stored before the visit leaves memory
        d = expect(await h.request({"request": "forget", "supervisor_key": sup,
                                    "client_code": "C-OPEN"}), "forgotten")
        assert d["rows"] >= 3                    # visit, participant, end pulses, summary


TABLES = ["visits", "participants", "pulses", "answers", "answer_items", "scores", "alerts",
          "events", "quality_samples", "incidents", "visit_summaries"]


def rows_about(db, client) -> Dict[str, int]:
    """Rows about one client, table by table (through its visits, or
    carrying its code)."""
    vids = [r["visit_id"] for r in store.rows(db, "SELECT visit_id FROM visits WHERE client_code = ?", (client,))]
    vq = ",".join("?" * len(vids)) or "NULL"
    pids = [r["pulse_id"] for r in store.rows(db, f"SELECT pulse_id FROM pulses WHERE visit_id IN ({vq})", vids)]
    pq = ",".join("?" * len(pids)) or "NULL"
    out = {}
    for t in TABLES:
        if t in ("visits", "visit_summaries"):
            sql, args = f"SELECT count(*) AS n FROM {t} WHERE client_code = ?", [client]
        elif t in ("answers", "answer_items", "scores"):
            sql, args = f"SELECT count(*) AS n FROM {t} WHERE pulse_id IN ({pq})", pids
        elif t == "participants":
            sql, args = f"SELECT count(*) AS n FROM {t} WHERE code = ? OR visit_id IN ({vq})", [client] + vids
        elif t == "events":
            sql, args = (f"SELECT count(*) AS n FROM {t} WHERE visit_id IN ({vq})"
                         " OR coalesce(detail_json, '') LIKE ?", vids + [f"%{client}%"])
        else:
            sql, args = f"SELECT count(*) AS n FROM {t} WHERE visit_id IN ({vq})", vids
        out[t] = store.one(db, sql, args)["n"]
    return out


def table_counts(db) -> Dict[str, int]:
    return {t: store.one(db, f"SELECT count(*) AS n FROM {t}")["n"] for t in TABLES}


@pytest.mark.timeout_s(400)
async def test_forget_through_the_api(janus, keys):
    visits = await load(janus, keys)
    db = janus.db_path
    gone, kept = "C-R03", "C-R04"
    before = rows_about(db, gone)
    print("rows about the client:", before)
    for t in ("visits", "participants", "pulses", "answers", "answer_items", "scores",
              "visit_summaries"):
        assert before[t] > 0, (t, before)
    assert before["visits"] == N_VISITS and before["answer_items"] == N_VISITS * 8
    kept_before = rows_about(db, kept)
    totals_before = table_counts(db)
    async with Scope(janus) as sc:
        h = await sc.handle()
        d = expect(await h.request({"request": "forget", "supervisor_key": keys.supervisor(),
                                    "client_code": gone}), "forgotten")
        assert d["rows"] == sum(before.values()), (d, before)
        after = rows_about(db, gone)
        assert after == {t: 0 for t in TABLES}, after
        assert rows_about(db, kept) == kept_before
        totals_after = table_counts(db)
        for t in TABLES:
            # every other row stays; events gain the one "forget" row
            assert totals_after[t] == totals_before[t] - before[t] + (1 if t == "events" else 0), t
        ev = store.rows(db, "SELECT visit_id, detail_json FROM events WHERE kind = 'forget'")
        assert ev and all(e["visit_id"] is None for e in ev)
        assert all(gone not in e["detail_json"] and "C-" not in e["detail_json"] for e in ev)
        ids = {v.visit_id for v in visits if v.client == gone}
        assert all(i not in e["detail_json"] for e in ev for i in ids)
        # the reports know nothing of the client any more
        lst = expect(await report(h, keys, "visits", filters={"client": gone}), "report")
        assert lst["n"] == 0
        summary = expect(await report(h, keys, "summary"), "report")
        assert gone not in {c["client_code"] for c in summary["clients"]}
        # forgetting again erases nothing more
        d = expect(await h.request({"request": "forget", "supervisor_key": keys.supervisor(),
                                    "client_code": gone}), "forgotten")
        assert d["rows"] == 0


@pytest.mark.timeout_s(120)
async def test_retention_at_start(janus, keys):
    """An old visit written into the database (as an older build might have left it) is erased
    when Janus starts again with retention_days set; recent visits stay."""
    db = janus.db_path
    old = int((time.time() - (RETENTION_DAYS + 30) * 86400) * 1e6)
    store.write(db, [
        ("INSERT INTO visits(visit_id, therapist_code, client_code, modality, state,"
         " created_at, ended_at, closed_at) VALUES ('ancient', 'T-01', 'C-OLD', 'video',"
         " 'closed', ?, ?, ?)", (old, old + 1, old + 2)),
        ("INSERT INTO participants(visit_id, role, code, research_consent, joined_at)"
         " VALUES ('ancient', 'client', 'C-OLD', 1, ?)", (old,)),
        ("INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
         " VALUES ('ancient', 'client_up', 'audio', ?, '{}')", (old,)),
    ])
    recent = store.one(db, "SELECT count(*) AS n FROM visits")["n"] - 1
    last = store.one(db, "SELECT coalesce(max(id), 0) AS id FROM events")["id"]
    janus.restart(hard=False)
    # this start's retention run (the first start logged one too)
    row = await store.wait_row(db, "SELECT detail_json FROM events WHERE kind = 'retention' AND id > ?"
                               " ORDER BY id DESC LIMIT 1", (last,), timeout=10)
    assert store.one(db, "SELECT count(*) AS n FROM visits WHERE visit_id = 'ancient'")["n"] == 0
    assert store.one(db, "SELECT count(*) AS n FROM participants WHERE code = 'C-OLD'")["n"] == 0
    assert store.one(db, "SELECT count(*) AS n FROM quality_samples WHERE visit_id = 'ancient'")["n"] == 0
    assert store.one(db, "SELECT count(*) AS n FROM visits")["n"] == recent
    # visit, participant, sample, and the summary the restart's backfill made
    detail = json.loads(row["detail_json"])
    assert detail["days"] == RETENTION_DAYS and detail["visits"] == 1 and detail["rows"] == 4, detail
    assert detail["tables"]["visit_summaries"] == 1, detail
    assert "C-OLD" not in row["detail_json"]
