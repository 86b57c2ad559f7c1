//! Identifiers in AWS's formats (spec §8): `i-` and friends with 17 hex digits, ARNs,
//! CloudFormation-generated physical names, UUIDs for request and activity ids.
//!
//! Randomness comes from `fastrand`; nothing here needs to be unguessable.

/// The region and account Cumulo plays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub region: String,
    pub account_id: String,
    pub partition: String,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            region: "us-east-1".into(),
            account_id: "000000000000".into(),
            partition: "aws".into(),
        }
    }
}

impl Account {
    /// `arn:aws:<service>:<region>:<account>:<resource>`.
    pub fn arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}:{}:{}:{resource}", self.partition, self.region, self.account_id)
    }

    /// An ARN of a global service (IAM): no region.
    pub fn global_arn(&self, service: &str, resource: &str) -> String {
        format!("arn:{}:{service}::{}:{resource}", self.partition, self.account_id)
    }
}

/// CloudWatch's units: what PutMetricData, alarms and Logs' metric filters accept.
pub const CLOUDWATCH_UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// `n` random lowercase hex digits.
pub fn hex(n: usize) -> String {
    const HEX: &[u8] = b"0123456789abcdef";
    (0..n).map(|_| HEX[fastrand::usize(..16)] as char).collect()
}

/// `n` random characters of `A-Z0-9`.
pub fn upper_alnum(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    (0..n).map(|_| SET[fastrand::usize(..SET.len())] as char).collect()
}

/// `n` random digits.
pub fn digits(n: usize) -> String {
    (0..n).map(|_| char::from(b'0' + fastrand::u8(..10))).collect()
}

/// An EC2-style id: `prefix-` and 17 hex digits (`i-0a1b...`).
pub fn ec2_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex(17))
}

/// A random UUID (version 4), lowercase.
pub fn uuid() -> String {
    let mut b: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// A CloudFormation-generated physical name: `<stack>-<LogicalId>-<13 random A-Z0-9>`, shortened
/// to fit `max` characters the way AWS does (stack and logical id truncated first).
pub fn physical_name(stack: &str, logical_id: &str, max: usize) -> String {
    let suffix = upper_alnum(13);
    let full = format!("{stack}-{logical_id}-{suffix}");
    if full.len() <= max {
        return full;
    }
    // Keep the suffix whole; share what is left between the stack name and the logical id.
    let room = max.saturating_sub(suffix.len() + 2);
    let stack_part = room.div_ceil(2).min(stack.len());
    let logical_part = room.saturating_sub(stack_part).min(logical_id.len());
    let stack_cut: String = stack.chars().take(stack_part).collect();
    let logical_cut: String = logical_id.chars().take(logical_part).collect();
    let name = format!("{stack_cut}-{logical_cut}-{suffix}");
    name.chars().take(max).collect()
}

/// A generated name for services that want lowercase names (S3 buckets, RDS identifiers).
pub fn physical_name_lower(stack: &str, logical_id: &str, max: usize) -> String {
    physical_name(stack, logical_id, max).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let id = ec2_id("i");
        assert_eq!(id.len(), 19);
        assert!(id[2..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let u = uuid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        let acct = Account::default();
        assert_eq!(acct.arn("sns", "t"), "arn:aws:sns:us-east-1:000000000000:t");
        assert_eq!(acct.global_arn("iam", "role/r"), "arn:aws:iam::000000000000:role/r");
    }

    #[test]
    fn physical_names_fit_their_limits() {
        let name = physical_name("sample", "ApplicationLoadBalancer", 32);
        assert!(name.len() <= 32, "{name}");
        assert!(name.starts_with("sampl") || name.starts_with("sample-"), "{name}");
        let short = physical_name("web", "Topic", 256);
        assert!(short.starts_with("web-Topic-") && short.len() == "web-Topic-".len() + 13);
        let tiny =
            physical_name("a-very-long-stack-name-indeed", "AnEvenLongerLogicalIdentifier", 20);
        assert_eq!(tiny.len(), 20);
    }
}
