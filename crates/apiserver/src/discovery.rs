//! Discovery: which groups, versions and resources the server serves (`/api`, `/apis`,
//! `/apis/GROUP`, `/apis/GROUP/VERSION`), as kubectl reads them for `api-resources`,
//! short names and categories.

use http::{HeaderMap, Response};
use rkube_api::registry::{GROUP_ORDER, Resource};
use serde_json::{Value, json};

use crate::State;
use crate::errors::ApiError;
use crate::http_util::{self, Body};

fn groups(state: &State) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for r in state.resources().iter() {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) if !versions.contains(&r.version) => {
                versions.push(r.version.clone())
            }
            Some(_) => {}
            None => groups.push((r.group.clone(), vec![r.version.clone()])),
        }
    }
    let rank = |g: &str| {
        GROUP_ORDER
            .iter()
            .position(|o| *o == g)
            .unwrap_or(usize::MAX)
    };
    groups.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then(a.0.cmp(&b.0)));
    groups
}

/// The media type of aggregated discovery (apidiscovery.k8s.io/v2), which kubectl asks for
/// first so that one request describes every group.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|a| a.to_str().ok())
    else {
        return false;
    };
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        ["g=apidiscovery.k8s.io", "v=v2", "as=APIGroupDiscoveryList"]
            .iter()
            .all(|p| params.contains(p))
    })
}

fn aggregated_resource(r: &Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|sub| {
            let (group, version, kind) = sub.speaks.unwrap_or((&r.group, &r.version, &r.kind));
            json!({
                "subresource": sub.name,
                "responseKind": {"group": group, "version": version, "kind": kind},
                "verbs": sub.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

fn aggregated(state: &State, legacy: bool) -> Response<Body> {
    let items: Vec<Value> = groups(state)
        .into_iter()
        .filter(|(g, _)| g.is_empty() == legacy)
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = state
                        .resources()
                        .iter()
                        .filter(|r| r.group == group && r.version == *v)
                        .map(aggregated_resource)
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    let mut response = http_util::json(
        200,
        &json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}),
    );
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(AGGREGATED),
    );
    response
}

/// `/api`.
pub fn legacy_root(state: &State, headers: &HeaderMap) -> Response<Body> {
    if wants_aggregated(headers) {
        return aggregated(state, true);
    }
    http_util::json(
        200,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": state.server_address}
            ],
        }),
    )
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(
            |v| json!({"groupVersion": rkube_api::registry::group_version(group, v), "version": v}),
        )
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn groups_root(state: &State, headers: &HeaderMap) -> Response<Body> {
    if wants_aggregated(headers) {
        return aggregated(state, false);
    }
    let groups: Vec<Value> = groups(state)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, v)| api_group(g, v))
        .collect();
    http_util::json(
        200,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    )
}

/// `/apis/GROUP`.
pub fn group(state: &State, group: &str) -> Result<Response<Body>, ApiError> {
    let (_, versions) = groups(state)
        .into_iter()
        .find(|(g, _)| g == group && !g.is_empty())
        .ok_or_else(ApiError::no_route)?;
    let mut body = api_group(group, &versions);
    body["kind"] = json!("APIGroup");
    body["apiVersion"] = json!("v1");
    Ok(http_util::json(200, &body))
}

fn resource_entries(r: &Resource) -> Vec<Value> {
    let mut main = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        main["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        main["categories"] = json!(r.categories);
    }
    let mut entries = vec![main];
    for sub in &r.subresources {
        let mut entry = json!({
            "name": format!("{}/{}", r.plural, sub.name),
            "singularName": "",
            "namespaced": r.namespaced,
            "kind": sub.speaks.map_or(r.kind.as_str(), |(_, _, k)| k),
            "verbs": sub.verbs,
        });
        if let Some((group, version, _)) = sub.speaks
            && (group != r.group || version != r.version)
        {
            entry["group"] = json!(group);
            entry["version"] = json!(version);
        }
        entries.push(entry);
    }
    entries
}

/// `/api/v1` and `/apis/GROUP/VERSION`.
pub fn group_version(
    state: &State,
    group: &str,
    version: &str,
) -> Result<Response<Body>, ApiError> {
    let resources: Vec<Value> = state
        .resources()
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .flat_map(resource_entries)
        .collect();
    if resources.is_empty() {
        return Err(ApiError::no_route());
    }
    Ok(http_util::json(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": rkube_api::registry::group_version(group, version),
            "resources": resources,
        }),
    ))
}
