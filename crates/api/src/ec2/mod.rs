//! The EC2 Query API (version 2016-11-15): zones and regions, instances (RunInstances,
//! DescribeInstances and DescribeInstanceStatus, state changes, attributes, console output),
//! images, and the network (`network`: VPCs, subnets, security groups, tags). EC2 writes
//! lowerCamel elements and `item` lists; its Describe calls filter (`Filter.N`) and page
//! (`MaxResults`, `NextToken`).

use base64::Engine as _;
use ec2::{Ec2, InstanceRecord, InstanceState, LaunchRequest, LaunchSpec};
use indexmap::IndexMap;
use serde_json::{Value as Json, json};

use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

mod network;
mod routing;
mod templates;

pub const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
pub const VERSION: &str = "2016-11-15";

const ACTIONS: &[&str] = &[
    "DescribeAvailabilityZones",
    "DescribeRegions",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "RunInstances",
    "GetConsoleOutput",
    "TerminateInstances",
    "StopInstances",
    "StartInstances",
    "RebootInstances",
    "ModifyInstanceAttribute",
    "DescribeImages",
    "CreateKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
];

/// EC2 in the endpoint's registry.
pub struct Api(pub std::sync::Arc<Ec2>, pub clock::Clock);

crate::registry::query_service!(
    "ec2",
    |api, action, q, request_id| handle(&api.0, &api.1, action, q, request_id).await,
    |e, request_id| error_xml(e, request_id)
);

/// A room's actions and how it runs one of them.
type Room =
    (&'static [&'static str], fn(&Ec2, &str, &QueryInput, &mut XmlOut) -> Result<(), ApiError>);

/// The rooms that answer the rest of EC2's actions.
const ROOMS: [Room; 3] = [
    (network::ACTIONS, network::run),
    (templates::ACTIONS, templates::run),
    (routing::ACTIONS, routing::run),
];

pub fn handles(action: &str) -> bool {
    ACTIONS.contains(&action) || ROOMS.iter().any(|(actions, _)| actions.contains(&action))
}

/// Every action EC2 answers (for COVERAGE.md's check).
pub fn actions() -> Vec<&'static str> {
    ACTIONS.iter().chain(ROOMS.iter().flat_map(|(actions, _)| actions.iter())).copied().collect()
}

