#!/usr/bin/env python3
"""Writes crates/api/tests/golden/logs/requests.txt: the CloudWatch Logs golden scenario's
requests as botocore serializes them (awsJson 1.1), so the goldens answer botocore's own bytes.

    target/e2e-venv/bin/python scripts/logs-wire.py

Times are the golden region's clock (2026-01-01T00:00:00Z, 10 s more before each case).
"""

import json
import os

import botocore.session
from botocore.serialize import create_serializer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
T0 = 1_767_225_600_000

CASES = [
    ("CreateLogGroup", "CreateLogGroup",
     {"logGroupName": "/app/web", "kmsKeyId": "arn:aws:kms:us-east-1:000000000000:key/1234", "tags": {"team": "web"}}),
    ("CreateLogStream", "CreateLogStream", {"logGroupName": "/app/web", "logStreamName": "i-0123"}),
    ("CreateLogStream-2", "CreateLogStream", {"logGroupName": "/app/web", "logStreamName": "i-0456"}),
    ("PutMetricFilter", "PutMetricFilter",
     {"logGroupName": "/app/web", "filterName": "errors", "filterPattern": "ERROR",
      "metricTransformations": [{"metricName": "Errors", "metricNamespace": "App", "metricValue": "1",
                                 "defaultValue": 0.0, "unit": "Count"}]}),
    ("PutLogEvents", "PutLogEvents",
     {"logGroupName": "/app/web", "logStreamName": "i-0123",
      "logEvents": [{"timestamp": T0 + 1000, "message": "GET / 200"},
                    {"timestamp": T0 + 3000, "message": "ERROR db timeout"},
                    {"timestamp": T0 + 3 * 3_600_000, "message": "from the future"}]}),
    ("PutLogEvents-2", "PutLogEvents",
     {"logGroupName": "/app/web", "logStreamName": "i-0456",
      "logEvents": [{"timestamp": T0 + 2000, "message": "ERROR disk full"},
                    {"timestamp": T0 + 4000, "message": "GET /health 200"}]}),
    ("GetLogEvents", "GetLogEvents",
     {"logGroupName": "/app/web", "logStreamName": "i-0123", "startFromHead": True, "limit": 10}),
    ("FilterLogEvents", "FilterLogEvents",
     {"logGroupName": "/app/web", "filterPattern": "ERROR", "startTime": T0, "limit": 1}),
    ("DescribeLogGroups", "DescribeLogGroups", {"logGroupNamePrefix": "/app"}),
    ("DescribeLogStreams", "DescribeLogStreams",
     {"logGroupName": "/app/web", "orderBy": "LastEventTime", "descending": True}),
    ("DescribeMetricFilters", "DescribeMetricFilters", {"logGroupName": "/app/web"}),
    ("TestMetricFilter", "TestMetricFilter",
     {"filterPattern": "[ip, status = 5*, bytes]", "logEventMessages": ["10.0.0.1 503 120", "10.0.0.1 200 80"]}),
    ("ListTagsForResource", "ListTagsForResource",
     {"resourceArn": "arn:aws:logs:us-east-1:000000000000:log-group:/app/web"}),
    ("Error-ResourceNotFound", "GetLogEvents", {"logGroupName": "/app/web", "logStreamName": "nope"}),
    ("Error-ResourceAlreadyExists", "CreateLogGroup", {"logGroupName": "/app/web"}),
    ("Error-InvalidParameter", "PutLogEvents",
     {"logGroupName": "/app/web", "logStreamName": "i-0123",
      "logEvents": [{"timestamp": T0 + 9000, "message": "b"}, {"timestamp": T0 + 8000, "message": "a"}]}),
    ("Error-MalformedQuery", "StartQuery",
     {"logGroupName": "/app/web", "startTime": T0 // 1000, "endTime": T0 // 1000 + 60,
      "queryString": "fields @message | dedup @message"}),
]


def main():
    model = botocore.session.get_session().get_service_model("logs")
    serializer = create_serializer("json")
    blocks = []
    for case, op, params in CASES:
        req = serializer.serialize_to_request(params, model.operation_model(op))
        headers = {k.lower(): v for k, v in req["headers"].items()}
        body = req["body"].decode() if isinstance(req["body"], bytes) else req["body"]
        lines = [f"=== {case}", "POST /"]
        lines += [f"{k}: {headers[k]}" for k in ("content-type", "x-amz-target")]
        blocks.append("\n".join(lines) + "\n\n" + body + "\n")
    path = os.path.join(ROOT, "crates/api/tests/golden/logs/requests.txt")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(blocks))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
