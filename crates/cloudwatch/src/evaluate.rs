//! Alarm evaluation: the pure state machine of a metric alarm (AWS's "How alarm state is
//! evaluated when data is missing", `alarms-and-missing-data.html`, and its two tables) and the
//! rule of a composite alarm. No I/O and no clock: the caller fetches the evaluation range and
//! says what time it is.
//!
//! # Metric alarms
//!
//! [`evaluate`] takes the evaluation range (oldest first, one [`Point`] per period, `None` =
//! missing; the caller fetches [`evaluation_range`] periods) and the alarm's current state, and
//! decides as AWS documents:
//!
//! 1. At least N real points in the range: the newest N real points decide (older real points
//!    fill the gaps; TreatMissingData is not used). ALARM if at least M breach, else OK.
//! 2. Fewer than N real points: every real point is used and the `f = N - real` missing ones
//!    are filled per TreatMissingData, as few as possible:
//!    - `breaching`: ALARM if `breaching + f >= M`, else OK.
//!    - `notBreaching`: ALARM if `breaching >= M`, else OK.
//!    - `missing`: no real point at all → INSUFFICIENT_DATA. Otherwise ALARM if
//!      `breaching >= M`; OK if some real point does not breach; and when every real point
//!      breaches but there are fewer than M of them, the premature-alarm guard: ALARM if the
//!      oldest breaching point is at least M periods old (it is the M-th newest period or
//!      older: `- - X - -` with M=3), else the state is kept (`- - - - X`, `- - - X -`).
//!    - `ignore`: like `missing`, except that no data at all, and the guard's case (every real
//!      point breaching, fewer than M), keep the current state.
//!
//!    The guard needs *no* non-breaching real point in the range: AWS's M=2 row `0 - X - -` is
//!    OK although its breaching point is old enough.
//!
//! When the outcome's state equals `current` the caller keeps the alarm's recorded StateReason
//! (AWS changes StateReason and StateReasonData only on a transition); the reason of a kept
//! state describes the evaluation but is not AWS text.
//!
//! Anomaly-band comparisons need the band's values, which a [`Rule`] does not carry: they keep
//! the current state ("Unchecked: ...").
//!
//! # Reasons and reason data
//!
//! StateReason is AWS's text: `Threshold Crossed: 2 out of the last 3 datapoints [15.0
//! (22/05/18 20:37:00), 16.0 (22/05/18 20:36:00)] were greater than or equal to the threshold
//! (5.0) (minimum 2 datapoints for OK -> ALARM transition).` — the points listed (newest first)
//! are those that breach (for ALARM) or do not (for OK); the minimum is M for ALARM and
//! N - M + 1 for OK. Filled points add `and 2 missing datapoints were treated as [Breaching]`;
//! when no real point is of the deciding kind the reason reads `no datapoints were received for
//! 3 periods and 3 missing datapoints were treated as [NonBreaching].`; INSUFFICIENT_DATA reads
//! `Insufficient Data: 3 datapoints were unknown.`
//!
//! [`Outcome::reason_data`] holds the keys the inputs give, in AWS's order: `version`,
//! `startDate` (the oldest real point used), `recentDatapoints` (the real points used, oldest
//! first), `threshold`, `evaluatedDatapoints` (newest first: the deciding points, at most the
//! minimum above; for INSUFFICIENT_DATA the N newest periods, timestamps only). The caller adds
//! `queryDate`, `unit`, `statistic` and `period` with [`complete_reason_data`], which puts them
//! where AWS does (`sampleCount` of each evaluated point is not known here and is left out).

use std::collections::HashSet;

use serde_json::{Map, Value};

/// An alarm's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StateValue {
    Ok,
    Alarm,
    InsufficientData,
}

impl StateValue {
    pub fn as_str(self) -> &'static str {
        match self {
            StateValue::Ok => "OK",
            StateValue::Alarm => "ALARM",
            StateValue::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    /// AWS's spelling (`OK`, `ALARM`, `INSUFFICIENT_DATA`); anything else is `None`.
    pub fn parse(s: &str) -> Option<StateValue> {
        match s {
            "OK" => Some(StateValue::Ok),
            "ALARM" => Some(StateValue::Alarm),
            "INSUFFICIENT_DATA" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }
}

/// ComparisonOperator, in AWS's spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
    LessThanLowerOrGreaterThanUpperThreshold,
    LessThanLowerThreshold,
    GreaterThanUpperThreshold,
}

impl Comparison {
    pub const ALL: [Comparison; 7] = [
        Comparison::GreaterThanOrEqualToThreshold,
        Comparison::GreaterThanThreshold,
        Comparison::LessThanThreshold,
        Comparison::LessThanOrEqualToThreshold,
        Comparison::LessThanLowerOrGreaterThanUpperThreshold,
        Comparison::LessThanLowerThreshold,
        Comparison::GreaterThanUpperThreshold,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
            Comparison::LessThanLowerOrGreaterThanUpperThreshold => {
                "LessThanLowerOrGreaterThanUpperThreshold"
            }
            Comparison::LessThanLowerThreshold => "LessThanLowerThreshold",
            Comparison::GreaterThanUpperThreshold => "GreaterThanUpperThreshold",
        }
    }

    pub fn parse(s: &str) -> Option<Comparison> {
        Comparison::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The three operators that compare against an anomaly-detection band.
    pub fn is_anomaly_band(self) -> bool {
        matches!(
            self,
            Comparison::LessThanLowerOrGreaterThanUpperThreshold
                | Comparison::LessThanLowerThreshold
                | Comparison::GreaterThanUpperThreshold
        )
    }

    /// Whether `value` breaches `threshold` (never, for a band operator or a NaN).
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
            _ => false,
        }
    }

    /// The words of AWS's StateReason: "... was greater than or equal to the threshold ...".
    fn phrase(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
            Comparison::LessThanLowerOrGreaterThanUpperThreshold => {
                "less than the lower or greater than the upper"
            }
            Comparison::LessThanLowerThreshold => "less than the lower",
            Comparison::GreaterThanUpperThreshold => "greater than the upper",
        }
    }
}

/// TreatMissingData.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum TreatMissing {
    #[default]
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl TreatMissing {
    pub const ALL: [TreatMissing; 4] = [
        TreatMissing::Missing,
        TreatMissing::Ignore,
        TreatMissing::Breaching,
        TreatMissing::NotBreaching,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TreatMissing::Missing => "missing",
            TreatMissing::Ignore => "ignore",
            TreatMissing::Breaching => "breaching",
            TreatMissing::NotBreaching => "notBreaching",
        }
    }

    pub fn parse(s: &str) -> Option<TreatMissing> {
        TreatMissing::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// How a filled point is named in StateReason (`[Breaching]`, `[NonBreaching]`).
    fn fill_label(self) -> Option<&'static str> {
        match self {
            TreatMissing::Breaching => Some("Breaching"),
            TreatMissing::NotBreaching => Some("NonBreaching"),
            TreatMissing::Missing | TreatMissing::Ignore => None,
        }
    }
}

/// One period's datapoint: its start (epoch seconds) and value, None = missing.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub timestamp: i64,
    pub value: Option<f64>,
}

/// What an alarm compares. `evaluation_periods` is N, `datapoints_to_alarm` M (PutMetricAlarm
/// keeps 1 <= M <= N; here N is taken as at least 1 and M is clamped into 1..=N).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rule {
    pub comparison: Comparison,
    pub threshold: f64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub treat_missing: TreatMissing,
}

/// The result of one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: StateValue,
    pub reason: String,
    /// StateReasonData without the caller's keys (see [`complete_reason_data`]).
    pub reason_data: Value,
    /// The periods the evaluation used, newest last: the real points and the periods filled
    /// for missing data (`value: None`).
    pub used: Vec<Point>,
}

/// How many periods an alarm of `n` evaluation periods fetches: its evaluation range. AWS
/// publishes one size (3 periods → 5) and says the range depends on the period and resolution
/// without giving the rule; this keeps AWS's two extra periods for every N.
pub fn evaluation_range(n: u32) -> u32 {
    n.max(1).saturating_add(2)
}