/// A zone's id (`us-east-1b` → `use1-az2`).
fn zone_id(region: &str, zone: &str) -> String {
    let index = ec2::zones(region).iter().position(|z| z == zone).unwrap_or(0);
    format!("{}-az{}", zone_id_prefix(region), index + 1)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A parameter a call cannot go without, as EC2 asks for it.
fn required(tree: &Json, key: &str) -> Result<String, ApiError> {
    tree.get(key).and_then(Json::as_str).filter(|v| !v.is_empty()).map(str::to_string).ok_or_else(
        || {
            ApiError::service(
                "MissingParameter",
                format!("The request must contain the parameter {}", lower_first(key)),
            )
        },
    )
}

/// `Filter.N.Name` / `Filter.N.Value.M`, as EC2's Describe calls take them.
pub(crate) struct Filters(Vec<(String, Vec<String>)>);

impl Filters {
    fn from(q: &QueryInput) -> Filters {
        Filters(q.filters())
    }

    /// Whether a resource passes every filter: `field` gives the values of a named field
    /// (`None`: no such filter, which EC2 refuses); `tag:KEY`, `tag-key` and `tag-value` read
    /// the tags. Values may hold `*` and `?` wildcards.
    fn check(
        &self,
        tags: &IndexMap<String, String>,
        field: impl Fn(&str) -> Option<Vec<String>>,
    ) -> Result<bool, ApiError> {
        for (name, wanted) in &self.0 {
            let have: Vec<String> = if let Some(key) = name.strip_prefix("tag:") {
                tags.get(key).cloned().into_iter().collect()
            } else if name == "tag-key" {
                tags.keys().cloned().collect()
            } else if name == "tag-value" {
                tags.values().cloned().collect()
            } else {
                field(name).ok_or_else(|| {
                    ApiError::service(
                        "InvalidParameterValue",
                        format!("The filter '{name}' is invalid"),
                    )
                })?
            };
            if !have.iter().any(|h| wanted.iter().any(|w| glob(w, h))) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Filters {
    /// The records that pass every filter (`field` as in [`Filters::check`]).
    fn select<T>(
        &self,
        items: Vec<T>,
        tags: impl Fn(&T) -> &IndexMap<String, String>,
        field: impl Fn(&T, &str) -> Option<Vec<String>>,
    ) -> Result<Vec<T>, ApiError> {
        let mut chosen = Vec::new();
        for item in items {
            if self.check(tags(&item), |name| field(&item, name))? {
                chosen.push(item);
            }
        }
        Ok(chosen)
    }
}

/// One page of `items` as the `set` of a Describe answer (an `item` each), then its
/// `nextToken`.
fn write_page<T>(
    x: &mut XmlOut,
    q: &QueryInput,
    set: &str,
    items: Vec<T>,
    id: impl Fn(&T) -> &String,
    mut write: impl FnMut(&mut XmlOut, &T),
) -> Result<(), ApiError> {
    let (items, next) = page(items, q, id)?;
    x.open(set, None);
    for item in &items {
        x.open("item", None);
        write(x, item);
        x.close();
    }
    x.close();
    x.opt("nextToken", next.as_deref());
    Ok(())
}

/// EC2's filter wildcards: `*` any run of characters, `?` one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one star backtrack point: linear in practice.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Ids a caller named that do not exist: EC2's `*.NotFound` error, naming the first.
fn check_ids<T>(
    ids: &[String],
    all: &[T],
    id: impl Fn(&T) -> &String,
    code: &str,
    what: &str,
) -> Result<(), ApiError> {
    match ids.iter().find(|want| !all.iter().any(|r| id(r) == *want)) {
        Some(missing) => {
            Err(ApiError::service(code, format!("The {what} '{missing}' does not exist")))
        }
        None => Ok(()),
    }
}

/// One page of a Describe call (`MaxResults`, 5 to 1000, and `NextToken`), in id order; the
/// token is the id the next page starts at.
fn page<T>(
    mut items: Vec<T>,
    q: &QueryInput,
    id: impl Fn(&T) -> &String,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    items.sort_by(|a, b| id(a).cmp(id(b)));
    let start = match q.get("NextToken") {
        None | Some("") => 0,
        Some(token) => {
            let after = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::service(
                        "InvalidNextToken",
                        format!("The token '{token}' is invalid."),
                    )
                })?;
            items.iter().position(|r| *id(r) >= after).unwrap_or(items.len())
        }
    };
    let max = match q.get("MaxResults") {
        None => usize::MAX,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (5..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::service(
                    "InvalidParameterValue",
                    format!(
                        "Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
                    ),
                ));
            }
        },
    };
    let mut rest = items.split_off(start.min(items.len()));
    let next = (rest.len() > max).then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id(&rest[max]).as_bytes())
    });
    rest.truncate(max);
    Ok((rest, next))
}

fn tag_set(x: &mut XmlOut, tags: &IndexMap<String, String>) {
    x.open("tagSet", None);
    for (k, v) in tags {
        x.open("item", None).text("key", k).text("value", v).close();
    }
    x.close();
}

