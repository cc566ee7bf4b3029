//! Cron schedules as the CronJob controller reads them (robfig/cron's standard parser): five
//! fields (minute, hour, day of month, month, day of week) with `*`, `?`, lists, ranges,
//! steps and month/day names, or a descriptor (`@yearly`, `@annually`, `@monthly`,
//! `@weekly`, `@daily`, `@midnight`, `@hourly`, `@every DURATION`); and the IANA time zone
//! of `spec.timeZone`, read from the system's zoneinfo files (UTC when none is given).

use k8s_openapi::chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone,
    Timelike, Utc,
};

/// A parsed schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Five cron fields, each a bit set of the values it allows.
    Fields(Fields),
    /// `@every DURATION`: fixed intervals (at least one second).
    Every(Duration),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    /// Day of month or day of week was `*` or `?`: then both must match, otherwise either.
    dom_star: bool,
    dow_star: bool,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// Parses a schedule; the error reads like robfig/cron's.
pub fn parse(spec: &str) -> Result<Schedule, String> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err("empty spec string".to_owned());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        return Err(
            "CRON_TZ or TZ used in schedule is not supported, use spec.timeZone".to_owned(),
        );
    }
    if let Some(descriptor) = spec.strip_prefix('@') {
        let five = match descriptor {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                if let Some(d) = descriptor.strip_prefix("every ") {
                    let d = parse_go_duration(d.trim())
                        .ok_or_else(|| format!("failed to parse duration {spec}"))?;
                    let d = Duration::seconds(d.num_seconds().max(1));
                    return Ok(Schedule::Every(d));
                }
                return Err(format!("unrecognized descriptor: {spec}"));
            }
        };
        return parse(five);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let (minute, _) = parse_field(fields[0], &MINUTES)?;
    let (hour, _) = parse_field(fields[1], &HOURS)?;
    let (dom, dom_star) = parse_field(fields[2], &DOM)?;
    let (month, _) = parse_field(fields[3], &MONTHS)?;
    let (dow, dow_star) = parse_field(fields[4], &DOW)?;
    Ok(Schedule::Fields(Fields {
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    }))
}

/// A comma-separated list of ranges: the bits it sets, and whether it was a bare `*`/`?`.
fn parse_field(field: &str, bounds: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for expr in field.split(',') {
        let (b, s) = parse_range(expr, bounds)?;
        bits |= b;
        star |= s;
    }
    Ok((bits, star))
}

fn parse_range(expr: &str, bounds: &Bounds) -> Result<(u64, bool), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    if step.is_some_and(|s| s.contains('/')) {
        return Err(format!("too many slashes: {expr}"));
    }
    let mut star = false;
    let (start, mut end, single) = if range == "*" || range == "?" {
        star = true;
        (bounds.min, bounds.max, false)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(format!("too many hyphens: {expr}"));
                }
                (value(lo, bounds)?, value(hi, bounds)?, false)
            }
            None => {
                let v = value(range, bounds)?;
                (v, v, true)
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let step: u32 = s
                .parse()
                .map_err(|_| format!("failed to parse int from {s}"))?;
            // "N/step" means "N-max/step".
            if single {
                end = bounds.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok((bits, star))
}

fn value(s: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = bounds.names.iter().position(|n| *n == lower) {
        let i = u32::try_from(i).unwrap_or(0);
        return Ok(i + bounds.min);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}"))
}

/// A Go duration string (`1h30m`, `90s`, `2h`): enough for `@every`.
fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    // Whole seconds are all a schedule can use; the cast saturates.
    let secs = total as i64;
    Some(Duration::seconds(secs))
}

