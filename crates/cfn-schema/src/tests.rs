use super::*;

#[test]
fn every_line_parses() {
    let names = type_names();
    assert!(names.len() > 1800, "only {} types", names.len());
    for name in names {
        let schema = get(name).unwrap();
        assert!(schema.schema.is_object(), "{name} did not parse");
    }
}

#[test]
fn target_group_facts() {
    let tg = get("AWS::ElasticLoadBalancingV2::TargetGroup").unwrap();
    assert!(tg.has_attribute("TargetGroupFullName"));
    assert!(tg.has_attribute("LoadBalancerArns"));
    assert!(tg.create_only.contains(&"Port".to_string()));
    let interval = tg.property("HealthCheckIntervalSeconds").unwrap();
    assert_eq!(interval["minimum"], 5);
    assert_eq!(interval["maximum"], 300);
}

#[test]
fn nested_attributes_use_dots() {
    let db = get("AWS::RDS::DBInstance").unwrap();
    assert!(db.has_attribute("Endpoint.Address"), "{:?}", db.attributes);
}

#[test]
fn unknown_type() {
    assert!(get("AWS::Foo::Bar").is_none());
    assert!(!is_known("AWS::Foo::Bar"));
}

/// The checked-in data must be exactly what the extraction script produces from the pinned
/// cfn-lint wheel (downloaded with pip into target/cfn-lint on first run).
#[test]
fn data_matches_extraction_script() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let output = std::process::Command::new("python3")
        .arg(format!("{root}/scripts/extract-schemas.py"))
        .arg("--check")
        .output()
        .expect("python3 must be installed to check the schema data");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