/// The tags a create call gives a resource of `kind` (`TagSpecification.N`).
fn tag_specifications(tree: &Json, kind: &str) -> IndexMap<String, String> {
    let mut tags = IndexMap::new();
    let specs = tree.get("TagSpecification").and_then(Json::as_array).into_iter().flatten();
    for spec in specs.filter(|s| s.get("ResourceType").and_then(Json::as_str) == Some(kind)) {
        for t in spec.get("Tag").and_then(Json::as_array).into_iter().flatten() {
            if let Some(k) = t.get("Key").and_then(Json::as_str) {
                let v = t.get("Value").and_then(Json::as_str).unwrap_or_default();
                tags.insert(k.to_string(), v.to_string());
            }
        }
    }
    tags
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

/// Instances matching `InstanceId.N` and `Filter.N`, in launch order.
fn select(ec2: &Ec2, q: &QueryInput) -> Result<Vec<InstanceRecord>, ApiError> {
    let ids = q.list_flat("InstanceId");
    let mut all = ec2.instances()?;
    all.sort_by(|a, b| a.launch_time.cmp(&b.launch_time).then(a.id.cmp(&b.id)));
    for id in &ids {
        if !all.iter().any(|i| &i.id == id) {
            return Err(not_found(id));
        }
    }
    let filters = Filters::from(q);
    let mut chosen = Vec::new();
    for i in all.into_iter().filter(|i| ids.is_empty() || ids.contains(&i.id)) {
        let keep = filters.check(&i.tags, |name| {
            Some(match name {
                "instance-id" => vec![i.id.clone()],
                "instance-state-name" => vec![i.state.name().to_string()],
                "instance-state-code" => vec![i.state.code().to_string()],
                "availability-zone" => vec![i.zone.clone()],
                "subnet-id" => vec![i.subnet_id.clone()],
                "vpc-id" => vec![i.vpc_id.clone()],
                "image-id" => vec![i.image_id.clone()],
                "instance-type" => vec![i.instance_type.clone()],
                "private-ip-address" => vec![i.private_ip.clone()],
                "ip-address" => i.public_ip.clone().into_iter().collect(),
                "private-dns-name" => vec![i.private_dns_name()],
                "dns-name" => i.public_dns_name().into_iter().collect(),
                "key-name" => i.key_name.clone().into_iter().collect(),
                "instance.group-id" | "group-id" => i.security_groups.clone(),
                "iam-instance-profile.arn" => i.instance_profile_arn.clone().into_iter().collect(),
                "launch-time" => vec![i.launch_time.clone()],
                _ => return None,
            })
        })?;
        if keep {
            chosen.push(i);
        }
    }
    Ok(chosen)
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
        ApiError::service(e.code(), e.to_string())
    }
}

