//! OpenAPI documents, as kube-apiserver serves them:
//!
//! - `/openapi/v3`: an index of the documents below, each with a content `hash`;
//! - `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`: OpenAPI 3.0, the group-version's
//!   paths and every schema they reach (`/openapi/v3/api`, `apis`, `apis/GROUP`: discovery);
//! - `/openapi/v2`: swagger 2.0, every group in one document, as JSON or as the gnostic
//!   protobuf kubectl asks for.
//!
//! kubectl reads them for `explain`, for client-side apply's strategic merge patches (the
//! `x-kubernetes-patch-*` extensions), and to learn that the server validates fields itself
//! (a kind's `x-kubernetes-group-version-kind`).
//!
//! Built-in schemas come from k8s-openapi ([`builtin`]), custom ones from each CRD version's
//! `openAPIV3Schema` ([`custom`]). Documents are built on first request and cached, as
//! serialized bytes with their SHA-512 ETag, until the served resources change (a CRD comes or
//! goes); a rebuild reuses the documents of group-versions whose resources did not change.

mod builtin;
mod custom;
mod paths;
mod proto;
mod schema;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use rkube_api::registry::{Resource, SubresourceKind};
use serde_json::{Map, Value, json};

use crate::State;
use crate::errors::ApiError;
use crate::http_util::{self, Body};
use builtin::{
    API_GROUP, API_GROUP_LIST, API_RESOURCE_LIST, API_VERSIONS, Builtin, DELETE_OPTIONS, PATCH,
    STATUS, WATCH_EVENT,
};
use paths::{KindNames, Paths, Speaks};
use schema::{Flavor, add_gvk, collect_refs, reachable, to_v3};

const JSON: &str = "application/json";
/// The gnostic protobuf of swagger 2.0: what kubectl asks `/openapi/v2` for.
const PROTO_V2: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
const PROTO_V2_DEPRECATED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// A serialized document and its ETag.
struct Doc {
    json: Bytes,
    etag: String,
}

impl Doc {
    fn new(value: &Value) -> Self {
        let json = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        let etag = etag_of(&json);
        Doc { json, etag }
    }
}

/// kube-openapi's `computeETag`: the SHA-512 of the document, in upper-case hex.
fn etag_of(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA512, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The swagger 2.0 document, in both encodings.
struct V2 {
    doc: Doc,
    proto: OnceLock<Bytes>,
}

/// The documents of one set of served resources.
struct Documents {
    resources: Arc<Vec<Resource>>,
    /// When they were built (the `Last-Modified` of every document).
    built: time::OffsetDateTime,
    /// `/openapi/v3`.
    index: Doc,
    /// By path under `/openapi/v3`, with the resources each was built from.
    v3: BTreeMap<String, (Vec<Resource>, Arc<Doc>)>,
    /// `/openapi/v2`, built on first request.
    v2: OnceLock<V2>,
}

/// The cached documents, with the served-resources list they were last found current for
/// (a process serves one registry; a second server in the same process only causes rebuilds).
static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// A cache entry: the resource list last seen, and the documents built for its content.
type Cached = (Arc<Vec<Resource>>, Arc<Documents>);

/// The documents of the resources served now, built if they changed. The CRD controller
/// republishes the list on every CRD event, so an equal list is checked before rebuilding.
fn documents(state: &State) -> Arc<Documents> {
    let resources = state.resources();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let old = match cache.as_mut() {
        Some((seen, docs)) if Arc::ptr_eq(seen, &resources) => return docs.clone(),
        Some((seen, docs)) if docs.resources == resources => {
            *seen = resources;
            return docs.clone();
        }
        old => old.as_ref().map(|(_, docs)| docs.clone()),
    };
    let docs = Arc::new(build(resources.clone(), old.as_deref()));
    *cache = Some((resources, docs.clone()));
    docs
}

/// The group-versions served, in registry order, with their resources.
fn group_versions(resources: &[Resource]) -> Vec<((String, String), Vec<Resource>)> {
    let mut out: Vec<((String, String), Vec<Resource>)> = Vec::new();
    for r in resources {
        let key = (r.group.clone(), r.version.clone());
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(r.clone()),
            None => out.push((key, vec![r.clone()])),
        }
    }
    out
}

fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn build(resources: Arc<Vec<Resource>>, old: Option<&Documents>) -> Documents {
    let started = std::time::Instant::now();
    let mut v3 = BTreeMap::new();
    let gvs = group_versions(&resources);
    for ((group, version), list) in &gvs {
        let path = doc_path(group, version);
        let reused = old
            .and_then(|o| o.v3.get(&path))
            .filter(|(old_list, _)| old_list == list)
            .map(|(_, doc)| doc.clone());
        let doc = reused
            .unwrap_or_else(|| Arc::new(Doc::new(&group_version_document(group, version, list))));
        v3.insert(path, (list.clone(), doc));
    }
    // The discovery documents kube-apiserver also lists.
    let groups: std::collections::BTreeSet<&str> = gvs
        .iter()
        .map(|((g, _), _)| g.as_str())
        .filter(|g| !g.is_empty())
        .collect();
    let discovery = [
        ("api".to_owned(), Discovery::Core),
        ("apis".to_owned(), Discovery::Groups),
    ]
    .into_iter()
    .chain(
        groups
            .into_iter()
            .map(|g| (format!("apis/{g}"), Discovery::Group(g))),
    );
    for (path, which) in discovery {
        let doc = Arc::new(Doc::new(&discovery_document(which)));
        v3.insert(path, (Vec::new(), doc));
    }
    let index: Map<String, Value> = v3
        .iter()
        .map(|(path, (_, doc))| {
            let url = format!("/openapi/v3/{path}?hash={}", doc.etag);
            (path.clone(), json!({"serverRelativeURL": url}))
        })
        .collect();
    tracing::debug!(elapsed = ?started.elapsed(), "built the OpenAPI v3 documents");
    Documents {
        resources,
        built: time::OffsetDateTime::now_utc(),
        index: Doc::new(&json!({"paths": index})),
        v3,
        v2: OnceLock::new(),
    }
}

fn info(custom_only: bool) -> Value {
    if custom_only {
        json!({"title": "Kubernetes CRD Swagger", "version": "v0.1.0"})
    } else {
        json!({"title": "Kubernetes", "version": crate::routes::version()["gitVersion"]})
    }
}

const BEARER: &str = "BearerToken";

fn bearer_scheme() -> Value {
    json!({"description": "Bearer Token authentication", "in": "header", "name": "authorization", "type": "apiKey"})
}

/// The definitions of custom kinds and of built-in kinds without a k8s-openapi type, and the
/// definition names of each resource.
#[derive(Default)]
struct Kinds {
    extra: BTreeMap<String, Value>,
}

impl Kinds {
    /// The definition names `r`'s operations use, adding its schemas to `extra` if needed.
    fn names(&mut self, r: &Resource, flavor: Flavor) -> KindNames {
        let builtin = Builtin::get();
        let (kind, list) = if let Some(info) = &r.custom {
            let [(kind, kind_schema), (list, list_schema)] = custom::definitions(r, info, flavor);
            self.extra.insert(kind.clone(), kind_schema);
            self.extra.insert(list.clone(), list_schema);
            (kind, Some(list))
        } else if let Some(def) = builtin.definition_of(&r.group, &r.version, &r.kind) {
            let list = builtin
                .definition_of(&r.group, &r.version, &format!("{}List", r.kind))
                .map(str::to_owned);
            (def.to_owned(), list)
        } else {
            (self.skeleton(r), None)
        };
        let mut subresources = BTreeMap::new();
        for sub in &r.subresources {
            let speaks = match (sub.kind, sub.speaks) {
                (SubresourceKind::NodeProxy, _) => None,
                (SubresourceKind::Status, _) | (_, None) => Some(Speaks {
                    definition: kind.clone(),
                    gvk: (r.group.clone(), r.version.clone(), r.kind.clone()),
                }),
                (_, Some((g, v, k))) => builtin.definition_of(g, v, k).map(|def| Speaks {
                    definition: def.to_owned(),
                    gvk: (g.to_owned(), v.to_owned(), k.to_owned()),
                }),
            };
            if let Some(speaks) = speaks {
                subresources.insert(sub.name.to_owned(), speaks);
            }
        }
        KindNames {
            kind,
            list,
            subresources,
        }
    }

