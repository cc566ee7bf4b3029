//! The verbs on stored objects: get, list, create, update, patch, delete, deletecollection,
//! watch, and the status subresource, with kube-apiserver's semantics.
//!
//! Objects are kept in the store as JSON without `metadata.resourceVersion`; the version is
//! the store's mod revision, set on the way out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response};
use rkube_api::patch::{PatchType, apply_patch, builtin_list_strategy};
use rkube_api::registry::{Resource, SubresourceKind};
use rkube_api::selector::{FieldSelector, LabelSelector};
use rkube_api::{protobuf, validate_types, validation};
use rkube_store::{KeyValue, RangeRequest, Revision, StoreError};
use serde_json::{Map, Value, json};

use crate::State;
use crate::auth::User;
use crate::cache::Cached;
use crate::deletion::{self, DeleteOptions, Plan};
use crate::errors::ApiError;
use crate::http_util::{self, Body};
use crate::routes::ResourcePath;
use crate::sa_token::{BoundObject, BoundObjects};
use crate::typed::{self, FieldValidation};
use crate::{services, table, time_util, watch};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the system namespaces that do not exist yet.
pub async fn ensure_system_namespaces(state: &State) -> Result<(), ApiError> {
    let Some(ns) = state.resource("", "v1", "namespaces") else {
        return Ok(());
    };
    for name in SYSTEM_NAMESPACES {
        let mut object =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        prepare_new(&ns, &mut object);
        match state
            .store
            .create(&ns.storage_key(None, name), to_bytes(&object))
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// One request on a resource path.
struct Call<'a> {
    state: &'a State,
    /// The resource as the request names it (its group and version are what the client
    /// sends and reads).
    resource: Resource,
    /// The resource objects are stored as: the same unless the request's version is
    /// converted (`rkube_api::conversion`).
    storage: Resource,
    path: ResourcePath,
    query: HashMap<String, String>,
    user: User,
    /// What to do about unknown fields in the request's object.
    validation: FieldValidation,
    /// `Warning` headers for the answer.
    warnings: std::sync::Mutex<Vec<String>>,
}

impl Call<'_> {
    fn name(&self) -> &str {
        self.path.name.as_deref().unwrap_or("")
    }
    fn namespace(&self) -> Option<&str> {
        if self.resource.namespaced {
            self.path.namespace.as_deref()
        } else {
            None
        }
    }
    fn key(&self, name: &str) -> String {
        self.resource.storage_key(self.namespace(), name)
    }
    fn not_found(&self) -> ApiError {
        ApiError::not_found(&self.resource.group, &self.resource.plural, self.name())
    }
    fn store_error(&self, err: StoreError, name: &str) -> ApiError {
        ApiError::from_store(err, &self.resource.group, &self.resource.plural, name)
    }
    fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }
    /// A stored object as the request's version shows it.
    fn output(&self, object: Value) -> Value {
        to_version(&self.resource, object)
    }
    /// A request's object in the stored version.
    fn to_storage(&self, object: Value) -> Value {
        to_version(&self.storage, object)
    }
}

/// The group and version of `Table` and `PartialObjectMetadata` (the v1 form).
pub(crate) const META_V1: &str = "meta.k8s.io/v1";

/// What a client asked to get back, by `Accept`'s `as=`: the objects themselves, a `Table`
/// (`kubectl get`), or only their metadata (`as=PartialObjectMetadata` for an object or a
/// watch, `as=PartialObjectMetadataList` for a list, as client-go's metadata client and
/// kube-rs's `*_metadata` calls send them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    Object,
    Table,
    Metadata {
        list: bool,
        api_version: &'static str,
    },
}

impl Shape {
    /// The first of the header's media types this server gives, as kube-apiserver picks
    /// them: a metadata form only in `meta.k8s.io` `v1` or `v1beta1` (others are passed
    /// over); no `as=` at all is the object itself.
    pub(crate) fn of(accept: &str) -> Self {
        for clause in accept.split(',') {
            let (mut kind, mut group, mut version) = (None, None, None);
            for (name, value) in clause
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().split_once('='))
            {
                match name {
                    "as" => kind = Some(value),
                    "g" => group = Some(value),
                    "v" => version = Some(value),
                    _ => {}
                }
            }
            let Some(kind) = kind else {
                return Shape::Object;
            };
            if kind == "Table" {
                return Shape::Table;
            }
            let api_version = match (group, version) {
                (Some("meta.k8s.io"), Some("v1")) => META_V1,
                (Some("meta.k8s.io"), Some("v1beta1")) => "meta.k8s.io/v1beta1",
                _ => continue,
            };
            match kind {
                "PartialObjectMetadata" => {
                    return Shape::Metadata {
                        list: false,
                        api_version,
                    };
                }
                "PartialObjectMetadataList" => {
                    return Shape::Metadata {
                        list: true,
                        api_version,
                    };
                }
                _ => continue,
            }
        }
        Shape::Object
    }

    /// A metadata form that does not fit what was asked for (kube-apiserver's 406s).
    fn check(self, list: bool) -> Result<Self, ApiError> {
        match self {
            Shape::Metadata { list: false, .. } if list => Err(ApiError::not_acceptable_because(
                "you requested PartialObjectMetadata, but the requested object is a list",
            )),
            Shape::Metadata { list: true, .. } if !list => Err(ApiError::not_acceptable_because(
                "you requested PartialObjectMetadataList, but the requested object is not a list",
            )),
            shape => Ok(shape),
        }
    }
}

/// An object as kube-apiserver gives it to a metadata client: its metadata alone, as a
/// `PartialObjectMetadata` of `api_version`.
pub(crate) fn metadata_only(object: &Value, api_version: &str) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": api_version,
        "metadata": object["metadata"],
    })
}

/// `object` in `resource`'s group and version (unchanged when already there).
pub(crate) fn to_version(resource: &Resource, object: Value) -> Value {
    if object["apiVersion"].as_str() == Some(resource.api_version().as_str()) {
        object
    } else {
        rkube_api::conversion::convert(&object, &resource.group, &resource.version)
    }
}

/// Serves a request on a resource path.
pub async fn serve(
    state: Arc<State>,
    user: User,
    path: ResourcePath,
    req: Request<Bytes>,
) -> Result<Response<Body>, ApiError> {
    let resource = state
        .resource(&path.group, &path.version, &path.plural)
        .ok_or_else(ApiError::no_route)?;
    if path.namespace.is_some() && !resource.namespaced {
        return Err(ApiError::no_route());
    }
    let (parts, body) = req.into_parts();
    let query = http_util::query(parts.uri.query());
    let is_watch = query.get("watch").is_some_and(|w| w == "true" || w == "1") || path.legacy_watch;
    let validation = FieldValidation::from_query(query.get("fieldValidation").map(String::as_str))?;
    let storage = state.storage_of(&resource);
    let call = Call {
        state: &state,
        resource,
        storage,
        path,
        query,
        user,
        validation,
        warnings: std::sync::Mutex::new(Vec::new()),
    };
    let mut response = dispatch(&call, parts, body, is_watch).await?;
    let warnings = call.warnings.lock().map(|w| w.clone()).unwrap_or_default();
    for warning in warnings {
        let text = format!(
            "299 - \"{}\"",
            warning.replace('\\', "\\\\").replace('"', "\\\"")
        );
        if let Ok(value) = http::HeaderValue::from_str(&text) {
            response.headers_mut().append(http::header::WARNING, value);
        }
    }
    Ok(response)
}

