//! `--find-max`: which rate to try next, given which rates held.
//!
//! Pure: doubles from the start rate while steps hold, halves while they
//! fail, then bisects between the highest rate that held and the lowest
//! that failed until they are within `precision` of each other. The answer
//! is always a rate that was run and held, never an interpolation.

/// The search's state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RateSearch {
    held: Option<f64>,
    failed: Option<f64>,
    next: Option<f64>,
    /// Stop once failed / held ≤ 1 + precision.
    precision: f64,
    /// Never try above this.
    ceiling: f64,
    /// Give up below this.
    floor: f64,
}

impl RateSearch {
    pub(crate) fn new(start: f64, ceiling: f64) -> RateSearch {
        RateSearch {
            held: None,
            failed: None,
            next: Some(round(start.min(ceiling))),
            precision: 0.05,
            ceiling,
            floor: 1.0,
        }
    }

    /// The rate to run next, `None` when the search is over.
    pub(crate) fn next(&self) -> Option<f64> {
        self.next
    }

    /// The highest rate that held so far.
    pub(crate) fn best(&self) -> Option<f64> {
        self.held
    }

    /// Records whether `rate` held and picks the next rate.
    pub(crate) fn record(&mut self, rate: f64, held: bool) {
        if held {
            self.held = Some(self.held.map_or(rate, |h| h.max(rate)));
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
        self.next = match (self.held, self.failed) {
            (Some(h), None) if h >= self.ceiling => None,
            (Some(h), None) => Some(round((h * 2.0).min(self.ceiling))),
            (None, Some(f)) if f / 2.0 < self.floor => None,
            (None, Some(f)) => Some(round(f / 2.0)),
            (Some(h), Some(f)) if f <= h * (1.0 + self.precision) => None,
            (Some(h), Some(f)) => {
                let mid = round((h + f) / 2.0);
                // Rounding can land on a rate already known: then the
                // bracket is as tight as whole rates allow.
                (mid > h && mid < f).then_some(mid)
            }
            (None, None) => self.next,
        };
    }
}

/// Rates are whole operations per second (below 10/s, tenths).
fn round(rate: f64) -> f64 {
    if rate >= 10.0 {
        rate.round()
    } else {
        (rate * 10.0).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search against a system that holds exactly up to `limit`.
    fn search(start: f64, limit: f64) -> (Option<f64>, Vec<f64>) {
        let mut s = RateSearch::new(start, 1_000_000.0);
        let mut tried = Vec::new();
        while let Some(rate) = s.next() {
            assert!(tried.len() < 40, "the search does not end: {tried:?}");
            tried.push(rate);
            s.record(rate, rate <= limit);
        }
        (s.best(), tried)
    }

    #[test]
    fn it_finds_the_limit_within_five_percent_from_below() {
        for (start, limit) in [
            (100.0, 1234.0),
            (100.0, 100.0),
            (5000.0, 2100.0),
            (50.0, 77.0),
        ] {
            let (best, tried) = search(start, limit);
            let best = best.expect("something held");
            assert!(best <= limit, "{best} held above {limit}: {tried:?}");
            assert!(best >= limit * 0.95 - 1.0, "{best} for {limit}: {tried:?}");
            assert!(tried.contains(&best), "the answer was run");
            assert!(tried.len() <= 12, "{tried:?}");
        }
    }

    #[test]
    fn nothing_holds_and_the_ceiling_stops_doubling() {
        assert_eq!(search(100.0, 0.5).0, None);
        let mut s = RateSearch::new(100.0, 300.0);
        s.record(100.0, true);
        assert_eq!(s.next(), Some(200.0));
        s.record(200.0, true);
        assert_eq!(s.next(), Some(300.0));
        s.record(300.0, true);
        assert_eq!((s.next(), s.best()), (None, Some(300.0)));
    }
}
