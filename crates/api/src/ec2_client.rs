//! EC2 calls of the client and the region's local endpoints, with typed results: what
//! `cumulo instances`, `cumulo logs` and `cumulo outputs` read, so that they know no element
//! names or JSON keys.

use base64::Engine as _;
use serde_json::Value as Json;

pub use ec2::{InstanceState, PortMap};

use crate::client::{Client, ClientError};
use crate::ec2::VERSION;
use crate::xml::XmlNode;

/// An instance as DescribeInstances gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    pub state: InstanceState,
    pub zone: String,
    pub private_ip: String,
    pub public_ip: Option<String>,
    pub instance_type: String,
    pub launch_time: String,
    /// The state reason's message (`stateReason/message`).
    pub state_reason: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Instance {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// What the region knows of an instance that the EC2 API has no words for
/// (`/_cumulo/instances`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalInstance {
    pub instance_id: String,
    /// The ports the app is expected on, and the loopback ports standing for them.
    pub ports: Vec<PortMap>,
    pub machine_pid: Option<u32>,
    pub app_pid: Option<u32>,
    pub imds_port: Option<u16>,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
}

impl Client {
    /// DescribeInstances, of every instance or those in `state` (the `instance-state-name`
    /// filter), oldest first.
    pub async fn describe_instances(
        &self,
        state: Option<&str>,
    ) -> Result<Vec<Instance>, ClientError> {
        let mut params = Vec::new();
        if let Some(state) = state {
            params.push(("Filter.1.Name".to_string(), "instance-state-name".to_string()));
            params.push(("Filter.1.Value.1".to_string(), state.to_string()));
        }
        let result = self.call(VERSION, "DescribeInstances", &params).await?;
        self.instances(&result)
    }

    /// GetConsoleOutput: what the instance has printed so far, decoded.
    pub async fn console_output(&self, instance_id: &str) -> Result<String, ClientError> {
        let params = [("InstanceId".to_string(), instance_id.to_string())];
        let result = self.call(VERSION, "GetConsoleOutput", &params).await?;
        self.console_text(&result)
    }

    /// The region's local details of its instances (`/_cumulo/instances`).
    pub async fn local_instances(&self) -> Result<Vec<LocalInstance>, ClientError> {
        let text = self.get_text("/_cumulo/instances").await?;
        let list: Vec<Json> = serde_json::from_str(&text)
            .map_err(|e| self.bad(format!("bad /_cumulo/instances answer: {e}")))?;
        Ok(list.iter().map(local_instance).collect())
    }

    /// Where the region's load balancer listeners really answer (`/_cumulo/endpoints`).
    pub async fn endpoints(&self) -> Result<Vec<elb::Endpoint>, ClientError> {
        let text = self.get_text("/_cumulo/endpoints").await?;
        let list: Vec<Json> = serde_json::from_str(&text)
            .map_err(|e| self.bad(format!("bad /_cumulo/endpoints answer: {e}")))?;
        Ok(list.iter().filter_map(endpoint).collect())
    }

    fn instances(&self, result: &XmlNode) -> Result<Vec<Instance>, ClientError> {
        let items = |node: &XmlNode, path: &str| -> Vec<XmlNode> {
            node.path(path).map(|n| n.children.clone()).unwrap_or_default()
        };
        let mut out = Vec::new();
        for reservation in items(result, "reservationSet") {
            for i in items(&reservation, "instancesSet") {
                out.push(self.instance(&i)?);
            }
        }
        Ok(out)
    }

