//! Reading metrics back: GetMetricStatistics, GetMetricData (metric math through `math`),
//! ListMetrics.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::metric::{self, Cell, MetricId, Statistic};
use crate::{CloudWatch, CwError, math};

/// At most this many datapoints per GetMetricStatistics answer.
pub const MAX_DATAPOINTS: i64 = 1_440;

/// A metric, a period, a statistic (GetMetricData's `MetricStat`, an alarm's metric).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricStat {
    pub metric: MetricId,
    pub period: i64,
    /// AWS's spelling (`Average`, `p99`).
    pub stat: String,
    pub unit: Option<String>,
}

/// One query of GetMetricData (or of a metric-math alarm's `Metrics`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataQuery {
    pub id: String,
    pub metric: Option<MetricStat>,
    pub expression: Option<String>,
    pub label: Option<String>,
    pub return_data: bool,
    pub period: Option<i64>,
}

/// One result of GetMetricData.
#[derive(Clone, Debug, PartialEq)]
pub struct DataResult {
    pub id: String,
    pub label: String,
    /// Epoch seconds and values, in the order asked (newest first by default).
    pub points: Vec<(i64, f64)>,
    pub messages: Vec<String>,
}

/// GetMetricStatistics' question.
#[derive(Clone, Debug, PartialEq)]
pub struct StatisticsQuery {
    pub metric: MetricId,
    pub start: i64,
    pub end: i64,
    pub period: i64,
    pub statistics: Vec<String>,
    pub extended: Vec<String>,
    pub unit: Option<String>,
}

/// One datapoint of GetMetricStatistics.
#[derive(Clone, Debug, PartialEq)]
pub struct Datapoint {
    pub timestamp: i64,
    /// The basic statistics asked, by name.
    pub values: Vec<(String, f64)>,
    /// The extended statistics asked, by name.
    pub extended: Vec<(String, f64)>,
    pub unit: String,
}

/// The start of the query's grid: StartTime rounded down to the minute (to the second for
/// periods under a minute).
fn grid_start(start: i64, period: i64) -> i64 {
    let unit = if period < 60 { period } else { 60 };
    start - start.rem_euclid(unit)
}

impl CloudWatch {
    /// A metric's cells merged per period over the grid `start + k × period`, in `start..end`.
    pub(crate) fn periods(
        &self,
        metric: &MetricId,
        start: i64,
        end: i64,
        period: i64,
        unit: Option<&str>,
    ) -> Result<BTreeMap<i64, Cell>, CwError> {
        let now = self.now();
        let start = grid_start(start, period);
        let mut out: BTreeMap<i64, Cell> = BTreeMap::new();
        let other_unit = |u: &str| {
            self.metrics.unit(metric).is_some_and(|have| have.as_deref().unwrap_or("None") != u)
        };
        if unit.is_some_and(other_unit) {
            return Ok(out);
        }
        for (t, cell) in self.metrics.cells(metric, start, end, period, now)? {
            let bucket = start + (t - start).div_euclid(period) * period;
            out.entry(bucket).and_modify(|c| c.merge(&cell)).or_insert(cell);
        }
        Ok(out)
    }

    /// GetMetricStatistics.
    pub fn get_metric_statistics(&self, q: &StatisticsQuery) -> Result<Vec<Datapoint>, CwError> {
        metric::check_period(q.period)?;
        if q.start >= q.end {
            return Err(CwError::InvalidParameterValue(
                "The parameter StartTime must be less than the parameter EndTime.".into(),
            ));
        }
        if q.statistics.is_empty() && q.extended.is_empty() {
            return Err(CwError::InvalidParameterCombination(
                "Must specify either Statistics or ExtendedStatistics, but not both.".into(),
            ));
        }
        if !q.statistics.is_empty() && !q.extended.is_empty() {
            return Err(CwError::InvalidParameterCombination(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.".into(),
            ));
        }
        if q.statistics.len() > 5 || q.extended.len() > 10 {
            return Err(CwError::InvalidParameterValue(
                "At most 5 Statistics and 10 ExtendedStatistics may be asked.".into(),
            ));
        }
        let basic: Vec<(String, Statistic)> = q
            .statistics
            .iter()
            .map(|s| match Statistic::parse(s).filter(|st| !st.is_extended()) {
                Some(st) => Ok((s.clone(), st)),
                None => Err(CwError::InvalidParameterValue(format!(
                    "The parameter Statistics.member.1 must be a value in the set [ Maximum, Minimum, Sum, SampleCount, Average ] (got {s})."
                ))),
            })
            .collect::<Result<_, _>>()?;
        let extended: Vec<(String, Statistic)> = q
            .extended
            .iter()
            .map(|s| match Statistic::parse_extended(s) {
                Some(st) => Ok((s.clone(), st)),
                None => Err(CwError::InvalidParameterValue(format!(
                    "The value {s} for parameter ExtendedStatistics is not supported."
                ))),
            })
            .collect::<Result<_, _>>()?;
        if let Some(u) = &q.unit {
            metric::check_unit(u)?;
        }
        let start = grid_start(q.start, q.period);
        let n = (q.end - start + q.period - 1) / q.period;
        if n > MAX_DATAPOINTS {
            return Err(CwError::InvalidParameterCombination(format!(
                "You have requested up to {n} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range."
            )));
        }
        let unit = q
            .unit
            .clone()
            .or_else(|| self.metrics.unit(&q.metric).flatten())
            .unwrap_or_else(|| "None".into());
        let periods = self.periods(&q.metric, q.start, q.end, q.period, q.unit.as_deref())?;
        Ok(periods
            .into_iter()
            .map(|(timestamp, cell)| Datapoint {
                timestamp,
                values: basic
                    .iter()
                    .filter_map(|(name, st)| Some((name.clone(), cell.statistic(st)?)))
                    .collect(),
                extended: extended
                    .iter()
                    .filter_map(|(name, st)| Some((name.clone(), cell.statistic(st)?)))
                    .collect(),
                unit: unit.clone(),
            })
            .collect())
    }