fn write_instance(
    x: &mut XmlOut,
    ec2: &Ec2,
    i: &InstanceRecord,
    launch_index: usize,
) -> Result<(), ApiError> {
    x.text("instanceId", &i.id).text("imageId", &i.image_id);
    write_state(x, "instanceState", i);
    x.text("privateDnsName", &i.private_dns_name())
        .text("dnsName", &i.public_dns_name().unwrap_or_default());
    x.text("reason", i.state_reason.as_deref().unwrap_or(""));
    x.opt("keyName", i.key_name.as_deref())
        .text("amiLaunchIndex", &launch_index.to_string())
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
    if let Some((_, run)) = ROOMS.iter().find(|(actions, _)| actions.contains(&action)) {
        run(ec2, action, q, &mut x)?;
        return Ok(x.finish());
    }
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
            let mut instances = select(ec2, q)?;
            let mut next = None;
            if q.get("MaxResults").is_some() || q.get("NextToken").is_some() {
                (instances, next) = page(instances, q, |i| &i.id)?;
            }
            x.open("reservationSet", None);
            for i in &instances {
                x.open("item", None)
                    .text("reservationId", &format!("r-{}", &i.id[2..]))
                    .text("ownerId", &ec2.account().account_id);
                x.open("groupSet", None).close();
                x.open("instancesSet", None).open("item", None);
                write_instance(&mut x, ec2, i, 0)?;
                x.close().close().close();
            }
            x.close();
            x.opt("nextToken", next.as_deref());
        }
        "RunInstances" => {
            let tree = q.tree();
            let count = |k: &str| -> Result<usize, ApiError> {
                let v = q.get(k).unwrap_or("1");
                v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    ApiError::service(
                        "InvalidParameterValue",
                        format!("Value ({v}) for parameter {} is invalid.", lower_first(k)),
                    )
                })
            };
            let (min, max) = (count("MinCount")?, count("MaxCount")?);
            if min > max {
                return Err(ApiError::service(
                    "InvalidParameterValue",
                    format!("MinCount ({min}) must be less than or equal to MaxCount ({max})."),
                ));
            }
            if min > MAX_RUNNING {
                return Err(ApiError::service(
                    "InstanceLimitExceeded",
                    format!(
                        "You have requested more instances ({min}) than your current instance limit of {MAX_RUNNING} allows for the specified instance type."
                    ),
                ));
            }
            let properties = run_properties(&tree)?;
            let tags = tag_specifications(&tree, "instance");
            let mut launched: Vec<InstanceRecord> = Vec::new();
            for _ in 0..max.min(MAX_RUNNING) {
                let request = LaunchRequest {
                    spec: LaunchSpec::Properties(properties.clone()),
                    subnet_id: None,
                    zone: None,
                    ports: Vec::new(),
                    tags: tags.clone(),
                    override_key: None,
                    group: None,
                };
                match ec2.launch(request).await {
                    Ok(r) => launched.push(r),
                    Err(_) if launched.len() >= min => break,
                    Err(e) => {
                        // Fewer than MinCount: none of them is kept.
                        for r in &launched {
                            if let Err(e) = ec2.terminate(&r.id).await {
                                tracing::warn!(instance = %r.id, "cannot undo a launch: {e}");
                            }
                        }
                        return Err(e.into());
                    }
                }
            }
            let reservation = format!("r-{}", aws_ids::hex(17));
            x.text("reservationId", &reservation).text("ownerId", &ec2.account().account_id);
            x.open("groupSet", None).close();
            x.open("instancesSet", None);
            for (index, i) in launched.iter().enumerate() {
                // As EC2 answers RunInstances: every instance is pending when accepted.
                let accepted = InstanceRecord { state: InstanceState::Pending, ..i.clone() };
                x.open("item", None);
                write_instance(&mut x, ec2, &accepted, index)?;
                x.close();
            }
            x.close();
        }
        "DescribeInstanceStatus" => {
            let all = q.bool("IncludeAllInstances");
            let filters = Filters::from(q);
            let instances = select(
                ec2,
                &QueryInput::from_pairs(
                    q.list_flat("InstanceId")
                        .into_iter()
                        .enumerate()
                        .map(|(n, id)| (format!("InstanceId.{}", n + 1), id)),
                ),
            )?;
            x.open("instanceStatusSet", None);
            for i in instances {
                if !all && i.state != InstanceState::Running {
                    continue;
                }
                let status = instance_status(ec2, &i);
                let keep = filters.check(&i.tags, |name| {
                    Some(match name {
                        "availability-zone" => vec![i.zone.clone()],
                        "instance-state-name" => vec![i.state.name().to_string()],
                        "instance-state-code" => vec![i.state.code().to_string()],
                        "instance-status.status" | "system-status.status" => {
                            vec![status.0.to_string()]
                        }
                        "instance-status.reachability" | "system-status.reachability" => {
                            vec![status.1.to_string()]
                        }
                        _ => return None,
                    })
                })?;
                if !keep {
                    continue;
                }
                x.open("item", None).text("instanceId", &i.id).text("availabilityZone", &i.zone);
                write_state(&mut x, "instanceState", &i);
                for set in ["systemStatus", "instanceStatus"] {
                    x.open(set, None).text("status", status.0);
                    x.open("details", None).open("item", None);
                    x.text("name", "reachability").text("status", status.1).close().close();
                    x.close();
                }
                x.close();
            }
            x.close();
        }
        "RebootInstances" => {
            let ids = q.list_flat("InstanceId");
            for id in &ids {
                if ec2.instance(id)?.is_none() {
                    return Err(not_found(id));
                }
            }
            for id in &ids {
                ec2.reboot(id)?;
            }
            x.bool("return", true);
        }
        "ModifyInstanceAttribute" => {
            let tree = q.tree();
            let id = q.required("InstanceId").map_err(ApiError::validation)?.to_string();
            let record = ec2.instance(&id)?.ok_or_else(|| not_found(&id))?;
            let value = |attribute: &str| -> Option<String> {
                tree.get(attribute)
                    .and_then(|v| v.get("Value"))
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        (q.get("Attribute").is_some_and(|a| a.eq_ignore_ascii_case(attribute)))
                            .then(|| q.get("Value").unwrap_or_default().to_string())
                    })
            };
            let instance_type = value("InstanceType");
            let user_data = value("UserData");
            if instance_type.is_none() && user_data.is_none() {
                return Err(ApiError::service(
                    "InvalidParameterCombination",
                    "No attribute specified: Cumulo changes InstanceType and UserData.",
                ));
            }
            if record.state != InstanceState::Stopped {
                return Err(ApiError::service(
                    "IncorrectInstanceState",
                    format!("The instance '{id}' is not in the 'stopped' state."),
                ));
            }
            ec2.update_stopped(&id, user_data, instance_type)?;
            x.bool("return", true);
        }
        "DescribeImages" => {
            let ids = q.list_flat("ImageId");
            for id in &ids {
                if !well_formed_image(id) {
                    return Err(ApiError::service(
                        "InvalidAMIID.Malformed",
                        format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
                    ));
                }
            }
            let owners = q.list_flat("Owner");
            let account = ec2.account().account_id.clone();
            let created = ec2.images()?;
            // The catalogue: images made here, and the local Linux image every other
            // well-formed id stands for (the ids templates and parameters name).
            let mut known: Vec<String> = ids.clone();
            if ids.is_empty() {
                known.extend(created.iter().map(|i| i.id.clone()));
                known.extend(ec2.instances()?.into_iter().map(|i| i.image_id));
                known.extend(ec2.launch_template_images()?);
            }
            known.sort();
            known.dedup();
            let filters = Filters::from(q);
            x.open("imagesSet", None);
            for id in known.iter().filter(|id| well_formed_image(id)) {
                let own = created.iter().find(|i| &i.id == id);
                let owner_ok = owners.is_empty()
                    || owners.iter().any(|o| match o.as_str() {
                        "self" => own.is_some(),
                        "amazon" => own.is_none(),
                        other => {
                            (own.is_some() && other == account)
                                || (own.is_none() && other == "137112412989")
                        }
                    });
                let name = own.map_or(LOCAL_IMAGE.to_string(), |i| i.name.clone());
                let empty = IndexMap::new();
                let keep = filters.check(own.map_or(&empty, |i| &i.tags), |f| {
                    Some(match f {
                        "image-id" => vec![id.clone()],
                        "state" => vec!["available".into()],
                        "architecture" => vec!["x86_64".into()],
                        "name" => vec![name.clone()],
                        "owner-alias" => {
                            own.is_none().then(|| "amazon".to_string()).into_iter().collect()
                        }
                        "owner-id" => vec![if own.is_some() {
                            account.clone()
                        } else {
                            "137112412989".into()
                        }],
                        "is-public" => vec![own.is_none().to_string()],
                        "root-device-type" => vec!["ebs".into()],
                        "virtualization-type" => vec!["hvm".into()],
                        "platform-details" => vec!["Linux/UNIX".into()],
                        _ => return None,
                    })
                })?;
                if !keep || !owner_ok {
                    continue;
                }
                x.open("item", None).text("imageId", id);
                match own {
                    Some(i) => {
                        x.text("imageLocation", &format!("{account}/{}", i.name))
                            .text("imageState", "available")
                            .text("imageOwnerId", &account)
                            .text("creationDate", &i.created)
                            .bool("isPublic", false);
                    }
                    None => {
                        x.text("imageLocation", &format!("amazon/{LOCAL_IMAGE}"))
                            .text("imageState", "available")
                            .text("imageOwnerId", "137112412989")
                            .text("creationDate", "2026-01-01T00:00:00.000Z")
                            .bool("isPublic", true)
                            .text("imageOwnerAlias", "amazon");
                    }
                }
                x.text("architecture", "x86_64")
                    .text("imageType", "machine")
                    .text("platformDetails", "Linux/UNIX")
                    .text("usageOperation", "RunInstances")
                    .text("name", &name)
                    .text(
                        "description",
                        own.and_then(|i| i.description.as_deref()).unwrap_or(
                            "The local Linux image: instances run as processes of this machine",
                        ),
                    )
                    .text("rootDeviceType", "ebs")
                    .text("rootDeviceName", "/dev/xvda")
                    .text("virtualizationType", "hvm")
                    .text("hypervisor", "xen")
                    .bool("enaSupport", true);
                if let Some(i) = own {
                    tag_set(&mut x, &i.tags);
                }
                x.close();
            }
            x.close();
        }
        "CreateKeyPair" => {
            let tree = q.tree();
            let name = q.required("KeyName").map_err(ApiError::validation)?;
            let (key, material) =
                ec2.create_key_pair(name, q.get("KeyType"), tag_specifications(&tree, "key-pair"))?;
            x.text("keyName", &key.name)
                .text("keyFingerprint", &key.fingerprint)
                .text("keyMaterial", &material)
                .text("keyPairId", &key.id);
            tag_set(&mut x, &key.tags);
        }
        "DescribeKeyPairs" => {
            let names = q.list_flat("KeyName");
            let ids = q.list_flat("KeyPairId");
            let all = ec2.key_pairs()?;
            for want in names.iter().chain(&ids) {
                if !all.iter().any(|k| &k.name == want || &k.id == want) {
                    return Err(ApiError::service(
                        "InvalidKeyPair.NotFound",
                        format!("The key pair '{want}' does not exist"),
                    ));
                }
            }
            let filters = Filters::from(q);
            let public = q.bool("IncludePublicKey");
            x.open("keySet", None);
            for k in all {
                let named = (names.is_empty() || names.contains(&k.name))
                    && (ids.is_empty() || ids.contains(&k.id));
                let keep = filters.check(&k.tags, |name| {
                    Some(match name {
                        "key-name" => vec![k.name.clone()],
                        "key-pair-id" => vec![k.id.clone()],
                        "fingerprint" => vec![k.fingerprint.clone()],
                        "key-type" => vec![k.key_type.clone()],
                        _ => return None,
                    })
                })?;
                if !named || !keep {
                    continue;
                }
                x.open("item", None)
                    .text("keyPairId", &k.id)
                    .text("keyType", &k.key_type)
                    .text("keyName", &k.name)
                    .text("keyFingerprint", &k.fingerprint)
                    .text("createTime", &k.created);
                if public {
                    x.text("publicKey", &k.public_key);
                }
                tag_set(&mut x, &k.tags);
                x.close();
            }
            x.close();
        }
        "DeleteKeyPair" => {
            let key = q.get("KeyName").or(q.get("KeyPairId")).ok_or_else(|| {
                ApiError::service(
                    "MissingParameter",
                    "The request must contain the parameter KeyName",
                )
            })?;
            ec2.delete_key_pair(key)?;
            x.bool("return", true);
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
            // Stops and terminations answer at once (`stopping`, `shutting-down`), as EC2's
            // do; the instance gets there when its machine is gone.
            for id in &ids {
                let result = match action {
                    "TerminateInstances" => ec2.begin_terminate(id).map(|_| ()),
                    "StopInstances" => ec2.begin_stop(id).map(|_| ()),
                    _ => ec2.start(id).await,
                };
                result.map_err(|e| match e {
                    ec2::Ec2Error::Store(_) => ApiError::from(e),
                    other => ApiError::new("IncorrectInstanceState", other.to_string(), 400),
                })?;
            }
            state_changes(&mut x, &before, ec2)?;
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(x.finish())
}

