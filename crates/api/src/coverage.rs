//! Which AWS operations the endpoint answers, by botocore's service names: what
//! `scripts/coverage.py` compares with botocore's models to write COVERAGE.md, and what the
//! coverage test holds that file to.

/// Every implemented operation, by botocore service name, in botocore's operation names.
pub fn implemented() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut all = vec![
        ("autoscaling", crate::autoscaling::actions().to_vec()),
        ("cloudformation", crate::cloudformation::actions().to_vec()),
        ("ec2", crate::ec2::actions()),
        ("elb", crate::elb_classic::actions().to_vec()),
        ("elbv2", crate::elbv2::actions().to_vec()),
        ("iam", crate::iam::actions().to_vec()),
        ("sns", crate::sns::actions().to_vec()),
        ("ssm", crate::ssm::actions().to_vec()),
        ("cloudwatch", crate::cloudwatch::actions().to_vec()),
        ("logs", crate::logs::actions().to_vec()),
        ("sts", crate::sts::actions().to_vec()),
    ];
    for (_, actions) in &mut all {
        actions.sort_unstable();
        actions.dedup();
    }
    all
}