/// Whether `samples` are too few for percentile `p` (a fraction) to count, per
/// EvaluateLowSampleCountPercentile: fewer than 10/(1-p) for p in [0.5, 1), fewer than 10/p for
/// p in (0, 0.5). p0 and p100 (the minimum and maximum) and a NaN are never low.
pub fn low_sample_count(p: f64, samples: f64) -> bool {
    if p.is_nan() || samples.is_nan() || p <= 0.0 || p >= 1.0 {
        return false;
    }
    let needed = if p >= 0.5 { 10.0 / (1.0 - p) } else { 10.0 / p };
    // 10 / (1 - 0.9) is 100.00000000000001 in binary: compare with a relative tolerance.
    samples < needed * (1.0 - 1e-12)
}

/// Evaluates `rule` over `points` (the evaluation range, oldest first; see the module docs for
/// the rules). The points are sorted by timestamp first; a NaN value counts as missing.
pub fn evaluate(rule: &Rule, points: &[Point], current: StateValue) -> Outcome {
    let n = rule.evaluation_periods.max(1) as usize;
    let m = (rule.datapoints_to_alarm.max(1) as usize).min(n);
    let mut range: Vec<Point> = points
        .iter()
        .map(|p| Point { timestamp: p.timestamp, value: p.value.filter(|v| !v.is_nan()) })
        .collect();
    range.sort_by_key(|p| p.timestamp);

    // Newest first from here on: index 0 is the newest period, its age 0.
    let newest_first: Vec<(usize, Point)> = range.iter().rev().copied().enumerate().collect();
    let reals: Vec<Real> = newest_first
        .iter()
        .filter_map(|&(age, p)| {
            p.value.map(|value| Real {
                age,
                timestamp: p.timestamp,
                value,
                breaching: rule.comparison.breaches(value, rule.threshold),
            })
        })
        .take(n)
        .collect();
    let fill = n - reals.len();
    let fill_slots: Vec<i64> = newest_first
        .iter()
        .filter(|(_, p)| p.value.is_none())
        .map(|(_, p)| p.timestamp)
        .take(fill)
        .collect();

    let ctx = Ctx { rule, n, m, current, reals: &reals, fill, fill_slots: &fill_slots };

    if rule.comparison.is_anomaly_band() {
        return ctx
            .kept("Unchecked: anomaly detection bands are not evaluated locally.".to_string());
    }

    let breaching = reals.iter().filter(|r| r.breaching).count();
    let good = reals.len() - breaching;
    let treat = rule.treat_missing;
    if fill == 0 {
        return if breaching >= m {
            ctx.decided(StateValue::Alarm, None)
        } else {
            ctx.decided(StateValue::Ok, None)
        };
    }
    match treat {
        TreatMissing::Breaching => {
            if breaching + fill >= m {
                ctx.decided(StateValue::Alarm, Some(treat))
            } else {
                ctx.decided(StateValue::Ok, Some(treat))
            }
        }
        TreatMissing::NotBreaching => {
            if breaching >= m {
                ctx.decided(StateValue::Alarm, Some(treat))
            } else {
                ctx.decided(StateValue::Ok, Some(treat))
            }
        }
        TreatMissing::Missing | TreatMissing::Ignore => {
            if reals.is_empty() {
                return if treat == TreatMissing::Missing {
                    ctx.insufficient()
                } else {
                    ctx.kept(ctx.kept_reason())
                };
            }
            if breaching >= m {
                return ctx.decided(StateValue::Alarm, None);
            }
            if good > 0 {
                return ctx.decided(StateValue::Ok, None);
            }
            // Every real point breaches, fewer than M of them: the premature-alarm guard.
            let oldest_age = reals.iter().map(|r| r.age).max().unwrap_or(0);
            if treat == TreatMissing::Missing && oldest_age + 1 >= m {
                ctx.decided(StateValue::Alarm, None)
            } else {
                ctx.kept(ctx.kept_reason())
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Real {
    age: usize,
    timestamp: i64,
    value: f64,
    breaching: bool,
}

struct Ctx<'a> {
    rule: &'a Rule,
    n: usize,
    m: usize,
    current: StateValue,
    /// The real points used, newest first.
    reals: &'a [Real],
    fill: usize,
    /// The periods filled for missing data, newest first (fewer than `fill` when the range
    /// given is shorter than N).
    fill_slots: &'a [i64],
}

impl Ctx<'_> {
    fn used(&self) -> Vec<Point> {
        let mut used: Vec<Point> = self
            .reals
            .iter()
            .map(|r| Point { timestamp: r.timestamp, value: Some(r.value) })
            .chain(self.fill_slots.iter().map(|&timestamp| Point { timestamp, value: None }))
            .collect();
        used.sort_by_key(|p| p.timestamp);
        used
    }

    fn reason_data(&self, evaluated: Vec<Value>) -> Value {
        let mut data = Map::new();
        data.insert("version".into(), Value::from("1.0"));
        if let Some(oldest) = self.reals.iter().map(|r| r.timestamp).min() {
            data.insert("startDate".into(), Value::from(iso_millis(oldest.saturating_mul(1000))));
        }
        let recent: Vec<Value> = self.reals.iter().rev().map(|r| json_f64(r.value)).collect();
        data.insert("recentDatapoints".into(), Value::Array(recent));
        data.insert("threshold".into(), json_f64(self.rule.threshold));
        data.insert("evaluatedDatapoints".into(), Value::Array(evaluated));
        Value::Object(data)
    }

    /// A state decided by the data: ALARM or OK, `fill` set when missing points were filled
    /// (breaching / notBreaching).
    fn decided(&self, state: StateValue, fill_as: Option<TreatMissing>) -> Outcome {
        let alarm = state == StateValue::Alarm;
        let minimum = if alarm { self.m } else { self.n - self.m + 1 };
        // The real points of the deciding kind, newest first.
        let kind: Vec<&Real> = self.reals.iter().filter(|r| r.breaching == alarm).collect();
        // Filled points count toward the decision when they are of its kind.
        let fills_count = match fill_as {
            Some(TreatMissing::Breaching) => alarm,
            Some(TreatMissing::NotBreaching) => !alarm,
            _ => false,
        };

        let label = fill_as.and_then(TreatMissing::fill_label);
        let reason = match label {
            Some(label) if kind.is_empty() => format!(
                "Threshold Crossed: {} received for {} and {} treated as [{label}].",
                received(self.reals.len()),
                count_noun(self.n, "period", "periods"),
                missing_were(self.fill),
            ),
            _ => {
                let list: Vec<String> = kind
                    .iter()
                    .map(|r| format!("{} ({})", java_double(r.value), reason_time(r.timestamp)))
                    .collect();
                let fill_clause = match label {
                    Some(label) => format!(" and {} treated as [{label}]", missing_were(self.fill)),
                    None => String::new(),
                };
                format!(
                    "Threshold Crossed: {} out of the last {} datapoints [{}] {} {}{} the threshold ({}){} (minimum {} for {} transition).",
                    kind.len(),
                    self.n,
                    list.join(", "),
                    if kind.len() == 1 { "was" } else { "were" },
                    if alarm { "" } else { "not " },
                    self.rule.comparison.phrase(),
                    java_double(self.rule.threshold),
                    fill_clause,
                    count_noun(minimum, "datapoint", "datapoints"),
                    transition(self.current, state),
                )
            }
        };

        let mut evaluated: Vec<(i64, Option<f64>)> =
            kind.iter().take(minimum).map(|r| (r.timestamp, Some(r.value))).collect();
        if fills_count {
            let room = minimum.saturating_sub(evaluated.len());
            evaluated.extend(self.fill_slots.iter().take(room).map(|&t| (t, None)));
        }
        evaluated.sort_by_key(|&(t, _)| std::cmp::Reverse(t));
        let evaluated = evaluated.into_iter().map(|(t, v)| evaluated_point(t, v)).collect();

        Outcome { state, reason, reason_data: self.reason_data(evaluated), used: self.used() }
    }

    fn insufficient(&self) -> Outcome {
        let evaluated = self.fill_slots.iter().map(|&t| evaluated_point(t, None)).collect();
        Outcome {
            state: StateValue::InsufficientData,
            reason: format!(
                "Insufficient Data: {} unknown.",
                count_noun(self.n, "datapoint was", "datapoints were")
            ),
            reason_data: self.reason_data(evaluated),
            used: self.used(),
        }
    }

    fn kept_reason(&self) -> String {
        format!(
            "Unchanged: {} received for {}, not enough to change the state (TreatMissingData {}).",
            received(self.reals.len()),
            count_noun(self.n, "period", "periods"),
            self.rule.treat_missing.as_str(),
        )
    }

    fn kept(&self, reason: String) -> Outcome {
        let mut evaluated: Vec<(i64, Option<f64>)> = self
            .reals
            .iter()
            .map(|r| (r.timestamp, Some(r.value)))
            .chain(self.fill_slots.iter().map(|&t| (t, None)))
            .collect();
        evaluated.sort_by_key(|&(t, _)| std::cmp::Reverse(t));
        let evaluated = evaluated.into_iter().map(|(t, v)| evaluated_point(t, v)).collect();
        Outcome {
            state: self.current,
            reason,
            reason_data: self.reason_data(evaluated),
            used: self.used(),
        }
    }
}

/// `OK -> ALARM`: from the current state, or from the opposite one when the state is already
/// the decided one.
fn transition(current: StateValue, to: StateValue) -> String {
    let from = if current != to {
        current
    } else if to == StateValue::Alarm {
        StateValue::Ok
    } else {
        StateValue::Alarm
    };
    format!("{} -> {}", from.as_str(), to.as_str())
}

fn count_noun(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("1 {one}") } else { format!("{n} {many}") }
}

fn received(r: usize) -> String {
    match r {
        0 => "no datapoints were".to_string(),
        1 => "1 datapoint was".to_string(),
        r => format!("{r} datapoints were"),
    }
}

fn missing_were(f: usize) -> String {
    count_noun(f, "missing datapoint was", "missing datapoints were")
}

fn evaluated_point(timestamp: i64, value: Option<f64>) -> Value {
    let mut p = Map::new();
    p.insert("timestamp".into(), Value::from(iso_millis(timestamp.saturating_mul(1000))));
    if let Some(v) = value {
        p.insert("value".into(), json_f64(v));
    }
    Value::Object(p)
}

/// A number as JSON; an infinity (which JSON cannot hold) is `null`.
fn json_f64(v: f64) -> Value {
    serde_json::Number::from_f64(v).map(Value::Number).unwrap_or(Value::Null)
}

/// StateReasonData as AWS writes it: `partial` (an [`Outcome::reason_data`]) with the caller's
/// keys in AWS's places: `{"version","queryDate","startDate","unit","statistic","period",
/// "recentDatapoints","threshold","evaluatedDatapoints"}`. `unit` and `statistic` are left out
/// when `None` (a metric-math alarm has no statistic); keys of `partial` not named here follow.
pub fn complete_reason_data(
    partial: &Value,
    query_date_ms: i64,
    unit: Option<&str>,
    statistic: Option<&str>,
    period: u32,
) -> Value {
    let empty = Map::new();
    let given = partial.as_object().unwrap_or(&empty);
    let mut out = Map::new();
    let copy = |out: &mut Map<String, Value>, key: &str| {
        if let Some(v) = given.get(key) {
            out.insert(key.to_string(), v.clone());
        }
    };
    copy(&mut out, "version");
    out.insert("queryDate".into(), Value::from(iso_millis(query_date_ms)));
    copy(&mut out, "startDate");
    if let Some(unit) = unit {
        out.insert("unit".into(), Value::from(unit));
    }
    if let Some(statistic) = statistic {
        out.insert("statistic".into(), Value::from(statistic));
    }
    out.insert("period".into(), Value::from(period));
    for key in ["recentDatapoints", "threshold", "evaluatedDatapoints"] {
        copy(&mut out, key);
    }
    for (k, v) in given {
        if !out.contains_key(k) {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn timestamp_of_ms(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

/// `2018-05-22T20:37:00.000+0000`, AWS's timestamps in StateReasonData and notifications.
pub fn iso_millis(ms: i64) -> String {
    timestamp_of_ms(ms).strftime("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// `22/05/18 20:37:00`, a datapoint's time in StateReason.
fn reason_time(secs: i64) -> String {
    timestamp_of_ms(secs.saturating_mul(1000)).strftime("%d/%m/%y %H:%M:%S").to_string()
}

/// A double as Java prints it (`Double.toString`), as AWS's texts show numbers: `15.0`, `0.07`,
/// `8.891518474692088`, `1.5E-4`, `1.0E7`, `NaN`, `Infinity`.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    let abs = v.abs();
    if (1e-3..1e7).contains(&abs) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((s.as_str(), "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Composite alarms
// ---------------------------------------------------------------------------------------------

/// AlarmRule's limits (PutCompositeAlarm): 10240 characters, 100 child alarms, 500 elements
/// (child alarms, TRUE/FALSE and parenthesis pairs).
pub const MAX_RULE_CHARS: usize = 10240;
pub const MAX_RULE_CHILDREN: usize = 100;
pub const MAX_RULE_ELEMENTS: usize = 500;

/// A composite alarm's rule: `ALARM(name)`, `OK(name)`, `INSUFFICIENT_DATA(name)` (the name or
/// ARN bare, up to the `)`, or in double quotes), `TRUE`, `FALSE`, `NOT`, `AND`, `OR` and
/// parentheses. NOT binds tighter than AND, AND tighter than OR (AWS does not document
/// precedence). AWS writes keywords in capitals and once shows `False`; any case is accepted.
/// Error texts are this crate's own (AWS's syntax errors are not documented).
#[derive(Clone, Debug, PartialEq)]
pub struct AlarmRule {
    expr: Expr,
}

#[derive(Clone, Debug, PartialEq)]
enum Expr {
    Const(bool),
    State(StateValue, String),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl AlarmRule {
    pub fn parse(rule: &str) -> Result<AlarmRule, String> {
        let chars = rule.chars().count();
        if chars > MAX_RULE_CHARS {
            return Err(format!(
                "AlarmRule is {chars} characters long; at most {MAX_RULE_CHARS} are allowed."
            ));
        }
        let mut p = Parser { src: rule.as_bytes(), text: rule, pos: 0, elements: 0, depth: 0 };
        p.skip_ws();
        if p.pos == p.src.len() {
            return Err(
                "AlarmRule must contain at least one child alarm, TRUE or FALSE.".to_string()
            );
        }
        let expr = p.or()?;
        p.skip_ws();
        if p.pos < p.src.len() {
            return Err(p.error("expected AND, OR or the end of the rule"));
        }
        let rule = AlarmRule { expr };
        let children = rule.alarms().len();
        if children > MAX_RULE_CHILDREN {
            return Err(format!(
                "AlarmRule names {children} alarms; at most {MAX_RULE_CHILDREN} are allowed."
            ));
        }
        Ok(rule)
    }

    /// The alarms (names or ARNs, as written) the rule references, each once, in order.
    pub fn alarms(&self) -> Vec<String> {
        fn walk(e: &Expr, seen: &mut HashSet<String>, out: &mut Vec<String>) {
            match e {
                Expr::Const(_) => {}
                Expr::State(_, name) => {
                    if seen.insert(name.clone()) {
                        out.push(name.clone());
                    }
                }
                Expr::Not(e) => walk(e, seen, out),
                Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| walk(e, seen, out)),
            }
        }
        let mut out = Vec::new();
        walk(&self.expr, &mut HashSet::new(), &mut out);
        out
    }

    /// Whether the rule holds. `state_of` gives a referenced alarm's state; an alarm it does not
    /// know (PutCompositeAlarm refuses rules naming alarms that do not exist, and DeleteAlarms
    /// refuses to delete an alarm a composite names, so this is a race) is in no state: each of
    /// ALARM(x), OK(x) and INSUFFICIENT_DATA(x) is false.
    pub fn evaluate(&self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
        fn eval(e: &Expr, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
            match e {
                Expr::Const(b) => *b,
                Expr::State(s, name) => state_of(name) == Some(*s),
                Expr::Not(e) => !eval(e, state_of),
                Expr::And(es) => es.iter().all(|e| eval(e, state_of)),
                Expr::Or(es) => es.iter().any(|e| eval(e, state_of)),
            }
        }
        eval(&self.expr, state_of)
    }

    /// A composite alarm's state once evaluated: ALARM when the rule holds, else OK. (AWS: a
    /// composite alarm is INSUFFICIENT_DATA only from its creation to its first evaluation,
    /// whatever the states of its children.)
    pub fn state(&self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> StateValue {
        if self.evaluate(state_of) { StateValue::Alarm } else { StateValue::Ok }
    }
}

/// PutCompositeAlarm's refusal of a rule naming alarms that do not exist (AWS's text).
pub fn missing_alarms_message(missing: &[String]) -> String {
    format!(
        "Could not save the composite alarm as alarms [{}] in the alarm rule do not exist",
        missing.join(", ")
    )
}

/// A composite alarm's StateReason: `arn:aws:cloudwatch:...:alarm:child transitioned to ALARM
/// at Friday 04 August, 2023 12:54:46 UTC`.
pub fn composite_reason(child_arn: &str, state: StateValue, at_ms: i64) -> String {
    format!(
        "{child_arn} transitioned to {} at {}",
        state.as_str(),
        timestamp_of_ms(at_ms).strftime("%A %d %B, %Y %H:%M:%S UTC")
    )
}

/// A composite alarm's StateReasonData: `{"triggeringAlarms":[{"arn":...,"state":{"value":
/// "ALARM","timestamp":"2023-08-04T12:54:46.138+0000"}}]}` for (arn, state, state change ms).
pub fn composite_reason_data(triggering: &[(String, StateValue, i64)]) -> Value {
    let alarms = triggering
        .iter()
        .map(|(arn, state, at_ms)| {
            serde_json::json!({
                "arn": arn,
                "state": {"value": state.as_str(), "timestamp": iso_millis(*at_ms)},
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("triggeringAlarms".into(), Value::Array(alarms));
    Value::Object(m)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    elements: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        let at = self.text.get(..self.pos).map_or(0, |s| s.chars().count());
        let found = match self.text.get(self.pos..).and_then(|s| s.chars().next()) {
            None => "the end of the rule".to_string(),
            Some(c) => format!("'{c}'"),
        };
        format!("Invalid AlarmRule at character {}: {what}, found {found}.", at + 1)
    }

    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek_word(&self) -> &str {
        let end = self.src[self.pos..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
            .map_or(self.src.len(), |i| self.pos + i);
        self.text.get(self.pos..end).unwrap_or("")
    }

    fn element(&mut self) -> Result<(), String> {
        self.elements += 1;
        if self.elements > MAX_RULE_ELEMENTS {
            return Err(format!(
                "AlarmRule has more than {MAX_RULE_ELEMENTS} elements (child alarms, TRUE, FALSE and parentheses)."
            ));
        }
        Ok(())
    }

    fn deeper(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_RULE_ELEMENTS {
            return Err(format!("AlarmRule nests deeper than {MAX_RULE_ELEMENTS} levels."));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.and()?];
        loop {
            self.skip_ws();
            if !self.peek_word().eq_ignore_ascii_case("OR") {
                break;
            }
            self.pos += 2;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::Or(terms) })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut terms = vec![self.unary()?];
        loop {
            self.skip_ws();
            if !self.peek_word().eq_ignore_ascii_case("AND") {
                break;
            }
            self.pos += 3;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.remove(0) } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.deeper()?;
        self.skip_ws();
        let out = if self.peek_word().eq_ignore_ascii_case("NOT") {
            self.pos += 3;
            Expr::Not(Box::new(self.unary()?))
        } else {
            self.primary()?
        };
        self.depth -= 1;
        Ok(out)
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.skip_ws();
        if self.src.get(self.pos) == Some(&b'(') {
            self.element()?;
            self.pos += 1;
            let inner = self.or()?;
            self.skip_ws();
            if self.src.get(self.pos) != Some(&b')') {
                return Err(self.error("expected ')'"));
            }
            self.pos += 1;
            return Ok(inner);
        }
        let word = self.peek_word().to_ascii_uppercase();
        let state =
            match word.as_str() {
                "TRUE" | "FALSE" => {
                    self.element()?;
                    self.pos += word.len();
                    return Ok(Expr::Const(word == "TRUE"));
                }
                "ALARM" => StateValue::Alarm,
                "OK" => StateValue::Ok,
                "INSUFFICIENT_DATA" => StateValue::InsufficientData,
                _ => return Err(self.error(
                    "expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '('",
                )),
            };
        self.element()?;
        self.pos += word.len();
        self.skip_ws();
        if self.src.get(self.pos) != Some(&b'(') {
            return Err(self.error(&format!("expected '(' after {word}")));
        }
        self.pos += 1;
        self.skip_ws();
        let name = if self.src.get(self.pos) == Some(&b'"') {
            let start = self.pos + 1;
            let Some(len) = self.src[start..].iter().position(|&b| b == b'"') else {
                return Err(self.error("the quoted alarm name has no closing '\"'"));
            };
            self.pos = start + len + 1;
            self.text.get(start..start + len).unwrap_or("").to_string()
        } else {
            let start = self.pos;
            let len = self.src[start..]
                .iter()
                .position(|&b| b == b')' || b == b'"')
                .unwrap_or(self.src.len() - start);
            self.pos = start + len;
            self.text.get(start..start + len).unwrap_or("").trim().to_string()
        };
        if name.is_empty() {
            return Err(self.error(&format!("{word}(...) needs an alarm name or ARN")));
        }
        self.skip_ws();
        if self.src.get(self.pos) != Some(&b')') {
            return Err(self.error(&format!("expected ')' to close {word}(...)")));
        }
        self.pos += 1;
        Ok(Expr::State(state, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{Expect, expect};

    /// 2018-05-22T20:33:00Z: the oldest period of the test ranges; one-minute periods.
    const T0: i64 = 1_527_021_180;
    const PERIOD: i64 = 60;

    /// A range from AWS's notation, oldest first: `0` not breaching (2.0), `X` breaching
    /// (15.0), `-` missing; against `>= 5.0`.
    fn range(pattern: &str) -> Vec<Point> {
        pattern
            .split_whitespace()
            .enumerate()
            .map(|(i, c)| Point {
                timestamp: T0 + i as i64 * PERIOD,
                value: match c {
                    "X" => Some(15.0),
                    "0" => Some(2.0),
                    _ => None,
                },
            })
            .collect()
    }

    fn rule(n: u32, m: u32, treat: TreatMissing) -> Rule {
        Rule {
            comparison: Comparison::GreaterThanOrEqualToThreshold,
            threshold: 5.0,
            evaluation_periods: n,
            datapoints_to_alarm: m,
            treat_missing: treat,
        }
    }

    const KEEP: &str = "keep";
    const STATES: [StateValue; 3] =
        [StateValue::Ok, StateValue::Alarm, StateValue::InsufficientData];

    /// Runs one of AWS's tables: each row's outcome under missing, ignore, breaching and
    /// notBreaching (AWS's column order), from every current state; `keep` = "Retain current
    /// state".
    fn check_table(n: u32, m: u32, rows: &[(&str, [&str; 4])]) {
        let columns = [
            TreatMissing::Missing,
            TreatMissing::Ignore,
            TreatMissing::Breaching,
            TreatMissing::NotBreaching,
        ];
        for (pattern, expected) in rows {
            for (treat, want) in columns.iter().zip(expected) {
                for current in STATES {
                    let got = evaluate(&rule(n, m, *treat), &range(pattern), current).state;
                    let want = if *want == KEEP {
                        current
                    } else {
                        StateValue::parse(want).expect("table state")
                    };
                    assert_eq!(
                        got,
                        want,
                        "{m} of {n}, `{pattern}`, {}, from {}",
                        treat.as_str(),
                        current.as_str()
                    );
                }
            }
        }
    }

    /// AWS's first table: Datapoints to Alarm and Evaluation Periods both 3, range 5.
    #[test]
    fn aws_table_3_of_3() {
        check_table(
            3,
            3,
            &[
                ("0 - X - X", ["OK", "OK", "OK", "OK"]),
                ("0 - - - -", ["OK", "OK", "OK", "OK"]),
                ("- - - - -", ["INSUFFICIENT_DATA", KEEP, "ALARM", "OK"]),
                ("0 X X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("- - X - -", ["ALARM", KEEP, "ALARM", "OK"]),
            ],
        );
    }

    /// AWS's second table: 2 out of 3, range 5.
    #[test]
    fn aws_table_2_of_3() {
        check_table(
            3,
            2,
            &[
                ("0 - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("0 0 X 0 X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("0 - X - -", ["OK", "OK", "ALARM", "OK"]),
                ("- - - - 0", ["OK", "OK", "ALARM", "OK"]),
                ("- - - X -", ["ALARM", KEEP, "ALARM", "OK"]),
            ],
        );
    }

    /// "Avoiding premature transitions to alarm state": with M = 3, `- - - - X` and
    /// `- - - X -` do not alarm yet (the state is kept), and a non-breaching point next makes
    /// them OK; `- - X - -` alarms. (Under breaching the filled points breach, so all alarm.)
    #[test]
    fn premature_alarm_guard() {
        check_table(
            3,
            3,
            &[
                ("- - - - X", [KEEP, KEEP, "ALARM", "OK"]),
                ("- - - X -", [KEEP, KEEP, "ALARM", "OK"]),
                ("- - - X 0", ["OK", "OK", "OK", "OK"]),
                ("- - X - 0", ["OK", "OK", "OK", "OK"]),
                ("- X - - -", ["ALARM", KEEP, "ALARM", "OK"]),
                ("X - - - -", ["ALARM", KEEP, "ALARM", "OK"]),
                ("X X - - -", ["ALARM", KEEP, "ALARM", "OK"]),
                ("0 X - - -", ["OK", "OK", "OK", "OK"]),
            ],
        );
        // The M of N form: the oldest breaching point must be at least M periods old.
        check_table(
            3,
            2,
            &[
                ("- - - - X", [KEEP, KEEP, "ALARM", "OK"]),
                ("- - X - -", ["ALARM", KEEP, "ALARM", "OK"]),
            ],
        );
    }

    /// spec §3.3's own examples, and M-of-N with enough real points further back.
    #[test]
    fn more_rows() {
        check_table(
            3,
            3,
            &[
                ("X X X X X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("X X X X 0", ["OK", "OK", "OK", "OK"]),
                ("X - X - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                // Four real points: the newest three decide, missing data unused.
                ("0 X - X X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("X 0 - X X", ["OK", "OK", "OK", "OK"]),
            ],
        );
        check_table(
            1,
            1,
            &[
                ("- - X", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("- X -", ["ALARM", "ALARM", "ALARM", "ALARM"]),
                ("X 0 -", ["OK", "OK", "OK", "OK"]),
                ("- - -", ["INSUFFICIENT_DATA", KEEP, "ALARM", "OK"]),
            ],
        );
    }

    #[test]
    fn evaluation_range_is_aws_size() {
        assert_eq!(evaluation_range(3), 5);
        assert_eq!(evaluation_range(1), 3);
        assert_eq!(evaluation_range(0), 3);
        assert_eq!(evaluation_range(u32::MAX), u32::MAX);
    }

    fn show(cases: &[(u32, u32, TreatMissing, &str, StateValue)], expect: Expect) {
        let mut out = String::new();
        for &(n, m, treat, pattern, current) in cases {
            let o = evaluate(&rule(n, m, treat), &range(pattern), current);
            out.push_str(&format!(
                "{m}/{n} {} `{pattern}` from {}: {}\n  {}\n",
                treat.as_str(),
                current.as_str(),
                o.state.as_str(),
                o.reason
            ));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn reasons() {
        use StateValue::*;
        use TreatMissing::*;
        show(
            &[
                (1, 1, Missing, "- - X", Ok),
                (3, 3, Missing, "0 X X - X", Ok),
                (3, 3, Missing, "0 X X - X", InsufficientData),
                (3, 3, Missing, "0 - X - X", Alarm),
                (3, 2, Missing, "0 0 X 0 X", Ok),
                (3, 2, Missing, "X X 0 0 0", Alarm),
                (3, 3, Missing, "- - - - -", Ok),
                (1, 1, Missing, "- - -", Alarm),
                (3, 3, Missing, "- - X - -", Ok),
                (3, 3, Missing, "0 - - - -", Alarm),
                (3, 3, Breaching, "- - - - -", Ok),
                (1, 1, NotBreaching, "- - -", Alarm),
                (3, 2, Breaching, "- - - - 0", Ok),
                (3, 2, Breaching, "0 - X - -", Ok),
                (3, 3, Breaching, "0 - - - -", Alarm),
                (3, 3, NotBreaching, "- - X - -", Alarm),
                (3, 1, NotBreaching, "- - X - -", Ok),
                (3, 3, Ignore, "- - - - -", Alarm),
                (3, 3, Missing, "- - - - X", Ok),
            ],
            expect![[r#"
                1/1 missing `- - X` from OK: ALARM
                  Threshold Crossed: 1 out of the last 1 datapoints [15.0 (22/05/18 20:35:00)] was greater than or equal to the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition).
                3/3 missing `0 X X - X` from OK: ALARM
                  Threshold Crossed: 3 out of the last 3 datapoints [15.0 (22/05/18 20:37:00), 15.0 (22/05/18 20:35:00), 15.0 (22/05/18 20:34:00)] were greater than or equal to the threshold (5.0) (minimum 3 datapoints for OK -> ALARM transition).
                3/3 missing `0 X X - X` from INSUFFICIENT_DATA: ALARM
                  Threshold Crossed: 3 out of the last 3 datapoints [15.0 (22/05/18 20:37:00), 15.0 (22/05/18 20:35:00), 15.0 (22/05/18 20:34:00)] were greater than or equal to the threshold (5.0) (minimum 3 datapoints for INSUFFICIENT_DATA -> ALARM transition).
                3/3 missing `0 - X - X` from ALARM: OK
                  Threshold Crossed: 1 out of the last 3 datapoints [2.0 (22/05/18 20:33:00)] was not greater than or equal to the threshold (5.0) (minimum 1 datapoint for ALARM -> OK transition).
                2/3 missing `0 0 X 0 X` from OK: ALARM
                  Threshold Crossed: 2 out of the last 3 datapoints [15.0 (22/05/18 20:37:00), 15.0 (22/05/18 20:35:00)] were greater than or equal to the threshold (5.0) (minimum 2 datapoints for OK -> ALARM transition).
                2/3 missing `X X 0 0 0` from ALARM: OK
                  Threshold Crossed: 3 out of the last 3 datapoints [2.0 (22/05/18 20:37:00), 2.0 (22/05/18 20:36:00), 2.0 (22/05/18 20:35:00)] were not greater than or equal to the threshold (5.0) (minimum 2 datapoints for ALARM -> OK transition).
                3/3 missing `- - - - -` from OK: INSUFFICIENT_DATA
                  Insufficient Data: 3 datapoints were unknown.
                1/1 missing `- - -` from ALARM: INSUFFICIENT_DATA
                  Insufficient Data: 1 datapoint was unknown.
                3/3 missing `- - X - -` from OK: ALARM
                  Threshold Crossed: 1 out of the last 3 datapoints [15.0 (22/05/18 20:35:00)] was greater than or equal to the threshold (5.0) (minimum 3 datapoints for OK -> ALARM transition).
                3/3 missing `0 - - - -` from ALARM: OK
                  Threshold Crossed: 1 out of the last 3 datapoints [2.0 (22/05/18 20:33:00)] was not greater than or equal to the threshold (5.0) (minimum 1 datapoint for ALARM -> OK transition).
                3/3 breaching `- - - - -` from OK: ALARM
                  Threshold Crossed: no datapoints were received for 3 periods and 3 missing datapoints were treated as [Breaching].
                1/1 notBreaching `- - -` from ALARM: OK
                  Threshold Crossed: no datapoints were received for 1 period and 1 missing datapoint was treated as [NonBreaching].
                2/3 breaching `- - - - 0` from OK: ALARM
                  Threshold Crossed: 1 datapoint was received for 3 periods and 2 missing datapoints were treated as [Breaching].
                2/3 breaching `0 - X - -` from OK: ALARM
                  Threshold Crossed: 1 out of the last 3 datapoints [15.0 (22/05/18 20:35:00)] was greater than or equal to the threshold (5.0) and 1 missing datapoint was treated as [Breaching] (minimum 2 datapoints for OK -> ALARM transition).
                3/3 breaching `0 - - - -` from ALARM: OK
                  Threshold Crossed: 1 out of the last 3 datapoints [2.0 (22/05/18 20:33:00)] was not greater than or equal to the threshold (5.0) and 2 missing datapoints were treated as [Breaching] (minimum 1 datapoint for ALARM -> OK transition).
                3/3 notBreaching `- - X - -` from ALARM: OK
                  Threshold Crossed: 1 datapoint was received for 3 periods and 2 missing datapoints were treated as [NonBreaching].
                1/3 notBreaching `- - X - -` from OK: ALARM
                  Threshold Crossed: 1 out of the last 3 datapoints [15.0 (22/05/18 20:35:00)] was greater than or equal to the threshold (5.0) and 2 missing datapoints were treated as [NonBreaching] (minimum 1 datapoint for OK -> ALARM transition).
                3/3 ignore `- - - - -` from ALARM: ALARM
                  Unchanged: no datapoints were received for 3 periods, not enough to change the state (TreatMissingData ignore).
                3/3 missing `- - - - X` from OK: OK
                  Unchanged: 1 datapoint was received for 3 periods, not enough to change the state (TreatMissingData missing).
            "#]],
        );
    }

    /// The spec's two quoted reasons (§3.4), exactly, and their reason data.
    #[test]
    fn spec_reasons_verbatim() {
        let at = 1_527_021_420; // 2018-05-22T20:37:00Z
        let o = evaluate(
            &rule(1, 1, TreatMissing::Missing),
            &[Point { timestamp: at, value: Some(15.0) }],
            StateValue::Ok,
        );
        assert_eq!(
            o.reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [15.0 (22/05/18 20:37:00)] was greater than or equal to the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition)."
        );
        let full =
            complete_reason_data(&o.reason_data, at * 1000 + 90_123, None, Some("Average"), 300);
        expect![[r#"{"version":"1.0","queryDate":"2018-05-22T20:38:30.123+0000","startDate":"2018-05-22T20:37:00.000+0000","statistic":"Average","period":300,"recentDatapoints":[15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000","value":15.0}]}"#]]
            .assert_eq(&full.to_string());

        let o = evaluate(
            &Rule {
                comparison: Comparison::GreaterThanThreshold,
                threshold: 50.0,
                ..rule(1, 1, TreatMissing::Missing)
            },
            &[Point { timestamp: 1_569_937_560, value: Some(0.07) }],
            StateValue::Alarm,
        );
        assert_eq!(
            o.reason,
            "Threshold Crossed: 1 out of the last 1 datapoints [0.07 (01/10/19 13:46:00)] was not greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition)."
        );
    }

    /// Reason data: recentDatapoints oldest first, evaluatedDatapoints newest first and no more
    /// than the transition's minimum, startDate the oldest real point used; the caller's keys
    /// land in AWS's places.
    #[test]
    fn reason_data() {
        use StateValue::*;
        use TreatMissing::*;
        let cases: &[(u32, u32, TreatMissing, &str, StateValue)] = &[
            (3, 3, Missing, "0 X X - X", Ok),
            (3, 1, Missing, "0 X X - X", Ok),
            (3, 3, Missing, "X X 0 - 0", Alarm),
            (3, 3, Missing, "- - - - -", Ok),
            (3, 2, Breaching, "- - - - 0", Ok),
            (3, 3, NotBreaching, "- - X - -", Alarm),
            (3, 3, Ignore, "- - X - -", Ok),
        ];
        let mut out = String::new();
        for &(n, m, treat, pattern, current) in cases {
            let o = evaluate(&rule(n, m, treat), &range(pattern), current);
            let used: Vec<String> = o
                .used
                .iter()
                .map(|p| match p.value {
                    Some(v) => format!("{}={}", (p.timestamp - T0) / PERIOD, java_double(v)),
                    None => format!("{}=-", (p.timestamp - T0) / PERIOD),
                })
                .collect();
            out.push_str(&format!(
                "{m}/{n} {} `{pattern}`: {} used [{}]\n  {}\n",
                treat.as_str(),
                o.state.as_str(),
                used.join(" "),
                o.reason_data
            ));
        }
        expect![[r#"
            3/3 missing `0 X X - X`: ALARM used [1=15.0 2=15.0 4=15.0]
              {"version":"1.0","startDate":"2018-05-22T20:34:00.000+0000","recentDatapoints":[15.0,15.0,15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000","value":15.0},{"timestamp":"2018-05-22T20:35:00.000+0000","value":15.0},{"timestamp":"2018-05-22T20:34:00.000+0000","value":15.0}]}
            1/3 missing `0 X X - X`: ALARM used [1=15.0 2=15.0 4=15.0]
              {"version":"1.0","startDate":"2018-05-22T20:34:00.000+0000","recentDatapoints":[15.0,15.0,15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000","value":15.0}]}
            3/3 missing `X X 0 - 0`: OK used [1=15.0 2=2.0 4=2.0]
              {"version":"1.0","startDate":"2018-05-22T20:34:00.000+0000","recentDatapoints":[15.0,2.0,2.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000","value":2.0}]}
            3/3 missing `- - - - -`: INSUFFICIENT_DATA used [2=- 3=- 4=-]
              {"version":"1.0","recentDatapoints":[],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000"},{"timestamp":"2018-05-22T20:36:00.000+0000"},{"timestamp":"2018-05-22T20:35:00.000+0000"}]}
            2/3 breaching `- - - - 0`: ALARM used [2=- 3=- 4=2.0]
              {"version":"1.0","startDate":"2018-05-22T20:37:00.000+0000","recentDatapoints":[2.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:36:00.000+0000"},{"timestamp":"2018-05-22T20:35:00.000+0000"}]}
            3/3 notBreaching `- - X - -`: OK used [2=15.0 3=- 4=-]
              {"version":"1.0","startDate":"2018-05-22T20:35:00.000+0000","recentDatapoints":[15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000"}]}
            3/3 ignore `- - X - -`: OK used [2=15.0 3=- 4=-]
              {"version":"1.0","startDate":"2018-05-22T20:35:00.000+0000","recentDatapoints":[15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000"},{"timestamp":"2018-05-22T20:36:00.000+0000"},{"timestamp":"2018-05-22T20:35:00.000+0000","value":15.0}]}
        "#]].assert_eq(&out);

        let o = evaluate(&rule(3, 3, Missing), &range("0 X X - X"), Ok);
        let full =
            complete_reason_data(&o.reason_data, 1_527_021_500_947, Some("Percent"), None, 60);
        expect![[r#"{"version":"1.0","queryDate":"2018-05-22T20:38:20.947+0000","startDate":"2018-05-22T20:34:00.000+0000","unit":"Percent","period":60,"recentDatapoints":[15.0,15.0,15.0],"threshold":5.0,"evaluatedDatapoints":[{"timestamp":"2018-05-22T20:37:00.000+0000","value":15.0},{"timestamp":"2018-05-22T20:35:00.000+0000","value":15.0},{"timestamp":"2018-05-22T20:34:00.000+0000","value":15.0}]}"#]].assert_eq(&full.to_string());
    }

    #[test]
    fn numbers_as_java_prints_them() {
        let cases = [
            (15.0, "15.0"),
            (0.07, "0.07"),
            (50.0, "50.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (-3.5, "-3.5"),
            (8.891518474692088, "8.891518474692088"),
            (0.001, "0.001"),
            (1.5e-4, "1.5E-4"),
            (9_999_999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (1.2345e10, "1.2345E10"),
            (-2e-5, "-2.0E-5"),
            (f64::MAX, "1.7976931348623157E308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (v, want) in cases {
            assert_eq!(java_double(v), want, "{v:?}");
        }
    }

    #[test]
    fn comparisons_breach() {
        // (operator, value, threshold, breaches)
        let cases = [
            (Comparison::GreaterThanOrEqualToThreshold, 5.0, 5.0, true),
            (Comparison::GreaterThanOrEqualToThreshold, 4.9, 5.0, false),
            (Comparison::GreaterThanThreshold, 5.0, 5.0, false),
            (Comparison::GreaterThanThreshold, 5.1, 5.0, true),
            (Comparison::LessThanThreshold, 5.0, 5.0, false),
            (Comparison::LessThanThreshold, 4.9, 5.0, true),
            (Comparison::LessThanOrEqualToThreshold, 5.0, 5.0, true),
            (Comparison::LessThanOrEqualToThreshold, 5.1, 5.0, false),
            (Comparison::GreaterThanThreshold, f64::NAN, 5.0, false),
            (Comparison::LessThanLowerThreshold, -1e9, 5.0, false),
        ];
        for (op, v, t, want) in cases {
            assert_eq!(op.breaches(v, t), want, "{} {v} vs {t}", op.as_str());
        }
        let o = evaluate(
            &Rule {
                comparison: Comparison::LessThanThreshold,
                ..rule(3, 3, TreatMissing::Missing)
            },
            &range("X X 0 0 0"),
            StateValue::Ok,
        );
        assert_eq!(o.state, StateValue::Alarm);
        assert!(o.reason.contains("were less than the threshold (5.0)"), "{}", o.reason);
    }

    #[test]
    fn names_round_trip() {
        for s in STATES {
            assert_eq!(StateValue::parse(s.as_str()), Some(s));
        }
        for c in Comparison::ALL {
            assert_eq!(Comparison::parse(c.as_str()), Some(c));
        }
        for t in TreatMissing::ALL {
            assert_eq!(TreatMissing::parse(t.as_str()), Some(t));
        }
        assert_eq!(StateValue::parse("ok"), None);
        assert_eq!(Comparison::parse("GreaterThan"), None);
        assert_eq!(TreatMissing::parse("notbreaching"), None);
        assert_eq!(TreatMissing::default(), TreatMissing::Missing);
        let bands: Vec<&str> = Comparison::ALL
            .into_iter()
            .filter(|c| c.is_anomaly_band())
            .map(Comparison::as_str)
            .collect();
        assert_eq!(
            bands,
            [
                "LessThanLowerOrGreaterThanUpperThreshold",
                "LessThanLowerThreshold",
                "GreaterThanUpperThreshold"
            ]
        );
    }

    #[test]
    fn anomaly_bands_keep_the_state() {
        for c in Comparison::ALL.into_iter().filter(|c| c.is_anomaly_band()) {
            for current in STATES {
                let o = evaluate(
                    &Rule { comparison: c, ..rule(3, 3, TreatMissing::Breaching) },
                    &range("X X X X X"),
                    current,
                );
                assert_eq!(o.state, current);
                assert!(o.reason.starts_with("Unchecked: "), "{}", o.reason);
            }
        }
    }

    /// AWS: fewer than 10/(1-p) samples for p in [0.5, 1), fewer than 10/p below 0.5.
    #[test]
    fn low_sample_counts() {
        // (p, samples, low)
        let cases = [
            (0.99, 999.0, true),
            (0.99, 1000.0, false),
            (0.5, 19.0, true),
            (0.5, 20.0, false),
            (0.9, 99.0, true),
            (0.9, 100.0, false),
            (0.1, 99.0, true),
            (0.1, 100.0, false),
            (0.25, 39.0, true),
            (0.25, 40.0, false),
            (0.0, 0.0, false),
            (1.0, 0.0, false),
            (f64::NAN, 0.0, false),
            (0.99, f64::NAN, false),
            (-0.5, 0.0, false),
        ];
        for (p, samples, want) in cases {
            assert_eq!(low_sample_count(p, samples), want, "p={p} samples={samples}");
        }
    }

    /// Any input: no panic, and a state that is one of the three.
    #[test]
    fn odd_inputs_do_not_panic() {
        let points = [
            vec![],
            range("X"),
            range("- - X 0 X 0 X - - X X X 0"),
            vec![
                Point { timestamp: i64::MAX, value: Some(f64::NAN) },
                Point { timestamp: i64::MIN, value: Some(f64::INFINITY) },
                Point { timestamp: 0, value: Some(f64::NEG_INFINITY) },
                Point { timestamp: 0, value: None },
            ],
            // Out of order: sorted before evaluation.
            vec![
                Point { timestamp: T0 + 120, value: Some(15.0) },
                Point { timestamp: T0, value: Some(2.0) },
                Point { timestamp: T0 + 60, value: None },
            ],
        ];
        let sizes = [0, 1, 2, 3, 5, 100, u32::MAX];
        for pts in &points {
            for &n in &sizes {
                for &m in &sizes {
                    for treat in TreatMissing::ALL {
                        for comparison in Comparison::ALL {
                            for threshold in [5.0, f64::NAN, f64::INFINITY] {
                                for current in STATES {
                                    let rule = Rule {
                                        comparison,
                                        threshold,
                                        evaluation_periods: n,
                                        datapoints_to_alarm: m,
                                        treat_missing: treat,
                                    };
                                    let o = evaluate(&rule, pts, current);
                                    assert!(!o.reason.is_empty());
                                    assert!(
                                        o.used.windows(2).all(|w| w[0].timestamp <= w[1].timestamp)
                                    );
                                    let _ = complete_reason_data(
                                        &o.reason_data,
                                        i64::MAX,
                                        None,
                                        None,
                                        0,
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
        // Out-of-order input is read in time order: `0 - X`, 1 of 1 → the newest, X.
        let o = evaluate(&rule(1, 1, TreatMissing::Missing), &points[4], StateValue::Ok);
        assert_eq!(o.state, StateValue::Alarm);
        assert_eq!(iso_millis(i64::MIN), iso_millis(jiff::Timestamp::MIN.as_millisecond()));
    }

    // ---- composite alarms ----

    fn states(name: &str) -> Option<StateValue> {
        match name {
            "cpu" | "arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu" => {
                Some(StateValue::Alarm)
            }
            "disk" | "my alarm (disk)" => Some(StateValue::Alarm),
            "net" => Some(StateValue::Ok),
            "new" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }

    /// (rule, holds) with cpu and disk in ALARM, net OK, new INSUFFICIENT_DATA, gone unknown.
    #[test]
    fn composite_rules_evaluate() {
        let cases = [
            ("TRUE", true),
            ("FALSE", false),
            ("False", false),
            ("ALARM(cpu)", true),
            ("ALARM(\"cpu\")", true),
            ("ALARM( \"cpu\" )", true),
            ("ALARM(\"arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu\")", true),
            ("ALARM(arn:aws:cloudwatch:us-east-1:123456789012:alarm:cpu)", true),
            ("OK(cpu)", false),
            ("OK(net)", true),
            ("INSUFFICIENT_DATA(new)", true),
            ("INSUFFICIENT_DATA(net)", false),
            ("ALARM(cpu) AND ALARM(disk)", true),
            ("ALARM(cpu) AND ALARM(net)", false),
            ("ALARM(cpu) AND NOT ALARM(net)", true),
            ("(ALARM(cpu) OR ALARM(disk)) AND OK(net)", true),
            ("(ALARM(\"cpu\") OR\n ALARM(\"disk\")) AND\n OK(\"net\")", true),
            ("ALARM(\"my alarm (disk)\")", true),
            ("ALARM(net) OR ALARM(cpu) AND FALSE", false),
            ("(ALARM(net) OR ALARM(cpu)) AND TRUE", true),
            ("NOT ALARM(cpu) OR OK(net)", true),
            ("NOT (ALARM(cpu) OR OK(net))", false),
            ("NOT NOT TRUE", true),
            ("alarm(cpu) and not ok(cpu)", true),
            // An alarm the caller does not know is in no state.
            ("ALARM(gone)", false),
            ("OK(gone) OR INSUFFICIENT_DATA(gone)", false),
            ("NOT ALARM(gone)", true),
        ];
        for (text, want) in cases {
            let rule = AlarmRule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.evaluate(&states), want, "{text}");
            let state = if want { StateValue::Alarm } else { StateValue::Ok };
            assert_eq!(rule.state(&states), state, "{text}");
        }
    }

    #[test]
    fn composite_rules_name_their_alarms() {
        let rule = AlarmRule::parse(
            "(ALARM(cpu) OR ALARM(\"disk\")) AND NOT OK(cpu) AND INSUFFICIENT_DATA(arn:aws:cloudwatch:us-east-1:1:alarm:x) OR TRUE",
        )
        .expect("parses");
        assert_eq!(rule.alarms(), ["cpu", "disk", "arn:aws:cloudwatch:us-east-1:1:alarm:x"]);
        assert!(AlarmRule::parse("TRUE OR FALSE").expect("parses").alarms().is_empty());
        expect![[r#"Could not save the composite alarm as alarms [gone, lost] in the alarm rule do not exist"#]]
            .assert_eq(&missing_alarms_message(&["gone".into(), "lost".into()]));
    }

    #[test]
    fn composite_rule_errors() {
        let many_children =
            (0..101).map(|i| format!("ALARM(a{i})")).collect::<Vec<_>>().join(" OR ");
        let many_elements = vec!["TRUE"; 501].join(" OR ");
        let deep = format!("{}TRUE{}", "(".repeat(5000), ")".repeat(5000));
        let nots = format!("{}TRUE", "NOT ".repeat(2000));
        let long = format!("ALARM({})", "a".repeat(10240));
        let cases: Vec<(&str, &str)> = vec![
            ("", "empty"),
            ("   ", "blank"),
            ("ALARM", "no parenthesis"),
            ("ALARM()", "no name"),
            ("ALARM(\"\")", "empty quoted name"),
            ("ALARM(\"cpu)", "unclosed quote"),
            ("ALARM(cpu", "unclosed call"),
            ("ALARM(\"cpu\" x)", "text after the quoted name"),
            ("ALARM(cpu) AND", "dangling AND"),
            ("ALARM(cpu) ALARM(disk)", "no operator"),
            ("ALARM(cpu) XOR ALARM(disk)", "unknown operator"),
            ("(ALARM(cpu)", "unclosed group"),
            ("ALARM(cpu))", "stray parenthesis"),
            ("STATE(cpu)", "unknown function"),
            ("ALARMS(cpu)", "word glued on"),
            ("NOT", "NOT without operand"),
            ("TRUEAND FALSE", "glued keywords"),
            ("ALARM(cpu) ANDNOT OK(x)", "glued operators"),
            (&many_children, "101 children"),
            (&many_elements, "501 elements"),
            (&deep, "5000 nested parentheses"),
            (&nots, "2000 NOTs"),
            (&long, "10247 characters"),
        ];
        let mut out = String::new();
        for (text, what) in cases {
            match AlarmRule::parse(text) {
                Ok(rule) => panic!("{what}: parsed as {rule:?}"),
                Err(e) => out.push_str(&format!("{what}: {e}\n")),
            }
        }
        expect![[r#"
            empty: AlarmRule must contain at least one child alarm, TRUE or FALSE.
            blank: AlarmRule must contain at least one child alarm, TRUE or FALSE.
            no parenthesis: Invalid AlarmRule at character 6: expected '(' after ALARM, found the end of the rule.
            no name: Invalid AlarmRule at character 7: ALARM(...) needs an alarm name or ARN, found ')'.
            empty quoted name: Invalid AlarmRule at character 9: ALARM(...) needs an alarm name or ARN, found ')'.
            unclosed quote: Invalid AlarmRule at character 7: the quoted alarm name has no closing '"', found '"'.
            unclosed call: Invalid AlarmRule at character 10: expected ')' to close ALARM(...), found the end of the rule.
            text after the quoted name: Invalid AlarmRule at character 13: expected ')' to close ALARM(...), found 'x'.
            dangling AND: Invalid AlarmRule at character 15: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '(', found the end of the rule.
            no operator: Invalid AlarmRule at character 12: expected AND, OR or the end of the rule, found 'A'.
            unknown operator: Invalid AlarmRule at character 12: expected AND, OR or the end of the rule, found 'X'.
            unclosed group: Invalid AlarmRule at character 12: expected ')', found the end of the rule.
            stray parenthesis: Invalid AlarmRule at character 11: expected AND, OR or the end of the rule, found ')'.
            unknown function: Invalid AlarmRule at character 1: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '(', found 'S'.
            word glued on: Invalid AlarmRule at character 1: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '(', found 'A'.
            NOT without operand: Invalid AlarmRule at character 4: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '(', found the end of the rule.
            glued keywords: Invalid AlarmRule at character 1: expected ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or '(', found 'T'.
            glued operators: Invalid AlarmRule at character 12: expected AND, OR or the end of the rule, found 'A'.
            101 children: AlarmRule names 101 alarms; at most 100 are allowed.
            501 elements: AlarmRule has more than 500 elements (child alarms, TRUE, FALSE and parentheses).
            5000 nested parentheses: AlarmRule nests deeper than 500 levels.
            2000 NOTs: AlarmRule nests deeper than 500 levels.
            10247 characters: AlarmRule is 10247 characters long; at most 10240 are allowed.
        "#]].assert_eq(&out);
        // Within the limits: 100 children, 500 elements, 10240 characters.
        let hundred = (0..100).map(|i| format!("ALARM(a{i})")).collect::<Vec<_>>().join(" OR ");
        assert_eq!(AlarmRule::parse(&hundred).expect("100 children").alarms().len(), 100);
        assert!(AlarmRule::parse(&vec!["TRUE"; 500].join(" OR ")).is_ok());
        assert!(AlarmRule::parse(&format!("ALARM({})", "a".repeat(10233))).is_ok());
    }

    /// Garbage rules: an error or a rule, never a panic.
    #[test]
    fn composite_garbage_does_not_panic() {
        let atoms = [
            "ALARM(",
            "OK(",
            "INSUFFICIENT_DATA(",
            ")",
            "(",
            "\"",
            "x",
            " ",
            "AND",
            "OR",
            "NOT",
            "TRUE",
            "FALSE",
            "é",
            "\u{1F600}",
            "\n",
            "arn:aws:cloudwatch:r:1:alarm:a",
        ];
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..5000 {
            let mut text = String::new();
            let len = (seed % 12) as usize;
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(atoms[(seed % atoms.len() as u64) as usize]);
            }
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            if let Ok(rule) = AlarmRule::parse(&text) {
                let _ = rule.evaluate(&states);
                let _ = rule.alarms();
            }
        }
    }

    #[test]
    fn composite_reasons() {
        let arn = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild";
        let at = 1_691_153_686_138; // 2023-08-04T12:54:46.138Z
        assert_eq!(
            composite_reason(arn, StateValue::Alarm, at),
            "arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild transitioned to ALARM at Friday 04 August, 2023 12:54:46 UTC"
        );
        assert_eq!(
            composite_reason_data(&[(arn.to_string(), StateValue::Alarm, at)]).to_string(),
            r#"{"triggeringAlarms":[{"arn":"arn:aws:cloudwatch:us-east-1:111122223333:alarm:CompositeDemo.FirstChild","state":{"value":"ALARM","timestamp":"2023-08-04T12:54:46.138+0000"}}]}"#
        );
    }
}