    /// An object schema naming only the kind, for a built-in kind k8s-openapi has no type for.
    fn skeleton(&mut self, r: &Resource) -> String {
        let short = match r.group.as_str() {
            "" => "core".to_owned(),
            g => g.trim_end_matches(".k8s.io").replace('.', "_"),
        };
        let name = format!("io.k8s.api.{short}.{}.{}", r.version, r.kind);
        let mut schema = json!({
            "type": "object",
            "properties": {
                "apiVersion": builtin::type_meta("apiVersion"),
                "kind": builtin::type_meta("kind"),
                "metadata": {"$ref": format!("{}{}", schema::DEFINITIONS, builtin::OBJECT_META)},
            },
        });
        add_gvk(&mut schema, &r.group, &r.version, &r.kind);
        self.extra.insert(name.clone(), schema);
        name
    }

    /// Every definition reachable from `roots`, in `flavor`.
    fn definitions(&self, roots: Vec<String>, flavor: Flavor) -> Map<String, Value> {
        let builtin = Builtin::get();
        let lookup = |name: &str| {
            self.extra
                .get(name)
                .or_else(|| builtin.definitions.get(name))
        };
        reachable(roots, lookup)
            .into_iter()
            .filter_map(|name| {
                let schema = lookup(&name)?;
                let schema = match flavor {
                    Flavor::V2 => schema.clone(),
                    Flavor::V3 => to_v3(&name, schema),
                };
                Some((name, schema))
            })
            .collect()
    }
}

/// The definitions `paths` refer to, plus the kinds (whose schemas kubectl looks up by GVK).
fn roots_of(paths: &Value, kinds: &[KindNames]) -> Vec<String> {
    let mut roots: Vec<String> = Vec::new();
    collect_refs(paths, &mut |name| roots.push(name.to_owned()));
    for names in kinds {
        roots.push(names.kind.clone());
        roots.extend(names.list.clone());
    }
    roots.extend([STATUS, DELETE_OPTIONS, WATCH_EVENT, PATCH].map(str::to_owned));
    roots
}

/// The OpenAPI 3.0 document of one group-version.
fn group_version_document(group: &str, version: &str, resources: &[Resource]) -> Value {
    let mut kinds = Kinds::default();
    let mut paths = Paths::new(Flavor::V3);
    paths.group_version_root(group, version);
    let mut all_names = Vec::new();
    for r in resources {
        let names = kinds.names(r, Flavor::V3);
        paths.resource(r, &names);
        all_names.push(names);
    }
    let paths = paths.render();
    let schemas = kinds.definitions(roots_of(&paths, &all_names), Flavor::V3);
    let custom_only = resources.iter().all(|r| r.custom.is_some());
    json!({
        "openapi": "3.0.0",
        "info": info(custom_only),
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {BEARER: bearer_scheme()}},
        "security": [{BEARER: []}],
    })
}

/// The discovery documents: what `/api`, `/apis` and `/apis/GROUP` answer.
#[derive(Clone, Copy)]
enum Discovery<'a> {
    Core,
    Groups,
    Group(&'a str),
}