async fn dispatch(
    call: &Call<'_>,
    parts: http::request::Parts,
    body: Bytes,
    is_watch: bool,
) -> Result<Response<Body>, ApiError> {
    let state = call.state;
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let shape = Shape::of(&accept);
    let content_type = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let method = parts.method.clone();

    if let Some(sub) = call.path.subresource.clone() {
        return subresource(call, &method, &sub, body, &content_type).await;
    }
    if !call.resource.stored {
        return match method {
            Method::POST => review(call, body, &content_type).await,
            _ => Err(ApiError::method_not_allowed(method.as_str())),
        };
    }
    match (method, call.path.name.is_some()) {
        (Method::GET, false) if is_watch => {
            let shape = shape.check(false)?;
            watch::serve(
                state,
                (&call.resource, &call.storage),
                call.namespace(),
                &call.query,
                shape,
            )
            .await
        }
        (Method::GET, true) if is_watch => {
            let shape = shape.check(false)?;
            let mut query = call.query.clone();
            query.insert(
                "fieldSelector".into(),
                format!("metadata.name={}", call.name()),
            );
            watch::serve(
                state,
                (&call.resource, &call.storage),
                call.namespace(),
                &query,
                shape,
            )
            .await
        }
        (Method::GET, false) => {
            let shape = shape.check(true)?;
            let result = list(call).await?;
            if shape == Shape::Table {
                let items: Vec<&Value> = result.items.iter().map(|c| &c.value).collect();
                Ok(http_util::json(
                    200,
                    &table::list_table(
                        (&call.resource, &call.storage),
                        &items,
                        &result.metadata(),
                        &call.query,
                    ),
                ))
            } else if let Shape::Metadata { api_version, .. } = shape {
                let items: Vec<Value> = result
                    .items
                    .iter()
                    .map(|c| metadata_only(&c.value, api_version))
                    .collect();
                Ok(http_util::json(
                    200,
                    &json!({
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": api_version,
                        "metadata": result.metadata(),
                        "items": items,
                    }),
                ))
            } else {
                let mut response = Response::new(http_util::full(result.to_bytes(call)));
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                Ok(response)
            }
        }
        (Method::GET, true) => {
            let shape = shape.check(false)?;
            let object = get(call).await?;
            if let Shape::Metadata { api_version, .. } = shape {
                return Ok(http_util::json(200, &metadata_only(&object, api_version)));
            }
            if shape == Shape::Table {
                let meta = json!({"resourceVersion": object["metadata"]["resourceVersion"]});
                Ok(http_util::json(
                    200,
                    &table::list_table(
                        (&call.resource, &call.storage),
                        &[&object],
                        &meta,
                        &call.query,
                    ),
                ))
            } else {
                Ok(http_util::json(200, &call.output(object)))
            }
        }
        (Method::POST, false) => {
            let object = parse_body(&body.clone(), &content_type)?;
            let created = create(call, object).await?;
            Ok(http_util::json(201, &call.output(created)))
        }
        (Method::PUT, true) => {
            let object = parse_body(&body.clone(), &content_type)?;
            let updated = update(call, object, Part::Main).await?;
            Ok(http_util::json(200, &call.output(updated)))
        }
        (Method::PATCH, true) => {
            let bytes = body.clone();
            let patched = patch(call, &bytes, &content_type, Part::Main).await?;
            Ok(http_util::json(200, &call.output(patched)))
        }
        (Method::DELETE, true) => {
            let bytes = delete_body(body, &content_type)?;
            let options = DeleteOptions::parse(&bytes, &call.query)?;
            let (code, object) = delete(call, call.name(), &options).await?;
            Ok(http_util::json(code, &call.output(object)))
        }
        (Method::DELETE, false) => {
            let bytes = delete_body(body, &content_type)?;
            let options = DeleteOptions::parse(&bytes, &call.query)?;
            delete_collection(call, &options).await
        }
        (method, _) => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

/// Which part of an object a write may change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Everything but status (for resources with a status subresource).
    Main,
    /// Only status.
    Status,
    /// Only a namespace's `spec.finalizers` (namespaces/finalize).
    Finalize,
}

async fn subresource(
    call: &Call<'_>,
    method: &Method,
    sub: &str,
    body: Bytes,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let Some(info) = call.resource.subresource(sub).copied() else {
        return Err(ApiError::no_route());
    };
    match (info.kind, method.clone()) {
        (SubresourceKind::Status, Method::GET) => {
            Ok(http_util::json(200, &call.output(get(call).await?)))
        }
        (SubresourceKind::Status, Method::PUT) => {
            let object = parse_body(&body.clone(), content_type)?;
            let updated = update(call, object, Part::Status).await?;
            Ok(http_util::json(200, &call.output(updated)))
        }
        (SubresourceKind::Status, Method::PATCH) => {
            let bytes = body.clone();
            let patched = patch(call, &bytes, content_type, Part::Status).await?;
            Ok(http_util::json(200, &call.output(patched)))
        }
        (SubresourceKind::Scale, Method::GET) => Ok(http_util::json(
            200,
            &scale_of(&call.resource, &get(call).await?),
        )),
        (SubresourceKind::Scale, Method::PUT | Method::PATCH) => {
            let bytes = body.clone();
            scale(call, method, &bytes, content_type).await
        }
        (SubresourceKind::Action, Method::POST) if sub == "binding" => {
            let binding = parse_body(&body.clone(), content_type)?;
            bind(call, &binding).await
        }
        (SubresourceKind::Action, Method::PUT) if sub == "finalize" => {
            let object = parse_body(&body.clone(), content_type)?;
            Ok(http_util::json(
                200,
                &update(call, object, Part::Finalize).await?,
            ))
        }
        (SubresourceKind::Action, Method::POST) if sub == "eviction" => {
            let eviction = parse_body(&body.clone(), content_type)?;
            evict(call, &eviction).await
        }
        (SubresourceKind::Action, Method::POST) if sub == "token" => {
            let request = parse_body(&body.clone(), content_type)?;
            token_request(call, request).await
        }
        _ => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

/// Parses a request body: JSON, YAML, or Kubernetes protobuf (decoded into the JSON a JSON
/// client would have sent, `rkube_api::protobuf`).
fn parse_body(bytes: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let malformed = |e: String| {
        ApiError::bad_request(format!(
            "the object provided is unrecognized or malformed: {e}"
        ))
    };
    let value: Value = match media {
        "application/json" | "*/*" | "" => {
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?
        }
        // serde_yaml refuses alias expansion past a repetition limit and deep nesting, so
        // a "billion laughs" body is an error, not an out-of-memory.
        "application/yaml" => {
            serde_yaml::from_slice(bytes).map_err(|e| malformed(e.to_string()))?
        }
        protobuf::MEDIA_TYPE => protobuf::decode(bytes).map_err(|e| malformed(e.to_string()))?,
        _ => return Err(ApiError::unsupported_media(content_type)),
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    Ok(value)
}

/// A DELETE body as JSON: client-go sends DeleteOptions as protobuf when it speaks protobuf
/// (`kubectl drain`).
fn delete_body(body: Bytes, content_type: &str) -> Result<Bytes, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media != protobuf::MEDIA_TYPE || body.is_empty() {
        return Ok(body);
    }
    let options = parse_body(&body, content_type)?;
    Ok(Bytes::from(
        serde_json::to_vec(&options).unwrap_or_default(),
    ))
}

pub(crate) fn to_bytes(object: &Value) -> Bytes {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&object).unwrap_or_default())
}

/// An object read from the store, with its resourceVersion.
pub(crate) fn from_kv(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    set_resource_version(&mut object, kv.mod_revision);
    Ok(object)
}

pub(crate) fn set_resource_version(object: &mut Value, revision: Revision) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
    }
}

fn meta_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    // The line above made sure metadata is an object.
    match object.get_mut("metadata").and_then(Value::as_object_mut) {
        Some(meta) => meta,
        None => unreachable!("metadata was just made an object"),
    }
}

pub(crate) fn random_suffix(n: usize) -> String {
    use rand::Rng;
    // kube-apiserver's alphabet: no vowels, no confusable characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Whether objects of this resource carry `metadata.generation`.
fn has_generation(resource: &Resource, object: &Value) -> bool {
    if resource.custom.is_some() {
        return true;
    }
    object.get("spec").is_some()
        && !matches!(
            resource.plural.as_str(),
            "namespaces"
                | "nodes"
                | "pods"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "services"
        )
}

/// Sets what the server owns on a new object: uid, creation time, generation, defaults.
pub(crate) fn prepare_new(resource: &Resource, object: &mut Value) {
    let generation = has_generation(resource, object);
    let meta = meta_mut(object);
    meta.insert("uid".into(), json!(crate::pki::new_uuid()));
    meta.insert("creationTimestamp".into(), json!(time_util::now()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    meta.remove("deletionGracePeriodSeconds");
    meta.remove("selfLink");
    if generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if resource.group == "batch" && resource.kind == "Job" {
        generate_job_selector(object);
    }
    if resource.plural == "namespaces" && resource.group.is_empty() {
        object["spec"] = json!({"finalizers": ["kubernetes"]});
        object["status"] = json!({"phase": "Active"});
        let name = object["metadata"]["name"].clone();
        let labels = meta_mut(object)
            .entry("labels")
            .or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), name);
        }
    } else if resource.has_status() {
        // Status is the controllers' to write; a create starts it empty.
        if let Some(o) = object.as_object_mut() {
            o.remove("status");
        }
        // A pod starts Pending with its QoS class (kube's pod strategy, PrepareForCreate).
        if resource.group.is_empty() && resource.plural == "pods" {
            let qos = rkube_api::pods::qos_class(&object["spec"]);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        // Volumes and claims start Pending (kube's defaults for an empty phase).
        if resource.group.is_empty()
            && matches!(
                resource.plural.as_str(),
                "persistentvolumes" | "persistentvolumeclaims"
            )
        {
            object["status"] = json!({"phase": "Pending"});
        }
    }
}

/// A Job's selector and pod labels, as kube-apiserver's Job strategy generates them from
/// the Job's uid (unless `spec.manualSelector` is true).
fn generate_job_selector(job: &mut Value) {
    if job["spec"]["manualSelector"] == true {
        return;
    }
    let uid = job["metadata"]["uid"].clone();
    let name = job["metadata"]["name"].clone();
    if !job["spec"].is_object() {
        return;
    }
    job["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
    let template = &mut job["spec"]["template"];
    if !template.is_object() {
        return;
    }
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    let labels = &mut template["metadata"]["labels"];
    labels["batch.kubernetes.io/controller-uid"] = uid.clone();
    labels["batch.kubernetes.io/job-name"] = name.clone();
    labels["controller-uid"] = uid;
    labels["job-name"] = name;
}

fn check_type(resource: &Resource, object: &mut Value) -> Result<(), ApiError> {
    let api_version = resource.api_version();
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind.is_empty() {
        object["kind"] = json!(resource.kind);
    } else if kind != resource.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            resource.kind
        )));
    }
    let given = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if given.is_empty() {
        object["apiVersion"] = json!(api_version);
    } else if given != api_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({given}) does not match the expected API version ({api_version})"
        )));
    }
    Ok(())
}