impl Fields {
    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.dom & (1 << date.day()) != 0;
        let dow = self.dow & (1 << date.weekday().num_days_from_sunday()) != 0;
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first matching wall-clock minute strictly after `after`, within five years.
    fn next_local(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut t = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = after + Duration::days(5 * 366);
        while t <= limit {
            if self.month & (1 << t.month()) == 0 {
                let (y, m) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = NaiveDate::from_ymd_opt(y, m, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_matches(t.date()) {
                t = t.date().succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if self.hour & (1 << t.hour()) == 0 {
                t = t.date().and_hms_opt(t.hour(), 0, 0)? + Duration::hours(1);
                continue;
            }
            if self.minute & (1 << t.minute()) == 0 {
                t += Duration::minutes(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

impl Schedule {
    /// The first time strictly after `after` (whole seconds) that the schedule fires in
    /// `zone`; `None` if there is none within five years (e.g. `0 0 30 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>, zone: &Zone) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every(d) => {
                let base = after.with_nanosecond(0)?;
                Some(base + *d)
            }
            Schedule::Fields(f) => {
                let mut from = after;
                // A wall time skipped by a DST change converts to a later instant; look again
                // from there if the conversion went backwards.
                for _ in 0..4 {
                    let local = zone.to_local(from).naive_local();
                    let next = f.next_local(local)?;
                    let utc = zone.from_local(next);
                    if utc > after {
                        return Some(utc);
                    }
                    from += Duration::hours(1);
                }
                None
            }
        }
    }
}

/// A time zone: UTC, or the transitions and rule of a TZif file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zone {
    Utc,
    Tz(TzData),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TzData {
    /// (UTC second of the transition, offset in seconds east of UTC from then on).
    transitions: Vec<(i64, i32)>,
    /// The offset before the first transition.
    initial: i32,
    /// The POSIX rule for times after the last transition.
    rule: Option<PosixRule>,
}

/// Where zoneinfo files live.
const ZONEINFO: &str = "/usr/share/zoneinfo";

impl Zone {
    /// The zone of `spec.timeZone`: `None` or empty is UTC (kube: the controller's local
    /// zone, which is UTC in a kube-controller-manager container).
    pub fn load(name: Option<&str>) -> Result<Zone, String> {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(Zone::Utc);
        };
        if name == "UTC" || name == "Etc/UTC" {
            return Ok(Zone::Utc);
        }
        let valid = !name.starts_with('/')
            && name
                .split('/')
                .all(|p| !p.is_empty() && p != ".." && p != ".")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c));
        if !valid {
            return Err(format!("unknown time zone {name}"));
        }
        let dir = std::env::var("ZONEINFO").unwrap_or_else(|_| ZONEINFO.to_owned());
        let bytes = std::fs::read(std::path::Path::new(&dir).join(name))
            .map_err(|_| format!("unknown time zone {name}"))?;
        parse_tzif(&bytes)
            .map(Zone::Tz)
            .ok_or_else(|| format!("unknown time zone {name}"))
    }

    /// Seconds east of UTC at an instant.
    pub fn offset_at(&self, utc: i64) -> i32 {
        match self {
            Zone::Utc => 0,
            Zone::Tz(tz) => tz.offset_at(utc),
        }
    }

    /// An instant as wall-clock time in this zone.
    pub fn to_local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        let offset = FixedOffset::east_opt(self.offset_at(t.timestamp())).unwrap_or(Utc.fix());
        t.with_timezone(&offset)
    }

    /// A wall-clock time in this zone as an instant: the earlier one when the wall time
    /// happens twice, and shifted forward by the gap when it does not happen at all (as Go's
    /// time.Date does).
    pub fn from_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let naive_secs = local.and_utc().timestamp();
        let candidates = [
            self.offset_at(naive_secs - 86_400),
            self.offset_at(naive_secs),
            self.offset_at(naive_secs + 86_400),
        ];
        let mut best: Option<i64> = None;
        for off in candidates {
            let utc = naive_secs - i64::from(off);
            if self.offset_at(utc) == off && best.is_none_or(|b| utc < b) {
                best = Some(utc);
            }
        }
        let secs =
            best.unwrap_or_else(|| naive_secs - i64::from(self.offset_at(naive_secs - 86_400)));
        Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
    }
}