/// `/openapi/v3/api`, `/openapi/v3/apis` or `/openapi/v3/apis/GROUP`.
fn discovery_document(which: Discovery<'_>) -> Value {
    let mut paths = Paths::new(Flavor::V3);
    let root = match which {
        Discovery::Core => {
            paths.core_root();
            API_VERSIONS
        }
        Discovery::Groups => {
            paths.discovery_root(None);
            API_GROUP_LIST
        }
        Discovery::Group(group) => {
            paths.discovery_root(Some(group));
            API_GROUP
        }
    };
    let kinds = Kinds::default();
    let schemas = kinds.definitions(vec![root.to_owned()], Flavor::V3);
    json!({
        "openapi": "3.0.0",
        "info": info(false),
        "paths": paths.render(),
        "components": {"schemas": schemas, "securitySchemes": {BEARER: bearer_scheme()}},
        "security": [{BEARER: []}],
    })
}

/// The swagger 2.0 document of everything served.
fn v2_document(resources: &[Resource]) -> Value {
    let mut kinds = Kinds::default();
    let mut paths = Paths::new(Flavor::V2);
    paths.core_root();
    paths.discovery_root(None);
    let mut all_names = Vec::new();
    for ((group, version), list) in group_versions(resources) {
        if !group.is_empty() {
            paths.discovery_root(Some(&group));
        }
        paths.group_version_root(&group, &version);
        for r in &list {
            let names = kinds.names(r, Flavor::V2);
            paths.resource(r, &names);
            all_names.push(names);
        }
    }
    let paths = paths.render();
    let mut roots = roots_of(&paths, &all_names);
    roots.extend([API_RESOURCE_LIST, API_GROUP, API_GROUP_LIST, API_VERSIONS].map(str::to_owned));
    let definitions = kinds.definitions(roots, Flavor::V2);
    json!({
        "swagger": "2.0",
        "info": info(false),
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {BEARER: bearer_scheme()},
        "security": [{BEARER: []}],
    })
}

fn accept_header(headers: &HeaderMap) -> &str {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// The media types of an `Accept` header, best first (goautoneg's order: by q, then the more
/// specific first).
fn accepted(headers: &HeaderMap) -> Vec<String> {
    let accept = Some(accept_header(headers))
        .filter(|v| !v.trim().is_empty())
        .unwrap_or("*/*");
    let mut clauses: Vec<(f32, u8, String)> = accept
        .split(',')
        .filter_map(|clause| {
            let mut parts = clause.split(';');
            let media = parts.next()?.trim().to_ascii_lowercase();
            let mut q = 1.0;
            for p in parts {
                if let Some(v) = p.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            let specificity = match media.as_str() {
                "*/*" => 0,
                m if m.ends_with("/*") => 1,
                _ => 2,
            };
            (q > 0.0).then_some((q, specificity, media))
        })
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
    clauses.into_iter().map(|(_, _, m)| m).collect()
}

/// The first of `offered` the client accepts.
fn negotiate<'a>(headers: &HeaderMap, offered: &[&'a str]) -> Option<&'a str> {
    for clause in accepted(headers) {
        for offer in offered {
            let matches = clause == "*/*"
                || clause == *offer
                || clause
                    .strip_suffix("/*")
                    .is_some_and(|t| offer.split('/').next() == Some(t));
            if matches {
                return Some(offer);
            }
        }
    }
    None
}

/// RFC 1123, as Go's `http.TimeFormat`.
fn http_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        &t.weekday().to_string()[..3],
        t.day(),
        &t.month().to_string()[..3],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A document answer with Go's `http.ServeContent` behaviour: `ETag`, `Last-Modified`, and
/// 304 when `If-None-Match` names the current ETag.
fn answer(
    headers: &HeaderMap,
    content_type: &str,
    body: Bytes,
    etag: &str,
    built: time::OffsetDateTime,
) -> Response<Body> {
    let quoted = format!("\"{etag}\"");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t == quoted || t.strip_prefix("W/") == Some(quoted.as_str())
            })
        });
    let mut response = if not_modified {
        let mut r = Response::new(http_util::full(Bytes::new()));
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(http_util::full(body))
    };
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, content_type);
    set(h, header::ETAG, &quoted);
    set(h, header::LAST_MODIFIED, &http_date(built));
    set(h, header::VARY, "Accept");
    response
}

