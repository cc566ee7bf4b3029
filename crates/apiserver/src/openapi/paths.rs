//! The `paths` of the documents: the operations kube-apiserver's installer registers for each
//! resource (`k8s.io/apiserver/pkg/endpoints/installer.go`), with kube's operation ids, docs,
//! query parameters, bodies, responses and the `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind` extensions kubectl looks operations up by.

use std::collections::BTreeMap;

use rkube_api::registry::{Resource, SubresourceKind};
use serde_json::{Map, Value, json};

use super::builtin::{
    API_GROUP, API_GROUP_LIST, API_RESOURCE_LIST, API_VERSIONS, Builtin, DELETE_OPTIONS, PATCH,
    STATUS, WATCH_EVENT,
};
use super::schema::{Flavor, Gvk};

const PRETTY: &str = "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).";
const NAMESPACE: &str = "object name and auth scope, such as for teams and projects";
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
/// Custom resources take no strategic merge patches.
const CUSTOM_PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];
/// Kinds whose DELETE answers with the deleted object rather than a Status.
const DELETE_RETURNS_OBJECT: &[&str] = &[
    "Pod",
    "Service",
    "Namespace",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
];

/// One parameter.
#[derive(Clone, Debug, PartialEq)]
struct Param {
    name: String,
    location: &'static str,
    kind: String,
    description: String,
    required: bool,
}

impl Param {
    fn query(name: &str, kind: &str, description: &str) -> Self {
        Param {
            name: name.to_owned(),
            location: "query",
            kind: kind.to_owned(),
            description: description.to_owned(),
            required: false,
        }
    }

    fn path(name: &str, description: String) -> Self {
        Param {
            name: name.to_owned(),
            location: "path",
            kind: "string".to_owned(),
            description,
            required: true,
        }
    }

    fn render(&self, flavor: Flavor) -> Value {
        let mut out = Map::new();
        if !self.description.is_empty() {
            out.insert("description".into(), json!(self.description));
        }
        out.insert("in".into(), json!(self.location));
        out.insert("name".into(), json!(self.name));
        if self.required {
            out.insert("required".into(), json!(true));
        }
        match flavor {
            Flavor::V2 => {
                out.insert("type".into(), json!(self.kind));
                out.insert("uniqueItems".into(), json!(true));
            }
            Flavor::V3 => {
                out.insert(
                    "schema".into(),
                    json!({"type": self.kind, "uniqueItems": true}),
                );
            }
        }
        Value::Object(out)
    }
}

/// The body an operation reads.
struct RequestBody {
    content_types: &'static [&'static str],
    schema: String,
    required: bool,
}

impl RequestBody {
    fn new(content_types: &'static [&'static str], schema: &str, required: bool) -> Option<Self> {
        Some(RequestBody {
            content_types,
            schema: schema.to_owned(),
            required,
        })
    }
}