    /// One metric's statistic per period on the grid `grid` (value and sample count).
    pub(crate) fn stat_series(
        &self,
        m: &MetricStat,
        grid: &[i64],
    ) -> Result<Vec<Option<(f64, f64)>>, CwError> {
        let stat = Statistic::parse(&m.stat).ok_or_else(|| {
            CwError::InvalidParameterValue(format!(
                "The value {} for parameter Stat is not supported.",
                m.stat
            ))
        })?;
        let (Some(&first), Some(&last)) = (grid.first(), grid.last()) else {
            return Ok(Vec::new());
        };
        let periods =
            self.periods(&m.metric, first, last + m.period, m.period, m.unit.as_deref())?;
        Ok(grid
            .iter()
            .map(|t| {
                let cell = periods.get(t)?;
                Some((cell.statistic(&stat)?, cell.count))
            })
            .collect())
    }

    /// Evaluates GetMetricData's queries over `start..end`; every query's series on the grid,
    /// by id (expressions after the queries they name).
    pub(crate) fn evaluate_queries(
        &self,
        queries: &[DataQuery],
        start: i64,
        end: i64,
    ) -> Result<Vec<(DataQuery, math::Series)>, CwError> {
        check_queries(queries)?;
        let period = queries
            .iter()
            .filter_map(|q| q.metric.as_ref().map(|m| m.period).or(q.period))
            .min()
            .unwrap_or(60);
        let start = grid_start(start, period);
        let grid: Vec<i64> =
            (0..).map(|k| start + k * period).take_while(|t| *t < end).take(100_800).collect();
        let mut done: HashMap<String, Vec<math::Series>> = HashMap::new();
        let mut out: Vec<(DataQuery, math::Series)> = Vec::new();
        for q in queries.iter().filter(|q| q.metric.is_some()) {
            let Some(m) = &q.metric else { continue };
            let values: Vec<Option<f64>> = if m.period == period {
                self.stat_series(m, &grid)?.into_iter().map(|v| v.map(|(v, _)| v)).collect()
            } else {
                // A coarser period: its own grid, each value placed at its period's start.
                let own: Vec<i64> =
                    grid.iter().copied().filter(|t| (t - start) % m.period == 0).collect();
                let vals = self.stat_series(m, &own)?;
                let at: HashMap<i64, Option<f64>> =
                    own.into_iter().zip(vals.into_iter().map(|v| v.map(|(v, _)| v))).collect();
                grid.iter().map(|t| at.get(t).copied().flatten()).collect()
            };
            let label = q.label.clone().unwrap_or_else(|| m.metric.name.clone());
            let series = math::Series { label, timestamps: grid.clone(), values };
            done.insert(q.id.clone(), vec![series.clone()]);
            out.push((q.clone(), series));
        }
        // Expressions, each once the ones it names are done (ids may name later expressions).
        let mut pending: Vec<(&DataQuery, math::Expr)> = Vec::new();
        for q in queries.iter().filter(|q| q.expression.is_some()) {
            let expr = math::parse(q.expression.as_deref().unwrap_or_default()).map_err(|e| {
                CwError::InvalidParameterValue(format!("Error in expression '{}': {e}", q.id))
            })?;
            pending.push((q, expr));
        }
        let ids: Vec<String> = queries.iter().map(|q| q.id.clone()).collect();
        // METRICS() is the request's metric queries, in request order.
        let metric_ids: Vec<String> =
            queries.iter().filter(|q| q.metric.is_some()).map(|q| q.id.clone()).collect();
        while !pending.is_empty() {
            let ready = pending.iter().position(|(_, e)| {
                e.references().iter().all(|r| done.contains_key(r) || !ids.contains(r))
            });
            let Some(i) = ready else {
                return Err(CwError::InvalidParameterValue(
                    "The expressions of the request reference each other in a cycle.".into(),
                ));
            };
            let (q, expr) = pending.remove(i);
            for r in expr.references() {
                if !ids.contains(&r) {
                    return Err(CwError::InvalidParameterValue(format!(
                        "Error in expression '{}': Unrecognized metric or expression id '{r}'",
                        q.id
                    )));
                }
            }
            let cx = Context {
                done: &done,
                grid: &grid,
                period: period as u32,
                metric_ids: &metric_ids,
            };
            let results = math::evaluate(&expr, &cx).map_err(|e| {
                CwError::InvalidParameterValue(format!("Error in expression '{}': {e}", q.id))
            })?;
            let label = q.label.clone().unwrap_or_else(|| q.id.clone());
            for (k, mut s) in results.clone().into_iter().enumerate() {
                if s.label.is_empty() || results.len() == 1 {
                    s.label =
                        if results.len() == 1 { label.clone() } else { format!("{label} {k}") };
                }
                out.push((q.clone(), s));
            }
            done.insert(q.id.clone(), results);
        }
        Ok(out)
    }