/// Validates an object in its stored form (as kube validates its internal type); `request`
/// is the resource the client wrote through, which Event validation depends on.
fn validate(
    resource: &Resource,
    request: &Resource,
    object: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if resource.kind == "CustomResourceDefinition" {
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let spec = &object["spec"];
        let plural = spec["names"]["plural"].as_str().unwrap_or("");
        let group = spec["group"].as_str().unwrap_or("");
        let mut errors = Vec::new();
        if name != format!("{plural}.{group}") {
            errors.push(validation::FieldError::invalid(
                "metadata.name",
                name,
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        let versions = spec["versions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if versions.is_empty() {
            errors.push(validation::FieldError::required(
                "spec.versions",
                "must have exactly one version marked as storage version",
            ));
        } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
            errors.push(validation::FieldError::invalid(
                "spec.versions",
                "",
                "must have exactly one version marked as storage version",
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            if let Some(schema) = v["schema"].get("openAPIV3Schema") {
                errors.extend(rkube_api::schema::check_structural(
                    schema,
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::from_field_errors(
                &resource.group,
                &resource.kind,
                name,
                &errors,
            ));
        }
    }
    let name_rule: fn(&str) -> Vec<String> = match resource.plural.as_str() {
        "namespaces" | "services" => validation::is_dns1123_label,
        // kube's ValidateRBACName: `system:node` and the like.
        _ if resource.group == crate::rbac::GROUP => validate_types::is_valid_path_segment_name,
        _ => validation::is_dns1123_subdomain,
    };
    let meta = object.get("metadata").cloned().unwrap_or(Value::Null);
    let mut errors = validation::validate_object_meta(&meta, resource.namespaced, name_rule);
    let (g, v, k) = (&resource.group, &resource.version, &resource.kind);
    errors.extend(match old {
        None => validate_types::validate_create(g, v, k, object),
        Some(old) => validate_types::validate_update(g, v, k, object, old),
    });
    if g.is_empty() && k == "Event" {
        errors.extend(validate_types::validate_event(
            object,
            old,
            &request.group,
            &request.version,
        ));
    }
    if errors.is_empty() {
        return Ok(());
    }
    let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
    Err(ApiError::from_field_errors(
        &resource.group,
        &resource.kind,
        name,
        &errors,
    ))
}

async fn check_namespace(call: &Call<'_>, namespace: &str) -> Result<(), ApiError> {
    let key = format!("/registry/core/namespaces/{namespace}");
    // From the watch cache, as kube's NamespaceLifecycle admission reads its informer; a
    // namespace the cache does not have yet (created a moment ago) is read from the store.
    let read;
    let ns = match call.state.cacher.get(&key) {
        Some(cached) => {
            read = cached;
            &read.value
        }
        None => match call.state.store.get(&key).await? {
            None => return Err(ApiError::not_found("", "namespaces", namespace)),
            Some(kv) => &from_kv(&kv)?,
        },
    };
    if ns["status"]["phase"] == "Terminating" {
        return Err(ApiError::forbidden(
            &call.resource.group,
            &call.resource.plural,
            ns["metadata"]["name"].as_str().unwrap_or(namespace),
            format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                call.resource.plural, "",
            ),
        ));
    }
    Ok(())
}

async fn get(call: &Call<'_>) -> Result<Value, ApiError> {
    let kv = call
        .state
        .store
        .get(&call.key(call.name()))
        .await
        .map_err(|e| call.store_error(e, call.name()))?
        .ok_or_else(|| call.not_found())?;
    from_kv(&kv)
}

impl Call<'_> {
    /// Decodes the object against its built-in type, keeping the warnings for the answer.
    fn check_typed(&self, object: &mut Value) -> Result<(), ApiError> {
        let r = &self.resource;
        if let Some(schema) = r.custom.as_ref().and_then(|c| c.schema.as_ref()) {
            return self.check_custom(object, schema);
        }
        let warnings = typed::check(&r.group, &r.version, &r.kind, object, self.validation)?;
        rkube_api::defaults::apply_defaults(&r.group, &r.version, &r.kind, object);
        if let Ok(mut w) = self.warnings.lock() {
            w.extend(warnings);
        }
        Ok(())
    }
}

impl Call<'_> {
    /// A custom object against its CRD's structural schema: unknown fields pruned (per
    /// fieldValidation), defaults applied, then validated.
    fn check_custom(&self, object: &mut Value, schema: &Value) -> Result<(), ApiError> {
        let r = &self.resource;
        let unknown = rkube_api::schema::prune(object, schema);
        if !unknown.is_empty() {
            let described: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            match self.validation {
                FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                        described.join(", "),
                        kind = r.kind,
                        version = r.version,
                    )));
                }
                FieldValidation::Warn => {
                    if let Ok(mut w) = self.warnings.lock() {
                        w.extend(described);
                    }
                }
                FieldValidation::Ignore => {}
            }
        }
        rkube_api::schema::apply_defaults(object, schema);
        let errors = rkube_api::schema::validate(object, schema);
        if errors.is_empty() {
            return Ok(());
        }
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        Err(ApiError::from_field_errors(
            &r.group, &r.kind, name, &errors,
        ))
    }
}

/// Creates an object; returns it in its stored form.
async fn create(call: &Call<'_>, mut object: Value) -> Result<Value, ApiError> {
    // Decoded and defaulted in the request's version, then kept in the stored one.
    check_type(&call.resource, &mut object)?;
    call.check_typed(&mut object)?;
    let mut object = call.to_storage(object);
    let namespace = call.namespace().map(str::to_owned);
    {
        let meta = meta_mut(&mut object);
        if let Some(ns) = &namespace {
            match meta.get("namespace").and_then(Value::as_str) {
                Some(given) if !given.is_empty() && given != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {
                    meta.insert("namespace".into(), json!(ns));
                }
            }
        } else if call.resource.namespaced {
            return Err(ApiError::no_route());
        } else {
            meta.remove("namespace");
        }
        let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty()
            && let Some(prefix) = meta.get("generateName").and_then(Value::as_str)
            && !prefix.is_empty()
        {
            let name = format!("{prefix}{}", random_suffix(5));
            meta.insert("name".into(), json!(name));
        }
    }
    if call.resource.group.is_empty() && call.resource.plural == "pods" {
        crate::admission::admit_pod(call.state, &call.state.admission, &mut object).await?;
    }
    if call.resource.group == "certificates.k8s.io" {
        // kube's CSR strategy: who asked is the authenticated user, whatever the body says.
        let spec = &mut object["spec"];
        if spec.is_object() {
            let info = call.user.info();
            if let Some(spec) = spec.as_object_mut() {
                spec.remove("uid");
                spec.remove("extra");
                // UserInfo's fields are the spec's: username, uid, groups, extra.
                for (field, value) in info.as_object().into_iter().flatten() {
                    spec.insert(field.clone(), value.clone());
                }
            }
        }
    }
    if call.resource.group.is_empty() && call.resource.plural == "persistentvolumeclaims" {
        crate::admission::default_storage_class(call.state, &mut object).await?;
    }
    // As kube-apiserver's BeforeCreate: the strategy's PrepareForCreate (uid, a Job's
    // generated selector, status reset) runs before validation.
    prepare_new(&call.storage, &mut object);
    drop_empty_metadata(&mut object);
    if !is_service(&call.resource) {
        return finish_create(call, namespace.as_deref(), object).await;
    }
    // The Service registry allocates before validation (kube's BeginCreate), and frees what
    // it took unless the Service is stored.
    let net = &call.state.services;
    let txn = services::strategy::begin_create(net, &mut object, call.dry_run()).await?;
    let result = finish_create(call, namespace.as_deref(), object).await;
    match &result {
        Ok(_) => txn.commit(net).await,
        Err(_) => txn.revert(net).await,
    }
    result
}

fn is_service(resource: &Resource) -> bool {
    resource.group.is_empty() && resource.plural == "services"
}

/// Validation and the store write of a create.
async fn finish_create(
    call: &Call<'_>,
    namespace: Option<&str>,
    mut object: Value,
) -> Result<Value, ApiError> {
    validate(&call.storage, &call.resource, &object, None)?;
    if let Some(ns) = namespace {
        check_namespace(call, ns).await?;
    }
    if call.resource.group == crate::rbac::GROUP {
        crate::rbac::check_grant(
            call.state,
            &call.user,
            &call.resource.plural,
            namespace,
            &object,
        )?;
    }
    let name = object["metadata"]["name"].as_str().unwrap_or("").to_owned();
    if call.dry_run() {
        return Ok(object);
    }
    let kv = call
        .state
        .store
        .create(&call.key(&name), to_bytes(&object))
        .await
        .map_err(|e| call.store_error(e, &name))?;
    set_resource_version(&mut object, kv.mod_revision);
    Ok(object)
}

/// A request the API server makes of itself (kube's loopback client), as `system:apiserver`.
fn internal_call<'a>(
    state: &'a State,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Call<'a>, ApiError> {
    let resource = state
        .resource(group, version, plural)
        .ok_or_else(ApiError::no_route)?;
    Ok(Call {
        storage: state.storage_of(&resource),
        state,
        path: ResourcePath {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: None,
            legacy_watch: false,
        },
        resource,
        query: HashMap::new(),
        user: User {
            name: "system:apiserver".to_owned(),
            groups: vec![
                "system:masters".to_owned(),
                "system:authenticated".to_owned(),
            ],
            ..User::default()
        },
        validation: FieldValidation::Strict,
        warnings: std::sync::Mutex::new(Vec::new()),
    })
}