/// One operation.
struct Operation {
    method: &'static str,
    action: Option<&'static str>,
    id: String,
    tag: String,
    doc: String,
    params: Vec<Param>,
    body: Option<RequestBody>,
    /// Status, description and schema of each answer.
    responses: Vec<(u16, &'static str, String)>,
    produces: Vec<&'static str>,
    gvk: Option<Gvk>,
}

impl Operation {
    fn render(&self, flavor: Flavor, shared: &[Param]) -> Value {
        let mut op = Map::new();
        op.insert("description".into(), json!(self.doc));
        op.insert("operationId".into(), json!(self.id));
        let mut params: Vec<Value> = Vec::new();
        if let (Flavor::V2, Some(b)) = (flavor, &self.body) {
            let mut body =
                json!({"in": "body", "name": "body", "schema": flavor.reference(&b.schema)});
            if b.required {
                body["required"] = json!(true);
            }
            params.push(body);
        }
        params.extend(
            self.params
                .iter()
                .filter(|p| !shared.contains(p))
                .map(|p| p.render(flavor)),
        );
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        let mut responses = Map::new();
        for (code, description, schema) in &self.responses {
            let answer = match flavor {
                Flavor::V2 => {
                    json!({"description": description, "schema": flavor.reference(schema)})
                }
                Flavor::V3 => {
                    let content: Map<String, Value> = self
                        .produces
                        .iter()
                        .map(|t| ((*t).to_owned(), json!({"schema": flavor.reference(schema)})))
                        .collect();
                    json!({"description": description, "content": content})
                }
            };
            responses.insert(code.to_string(), answer);
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        op.insert("responses".into(), Value::Object(responses));
        match flavor {
            Flavor::V2 => {
                let consumes: Vec<&str> = match &self.body {
                    Some(b) if self.method == "patch" => b.content_types.to_vec(),
                    _ => vec!["*/*"],
                };
                op.insert("consumes".into(), json!(consumes));
                op.insert("produces".into(), json!(self.produces));
                op.insert("schemes".into(), json!(["https"]));
            }
            Flavor::V3 => {
                if let Some(b) = &self.body {
                    let content: Map<String, Value> = b
                        .content_types
                        .iter()
                        .map(|t| {
                            (
                                (*t).to_owned(),
                                json!({"schema": flavor.reference(&b.schema)}),
                            )
                        })
                        .collect();
                    let mut body = json!({"content": content});
                    if b.required {
                        body["required"] = json!(true);
                    }
                    op.insert("requestBody".into(), body);
                }
            }
        }
        op.insert("tags".into(), json!([self.tag]));
        if let Some(action) = self.action {
            op.insert("x-kubernetes-action".into(), json!(action));
        }
        if let Some((group, version, kind)) = &self.gvk {
            op.insert(
                "x-kubernetes-group-version-kind".into(),
                json!({"group": group, "kind": kind, "version": version}),
            );
        }
        Value::Object(op)
    }
}

/// The operations of one path.
#[derive(Default)]
struct PathItem {
    path_params: Vec<Param>,
    operations: Vec<Operation>,
}

impl PathItem {
    fn render(&self, flavor: Flavor) -> Value {
        // kube-openapi moves the parameters every operation has to the path.
        let mut shared: Vec<Param> = self
            .operations
            .first()
            .map(|op| op.params.clone())
            .unwrap_or_default();
        shared.retain(|p| self.operations.iter().all(|op| op.params.contains(p)));
        let mut item = Map::new();
        for op in &self.operations {
            item.insert(op.method.into(), op.render(flavor, &shared));
        }
        let params: Vec<Value> = self
            .path_params
            .iter()
            .chain(&shared)
            .map(|p| p.render(flavor))
            .collect();
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        Value::Object(item)
    }
}

/// Builds the paths of a document.
pub struct Paths {
    flavor: Flavor,
    items: BTreeMap<String, PathItem>,
}

/// What a group's paths are named after: `AppsV1` in operation ids, `apps_v1` in tags.
struct Naming {
    prefix: String,
    tag: String,
}

/// kube's `ToValidOperationID`.
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::new();
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

fn naming(group: &str, version: &str) -> Naming {
    let group = if group.is_empty() {
        "core"
    } else {
        group.trim_end_matches(".k8s.io")
    };
    Naming {
        prefix: format!(
            "{}{}",
            operation_id_part(group, true),
            operation_id_part(version, true)
        ),
        tag: format!(
            "{}_{}",
            operation_id_part(group, false),
            operation_id_part(version, false)
        ),
    }
}

/// kube's `GetArticleForNoun` (with the padding).
fn article(noun: &str) -> &'static str {
    if !noun.ends_with("ss") && noun.ends_with('s') {
        " "
    } else if noun.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        " an "
    } else {
        " a "
    }
}

fn title(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The media types an operation produces: objects, and lists and watches.
struct MediaTypes {
    object: &'static [&'static str],
    stream: &'static [&'static str],
}