impl TzData {
    fn offset_at(&self, utc: i64) -> i32 {
        let idx = self.transitions.partition_point(|(t, _)| *t <= utc);
        if idx == 0 {
            return self.initial;
        }
        if idx == self.transitions.len()
            && let Some(rule) = &self.rule
        {
            return rule.offset_at(utc);
        }
        self.transitions[idx - 1].1
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn count(b: &[u8], at: usize) -> Option<usize> {
    usize::try_from(be_i32(b, at)?).ok()
}

/// Parses a TZif file (RFC 8536), version 2 or later data when present.
fn parse_tzif(b: &[u8]) -> Option<TzData> {
    if b.get(0..4)? != b"TZif" {
        return None;
    }
    let version = *b.get(4)?;
    let header = |at: usize| -> Option<[usize; 6]> {
        Some([
            count(b, at + 20)?,
            count(b, at + 24)?,
            count(b, at + 28)?,
            count(b, at + 32)?,
            count(b, at + 36)?,
            count(b, at + 40)?,
        ])
    };
    let [isut, isstd, leap, time, types, chars] = header(0)?;
    let (start, time_size, [_, isstd, leap, time, types, chars]) = if version >= b'2' {
        let v1 = 44 + time * 4 + time + types * 6 + chars + leap * 8 + isstd + isut;
        let h = header(v1)?;
        (v1 + 44, 8, h)
    } else {
        (44, 4, [isut, isstd, leap, time, types, chars])
    };
    let times_at = start;
    let idx_at = times_at + time * time_size;
    let types_at = idx_at + time;
    let type_offset = |i: usize| be_i32(b, types_at + i * 6);
    let mut transitions = Vec::with_capacity(time);
    for i in 0..time {
        let t = if time_size == 8 {
            be_i64(b, times_at + i * 8)?
        } else {
            i64::from(be_i32(b, times_at + i * 4)?)
        };
        let ty = usize::from(*b.get(idx_at + i)?);
        transitions.push((t, type_offset(ty)?));
    }
    let initial = type_offset(0)?;
    let mut rule = None;
    if version >= b'2' {
        let footer_at = types_at + types * 6 + chars + leap * 12 + isstd + isut;
        if let Some(footer) = b.get(footer_at..) {
            let text = String::from_utf8_lossy(footer);
            let line = text.trim_matches('\n').lines().next().unwrap_or("");
            rule = parse_posix_tz(line);
        }
    }
    Some(TzData {
        transitions,
        initial,
        rule,
    })
}

/// A POSIX TZ rule (`EST5EDT,M3.2.0,M11.1.0`): standard offset, and optionally a DST
/// offset with its start and end (month, week, weekday, seconds after local midnight).
#[derive(Clone, Debug, PartialEq, Eq)]
struct PosixRule {
    std: i32,
    dst: Option<(i32, RuleDate, RuleDate)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RuleDate {
    month: u32,
    week: u32,
    weekday: u32,
    time: i32,
}

fn parse_posix_tz(s: &str) -> Option<PosixRule> {
    let mut rest = s;
    skip_name(&mut rest)?;
    let std = -parse_offset(&mut rest)?;
    if rest.is_empty() {
        return Some(PosixRule { std, dst: None });
    }
    skip_name(&mut rest)?;
    let dst_off = if rest.starts_with(',') {
        std + 3600
    } else {
        -parse_offset(&mut rest)?
    };
    let rest = rest.strip_prefix(',')?;
    let (start, end) = rest.split_once(',')?;
    Some(PosixRule {
        std,
        dst: Some((dst_off, parse_rule_date(start)?, parse_rule_date(end)?)),
    })
}

fn skip_name(rest: &mut &str) -> Option<()> {
    if let Some(quoted) = rest.strip_prefix('<') {
        let end = quoted.find('>')?;
        *rest = &quoted[end + 1..];
    } else {
        let end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        if end < 3 {
            return None;
        }
        *rest = &rest[end..];
    }
    Some(())
}

/// `[+-]hh[:mm[:ss]]` in seconds (POSIX sign: west positive).
fn parse_offset(rest: &mut &str) -> Option<i32> {
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '+' || c == '-'))
        .unwrap_or(rest.len());
    let text = &rest[..end];
    *rest = &rest[end..];
    parse_hms(text)
}

fn parse_hms(text: &str) -> Option<i32> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(d) => (-1, d),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let mut secs = 0;
    for (i, part) in digits.split(':').enumerate() {
        let v: i32 = part.parse().ok()?;
        secs += v * [3600, 60, 1].get(i)?;
    }
    Some(sign * secs)
}

