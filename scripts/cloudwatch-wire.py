#!/usr/bin/env python3
"""CloudWatch's wire goldens (crates/api/tests/golden_cloudwatch.rs) against botocore itself.

    python3 scripts/cloudwatch-wire.py capture   # rewrites crates/api/tests/golden/cloudwatch/requests.txt
    python3 scripts/cloudwatch-wire.py check DIR # parses the responses the test dumped in DIR

`capture` sends the test's scenario through boto3 once per protocol CloudWatch speaks
(smithy-rpc-v2-cbor, awsJson 1.0, awsQuery: botocore picks one, the others are chosen by
narrowing its protocol list) to a local server that records each request and answers nothing
useful; the requests file holds them byte for byte (CBOR and gzip bodies in hex).

`check` reads what `CLOUDWATCH_WIRE_DUMP=DIR cbw test -p api --test golden_cloudwatch` wrote
(each response's status, headers and body) and parses every response with botocore's own
parser for its protocol and operation: successes must parse to the same result in all three
protocols, errors to the same code, message and HTTP status.

botocore comes from the e2e tests' virtualenv (target/e2e-venv, see scripts/coverage.py); run
the script with that interpreter, e.g. `target/e2e-venv/bin/python scripts/cloudwatch-wire.py`.
"""

import datetime
import http.server
import os
import sys
import threading

import boto3
import botocore.config
import botocore.model
import botocore.parsers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUESTS = os.path.join(ROOT, "crates/api/tests/golden/cloudwatch/requests.txt")
PROTOCOLS = [("cbor", "smithy-rpc-v2-cbor"), ("json", "json"), ("query", "query")]
KEPT_HEADERS = [
    "content-type", "content-encoding", "x-amz-target", "smithy-protocol", "x-amzn-query-mode",
    "accept",
]


