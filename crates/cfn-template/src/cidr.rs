//! CIDR blocks: the one parser, shared by `Fn::Cidr` and by EC2's network model.
//!
//! [`Block`] is a block as written (an address, IPv4 or IPv6, and a prefix no longer than it).
//! [`Ipv4Cidr`] is an IPv4 block as EC2 accepts it, with no host bits set. [`cidr`] is
//! `Fn::Cidr`, computed as AWS does: `count` consecutive subnets with `cidr_bits` host bits, from
//! the start of the block.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A CIDR block as written: `addr/prefix`, the prefix no longer than the address. Host bits may
/// be set (`Fn::Cidr` masks them off; EC2 refuses them, see [`Ipv4Cidr::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Block {
    /// `None` unless the text is `addr/prefix` with a valid address and a prefix that fits it.
    pub fn parse(s: &str) -> Option<Block> {
        let (addr, prefix) = s.trim().split_once('/')?;
        let addr: IpAddr = addr.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        (u32::from(prefix) <= width(addr)).then_some(Block { addr, prefix })
    }
}

fn width(addr: IpAddr) -> u32 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// An IPv4 CIDR block as EC2 takes it for a VPC or a subnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub base: u32,
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// `None` unless the text is an IPv4 block whose address has no host bits set (EC2 refuses
    /// `10.0.1.5/24`).
    pub fn parse(s: &str) -> Option<Ipv4Cidr> {
        let Block { addr: IpAddr::V4(addr), prefix } = Block::parse(s)? else { return None };
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        let base = u32::from(addr);
        (base & mask == base).then_some(Ipv4Cidr { base, prefix })
    }

    /// How many addresses the block holds.
    pub fn size(&self) -> u64 {
        1u64 << (32 - self.prefix)
    }

    /// The block's last address, as a number.
    pub fn last(&self) -> u32 {
        self.base + (self.size() - 1) as u32
    }

    pub fn contains(&self, other: &Ipv4Cidr) -> bool {
        other.prefix >= self.prefix && other.base >= self.base && other.last() <= self.last()
    }

    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.base <= other.last() && other.base <= self.last()
    }

    /// The address `offset` from the start of the block.
    pub fn addr(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + offset)
    }
}

/// `Fn::Cidr`. Errors are the message after "Template error: ".
pub fn cidr(block: &str, count: u32, cidr_bits: u32) -> Result<Vec<String>, String> {
    let Block { addr, prefix } =
        Block::parse(block).ok_or_else(|| format!("Fn::Cidr: invalid CIDR block {block}"))?;
    let prefix = u32::from(prefix);
    if !(1..=256).contains(&count) {
        return Err(format!("Fn::Cidr: count must be between 1 and 256, got {count}"));
    }
    let width = width(addr);
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
    use super::{Block, Ipv4Cidr, cidr};

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

    #[test]
    fn blocks() {
        assert_eq!(Block::parse("10.0.0.0").map(|b| b.prefix), None);
        assert_eq!(Block::parse("10.0.0.0/33"), None);
        assert_eq!(Block::parse("2001:db8::/129"), None);
        assert_eq!(Block::parse(" 10.0.1.5/24 ").map(|b| b.prefix), Some(24), "host bits allowed");
        assert_eq!(Block::parse("2001:db8::/56").map(|b| b.prefix), Some(56));
    }

    #[test]
    fn ipv4_rules() {
        let vpc = Ipv4Cidr::parse("10.0.0.0/16").unwrap();
        let a = Ipv4Cidr::parse("10.0.1.0/24").unwrap();
        let b = Ipv4Cidr::parse("10.0.1.128/25").unwrap();
        let outside = Ipv4Cidr::parse("10.1.0.0/24").unwrap();
        assert!(vpc.contains(&a) && vpc.contains(&b) && !vpc.contains(&outside));
        assert!(a.overlaps(&b) && !a.overlaps(&outside));
        assert_eq!(a.size(), 256);
        assert_eq!(a.addr(4).to_string(), "10.0.1.4");
        assert_eq!(Ipv4Cidr::parse("10.0.1.5/24"), None, "host bits set");
        assert_eq!(Ipv4Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Ipv4Cidr::parse("2001:db8::/56"), None, "IPv6");
        assert_eq!(Ipv4Cidr::parse("0.0.0.0/0").map(|c| c.size()), Some(1 << 32));
    }
}