fn parse_rule_date(s: &str) -> Option<RuleDate> {
    let (date, time) = match s.split_once('/') {
        Some((d, t)) => (d, parse_hms(t)?),
        None => (s, 7200),
    };
    let mut parts = date.strip_prefix('M')?.split('.');
    let month = parts.next()?.parse().ok()?;
    let week = parts.next()?.parse().ok()?;
    let weekday = parts.next()?.parse().ok()?;
    Some(RuleDate {
        month,
        week,
        weekday,
        time,
    })
}

impl RuleDate {
    /// The UTC second this rule date happens in `year`, at local offset `offset`.
    fn instant(&self, year: i32, offset: i32) -> Option<i64> {
        let first = NaiveDate::from_ymd_opt(year, self.month, 1)?;
        let first_wd = first.weekday().num_days_from_sunday();
        let mut day = 1 + (self.weekday + 7 - first_wd) % 7 + (self.week.saturating_sub(1)) * 7;
        let days_in_month = if self.month == 12 {
            NaiveDate::from_ymd_opt(year + 1, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, self.month + 1, 1)?
        }
        .signed_duration_since(first)
        .num_days();
        while i64::from(day) > days_in_month {
            day -= 7;
        }
        let date = NaiveDate::from_ymd_opt(year, self.month, day)?;
        let midnight = date.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
        Some(midnight + i64::from(self.time) - i64::from(offset))
    }
}

