//! The clock. Every timer in Cumulo — health-check intervals, cooldowns, grace periods, alarm
//! periods, signal timeouts — takes an *AWS duration* (what the template or the AWS default
//! says) and goes through a [`Clock`], which divides it by the time scale. So `--time-scale 100`
//! makes a 300 s grace period take 3 s, and tests run on tokio's paused time with no waiting.
//!
//! The clock also tells the *AWS time* (the timestamps Cumulo shows: events, metrics, alarm
//! history): it starts at the wall-clock time the clock was made and runs `scale` times faster,
//! so a 60-second metric period at scale 60 is one real second and its timestamps are a minute
//! apart.
//!
//! Architecture Invariant: nothing else in Cumulo sleeps, sets timeouts or reads the time; they
//! all ask a `Clock` (tokio's `Instant` underneath, never `std::time::Instant`). The one
//! exception is the load balancer's data plane (`elb-proxy`), which runs on real time by
//! design; every duration handed to it is scaled at the boundary (see [`Clock::real_duration`]).
//!
//! Waiting for a condition is [`Clock::wait_until`]: the condition is checked again whenever a
//! [`Signal`] says something changed (a service's broadcast of its changes), never by polling.

use std::future::Future;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// A scaled clock. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Clock {
    scale: f64,
    start: Instant,
    start_wall: Timestamp,
}

/// The timer ran out (a [`Clock::timeout`] elapsed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

impl Clock {
    /// A clock running `scale` times faster than real time (1 = AWS's own pace).
    pub fn new(scale: f64) -> Clock {
        let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
        Clock { scale, start: Instant::now(), start_wall: Timestamp::now() }
    }

    /// A real-time clock.
    pub fn real() -> Clock {
        Clock::new(1.0)
    }

    /// A clock whose AWS time starts at `start_wall` (for tests with fixed timestamps).
    pub fn starting_at(scale: f64, start_wall: Timestamp) -> Clock {
        Clock { start_wall, ..Clock::new(scale) }
    }

    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The real duration an AWS duration takes under this clock.
    pub fn real_duration(&self, aws: Duration) -> Duration {
        aws.div_f64(self.scale)
    }

    /// The AWS duration a real duration stands for.
    pub fn aws_duration(&self, real: Duration) -> Duration {
        real.mul_f64(self.scale)
    }

    /// Waits for an AWS duration.
    pub async fn sleep(&self, aws: Duration) {
        tokio::time::sleep(self.real_duration(aws)).await;
    }

    /// Waits until `deadline` (an instant from [`Clock::deadline`]).
    pub async fn sleep_until(&self, deadline: Instant) {
        tokio::time::sleep_until(deadline).await;
    }

    /// The instant an AWS duration from now.
    pub fn deadline(&self, aws: Duration) -> Instant {
        Instant::now() + self.real_duration(aws)
    }

    /// Runs `future` for at most an AWS duration.
    pub async fn timeout<F: Future>(&self, aws: Duration, future: F) -> Result<F::Output, Elapsed> {
        tokio::time::timeout(self.real_duration(aws), future).await.map_err(|_| Elapsed)
    }

    /// A ticker firing every AWS `period` (the first tick after one period). Missed ticks are
    /// delayed, not bunched.
    pub fn interval(&self, period: Duration) -> tokio::time::Interval {
        let real = self.real_duration(period).max(Duration::from_millis(1));
        let mut interval = tokio::time::interval_at(Instant::now() + real, real);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    }

    /// Now, as a monotonic instant (for measuring; compare with [`Clock::elapsed_aws`]).
    pub fn instant(&self) -> Instant {
        Instant::now()
    }

    /// The AWS time elapsed since `since`.
    pub fn elapsed_aws(&self, since: Instant) -> Duration {
        self.aws_duration(since.elapsed())
    }

    /// The current AWS time.
    pub fn now(&self) -> Timestamp {
        let elapsed = self.aws_duration(self.start.elapsed());
        self.start_wall
            .checked_add(
                jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::ZERO),
            )
            .unwrap_or(self.start_wall)
    }
}

