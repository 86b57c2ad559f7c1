//! `Fn::Cidr`, computed as AWS does: `count` consecutive subnets with `cidr_bits` host bits,
//! from the start of the block.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub fn cidr(block: &str, count: u32, cidr_bits: u32) -> Result<Vec<String>, String> {
    let (addr, prefix) = block
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("Fn::Cidr: invalid CIDR block {block}"))?;
    let addr: IpAddr = addr.parse().map_err(|_| format!("Fn::Cidr: invalid CIDR block {block}"))?;
    let prefix: u32 =
        prefix.parse().map_err(|_| format!("Fn::Cidr: invalid CIDR block {block}"))?;
    if !(1..=256).contains(&count) {
        return Err(format!("Fn::Cidr: count must be between 1 and 256, got {count}"));
    }
    let width = if addr.is_ipv4() { 32 } else { 128 };
    if prefix > width {
        return Err(format!("Fn::Cidr: invalid CIDR block {block}"));
    }
    if cidr_bits == 0 || cidr_bits > width - prefix {
        return Err(format!("Fn::Cidr: cidrBits {cidr_bits} does not fit in {block}"));
    }
    let subnet_prefix = width - cidr_bits;
    // How many subnets of that size fit in the block.
    let available_bits = subnet_prefix - prefix;
    if available_bits < 32 && u64::from(count) > (1u64 << available_bits) {
        return Err(format!("Fn::Cidr: {block} cannot hold {count} subnets of /{subnet_prefix}"));
    }
    let base: u128 = match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let block_mask = if prefix == 0 { 0 } else { !0u128 << (width - prefix) };
    let width_mask = if width == 128 { !0u128 } else { (1u128 << width) - 1 };
    let base = base & block_mask & width_mask;
    let step = 1u128 << cidr_bits;
    Ok((0..u128::from(count))
        .map(|i| {
            let n = base + i * step;
            let ip = match addr {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(n as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(n)),
            };
            format!("{ip}/{subnet_prefix}")
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::cidr;

    #[test]
    fn aws_documentation_example() {
        assert_eq!(
            cidr("192.168.0.0/24", 6, 5).unwrap(),
            [
                "192.168.0.0/27",
                "192.168.0.32/27",
                "192.168.0.64/27",
                "192.168.0.96/27",
                "192.168.0.128/27",
                "192.168.0.160/27"
            ]
        );
    }

    #[test]
    fn ipv6() {
        assert_eq!(cidr("2001:db8::/56", 2, 64).unwrap(), ["2001:db8::/64", "2001:db8:0:1::/64"]);
    }

    #[test]
    fn errors() {
        assert!(cidr("10.0.0.0/24", 9, 5).is_err());
        assert!(cidr("10.0.0.0/24", 1, 9).is_err());
        assert!(cidr("10.0.0.0", 1, 8).is_err());
        assert!(cidr("10.0.0.0/16", 0, 8).is_err());
    }
}