/// Reads an object as the API server itself; `None` when it does not exist.
pub(crate) async fn get_internal_in(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let call = internal_call(state, group, version, plural, namespace, Some(name))?;
    match get(&call).await {
        Ok(object) => Ok(Some(object)),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Creates an object as the API server itself, through the same path as a client's.
pub(crate) async fn create_internal_in(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    object: Value,
) -> Result<Value, ApiError> {
    let call = internal_call(state, group, version, plural, namespace, None)?;
    create(&call, object).await
}

/// Updates an object (which carries the resourceVersion it was read at) as the API server
/// itself.
pub(crate) async fn update_internal_in(
    state: &State,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
    object: Value,
) -> Result<Value, ApiError> {
    let call = internal_call(state, group, version, plural, namespace, Some(name))?;
    update(&call, object, Part::Main).await
}

/// [`get_internal_in`] for the core group.
pub(crate) async fn get_internal(
    state: &State,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    get_internal_in(state, "", "v1", plural, namespace, name).await
}

/// [`create_internal_in`] for the core group.
pub(crate) async fn create_internal(
    state: &State,
    plural: &str,
    namespace: Option<&str>,
    object: Value,
) -> Result<Value, ApiError> {
    create_internal_in(state, "", "v1", plural, namespace, object).await
}

/// [`update_internal_in`] for the core group.
pub(crate) async fn update_internal(
    state: &State,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
    object: Value,
) -> Result<Value, ApiError> {
    update_internal_in(state, "", "v1", plural, namespace, name, object).await
}

/// Empty metadata lists and maps are not kept, as kube-apiserver's encoding omits them
/// (`ownerReferences: []` after the last owner is released reads back as absent).
fn drop_empty_metadata(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in [
            "ownerReferences",
            "finalizers",
            "labels",
            "annotations",
            "managedFields",
        ] {
            let empty = match meta.get(field) {
                Some(Value::Array(a)) => a.is_empty(),
                Some(Value::Object(o)) => o.is_empty(),
                Some(Value::Null) => true,
                _ => false,
            };
            if empty {
                meta.remove(field);
            }
        }
    }
}

/// Carries the server-owned fields of `old` into `new`, per the part being written.
fn merge_for_update(resource: &Resource, old: &Value, new: &mut Value, part: Part) {
    let is_namespace = resource.group.is_empty() && resource.plural == "namespaces";
    if part == Part::Finalize {
        let finalizers = new["spec"]["finalizers"].clone();
        *new = old.clone();
        if finalizers.is_null() {
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        } else {
            new["spec"]["finalizers"] = finalizers;
        }
        return;
    }
    if is_namespace {
        // spec.finalizers change only through namespaces/finalize.
        match old["spec"].get("finalizers") {
            Some(f) => new["spec"]["finalizers"] = f.clone(),
            None => {
                if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("finalizers");
                }
            }
        }
    }
    if part == Part::Status {
        // Only status changes; everything else is the old object's.
        let status = new.get("status").cloned();
        let mut merged = old.clone();
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(o) = merged.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        *new = merged;
        return;
    }
    if resource.has_status() {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    let old_meta = &old["metadata"];
    let generation_tracked = old_meta.get("generation").is_some();
    let spec_changed = old.get("spec") != new.get("spec");
    let meta = meta_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "name",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    if generation_tracked {
        let g = old_meta["generation"].as_i64().unwrap_or(1);
        meta.insert(
            "generation".into(),
            json!(if spec_changed { g + 1 } else { g }),
        );
    }
}

async fn update(call: &Call<'_>, mut object: Value, part: Part) -> Result<Value, ApiError> {
    check_type(&call.resource, &mut object)?;
    let name = call.name().to_owned();
    let given_name = object["metadata"]["name"].as_str().unwrap_or("");
    if given_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given_name}) does not match the name on the URL ({name})"
        )));
    }
    if let Some(ns) = call.namespace() {
        let given = object["metadata"]["namespace"].as_str().unwrap_or("");
        if !given.is_empty() && given != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let Some(given_rv) = object["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
    else {
        return Err(ApiError::invalid(
            &call.resource.group,
            &call.resource.kind,
            &name,
            format!(
                "{} \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                call.resource.kind
            ),
            vec![
                json!({"reason": "FieldValueInvalid", "message": "Invalid value: 0x0: must be specified for an update", "field": "metadata.resourceVersion"}),
            ],
        ));
    };
    let expected: Revision = given_rv
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {given_rv:?}")))?;
    let key = call.key(&name);
    // The watch cache's copy is the old object when it is the version the request names
    // (a revision is one write's): kube's GuaranteedUpdate starts from the cacher's object
    // too. A store that has moved on refuses the write; an update that changes nothing,
    // or fails, is that answer only while the version named is still the store's current
    // one (kube's GuaranteedUpdate checks a cached state's error against the store too).
    if let Some(cached) = call
        .state
        .cacher
        .get(&key)
        .filter(|c| c.revision == expected)
        && may_update_from_cache(call)
    {
        let result = write_update(call, &name, &cached.value, object, part, expected).await;
        let wrote = matches!(&result, Ok(written) if revision_of(written) != Some(expected));
        if !wrote {
            match call.state.store.get(&key).await? {
                None => return Err(call.not_found()),
                Some(kv) if kv.mod_revision != expected => {
                    return Err(ApiError::conflict(
                        &call.resource.group,
                        &call.resource.plural,
                        &name,
                        ApiError::MODIFIED,
                    ));
                }
                Some(_) => {}
            }
        }
        return result;
    }
    let kv = call
        .state
        .store
        .get(&key)
        .await?
        .ok_or_else(|| call.not_found())?;
    if kv.mod_revision != expected {
        return Err(ApiError::conflict(
            &call.resource.group,
            &call.resource.plural,
            &name,
            ApiError::MODIFIED,
        ));
    }
    let old = from_kv(&kv)?;
    write_update(call, &name, &old, object, part, kv.mod_revision).await
}

/// The revision an answer's object was written at (its resourceVersion).
fn revision_of(object: &Value) -> Option<Revision> {
    object["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

/// The object an update starts from and the revision it was read at: on a first try the
/// watch cache's copy (kube's GuaranteedUpdate starts from the cacher's object), which may
/// trail the store, so `true` says an answer from it must be confirmed (see `patch`);
/// otherwise, or when the cache does not have it, the store's.
async fn read_for_update(
    call: &Call<'_>,
    key: &str,
    from_cache: bool,
) -> Result<(Value, Revision, bool), ApiError> {
    if from_cache
        && may_update_from_cache(call)
        && let Some(cached) = call.state.cacher.get(key)
    {
        return Ok((cached.value.clone(), cached.revision, true));
    }
    let kv = call
        .state
        .store
        .get(key)
        .await?
        .ok_or_else(|| call.not_found())?;
    Ok((from_kv(&kv)?, kv.mod_revision, false))
}

/// Whether an update may start from the watch cache's copy: not a dry run, whose answer
/// must be the store's, nor a Service, whose allocations depend on the store's.
fn may_update_from_cache(call: &Call<'_>) -> bool {
    !call.dry_run() && !is_service(&call.resource)
}

/// `old` with the patch applied, as the request's version shows it, decoded as its type.
fn patched(
    call: &Call<'_>,
    old: &Value,
    bytes: &Bytes,
    kind: PatchType,
) -> Result<Value, ApiError> {
    let view = call.output(old.clone());
    let mut new =
        apply_patch(&view, bytes, kind, &builtin_list_strategy).map_err(ApiError::from_patch)?;
    if !new.is_object() {
        return Err(ApiError::bad_request("the patch did not produce an object"));
    }
    check_type(&call.resource, &mut new)?;
    Ok(new)
}

/// Writes `new` (in the request's version) over `old` (stored form, read at `revision`),
/// keeping what the server owns; returns the stored form.
async fn write_update(
    call: &Call<'_>,
    name: &str,
    old: &Value,
    mut new: Value,
    part: Part,
    revision: Revision,
) -> Result<Value, ApiError> {
    call.check_typed(&mut new)?;
    let mut new = call.to_storage(new);
    merge_for_update(&call.storage, old, &mut new, part);
    drop_empty_metadata(&mut new);
    if !is_service(&call.resource) || part != Part::Main {
        return finish_update(call, name, old, new, revision).await;
    }
    let net = &call.state.services;
    if deletion::should_delete_during_update(&call.storage, &new) {
        // The last finalizer went: the Service leaves the store and frees its addresses.
        let result = finish_update(call, name, old, new, revision).await;
        if result.is_ok() && !call.dry_run() {
            services::strategy::release_all(net, old).await;
        }
        return result;
    }
    let txn = services::strategy::begin_update(net, &mut new, old, call.dry_run()).await?;
    let result = finish_update(call, name, old, new, revision).await;
    match &result {
        Ok(_) => txn.commit(net).await,
        Err(_) => txn.revert(net).await,
    }
    result
}

/// Validation and the store write of an update.
async fn finish_update(
    call: &Call<'_>,
    name: &str,
    old: &Value,
    mut new: Value,
    revision: Revision,
) -> Result<Value, ApiError> {
    validate(&call.storage, &call.resource, &new, Some(old))?;
    if call.resource.group == crate::rbac::GROUP && !crate::rbac::only_gc_fields_differ(old, &new) {
        crate::rbac::check_grant(
            call.state,
            &call.user,
            &call.resource.plural,
            call.namespace(),
            &new,
        )?;
    }
    if call.dry_run() {
        set_resource_version(&mut new, revision);
        return Ok(new);
    }
    // An object being deleted goes once its last finalizer is removed.
    if deletion::should_delete_during_update(&call.storage, &new) {
        let kv = call
            .state
            .store
            .delete(&call.key(name), Some(revision))
            .await
            .map_err(|e| call.store_error(e, name))?;
        set_resource_version(&mut new, kv.mod_revision);
        return Ok(new);
    }
    if old_equal_ignoring_version(old, &new) {
        return Ok(old.clone());
    }
    let kv = call
        .state
        .store
        .update(&call.key(name), to_bytes(&new), revision)
        .await
        .map_err(|e| call.store_error(e, name))?;
    set_resource_version(&mut new, kv.mod_revision);
    Ok(new)
}

fn old_equal_ignoring_version(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(old) == strip(new)
}

async fn patch(
    call: &Call<'_>,
    bytes: &Bytes,
    content_type: &str,
    part: Part,
) -> Result<Value, ApiError> {
    let kind = PatchType::from_content_type(content_type)
        .ok_or_else(|| ApiError::unsupported_media(content_type))?;
    let name = call.name().to_owned();
    let key = call.key(&name);
    // Retried on a concurrent write, as kube-apiserver's GuaranteedUpdate does. The first
    // try starts from the watch cache; as that copy may trail the store, whatever it
    // leads to other than a write (an error, or a patch that changes nothing) is tried
    // again from the store, which has the last word.
    for attempt in 0..16 {
        let (old, revision, cached) = read_for_update(call, &key, attempt == 0).await?;
        // A patch that does not apply to a cached copy (a JSON patch's `test`, a `remove`
        // of what a newer version has) may apply to the store's.
        let new = match patched(call, &old, bytes, kind) {
            Ok(new) => new,
            Err(_) if cached => continue,
            Err(refused) => return Err(refused),
        };
        // A resourceVersion in the patch is a precondition.
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && rv != revision.to_string()
        {
            if cached {
                continue;
            }
            return Err(ApiError::conflict(
                &call.resource.group,
                &call.resource.plural,
                &name,
                ApiError::MODIFIED,
            ));
        }
        match write_update(call, &name, &old, new, part, revision).await {
            Err(_) if cached => continue,
            Ok(written) if cached && revision_of(&written) == Some(revision) => continue,
            Err(e) if e.reason == "Conflict" => continue,
            other => return other,
        }
    }
    Err(ApiError::conflict(
        &call.resource.group,
        &call.resource.plural,
        &name,
        "too many concurrent writes; try again",
    ))
}

async fn delete(
    call: &Call<'_>,
    name: &str,
    options: &DeleteOptions,
) -> Result<(u16, Value), ApiError> {
    let key = call.key(name);
    // Like kube's GuaranteedUpdate: a write that raced ours is read again and decided anew.
    for _ in 0..16 {
        let kv = call.state.store.get(&key).await?.ok_or_else(|| {
            ApiError::not_found(&call.resource.group, &call.resource.plural, name)
        })?;
        let mut object = from_kv(&kv)?;
        check_preconditions(call, name, options, &object, kv.mod_revision)?;
        if options.dry_run || call.dry_run() {
            return Ok((200, object));
        }
        if call.resource.kind == "CustomResourceDefinition"
            && object["metadata"].get("deletionTimestamp").is_none()
        {
            // Its objects are deleted first (crd.rs), then this finalizer goes.
            let finalizers = meta_mut(&mut object)
                .entry("finalizers")
                .or_insert_with(|| json!([]));
            if let Some(list) = finalizers.as_array_mut()
                && !list.iter().any(|f| f == crate::crd::CLEANUP_FINALIZER)
            {
                list.push(json!(crate::crd::CLEANUP_FINALIZER));
            }
        }
        let plan = deletion::plan(&call.storage, &mut object, options);
        let removed = plan == Plan::Delete;
        let result = match plan {
            Plan::Unchanged => return Ok((200, object)),
            // Marked for deletion; it goes when its finalizers and grace period are done.
            Plan::Mark => {
                call.state
                    .store
                    .update(&key, to_bytes(&object), kv.mod_revision)
                    .await
            }
            Plan::Delete => call.state.store.delete(&key, Some(kv.mod_revision)).await,
        };
        match result {
            Ok(written) => {
                if removed && is_service(&call.resource) {
                    // kube's afterDelete: the Service is gone, its addresses are free.
                    services::strategy::release_all(&call.state.services, &object).await;
                }
                set_resource_version(&mut object, written.mod_revision);
                return Ok((200, object));
            }
            Err(StoreError::Conflict { .. }) if options.resource_version.is_none() => continue,
            Err(e) => return Err(call.store_error(e, name)),
        }
    }
    Err(ApiError::conflict(
        &call.resource.group,
        &call.resource.plural,
        name,
        "too many concurrent writes; try again",
    ))
}

fn check_preconditions(
    call: &Call<'_>,
    name: &str,
    options: &DeleteOptions,
    object: &Value,
    revision: Revision,
) -> Result<(), ApiError> {
    let precondition_failed = |what: &str, want: &str, have: &str| {
        ApiError::conflict(
            &call.resource.group,
            &call.resource.plural,
            name,
            &format!(
                "Precondition failed: {what} in precondition: {want}, {what} in object meta: {have}"
            ),
        )
    };
    if let Some(uid) = &options.uid {
        let have = object["metadata"]["uid"].as_str().unwrap_or("");
        if uid != have {
            return Err(precondition_failed("UID", uid, have));
        }
    }
    if let Some(rv) = &options.resource_version
        && *rv != revision.to_string()
    {
        return Err(precondition_failed(
            "ResourceVersion",
            rv,
            &revision.to_string(),
        ));
    }
    Ok(())
}

async fn delete_collection(
    call: &Call<'_>,
    options: &DeleteOptions,
) -> Result<Response<Body>, ApiError> {
    let list = list(call).await?.to_value(call);
    let mut deleted = Vec::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let name = item["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let ns = item["metadata"]["namespace"].as_str().map(str::to_owned);
        let per_item = Call {
            state: call.state,
            resource: call.resource.clone(),
            storage: call.storage.clone(),
            path: ResourcePath {
                namespace: ns,
                name: Some(name.clone()),
                ..call.path.clone()
            },
            query: call.query.clone(),
            user: call.user.clone(),
            validation: call.validation,
            warnings: std::sync::Mutex::new(Vec::new()),
        };
        match delete(&per_item, &name, options).await {
            Ok((_, object)) => deleted.push(call.output(object)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(http_util::json(
        200,
        &json!({
            "kind": format!("{}List", call.resource.kind),
            "apiVersion": call.resource.api_version(),
            "metadata": {"resourceVersion": list["metadata"]["resourceVersion"]},
            "items": deleted,
        }),
    ))
}

/// The fields a field selector may use on this resource, and their values.
pub(crate) fn field_value(
    resource: &Resource,
    object: &Value,
    field: &str,
) -> Option<Option<String>> {
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let value = match (resource.plural.as_str(), field) {
        (_, "metadata.name") => s(&object["metadata"]["name"]),
        (_, "metadata.namespace") if resource.namespaced => s(&object["metadata"]["namespace"]),
        ("pods", "spec.nodeName") => s(&object["spec"]["nodeName"]),
        ("pods", "spec.schedulerName") => s(&object["spec"]["schedulerName"]),
        ("pods", "spec.serviceAccountName") => s(&object["spec"]["serviceAccountName"]),
        ("pods", "spec.hostNetwork") => Some(
            object["spec"]["hostNetwork"]
                .as_bool()
                .unwrap_or(false)
                .to_string(),
        ),
        ("pods", "status.phase") => s(&object["status"]["phase"]),
        ("pods", "status.podIP") => s(&object["status"]["podIP"]),
        ("pods", "status.nominatedNodeName") => s(&object["status"]["nominatedNodeName"]),
        ("nodes", "spec.unschedulable") => Some(
            object["spec"]["unschedulable"]
                .as_bool()
                .unwrap_or(false)
                .to_string(),
        ),
        ("namespaces", "status.phase") => s(&object["status"]["phase"]),
        ("secrets", "type") => s(&object["type"]),
        // kube's event field set: `source` is the source component, or the reporting
        // controller of a new-style event.
        ("events", "source") => match object["source"]["component"].as_str() {
            Some(c) if !c.is_empty() => Some(c.to_owned()),
            _ => s(&object["reportingComponent"]),
        },
        ("events", f) => {
            let mut v = &object[""];
            let mut cur = object;
            for part in f.split('.') {
                cur = &cur[part];
                v = cur;
            }
            if !f.starts_with("involvedObject.")
                && !matches!(f, "reason" | "source" | "type" | "reportingComponent")
            {
                return None;
            }
            s(v)
        }
        ("replicationcontrollers" | "replicasets", "status.replicas") => Some(
            object["status"]["replicas"]
                .as_i64()
                .unwrap_or(0)
                .to_string(),
        ),
        ("jobs", "status.successful") => Some(
            object["status"]["succeeded"]
                .as_i64()
                .unwrap_or(0)
                .to_string(),
        ),
        _ => return None,
    };
    Some(value)
}

/// Label and field selectors of a list or watch.
pub(crate) struct Filter {
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    pub(crate) fn from_query(
        resource: &Resource,
        query: &HashMap<String, String>,
    ) -> Result<Self, ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        let probe = json!({"metadata": {}});
        for field in fields.fields() {
            if field_value(resource, &probe, field).is_none() {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Self { labels, fields })
    }

    pub(crate) fn matches(&self, resource: &Resource, object: &Value) -> bool {
        let empty = Map::new();
        let labels = object["metadata"]["labels"].as_object().unwrap_or(&empty);
        self.labels.matches(labels)
            && self
                .fields
                .matches(&|f| field_value(resource, object, f).flatten())
    }
}

/// A list continue token: where the next page starts and the revision it reads at.
fn encode_continue(revision: Revision, last_key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": last_key}).to_string())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    use base64::Engine;
    let bad = || ApiError::bad_request("continue key is not valid: invalid continue token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        v["rv"].as_i64().ok_or_else(bad)?,
        v["start"].as_str().ok_or_else(bad)?.to_owned(),
    ))
}

/// Lists objects: selectors, paging with limit and continue, and resourceVersion semantics.
/// A LIST's answer.
pub(crate) struct ListResult {
    items: Vec<Arc<Cached>>,
    revision: Revision,
    continue_token: Option<String>,
}

impl ListResult {
    fn metadata(&self) -> Value {
        let mut metadata = json!({"resourceVersion": self.revision.to_string()});
        if let Some(token) = &self.continue_token {
            metadata["continue"] = json!(token);
        }
        metadata
    }

    /// The list as a JSON value, in the request's version.
    fn to_value(&self, call: &Call<'_>) -> Value {
        let resource = &call.resource;
        let items: Vec<Value> = self
            .items
            .iter()
            .map(|c| {
                let mut v = call.output(c.value.clone());
                if let Some(o) = v.as_object_mut() {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                v
            })
            .collect();
        json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": self.metadata(),
            "items": items,
        })
    }

    /// The list serialized, from the items' cached bytes (converted first when the request
    /// speaks another version than the stored one).
    fn to_bytes(&self, call: &Call<'_>) -> Bytes {
        let resource = &call.resource;
        if resource.converts() {
            return Bytes::from(serde_json::to_vec(&self.to_value(call)).unwrap_or_default());
        }
        let head = json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": self.metadata(),
        })
        .to_string();
        let size: usize = self.items.iter().map(|c| c.item().len() + 1).sum();
        let mut out = Vec::with_capacity(head.len() + size + 16);
        // `head` is a JSON object; reopen it to append the items.
        out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        out.extend_from_slice(b",\"items\":[");
        for (i, c) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(c.item());
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

/// How long a LIST waits for the watch cache to catch up before reading the store.
const CACHE_WAIT: Duration = Duration::from_secs(3);

/// Lists objects: selectors, paging with limit and continue, and resourceVersion
/// semantics. Served from the watch cache unless an exact or continued read needs history.
async fn list(call: &Call<'_>) -> Result<ListResult, ApiError> {
    let filter = Filter::from_query(&call.storage, &call.query)?;
    let limit: usize = match call.query.get("limit") {
        Some(l) if !l.is_empty() => l
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
            .max(0) as usize,
        _ => 0,
    };
    let prefix = call.resource.namespace_prefix(call.namespace());
    let keep = |v: &Value| filter.matches(&call.storage, v);
    let rv_param = call
        .query
        .get("resourceVersion")
        .map(String::as_str)
        .filter(|r| !r.is_empty());
    let (revision, start_after) = match call.query.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let (rv, start) = decode_continue(token)?;
            if !start.starts_with(&prefix) {
                return Err(ApiError::bad_request(
                    "continue key is not valid: the key is not in this list",
                ));
            }
            (rv, Some(start))
        }
        None => {
            let exact = match (
                rv_param,
                call.query.get("resourceVersionMatch").map(String::as_str),
            ) {
                (Some(rv), Some("Exact")) => Some(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
                (_, None) | (Some(_), Some("NotOlderThan")) => None,
                (None, Some(m)) => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch {m} is forbidden unless resourceVersion is provided"
                    )));
                }
                (_, Some(m)) => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch: Unsupported value: \"{m}\""
                    )));
                }
            };
            match exact {
                Some(rv) => (rv, None),
                None => {
                    // From the cache, once it is as new as the request needs.
                    let cacher = &call.state.cacher;
                    let fresh = match rv_param {
                        None => cacher.wait_until_current(CACHE_WAIT).await?,
                        Some("0") => true,
                        Some(rv) => {
                            let rv: Revision = rv.parse().map_err(|_| {
                                ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                            })?;
                            if !cacher.wait_for(rv, CACHE_WAIT).await {
                                return Err(ApiError::from(StoreError::FutureRevision {
                                    requested: rv,
                                    current: cacher.revision(),
                                }));
                            }
                            true
                        }
                    };
                    if fresh {
                        let page = cacher.page(
                            &call.resource.storage_prefix(),
                            &prefix,
                            None,
                            limit,
                            &keep,
                        );
                        let continue_token = match (page.more, &page.last_key) {
                            (true, Some(last)) => Some(encode_continue(page.revision, last)),
                            _ => None,
                        };
                        return Ok(ListResult {
                            items: page.items,
                            revision: page.revision,
                            continue_token,
                        });
                    }
                    (0, None)
                }
            }
        }
    };
    list_from_store(call, &prefix, revision, start_after, limit, &keep).await
}

