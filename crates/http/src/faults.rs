//! The fault injector platform simulators put in front of their routes:
//! 429 storms, server errors, slow answers, dropped connections and lost
//! answers, drawn from a seeded generator or queued in exact sequences.
//! Plain logic, so the connector kit can name it without a server.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Which faults a sandbox injects, each as the probability that a request
/// meets it. Written as `429=0.05,5xx=0.05,drop=0.02,lost=0.02,slow=0.05`
/// with the optional `storm=N` (requests refused per 429 storm),
/// `retry-after=S`, `slow-ms=M` and `seed=N`.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultPlan {
    /// A request starts a storm: it and the next `storm_length - 1` requests
    /// are answered 429 with `Retry-After`.
    pub too_many_requests: f64,
    pub storm_length: u32,
    pub retry_after_seconds: u32,
    /// 500, 502 or 503 without the request being applied.
    pub server_errors: f64,
    /// The answer comes `slow_by` late.
    pub slow: f64,
    pub slow_by: Duration,
    /// The connection drops before the request is applied.
    pub dropped_connections: f64,
    /// The request is applied, then the connection drops before the answer:
    /// the client cannot know it succeeded.
    pub lost_answers: f64,
    pub seed: u64,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            too_many_requests: 0.0,
            storm_length: 3,
            retry_after_seconds: 1,
            server_errors: 0.0,
            slow: 0.0,
            slow_by: Duration::from_millis(300),
            dropped_connections: 0.0,
            lost_answers: 0.0,
            seed: 1,
        }
    }
}

impl FaultPlan {
    /// No faults at all.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.too_many_requests == 0.0
            && self.server_errors == 0.0
            && self.slow == 0.0
            && self.dropped_connections == 0.0
            && self.lost_answers == 0.0
    }

    /// Parses the `--faults` notation; the error names the part that is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut plan = Self::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) =
                part.split_once('=').ok_or_else(|| format!("fault `{part}`: expected NAME=VALUE, e.g. 429=0.05"))?;
            let probability = || -> Result<f64, String> {
                let p: f64 = value.parse().map_err(|_| format!("fault `{name}`: `{value}` is not a number"))?;
                if (0.0..=1.0).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("fault `{name}`: {value} is not a probability between 0 and 1"))
                }
            };
            let whole = || -> Result<u64, String> {
                value.parse().map_err(|_| format!("fault `{name}`: `{value}` is not a whole number"))
            };
            match name {
                "429" => plan.too_many_requests = probability()?,
                "5xx" => plan.server_errors = probability()?,
                "slow" => plan.slow = probability()?,
                "drop" => plan.dropped_connections = probability()?,
                "lost" => plan.lost_answers = probability()?,
                "storm" => plan.storm_length = u32::try_from(whole()?.max(1)).unwrap_or(u32::MAX),
                "retry-after" => plan.retry_after_seconds = u32::try_from(whole()?).unwrap_or(u32::MAX),
                "slow-ms" => plan.slow_by = Duration::from_millis(whole()?),
                "seed" => plan.seed = whole()?,
                other => {
                    return Err(format!(
                        "unknown fault `{other}`: expected one of 429, 5xx, slow, drop, lost, storm, retry-after, slow-ms, seed"
                    ));
                }
            }
        }
        Ok(plan)
    }
}

/// How many of each fault a sandbox injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    pub too_many_requests: u64,
    pub server_errors: u64,
    pub slow: u64,
    pub dropped_connections: u64,
    pub lost_answers: u64,
}

