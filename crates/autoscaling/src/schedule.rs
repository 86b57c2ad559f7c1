//! Scheduled actions: when a `Recurrence` (Unix cron, in UTC or the action's time zone) or a
//! `StartTime` fires next, bounded by `EndTime`.

use croner::Cron;
use croner::parser::CronParser;
use jiff::Timestamp;

use crate::model::ScheduleRecord;

/// A 5-field cron expression.
pub fn parse(recurrence: &str) -> Result<Cron, String> {
    CronParser::builder()
        .build()
        .parse(recurrence.trim())
        .map_err(|e| format!("Invalid recurrence '{recurrence}': {e}"))
}

fn timestamp(text: &str) -> Option<Timestamp> {
    text.parse::<Timestamp>().ok()
}

/// The next time (strictly after `after`) the action fires, or `None` when it never will.
pub fn next_fire(s: &ScheduleRecord, after: Timestamp) -> Option<Timestamp> {
    let start = s.start.as_deref().and_then(timestamp);
    let end = s.end.as_deref().and_then(timestamp);
    let next = match (&s.recurrence, start) {
        (None, Some(start)) => (start > after).then_some(start),
        (Some(r), start) => {
            // With a StartTime: it runs then, and by the recurrence afterwards.
            if let Some(st) = start
                && st > after
            {
                Some(st)
            } else {
                let cron = parse(r).ok()?;
                let tz = s
                    .time_zone
                    .as_deref()
                    .and_then(|z| jiff::tz::TimeZone::get(z).ok())
                    .unwrap_or(jiff::tz::TimeZone::UTC);
                let zoned = after.to_zoned(tz);
                cron.find_next_occurrence(&zoned, false).ok().map(|z| z.timestamp())
            }
        }
        (None, None) => None,
    };
    match (next, end) {
        (Some(n), Some(e)) if n > e => None,
        (n, _) => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(
        recurrence: Option<&str>,
        start: Option<&str>,
        end: Option<&str>,
        tz: Option<&str>,
    ) -> ScheduleRecord {
        ScheduleRecord {
            group: "g".into(),
            name: "a".into(),
            recurrence: recurrence.map(str::to_string),
            start: start.map(str::to_string),
            end: end.map(str::to_string),
            time_zone: tz.map(str::to_string),
            min: None,
            max: None,
            desired: Some(3),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn recurrences_in_utc_and_time_zones() {
        let every_day_9 = action(Some("0 9 * * *"), None, None, None);
        assert_eq!(
            next_fire(&every_day_9, at("2026-11-22T10:00:00Z")).unwrap().to_string(),
            "2026-11-23T09:00:00Z"
        );
        let new_york = action(Some("0 9 * * *"), None, None, Some("America/New_York"));
        assert_eq!(
            next_fire(&new_york, at("2026-11-22T10:00:00Z")).unwrap().to_string(),
            "2026-11-22T14:00:00Z"
        );
        let every_5 = action(Some("*/5 * * * *"), None, None, None);
        assert_eq!(
            next_fire(&every_5, at("2026-11-22T10:01:00Z")).unwrap().to_string(),
            "2026-11-22T10:05:00Z"
        );
    }

    #[test]
    fn start_and_end_times() {
        let once = action(None, Some("2026-11-22T12:00:00Z"), None, None);
        assert_eq!(
            next_fire(&once, at("2026-11-22T10:00:00Z")).unwrap().to_string(),
            "2026-11-22T12:00:00Z"
        );
        assert_eq!(next_fire(&once, at("2026-11-22T12:00:00Z")), None, "a one-off runs once");
        let ending = action(Some("0 * * * *"), None, Some("2026-11-22T11:30:00Z"), None);
        assert_eq!(
            next_fire(&ending, at("2026-11-22T10:10:00Z")).unwrap().to_string(),
            "2026-11-22T11:00:00Z"
        );
        assert_eq!(next_fire(&ending, at("2026-11-22T11:00:00Z")), None);
        assert!(parse("not a cron").is_err());
    }
}