    fn instance(&self, i: &XmlNode) -> Result<Instance, ClientError> {
        let text = |p: &str| i.get(p).unwrap_or_default().to_string();
        let state_name = i.get("instanceState/name").unwrap_or_default();
        let state = serde_json::from_value(Json::String(state_name.to_string()))
            .map_err(|_| self.bad(format!("unknown instance state {state_name:?}")))?;
        Ok(Instance {
            instance_id: text("instanceId"),
            state,
            zone: text("placement/availabilityZone"),
            private_ip: text("privateIpAddress"),
            public_ip: i.get("ipAddress").map(str::to_string),
            instance_type: text("instanceType"),
            launch_time: text("launchTime"),
            state_reason: i.get("stateReason/message").map(str::to_string),
            tags: i
                .path("tagSet")
                .map(|t| {
                    t.children
                        .iter()
                        .map(|tag| {
                            let text = |p: &str| tag.get(p).unwrap_or_default().to_string();
                            (text("key"), text("value"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn console_text(&self, result: &XmlNode) -> Result<String, ClientError> {
        let output = base64::engine::general_purpose::STANDARD
            .decode(result.get("output").unwrap_or_default())
            .map_err(|e| self.bad(format!("console output is not base64: {e}")))?;
        Ok(String::from_utf8_lossy(&output).into_owned())
    }
}

fn local_instance(d: &Json) -> LocalInstance {
    let number = |k: &str| d.get(k).and_then(Json::as_u64);
    LocalInstance {
        instance_id: d.get("instanceId").and_then(Json::as_str).unwrap_or_default().to_string(),
        ports: d
            .get("ports")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| serde_json::from_value(p.clone()).ok())
            .collect(),
        machine_pid: number("machinePid").and_then(|n| u32::try_from(n).ok()),
        app_pid: number("appPid").and_then(|n| u32::try_from(n).ok()),
        imds_port: number("imdsPort").and_then(|n| u16::try_from(n).ok()),
        cpu_percent: d.get("cpuPercent").and_then(Json::as_f64),
        rss_bytes: number("rssBytes"),
    }
}

fn endpoint(e: &Json) -> Option<elb::Endpoint> {
    Some(elb::Endpoint {
        load_balancer: e.get("loadBalancer")?.as_str()?.to_string(),
        dns_name: e.get("dnsName")?.as_str()?.to_string(),
        port: u16::try_from(e.get("port")?.as_u64()?).ok()?,
        https: e.get("https")?.as_bool()?,
        addr: e.get("address")?.as_str()?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCRIBE: &str = r#"<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
<requestId>r</requestId>
<reservationSet><item><reservationId>r-1</reservationId><ownerId>1</ownerId><groupSet/>
<instancesSet><item>
<instanceId>i-0123</instanceId><imageId>ami-1</imageId>
<instanceState><code>80</code><name>stopped</name></instanceState>
<instanceType>t3.micro</instanceType><launchTime>2024-01-01T00:00:00.000Z</launchTime>
<placement><availabilityZone>us-east-1b</availabilityZone><tenancy>default</tenancy></placement>
<privateIpAddress>10.0.1.4</privateIpAddress><ipAddress>203.0.113.9</ipAddress>
<stateReason><code>Client.UserInitiatedShutdown</code><message>User initiated shutdown</message></stateReason>
<tagSet><item><key>aws:autoscaling:groupName</key><value>web</value></item></tagSet>
</item></instancesSet></item>
<item><reservationId>r-2</reservationId><instancesSet><item>
<instanceId>i-0456</instanceId><instanceState><code>16</code><name>running</name></instanceState>
<privateIpAddress>10.0.2.4</privateIpAddress><tagSet/>
</item></instancesSet></item></reservationSet>
</DescribeInstancesResponse>"#;

    #[test]
    fn instances_decode_from_describe_instances() {
        let client = Client::new("http://127.0.0.1:1");
        let all = client.instances(&XmlNode::parse(DESCRIBE).unwrap()).unwrap();
        assert_eq!(all.len(), 2);
        let i = &all[0];
        assert_eq!(i.instance_id, "i-0123");
        assert_eq!(i.state, InstanceState::Stopped);
        assert_eq!(i.zone, "us-east-1b");
        assert_eq!(i.private_ip, "10.0.1.4");
        assert_eq!(i.public_ip.as_deref(), Some("203.0.113.9"));
        assert_eq!(i.instance_type, "t3.micro");
        assert_eq!(i.state_reason.as_deref(), Some("User initiated shutdown"));
        assert_eq!(i.tag("aws:autoscaling:groupName"), Some("web"));
        assert_eq!((all[1].state, all[1].public_ip.as_deref()), (InstanceState::Running, None));

        let bad = DESCRIBE.replace("<name>stopped</name>", "<name>asleep</name>");
        let bad = client.instances(&XmlNode::parse(&bad).unwrap());
        assert!(matches!(bad, Err(ClientError::Protocol { .. })));
    }

    #[test]
    fn console_output_and_local_endpoints_decode() {
        let client = Client::new("http://127.0.0.1:1");
        let xml = "<GetConsoleOutputResponse><instanceId>i-1</instanceId><output>aGVsbG8K</output></GetConsoleOutputResponse>";
        assert_eq!(client.console_text(&XmlNode::parse(xml).unwrap()).unwrap(), "hello\n");

        let local: Json = serde_json::from_str(
            r#"{"instanceId":"i-1","ports":[{"expected":80,"host":20001}],"appPid":42,"cpuPercent":1.5,"machinePid":null}"#,
        )
        .unwrap();
        let local = local_instance(&local);
        assert_eq!(local.instance_id, "i-1");
        assert_eq!(local.ports, [PortMap { expected: 80, host: 20001 }]);
        assert_eq!(
            (local.app_pid, local.machine_pid, local.cpu_percent),
            (Some(42), None, Some(1.5))
        );

        let e: Json = serde_json::from_str(
            r#"{"loadBalancer":"lb","dnsName":"lb-1.elb.amazonaws.com","port":443,"https":true,"address":"127.0.0.2:443"}"#,
        )
        .unwrap();
        let e = endpoint(&e).unwrap();
        assert_eq!((e.port, e.https, e.addr.to_string()), (443, true, "127.0.0.2:443".into()));
    }
}
