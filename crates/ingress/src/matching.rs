//! How a request's host and path select an Ingress rule, as networking.k8s.io/v1 defines it
//! (kubernetes.io/docs/concepts/services-networking/ingress/):
//!
//! - a rule's host is precise (`foo.bar.com`, equal to the request's host) or a wildcard
//!   (`*.foo.com`, matching exactly one more label: `bar.foo.com`, not `baz.bar.foo.com` nor
//!   `foo.com`); a rule without host matches every host;
//! - `Exact` paths match the request path exactly, case-sensitively;
//! - `Prefix` paths match element by element on `/`-separated elements, trailing slashes
//!   ignored: `/foo` matches `/foo`, `/foo/` and `/foo/bar` but not `/foobar`;
//! - `ImplementationSpecific` is treated as `Prefix` here;
//! - when several paths match, the longest wins, and at equal length `Exact` beats `Prefix`.

/// A rule's host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// No host: every request.
    Any,
    /// A precise host, lower-cased.
    Exact(String),
    /// `*.SUFFIX`: the suffix, lower-cased.
    Wildcard(String),
}

impl HostPattern {
    /// The pattern of a rule's (or a TLS entry's) host.
    pub fn parse(host: Option<&str>) -> HostPattern {
        let host = host.unwrap_or_default().trim().trim_end_matches('.');
        if host.is_empty() {
            return HostPattern::Any;
        }
        let host = host.to_ascii_lowercase();
        match host.strip_prefix("*.") {
            Some(suffix) => HostPattern::Wildcard(suffix.to_owned()),
            None => HostPattern::Exact(host),
        }
    }

    /// Whether a request for `host` (as [`request_host`] gives it) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(suffix) => wildcard_suffix(host) == Some(suffix.as_str()),
        }
    }
}

/// The suffix a wildcard rule would need to match `host`: all but its first label, which
/// must not be empty.
pub fn wildcard_suffix(host: &str) -> Option<&str> {
    let (first, rest) = host.split_once('.')?;
    (!first.is_empty() && !rest.is_empty()).then_some(rest)
}

/// The host a request names (its Host header or `:authority`): without the port, without a
/// trailing dot, lower-cased.
pub fn request_host(authority: &str) -> String {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// How a path is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    Exact,
    Prefix,
}

/// One rule path, ready to match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PathRule {
    kind: PathKind,
    /// For `Exact` the path as written; for `Prefix` without trailing slashes (`""` for `/`).
    path: String,
}

impl PathRule {
    /// A rule path from the Ingress's `path` and `pathType`. `None` for a path type this
    /// controller does not know (the API server refuses those anyway).
    pub fn new(path: Option<&str>, path_type: &str) -> Option<PathRule> {
        let path = path.unwrap_or("/");
        match path_type {
            "Exact" => Some(PathRule {
                kind: PathKind::Exact,
                path: path.to_owned(),
            }),
            "Prefix" | "ImplementationSpecific" => Some(PathRule {
                kind: PathKind::Prefix,
                path: path.trim_end_matches('/').to_owned(),
            }),
            _ => None,
        }
    }

    pub fn kind(&self) -> PathKind {
        self.kind
    }

    /// The length that decides precedence: longer paths win.
    pub fn precedence_len(&self) -> usize {
        self.path.len()
    }