/// Serves a path under `/openapi/v3`.
pub async fn serve_v3(
    state: Arc<State>,
    rest: String,
    query: Option<String>,
    headers: HeaderMap,
) -> Result<Response<Body>, ApiError> {
    tokio::task::spawn_blocking(move || {
        serve_v3_blocking(&state, &rest, query.as_deref(), &headers)
    })
    .await
    .map_err(|e| ApiError::internal(format!("building the OpenAPI documents: {e}")))?
}

fn serve_v3_blocking(
    state: &State,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let docs = documents(state);
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        return Ok(answer(
            headers,
            JSON,
            docs.index.json.clone(),
            &docs.index.etag,
            docs.built,
        ));
    }
    let Some((_, doc)) = docs.v3.get(rest) else {
        return Err(ApiError::no_route());
    };
    if negotiate(headers, &[JSON]).is_none() {
        return Err(ApiError::not_acceptable(accept_header(headers)));
    }
    let hash = http_util::query(query).remove("hash");
    if let Some(hash) = hash.filter(|h| !h.is_empty()) {
        if hash != doc.etag {
            // kube redirects a stale hash to the current document.
            let mut response = Response::new(http_util::full(Bytes::new()));
            *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let location = format!("/openapi/v3/{rest}?hash={}", doc.etag);
            if let Ok(v) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(response);
        }
        let mut response = answer(headers, JSON, doc.json.clone(), &doc.etag, docs.built);
        let h = response.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let expires = http_date(time::OffsetDateTime::now_utc() + time::Duration::days(365));
        if let Ok(v) = HeaderValue::from_str(&expires) {
            h.insert(header::EXPIRES, v);
        }
        return Ok(response);
    }
    Ok(answer(
        headers,
        JSON,
        doc.json.clone(),
        &doc.etag,
        docs.built,
    ))
}

/// Serves `/openapi/v2`.
pub async fn serve_v2(state: Arc<State>, headers: HeaderMap) -> Result<Response<Body>, ApiError> {
    tokio::task::spawn_blocking(move || serve_v2_blocking(&state, &headers))
        .await
        .map_err(|e| ApiError::internal(format!("building the OpenAPI document: {e}")))?
}

