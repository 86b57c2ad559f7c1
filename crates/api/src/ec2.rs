//! The EC2 Query API (version 2016-11-15) for instances: DescribeInstances, GetConsoleOutput,
//! Terminate/Stop/StartInstances. EC2 writes lowerCamel elements and `item` lists.

use base64::Engine as _;
use ec2::{Ec2, InstanceRecord};

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
pub const VERSION: &str = "2016-11-15";

const ACTIONS: &[&str] = &[
    "DescribeAvailabilityZones",
    "DescribeRegions",
    "DescribeInstances",
    "GetConsoleOutput",
    "TerminateInstances",
    "StopInstances",
    "StartInstances",
];

/// EC2 in the endpoint's registry.
pub struct Api(pub std::sync::Arc<Ec2>, pub clock::Clock);

crate::registry::query_service!(
    "ec2",
    |api, action, q, request_id| handle(&api.0, &api.1, action, q, request_id).await,
    |e, request_id| error_xml(e, request_id)
);

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action)
}

/// The start of a region's zone ids (`us-east-1` → `use1`, `ap-northeast-1` → `apne1`).
fn zone_id_prefix(region: &str) -> String {
    let mut parts = region.split('-');
    let area = parts.next().unwrap_or("");
    let direction = match parts.next().unwrap_or("") {
        "northeast" => "ne",
        "southeast" => "se",
        "northwest" => "nw",
        "southwest" => "sw",
        other => &other[..other.len().min(1)],
    };
    format!("{area}{direction}{}", parts.next().unwrap_or(""))
}

/// EC2's error document (`Response/Errors/Error`).
pub fn error_xml(e: &ApiError, request_id: &str) -> String {
    let mut x = XmlOut::new();
    x.open("Response", None).open("Errors", None).open("Error", None);
    x.text("Code", &e.code).text("Message", &e.message).close().close();
    x.text("RequestID", request_id);
    x.finish()
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidInstanceID.NotFound",
        format!("The instance ID '{id}' does not exist"),
        400,
    )
}

/// Instances matching `InstanceId.N` and `Filter.N` (instance-id, instance-state-name,
/// availability-zone, subnet-id, vpc-id, tag:KEY, tag-key).
fn select(ec2: &Ec2, q: &QueryInput) -> Result<Vec<InstanceRecord>, ApiError> {
    let ids = q.list_flat("InstanceId");
    let mut all = ec2.instances()?;
    all.sort_by(|a, b| a.launch_time.cmp(&b.launch_time));
    for id in &ids {
        if !all.iter().any(|i| &i.id == id) {
            return Err(not_found(id));
        }
    }
    let filters = q.filters();
    Ok(all
        .into_iter()
        .filter(|i| ids.is_empty() || ids.contains(&i.id))
        .filter(|i| {
            filters.iter().all(|(name, values)| {
                let matches = |v: &str| {
                    values.iter().any(|want| {
                        want == v
                            || (want.ends_with('*') && v.starts_with(want.trim_end_matches('*')))
                    })
                };
                match name.as_str() {
                    "instance-id" => matches(&i.id),
                    "instance-state-name" => matches(i.state.name()),
                    "availability-zone" => matches(&i.zone),
                    "subnet-id" => matches(&i.subnet_id),
                    "vpc-id" => matches(&i.vpc_id),
                    "tag-key" => i.tags.keys().any(|k| matches(k)),
                    n => match n.strip_prefix("tag:") {
                        Some(key) => i.tags.get(key).is_some_and(|v| matches(v)),
                        None => true,
                    },
                }
            })
        })
        .collect())
}

fn write_state(x: &mut XmlOut, name: &str, record: &InstanceRecord) {
    x.open(name, None)
        .text("code", &record.state.code().to_string())
        .text("name", record.state.name())
        .close();
}

/// EC2's errors: a store failure is an InternalFailure (500), the rest as EC2 words them.
impl From<ec2::Ec2Error> for ApiError {
    fn from(e: ec2::Ec2Error) -> ApiError {
        match e {
            ec2::Ec2Error::Store(e) => ApiError::service("InternalFailure", e.to_string()),
            other => ApiError::service("InvalidParameterValue", other.to_string()),
        }
    }
}

fn write_instance(x: &mut XmlOut, ec2: &Ec2, i: &InstanceRecord) -> Result<(), ApiError> {
    x.text("instanceId", &i.id).text("imageId", &i.image_id);
    write_state(x, "instanceState", i);
    x.text("privateDnsName", &i.private_dns_name())
        .text("dnsName", &i.public_dns_name().unwrap_or_default());
    x.text("reason", i.state_reason.as_deref().unwrap_or(""));
    x.opt("keyName", i.key_name.as_deref())
        .text("amiLaunchIndex", "0")
        .text("instanceType", &i.instance_type);
    x.text("launchTime", &i.launch_time);
    x.open("placement", None).text("availabilityZone", &i.zone).text("tenancy", "default").close();
    x.open("monitoring", None).text("state", "disabled").close();
    x.text("subnetId", &i.subnet_id)
        .text("vpcId", &i.vpc_id)
        .text("privateIpAddress", &i.private_ip);
    x.opt("ipAddress", i.public_ip.as_deref());
    x.open("groupSet", None);
    for g in &i.security_groups {
        let name = ec2.security_group(g)?.map(|r| r.name).unwrap_or_default();
        x.open("item", None).text("groupId", g).text("groupName", &name).close();
    }
    x.close();
    if let Some(reason) = &i.state_reason {
        let (code, message) = reason.split_once(": ").unwrap_or((reason, reason));
        x.open("stateReason", None).text("code", code).text("message", message).close();
    }
    x.text("architecture", "x86_64")
        .text("rootDeviceType", "ebs")
        .text("rootDeviceName", "/dev/xvda");
    if let Some(arn) = &i.instance_profile_arn {
        x.open("iamInstanceProfile", None)
            .text("arn", arn)
            .text("id", &format!("AIPA{}", &i.id[2..].to_uppercase()))
            .close();
    }
    x.open("tagSet", None);
    for (k, v) in &i.tags {
        x.open("item", None).text("key", k).text("value", v).close();
    }
    x.close();
    x.open("metadataOptions", None).text("state", "applied").text("httpTokens", &i.http_tokens);
    x.text("httpPutResponseHopLimit", "1").text("httpEndpoint", "enabled").close();
    Ok(())
}

