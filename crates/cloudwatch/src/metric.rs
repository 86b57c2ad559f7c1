//! What a metric is (namespace, name, exact dimension set), its units, and the statistic set one
//! period keeps: count, sum, minimum, maximum and a bounded distribution of the values, from
//! which every statistic CloudWatch answers is computed (percentiles and trimmed means too).

use serde::{Deserialize, Serialize};

use crate::CwError;

/// At most this many dimensions per metric (AWS's limit).
pub const MAX_DIMENSIONS: usize = 30;

/// A metric's identity: namespace, name and the exact set of dimensions it was published with
/// (kept sorted by name, so the same set is the same metric whatever order it came in).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricId {
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        dimensions: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>,
    ) -> MetricId {
        let mut dimensions: Vec<(String, String)> =
            dimensions.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        dimensions.sort();
        MetricId { namespace: namespace.into(), name: name.into(), dimensions }
    }

    /// The key the store keeps its points under (stable across runs).
    pub fn key(&self) -> String {
        let mut key = format!("{}\u{1f}{}", self.namespace, self.name);
        for (k, v) in &self.dimensions {
            key.push('\u{1f}');
            key.push_str(k);
            key.push('=');
            key.push_str(v);
        }
        key
    }

    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Checks names and dimensions as PutMetricData does.
    pub fn check(&self) -> Result<(), CwError> {
        let bad = |m: String| Err(CwError::InvalidParameterValue(m));
        if self.namespace.is_empty() || self.namespace.len() > 255 {
            return bad(format!(
                "The parameter Namespace must be between 1 and 255 characters (got '{}').",
                self.namespace
            ));
        }
        if self.namespace.starts_with(':') {
            return bad("The value for parameter Namespace must not start with ':'.".into());
        }
        if self.name.is_empty() || self.name.len() > 255 {
            return bad("The parameter MetricName must be between 1 and 255 characters.".into());
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            return bad(format!(
                "The collection Dimensions must not have a size greater than {MAX_DIMENSIONS}."
            ));
        }
        for w in self.dimensions.windows(2) {
            if w[0].0 == w[1].0 {
                return bad(format!("No Metric may specify the same dimension twice: {}", w[0].0));
            }
        }
        for (k, v) in &self.dimensions {
            if k.is_empty() || k.len() > 255 || v.is_empty() || v.len() > 1024 {
                return Err(CwError::InvalidParameterValue(format!(
                    "The dimension {k} must have a name of 1 to 255 and a value of 1 to 1024 characters."
                )));
            }
        }
        Ok(())
    }
}

/// CloudWatch's units (`aws_ids::CLOUDWATCH_UNITS`).
pub use aws_ids::CLOUDWATCH_UNITS as UNITS;

pub fn check_unit(unit: &str) -> Result<(), CwError> {
    if UNITS.contains(&unit) {
        Ok(())
    } else {
        Err(CwError::InvalidParameterValue(format!(
            "The parameter Unit must be a value in the set [ {} ].",
            UNITS.join(", ")
        )))
    }
}

/// How many distinct values a cell keeps for percentiles before it merges the closest ones.
pub const MAX_VALUES: usize = 64;

/// What one period of one metric keeps: AWS's statistic set plus the values themselves (as
/// value → count, bounded by [`MAX_VALUES`]) for percentiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub count: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// Sorted by value; counts add up to `count` (unless the cell came from a statistic set,
    /// which carries no values: then it is empty).
    pub values: Vec<(f64, f64)>,
}

impl Cell {
    pub fn single(value: f64) -> Cell {
        Cell { count: 1.0, sum: value, min: value, max: value, values: vec![(value, 1.0)] }
    }

    /// A published statistic set (no values: percentiles are not available from it).
    pub fn statistic_set(count: f64, sum: f64, min: f64, max: f64) -> Cell {
        Cell { count, sum, min, max, values: Vec::new() }
    }

    /// Adds `count` occurrences of `value`.
    pub fn add_value(&mut self, value: f64, count: f64) {
        let values = self.values_complete();
        self.count += count;
        self.sum += value * count;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        if values {
            insert_value(&mut self.values, value, count);
        }
    }

    /// Merges another cell into this one (a longer period, or two publications in one period).
    pub fn merge(&mut self, other: &Cell) {
        let values = self.values_complete() && other.values_complete();
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        if values {
            for &(v, c) in &other.values {
                insert_value(&mut self.values, v, c);
            }
        } else {
            self.values.clear();
        }
    }

    /// Whether the values account for every sample (percentiles can be answered).
    fn values_complete(&self) -> bool {
        let n: f64 = self.values.iter().map(|(_, c)| c).sum();
        (n - self.count).abs() < 1e-9
    }