const BUILTIN_MEDIA: MediaTypes = MediaTypes {
    object: &[
        "application/json",
        "application/yaml",
        "application/vnd.kubernetes.protobuf",
    ],
    stream: &[
        "application/json;stream=watch",
        "application/vnd.kubernetes.protobuf;stream=watch",
    ],
};
const CUSTOM_MEDIA: MediaTypes = MediaTypes {
    object: &["application/json", "application/yaml"],
    stream: &["application/json;stream=watch"],
};

impl MediaTypes {
    fn all(&self) -> Vec<&'static str> {
        self.object.iter().chain(self.stream).copied().collect()
    }
}

/// The kind a subresource speaks: the resource's own (status) or another (`Scale`, ...).
pub struct Speaks {
    /// Its definition.
    pub definition: String,
    /// Its group, version and kind.
    pub gvk: Gvk,
}

/// The definition names an operation refers to, resolved by the document.
pub struct KindNames {
    /// The resource's kind.
    pub kind: String,
    /// Its list kind.
    pub list: Option<String>,
    /// What each subresource speaks, by subresource name.
    pub subresources: BTreeMap<String, Speaks>,
}

impl Paths {
    /// Empty paths for a document of `flavor`.
    pub fn new(flavor: Flavor) -> Self {
        Paths {
            flavor,
            items: BTreeMap::new(),
        }
    }

    /// The paths, rendered.
    pub fn render(&self) -> Value {
        Value::Object(
            self.items
                .iter()
                .map(|(path, item)| (path.clone(), item.render(self.flavor)))
                .collect(),
        )
    }

    fn add(&mut self, path: String, path_params: Vec<Param>, op: Operation) {
        let item = self.items.entry(path).or_default();
        if item.operations.is_empty() {
            item.path_params = path_params;
        }
        item.operations.push(op);
    }

    /// `GET /api/v1/` or `/apis/GROUP/VERSION/`: the group-version's resources.
    pub fn group_version_root(&mut self, group: &str, version: &str) {
        let naming = naming(group, version);
        let path = if group.is_empty() {
            format!("/api/{version}/")
        } else {
            format!("/apis/{group}/{version}/")
        };
        self.add(
            path,
            Vec::new(),
            Operation {
                method: "get",
                action: None,
                id: format!("get{}APIResources", naming.prefix),
                tag: naming.tag,
                doc: "get available resources".into(),
                params: Vec::new(),
                body: None,
                responses: vec![(200, "OK", API_RESOURCE_LIST.into())],
                produces: BUILTIN_MEDIA.object.to_vec(),
                gvk: None,
            },
        );
    }

    /// `GET /apis/GROUP/`, `/apis/` or `/api/`: the discovery documents of groups.
    pub fn discovery_root(&mut self, group: Option<&str>) {
        let (path, id, tag, doc, schema) = match group {
            Some(g) => {
                let name = g.trim_end_matches(".k8s.io");
                (
                    format!("/apis/{g}/"),
                    format!("get{}APIGroup", operation_id_part(name, true)),
                    operation_id_part(name, false),
                    "get information of a group",
                    API_GROUP,
                )
            }
            None => (
                "/apis/".to_owned(),
                "getAPIVersions".to_owned(),
                "apis".to_owned(),
                "get available API versions",
                API_GROUP_LIST,
            ),
        };
        self.add(
            path,
            Vec::new(),
            Operation {
                method: "get",
                action: None,
                id,
                tag,
                doc: doc.into(),
                params: Vec::new(),
                body: None,
                responses: vec![(200, "OK", schema.into())],
                produces: BUILTIN_MEDIA.object.to_vec(),
                gvk: None,
            },
        );
    }

    /// `GET /api/`: the core group's versions.
    pub fn core_root(&mut self) {
        self.add(
            "/api/".into(),
            Vec::new(),
            Operation {
                method: "get",
                action: None,
                id: "getCoreAPIVersions".into(),
                tag: "core".into(),
                doc: "get available API versions".into(),
                params: Vec::new(),
                body: None,
                responses: vec![(200, "OK", API_VERSIONS.into())],
                produces: BUILTIN_MEDIA.object.to_vec(),
                gvk: None,
            },
        );
    }