impl FaultCounts {
    pub fn total(&self) -> u64 {
        self.too_many_requests + self.server_errors + self.slow + self.dropped_connections + self.lost_answers
    }
}

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After`.
    TooManyRequests,
    /// This status (500, 502 or 503), the request not applied.
    ServerError(u16),
    /// The answer comes late.
    Slow,
    /// The connection drops before the request is applied.
    Dropped,
    /// The request is applied, then the connection drops before the answer.
    LostAnswer,
}

struct FaultState {
    plan: FaultPlan,
    random: SplitMix64,
    queued: std::collections::VecDeque<Fault>,
    counts: FaultCounts,
    /// When each request arrived and the fault it met, once recording is on.
    arrivals: Option<Vec<(std::time::Instant, Option<Fault>)>>,
}

/// A sandbox's fault injector; shared by its middleware and its owner, who
/// may change the plan while it serves.
pub struct Faults {
    state: Mutex<FaultState>,
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Arc<Self> {
        let random = SplitMix64(plan.seed);
        Arc::new(Self {
            state: Mutex::new(FaultState {
                plan,
                random,
                queued: Default::default(),
                counts: FaultCounts::default(),
                arrivals: None,
            }),
        })
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        let mut state = self.state.lock().expect("fault state");
        state.random = SplitMix64(plan.seed);
        state.queued.clear();
        state.plan = plan;
    }

    pub fn counts(&self) -> FaultCounts {
        self.state.lock().expect("fault state").counts.clone()
    }

    /// The next `times` requests meet `fault`, whatever the plan says.
    pub fn inject_next(&self, fault: Fault, times: u32) {
        let mut state = self.state.lock().expect("fault state");
        state.queued.extend(std::iter::repeat_n(fault, times as usize));
    }

    /// From now on, remember when each request arrives and the fault it
    /// meets (off by default: a long-running sandbox would keep them all).
    pub fn record_arrivals(&self) {
        self.state.lock().expect("fault state").arrivals.get_or_insert_with(Vec::new);
    }

    /// The arrivals recorded since [`record_arrivals`](Self::record_arrivals), in order.
    pub fn arrivals(&self) -> Vec<(std::time::Instant, Option<Fault>)> {
        self.state.lock().expect("fault state").arrivals.clone().unwrap_or_default()
    }

    /// The fault the next request meets, if any (and counts it).
    pub fn draw(&self) -> Option<Fault> {
        let mut state = self.state.lock().expect("fault state");
        let fault = if let Some(queued) = state.queued.pop_front() {
            Some(queued)
        } else {
            let roll = state.random.next_unit();
            let plan = &state.plan;
            let mut threshold = 0.0;
            let mut pick = None;
            for (probability, fault) in [
                (plan.too_many_requests, Fault::TooManyRequests),
                (plan.server_errors, Fault::ServerError(0)),
                (plan.slow, Fault::Slow),
                (plan.dropped_connections, Fault::Dropped),
                (plan.lost_answers, Fault::LostAnswer),
            ] {
                threshold += probability;
                if roll < threshold {
                    pick = Some(fault);
                    break;
                }
            }
            match pick {
                Some(Fault::TooManyRequests) => {
                    let rest = state.plan.storm_length.saturating_sub(1) as usize;
                    state.queued.extend(std::iter::repeat_n(Fault::TooManyRequests, rest));
                }
                Some(Fault::ServerError(_)) => {
                    pick = Some(Fault::ServerError([500, 502, 503][(state.random.next() % 3) as usize]));
                }
                _ => {}
            }
            pick
        };
        let counts = &mut state.counts;
        match fault {
            Some(Fault::TooManyRequests) => counts.too_many_requests += 1,
            Some(Fault::ServerError(_)) => counts.server_errors += 1,
            Some(Fault::Slow) => counts.slow += 1,
            Some(Fault::Dropped) => counts.dropped_connections += 1,
            Some(Fault::LostAnswer) => counts.lost_answers += 1,
            None => {}
        }
        if let Some(arrivals) = &mut state.arrivals {
            arrivals.push((std::time::Instant::now(), fault));
        }
        fault
    }

    /// The `Retry-After` a 429 of this plan carries.
    pub fn retry_after_seconds(&self) -> u32 {
        self.state.lock().expect("fault state").plan.retry_after_seconds
    }

    /// How late a slow answer comes.
    pub fn slow_by(&self) -> Duration {
        self.state.lock().expect("fault state").plan.slow_by
    }
}

/// A small deterministic generator: the same seed injects the same faults.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fault_notation_parses_and_names_what_is_wrong() {
        let plan =
            FaultPlan::parse("429=0.05, 5xx=0.1,drop=0.02,lost=0.01,slow=0.2,slow-ms=50,storm=4,seed=9").unwrap();
        assert_eq!(plan.too_many_requests, 0.05);
        assert_eq!(plan.server_errors, 0.1);
        assert_eq!(plan.dropped_connections, 0.02);
        assert_eq!(plan.lost_answers, 0.01);
        assert_eq!(plan.slow, 0.2);
        assert_eq!(plan.slow_by, Duration::from_millis(50));
        assert_eq!(plan.storm_length, 4);
        assert_eq!(plan.seed, 9);
        assert!(FaultPlan::parse("").unwrap().is_empty());
        assert!(FaultPlan::parse("5xx=2").unwrap_err().contains("not a probability"));
        assert!(FaultPlan::parse("teapot=0.1").unwrap_err().contains("unknown fault `teapot`"));
        assert!(FaultPlan::parse("drop").unwrap_err().contains("NAME=VALUE"));
    }

    #[test]
    fn faults_come_at_their_rates_and_a_storm_refuses_its_length() {
        let faults = Faults::new(FaultPlan { server_errors: 0.25, ..FaultPlan::default() });
        let drawn = (0..4000).filter(|_| faults.draw().is_some()).count();
        assert!((800..1200).contains(&drawn), "about a quarter of 4000, got {drawn}");
        assert_eq!(faults.counts().server_errors, drawn as u64);

        let storm = Faults::new(FaultPlan { too_many_requests: 1.0, storm_length: 5, ..FaultPlan::default() });
        storm.set_plan(FaultPlan { too_many_requests: 0.0, ..FaultPlan::default() });
        storm.inject_next(Fault::TooManyRequests, 5);
        let refused: Vec<bool> = (0..7).map(|_| storm.draw() == Some(Fault::TooManyRequests)).collect();
        assert_eq!(refused, [true, true, true, true, true, false, false]);
    }
}