    /// GetMetricData.
    pub fn get_metric_data(
        &self,
        queries: &[DataQuery],
        start: i64,
        end: i64,
        newest_first: bool,
    ) -> Result<Vec<DataResult>, CwError> {
        if start >= end {
            return Err(CwError::InvalidParameterValue(
                "The parameter StartTime must be less than the parameter EndTime.".into(),
            ));
        }
        let series = self.evaluate_queries(queries, start, end)?;
        Ok(series
            .into_iter()
            .filter(|(q, _)| q.return_data)
            .map(|(q, s)| {
                let mut points: Vec<(i64, f64)> = s
                    .timestamps
                    .iter()
                    .zip(&s.values)
                    .filter_map(|(t, v)| v.map(|v| (*t, v)))
                    .collect();
                if newest_first {
                    points.reverse();
                }
                DataResult { id: q.id.clone(), label: s.label, points, messages: Vec::new() }
            })
            .collect())
    }

    /// ListMetrics: metrics with a point in the last two weeks (three hours when
    /// `recently_active`), filtered by namespace, name and dimensions (a filter without a value
    /// matches any value).
    pub fn list_metrics(
        &self,
        namespace: Option<&str>,
        name: Option<&str>,
        dimensions: &[(String, Option<String>)],
        recently_active: bool,
    ) -> Vec<MetricId> {
        let since = self.now() - if recently_active { 3 * 3_600 } else { 14 * 86_400 };
        self.metrics
            .list(since)
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| namespace.is_none_or(|n| id.namespace == n))
            .filter(|id| name.is_none_or(|n| id.name == n))
            .filter(|id| {
                dimensions.iter().all(|(k, v)| {
                    id.dimension(k).is_some_and(|have| v.as_deref().is_none_or(|v| v == have))
                })
            })
            .collect()
    }
}

struct Context<'a> {
    done: &'a HashMap<String, Vec<math::Series>>,
    grid: &'a [i64],
    period: u32,
    metric_ids: &'a [String],
}

impl math::Context for Context<'_> {
    fn series(&self, id: &str) -> Option<Vec<math::Series>> {
        self.done.get(id).cloned()
    }
    fn all_ids(&self) -> Vec<String> {
        self.metric_ids.to_vec()
    }
    fn grid(&self) -> &[i64] {
        self.grid
    }
    fn period(&self) -> u32 {
        self.period
    }
}

/// GetMetricData's checks on its queries.
pub fn check_queries(queries: &[DataQuery]) -> Result<(), CwError> {
    if queries.is_empty() || queries.len() > 500 {
        return Err(CwError::InvalidParameterValue(
            "The collection MetricDataQueries must have between 1 and 500 members.".into(),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for q in queries {
        let mut chars = q.id.chars();
        let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && q.id.len() <= 255;
        if !ok {
            return Err(CwError::InvalidParameterValue(format!(
                "The value {} for parameter MetricDataQueries.member.Id is invalid: it must start with a lowercase letter and contain only letters, digits and underscores.",
                q.id
            )));
        }
        if !seen.insert(q.id.as_str()) {
            return Err(CwError::InvalidParameterValue(format!(
                "The value {} for parameter MetricDataQueries.member.Id is used more than once.",
                q.id
            )));
        }
        match (&q.metric, &q.expression) {
            (Some(m), None) => {
                metric::check_period(m.period)?;
                m.metric.check()?;
            }
            (None, Some(_)) => {}
            _ => {
                return Err(CwError::InvalidParameterCombination(format!(
                    "Exactly one of MetricStat and Expression must be specified for query {}.",
                    q.id
                )));
            }
        }
    }
    if !queries.iter().any(|q| q.return_data) {
        return Err(CwError::InvalidParameterValue(
            "At least one query of MetricDataQueries must have ReturnData true.".into(),
        ));
    }
    Ok(())
}