    /// Every operation of one resource.
    pub fn resource(&mut self, r: &Resource, names: &KindNames) {
        let naming = naming(&r.group, &r.version);
        let custom = r.custom.is_some();
        let media = if custom {
            &CUSTOM_MEDIA
        } else {
            &BUILTIN_MEDIA
        };
        let base = if r.group.is_empty() {
            format!("/api/{}", r.version)
        } else {
            format!("/apis/{}/{}", r.group, r.version)
        };
        let scope = if r.namespaced {
            "namespaces/{namespace}/"
        } else {
            ""
        };
        let collection = format!("{base}/{scope}{}", r.plural);
        let item = format!("{collection}/{{name}}");
        let namespaced = if r.namespaced { "Namespaced" } else { "" };
        let kind = r.kind.as_str();
        let gvk = Some((r.group.clone(), r.version.clone(), r.kind.clone()));
        let has = |verb: &str| r.verbs.iter().any(|v| v == verb);
        let builtin = Builtin::get();
        let params = |options: &str, except: &[&str]| -> Vec<Param> {
            builtin
                .params(options)
                .iter()
                .filter(|p| !except.contains(&p.name.as_str()))
                .map(|p| Param::query(&p.name, &p.kind, &p.description))
                .collect()
        };
        let pretty = Param::query("pretty", "string", PRETTY);
        let with_pretty = |mut list: Vec<Param>| {
            list.insert(0, pretty.clone());
            list
        };
        let scope_params = |name_of: Option<&str>| {
            let mut list = Vec::new();
            if let Some(kind) = name_of {
                list.push(Param::path("name", format!("name of the {kind}")));
            }
            if r.namespaced {
                list.push(Param::path("namespace", NAMESPACE.into()));
            }
            list
        };
        let op = |method, action, id: String, doc: String| Operation {
            method,
            action: Some(action),
            id: format!("{}{}", id_verb(&id), rest_of_id(&id, &naming.prefix)),
            tag: naming.tag.clone(),
            doc,
            params: vec![pretty.clone()],
            body: None,
            responses: Vec::new(),
            produces: media.object.to_vec(),
            gvk: gvk.clone(),
        };
        let kind_def = names.kind.clone();
        let list_def = names.list.clone();
        let patch_types = if custom {
            CUSTOM_PATCH_TYPES
        } else {
            PATCH_TYPES
        };

        if has("list")
            && let Some(list_def) = &list_def
        {
            let doc = if has("watch") {
                format!("list or watch objects of kind {kind}")
            } else {
                format!("list objects of kind {kind}")
            };
            let mut list = op(
                "get",
                "list",
                format!("list{namespaced}{kind}"),
                doc.clone(),
            );
            list.params = with_pretty(params("ListOptions", &[]));
            list.responses = vec![(200, "OK", list_def.clone())];
            list.produces = media.all();
            self.add(collection.clone(), scope_params(None), list);
            if r.namespaced {
                let mut all = op("get", "list", format!("list{kind}ForAllNamespaces"), doc);
                all.params = with_pretty(params("ListOptions", &[]));
                all.responses = vec![(200, "OK", list_def.clone())];
                all.produces = media.all();
                self.add(format!("{base}/{}", r.plural), Vec::new(), all);
            }
        }
        if has("create") {
            let mut create = op(
                "post",
                "post",
                format!("create{namespaced}{kind}"),
                format!("create{}{kind}", article(kind)),
            );
            create.params = with_pretty(params("CreateOptions", &[]));
            create.body = RequestBody::new(&["*/*"], &kind_def, true);
            create.responses = vec![
                (200, "OK", kind_def.clone()),
                (201, "Created", kind_def.clone()),
                (202, "Accepted", kind_def.clone()),
            ];
            self.add(collection.clone(), scope_params(None), create);
        }
        if has("deletecollection") {
            let mut delete = op(
                "delete",
                "deletecollection",
                format!("deletecollection{namespaced}{kind}"),
                format!("delete collection of {kind}"),
            );
            let mut list = params("DeleteOptions", &[]);
            list.extend(params("ListOptions", &["watch", "allowWatchBookmarks"]));
            delete.params = with_pretty(list);
            delete.body = RequestBody::new(&["*/*"], DELETE_OPTIONS, false);
            delete.responses = vec![(200, "OK", STATUS.into())];
            self.add(collection.clone(), scope_params(None), delete);
        }
        let item_params = || scope_params(Some(kind));
        if has("get") {
            let mut get = op(
                "get",
                "get",
                format!("read{namespaced}{kind}"),
                format!("read the specified {kind}"),
            );
            get.responses = vec![(200, "OK", kind_def.clone())];
            self.add(item.clone(), item_params(), get);
        }
        if has("update") {
            let mut put = op(
                "put",
                "put",
                format!("replace{namespaced}{kind}"),
                format!("replace the specified {kind}"),
            );
            put.params = with_pretty(params("UpdateOptions", &[]));
            put.body = RequestBody::new(&["*/*"], &kind_def, true);
            put.responses = vec![
                (200, "OK", kind_def.clone()),
                (201, "Created", kind_def.clone()),
            ];
            self.add(item.clone(), item_params(), put);
        }
        if has("delete") {
            let mut delete = op(
                "delete",
                "delete",
                format!("delete{namespaced}{kind}"),
                format!("delete{}{kind}", article(kind)),
            );
            let answer = if DELETE_RETURNS_OBJECT.contains(&kind) && !custom {
                kind_def.clone()
            } else {
                STATUS.to_owned()
            };
            delete.params = with_pretty(params("DeleteOptions", &[]));
            delete.body = RequestBody::new(&["*/*"], DELETE_OPTIONS, false);
            delete.responses = vec![(200, "OK", answer.clone()), (202, "Accepted", answer)];
            self.add(item.clone(), item_params(), delete);
        }
        if has("patch") {
            let mut patch = op(
                "patch",
                "patch",
                format!("patch{namespaced}{kind}"),
                format!("partially update the specified {kind}"),
            );
            patch.params = with_pretty(params("PatchOptions", &[]));
            patch.body = RequestBody::new(patch_types, PATCH, true);
            patch.responses = vec![
                (200, "OK", kind_def.clone()),
                (201, "Created", kind_def.clone()),
            ];
            self.add(item.clone(), item_params(), patch);
        }
        if has("watch") {
            let watch_base = format!("{base}/watch/{scope}{}", r.plural);
            let watch_op = |action, id: String, doc: String| {
                let mut w = op("get", action, id, doc);
                w.params = with_pretty(params("ListOptions", &[]));
                w.responses = vec![(200, "OK", WATCH_EVENT.into())];
                w.produces = media.all();
                w
            };
            let deprecated =
                ". deprecated: use the 'watch' parameter with a list operation instead";
            self.add(
                watch_base.clone(),
                scope_params(None),
                watch_op(
                    "watchlist",
                    format!("watch{namespaced}{kind}List"),
                    format!("watch individual changes to a list of {kind}{deprecated}."),
                ),
            );
            self.add(
                format!("{watch_base}/{{name}}"),
                item_params(),
                watch_op(
                    "watch",
                    format!("watch{namespaced}{kind}"),
                    format!("watch changes to an object of kind {kind}{deprecated}, filtered to a single item with the 'fieldSelector' parameter."),
                ),
            );
            if r.namespaced {
                self.add(
                    format!("{base}/watch/{}", r.plural),
                    Vec::new(),
                    watch_op(
                        "watchlist",
                        format!("watch{kind}ListForAllNamespaces"),
                        format!("watch individual changes to a list of {kind}{deprecated}."),
                    ),
                );
            }
        }

        for sub in &r.subresources {
            let Some(Speaks {
                definition: def,
                gvk: sub_gvk,
            }) = names.subresources.get(sub.name)
            else {
                continue;
            };
            let path = format!("{item}/{}", sub.name);
            let sub_title = title(sub.name);
            let path_params = scope_params(Some(&sub_gvk.2));
            let sub_verbs: &[&str] = match (sub.kind, sub.name) {
                (SubresourceKind::Status | SubresourceKind::Scale, _) => &["get", "put", "patch"],
                (SubresourceKind::Action, "finalize") => &["put"],
                (SubresourceKind::Action, _) => &["post"],
                (SubresourceKind::NodeProxy, _) => &[],
            };
            for verb in sub_verbs {
                let (id_verb, doc) = match *verb {
                    "get" => ("read", format!("read {} of the specified {kind}", sub.name)),
                    "put" => (
                        "replace",
                        format!("replace {} of the specified {kind}", sub.name),
                    ),
                    "patch" => (
                        "patch",
                        format!("partially update {} of the specified {kind}", sub.name),
                    ),
                    _ => (
                        "create",
                        format!("create {} of{}{kind}", sub.name, article(kind)),
                    ),
                };
                let mut o = op(
                    verb,
                    verb,
                    format!("{id_verb}{namespaced}{kind}{sub_title}"),
                    doc,
                );
                o.gvk = Some(sub_gvk.clone());
                match *verb {
                    "get" => o.responses = vec![(200, "OK", def.clone())],
                    "put" => {
                        o.params = with_pretty(params("UpdateOptions", &[]));
                        o.body = RequestBody::new(&["*/*"], def, true);
                        o.responses = vec![(200, "OK", def.clone()), (201, "Created", def.clone())];
                    }
                    "patch" => {
                        o.params = with_pretty(params("PatchOptions", &[]));
                        o.body = RequestBody::new(patch_types, PATCH, true);
                        o.responses = vec![(200, "OK", def.clone()), (201, "Created", def.clone())];
                    }
                    _ => {
                        o.params = with_pretty(params("CreateOptions", &[]));
                        o.body = RequestBody::new(&["*/*"], def, true);
                        o.responses = vec![
                            (200, "OK", def.clone()),
                            (201, "Created", def.clone()),
                            (202, "Accepted", def.clone()),
                        ];
                    }
                }
                self.add(path.clone(), path_params.clone(), o);
            }
        }
    }
}

