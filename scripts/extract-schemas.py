#!/usr/bin/env python3
"""Extract CloudFormation resource provider schemas from cfn-lint's published package.

cfn-lint (https://github.com/aws-cloudformation/cfn-lint, licence MIT-0) ships the
resource provider schemas of every region in its wheel. Cumulo checks in the us-east-1
set, trimmed to what validation and change sets need, as crates/cfn-schema/data:

  resources.jsonl  one line per resource type: "<TypeName>\t<schema JSON>", sorted
  VERSION          the cfn-lint version, wheel sha256, schema date and type count

Usage:
  scripts/extract-schemas.py            regenerate the checked-in data
  scripts/extract-schemas.py --check    exit 1 if the checked-in data differs from
                                        what this script produces

The wheel is fetched with `pip download` into target/cfn-lint (or $CUMULO_WHEEL_DIR)
and its sha256 is checked against the one pinned below.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import zipfile

CFN_LINT_VERSION = "1.58.0"
WHEEL_SHA256 = "9d9f06043160756a6158f5c3f92a44ce38254b1c578127461608305bc8262987"
REGION = "us-east-1"

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT_DIR = os.path.join(ROOT, "crates", "cfn-schema", "data")

# Schema keywords that only document, or only describe handlers/permissions: dropped.
DROP_KEYWORDS = {
    "description",
    "markdownDescription",
    "title",
    "examples",
    "$comment",
    "$schema",
    "handlers",
    "tagging",
    "sourceUrl",
    "documentationUrl",
    "resourceLink",
    "typeConfiguration",
    "propertyTransform",
    "relationshipRef",
    "deprecatedProperties",
    "lifecycle",
    "replacementStrategy",
}
# Keywords whose value is a map of name -> subschema.
NAMED_SUBSCHEMAS = {"properties", "definitions", "patternProperties", "dependentSchemas"}


def strip(schema):
    """Drop documentation keywords, recursing only through schema positions."""
    if isinstance(schema, list):
        return [strip(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in DROP_KEYWORDS:
            continue
        if key in NAMED_SUBSCHEMAS and isinstance(value, dict):
            out[key] = {name: strip(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not", "if", "then", "else", "contains"):
            out[key] = strip(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [strip(s) for s in value]
        else:
            out[key] = value
    return out


def wheel_path():
    cache = os.environ.get("CUMULO_WHEEL_DIR") or os.path.join(ROOT, "target", "cfn-lint")
    name = "cfn_lint-%s-py3-none-any.whl" % CFN_LINT_VERSION
    path = os.path.join(cache, name)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "cfn-lint==%s" % CFN_LINT_VERSION, "-d", cache],
            check=True,
        )
    return path


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def generate():
    path = wheel_path()
    digest = sha256(path)
    if WHEEL_SHA256 != "@SHA256@" and digest != WHEEL_SHA256:
        sys.exit("wheel sha256 %s does not match the pinned %s" % (digest, WHEEL_SHA256))
    base = "cfnlint/data/schemas/"
    with zipfile.ZipFile(path) as z:
        providers = json.loads(z.read(base + "providers/%s.json" % REGION))
        version = json.loads(z.read(base + "version.json"))
        lines = []
        for type_name in sorted(providers):
            schema = json.loads(z.read(base + "resources/%s.json" % providers[type_name]))
            schema = strip(schema)
            body = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            lines.append("%s\t%s\n" % (type_name, body))
    resources = "".join(lines)
    meta = (
        "cfn-lint %s\n"
        "wheel-sha256 %s\n"
        "schema-date %s\n"
        "region %s\n"
        "types %d\n"
    ) % (CFN_LINT_VERSION, digest, version.get("schema_date", "?"), REGION, len(lines))
    return {"resources.jsonl": resources, "VERSION": meta}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args()
    files = generate()
    if args.check:
        stale = []
        for name, content in files.items():
            target = os.path.join(OUT_DIR, name)
            try:
                with open(target, encoding="utf-8") as f:
                    if f.read() != content:
                        stale.append(name)
            except FileNotFoundError:
                stale.append(name)
        if stale:
            print("stale schema data: %s; run scripts/extract-schemas.py" % ", ".join(stale))
            sys.exit(1)
        print("schema data matches cfn-lint %s" % CFN_LINT_VERSION)
        return
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(OUT_DIR, name), "w", encoding="utf-8") as f:
            f.write(content)
    print("wrote %s (%s)" % (OUT_DIR, files["VERSION"].replace("\n", "; ")))


if __name__ == "__main__":
    main()
