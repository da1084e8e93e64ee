//! What a performance run does: every setting with its default, written once here.

use super::PerfError;
use crate::consumer::StartFrom;
use std::str::FromStr;
use std::time::Duration;

/// Value bytes per record when no size is given: about one realistic order as JSON.
pub const DEFAULT_RECORD_SIZE: usize = 120;
/// Distinct keys when no key space is given.
pub const DEFAULT_KEYS: u64 = 1000;
/// Producers when none are given.
pub const DEFAULT_PRODUCERS: usize = 1;
/// Progress is reported this often.
pub const DEFAULT_PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// The automatic warm-up is this share of a run…
pub const AUTO_WARMUP_SHARE: f64 = 0.10;
/// …and at most this long when the run is bounded by time (and exactly this long when the run
/// is not bounded at all).
pub const AUTO_WARMUP_MAX: Duration = Duration::from_secs(2);
/// `perf consume` stops when no record came for this long.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The warm-up: records that are sent, delivered and accounted for, but not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Warmup {
    /// A tenth of the run: of `--records` when the run is bounded by count, of `--duration`
    /// (at most [`AUTO_WARMUP_MAX`]) when bounded by time, [`AUTO_WARMUP_MAX`] otherwise.
    #[default]
    Auto,
    /// No warm-up: the first record is measured.
    None,
    /// This many records before measuring starts.
    Records(u64),
    /// Records sent (or, with a throughput target, due) during this long after the start.
    Duration(Duration),
}

impl std::fmt::Display for Warmup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::None => f.write_str("0"),
            Self::Records(n) => write!(f, "{n}"),
            Self::Duration(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl FromStr for Warmup {
    type Err = String;

    /// `auto`, `0`/`none`/`off`, a record count (`5000`), or a duration (`2s`, `500ms`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "auto" => return Ok(Self::Auto),
            "0" | "none" | "off" | "no" => return Ok(Self::None),
            _ => {}
        }
        if let Ok(n) = s.parse::<u64>() {
            return Ok(Self::Records(n));
        }
        match humantime::parse_duration(s) {
            Ok(d) if d.is_zero() => Ok(Self::None),
            Ok(d) => Ok(Self::Duration(d)),
            Err(_) => Err(format!(
                "`{s}` is not a warm-up: use a record count (5000), a duration (2s), 0 or auto"
            )),
        }
    }
}

/// Options of a producer run (`streamlake perf`).
#[derive(Debug, Clone, PartialEq)]
pub struct PerfOptions {
    /// Topic to write to.
    pub topic: String,
    /// Stop after this many measured records (warm-up records come on top).
    pub records: Option<u64>,
    /// Stop after measuring for this long (the warm-up comes first).
    pub duration: Option<Duration>,
    /// Value bytes of each synthetic record (ignored when values come from a file or a schema).
    pub record_size: usize,
    /// Keys drawn from this many distinct keys; `None` sends records without a key.
    pub keys: Option<u64>,
    /// Add the metadata headers and the send-time header to every record.
    pub headers: bool,
    /// Producers sending in parallel, each with its own client and connections.
    pub producers: usize,
    /// Records per second over all producers; `None` sends as fast as the cluster takes them.
    pub throughput: Option<f64>,
    /// Records excluded from the measurement at the start.
    pub warmup: Warmup,
    /// How often progress is reported.
    pub progress_every: Duration,
}

impl PerfOptions {
    /// The defaults, for `topic`: no limit, [`DEFAULT_RECORD_SIZE`]-byte values,
    /// [`DEFAULT_KEYS`] keys, headers on, one producer, no throughput target, automatic
    /// warm-up.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            records: None,
            duration: None,
            record_size: DEFAULT_RECORD_SIZE,
            keys: Some(DEFAULT_KEYS),
            headers: true,
            producers: DEFAULT_PRODUCERS,
            throughput: None,
            warmup: Warmup::Auto,
            progress_every: DEFAULT_PROGRESS_EVERY,
        }
    }

    /// Every problem with the options, as one error.
    pub fn validate(&self) -> Result<(), PerfError> {
        let mut problems = Vec::new();
        if self.topic.is_empty() {
            problems.push("the topic is empty".to_owned());
        }
        if self.records == Some(0) {
            problems.push("--records must be at least 1".to_owned());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            problems.push("--duration must be longer than 0".to_owned());
        }
        if self.keys == Some(0) {
            problems.push("--keys must be at least 1 (or use --no-keys)".to_owned());
        }
        if self.producers == 0 {
            problems.push("--producers must be at least 1".to_owned());
        }
        if let Some(t) = self.throughput {
            if !(t.is_finite() && t > 0.0) {
                problems.push(format!("--throughput must be above 0 records/s, not {t}"));
            }
        }
        if self.progress_every.is_zero() {
            problems.push("the progress interval must be longer than 0".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PerfError::Options(problems.join("; ")))
        }
    }

    /// The warm-up this run uses, with [`Warmup::Auto`] worked out.
    pub fn resolved_warmup(&self) -> Warmup {
        match self.warmup {
            Warmup::Auto => match (self.records, self.duration) {
                (Some(n), _) => match (n as f64 * AUTO_WARMUP_SHARE) as u64 {
                    0 => Warmup::None,
                    w => Warmup::Records(w),
                },
                (None, Some(d)) => {
                    Warmup::Duration(d.mul_f64(AUTO_WARMUP_SHARE).min(AUTO_WARMUP_MAX))
                }
                (None, None) => Warmup::Duration(AUTO_WARMUP_MAX),
            },
            Warmup::Records(0) | Warmup::Duration(Duration::ZERO) => Warmup::None,
            w => w,
        }
    }
}

