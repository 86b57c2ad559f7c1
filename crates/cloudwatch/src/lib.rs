//! CloudWatch locally: a metric store with AWS's resolutions and retention (`series`),
//! statistics (`metric`), metric math (`math`), and alarms (`alarms`) evaluated on the region's
//! clock (`evaluate` is the pure state machine) whose actions reach the other services through
//! the [`AlarmActions`] trait the region implements.
//!
//! Architecture Invariant: CloudWatch knows no other service. Producers (EC2, load balancers,
//! Auto Scaling) are read by the region and recorded here; actions leave through
//! [`AlarmActions`].

use std::sync::Arc;

use aws_ids::Account;
use clock::Clock;
use store::Store;

pub mod alarms;
pub mod evaluate;
pub mod math;
pub mod metric;
pub mod notify;
pub mod providers;
pub mod query;
pub mod series;

pub use alarms::{AlarmActions, AlarmRecord, Fired};
pub use metric::{Cell, MetricId, Statistic};

#[derive(Debug, thiserror::Error)]
pub enum CwError {
    #[error("the metric store cannot be read or written: {0}")]
    Store(#[from] store::StoreError),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidParameterCombination(String),
    #[error("{0}")]
    MissingParameter(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidNextToken(String),
}

impl CwError {
    /// CloudWatch's error code.
    pub fn code(&self) -> &'static str {
        match self {
            CwError::Store(_) => "InternalServiceError",
            CwError::InvalidParameterValue(_) => "InvalidParameterValue",
            CwError::InvalidParameterCombination(_) => "InvalidParameterCombination",
            CwError::MissingParameter(_) => "MissingParameter",
            CwError::ResourceNotFound(_) => "ResourceNotFound",
            CwError::LimitExceeded(_) => "LimitExceeded",
            CwError::InvalidNextToken(_) => "InvalidNextToken",
        }
    }

    /// The HTTP status AWS answers it with.
    pub fn status(&self) -> u16 {
        match self {
            CwError::Store(_) => 500,
            CwError::ResourceNotFound(_) => 404,
            _ => 400,
        }
    }
}

/// One datum of PutMetricData.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Datum {
    pub name: String,
    pub dimensions: Vec<(String, String)>,
    /// Epoch milliseconds; `None` is now.
    pub timestamp: Option<i64>,
    pub value: Option<f64>,
    pub values: Vec<f64>,
    pub counts: Vec<f64>,
    /// (SampleCount, Sum, Minimum, Maximum).
    pub statistic_values: Option<(f64, f64, f64, f64)>,
    pub unit: Option<String>,
    /// 1 (high resolution) or 60 (the default).
    pub storage_resolution: Option<i64>,
}

/// A region's CloudWatch.
pub struct CloudWatch {
    pub(crate) store: Arc<Store>,
    pub(crate) clock: Clock,
    pub(crate) account: Account,
    pub metrics: series::Metrics,
    pub(crate) alarms: alarms::State,
}

