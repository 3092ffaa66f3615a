//! What the load generator sends: the operations, their mix, and the
//! command-line values (durations) that describe a run.
//!
//! Pure: no I/O, no clock. The mix becomes a fixed interleaved pattern, so
//! which operation the i-th arrival is depends only on i: every window of
//! one pattern length holds the mix exactly, and rare operations are spread
//! through it instead of arriving in bursts.

use std::fmt;
use std::time::Duration;

/// One kind of request a simulated customer makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Op {
    /// A restaurant's page with its menu (`GET /restaurants/{id}`).
    Browse,
    /// The restaurant list filtered by a search term (`GET /restaurants?q=`).
    Search,
    /// One of the customer's own orders (`GET /orders/{id}`).
    Track,
    /// A new order (`POST /orders` with a fresh idempotency key).
    Order,
}

impl Op {
    pub(crate) const ALL: [Op; 4] = [Op::Browse, Op::Search, Op::Track, Op::Order];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Op::Browse => "browse",
            Op::Search => "search",
            Op::Track => "track",
            Op::Order => "order",
        }
    }

    /// Its position in [`Op::ALL`], for per-operation arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    fn parse(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Relative weights of the operations, e.g. `browse=70,track=25,order=5`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mix {
    weights: [u32; Op::ALL.len()],
}

impl Mix {
    /// Parses `name=weight` pairs separated by commas; weights are
    /// non-negative integers, at least one positive, each name at most once.
    pub(crate) fn parse(text: &str) -> Result<Mix, String> {
        let mut weights = [0u32; Op::ALL.len()];
        let mut seen = [false; Op::ALL.len()];
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not name=weight"))?;
            let op = Op::parse(name.trim()).ok_or_else(|| {
                format!(
                    "unknown operation `{}` (known: browse, search, track, order)",
                    name.trim()
                )
            })?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("the weight of {op} must be a whole number"))?;
            if std::mem::replace(&mut seen[op.index()], true) {
                return Err(format!("{op} is named twice"));
            }
            weights[op.index()] = weight;
        }
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        if total == 0 {
            return Err("the mix needs at least one operation with a positive weight".into());
        }
        if total > 100_000 {
            return Err("the weights add up to more than 100000".into());
        }
        Ok(Mix { weights })
    }

    /// Whether `op` is part of the mix.
    pub(crate) fn has(&self, op: Op) -> bool {
        self.weights[op.index()] > 0
    }

    /// The operations with a positive weight.
    pub(crate) fn ops(&self) -> impl Iterator<Item = Op> + '_ {
        Op::ALL.into_iter().filter(|op| self.has(*op))
    }

    /// One period of arrivals, weights reduced by their common divisor,
    /// interleaved by smooth weighted round-robin: after each pick the
    /// picked operation pays the total, so each operation comes back at
    /// even intervals.
    pub(crate) fn pattern(&self) -> Vec<Op> {
        let divisor = self.weights.iter().copied().fold(0, gcd).max(1);
        let weights = self.weights.map(|w| i64::from(w / divisor));
        let total: i64 = weights.iter().sum();
        let mut current = [0i64; Op::ALL.len()];
        let mut pattern = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(weights) {
                *c += w;
            }
            let best = (0..current.len())
                .filter(|&i| weights[i] > 0)
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .expect("a mix has a positive weight");
            current[best] -= total;
            pattern.push(Op::ALL[best]);
        }
        pattern
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ops()
            .map(|op| format!("{op}={}", self.weights[op.index()]))
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Parses `15s`, `500ms`, `2m`, `1.5s` or a plain number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 15s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit in `{text}` (ms, s, m or h)")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"))
}

/// Parses a positive rate in operations per second.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 10_000_000.0 => Ok(r),
        _ => Err(format!(
            "`{text}` is not a rate (operations per second, above 0)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_holds_the_mix_exactly_and_spreads_rare_operations() {
        let mix = Mix::parse("browse=70,track=25,order=5").expect("valid");
        let pattern = mix.pattern();
        assert_eq!(pattern.len(), 20, "weights are reduced by their divisor");
        let count = |op| pattern.iter().filter(|o| **o == op).count();
        assert_eq!(
            (count(Op::Browse), count(Op::Track), count(Op::Order)),
            (14, 5, 1)
        );
        assert_eq!(count(Op::Search), 0);

        // Every track comes at most 5 arrivals after the previous one
        // (its even spacing is 4): no bursts.
        let tracks: Vec<usize> = (0..pattern.len() * 3)
            .filter(|i| pattern[i % pattern.len()] == Op::Track)
            .collect();
        assert!(tracks.windows(2).all(|w| w[1] - w[0] <= 5), "{pattern:?}");
    }

    #[test]
    fn a_mix_names_known_operations_once_with_whole_weights() {
        assert!(Mix::parse("browse=1").is_ok());
        assert_eq!(
            Mix::parse(" order = 3 , browse=0 ")
                .expect("valid")
                .ops()
                .collect::<Vec<_>>(),
            [Op::Order]
        );
        for bad in [
            "",
            "browse=0",
            "browse",
            "browse=x",
            "browse=-1",
            "fly=3",
            "browse=1,browse=2",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let mix = Mix::parse("browse=65,search=5,track=25,order=5").expect("valid");
        assert_eq!(mix.to_string(), "browse=65,search=5,track=25,order=5");
    }

    #[test]
    fn durations_and_rates_read_like_people_write_them() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        for bad in ["", "0s", "-1s", "soon", "3 weeks", "NaNs"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse_rate("2000"), Ok(2000.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
