//! `/metrics` in the Prometheus text format, with kube-apiserver's metric names: requests by
//! verb, resource and code, their latency, open watches, and store latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rkube_store::{
    KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream,
};

const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, le) in BUCKETS.iter().enumerate() {
            let n = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {n}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// A request's labels.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    /// `GET`, `LIST`, `WATCH`, `POST`, `PUT`, `PATCH`, `DELETE`, `DELETECOLLECTION`.
    pub verb: String,
    /// API group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Resource (empty for non-resource paths).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
}

impl RequestLabels {
    fn render(&self) -> String {
        format!(
            "verb=\"{}\",group=\"{}\",version=\"{}\",resource=\"{}\",subresource=\"{}\"",
            self.verb, self.group, self.version, self.resource, self.subresource
        )
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(RequestLabels, u16), u64>,
    durations: BTreeMap<RequestLabels, Histogram>,
    watches: BTreeMap<RequestLabels, i64>,
    store: BTreeMap<&'static str, Histogram>,
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, labels: RequestLabels, code: u16, took: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            *m.requests.entry((labels.clone(), code)).or_default() += 1;
            m.durations
                .entry(labels)
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    /// A watch opened (+1) or closed (-1).
    pub fn watch(&self, labels: &RequestLabels, delta: i64) {
        if let Ok(mut m) = self.inner.lock() {
            *m.watches.entry(labels.clone()).or_default() += delta;
        }
    }

    fn store_op(&self, operation: &'static str, took: Duration) {
        if let Ok(mut m) = self.inner.lock() {
            m.store
                .entry(operation)
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, group, version, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        for ((labels, code), n) in &m.requests {
            let _ = writeln!(
                out,
                "apiserver_request_total{{{},code=\"{code}\"}} {n}",
                labels.render()
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, group, version, resource and subresource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for (labels, h) in &m.durations {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &labels.render(),
            );
        }
        out.push_str("# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests (watches).\n# TYPE apiserver_longrunning_requests gauge\n");
        for (labels, n) in &m.watches {
            let _ = writeln!(
                out,
                "apiserver_longrunning_requests{{{}}} {n}",
                labels.render()
            );
        }
        out.push_str("# HELP etcd_request_duration_seconds Store request latency in seconds for each operation.\n# TYPE etcd_request_duration_seconds histogram\n");
        for (op, h) in &m.store {
            h.render(
                &mut out,
                "etcd_request_duration_seconds",
                &format!("operation=\"{op}\""),
            );
        }
        out
    }
}

/// A store that records the latency of every operation.
pub struct InstrumentedStore {
    /// The store measured.
    pub inner: std::sync::Arc<dyn Store>,
    /// Where the figures go.
    pub metrics: std::sync::Arc<Metrics>,
}

impl InstrumentedStore {
    async fn timed<T>(&self, op: &'static str, f: impl Future<Output = T>) -> T {
        let started = std::time::Instant::now();
        let out = f.await;
        self.metrics.store_op(op, started.elapsed());
        out
    }
}

#[async_trait]
impl Store for InstrumentedStore {
    async fn current_revision(&self) -> Result<Revision, StoreError> {
        self.inner.current_revision().await
    }
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        self.timed("get", self.inner.get(key)).await
    }
    async fn range(&self, request: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.timed("list", self.inner.range(request)).await
    }
    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        self.timed("create", self.inner.create(key, value)).await
    }
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.timed("update", self.inner.update(key, value, expected))
            .await
    }
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.timed("delete", self.inner.delete(key, expected)).await
    }
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        self.inner.watch(prefix, after).await
    }
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.timed("compact", self.inner.compact(revision)).await
    }
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        self.inner.compacted_revision().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        let labels = RequestLabels {
            verb: "LIST".into(),
            group: "".into(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: "".into(),
        };
        m.request(labels.clone(), 200, Duration::from_millis(30));
        m.request(labels, 200, Duration::from_millis(300));
        let text = m.render();
        assert!(text.contains(r#"apiserver_request_total{verb="LIST",group="",version="v1",resource="pods",subresource="",code="200"} 2"#), "{text}");
        assert!(text.contains(r#"apiserver_request_duration_seconds_bucket{verb="LIST",group="",version="v1",resource="pods",subresource="",le="0.05"} 1"#), "{text}");
        assert!(text.contains(r#"le="+Inf"} 2"#));
    }
}
