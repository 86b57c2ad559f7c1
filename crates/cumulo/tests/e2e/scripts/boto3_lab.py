"""The edX lab's architecture with boto3 (what SDK users write), against AWS_ENDPOINT_URL:
a security group, two instances in two zones' default subnets running the demo app, a
target group, an ALB and its listener. Prints what the test checks, as JSON."""

import datetime
import json
import sys

import boto3

ec2 = boto3.client("ec2")
elbv2 = boto3.client("elbv2")
sts = boto3.client("sts")
cloudwatch = boto3.client("cloudwatch")

account = sts.get_caller_identity()["Account"]
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = sorted(
    ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"],
    key=lambda s: s["AvailabilityZone"],
)[:2]
group = ec2.create_security_group(GroupName="web", Description="HTTP", VpcId=vpc)["GroupId"]
ec2.authorize_security_group_ingress(
    GroupId=group,
    IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
)
ids = []
for subnet in subnets:
    run = ec2.run_instances(
        ImageId="ami-0abcdef1234567890",
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        SubnetId=subnet["SubnetId"],
        SecurityGroupIds=[group],
        UserData="#!/bin/bash\nexec cumulo demo-app --port 80\n",
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "boto3"}]}],
    )
    ids.append(run["Instances"][0]["InstanceId"])
ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
zones = sorted(
    i["Placement"]["AvailabilityZone"]
    for r in ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": ["boto3"]}])["Reservations"]
    for i in r["Instances"]
)
tg = elbv2.create_target_group(
    Name="boto3-web", Protocol="HTTP", Port=80, VpcId=vpc, HealthCheckPath="/health",
    HealthCheckIntervalSeconds=5, HealthyThresholdCount=2,
)["TargetGroups"][0]["TargetGroupArn"]
lb = elbv2.create_load_balancer(
    Name="boto3-alb", Subnets=[s["SubnetId"] for s in subnets], SecurityGroups=[group]
)["LoadBalancers"][0]
elbv2.create_listener(
    LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
)
elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": i} for i in ids])
elbv2.get_waiter("target_in_service").wait(TargetGroupArn=tg, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
health = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
try:
    ec2.run_instances(ImageId="ami-0abcdef1234567890", MinCount=1, MaxCount=1, SubnetId="subnet-0000000000000dead")
    refused = None
except ec2.exceptions.ClientError as e:
    refused = e.response["Error"]["Code"]
# CloudWatch in the protocol botocore picks for it: a custom metric put and read back, an
# alarm on it described.
now = datetime.datetime.now(datetime.timezone.utc)
cloudwatch.put_metric_data(
    Namespace="Lab", MetricData=[{"MetricName": "Signups", "Value": 4.0, "Unit": "Count"}]
)
stats = cloudwatch.get_metric_statistics(
    Namespace="Lab", MetricName="Signups", StartTime=now - datetime.timedelta(hours=1),
    EndTime=now + datetime.timedelta(hours=1), Period=60, Statistics=["Sum", "SampleCount"],
)
cloudwatch.put_metric_alarm(
    AlarmName="signups-stalled", Namespace="Lab", MetricName="Signups", Statistic="Sum",
    Period=60, EvaluationPeriods=3, Threshold=1, ComparisonOperator="LessThanThreshold",
    TreatMissingData="breaching",
)
alarm = cloudwatch.describe_alarms(AlarmNames=["signups-stalled"])["MetricAlarms"][0]
json.dump(
    {
        "signups": [d["Sum"] for d in stats["Datapoints"]],
        "signupsUnit": [d["Unit"] for d in stats["Datapoints"]],
        "alarm": [alarm["AlarmName"], alarm["StateValue"], alarm["StateReason"], alarm["TreatMissingData"]],
        "account": account,
        "instances": ids,
        "zones": zones,
        "dnsName": lb["DNSName"],
        "healthy": sorted(h["Target"]["Id"] for h in health if h["TargetHealth"]["State"] == "healthy"),
        "refused": refused,
    },
    sys.stdout,
)