/// The verb prefix kube's `GetOperationIDAndTags` recognizes (`deletecollection` is not one:
/// `deleteCoreV1CollectionNamespacedPod`).
fn id_verb(id: &str) -> &str {
    [
        "replace", "create", "delete", "patch", "watch", "read", "list",
    ]
    .into_iter()
    .find(|v| id.starts_with(v))
    .unwrap_or("")
}

/// The rest of an operation id after its verb, with the group-version inserted.
fn rest_of_id(id: &str, prefix: &str) -> String {
    let rest = &id[id_verb(id).len()..];
    format!("{prefix}{}", operation_id_part(rest, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_kube() {
        let core = naming("", "v1");
        assert_eq!(core.prefix, "CoreV1");
        assert_eq!(core.tag, "core_v1");
        let rbac = naming("rbac.authorization.k8s.io", "v1");
        assert_eq!(rbac.prefix, "RbacAuthorizationV1");
        assert_eq!(rbac.tag, "rbacAuthorization_v1");
        assert_eq!(
            naming("stable.example.com", "v1").tag,
            "stableExampleCom_v1"
        );
        assert_eq!(
            rest_of_id("deletecollectionNamespacedPod", "CoreV1"),
            "CoreV1CollectionNamespacedPod"
        );
        assert_eq!(id_verb("deletecollectionNamespacedPod"), "delete");
        assert_eq!(article("Pod"), " a ");
        assert_eq!(article("Endpoints"), " ");
        assert_eq!(article("Ingress"), " an ");
    }
}