/// Options of a consumer run (`streamlake perf consume`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeOptions {
    /// Topic to read (every partition, without a consumer group).
    pub topic: String,
    /// Stop after this many records.
    pub records: Option<u64>,
    /// Stop after reading for this long.
    pub duration: Option<Duration>,
    /// Where reading starts.
    pub from: StartFrom,
    /// Stop when no record came for this long (while waiting for the first record only when
    /// reading from the beginning: from the end, the first record may take a while).
    pub idle_timeout: Duration,
    /// How often progress is reported.
    pub progress_every: Duration,
}

impl ConsumeOptions {
    /// The defaults, for `topic`: from the beginning, no limit but the
    /// [`DEFAULT_IDLE_TIMEOUT`].
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            records: None,
            duration: None,
            from: StartFrom::Beginning,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            progress_every: DEFAULT_PROGRESS_EVERY,
        }
    }

    /// Every problem with the options, as one error.
    pub fn validate(&self) -> Result<(), PerfError> {
        let mut problems = Vec::new();
        if self.topic.is_empty() {
            problems.push("the topic is empty".to_owned());
        }
        if self.records == Some(0) {
            problems.push("--records must be at least 1".to_owned());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            problems.push("--duration must be longer than 0".to_owned());
        }
        if self.idle_timeout.is_zero() || self.progress_every.is_zero() {
            problems.push("--idle-timeout and the progress interval must be above 0".to_owned());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PerfError::Options(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_parses_counts_durations_and_off() {
        assert_eq!("auto".parse(), Ok(Warmup::Auto));
        assert_eq!("0".parse(), Ok(Warmup::None));
        assert_eq!("off".parse(), Ok(Warmup::None));
        assert_eq!("0s".parse(), Ok(Warmup::None));
        assert_eq!("5000".parse(), Ok(Warmup::Records(5000)));
        assert_eq!(
            "1500ms".parse(),
            Ok(Warmup::Duration(Duration::from_millis(1500)))
        );
        for w in [
            Warmup::Auto,
            Warmup::None,
            Warmup::Records(12),
            Warmup::Duration(Duration::from_millis(2500)),
        ] {
            assert_eq!(w.to_string().parse(), Ok(w), "{w}");
        }
        let err = "soon".parse::<Warmup>().unwrap_err();
        assert!(err.contains("`soon`"), "{err}");
    }

    #[test]
    fn auto_warmup_is_a_tenth_of_the_run() {
        let mut o = PerfOptions::new("t");
        o.records = Some(20_000);
        assert_eq!(o.resolved_warmup(), Warmup::Records(2_000));
        o.records = Some(5);
        assert_eq!(
            o.resolved_warmup(),
            Warmup::None,
            "a tenth of 5 is no record"
        );
        o.records = None;
        o.duration = Some(Duration::from_secs(3));
        assert_eq!(
            o.resolved_warmup(),
            Warmup::Duration(Duration::from_millis(300))
        );
        o.duration = Some(Duration::from_secs(600));
        assert_eq!(o.resolved_warmup(), Warmup::Duration(AUTO_WARMUP_MAX));
        o.duration = None;
        assert_eq!(o.resolved_warmup(), Warmup::Duration(AUTO_WARMUP_MAX));
        o.warmup = Warmup::Records(0);
        assert_eq!(o.resolved_warmup(), Warmup::None);
        o.warmup = Warmup::Records(7);
        assert_eq!(o.resolved_warmup(), Warmup::Records(7));
    }

    #[test]
    fn validation_names_every_problem() {
        let mut o = PerfOptions::new("t");
        assert!(o.validate().is_ok());
        o.records = Some(0);
        o.producers = 0;
        o.throughput = Some(-1.0);
        o.keys = Some(0);
        let err = o.validate().unwrap_err().to_string();
        for word in ["--records", "--producers", "--throughput", "--keys"] {
            assert!(err.contains(word), "{word} in {err}");
        }
        let mut c = ConsumeOptions::new("t");
        assert!(c.validate().is_ok());
        c.duration = Some(Duration::ZERO);
        assert!(c.validate().unwrap_err().to_string().contains("--duration"));
    }
}