fn state_changes(x: &mut XmlOut, before: &[InstanceRecord], ec2: &Ec2) -> Result<(), ApiError> {
    x.open("instancesSet", None);
    for b in before {
        let now = ec2.instance(&b.id)?.unwrap_or_else(|| b.clone());
        x.open("item", None).text("instanceId", &b.id);
        write_state(x, "currentState", &now);
        write_state(x, "previousState", b);
        x.close();
    }
    x.close();
    Ok(())
}

pub async fn handle(
    ec2: &Ec2,
    clock: &clock::Clock,
    action: &str,
    q: &QueryInput,
    request_id: &str,
) -> Result<String, ApiError> {
    let mut x = XmlOut::new();
    x.open(&format!("{action}Response"), Some(XMLNS));
    x.text("requestId", request_id);
    let region = &ec2.account().region;
    match action {
        "DescribeAvailabilityZones" => {
            let names = q.list_flat("ZoneName");
            let filters = q.filters();
            x.open("availabilityZoneInfo", None);
            for (i, zone) in cfn_template::eval::availability_zones(region).iter().enumerate() {
                let fields = [
                    ("zone-name", zone.clone()),
                    ("region-name", region.clone()),
                    ("state", "available".to_string()),
                    ("zone-id", format!("{}-az{}", zone_id_prefix(region), i + 1)),
                    ("zone-type", "availability-zone".to_string()),
                ];
                let wanted = (names.is_empty() || names.contains(zone))
                    && filters.iter().all(|(name, values)| {
                        fields.iter().any(|(k, v)| k == name && values.contains(v))
                    });
                if !wanted {
                    continue;
                }
                x.open("item", None)
                    .text("zoneName", zone)
                    .text("zoneState", "available")
                    .text("regionName", region)
                    .text("zoneId", &fields[3].1)
                    .text("zoneType", "availability-zone")
                    .text("optInStatus", "opt-in-not-required")
                    .text("groupName", region)
                    .text("networkBorderGroup", region);
                x.open("messageSet", None).close();
                x.close();
            }
            x.close();
        }
        "DescribeRegions" => {
            let names = q.list_flat("RegionName");
            x.open("regionInfo", None);
            if names.is_empty() || names.contains(region) {
                x.open("item", None)
                    .text("regionName", region)
                    .text("regionEndpoint", &format!("ec2.{region}.amazonaws.com"))
                    .text("optInStatus", "opt-in-not-required")
                    .close();
            }
            x.close();
        }
        "DescribeInstances" => {
            let instances = select(ec2, q)?;
            x.open("reservationSet", None);
            for i in &instances {
                x.open("item", None)
                    .text("reservationId", &format!("r-{}", &i.id[2..]))
                    .text("ownerId", &ec2.account().account_id);
                x.open("groupSet", None).close();
                x.open("instancesSet", None).open("item", None);
                write_instance(&mut x, ec2, i)?;
                x.close().close().close();
            }
            x.close();
        }
        "GetConsoleOutput" => {
            let id = q.required("InstanceId").map_err(ApiError::validation)?;
            let output = ec2.console_output(id).map_err(|_| not_found(id))?;
            x.text("instanceId", id).text("timestamp", &clock::iso8601(clock.now()));
            x.text("output", &base64::engine::general_purpose::STANDARD.encode(output));
        }
        "TerminateInstances" | "StopInstances" | "StartInstances" => {
            let ids = q.list_flat("InstanceId");
            let before: Vec<InstanceRecord> = ids
                .iter()
                .map(|id| ec2.instance(id)?.ok_or_else(|| not_found(id)))
                .collect::<Result<_, _>>()?;
            for id in &ids {
                let result = match action {
                    "TerminateInstances" => ec2.terminate(id).await,
                    "StopInstances" => ec2.stop(id).await,
                    _ => ec2.start(id).await,
                };
                result.map_err(|e| ApiError::new("IncorrectInstanceState", e.to_string(), 400))?;
            }
            state_changes(&mut x, &before, ec2)?;
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(x.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_ids_start_as_aws_spells_them() {
        let ids: Vec<String> =
            ["us-east-1", "eu-west-2", "ap-northeast-1", "ap-southeast-2", "eu-central-1"]
                .iter()
                .map(|r| zone_id_prefix(r))
                .collect();
        assert_eq!(ids, ["use1", "euw2", "apne1", "apse2", "euc1"]);
    }
}