/// A LIST read from the store (continued and exact reads, which need history).
async fn list_from_store(
    call: &Call<'_>,
    prefix: &str,
    mut revision: Revision,
    mut start_after: Option<String>,
    limit: usize,
    keep: &(dyn Fn(&Value) -> bool + Sync),
) -> Result<ListResult, ApiError> {
    let mut items = Vec::new();
    let mut more = false;
    let mut last_key = None;
    loop {
        let page = call
            .state
            .store
            .range(RangeRequest {
                prefix: prefix.to_owned(),
                start_after: start_after.clone(),
                limit: if limit == 0 {
                    0
                } else {
                    (limit - items.len()).max(1) * 2
                },
                revision,
            })
            .await
            .map_err(|e| match e {
                StoreError::Compacted {
                    requested,
                    compacted,
                } => ApiError::expired(requested, compacted)
                    .with_continue_hint(call.query.contains_key("continue")),
                other => ApiError::from(other),
            })?;
        revision = page.revision;
        let mut page_more = page.more;
        for kv in &page.kvs {
            if limit > 0 && items.len() == limit {
                page_more = true;
                break;
            }
            last_key = Some(kv.key.clone());
            let value: Value = serde_json::from_slice(&kv.value).map_err(|e| {
                ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key))
            })?;
            let cached = Cached::new(value, kv.mod_revision);
            if keep(&cached.value) {
                items.push(Arc::new(cached));
            }
        }
        if limit > 0 && items.len() == limit {
            more = page_more;
            break;
        }
        if !page.more {
            break;
        }
        start_after = last_key.clone();
    }
    let continue_token = match (more, &last_key) {
        (true, Some(last)) => Some(encode_continue(revision, last)),
        _ => None,
    };
    Ok(ListResult {
        items,
        revision,
        continue_token,
    })
}

