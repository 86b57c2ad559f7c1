//! Launch templates and their versions, and images made from instances. Launch template data
//! arrives as EC2's Query lists (`LaunchTemplateData.SecurityGroupId.1`) and is kept in the
//! shape CloudFormation's `LaunchTemplateData` has (`SecurityGroupIds`), so both paths launch
//! from the same record; it goes out as EC2's XML (`securityGroupIdSet`).

use ec2::Ec2;
use ec2::model::LaunchTemplateRecord;
use serde_json::Value as Json;

use super::{Filters, tag_set, tag_specifications};
use crate::error::ApiError;
use crate::query::QueryInput;
use crate::xml::XmlOut;

pub const ACTIONS: &[&str] = &[
    "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion",
    "DescribeLaunchTemplates",
    "DescribeLaunchTemplateVersions",
    "ModifyLaunchTemplate",
    "DeleteLaunchTemplate",
    "CreateImage",
    "DeregisterImage",
];

/// Query list names and the names CloudFormation (and EC2's JSON shapes) give those lists.
const LISTS: &[(&str, &str)] = &[
    ("SecurityGroupId", "SecurityGroupIds"),
    ("SecurityGroup", "SecurityGroups"),
    ("TagSpecification", "TagSpecifications"),
    ("Tag", "Tags"),
    ("NetworkInterface", "NetworkInterfaces"),
    ("BlockDeviceMapping", "BlockDeviceMappings"),
    ("LicenseSpecification", "LicenseSpecifications"),
    ("ElasticGpuSpecification", "ElasticGpuSpecifications"),
];

/// EC2's XML names of those lists.
const XML_LISTS: &[(&str, &str)] = &[
    ("SecurityGroupIds", "securityGroupIdSet"),
    ("SecurityGroups", "securityGroupSet"),
    ("TagSpecifications", "tagSpecificationSet"),
    ("Tags", "tagSet"),
    ("NetworkInterfaces", "networkInterfaceSet"),
    ("Groups", "groupSet"),
    ("BlockDeviceMappings", "blockDeviceMappingSet"),
];

/// Launch template data from the Query tree, in CloudFormation's shape.
pub(crate) fn template_data(tree: &Json, in_interface: bool) -> Json {
    match tree {
        Json::Object(map) => Json::Object(
            map.iter()
                .map(|(k, v)| {
                    let interface = k == "NetworkInterface";
                    let name = match (k.as_str(), in_interface) {
                        ("SecurityGroupId", true) => "Groups".to_string(),
                        _ => LISTS
                            .iter()
                            .find(|(q, _)| q == k)
                            .map_or(k.clone(), |(_, c)| c.to_string()),
                    };
                    (name, template_data(v, interface))
                })
                .collect(),
        ),
        Json::Array(items) => {
            Json::Array(items.iter().map(|i| template_data(i, in_interface)).collect())
        }
        other => other.clone(),
    }
}

fn lower_first(s: &str) -> String {
    super::lower_first(s)
}

/// CloudFormation-shaped data as EC2's XML.
fn write_data(x: &mut XmlOut, value: &Json) {
    let Json::Object(map) = value else { return };
    for (k, v) in map {
        match v {
            Json::Array(items) => {
                let name = XML_LISTS
                    .iter()
                    .find(|(c, _)| c == k)
                    .map_or(format!("{}Set", lower_first(k)), |(_, x)| x.to_string());
                x.open(&name, None);
                for item in items {
                    match item {
                        Json::Object(_) => {
                            x.open("item", None);
                            write_data(x, item);
                            x.close();
                        }
                        Json::String(s) => {
                            x.text("item", s);
                        }
                        other => {
                            x.text("item", &other.to_string());
                        }
                    }
                }
                x.close();
            }
            Json::Object(_) => {
                x.open(&lower_first(k), None);
                write_data(x, v);
                x.close();
            }
            Json::String(s) => {
                x.text(&lower_first(k), s);
            }
            Json::Null => {}
            other => {
                x.text(&lower_first(k), &other.to_string());
            }
        }
    }
}