    /// Whether the request path (without query) matches.
    pub fn matches(&self, request_path: &str) -> bool {
        let request_path = if request_path.is_empty() {
            "/"
        } else {
            request_path
        };
        match self.kind {
            PathKind::Exact => request_path == self.path,
            PathKind::Prefix => request_path
                .strip_prefix(self.path.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }
}

/// Orders rule paths by precedence: longest first, `Exact` before `Prefix` at equal length.
/// Stable sorting keeps the given order (oldest Ingress first) among equals.
pub fn precedence(a: &PathRule, b: &PathRule) -> std::cmp::Ordering {
    let exact_first = |k: PathKind| match k {
        PathKind::Exact => 0,
        PathKind::Prefix => 1,
    };
    b.precedence_len()
        .cmp(&a.precedence_len())
        .then(exact_first(a.kind).cmp(&exact_first(b.kind)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(p: &str) -> PathRule {
        PathRule::new(Some(p), "Prefix").unwrap_or_else(|| panic!("{p}"))
    }

    fn exact(p: &str) -> PathRule {
        PathRule::new(Some(p), "Exact").unwrap_or_else(|| panic!("{p}"))
    }

    #[test]
    fn wildcard_hosts_match_one_label() {
        let w = HostPattern::parse(Some("*.foo.com"));
        assert_eq!(w, HostPattern::Wildcard("foo.com".into()));
        assert!(w.matches("bar.foo.com"));
        assert!(!w.matches("baz.bar.foo.com"));
        assert!(!w.matches("foo.com"));
        assert!(!w.matches(".foo.com"));
        assert!(!w.matches("barfoo.com"));
    }

    #[test]
    fn exact_and_any_hosts() {
        let e = HostPattern::parse(Some("Foo.Bar.com"));
        assert!(e.matches("foo.bar.com"));
        assert!(!e.matches("x.foo.bar.com"));
        assert!(HostPattern::parse(None).matches("anything"));
        assert_eq!(HostPattern::parse(Some("")), HostPattern::Any);
    }

    #[test]
    fn request_hosts_lose_port_and_case() {
        assert_eq!(request_host("Foo.example.COM:8080"), "foo.example.com");
        assert_eq!(request_host("foo.example.com."), "foo.example.com");
        assert_eq!(request_host("[::1]:80"), "::1");
        assert_eq!(request_host("10.0.0.1"), "10.0.0.1");
    }

    /// The examples table of the Ingress documentation.
    #[test]
    fn documented_examples() {
        assert!(prefix("/").matches("/"));
        assert!(prefix("/").matches("/anything/at/all"));
        assert!(exact("/foo").matches("/foo"));
        assert!(!exact("/foo").matches("/bar"));
        assert!(!exact("/foo").matches("/foo/"));
        assert!(!exact("/foo/").matches("/foo"));
        assert!(prefix("/foo").matches("/foo"));
        assert!(prefix("/foo").matches("/foo/"));
        assert!(prefix("/foo/").matches("/foo"));
        assert!(prefix("/foo/").matches("/foo/"));
        assert!(!prefix("/aaa/bb").matches("/aaa/bbb"));
        assert!(prefix("/aaa/bbb").matches("/aaa/bbb"));
        assert!(prefix("/aaa/bbb/").matches("/aaa/bbb"));
        assert!(prefix("/aaa/bbb").matches("/aaa/bbb/"));
        assert!(prefix("/aaa/bbb").matches("/aaa/bbb/ccc"));
        assert!(!prefix("/aaa/bbb").matches("/aaa/bbbxyz"));
        assert!(prefix("/foo").matches("/foo/bar"));
        assert!(!prefix("/foo").matches("/foobar"));
        assert!(!prefix("/foo").matches("/FOO"));
    }

    #[test]
    fn implementation_specific_is_prefix() {
        let p = PathRule::new(Some("/api"), "ImplementationSpecific").unwrap_or_else(|| panic!());
        assert!(p.matches("/api/v1"));
        assert!(!p.matches("/apis"));
        let catch_all = PathRule::new(None, "ImplementationSpecific").unwrap_or_else(|| panic!());
        assert!(catch_all.matches("/x"));
        assert!(PathRule::new(Some("/"), "Regex").is_none());
    }

    #[test]
    fn longest_wins_and_exact_beats_prefix() {
        let mut rules = [
            prefix("/"),
            prefix("/aaa"),
            prefix("/aaa/bbb"),
            exact("/aaa"),
        ];
        rules.sort_by(precedence);
        let first = |path: &str| rules.iter().find(|r| r.matches(path)).cloned();
        assert_eq!(first("/aaa/bbb"), Some(prefix("/aaa/bbb")));
        assert_eq!(first("/aaa/ccc"), Some(prefix("/aaa")));
        assert_eq!(first("/aaa"), Some(exact("/aaa")));
        assert_eq!(first("/aaa/"), Some(prefix("/aaa")));
        assert_eq!(first("/ccc"), Some(prefix("/")));
        // A trailing slash on a Prefix path does not make it longer.
        let mut rules = [exact("/foo"), prefix("/foo/")];
        rules.sort_by(precedence);
        assert_eq!(rules[0], exact("/foo"));
    }
}
