#!/usr/bin/env python3
"""Writes COVERAGE.md: which operations of each AWS service Cumulo answers, against
botocore's service models (the authority on AWS's wire shapes).

    python3 scripts/coverage.py            # rewrites COVERAGE.md
    python3 scripts/coverage.py --check    # fails if COVERAGE.md is not what it would write

botocore comes from the e2e tests' virtualenv (target/e2e-venv, made by the first e2e run or
by `python3 -m venv target/e2e-venv && target/e2e-venv/bin/pip install awscli==1.46.3 boto3`);
the implemented operations from `cumulo __api-actions`.
"""

import glob
import gzip
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The services a highly available web app touches, by botocore name, with how Cumulo names
# them in the table.
SERVICES = [
    ("ec2", "EC2"),
    ("elbv2", "Elastic Load Balancing v2"),
    ("elb", "Elastic Load Balancing (Classic)"),
    ("autoscaling", "EC2 Auto Scaling"),
    ("cloudformation", "CloudFormation"),
    ("cloudwatch", "CloudWatch"),
    ("sns", "SNS"),
    ("logs", "CloudWatch Logs"),
    ("sts", "STS"),
    ("iam", "IAM"),
    ("ssm", "Systems Manager (SSM)"),
]


def botocore_data():
    found = glob.glob(os.path.join(ROOT, "target/e2e-venv/lib/python*/site-packages/botocore/data"))
    if not found:
        sys.exit("botocore not found: run the e2e tests once, or make target/e2e-venv (see --help)")
    return found[0]


def model(data, service):
    versions = sorted(os.listdir(os.path.join(data, service)))
    path = os.path.join(data, service, versions[-1], "service-2.json.gz")
    with gzip.open(path) as f:
        m = json.load(f)
    return versions[-1], m["metadata"], sorted(m["operations"])


def implemented():
    out = subprocess.run(
        ["cargo", "run", "-q", "-p", "cumulo", "--", "__api-actions"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def render(data, done):
    version = open(glob.glob(os.path.join(data, "..", "..", "botocore-*.dist-info", "METADATA"))[0]).read()
    botocore = next(l.split(": ", 1)[1] for l in version.splitlines() if l.startswith("Version: "))
    rows, sections = [], []
    total_done = total_all = 0
    for name, title in SERVICES:
        api_version, meta, operations = model(data, name)
        mine = set(done.get(name, []))
        unknown = sorted(mine - set(operations))
        if unknown:
            sys.exit(f"{name}: Cumulo names operations botocore does not have: {unknown}")
        count = len(mine)
        total_done += count
        total_all += len(operations)
        protocol = meta.get("protocols", [meta.get("protocol")])[0]
        rows.append(f"| {title} | `{name}` {api_version} | {protocol} | {count} / {len(operations)} |")
        lines = [f"## {name}", ""]
        lines += [f"- [{'x' if op in mine else ' '}] {op}" for op in operations]
        sections.append("\n".join(lines))
    head = [
        "# AWS API coverage",
        "",
        f"Written by `scripts/coverage.py` from botocore {botocore}'s service models; do not edit.",
        "`crates/api/tests/coverage.rs` fails when an operation Cumulo answers is not marked here.",
        "",
        "| Service | Model | Protocol | Implemented |",
        "|---|---|---|---|",
        *rows,
        f"| **All** | | | **{total_done} / {total_all}** |",
        "",
    ]
    return "\n".join(head) + "\n" + "\n\n".join(sections) + "\n"


def main():
    data = botocore_data()
    text = render(data, implemented())
    path = os.path.join(ROOT, "COVERAGE.md")
    if "--check" in sys.argv:
        current = open(path).read() if os.path.exists(path) else ""
        if current != text:
            sys.exit("COVERAGE.md is out of date: run python3 scripts/coverage.py")
        return
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
