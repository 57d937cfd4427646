//! Human-written durations (`500ms`, `1s`, `90s`, `1h30m`, `7d`) and byte sizes
//! (`512Mi`, `10G`, `1048576`), shared by the CLI flags, the agent settings file
//! and the NodeMonitor spec so that all three accept exactly the same spellings.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Why a duration or size could not be parsed; carries the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error(
        "invalid duration {0:?}: expected a number followed by ms, s, m, h or d (e.g. 500ms, 90s, 7d)"
    )]
    Duration(String),
    #[error("duration {0:?} must be greater than zero")]
    ZeroDuration(String),
    #[error(
        "invalid size {0:?}: expected bytes, optionally with a suffix K, M, G, T, Ki, Mi, Gi or Ti"
    )]
    Size(String),
}

/// A strictly positive duration that prints back the way people write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// Parses durations such as `500ms`, `1s`, `90s`, `1h30m` or `7d` (no bare numbers,
/// so a unit is never guessed).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let err = || UnitError::Duration(text.to_string());
    let s = text.trim();
    if s.is_empty() {
        return Err(err());
    }
    let mut total_ms: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(err());
        }
        let value: u128 = rest[..digits].parse().map_err(|_| err())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let factor_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(err()),
        };
        rest = &rest[unit_len..];
        total_ms = value
            .checked_mul(factor_ms)
            .and_then(|v| total_ms.checked_add(v))
            .ok_or_else(err)?;
    }
    let ms = u64::try_from(total_ms).map_err(|_| err())?;
    if ms == 0 {
        return Err(UnitError::ZeroDuration(text.to_string()));
    }
    Ok(Duration::from_millis(ms))
}

/// Prints a duration in the largest whole units: `90s` → `1m30s`, `7d`, `500ms`.
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000u128),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

impl FromStr for HumanDuration {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Self)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// A byte count written as a plain number or with a decimal (`K`, `M`, `G`, `T`) or
/// binary (`Ki`, `Mi`, `Gi`, `Ti`) suffix, as Kubernetes quantities are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let err = || UnitError::Size(text.to_string());
    let s = text.trim();
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return Err(err());
    }
    let value: u64 = s[..digits].parse().map_err(|_| err())?;
    let factor: u64 = match &s[digits..] {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(err()),
    };
    value.checked_mul(factor).ok_or_else(err)
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s).map(Self)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, size) in [
            ("Ti", 1u64 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if self.0 >= size && self.0.is_multiple_of(size) {
                return write!(f, "{}{suffix}", self.0 / size);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// The value of a Kubernetes resource quantity (`100m`, `0.5`, `128Mi`,
/// `1G`, `1e3`): a decimal number with an optional SI or binary suffix or
/// exponent. `None` for anything else.
pub fn parse_quantity(text: &str) -> Option<f64> {
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse::<i32>().ok()?),
        _ => return None,
    };
    Some(number * factor).filter(|v| v.is_finite() && *v >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_people_write() {
        assert_eq!(parse_duration("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
    }

    #[test]
    fn durations_refused_with_the_text() {
        for bad in ["", "10", "s", "1x", "1.5s", "-1s", "1s2"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert_eq!(
            parse_duration("0s"),
            Err(UnitError::ZeroDuration("0s".into()))
        );
    }

    #[test]
    fn durations_round_trip() {
        for s in ["500ms", "1s", "1m30s", "7d", "1d2h3m4s5ms"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("512Mi").unwrap(), 512 << 20);
        assert_eq!(parse_size("10G").unwrap(), 10_000_000_000);
        assert!(parse_size("10GB").is_err());
        assert!(parse_size("Gi").is_err());
        assert!(parse_size("99999999999999Ti").is_err());
        assert_eq!(ByteSize(512 << 20).to_string(), "512Mi");
        assert_eq!(ByteSize(1000).to_string(), "1000");
    }

    #[test]
    fn kubernetes_quantities() {
        assert_eq!(parse_quantity("100m"), Some(0.1));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("0.5"), Some(0.5));
        assert_eq!(parse_quantity("128Mi"), Some(134_217_728.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("1e3"), Some(1000.0));
        assert_eq!(
            parse_quantity("1.5Gi"),
            Some(1.5 * 1024.0 * 1024.0 * 1024.0)
        );
        for bad in ["", "m", "12X", "-1", "1e", "1ee3", "inf"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
