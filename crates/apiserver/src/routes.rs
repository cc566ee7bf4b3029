//! Which handler a request goes to: the path grammar of the Kubernetes API.
//!
//! ```text
//! /api/v1/<resource>[/<name>[/<subresource>]]                        cluster-scoped, or all namespaces
//! /api/v1/namespaces/<ns>/<resource>[/<name>[/<subresource>]]        namespaced
//! /apis/<group>/<version>/...                                        the same, for named groups
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use serde_json::json;

use crate::State;
use crate::auth::{User, authenticate_token};
use crate::errors::ApiError;
use crate::http_util::{self, Body};
use crate::metrics::RequestLabels;
use crate::{discovery, objects, openapi};

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub legacy_watch: bool,
}

/// What a path asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Version,
    Metrics,
    LegacyRoot,
    GroupsRoot,
    Group(String),
    GroupVersion(String, String),
    OpenApiV2,
    OpenApiV3(String),
    Resource(ResourcePath),
    NotFound,
}

/// Parses a request path.
pub fn parse(path: &str) -> Route {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["version"] => Route::Version,
        ["metrics"] => Route::Metrics,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api"] => Route::LegacyRoot,
        ["apis"] => Route::GroupsRoot,
        ["api", "v1"] => Route::GroupVersion(String::new(), "v1".into()),
        ["apis", group] => Route::Group((*group).into()),
        ["apis", group, version] => Route::GroupVersion((*group).into(), (*version).into()),
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    // A legacy `watch/` prefix means the same as ?watch=true; handled by the caller.
    let (legacy_watch, rest) = match rest {
        ["watch", inner @ ..] => (true, inner),
        other => (false, other),
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, resource, tail @ ..] if !matches!(*resource, "status" | "finalize") => {
            (Some((*ns).to_owned()), {
                let mut v = vec![*resource];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Route::NotFound,
    };
    if plural.is_empty() || name.is_some_and(str::is_empty) {
        return Route::NotFound;
    }
    Route::Resource(ResourcePath {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
        legacy_watch,
    })
}

/// The body of a request: still arriving on a connection, or whole from a client in this
/// process.
pub enum RequestBody {
    Connection(hyper::body::Incoming),
    Local(Bytes),
}

impl RequestBody {
    /// The whole body, of at most [`http_util::MAX_BODY_BYTES`].
    async fn read(self) -> Result<Bytes, ApiError> {
        match self {
            RequestBody::Connection(body) => http_util::read_body(body).await,
            RequestBody::Local(bytes) if bytes.len() > http_util::MAX_BODY_BYTES => {
                Err(ApiError::too_large(http_util::MAX_BODY_BYTES))
            }
            RequestBody::Local(bytes) => Ok(bytes),
        }
    }
}

/// Authenticates, routes and answers one request that came over a connection.
pub async fn handle(
    state: Arc<State>,
    cert_user: Option<User>,
    req: Request<hyper::body::Incoming>,
) -> Response<Body> {
    answer(state, cert_user, req.map(RequestBody::Connection)).await
}

/// Routes and answers one request, authenticated by the connection's certificate (or,
/// in this process, by who made the client), else by its bearer token.
pub async fn answer(
    state: Arc<State>,
    cert_user: Option<User>,
    req: Request<RequestBody>,
) -> Response<Body> {
    let route = parse(req.uri().path());
    // Health and version are public, as in kube-apiserver.
    match route {
        Route::Health => return health(&state, req.uri().path()),
        Route::Version => return http_util::json(200, &version()),
        _ => {}
    }
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let user = match (cert_user, bearer) {
        (Some(user), _) => Some(user),
        (None, Some(token)) => authenticate_token(&state, &token).await,
        (None, None) => None,
    };
    let Some(user) = user else {
        return http_util::error(&ApiError::unauthorized());
    };
    let started = std::time::Instant::now();
    let attributes =
        crate::rbac::Attributes::of(&route, req.method(), req.uri().path(), req.uri().query());
    let labels = request_labels(&route, req.method(), &attributes);
    let result = match crate::rbac::impersonate(&state, user, req.headers())
        .and_then(|user| crate::rbac::check(&state, &user, &attributes).map(|()| user))
    {
        Err(err) => Err(err),
        Ok(user) => route_to(&state, user, route, req).await,
    };
    let response = result.unwrap_or_else(|err| http_util::error(&err));
    if let Some(labels) = labels {
        state
            .metrics
            .request(labels, response.status().as_u16(), started.elapsed());
    }
    response
}

/// Answers an authorized request.
async fn route_to(
    state: &Arc<State>,
    user: User,
    route: Route,
    req: Request<RequestBody>,
) -> Result<Response<Body>, ApiError> {
    match route {
        Route::LegacyRoot => Ok(discovery::legacy_root(state, req.headers())),
        Route::GroupsRoot => Ok(discovery::groups_root(state, req.headers())),
        Route::Group(group) => discovery::group(state, &group),
        Route::GroupVersion(group, version) => discovery::group_version(state, &group, &version),
        Route::OpenApiV2 => openapi::serve_v2(state.clone(), req.headers().clone()).await,
        Route::OpenApiV3(rest) => {
            let query = req.uri().query().map(str::to_owned);
            openapi::serve_v3(state.clone(), rest, query, req.headers().clone()).await
        }
        Route::Resource(path)
            if path.group.is_empty()
                && path.plural == "pods"
                && path.namespace.is_some()
                && matches!(
                    path.subresource.as_deref(),
                    Some("log" | "exec" | "attach" | "portforward")
                ) =>
        {
            // Proxied to the kubelet, upgrades included: the request is passed on whole.
            let (parts, body) = req.into_parts();
            match body {
                RequestBody::Connection(body) => Ok(crate::node_proxy::serve(
                    state.clone(),
                    path,
                    Request::from_parts(parts, body),
                )
                .await),
                RequestBody::Local(_) => Err(ApiError::bad_request(format!(
                    "pods/{} is proxied to the kubelet over a connection: use a client over HTTPS",
                    path.subresource.as_deref().unwrap_or_default()
                ))),
            }
        }
        Route::Resource(path) => {
            // The whole body is read before answering, even an error, so that HTTP/2 clients
            // get the answer instead of a reset stream.
            let (parts, body) = req.into_parts();
            match body.read().await {
                Ok(bytes) => {
                    objects::serve(state.clone(), user, path, Request::from_parts(parts, bytes))
                        .await
                }
                Err(err) => Err(err),
            }
        }
        Route::Metrics => Ok(http_util::text(200, state.metrics.render())),
        Route::NotFound | Route::Health | Route::Version => Err(ApiError::no_route()),
    }
}

/// The metric labels of a resource request: kube's verb (`LIST`, `WATCH`,
/// `DELETECOLLECTION`, else the method).
fn request_labels(
    route: &Route,
    method: &http::Method,
    attributes: &crate::rbac::Attributes,
) -> Option<RequestLabels> {
    let Route::Resource(path) = route else {
        return None;
    };
    let verb = match attributes.verb.as_str() {
        "list" | "watch" | "deletecollection" => attributes.verb.to_ascii_uppercase(),
        _ => method.as_str().to_owned(),
    };
    Some(RequestLabels {
        verb,
        group: path.group.clone(),
        version: path.version.clone(),
        resource: path.plural.clone(),
        subresource: path.subresource.clone().unwrap_or_default(),
    })
}

fn health(state: &State, path: &str) -> Response<Body> {
    if state.ready.load(std::sync::atomic::Ordering::Acquire) || !path.starts_with("/readyz") {
        http_util::text(200, "ok")
    } else {
        http_util::text(500, "[-]store not ready\nreadyz check failed")
    }
}

/// The answer of `/version`.
pub fn version() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0+rkube",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rp(g: &str, p: &str, ns: Option<&str>, n: Option<&str>, s: Option<&str>) -> Route {
        Route::Resource(ResourcePath {
            group: g.into(),
            version: "v1".into(),
            plural: p.into(),
            namespace: ns.map(Into::into),
            name: n.map(Into::into),
            subresource: s.map(Into::into),
            legacy_watch: false,
        })
    }

    #[test]
    fn parses_the_path_grammar() {
        assert_eq!(parse("/api/v1/pods"), rp("", "pods", None, None, None));
        assert_eq!(
            parse("/api/v1/namespaces/default/pods/web/status"),
            rp("", "pods", Some("default"), Some("web"), Some("status"))
        );
        assert_eq!(
            parse("/api/v1/namespaces/kube-system"),
            rp("", "namespaces", None, Some("kube-system"), None)
        );
        assert_eq!(
            parse("/api/v1/namespaces/x/finalize"),
            rp("", "namespaces", None, Some("x"), Some("finalize"))
        );
        assert_eq!(
            parse("/apis/apps/v1/namespaces/a/deployments/d/scale"),
            rp("apps", "deployments", Some("a"), Some("d"), Some("scale"))
        );
        assert_eq!(
            parse("/apis/apps/v1"),
            Route::GroupVersion("apps".into(), "v1".into())
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/b/c/d"), Route::NotFound);
        assert_eq!(parse("/readyz"), Route::Health);
        assert_eq!(parse("/openapi/v2"), Route::OpenApiV2);
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Route::OpenApiV3("apis/apps/v1".into())
        );
    }
}