fn serve_v2_blocking(state: &State, headers: &HeaderMap) -> Result<Response<Body>, ApiError> {
    let Some(media) = negotiate(headers, &[JSON, PROTO_V2_DEPRECATED, PROTO_V2]) else {
        return Err(ApiError::not_acceptable(accept_header(headers)));
    };
    let docs = documents(state);
    let v2 = docs.v2.get_or_init(|| {
        let started = std::time::Instant::now();
        let doc = Doc::new(&v2_document(&docs.resources));
        tracing::debug!(elapsed = ?started.elapsed(), bytes = doc.json.len(), "built the OpenAPI v2 document");
        V2 {
            doc,
            proto: OnceLock::new(),
        }
    });
    if media == JSON {
        return Ok(answer(
            headers,
            JSON,
            v2.doc.json.clone(),
            &v2.doc.etag,
            docs.built,
        ));
    }
    let proto = v2
        .proto
        .get_or_init(|| {
            let value: Value = serde_json::from_slice(&v2.doc.json).unwrap_or_default();
            Bytes::from(proto::encode_document(&value))
        })
        .clone();
    // The protobuf shares the JSON's ETag (kube-openapi does the same; `Vary: Accept`).
    Ok(answer(headers, PROTO_V2, proto, &v2.doc.etag, docs.built))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rkube_api::registry::builtin_resources;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn negotiates_like_goautoneg() {
        let offered = [JSON, PROTO_V2_DEPRECATED, PROTO_V2];
        assert_eq!(negotiate(&HeaderMap::new(), &offered), Some(JSON));
        assert_eq!(
            negotiate(&accept(PROTO_V2_DEPRECATED), &offered),
            Some(PROTO_V2_DEPRECATED)
        );
        assert_eq!(
            negotiate(
                &accept(
                    "application/json;q=0.5, application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
                ),
                &offered
            ),
            Some(PROTO_V2)
        );
        assert_eq!(negotiate(&accept("text/html"), &offered), None);
        assert_eq!(negotiate(&accept("application/*"), &offered), Some(JSON));
    }

    #[test]
    fn group_version_documents_have_paths_schemas_and_gvks() {
        let resources = builtin_resources();
        let apps: Vec<Resource> = resources
            .iter()
            .filter(|r| r.group == "apps")
            .cloned()
            .collect();
        let doc = group_version_document("apps", "v1", &apps);
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
            json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        for name in [
            "io.k8s.api.core.v1.PodSpec",
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "io.k8s.api.autoscaling.v1.Scale",
            STATUS,
            DELETE_OPTIONS,
            WATCH_EVENT,
            PATCH,
            API_RESOURCE_LIST,
        ] {
            assert!(schemas.get(name).is_some(), "{name} missing");
        }
        // Every reference resolves.
        let mut missing = Vec::new();
        collect_refs(&doc, &mut |r| {
            if schemas.get(r).is_none() {
                missing.push(r.to_owned());
            }
        });
        assert!(missing.is_empty(), "{missing:?}");
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(patch["operationId"], "patchAppsV1NamespacedDeployment");
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "kind": "Deployment", "version": "v1"})
        );
        assert!(
            patch["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object()
        );
        let scale =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["get"];
        assert_eq!(scale["operationId"], "readAppsV1NamespacedDeploymentScale");
        assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
        let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
        assert_eq!(
            strategy["allOf"],
            json!([{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}])
        );
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    }

    #[test]
    fn every_built_in_kind_has_a_schema() {
        let builtin = Builtin::get();
        for r in builtin_resources() {
            assert!(
                builtin
                    .definition_of(&r.group, &r.version, &r.kind)
                    .is_some(),
                "{} {}/{} has no schema",
                r.kind,
                r.group,
                r.version
            );
            if r.verbs.iter().any(|v| v == "list") {
                let list = format!("{}List", r.kind);
                assert!(
                    builtin.definition_of(&r.group, &r.version, &list).is_some(),
                    "{list}"
                );
            }
            for sub in &r.subresources {
                if let (SubresourceKind::Scale | SubresourceKind::Action, Some((g, v, k))) =
                    (sub.kind, sub.speaks)
                {
                    assert!(
                        builtin.definition_of(g, v, k).is_some(),
                        "{k} ({})",
                        sub.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_v2_document_has_every_group() {
        let doc = v2_document(&builtin_resources());
        assert_eq!(doc["swagger"], "2.0");
        let definitions = &doc["definitions"];
        for name in [
            "io.k8s.api.core.v1.Pod",
            "io.k8s.api.apps.v1.Deployment",
            "io.k8s.api.batch.v1.CronJobList",
            "io.k8s.api.rbac.v1.ClusterRole",
        ] {
            assert!(definitions.get(name).is_some(), "{name} missing");
        }
        let mut missing = Vec::new();
        collect_refs(&doc, &mut |r| {
            if definitions.get(r).is_none() {
                missing.push(r.to_owned());
            }
        });
        assert!(missing.is_empty(), "{missing:?}");
        let list = &doc["paths"]["/api/v1/namespaces/{namespace}/pods"]["get"];
        assert_eq!(list["operationId"], "listCoreV1NamespacedPod");
        assert_eq!(
            list["responses"]["200"]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.PodList"
        );
    }

    #[test]
    fn http_dates_are_rfc1123() {
        let t = time::OffsetDateTime::from_unix_timestamp(0).unwrap();
        assert_eq!(http_date(t), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