impl ApiError {
    fn with_continue_hint(mut self, is_continue: bool) -> Self {
        if is_continue {
            self.message = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into();
        }
        self
    }
}

/// The autoscaling/v1 Scale of an object with `.spec.replicas`.
/// Where a resource keeps its replica counts: `.spec.replicas`, `.status.replicas` and the
/// selector for built-ins; what `subresources.scale` says for custom resources.
fn scale_paths(resource: &Resource) -> (String, String, Option<String>) {
    match resource.custom.as_ref().and_then(|c| c.scale.clone()) {
        Some(scale) => (
            scale["specReplicasPath"]
                .as_str()
                .unwrap_or(".spec.replicas")
                .to_owned(),
            scale["statusReplicasPath"]
                .as_str()
                .unwrap_or(".status.replicas")
                .to_owned(),
            scale["labelSelectorPath"].as_str().map(str::to_owned),
        ),
        None => (".spec.replicas".into(), ".status.replicas".into(), None),
    }
}

fn path_get<'a>(object: &'a Value, path: &str) -> &'a Value {
    path.trim_start_matches('.')
        .split('.')
        .fold(object, |cur, key| &cur[key])
}

fn path_set(object: &mut Value, path: &str, value: Value) {
    let mut cur = object;
    for key in path.trim_start_matches('.').split('.') {
        if !cur.is_object() {
            *cur = json!({});
        }
        cur = &mut cur[key];
    }
    *cur = value;
}

