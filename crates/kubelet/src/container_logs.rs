//! Container logs as the kubelet serves them (`GET /containerLogs/NS/POD/CONTAINER`): the
//! runtime's log files in the CRI format, one record a line,
//! `TIMESTAMP STREAM TAG MESSAGE` (`2016-10-06T00:17:09.669794202Z stdout F hello`), where
//! tag `P` marks a partial line continued by the next record and `F` a full one. kube's
//! kubelet joins the parts, and honours `tailLines`, `sinceSeconds`/`sinceTime`,
//! `timestamps`, `limitBytes` and `follow` (`pkg/kubelet/kuberuntime/logs`).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::chrono::{DateTime, SecondsFormat, Utc};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

/// What the client asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only records at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

/// One record of a CRI log file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub time: DateTime<Utc>,
    /// The message, with the newline kube adds to full lines.
    pub message: Vec<u8>,
    /// A full line (tag `F`) rather than a part (tag `P`).
    pub full: bool,
}

/// Parses one line of a CRI log file (without its newline); `None` for a malformed one.
pub fn parse_record(line: &[u8]) -> Option<Record> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(fields.next()?).ok()?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    let stream = fields.next()?;
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let tag = fields.next()?;
    // Tags are `:`-separated; the first says partial or full.
    let full = !tag.split(|b| *b == b':').any(|t| t == b"P");
    let mut message = fields.next().unwrap_or_default().to_vec();
    if full {
        message.push(b'\n');
    }
    Some(Record {
        time,
        message,
        full,
    })
}

/// What a record looks like in the answer.
fn render(record: &Record, options: &LogOptions) -> Vec<u8> {
    if !options.timestamps {
        return record.message.clone();
    }
    let mut out = record
        .time
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        .into_bytes();
    out.push(b' ');
    out.extend_from_slice(&record.message);
    out
}

/// The byte offset where the last `n` full lines of the file's records begin.
async fn tail_offset(path: &PathBuf, n: u64) -> std::io::Result<u64> {
    let bytes = tokio::fs::read(path).await?;
    if n == 0 {
        return u64::try_from(bytes.len()).map_err(std::io::Error::other);
    }
    // Walk back over lines; only full records end a log line.
    let mut seen = 0u64;
    let mut end = bytes.len();
    let mut start_of_kept = bytes.len();
    while end > 0 {
        let line_end = end;
        let line_start = bytes[..line_end.saturating_sub(1)]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let line = bytes[line_start..line_end]
            .strip_suffix(b"\n")
            .unwrap_or(&bytes[line_start..line_end]);
        if parse_record(line).is_some_and(|r| r.full) {
            if seen == n {
                break;
            }
            seen += 1;
        }
        start_of_kept = line_start;
        end = line_start;
    }
    u64::try_from(start_of_kept).map_err(std::io::Error::other)
}

/// Streams the log file into `out` by the options. With `follow`, waits for more until
/// `running` says the container has stopped (then reads what is left) or the receiver is
/// gone.
pub async fn stream(
    path: PathBuf,
    options: LogOptions,
    running: impl Fn() -> futures_util::future::BoxFuture<'static, bool> + Send,
    out: mpsc::Sender<Bytes>,
) -> std::io::Result<()> {
    let file = tokio::fs::File::open(&path).await?;
    let mut reader = BufReader::new(file);
    if let Some(n) = options.tail_lines {
        let offset = tail_offset(&path, n).await?;
        reader.seek(std::io::SeekFrom::Start(offset)).await?;
    }
    let mut budget = options.limit_bytes;
    let mut line = Vec::new();
    let mut stopped = false;
    loop {
        let read = reader.read_until(b'\n', &mut line).await?;
        if read == 0 || !line.ends_with(b"\n") {
            // At the end (maybe of a line still being written): wait for more, or finish.
            if !options.follow || stopped {
                return Ok(());
            }
            if !running().await {
                // One more pass reads what was written before it stopped.
                stopped = true;
                continue;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if out.is_closed() {
                return Ok(());
            }
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let record = parse_record(text);
        line.clear();
        let Some(record) = record else { continue };
        if options.since.is_some_and(|since| record.time < since) {
            continue;
        }
        let mut chunk = render(&record, &options);
        if let Some(left) = budget.as_mut() {
            let take = usize::try_from(*left)
                .unwrap_or(usize::MAX)
                .min(chunk.len());
            chunk.truncate(take);
            *left -= u64::try_from(take).unwrap_or(0);
        }
        if !chunk.is_empty() && out.send(Bytes::from(chunk)).await.is_err() {
            return Ok(());
        }
        if budget == Some(0) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_as_cri_writes_them() {
        let r = parse_record(b"2016-10-06T00:17:09.669794202Z stdout F hello world").expect("ok");
        assert_eq!(r.message, b"hello world\n");
        assert!(r.full);
        let p = parse_record(b"2016-10-06T00:17:09.669794202Z stderr P part").expect("ok");
        assert_eq!(p.message, b"part");
        assert!(!p.full);
        let empty = parse_record(b"2016-10-06T00:17:09Z stdout F").expect("ok");
        assert_eq!(empty.message, b"\n");
        assert!(parse_record(b"garbage").is_none());
        assert!(parse_record(b"2016-10-06T00:17:09Z other F x").is_none());
    }

    async fn collect(path: PathBuf, options: LogOptions) -> String {
        let (tx, mut rx) = mpsc::channel(16);
        stream(path, options, || Box::pin(async { false }), tx)
            .await
            .expect("read");
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk);
        }
        String::from_utf8(out).expect("utf-8")
    }

    #[tokio::test]
    async fn partial_lines_join_and_options_apply() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("0.log");
        std::fs::write(
            &path,
            "2024-01-01T00:00:01Z stdout F one\n\
             2024-01-01T00:00:02Z stdout P tw\n\
             2024-01-01T00:00:02Z stdout F o\n\
             2024-01-01T00:00:03Z stderr F three\n",
        )
        .expect("write");
        let all = collect(path.clone(), LogOptions::default()).await;
        assert_eq!(all, "one\ntwo\nthree\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..Default::default()
        };
        assert_eq!(collect(path.clone(), tail).await, "two\nthree\n");
        let none = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert_eq!(collect(path.clone(), none).await, "");
        let since = LogOptions {
            since: Some("2024-01-01T00:00:03Z".parse().expect("time")),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            collect(path.clone(), since).await,
            "2024-01-01T00:00:03Z three\n"
        );
        let limit = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(collect(path, limit).await, "one\ntw");
    }
}