    pub fn has_values(&self) -> bool {
        !self.values.is_empty() && self.values_complete()
    }

    /// The value of `stat` over this cell, `None` when it cannot be computed (a percentile of
    /// a statistic set).
    pub fn statistic(&self, stat: &Statistic) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        match stat {
            Statistic::SampleCount => Some(self.count),
            Statistic::Sum => Some(self.sum),
            Statistic::Average => Some(self.sum / self.count),
            Statistic::Minimum => Some(self.min),
            Statistic::Maximum => Some(self.max),
            Statistic::Percentile(p) => {
                if !self.has_values() {
                    return None;
                }
                Some(percentile(&self.values, self.count, *p))
            }
            Statistic::TrimmedMean(lo, hi) => {
                if !self.has_values() {
                    return None;
                }
                trimmed_mean(&self.values, self.count, *lo, *hi)
            }
        }
    }
}

fn insert_value(values: &mut Vec<(f64, f64)>, value: f64, count: f64) {
    match values.binary_search_by(|(v, _)| v.total_cmp(&value)) {
        Ok(i) => values[i].1 += count,
        Err(i) => values.insert(i, (value, count)),
    }
    if values.len() > MAX_VALUES {
        // Merge the closest neighbours into their weighted mean.
        let mut best = 0;
        let mut gap = f64::INFINITY;
        for i in 0..values.len() - 1 {
            let g = values[i + 1].0 - values[i].0;
            if g < gap {
                gap = g;
                best = i;
            }
        }
        let (a, ca) = values[best];
        let (b, cb) = values[best + 1];
        values[best] = ((a * ca + b * cb) / (ca + cb), ca + cb);
        values.remove(best + 1);
    }
}

/// The nearest-rank percentile `p` (0–100) of a distribution.
fn percentile(values: &[(f64, f64)], count: f64, p: f64) -> f64 {
    if p <= 0.0 {
        return values.first().map_or(0.0, |v| v.0);
    }
    let rank = (p / 100.0 * count).ceil().max(1.0);
    let mut seen = 0.0;
    for &(v, c) in values {
        seen += c;
        if seen + 1e-9 >= rank {
            return v;
        }
    }
    values.last().map_or(0.0, |v| v.0)
}

/// The mean of the values between percentiles `lo` and `hi` (0–100).
fn trimmed_mean(values: &[(f64, f64)], count: f64, lo: f64, hi: f64) -> Option<f64> {
    let (from, to) = (lo / 100.0 * count, hi / 100.0 * count);
    let (mut seen, mut sum, mut n) = (0.0, 0.0, 0.0);
    for &(v, c) in values {
        let (a, b) = (seen, seen + c);
        let overlap = (b.min(to) - a.max(from)).max(0.0);
        sum += v * overlap;
        n += overlap;
        seen = b;
    }
    (n > 0.0).then(|| sum / n)
}

/// A statistic: one of the five, or an extended one (`p99`, `p99.9`, `tm90`, `TM(10%:90%)`,
/// `IQM`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Statistic {
    SampleCount,
    Sum,
    Average,
    Minimum,
    Maximum,
    Percentile(f64),
    TrimmedMean(f64, f64),
}

impl Statistic {
    pub fn parse(s: &str) -> Option<Statistic> {
        Some(match s {
            "SampleCount" => Statistic::SampleCount,
            "Sum" => Statistic::Sum,
            "Average" => Statistic::Average,
            "Minimum" => Statistic::Minimum,
            "Maximum" => Statistic::Maximum,
            _ => return Statistic::parse_extended(s),
        })
    }

