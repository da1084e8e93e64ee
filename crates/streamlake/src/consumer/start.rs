//! Where reading starts.

use std::str::FromStr;
use std::time::UNIX_EPOCH;

/// A starting position, as given to `--from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record (`beginning`, `earliest`).
    Beginning,
    /// Only new records (`end`, `latest`).
    End,
    /// This offset (`42`).
    Offset(i64),
    /// This many records before the end (`-10`).
    Tail(i64),
    /// The first record at or after this time, ms since the epoch (`@1700000000000` or an
    /// RFC 3339 time such as `2026-01-21T10:00:00Z`).
    Timestamp(i64),
}

impl FromStr for StartFrom {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "beginning" | "earliest" | "start" => return Ok(Self::Beginning),
            "end" | "latest" => return Ok(Self::End),
            _ => {}
        }
        if let Some(ms) = s.strip_prefix('@') {
            return ms
                .parse()
                .map(Self::Timestamp)
                .map_err(|_| format!("`{s}`: expected @<milliseconds since the epoch>"));
        }
        if let Some(n) = s.strip_prefix('-') {
            return n
                .parse()
                .map(Self::Tail)
                .map_err(|_| format!("`{s}`: expected -<count> (records before the end)"));
        }
        if let Ok(offset) = s.parse() {
            return Ok(Self::Offset(offset));
        }
        humantime::parse_rfc3339_weak(s)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| Self::Timestamp(d.as_millis() as i64))
            .ok_or_else(|| {
                format!("`{s}` is not a start position: use beginning, end, an offset, -<count>, @<ms> or an RFC 3339 time")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("beginning".parse(), Ok(StartFrom::Beginning));
        assert_eq!("latest".parse(), Ok(StartFrom::End));
        assert_eq!("42".parse(), Ok(StartFrom::Offset(42)));
        assert_eq!("-10".parse(), Ok(StartFrom::Tail(10)));
        assert_eq!(
            "@1700000000000".parse(),
            Ok(StartFrom::Timestamp(1_700_000_000_000))
        );
        assert_eq!(
            "2023-11-14T22:13:20Z".parse(),
            Ok(StartFrom::Timestamp(1_700_000_000_000))
        );
        let err = "yesterday".parse::<StartFrom>().unwrap_err();
        assert!(err.contains("`yesterday`"), "{err}");
    }
}
