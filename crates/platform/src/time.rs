//! Times are UTC and travel as RFC 3339 text with millisecond precision.
//!
//! The fixed width makes the text sort like the instant it names, so it can
//! be stored as TEXT in SQLite and PostgreSQL alike and still be ordered.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

const FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Now, as stored and sent.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// `after` from now, as stored and sent.
pub fn from_now(after: std::time::Duration) -> String {
    format(OffsetDateTime::now_utc() + after)
}

/// `before` ago, as stored and sent.
pub fn ago(before: std::time::Duration) -> String {
    format(OffsetDateTime::now_utc() - before)
}

/// An instant as stored and sent.
pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("the fixed UTC format applies to every instant in range")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_fixed_width_utc_millis() {
        let at = time::macros::datetime!(2026-01-02 03:04:05.678901 +02:00);
        assert_eq!(format(at), "2026-01-02T01:04:05.678Z");
        assert_eq!(now().len(), "2026-01-02T01:04:05.678Z".len());
    }
}