def utc(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


HOST_A = [{"Name": "Host", "Value": "a"}]

# (case, operation, parameters[, client config]): the scenario, in order. The region's clock stands at
# 2026-01-01T00:00:00Z and goes 10 s ahead before each case.
SCENARIO = [
    ("PutMetricData", "PutMetricData", {
        "Namespace": "App",
        "MetricData": [
            {"MetricName": "Latency", "Dimensions": HOST_A, "Timestamp": utc("2025-12-31T23:00:10Z"),
             "Value": 1.5, "Unit": "Seconds"},
            {"MetricName": "Latency", "Dimensions": HOST_A, "Timestamp": utc("2025-12-31T23:01:00Z"),
             "Values": [1.0, 2.0, 3.0], "Counts": [1.0, 2.0, 1.0], "Unit": "Seconds"},
            {"MetricName": "Latency", "Dimensions": HOST_A, "Timestamp": utc("2025-12-31T23:02:30Z"),
             "StatisticValues": {"SampleCount": 4.0, "Sum": 10.0, "Minimum": 1.0, "Maximum": 4.0},
             "Unit": "Seconds"},
            {"MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": "b"}],
             "Timestamp": utc("2025-12-31T23:03:05.500Z"), "Value": 7.0, "Unit": "Count",
             "StorageResolution": 1},
        ],
    }),
    ("GetMetricStatistics", "GetMetricStatistics", {
        "Namespace": "App", "MetricName": "Latency", "Dimensions": HOST_A,
        "StartTime": utc("2025-12-31T23:00:00Z"), "EndTime": utc("2025-12-31T23:05:00Z"),
        "Period": 60, "Statistics": ["Average", "Maximum", "SampleCount"],
    }),
    ("GetMetricStatistics-p90", "GetMetricStatistics", {
        "Namespace": "App", "MetricName": "Latency", "Dimensions": HOST_A,
        # Raw values only: a statistic set of several values has no percentiles.
        "StartTime": utc("2025-12-31T23:00:00Z"), "EndTime": utc("2025-12-31T23:02:00Z"),
        "Period": 120, "ExtendedStatistics": ["p90"], "Unit": "Seconds",
    }),
    ("GetMetricStatistics-high-resolution", "GetMetricStatistics", {
        "Namespace": "App", "MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": "b"}],
        "StartTime": utc("2025-12-31T23:03:00Z"), "EndTime": utc("2025-12-31T23:03:10Z"),
        "Period": 1, "Statistics": ["Sum"],
    }),
    ("GetMetricData", "GetMetricData", {
        "MetricDataQueries": [
            {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Latency",
                                                   "Dimensions": HOST_A},
                                        "Period": 60, "Stat": "Average"}, "ReturnData": True},
            {"Id": "e1", "Expression": "m1 * 2", "Label": "Doubled"},
        ],
        "StartTime": utc("2025-12-31T23:00:00Z"), "EndTime": utc("2025-12-31T23:05:00Z"),
    }),
    ("ListMetrics", "ListMetrics", {
        "Namespace": "App", "Dimensions": [{"Name": "Host", "Value": "a"}],
    }),
    ("PutMetricAlarm", "PutMetricAlarm", {
        "AlarmName": "high-latency", "AlarmDescription": "Latency above 2.5 s",
        "ActionsEnabled": True,
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:ops"],
        "OKActions": ["arn:aws:sns:us-east-1:123456789012:ops"],
        "Namespace": "App", "MetricName": "Latency", "Dimensions": HOST_A,
        "Statistic": "Average", "Period": 60, "Unit": "Seconds", "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2, "Threshold": 2.5, "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching", "Tags": [{"Key": "team", "Value": "web"}],
    }),
    ("DescribeAlarms", "DescribeAlarms", {"AlarmNames": ["high-latency"]}),
    ("DescribeAlarmsForMetric", "DescribeAlarmsForMetric", {
        "Namespace": "App", "MetricName": "Latency", "Dimensions": HOST_A,
    }),
    ("SetAlarmState", "SetAlarmState", {
        "AlarmName": "high-latency", "StateValue": "ALARM", "StateReason": "Testing the pager",
        "StateReasonData": '{"source":"test"}',
    }),
    ("DescribeAlarms-after-SetAlarmState", "DescribeAlarms", {"StateValue": "ALARM"}),
    ("DescribeAlarmHistory", "DescribeAlarmHistory", {"AlarmName": "high-latency"}),
    ("PutCompositeAlarm", "PutCompositeAlarm", {
        "AlarmName": "site-down", "AlarmRule": 'ALARM("high-latency")',
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:ops"],
        "ActionsSuppressor": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:high-latency",
        "ActionsSuppressorWaitPeriod": 60, "ActionsSuppressorExtensionPeriod": 120,
    }),
    ("DescribeAlarms-composite", "DescribeAlarms", {"AlarmTypes": ["CompositeAlarm"]}),
    # A body of 10 KiB or more botocore gzips (here: any body, to keep the case small).
    ("PutMetricData-gzip", "PutMetricData", {
        "Namespace": "App",
        "MetricData": [{"MetricName": "Errors", "Dimensions": [{"Name": "Host", "Value": "c"}],
                        "Timestamp": utc("2025-12-31T23:04:00Z"), "Value": 3.0, "Unit": "Count"}],
    }, {"request_min_compression_size_bytes": 1}),
    ("GetMetricStatistics-after-gzip", "GetMetricStatistics", {
        "Namespace": "App", "MetricName": "Errors", "Dimensions": [{"Name": "Host", "Value": "c"}],
        "StartTime": utc("2025-12-31T23:04:00Z"), "EndTime": utc("2025-12-31T23:05:00Z"),
        "Period": 60, "Statistics": ["Sum"],
    }),
    # botocore checks required members itself; without that check it sends what it is given.
    ("Error-MissingParameter", "GetMetricStatistics", {
        "Namespace": "App", "Dimensions": HOST_A,
        "StartTime": utc("2025-12-31T23:00:00Z"), "EndTime": utc("2025-12-31T23:05:00Z"),
        "Period": 60, "Statistics": ["Average"],
    }),
    ("Error-InvalidPeriod", "GetMetricStatistics", {
        "Namespace": "App", "MetricName": "Latency",
        "StartTime": utc("2025-12-31T23:00:00Z"), "EndTime": utc("2025-12-31T23:05:00Z"),
        "Period": 45, "Statistics": ["Average"],
    }),
    ("Error-SetAlarmState-unknown", "SetAlarmState", {
        "AlarmName": "no-such-alarm", "StateValue": "OK", "StateReason": "x",
    }),
]


