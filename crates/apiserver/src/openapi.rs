//! OpenAPI v3 documents (`/openapi/v3`, `/openapi/v3/<api|apis/GROUP>/VERSION`).
//!
//! kubectl reads them to learn that the server validates fields itself: a group-version
//! document naming a kind (`x-kubernetes-group-version-kind`) tells kubectl to send
//! `fieldValidation=Strict` instead of validating on the client.
//!
//! The schemas are skeletons (each kind is an object with its GVK); full schemas with field
//! descriptions for `kubectl explain` are still to come.

use rkube_api::registry::group_version;
use serde_json::{Map, Value, json};

use crate::State;
use crate::errors::ApiError;

fn doc_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(s: &str) -> String {
    // FNV-1a: a stable content hash for the cache-busting `hash` parameter.
    let h = s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{h:016X}")
}

fn schema_name(group: &str, version: &str, kind: &str) -> String {
    let short = match group {
        "" => "core".to_owned(),
        g => g.trim_end_matches(".k8s.io").replace('.', "_"),
    };
    format!("io.k8s.api.{short}.{version}.{kind}")
}

/// `/openapi/v3`: the documents there are, by path.
pub fn root(state: &State) -> Value {
    let mut paths = Map::new();
    let mut seen = Vec::new();
    for r in state.resources().iter() {
        let path = doc_path(&r.group, &r.version);
        if seen.contains(&path) {
            continue;
        }
        seen.push(path.clone());
        let body = document(state, &r.group, &r.version)
            .map(|d| d.to_string())
            .unwrap_or_default();
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={}", hash(&body))}),
        );
    }
    json!({"paths": paths})
}

/// The document of one group-version.
pub fn document(state: &State, group: &str, version: &str) -> Result<Value, ApiError> {
    let mut schemas = Map::new();
    let mut paths = Map::new();
    for r in state
        .resources()
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        if r.verbs.iter().any(|v| v == "patch") {
            let base = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let path = if r.namespaced {
                format!("{base}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
            } else {
                format!("{base}/{}/{{name}}", r.plural)
            };
            let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
            paths.insert(path, json!({
                "patch": {
                    "operationId": format!("patch{}", r.kind),
                    "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                    "responses": {"200": {"description": "OK"}},
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
                },
            }));
        }
        schemas.insert(
            schema_name(group, version, &r.kind),
            json!({
                "type": "object",
                "description": format!("{} is a Kubernetes {} object.", r.kind, group_version(group, version)),
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                },
                "x-kubernetes-group-version-kind": [{"group": group, "kind": r.kind, "version": version}],
            }),
        );
    }
    if schemas.is_empty() {
        return Err(ApiError::no_route());
    }
    Ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// Serves a path under `/openapi/v3`.
pub fn serve(state: &State, rest: &str) -> Result<Value, ApiError> {
    let rest = rest.trim_matches('/');
    if rest.is_empty() {
        return Ok(root(state));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["api", version] => document(state, "", version),
        ["apis", group, version] => document(state, group, version),
        _ => Err(ApiError::no_route()),
    }
}