fn scale_of(resource: &Resource, object: &Value) -> Value {
    let (spec_path, status_path, selector_path) = scale_paths(resource);
    if resource.custom.is_some() {
        return json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": object["metadata"]["name"],
                "namespace": object["metadata"]["namespace"],
                "uid": object["metadata"]["uid"],
                "resourceVersion": object["metadata"]["resourceVersion"],
                "creationTimestamp": object["metadata"]["creationTimestamp"],
            },
            "spec": {"replicas": path_get(object, &spec_path).as_i64().unwrap_or(0)},
            "status": {
                "replicas": path_get(object, &status_path).as_i64().unwrap_or(0),
                "selector": selector_path.map(|p| path_get(object, &p).clone()).unwrap_or(json!("")),
            },
        });
    }
    let selector = object["spec"]["selector"]
        .get("matchLabels")
        .or_else(|| object["spec"].get("selector"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": object["metadata"]["name"],
            "namespace": object["metadata"]["namespace"],
            "uid": object["metadata"]["uid"],
            "resourceVersion": object["metadata"]["resourceVersion"],
            "creationTimestamp": object["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": object["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

async fn scale(
    call: &Call<'_>,
    method: &Method,
    bytes: &Bytes,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let name = call.name().to_owned();
    for _ in 0..16 {
        let kv = call
            .state
            .store
            .get(&call.key(&name))
            .await?
            .ok_or_else(|| call.not_found())?;
        let object = from_kv(&kv)?;
        let current = scale_of(&call.resource, &object);
        let wanted = if *method == Method::PUT {
            parse_body(bytes, content_type)?
        } else {
            let kind = PatchType::from_content_type(content_type)
                .ok_or_else(|| ApiError::unsupported_media(content_type))?;
            apply_patch(&current, bytes, kind, &|_| None).map_err(ApiError::from_patch)?
        };
        if let Some(rv) = wanted["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && rv != kv.mod_revision.to_string()
        {
            return Err(ApiError::conflict(
                &call.resource.group,
                &call.resource.plural,
                &name,
                ApiError::MODIFIED,
            ));
        }
        let Some(replicas) = wanted["spec"]["replicas"].as_i64() else {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Required value"),
                vec![
                    json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.replicas"}),
                ],
            ));
        };
        if replicas < 0 {
            return Err(ApiError::invalid(
                "autoscaling",
                "Scale",
                &name,
                format!(
                    "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                ),
                vec![
                    json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {replicas}: must be greater than or equal to 0"), "field": "spec.replicas"}),
                ],
            ));
        }
        let mut new = object.clone();
        path_set(&mut new, &scale_paths(&call.resource).0, json!(replicas));
        match write_update(call, &name, &object, new, Part::Main, kv.mod_revision).await {
            Err(e) if e.reason == "Conflict" => continue,
            Err(e) => return Err(e),
            Ok(updated) => return Ok(http_util::json(200, &scale_of(&call.resource, &updated))),
        }
    }
    Err(ApiError::conflict(
        &call.resource.group,
        &call.resource.plural,
        &name,
        "too many concurrent writes; try again",
    ))
}

/// `pods/binding`: sets spec.nodeName of an unscheduled pod, as the scheduler asks.
async fn bind(call: &Call<'_>, binding: &Value) -> Result<Response<Body>, ApiError> {
    let name = call.name().to_owned();
    let Some(node) = binding["target"]["name"].as_str().filter(|n| !n.is_empty()) else {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            format!("Binding \"{name}\" is invalid: target.name: Required value"),
            vec![
                json!({"reason": "FieldValueRequired", "message": "Required value", "field": "target.name"}),
            ],
        ));
    };
    if call.dry_run() {
        let old = get(call).await?;
        assignable(&name, &old)?;
        return Ok(bound_answer());
    }
    let key = call.key(&name);
    // From the watch cache first, as `patch`: a refusal from that copy, which may trail
    // the store, is checked against the store's.
    for attempt in 0..2 {
        let (old, revision, cached) = read_for_update(call, &key, attempt == 0).await?;
        if let Err(refused) = assignable(&name, &old) {
            if cached {
                continue;
            }
            return Err(refused);
        }
        let mut new = old;
        new["spec"]["nodeName"] = json!(node);
        let conditions = new["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut conditions: Vec<Value> = conditions
            .into_iter()
            .filter(|c| c["type"] != "PodScheduled")
            .collect();
        conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": time_util::now()}));
        new["status"]["conditions"] = json!(conditions);
        match call
            .state
            .store
            .update(&key, to_bytes(&new), revision)
            .await
        {
            Ok(_) => return Ok(bound_answer()),
            Err(_) if cached => continue,
            Err(e) => return Err(call.store_error(e, &name)),
        }
    }
    Err(ApiError::conflict(
        "",
        "pods",
        &name,
        "the pod changed while it was being bound; try again",
    ))
}

/// A pod can be bound while no node is assigned to it.
fn assignable(name: &str, pod: &Value) -> Result<(), ApiError> {
    match pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
        Some(existing) => Err(ApiError::conflict(
            "",
            "pods",
            name,
            &format!("pod {name} is already assigned to node \"{existing}\""),
        )),
        None => Ok(()),
    }
}

fn bound_answer() -> Response<Body> {
    http_util::json(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// `pods/eviction`: deletes the pod unless that would violate a PodDisruptionBudget
/// (`pkg/registry/core/pod/storage/eviction.go`): 429 while the budget allows no disruption
/// or has not been processed by its controller yet.
async fn evict(call: &Call<'_>, eviction: &Value) -> Result<Response<Body>, ApiError> {
    let name = call.name().to_owned();
    let namespace = call.namespace().unwrap_or("default").to_owned();
    let options_bytes = Bytes::from(to_bytes(&eviction["deleteOptions"]).to_vec());
    let options = if eviction["deleteOptions"].is_object() {
        DeleteOptions::parse(&options_bytes, &call.query)?
    } else {
        DeleteOptions::parse(&Bytes::new(), &call.query)?
    };
    let success = || {
        http_util::json(
            201,
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    };
    for _ in 0..16 {
        let pod = get(call).await?;
        let terminal = matches!(
            pod["status"]["phase"].as_str(),
            Some("Succeeded" | "Failed")
        );
        // A finished or already terminating pod needs no budget.
        if terminal || pod["metadata"].get("deletionTimestamp").is_some() {
            delete(call, &name, &options).await?;
            return Ok(success());
        }
        let Some(pdbs) = call.state.resource("policy", "v1", "poddisruptionbudgets") else {
            delete(call, &name, &options).await?;
            return Ok(success());
        };
        let listed = call
            .state
            .store
            .range(RangeRequest {
                prefix: pdbs.namespace_prefix(Some(&namespace)),
                ..RangeRequest::default()
            })
            .await?;
        let empty = Map::new();
        let labels = pod["metadata"]["labels"].as_object().unwrap_or(&empty);
        let mut matching = Vec::new();
        for kv in &listed.kvs {
            let pdb = from_kv(kv)?;
            let Ok(selector) = LabelSelector::from_label_selector_json(&pdb["spec"]["selector"])
            else {
                continue;
            };
            if !selector.is_empty() && selector.matches(labels) {
                matching.push((kv.mod_revision, pdb));
            }
        }
        let (revision, mut pdb) = match matching.len() {
            0 => {
                delete(call, &name, &options).await?;
                return Ok(success());
            }
            1 => matching.remove(0),
            _ => {
                return Err(ApiError::internal(
                    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                ));
            }
        };
        let pdb_name = pdb["metadata"]["name"].as_str().unwrap_or("").to_owned();
        let observed = pdb["status"]["observedGeneration"].as_i64().unwrap_or(0);
        let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(1);
        if observed < generation {
            return Err(ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                &format!(
                    "The disruption budget {pdb_name} is still being processed by the server."
                ),
            ));
        }
        let allowed = pdb["status"]["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed <= 0 {
            let healthy = pdb["status"]["currentHealthy"].as_i64().unwrap_or(0);
            let desired = pdb["status"]["desiredHealthy"].as_i64().unwrap_or(0);
            return Err(ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
                &format!(
                    "The disruption budget {pdb_name} needs {desired} healthy pods and has {healthy} currently"
                ),
            ));
        }
        if call.dry_run() || options.dry_run {
            return Ok(success());
        }
        // Spend one disruption, then delete; a racing eviction re-reads the budget.
        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
        pdb["status"]["disruptedPods"][&name] = json!(time_util::now());
        let key = pdbs.storage_key(Some(&namespace), &pdb_name);
        match call
            .state
            .store
            .update(&key, to_bytes(&pdb), revision)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => {
                return Err(ApiError::from_store(
                    e,
                    "policy",
                    "poddisruptionbudgets",
                    &pdb_name,
                ));
            }
        }
        delete(call, &name, &options).await?;
        return Ok(success());
    }
    Err(ApiError::conflict(
        "",
        "pods",
        &name,
        "too many concurrent evictions; try again",
    ))
}

/// `serviceaccounts/token`: a signed token for the service account (a TokenRequest).
async fn token_request(call: &Call<'_>, mut request: Value) -> Result<Response<Body>, ApiError> {
    let name = call.name().to_owned();
    let kind = request["kind"].as_str().unwrap_or("TokenRequest");
    if kind != "TokenRequest" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (TokenRequest)"
        )));
    }
    let account = get(call).await?;
    let expiration = request["spec"]["expirationSeconds"]
        .as_i64()
        .unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &name,
            format!(
                "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {expiration}: may not specify a duration less than 10 minutes"
            ),
            vec![
                json!({"reason": "FieldValueInvalid", "message": format!("Invalid value: {expiration}: may not specify a duration less than 10 minutes"), "field": "spec.expirationSeconds"}),
            ],
        ));
    }
    let expiration = expiration.min(48 * 3600);
    let audiences: Vec<String> = match request["spec"]["audiences"].as_array() {
        Some(a) if !a.is_empty() => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => vec![crate::sa_token::ISSUER.to_owned()],
    };
    let bound = match request["spec"]
        .get("boundObjectRef")
        .filter(|b| b.is_object())
    {
        Some(reference) => bound_objects(call, &name, reference).await?,
        None => BoundObjects::default(),
    };
    let (token, expires) = call
        .state
        .signer
        .issue(
            call.namespace().unwrap_or(""),
            &name,
            account["metadata"]["uid"].as_str().unwrap_or(""),
            &audiences,
            expiration,
            &bound,
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = time::OffsetDateTime::from_unix_timestamp(expires)
        .map(time_util::format)
        .unwrap_or_default();
    request["apiVersion"] = json!("authentication.k8s.io/v1");
    request["kind"] = json!("TokenRequest");
    request["metadata"] =
        json!({"name": name, "namespace": call.namespace(), "creationTimestamp": time_util::now()});
    request["spec"]["audiences"] = json!(audiences);
    request["spec"]["expirationSeconds"] = json!(expiration);
    request["status"] = json!({"token": token, "expirationTimestamp": expires});
    Ok(http_util::json(201, &request))
}