impl PosixRule {
    fn offset_at(&self, utc: i64) -> i32 {
        let Some((dst, start, end)) = &self.dst else {
            return self.std;
        };
        let year = Utc
            .timestamp_opt(utc + i64::from(self.std), 0)
            .single()
            .map_or(1970, |t| t.year());
        let (Some(s), Some(e)) = (start.instant(year, self.std), end.instant(year, *dst)) else {
            return self.std;
        };
        let in_dst = if s < e {
            utc >= s && utc < e
        } else {
            // Southern hemisphere: DST spans the new year.
            utc >= s || utc < e
        };
        if in_dst { *dst } else { self.std }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn next(spec: &str, after: &str) -> String {
        let schedule = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        schedule
            .next_after(at(after), &Zone::Utc)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    #[test]
    fn next_times_for_standard_schedules() {
        assert_eq!(
            next("* * * * *", "2025-01-01T10:00:30Z"),
            "2025-01-01T10:01:00+00:00"
        );
        assert_eq!(
            next("* * * * *", "2025-01-01T10:00:00Z"),
            "2025-01-01T10:01:00+00:00"
        );
        assert_eq!(
            next("*/15 * * * *", "2025-01-01T10:16:00Z"),
            "2025-01-01T10:30:00+00:00"
        );
        assert_eq!(
            next("5 4 * * *", "2025-01-01T10:00:00Z"),
            "2025-01-02T04:05:00+00:00"
        );
        assert_eq!(
            next("0 0 1 1 *", "2025-03-01T00:00:00Z"),
            "2026-01-01T00:00:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2025-01-01T10:59:59Z"),
            "2025-01-01T11:00:00+00:00"
        );
        assert_eq!(
            next("@weekly", "2025-01-01T00:00:00Z"),
            "2025-01-05T00:00:00+00:00"
        );
        // Names, lists and ranges with steps; 2025-01-06 is a Monday.
        assert_eq!(
            next("0 9 * * mon-fri", "2025-01-04T12:00:00Z"),
            "2025-01-06T09:00:00+00:00"
        );
        assert_eq!(
            next("0 9 * JAN,mar SUN", "2025-02-01T00:00:00Z"),
            "2025-03-02T09:00:00+00:00"
        );
        assert_eq!(
            next("10-20/5 * * * *", "2025-01-01T10:16:00Z"),
            "2025-01-01T10:20:00+00:00"
        );
        assert_eq!(
            next("30/10 * * * *", "2025-01-01T10:51:00Z"),
            "2025-01-01T11:30:00+00:00"
        );
        // Day of month and day of week both restricted: either matches (the 13th or a Friday).
        assert_eq!(
            next("0 0 13 * 5", "2025-01-01T00:00:00Z"),
            "2025-01-03T00:00:00+00:00"
        );
        // One of them a star: both must match (Fridays only).
        assert_eq!(
            next("0 0 * * 5", "2025-01-01T00:00:00Z"),
            "2025-01-03T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 ? * 5", "2025-01-04T00:00:00Z"),
            "2025-01-10T00:00:00+00:00"
        );
        // Leap day.
        assert_eq!(
            next("0 0 29 2 *", "2025-01-01T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        // Never.
        assert_eq!(next("0 0 30 2 *", "2025-01-01T00:00:00Z"), "");
        assert_eq!(
            next("@every 90s", "2025-01-01T00:00:00.5Z"),
            "2025-01-01T00:01:30+00:00"
        );
    }

    #[test]
    fn bad_schedules_are_refused_with_robfig_messages() {
        assert_eq!(
            parse("* * *"),
            Err("expected exactly 5 fields, found 3: [* * *]".to_owned())
        );
        assert_eq!(
            parse("0-70 * * * *"),
            Err("end of range (70) above maximum (59): 0-70".to_owned())
        );
        assert!(parse("x * * * *").is_err());
        assert!(parse("* * * * 7").is_err());
        assert!(parse("*/0 * * * *").is_err());
        assert!(parse("@fortnightly").is_err());
        assert!(parse("TZ=UTC * * * * *").is_err());
    }

    #[test]
    fn posix_rules_follow_daylight_saving() {
        let rule = parse_posix_tz("EST5EDT,M3.2.0,M11.1.0").unwrap_or_else(|| panic!("rule"));
        // 2030-07-01 is summer (EDT, -4h), 2030-01-01 winter (EST, -5h).
        assert_eq!(
            rule.offset_at(at("2030-07-01T12:00:00Z").timestamp()),
            -4 * 3600
        );
        assert_eq!(
            rule.offset_at(at("2030-01-01T12:00:00Z").timestamp()),
            -5 * 3600
        );
        // DST starts 2030-03-10 at 02:00 EST = 07:00 UTC.
        assert_eq!(
            rule.offset_at(at("2030-03-10T06:59:59Z").timestamp()),
            -5 * 3600
        );
        assert_eq!(
            rule.offset_at(at("2030-03-10T07:00:00Z").timestamp()),
            -4 * 3600
        );
        let fixed = parse_posix_tz("<+0530>-5:30").unwrap_or_else(|| panic!("fixed"));
        assert_eq!(fixed.offset_at(0), 5 * 3600 + 1800);
    }

    #[test]
    fn schedules_run_on_the_time_zone_wall_clock() {
        let Ok(zone) = Zone::load(Some("America/New_York")) else {
            eprintln!("no zoneinfo on this machine");
            return;
        };
        let daily = parse("30 9 * * *").unwrap_or_else(|e| panic!("{e}"));
        // Winter: 09:30 EST is 14:30 UTC; summer: 09:30 EDT is 13:30 UTC.
        let winter = daily.next_after(at("2025-01-10T00:00:00Z"), &zone);
        assert_eq!(winter, Some(at("2025-01-10T14:30:00Z")));
        let summer = daily.next_after(at("2025-07-10T00:00:00Z"), &zone);
        assert_eq!(summer, Some(at("2025-07-10T13:30:00Z")));
        // 02:30 does not exist on 2025-03-09 in New York: it runs an hour later on the wall.
        let gap = parse("30 2 * * *").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            gap.next_after(at("2025-03-09T05:00:00Z"), &zone),
            Some(at("2025-03-09T07:30:00Z"))
        );
        assert!(Zone::load(Some("Mars/Olympus")).is_err());
        assert!(Zone::load(Some("../../etc/passwd")).is_err());
        assert_eq!(Zone::load(None), Ok(Zone::Utc));
    }
}