def snake(op):
    return "".join("_" + c.lower() if c.isupper() else c for c in op).lstrip("_")


def client(protocol, endpoint, **config):
    # botocore speaks the first protocol of its own priority list the service offers.
    botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = (protocol,)
    c = boto3.client(
        "cloudwatch", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=botocore.config.Config(
            parameter_validation=False, retries={"total_max_attempts": 1}, **config
        ),
    )
    assert c.meta.service_model.resolved_protocol == protocol, protocol
    return c


def capture():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(400)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}"
    out = []
    for short, protocol in PROTOCOLS:
        for case, op, params, *config in SCENARIO:
            c = client(protocol, endpoint, **(config[0] if config else {}))
            seen.clear()
            try:
                getattr(c, snake(op))(**params)
            except Exception:
                pass
            assert len(seen) == 1, (case, protocol, len(seen))
            path, headers, body = seen[0]
            out.append(f"=== {case} {short}\nPOST {path}\n")
            for h in KEPT_HEADERS:
                if h in headers:
                    out.append(f"{h}: {headers[h]}\n")
            binary = short == "cbor" or headers.get("content-encoding") == "gzip"
            text = body.hex() if binary else body.decode()
            out.append(f"\n{text}\n\n")
    server.shutdown()
    with open(REQUESTS, "w") as f:
        f.write("".join(out))
    print(f"wrote {REQUESTS}")


def parse(protocol, op, raw):
    """botocore's parse of one dumped response (status line, headers, blank line, body)."""
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    status = int(lines[0])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(": ")
        headers[k] = v
    model = client(protocol, "http://127.0.0.1:1").meta.service_model
    operation = model.operation_model(op)
    parser = botocore.parsers.create_parser(protocol)
    parsed = parser.parse(
        {"status_code": status, "headers": headers, "body": body},
        operation.output_shape,
    )
    parsed.pop("ResponseMetadata", None)
    return status, parsed


def check(directory):
    failures = []
    model = client("query", "http://127.0.0.1:1").meta.service_model
    for case, op, *_ in SCENARIO:
        results = {}
        for short, protocol in PROTOCOLS:
            with open(os.path.join(directory, f"{case}.{short}"), "rb") as f:
                status, parsed = parse(protocol, op, f.read())
            # JSON and CBOR errors name the error shape in `__type` (botocore keeps it as
            # QueryErrorCode): a shape of the model whose Query code is the error's code.
            shape = parsed.get("Error", {}).pop("QueryErrorCode", None)
            if shape is not None:
                code = parsed["Error"]["Code"]
                if shape not in model.shape_names:
                    failures.append(f"{case} over {short}: __type {shape} is no shape of the model")
                elif model.shape_for(shape).metadata.get("error", {}).get("code", shape) != code:
                    failures.append(f"{case} over {short}: shape {shape} is not the code {code}")
            elif "Error" in parsed and short != "query":
                failures.append(f"{case} over {short}: no x-amzn-query-error")
            results[short] = (status, parsed)
        first = results["cbor"]
        status, parsed = first
        if "Error" in parsed:
            error = parsed["Error"]
            summary = f"HTTP {status} {error.get('Code')}: {error.get('Message')}"
            if not case.startswith("Error-"):
                failures.append(f"{case}: an error where a result was expected: {summary}")
        else:
            summary = f"HTTP {status}, " + ", ".join(sorted(parsed)) if parsed else f"HTTP {status}"
        for short in ("json", "query"):
            if results[short] != first:
                failures.append(f"{case}: {short} parses to\n  {results[short]}\nbut cbor to\n  {first}")
        print(f"{case}: {summary}")
        for key, value in parsed.items():
            print(f"    {key}: {value}")
    if failures:
        print("\n".join(["", "FAILED:"] + failures))
        sys.exit(1)
    print("all responses parse alike in smithy-rpc-v2-cbor, json and query")


if __name__ == "__main__":
    if sys.argv[1:] == ["capture"]:
        capture()
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)