    /// An extended statistic (`p0.0`–`p100`, `tmNN`, `TM(a%:b%)`, `IQM`).
    pub fn parse_extended(s: &str) -> Option<Statistic> {
        let pct = |t: &str| -> Option<f64> {
            let v: f64 = t.parse().ok()?;
            // At most two decimals, as AWS allows.
            let decimals = t.split_once('.').map_or(0, |(_, d)| d.len());
            ((0.0..=100.0).contains(&v) && decimals <= 2 && !t.starts_with('+')).then_some(v)
        };
        if s == "IQM" {
            return Some(Statistic::TrimmedMean(25.0, 75.0));
        }
        if let Some(rest) = s.strip_prefix('p') {
            return pct(rest).map(Statistic::Percentile);
        }
        if let Some(rest) = s.strip_prefix("tm").or_else(|| s.strip_prefix("TM")) {
            if let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                let (a, b) = inner.split_once(':')?;
                let a = if a.is_empty() { 0.0 } else { pct(a.strip_suffix('%')?)? };
                let b = if b.is_empty() { 100.0 } else { pct(b.strip_suffix('%')?)? };
                return (a < b).then_some(Statistic::TrimmedMean(a, b));
            }
            return pct(rest).filter(|v| *v > 0.0).map(|v| Statistic::TrimmedMean(0.0, v));
        }
        None
    }

    pub fn is_extended(&self) -> bool {
        matches!(self, Statistic::Percentile(_) | Statistic::TrimmedMean(..))
    }

    /// The percentile, when it is one (for the low-sample-count rule).
    pub fn percentile(&self) -> Option<f64> {
        match self {
            Statistic::Percentile(p) => Some(*p),
            _ => None,
        }
    }

    /// AWS's spelling.
    pub fn name(&self) -> String {
        match self {
            Statistic::SampleCount => "SampleCount".into(),
            Statistic::Sum => "Sum".into(),
            Statistic::Average => "Average".into(),
            Statistic::Minimum => "Minimum".into(),
            Statistic::Maximum => "Maximum".into(),
            Statistic::Percentile(p) => format!("p{}", trim(*p)),
            Statistic::TrimmedMean(a, b) if *a == 25.0 && *b == 75.0 => "IQM".into(),
            Statistic::TrimmedMean(a, b) if *a == 0.0 => format!("tm{}", trim(*b)),
            Statistic::TrimmedMean(a, b) => format!("TM({}%:{}%)", trim(*a), trim(*b)),
        }
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Valid periods: 1, 5, 10, 20, 30, or a multiple of 60 up to a day.
pub fn check_period(period: i64) -> Result<(), CwError> {
    if matches!(period, 1 | 5 | 10 | 20 | 30) || (period >= 60 && period % 60 == 0) {
        Ok(())
    } else {
        Err(CwError::InvalidParameterValue(
            "The parameter Period must be a multiple of 60 or one of 1, 5, 10, 20, 30.".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    fn check(values: &[f64], stats: &[&str], expect: expect_test::Expect) {
        let mut cell = Cell::single(values[0]);
        for v in &values[1..] {
            cell.add_value(*v, 1.0);
        }
        let out: Vec<String> = stats
            .iter()
            .map(|s| {
                let stat = Statistic::parse(s).map(|st| cell.statistic(&st));
                format!("{s}={stat:?}")
            })
            .collect();
        expect.assert_eq(&out.join(" "));
    }

    #[test]
    fn statistics_of_one_period() {
        check(
            &[1.0, 2.0, 3.0, 4.0, 10.0],
            &["SampleCount", "Sum", "Average", "Minimum", "Maximum"],
            expect![
                "SampleCount=Some(Some(5.0)) Sum=Some(Some(20.0)) Average=Some(Some(4.0)) Minimum=Some(Some(1.0)) Maximum=Some(Some(10.0))"
            ],
        );
        check(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            &[
                "p50",
                "p90",
                "p99.99",
                "p0",
                "p100",
                "tm80",
                "IQM",
                "TM(10%:90%)",
                "p101",
                "p9.999",
                "x",
            ],
            expect![
                "p50=Some(Some(5.0)) p90=Some(Some(9.0)) p99.99=Some(Some(10.0)) p0=Some(Some(1.0)) p100=Some(Some(10.0)) tm80=Some(Some(4.5)) IQM=Some(Some(5.5)) TM(10%:90%)=Some(Some(5.5)) p101=None p9.999=None x=None"
            ],
        );
    }

    #[test]
    fn a_statistic_set_has_no_percentiles() {
        let mut cell = Cell::statistic_set(4.0, 10.0, 1.0, 4.0);
        cell.merge(&Cell::single(5.0));
        assert_eq!(cell.statistic(&Statistic::Average), Some(3.0));
        assert_eq!(cell.statistic(&Statistic::Percentile(50.0)), None);
    }

    #[test]
    fn many_values_stay_bounded() {
        let mut cell = Cell::single(0.0);
        for i in 1..10_000 {
            cell.add_value(f64::from(i), 1.0);
        }
        assert!(cell.values.len() <= MAX_VALUES);
        let p50 = cell.statistic(&Statistic::Percentile(50.0)).unwrap_or_default();
        assert!((4_500.0..5_500.0).contains(&p50), "{p50}");
        assert_eq!(cell.statistic(&Statistic::Maximum), Some(9_999.0));
    }

    #[test]
    fn a_metric_is_its_exact_dimension_set() {
        let a = MetricId::new("AWS/EC2", "CPUUtilization", [("b", "2"), ("a", "1")]);
        let b = MetricId::new("AWS/EC2", "CPUUtilization", [("a", "1"), ("b", "2")]);
        assert_eq!(a, b);
        assert_ne!(a, MetricId::new("AWS/EC2", "CPUUtilization", [("a", "1")]));
        assert!(MetricId::new("N", "M", [("a", "1"), ("a", "2")]).check().is_err());
    }
}
