//! Timestamps as Kubernetes writes them: RFC 3339, UTC, whole seconds.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, as `2026-11-22T10:00:00Z`.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Now plus some seconds, as `2026-11-22T10:00:30Z`.
pub fn after_seconds(seconds: i64) -> String {
    format(OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

/// A time, as `2026-11-22T10:00:00Z`.
pub fn format(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Parses an RFC 3339 time.
pub fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn whole_seconds_in_utc() {
        let t = super::parse("2026-11-22T10:00:00.123Z").unwrap();
        assert_eq!(super::format(t), "2026-11-22T10:00:00Z");
    }
}