fn write_template(x: &mut XmlOut, t: &LaunchTemplateRecord) {
    let created = t.created.get(&1).map(|c| c.0.clone()).unwrap_or_default();
    x.text("launchTemplateId", &t.id)
        .text("launchTemplateName", &t.name)
        .text("createTime", &created)
        .text("createdBy", "arn:aws:iam::000000000000:root")
        .text("defaultVersionNumber", &t.default_version.to_string())
        .text("latestVersionNumber", &t.latest().to_string());
    tag_set(x, &t.tags);
}

fn write_version(x: &mut XmlOut, t: &LaunchTemplateRecord, version: u32) {
    let (created, description) = t.created.get(&version).cloned().unwrap_or_default();
    x.text("launchTemplateId", &t.id)
        .text("launchTemplateName", &t.name)
        .text("versionNumber", &version.to_string())
        .opt("versionDescription", description.as_deref())
        .text("createTime", &created)
        .text("createdBy", "arn:aws:iam::000000000000:root")
        .bool("defaultVersion", version == t.default_version);
    x.open("launchTemplateData", None);
    write_data(x, t.versions.get(&version).unwrap_or(&Json::Null));
    x.close();
}

/// Runs one of its `ACTIONS`.
pub(super) fn run(ec2: &Ec2, action: &str, q: &QueryInput, x: &mut XmlOut) -> Result<(), ApiError> {
    let tree = q.tree();
    let text = |k: &str| tree.get(k).and_then(Json::as_str).map(str::to_string);
    let required = |k: &str| super::required(&tree, k);
    let template = || {
        text("LaunchTemplateId").or_else(|| text("LaunchTemplateName")).ok_or_else(|| {
            ApiError::service(
                "MissingParameter",
                "The request must contain the parameter LaunchTemplateName or LaunchTemplateId",
            )
        })
    };
    let data = || template_data(tree.get("LaunchTemplateData").unwrap_or(&Json::Null), false);
    match action {
        "CreateLaunchTemplate" => {
            let t = ec2.create_launch_template(
                &required("LaunchTemplateName")?,
                data(),
                text("VersionDescription"),
                tag_specifications(&tree, "launch-template"),
                None,
            )?;
            x.open("launchTemplate", None);
            write_template(x, &t);
            x.close();
        }
        "CreateLaunchTemplateVersion" => {
            let (t, version) = ec2.create_launch_template_version(
                &template()?,
                text("SourceVersion").as_deref(),
                data(),
                text("VersionDescription"),
            )?;
            x.open("launchTemplateVersion", None);
            write_version(x, &t, version);
            x.close();
        }
        "ModifyLaunchTemplate" => {
            let version = text("SetDefaultVersion").or_else(|| text("DefaultVersion"));
            let version = version.ok_or_else(|| {
                ApiError::service(
                    "MissingParameter",
                    "The request must contain the parameter SetDefaultVersion",
                )
            })?;
            let t = ec2.set_default_version(&template()?, &version)?;
            x.open("launchTemplate", None);
            write_template(x, &t);
            x.close();
        }
        "DeleteLaunchTemplate" => {
            let t = ec2.delete_launch_template(&template()?)?;
            x.open("launchTemplate", None);
            write_template(x, &t);
            x.close();
        }
        "DescribeLaunchTemplates" => {
            let ids = q.list_flat("LaunchTemplateId");
            let names = q.list_flat("LaunchTemplateName");
            let all = ec2.launch_templates()?;
            for want in ids.iter().chain(&names) {
                if !all.iter().any(|t| &t.id == want || &t.name == want) {
                    return Err(ec2::Ec2Error::Rejected {
                        code: if want.starts_with("lt-") {
                            "InvalidLaunchTemplateId.NotFound"
                        } else {
                            "InvalidLaunchTemplateName.NotFoundException"
                        },
                        message: format!(
                            "At least one of the launch templates specified in the request does not exist: {want}"
                        ),
                    }
                    .into());
                }
            }
            let filters = Filters::from(q);
            x.open("launchTemplates", None);
            for t in all {
                let named = (ids.is_empty() || ids.contains(&t.id))
                    && (names.is_empty() || names.contains(&t.name));
                let keep = filters.check(&t.tags, |name| {
                    Some(match name {
                        "launch-template-name" => vec![t.name.clone()],
                        _ => return None,
                    })
                })?;
                if named && keep {
                    x.open("item", None);
                    write_template(x, &t);
                    x.close();
                }
            }
            x.close();
        }
        "DescribeLaunchTemplateVersions" => {
            let t = ec2.launch_template(&template()?)?.ok_or_else(|| {
                ApiError::service(
                    "InvalidLaunchTemplateId.NotFound",
                    "The specified launch template does not exist.",
                )
            })?;
            let asked = q.list_flat("LaunchTemplateVersion");
            let mut versions: Vec<u32> = Vec::new();
            for v in &asked {
                versions.push(t.resolve_version(Some(v)).ok_or_else(|| {
                    ApiError::service(
                        "InvalidLaunchTemplateId.VersionNotFound",
                        format!("Could not find launch template version {v}"),
                    )
                })?);
            }
            if asked.is_empty() {
                versions = t.versions.keys().rev().copied().collect();
            }
            x.open("launchTemplateVersionSet", None);
            for v in versions {
                x.open("item", None);
                write_version(x, &t, v);
                x.close();
            }
            x.close();
        }
        "CreateImage" => {
            let image = ec2.create_image(
                &required("InstanceId")?,
                &required("Name")?,
                text("Description"),
                tag_specifications(&tree, "image"),
            )?;
            x.text("imageId", &image.id);
        }
        "DeregisterImage" => {
            ec2.deregister_image(&required("ImageId")?)?;
            x.bool("return", true);
        }
        other => return Err(ApiError::invalid_action(other)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_lists_become_cloudformation_lists() {
        let q = QueryInput::parse(
            "",
            b"LaunchTemplateData.ImageId=ami-12345678&LaunchTemplateData.SecurityGroupId.1=sg-1&LaunchTemplateData.NetworkInterface.1.DeviceIndex=0&LaunchTemplateData.NetworkInterface.1.SecurityGroupId.1=sg-2&LaunchTemplateData.TagSpecification.1.ResourceType=instance&LaunchTemplateData.TagSpecification.1.Tag.1.Key=Name&LaunchTemplateData.TagSpecification.1.Tag.1.Value=web&LaunchTemplateData.IamInstanceProfile.Name=web",
        );
        let data = template_data(q.tree().get("LaunchTemplateData").unwrap(), false);
        expect_test::expect![[r#"{"IamInstanceProfile":{"Name":"web"},"ImageId":"ami-12345678","NetworkInterfaces":[{"DeviceIndex":"0","Groups":["sg-2"]}],"SecurityGroupIds":["sg-1"],"TagSpecifications":[{"ResourceType":"instance","Tags":[{"Key":"Name","Value":"web"}]}]}"#]]
        .assert_eq(&data.to_string());
        let mut x = XmlOut::new();
        x.open("launchTemplateData", None);
        write_data(&mut x, &data);
        expect_test::expect![[r#"<launchTemplateData><iamInstanceProfile><name>web</name></iamInstanceProfile><imageId>ami-12345678</imageId><networkInterfaceSet><item><deviceIndex>0</deviceIndex><groupSet><item>sg-2</item></groupSet></item></networkInterfaceSet><securityGroupIdSet><item>sg-1</item></securityGroupIdSet><tagSpecificationSet><item><resourceType>instance</resourceType><tagSet><item><key>Name</key><value>web</value></item></tagSet></item></tagSpecificationSet></launchTemplateData>"#]]
        .assert_eq(&x.finish());
    }
}