impl CloudWatch {
    pub fn new(store: Arc<Store>, clock: Clock, account: Account) -> Result<CloudWatch, CwError> {
        let metrics = series::Metrics::open(store.clone())?;
        Ok(CloudWatch { store, clock, account, metrics, alarms: alarms::State::default() })
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Now, in epoch seconds of AWS time.
    pub fn now(&self) -> i64 {
        self.clock.now().as_second()
    }

    /// PutMetricData.
    pub fn put_metric_data(&self, namespace: &str, data: &[Datum]) -> Result<(), CwError> {
        if namespace.starts_with("AWS/") {
            return Err(CwError::InvalidParameterValue(format!(
                "The value {namespace} for parameter Namespace is invalid."
            )));
        }
        if data.len() > 1000 {
            return Err(CwError::InvalidParameterValue(
                "The collection MetricData must not have a size greater than 1000.".into(),
            ));
        }
        // Check everything first: a request lands whole or not at all.
        let now = self.now();
        let mut points = Vec::with_capacity(data.len());
        for d in data {
            let id = MetricId::new(namespace, d.name.clone(), d.dimensions.clone());
            id.check()?;
            if let Some(u) = &d.unit {
                metric::check_unit(u)?;
            }
            let resolution = d.storage_resolution.unwrap_or(60);
            if resolution != 1 && resolution != 60 {
                return Err(CwError::InvalidParameterValue(
                    "The parameter StorageResolution must be 1 or 60.".into(),
                ));
            }
            let ts = d.timestamp.map_or(now, |ms| ms.div_euclid(1000));
            if ts < now - 14 * 86_400 || ts > now + 2 * 3_600 {
                return Err(CwError::InvalidParameterValue(format!(
                    "The parameter MetricData.member.Timestamp must specify a time no more than two weeks in the past and no more than two hours in the future (got {ts})."
                )));
            }
            let finite = |v: f64| -> Result<f64, CwError> {
                if v.is_finite() && v.abs() <= 2f64.powi(360) {
                    Ok(v)
                } else {
                    Err(CwError::InvalidParameterValue(format!(
                        "The value {v} for parameter MetricData.member.Value is invalid."
                    )))
                }
            };
            let cell = match (d.value, d.values.is_empty(), d.statistic_values) {
                (Some(v), true, None) => Cell::single(finite(v)?),
                (None, false, None) => {
                    if !d.counts.is_empty() && d.counts.len() != d.values.len() {
                        return Err(CwError::InvalidParameterValue(
                            "The parameters MetricData.member.Values and MetricData.member.Counts must be arrays of the same size.".into(),
                        ));
                    }
                    if d.values.len() > 150 {
                        return Err(CwError::InvalidParameterValue(
                            "The collection MetricData.member.Values must not have a size greater than 150.".into(),
                        ));
                    }
                    let mut cell: Option<Cell> = None;
                    for (i, v) in d.values.iter().enumerate() {
                        let v = finite(*v)?;
                        let n = d.counts.get(i).copied().unwrap_or(1.0);
                        match &mut cell {
                            None => {
                                let mut c = Cell::single(v);
                                c.add_value(v, n - 1.0);
                                cell = Some(c);
                            }
                            Some(c) => c.add_value(v, n),
                        }
                    }
                    match cell {
                        Some(c) => c,
                        None => continue,
                    }
                }
                (None, true, Some((count, sum, min, max))) => {
                    if count <= 0.0 || min > max {
                        return Err(CwError::InvalidParameterValue(
                            "The parameter MetricData.member.StatisticValues is invalid.".into(),
                        ));
                    }
                    Cell::statistic_set(count, finite(sum)?, finite(min)?, finite(max)?)
                }
                (None, true, None) => {
                    return Err(CwError::MissingParameter(
                        "The parameter MetricData.member.Value is required.".into(),
                    ));
                }
                _ => {
                    return Err(CwError::InvalidParameterCombination(
                        "The parameters MetricData.member.Value, MetricData.member.Values and MetricData.member.StatisticValues are mutually exclusive and you have specified more than one.".into(),
                    ));
                }
            };
            points.push((id, ts, cell, d.unit.clone(), resolution == 1));
        }
        for (id, ts, cell, unit, high) in points {
            self.metrics.record(&id, ts, &cell, unit.as_deref(), high, now)?;
        }
        Ok(())
    }

    /// Records a point of an AWS namespace (the region's producers).
    pub fn record(
        &self,
        id: &MetricId,
        timestamp: i64,
        cell: &Cell,
        unit: &str,
    ) -> Result<(), CwError> {
        self.metrics.record(id, timestamp, cell, Some(unit), false, self.now())?;
        Ok(())
    }

    /// Writes the metric store's recent changes and compacts what is old (the region calls
    /// this on the clock, and at shutdown).
    pub fn flush(&self) -> Result<(), CwError> {
        let now = self.now();
        self.metrics.flush(now)?;
        let mut rounds = 0;
        while self.metrics.compact(now, 256)? && rounds < 16 {
            rounds += 1;
        }
        Ok(())
    }
}