impl Clock {
    /// Waits until `check` gives a value, for at most an AWS duration. `check` runs at once,
    /// then again each time `changes` says something changed (and once more at the deadline).
    /// A signal that can no longer fire leaves only the deadline.
    pub async fn wait_until<T, S: Signal>(
        &self,
        limit: Duration,
        changes: &mut S,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, Elapsed> {
        let deadline = self.deadline(limit);
        let mut live = true;
        loop {
            if let Some(value) = check() {
                return Ok(value);
            }
            let changed =
                async { if live { changes.changed().await } else { std::future::pending().await } };
            tokio::select! {
                still = changed => live = still,
                _ = tokio::time::sleep_until(deadline) => return check().ok_or(Elapsed),
            }
        }
    }
}

/// Something that says when state may have changed: a service's change broadcast, or several.
/// `changed` resolves when a change was announced (true) or when no change can be announced
/// any more (false).
pub trait Signal: Send {
    fn changed(&mut self) -> impl Future<Output = bool> + Send;
}

impl<T: Clone + Send> Signal for broadcast::Receiver<T> {
    async fn changed(&mut self) -> bool {
        // A lagging receiver missed changes: that is a change too.
        !matches!(self.recv().await, Err(broadcast::error::RecvError::Closed))
    }
}

/// Either of two signals; false only once both are closed.
impl<A: Signal, B: Signal> Signal for (A, B) {
    async fn changed(&mut self) -> bool {
        let (a, b) = self;
        tokio::select! {
            true = a.changed() => true,
            true = b.changed() => true,
            else => false,
        }
    }
}

/// Either of three signals.
impl<A: Signal, B: Signal, C: Signal> Signal for (A, B, C) {
    async fn changed(&mut self) -> bool {
        let (a, b, c) = self;
        tokio::select! {
            true = a.changed() => true,
            true = b.changed() => true,
            true = c.changed() => true,
            else => false,
        }
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::real()
    }
}

/// Formats a timestamp as AWS APIs do (`2022-05-14T20:11:53.123Z`).
pub fn iso8601(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn scaled_sleep_takes_a_fraction_of_the_aws_duration() {
        let clock = Clock::starting_at(100.0, "2026-01-01T00:00:00Z".parse().unwrap());
        let start = Instant::now();
        clock.sleep(Duration::from_secs(300)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(iso8601(clock.now()), "2026-01-01T00:05:00.000Z");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn timeout_and_interval_are_scaled() {
        let clock = Clock::new(10.0);
        let never = std::future::pending::<()>();
        let start = Instant::now();
        assert_eq!(clock.timeout(Duration::from_secs(60), never).await, Err(Elapsed));
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        let mut ticks = clock.interval(Duration::from_secs(30));
        ticks.tick().await;
        ticks.tick().await;
        assert_eq!(start.elapsed(), Duration::from_secs(12));
        assert_eq!(clock.elapsed_aws(start), Duration::from_secs(120));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn wait_until_rechecks_on_each_change_and_gives_up_at_the_deadline() {
        let clock = Clock::new(10.0);
        let (tx, mut rx) = broadcast::channel::<u32>(4);
        let value = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let writer = {
            let (tx, value) = (tx.clone(), value.clone());
            tokio::spawn(async move {
                for v in 1..=3 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    value.store(v, std::sync::atomic::Ordering::SeqCst);
                    let _ = tx.send(v);
                }
            })
        };
        let start = Instant::now();
        let mut checks = 0;
        let got = clock
            .wait_until(Duration::from_secs(600), &mut rx, || {
                checks += 1;
                let v = value.load(std::sync::atomic::Ordering::SeqCst);
                (v >= 3).then_some(v)
            })
            .await;
        assert_eq!(got, Ok(3));
        assert_eq!(start.elapsed(), Duration::from_secs(3), "woken by the third change");
        assert_eq!(checks, 4, "once at first, then once per change: no polling");
        writer.await.unwrap();
        let start = Instant::now();
        let never = clock.wait_until(Duration::from_secs(60), &mut rx, || None::<()>).await;
        assert_eq!(never, Err(Elapsed));
        assert_eq!(start.elapsed(), Duration::from_secs(6), "the AWS limit, scaled");
        drop(tx);
        let start = Instant::now();
        let closed = clock.wait_until(Duration::from_secs(60), &mut rx, || None::<()>).await;
        assert_eq!(closed, Err(Elapsed), "a closed signal leaves the deadline");
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }

    #[test]
    fn bad_scales_fall_back_to_real_time() {
        assert_eq!(Clock::new(0.0).scale(), 1.0);
        assert_eq!(Clock::new(f64::NAN).scale(), 1.0);
    }
}