/// What a token for the service account `account` bound to `reference` names, as
/// kube-apiserver's TokenREST checks it: a Pod running as that account, a Secret or a Node,
/// which must exist (404) and, when the reference gives a uid, be that object still (409);
/// a pod's node comes along. Any other kind is 400.
async fn bound_objects(
    call: &Call<'_>,
    account: &str,
    reference: &Value,
) -> Result<BoundObjects, ApiError> {
    let api_version = reference["apiVersion"].as_str().unwrap_or("");
    let kind = reference["kind"].as_str().unwrap_or("");
    let name = reference["name"].as_str().unwrap_or("");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let read = |plural: &'static str, namespace: Option<&str>| {
        let call = internal_call(call.state, "", "v1", plural, namespace, Some(name));
        async move { get(&call?).await }
    };
    let mut bound = BoundObjects::default();
    let (slot, found) = match (group, kind) {
        ("", "Pod") => {
            let pod = read("pods", call.namespace()).await?;
            if pod["spec"]["serviceAccountName"].as_str().unwrap_or("") != account {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
                )));
            }
            if let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
                // A node that is gone is still named, without a uid, as kube does.
                let uid = get_internal(call.state, "nodes", None, node)
                    .await?
                    .and_then(|n| n["metadata"]["uid"].as_str().map(str::to_owned));
                bound.node = Some(BoundObject {
                    name: node.to_owned(),
                    uid: uid.unwrap_or_default(),
                });
            }
            (&mut bound.pod, pod)
        }
        ("", "Secret") => (&mut bound.secret, read("secrets", call.namespace()).await?),
        ("", "Node") => (&mut bound.node, read("nodes", None).await?),
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    let object = BoundObject {
        name: name.to_owned(),
        uid: found["metadata"]["uid"].as_str().unwrap_or("").to_owned(),
    };
    let wanted = reference["uid"].as_str().unwrap_or("");
    if !wanted.is_empty() && wanted != object.uid {
        return Err(ApiError::conflict(
            group,
            kind,
            name,
            &format!(
                "the UID in the bound object reference ({wanted}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    *slot = Some(object);
    Ok(bound)
}

/// Reviews: answered from the request, never stored.
async fn review(
    call: &Call<'_>,
    body: Bytes,
    content_type: &str,
) -> Result<Response<Body>, ApiError> {
    let mut object = parse_body(&body, content_type)?;
    check_type(&call.resource, &mut object)?;
    let user = &call.user;
    match call.resource.kind.as_str() {
        kind @ ("SelfSubjectAccessReview" | "SubjectAccessReview" | "LocalSubjectAccessReview") => {
            let spec = &object["spec"];
            let errors = review_spec_errors(kind, spec);
            if !errors.is_empty() {
                return Err(ApiError::from_field_errors(
                    "authorization.k8s.io",
                    kind,
                    "",
                    &errors,
                ));
            }
            let attributes = crate::rbac::review_attributes(spec);
            if let Some(ns) = call.path.namespace.as_deref() {
                // kube's LocalSubjectAccessReview: its namespace is the request's.
                if attributes.namespace != ns {
                    return Err(ApiError::bad_request(format!(
                        "spec.resourceAttributes.namespace must match namespace: {ns}"
                    )));
                }
            }
            let subject = if kind == "SelfSubjectAccessReview" {
                user.clone()
            } else {
                review_subject(spec)
            };
            let decision = crate::rbac::authorize(call.state, &subject, &attributes);
            object["status"] = crate::rbac::review_status(&decision);
        }
        "SelfSubjectRulesReview" => {
            let namespace = object["spec"]["namespace"].as_str().unwrap_or_default();
            object["status"] = crate::rbac::rules_review_status(call.state, user, namespace);
        }
        "SelfSubjectReview" => {
            object["status"] = json!({"userInfo": user.info()});
        }
        "TokenReview" => {
            let token = object["spec"]["token"].as_str().unwrap_or("");
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let audiences: Vec<String> = object["spec"]["audiences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            object["status"] =
                match crate::auth::authenticate_token_for(call.state, token, &audiences).await {
                    Some((u, audiences)) => {
                        json!({"authenticated": true, "user": u.info(), "audiences": audiences})
                    }
                    None => json!({"authenticated": false, "error": "invalid bearer token"}),
                };
        }
        _ => return Err(ApiError::method_not_allowed("POST")),
    }
    if !object["metadata"].is_object() {
        object["metadata"] = json!({});
    }
    object["metadata"]["creationTimestamp"] = Value::Null;
    Ok(http_util::json(201, &object))
}

/// kube's validation of an access review's spec: exactly one of `resourceAttributes` and
/// `nonResourceAttributes`; a user or a group to ask about, unless the review is of the
/// requester; no `nonResourceAttributes` in a LocalSubjectAccessReview.
fn review_spec_errors(kind: &str, spec: &Value) -> Vec<validation::FieldError> {
    let given = |field: &str| spec.get(field).filter(|v| !v.is_null());
    // Go prints the bad value as the internal struct (`%#v`).
    let non_resource = given("nonResourceAttributes").map(|n| {
        format!(
            "authorization.NonResourceAttributes{{Path:{}, Verb:{}}}",
            validation::go_quote(n["path"].as_str().unwrap_or_default()),
            validation::go_quote(n["verb"].as_str().unwrap_or_default()),
        )
    });
    let mut errors = Vec::new();
    match (given("resourceAttributes"), &non_resource) {
        (Some(_), Some(rendered)) => errors.push(validation::FieldError::invalid_rendered(
            "spec.nonResourceAttributes",
            Some(rendered.clone()),
            "cannot be specified in combination with resourceAttributes",
        )),
        (None, None) => errors.push(validation::FieldError::invalid(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        )),
        _ => {}
    }
    if kind != "SelfSubjectAccessReview" {
        let user = spec["user"].as_str().unwrap_or_default();
        if user.is_empty() && spec["groups"].as_array().is_none_or(Vec::is_empty) {
            errors.push(validation::FieldError::invalid(
                "spec.user",
                user,
                "at least one of user or group must be specified",
            ));
        }
    }
    if kind == "LocalSubjectAccessReview"
        && let Some(rendered) = non_resource
    {
        errors.push(validation::FieldError::invalid_rendered(
            "spec.nonResourceAttributes",
            Some(rendered),
            "disallowed on this kind of request",
        ));
    }
    errors
}

/// Whom a SubjectAccessReview asks about: its spec's user, groups, uid and extra.
fn review_subject(spec: &Value) -> User {
    let strings = |v: &Value| crate::rbac::str_list(v).map(str::to_owned).collect();
    let extra = spec["extra"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), strings(v)))
        .collect();
    User {
        name: spec["user"].as_str().unwrap_or_default().to_owned(),
        groups: strings(&spec["groups"]),
        uid: spec["uid"].as_str().unwrap_or_default().to_owned(),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_shape_kube_apiserver_would() {
        let metadata = |list, api_version| Shape::Metadata { list, api_version };
        assert_eq!(Shape::of(""), Shape::Object);
        assert_eq!(Shape::of("application/json"), Shape::Object);
        assert_eq!(
            Shape::of("application/json;as=Table;v=v1;g=meta.k8s.io,application/json"),
            Shape::Table
        );
        // kube-rs's and client-go's metadata calls.
        assert_eq!(
            Shape::of("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
            metadata(false, "meta.k8s.io/v1")
        );
        assert_eq!(
            Shape::of(
                "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
            ),
            metadata(true, "meta.k8s.io/v1")
        );
        assert_eq!(
            Shape::of("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"),
            metadata(false, "meta.k8s.io/v1beta1")
        );
        // A version it does not serve is passed over for the next choice.
        assert_eq!(
            Shape::of(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1alpha1,application/json"
            ),
            Shape::Object
        );
        // The list form for one object, and the object form for a list, are refused.
        let code = |r: Result<Shape, ApiError>| r.map_err(|e| e.status()["code"].clone());
        assert_eq!(
            code(metadata(true, META_V1).check(false)),
            Err(Value::from(406))
        );
        assert_eq!(
            code(metadata(false, META_V1).check(true)),
            Err(Value::from(406))
        );
        assert_eq!(
            code(metadata(false, META_V1).check(false)),
            Ok(metadata(false, META_V1))
        );
        assert_eq!(code(Shape::Table.check(true)), Ok(Shape::Table));
    }
}