/// How many instances one RunInstances may start (the local account's instance limit).
const MAX_RUNNING: usize = 20;

/// What DescribeImages calls every image of the local catalogue.
const LOCAL_IMAGE: &str = "cumulo-local-linux";

/// An AMI id as EC2 spells them: `ami-` and 8 or 17 hex digits.
fn well_formed_image(id: &str) -> bool {
    id.strip_prefix("ami-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit())
    })
}

/// A RunInstances request as the launch properties an `AWS::EC2::Instance` has: both paths
/// launch through the same `Ec2::launch`.
fn run_properties(tree: &Json) -> Result<Json, ApiError> {
    let text = |j: &Json, k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
    let strings = |j: &Json, k: &str| -> Vec<String> {
        j.get(k)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect()
    };
    let mut p = serde_json::Map::new();
    for key in [
        "ImageId",
        "InstanceType",
        "KeyName",
        "SubnetId",
        "UserData",
        "InstanceInitiatedShutdownBehavior",
    ] {
        if let Some(v) = text(tree, key) {
            p.insert(key.into(), json!(v));
        }
    }
    if let Some(image) = text(tree, "ImageId")
        && !well_formed_image(&image)
    {
        return Err(ApiError::service(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{image}\" (expecting \"ami-...\")"),
        ));
    }
    if text(tree, "ImageId").is_none() && tree.get("LaunchTemplate").is_none() {
        return Err(ApiError::service(
            "MissingParameter",
            "The request must contain the parameter ImageId",
        ));
    }
    let groups = strings(tree, "SecurityGroupId");
    if !groups.is_empty() {
        p.insert("SecurityGroupIds".into(), json!(groups));
    }
    let names = strings(tree, "SecurityGroup");
    if !names.is_empty() {
        p.insert("SecurityGroups".into(), json!(names));
    }
    if let Some(zone) = tree.get("Placement").and_then(|pl| text(pl, "AvailabilityZone")) {
        p.insert("AvailabilityZone".into(), json!(zone));
    }
    if let Some(profile) = tree.get("IamInstanceProfile") {
        p.insert("IamInstanceProfile".into(), profile.clone());
    }
    if let Some(lt) = tree.get("LaunchTemplate") {
        p.insert("LaunchTemplate".into(), lt.clone());
    }
    if let Some(m) = tree.get("MetadataOptions") {
        p.insert("MetadataOptions".into(), m.clone());
    }
    let interfaces: Vec<Json> = tree
        .get("NetworkInterface")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|n| {
            let mut i = serde_json::Map::new();
            for key in ["DeviceIndex", "SubnetId", "AssociatePublicIpAddress"] {
                if let Some(v) = text(n, key) {
                    i.insert(key.into(), json!(v));
                }
            }
            let groups = strings(n, "SecurityGroupId");
            if !groups.is_empty() {
                i.insert("Groups".into(), json!(groups));
            }
            Json::Object(i)
        })
        .collect();
    if !interfaces.is_empty() {
        p.insert("NetworkInterfaces".into(), Json::Array(interfaces));
    }
    Ok(Json::Object(p))
}

/// DescribeInstanceStatus's (status, reachability) of an instance: its machine is up or not.
fn instance_status(ec2: &Ec2, i: &InstanceRecord) -> (&'static str, &'static str) {
    match i.state {
        InstanceState::Running if ec2.machine_pid(&i.id).is_some() => ("ok", "passed"),
        InstanceState::Running => ("impaired", "failed"),
        InstanceState::Pending => ("initializing", "initializing"),
        _ => ("not-applicable", "not-applicable"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_wildcards() {
        let cases = [
            ("web-*", "web-1"),
            ("web-?", "web-12"),
            ("*", ""),
            ("a*b*c", "axxbyyc"),
            ("a*b", "ab"),
            ("a?c", "abc"),
            ("x", "y"),
        ];
        let got: Vec<bool> = cases.iter().map(|(p, t)| glob(p, t)).collect();
        assert_eq!(got, [true, false, true, true, true, true, false]);
    }

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
