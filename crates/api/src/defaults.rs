//! kube-apiserver's defaulting of built-in objects, as Kubernetes v1.33 applies it, on objects
//! held as `serde_json::Value` with their Kubernetes (JSON) field names.
//!
//! The rules are those of the `SetDefaults_*` functions in
//! `k8s.io/kubernetes/pkg/apis/<group>/<version>/defaults.go`, the `+default=` markers of
//! `k8s.io/api` that `zz_generated.defaults.go` turns into code, with the feature gates at their
//! v1.33 defaults. A few normalisations that are not defaulting in Go but that show in every
//! object the server returns are applied too, because they have the same effect on what a
//! client sees:
//!
//! * the v1 <-> internal conversions: `spec.serviceAccount` mirrors
//!   `spec.serviceAccountName` in every pod spec, a Secret's `stringData` is merged into
//!   `data` (base64) and dropped, and StatefulSet `volumeClaimTemplates` carry
//!   `apiVersion: v1` / `kind: PersistentVolumeClaim`;
//! * Go's encoding of non-pointer structs: a container's `resources` is always present
//!   (`resources: {}`);
//! * the Service registry's default for `spec.ipFamilyPolicy` (`SingleStack`, or
//!   `RequireDualStack` for a headless service without selector).
//!
//! What is **not** done here because it is not defaulting: admission (pods' `priority`,
//! `preemptionPolicy`, `serviceAccountName: default`, the `kube-api-access-*` volume,
//! `tolerations` from DefaultTolerationSeconds), the registries' allocations and strategies
//! (service `clusterIP(s)`/`ipFamilies`/`nodePort`, Job selectors and controller-uid labels,
//! namespace `spec.finalizers`, status resets) and the canonical formatting of resource
//! quantities (`0.5` -> `500m`, which also covers `SetDefaults_ResourceList`'s rounding).
//!
//! Go cannot tell an absent field from its zero value, so the rules treat them alike: a missing
//! or `null` field is unset, and so is `""` for a plain string, `0` for a plain integer and an
//! empty list where Go tests `len(...) == 0`. A field of the wrong JSON type is left alone (the
//! decoder, not this module, rejects it), and nothing here panics whatever the input.

use serde_json::{Map, Value, json};

type Obj = Map<String, Value>;

/// Applies kube-apiserver's defaults for the given built-in kind in place. Unknown kinds are left
/// alone.
///
/// `group` is empty for the core group. A `...List` kind defaults each of its `items`.
/// Defaulting is idempotent; the real server also applies it when it reads objects back from
/// storage, so calling it on read is faithful too.
pub fn apply_defaults(group: &str, version: &str, kind: &str, object: &mut Value) {
    if let Some(item_kind) = kind.strip_suffix("List")
        && !item_kind.is_empty()
    {
        if let Some(Value::Array(items)) = object.get_mut("items") {
            for item in items {
                apply_defaults(group, version, item_kind, item);
            }
        }
        return;
    }
    let Some(o) = object.as_object_mut() else {
        return;
    };
    match (group, version, kind) {
        ("", "v1", "Pod") => pod(o),
        ("", "v1", "PodTemplate") => pod_template(o),
        ("", "v1", "ReplicationController") => replication_controller(o),
        ("", "v1", "Service") => service(o),
        ("", "v1", "Endpoints") => endpoints(o),
        ("", "v1", "Secret") => secret(o),
        ("", "v1", "Namespace") => namespace(o),
        ("", "v1", "Node") => node(o),
        ("", "v1", "PersistentVolume") => persistent_volume(o),
        ("", "v1", "PersistentVolumeClaim") => persistent_volume_claim(o),
        ("", "v1", "LimitRange") => limit_range(o),
        ("apps", "v1", "Deployment") => deployment(o),
        ("apps", "v1", "ReplicaSet") => replica_set(o),
        ("apps", "v1", "StatefulSet") => stateful_set(o),
        ("apps", "v1", "DaemonSet") => daemon_set(o),
        ("batch", "v1", "Job") => job(o),
        ("batch", "v1", "CronJob") => cron_job(o),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1(o),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => hpa_v2(o),
        ("networking.k8s.io", "v1", "NetworkPolicy") => network_policy(o),
        ("networking.k8s.io", "v1", "IngressClass") => ingress_class(o),
        ("discovery.k8s.io", "v1", "EndpointSlice") => endpoint_slice(o),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            role_binding(o)
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => priority_class(o),
        ("storage.k8s.io", "v1", "StorageClass") => storage_class(o),
        ("storage.k8s.io", "v1", "CSIDriver") => csi_driver(o),
        ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration") => {
            for_each_obj(o, "webhooks", |w| webhook(w, false));
        }
        ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration") => {
            for_each_obj(o, "webhooks", |w| webhook(w, true));
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy") => {
            validating_admission_policy(o)
        }
        ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding") => {
            if let Some(spec) = ensure_obj(o, "spec")
                && let Some(m) = obj_mut(spec, "matchResources")
            {
                match_resources(m);
            }
        }
        ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema") => {
            if let Some(spec) = ensure_obj(o, "spec") {
                default_zero(spec, "matchingPrecedence", json!(1000));
            }
        }
        ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration") => {
            priority_level_configuration(o)
        }
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => custom_resource_definition(o),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers: Go's notion of "unset" on JSON values
// ---------------------------------------------------------------------------------------------

/// A pointer, map or slice field Go would see as nil: absent or `null`.
fn is_unset(o: &Obj, key: &str) -> bool {
    matches!(o.get(key), None | Some(Value::Null))
}

/// A string field Go would see as `""`.
fn is_empty_str(o: &Obj, key: &str) -> bool {
    match o.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// A plain integer field Go would see as `0`.
fn is_zero(o: &Obj, key: &str) -> bool {
    match o.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// A slice Go would see with `len(...) == 0`.
fn is_empty_list(o: &Obj, key: &str) -> bool {
    match o.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// A map Go would see with `len(...) == 0`.
fn is_empty_map(o: &Obj, key: &str) -> bool {
    match o.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

/// Whether the field is a non-empty list.
fn has_items(o: &Obj, key: &str) -> bool {
    matches!(o.get(key), Some(Value::Array(a)) if !a.is_empty())
}

fn str_of<'a>(o: &'a Obj, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

/// Sets a pointer / map / slice field when it is unset.
fn default_value(o: &mut Obj, key: &str, value: Value) {
    if is_unset(o, key) {
        o.insert(key.to_owned(), value);
    }
}

/// Sets a plain string field when it is empty.
fn default_str(o: &mut Obj, key: &str, value: &str) {
    if is_empty_str(o, key) {
        o.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Sets a plain integer field when it is zero.
fn default_zero(o: &mut Obj, key: &str, value: Value) {
    if is_zero(o, key) {
        o.insert(key.to_owned(), value);
    }
}

/// The field as an object, when it is one.
fn obj_mut<'a>(o: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    o.get_mut(key).and_then(Value::as_object_mut)
}

/// The field as an object, created empty when unset (a non-pointer struct, or a pointer the
/// defaulting allocates). `None` when the field has another type.
fn ensure_obj<'a>(o: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    if is_unset(o, key) {
        o.insert(key.to_owned(), Value::Object(Map::new()));
    }
    obj_mut(o, key)
}

/// Calls `f` on each object element of the list field.
fn for_each_obj(o: &mut Obj, key: &str, mut f: impl FnMut(&mut Obj)) {
    if let Some(Value::Array(items)) = o.get_mut(key) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// A non-empty object field, cloned.
fn non_empty_map(o: &Obj, key: &str) -> Option<Obj> {
    match o.get(key) {
        Some(Value::Object(m)) if !m.is_empty() => Some(m.clone()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// core/v1: pods and pod templates
// ---------------------------------------------------------------------------------------------

/// `SetObjectDefaults_Pod`: `SetDefaults_Pod` (pod-only rules), then the pod spec's.
fn pod(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    // Requests default to limits, on a Pod only (not on templates).
    for key in ["containers", "initContainers"] {
        for_each_obj(spec, key, requests_from_limits);
    }
    default_value(spec, "enableServiceLinks", Value::Bool(true));
    if spec.get("hostNetwork") == Some(&Value::Bool(true)) {
        for key in ["containers", "initContainers"] {
            for_each_obj(spec, key, |c| {
                for_each_obj(c, "ports", |p| {
                    if is_zero(p, "hostPort")
                        && let Some(port) = p.get("containerPort").filter(|v| v.is_number())
                    {
                        let port = port.clone();
                        p.insert("hostPort".to_owned(), port);
                    }
                });
            });
        }
    }
    pod_spec(spec);
}

/// `SetObjectDefaults_PodTemplate`.
fn pod_template(o: &mut Obj) {
    if let Some(template) = obj_mut(o, "template") {
        pod_template_spec(template);
    }
}

/// A `PodTemplateSpec`: its pod spec's defaults (not the pod-only ones).
fn pod_template_spec(template: &mut Obj) {
    if let Some(spec) = ensure_obj(template, "spec") {
        pod_spec(spec);
    }
}

/// `spec.template` of a workload, when present.
fn workload_template(spec: &mut Obj) {
    if let Some(template) = obj_mut(spec, "template") {
        pod_template_spec(template);
    }
}

/// If limits are set but requests are not, requests default to limits (`SetDefaults_Pod`).
fn requests_from_limits(container: &mut Obj) {
    let Some(resources) = obj_mut(container, "resources") else {
        return;
    };
    let Some(Value::Object(limits)) = resources.get("limits") else {
        return;
    };
    let limits = limits.clone();
    match resources.get_mut("requests") {
        None | Some(Value::Null) => {
            if !limits.is_empty() {
                resources.insert("requests".to_owned(), Value::Object(limits));
            }
        }
        Some(Value::Object(requests)) => {
            for (name, quantity) in limits {
                requests.entry(name).or_insert(quantity);
            }
        }
        Some(_) => {}
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec.
fn pod_spec(spec: &mut Obj) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    service_account_alias(spec);
    for_each_obj(spec, "volumes", volume);
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for_each_obj(spec, key, container);
    }
}

/// `serviceAccount` is the deprecated alias of `serviceAccountName`: the v1 -> internal
/// conversion takes it when `serviceAccountName` is empty, and the way back always writes
/// `serviceAccountName` into it.
fn service_account_alias(spec: &mut Obj) {
    if is_empty_str(spec, "serviceAccountName")
        && let Some(alias) = str_of(spec, "serviceAccount").filter(|s| !s.is_empty())
    {
        let alias = alias.to_owned();
        spec.insert("serviceAccountName".to_owned(), Value::String(alias));
    }
    if let Some(name) = str_of(spec, "serviceAccountName").filter(|s| !s.is_empty()) {
        let name = name.to_owned();
        spec.insert("serviceAccount".to_owned(), Value::String(name));
    }
}

/// `SetDefaults_Container` (and the ephemeral container's), with the nested defaults.
fn container(c: &mut Obj) {
    if is_empty_str(c, "imagePullPolicy") {
        let image = match c.get("image") {
            None | Some(Value::Null) => Some(""),
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => None,
        };
        if let Some(image) = image {
            let policy = default_image_pull_policy(image);
            c.insert(
                "imagePullPolicy".to_owned(),
                Value::String(policy.to_owned()),
            );
        }
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // `resources` is a non-pointer struct: Go always writes it.
    default_value(c, "resources", json!({}));
    for_each_obj(c, "ports", |p| default_str(p, "protocol", "TCP"));
    for_each_obj(c, "env", |e| {
        if let Some(field_ref) = obj_mut(e, "valueFrom").and_then(|from| obj_mut(from, "fieldRef"))
        {
            object_field_selector(field_ref);
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = obj_mut(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = obj_mut(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(get) = obj_mut(lifecycle, key).and_then(|h| obj_mut(h, "httpGet")) {
                http_get_action(get);
            }
        }
    }
}

/// `SetDefaults_Probe`, `SetDefaults_HTTPGetAction` and `GRPCAction.service`'s `+default=""`.
fn probe(p: &mut Obj) {
    default_zero(p, "timeoutSeconds", json!(1));
    default_zero(p, "periodSeconds", json!(10));
    default_zero(p, "successThreshold", json!(1));
    default_zero(p, "failureThreshold", json!(3));
    if let Some(get) = obj_mut(p, "httpGet") {
        http_get_action(get);
    }
    if let Some(grpc) = obj_mut(p, "grpc") {
        default_value(grpc, "service", json!(""));
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get_action(get: &mut Obj) {
    default_str(get, "path", "/");
    default_str(get, "scheme", "HTTP");
}

/// `SetDefaults_ObjectFieldSelector`.
fn object_field_selector(field_ref: &mut Obj) {
    default_str(field_ref, "apiVersion", "v1");
}

/// `SetDefaults_Volume` and the defaults of the volume sources.
fn volume(v: &mut Obj) {
    // No source at all: an emptyDir.
    if !v
        .iter()
        .any(|(key, value)| key != "name" && !value.is_null())
    {
        v.insert("emptyDir".to_owned(), json!({}));
    }
    if let Some(host_path) = obj_mut(v, "hostPath") {
        default_value(host_path, "type", json!(""));
    }
    for key in ["secret", "configMap"] {
        if let Some(source) = obj_mut(v, key) {
            default_value(source, "defaultMode", json!(420));
        }
    }
    if let Some(downward) = obj_mut(v, "downwardAPI") {
        default_value(downward, "defaultMode", json!(420));
        downward_api_items(downward);
    }
    if let Some(projected) = obj_mut(v, "projected") {
        default_value(projected, "defaultMode", json!(420));
        for_each_obj(projected, "sources", |source| {
            if let Some(downward) = obj_mut(source, "downwardAPI") {
                downward_api_items(downward);
            }
            if let Some(token) = obj_mut(source, "serviceAccountToken") {
                default_value(token, "expirationSeconds", json!(3600));
            }
        });
    }
    if let Some(claim) = obj_mut(v, "ephemeral").and_then(|e| obj_mut(e, "volumeClaimTemplate"))
        && let Some(spec) = ensure_obj(claim, "spec")
    {
        persistent_volume_claim_spec(spec);
    }
    legacy_volume_sources(v);
}

fn downward_api_items(downward: &mut Obj) {
    for_each_obj(downward, "items", |item| {
        if let Some(field_ref) = obj_mut(item, "fieldRef") {
            object_field_selector(field_ref);
        }
    });
}

/// The `+default=` markers of the in-tree volume sources shared by pods and persistent volumes
/// (RBD, iSCSI, Azure disk, ScaleIO).
fn legacy_volume_sources(v: &mut Obj) {
    if let Some(rbd) = obj_mut(v, "rbd") {
        default_str(rbd, "pool", "rbd");
        default_str(rbd, "user", "admin");
        default_str(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(iscsi) = obj_mut(v, "iscsi") {
        default_str(iscsi, "iscsiInterface", "default");
    }
    if let Some(azure) = obj_mut(v, "azureDisk") {
        default_value(azure, "cachingMode", json!("ReadWrite"));
        default_value(azure, "fsType", json!("ext4"));
        default_value(azure, "readOnly", json!(false));
        default_value(azure, "kind", json!("Shared"));
    }
    if let Some(scale_io) = obj_mut(v, "scaleIO") {
        default_str(scale_io, "storageMode", "ThinProvisioned");
        default_str(scale_io, "fsType", "xfs");
    }
}

// ---------------------------------------------------------------------------------------------
// Image references: the pull policy default
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_Container`'s pull policy: `Always` when the image's tag is `latest` (which an
/// image with neither tag nor digest gets), `IfNotPresent` otherwise, including for a digest
/// without tag and for a reference that does not parse.
fn default_image_pull_policy(image: &str) -> &'static str {
    match image_tag(image) {
        Some(tag) if tag == "latest" => "Always",
        _ => "IfNotPresent",
    }
}

/// The tag `parsers.ParseImageName` finds: the reference's tag, `""` for a digest without tag,
/// `latest` for neither; `None` when `reference.ParseNormalizedNamed` rejects the image.
fn image_tag(image: &str) -> Option<String> {
    if image.len() == 64
        && image
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (domain, remainder) = split_docker_domain(image);
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.to_lowercase() != remote_name {
        return None;
    }
    let full = format!("{domain}/{remainder}");
    let (name_and_tag, digest) = match full.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (full.as_str(), None),
    };
    let last_slash = name_and_tag.rfind('/')?;
    let (name, tag) = match name_and_tag[last_slash..].find(':') {
        Some(i) => (
            &name_and_tag[..last_slash + i],
            Some(&name_and_tag[last_slash + i + 1..]),
        ),
        None => (name_and_tag, None),
    };
    if name.len() > 255 || !valid_reference_name(name) {
        return None;
    }
    if tag.is_some_and(|t| !valid_tag(t)) || digest.is_some_and(|d| !valid_digest(d)) {
        return None;
    }
    Some(match (tag, digest) {
        (Some(tag), _) => tag.to_owned(),
        (None, Some(_)) => String::new(),
        (None, None) => "latest".to_owned(),
    })
}

/// `splitDockerDomain` of `github.com/distribution/reference`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i)
            if {
                let first = &name[..i];
                first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first
            } =>
        {
            (name[..i].to_owned(), name[i + 1..].to_owned())
        }
        _ => ("docker.io".to_owned(), name.to_owned()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".to_owned();
    }
    if domain == "docker.io" && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    (domain, remainder)
}

/// `NameRegexp`: an optional domain, then `/`-separated path components.
fn valid_reference_name(name: &str) -> bool {
    let mut parts = name.split('/');
    let first = parts.next().unwrap_or_default();
    let mut rest = parts.peekable();
    if rest.peek().is_none() {
        return valid_path_component(first);
    }
    (valid_domain(first) || valid_path_component(first)) && rest.all(valid_path_component)
}

/// `domainAndPort`: a host name, or a bracketed IPv6 address, with an optional port.
fn valid_domain(domain: &str) -> bool {
    let valid_port = |port: Option<&str>| {
        port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(inner) = domain.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return false;
        };
        let valid_address =
            !address.is_empty() && address.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        return valid_address
            && (after.is_empty() || after.strip_prefix(':').is_some_and(|p| valid_port(Some(p))));
    }
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    valid_port(port)
        && host.split('.').all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !component.starts_with('-')
                && !component.ends_with('-')
        })
}

/// `pathComponent`: lowercase alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(b) {
            if !separator.is_empty() {
                let ok = matches!(separator.as_str(), "." | "_" | "__")
                    || separator.bytes().all(|s| s == b'-');
                if !ok {
                    return false;
                }
                separator.clear();
            }
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

/// `tag`: `[\w][\w.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// A digest `go-digest` accepts: a known algorithm and its lowercase hex encoding.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// ---------------------------------------------------------------------------------------------
// core/v1: other kinds
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_ReplicationController` and `ReplicationControllerSpec.replicas`'s `+default=1`.
fn replication_controller(o: &mut Obj) {
    let labels = {
        let Some(spec) = ensure_obj(o, "spec") else {
            return;
        };
        default_value(spec, "replicas", json!(1));
        workload_template(spec);
        let labels = obj_mut(spec, "template")
            .and_then(|t| obj_mut(t, "metadata"))
            .and_then(|m| non_empty_map(m, "labels"));
        if let Some(labels) = &labels
            && is_empty_map(spec, "selector")
        {
            spec.insert("selector".to_owned(), Value::Object(labels.clone()));
        }
        labels
    };
    if let Some(labels) = labels {
        labels_from_template(o, labels);
    }
}

/// `metadata.labels` default to the template's labels when empty (ReplicationController, Job).
fn labels_from_template(o: &mut Obj, labels: Obj) {
    if let Some(metadata) = ensure_obj(o, "metadata")
        && is_empty_map(metadata, "labels")
    {
        metadata.insert("labels".to_owned(), Value::Object(labels));
    }
}

/// `SetDefaults_Service`, plus the registry's `ipFamilyPolicy`.
fn service(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_str(spec, "sessionAffinity", "None");
    match str_of(spec, "sessionAffinity") {
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            if let Some(client_ip) = ensure_obj(spec, "sessionAffinityConfig")
                .and_then(|config| ensure_obj(config, "clientIP"))
            {
                default_value(client_ip, "timeoutSeconds", json!(10800));
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for_each_obj(spec, "ports", |port| {
        default_str(port, "protocol", "TCP");
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_f64() == Some(0.0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if target_unset && let Some(number) = port.get("port").filter(|v| v.is_number()) {
            let number = number.clone();
            port.insert("targetPort".to_owned(), number);
        }
    });
    let service_type = str_of(spec, "type").unwrap_or_default().to_owned();
    let externally_accessible = matches!(service_type.as_str(), "LoadBalancer" | "NodePort")
        || (service_type == "ClusterIP" && has_items(spec, "externalIPs"));
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(
        service_type.as_str(),
        "NodePort" | "LoadBalancer" | "ClusterIP"
    ) {
        default_value(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        default_value(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // The registry (`initIPFamilyFields`): not for ExternalName; headless + selectorless
    // services default to RequireDualStack, everything else to SingleStack.
    if service_type != "ExternalName" && is_unset(spec, "ipFamilyPolicy") {
        let first_cluster_ip = match spec.get("clusterIPs") {
            Some(Value::Array(ips)) => ips.first().and_then(Value::as_str),
            _ => None,
        };
        let headless =
            str_of(spec, "clusterIP") == Some("None") || first_cluster_ip == Some("None");
        let policy = if headless && is_empty_map(spec, "selector") {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        spec.insert("ipFamilyPolicy".to_owned(), json!(policy));
    }
    if service_type == "LoadBalancer"
        && let Some(balancer) = obj_mut(o, "status").and_then(|s| obj_mut(s, "loadBalancer"))
    {
        for_each_obj(balancer, "ingress", |ingress| {
            if !is_empty_str(ingress, "ip") {
                default_value(ingress, "ipMode", json!("VIP"));
            }
        });
    }
}

/// `SetDefaults_Endpoints`.
fn endpoints(o: &mut Obj) {
    for_each_obj(o, "subsets", |subset| {
        for_each_obj(subset, "ports", |port| default_str(port, "protocol", "TCP"));
    });
}

/// `SetDefaults_Secret`, and the conversion's merge of `stringData` into `data`.
fn secret(o: &mut Obj) {
    default_str(o, "type", "Opaque");
    let merged = match o.get("stringData") {
        None => return,
        Some(Value::Null) => None,
        Some(Value::Object(strings)) => {
            let mut encoded = Obj::new();
            for (key, value) in strings {
                let Some(value) = value.as_str() else {
                    return;
                };
                encoded.insert(key.clone(), Value::String(base64(value.as_bytes())));
            }
            Some(encoded)
        }
        Some(_) => return,
    };
    if let Some(encoded) = merged.filter(|m| !m.is_empty()) {
        let Some(data) = ensure_obj(o, "data") else {
            return;
        };
        data.extend(encoded);
    }
    o.remove("stringData");
}

/// Standard base64 with padding (how Go writes `[]byte`).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label, always equal to the name)
/// and `SetDefaults_NamespaceStatus`.
fn namespace(o: &mut Obj) {
    let name = o
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    if let Some(name) = name
        && let Some(labels) = obj_mut(o, "metadata").and_then(|m| ensure_obj(m, "labels"))
    {
        labels.insert(
            "kubernetes.io/metadata.name".to_owned(),
            Value::String(name),
        );
    }
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Active");
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn node(o: &mut Obj) {
    if let Some(status) = obj_mut(o, "status")
        && is_unset(status, "allocatable")
        && let Some(capacity) = non_empty_map(status, "capacity")
    {
        status.insert("allocatable".to_owned(), Value::Object(capacity));
    }
}

/// `SetDefaults_PersistentVolume` and its volume sources.
fn persistent_volume(o: &mut Obj) {
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Pending");
    }
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
    default_value(spec, "volumeMode", json!("Filesystem"));
    if let Some(host_path) = obj_mut(spec, "hostPath") {
        default_value(host_path, "type", json!(""));
    }
    legacy_volume_sources(spec);
}

/// `SetDefaults_PersistentVolumeClaim` and `SetDefaults_PersistentVolumeClaimSpec`.
fn persistent_volume_claim(o: &mut Obj) {
    if let Some(status) = ensure_obj(o, "status") {
        default_str(status, "phase", "Pending");
    }
    if let Some(spec) = ensure_obj(o, "spec") {
        persistent_volume_claim_spec(spec);
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
fn persistent_volume_claim_spec(spec: &mut Obj) {
    default_value(spec, "volumeMode", json!("Filesystem"));
}

/// `SetDefaults_LimitRangeItem`, for `Container` items: the default limit from max, the default
/// request from the default limit, then from min.
fn limit_range(o: &mut Obj) {
    let Some(spec) = obj_mut(o, "spec") else {
        return;
    };
    for_each_obj(spec, "limits", |item| {
        if str_of(item, "type") != Some("Container") {
            return;
        }
        let map_or_empty = |item: &Obj, key: &str| match item.get(key) {
            None | Some(Value::Null) => Some(Obj::new()),
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => None,
        };
        let (Some(mut default), Some(mut default_request)) = (
            map_or_empty(item, "default"),
            map_or_empty(item, "defaultRequest"),
        ) else {
            return;
        };
        let max = map_or_empty(item, "max").unwrap_or_default();
        let min = map_or_empty(item, "min").unwrap_or_default();
        for (name, quantity) in max {
            default.entry(name).or_insert(quantity);
        }
        for (name, quantity) in &default {
            default_request
                .entry(name.clone())
                .or_insert_with(|| quantity.clone());
        }
        for (name, quantity) in min {
            default_request.entry(name).or_insert(quantity);
        }
        if !default.is_empty() {
            item.insert("default".to_owned(), Value::Object(default));
        }
        if !default_request.is_empty() {
            item.insert("defaultRequest".to_owned(), Value::Object(default_request));
        }
    });
}

// ---------------------------------------------------------------------------------------------
// apps/v1
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_Deployment`.
fn deployment(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    if let Some(strategy) = ensure_obj(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == Some("RollingUpdate")
            && let Some(rolling) = ensure_obj(strategy, "rollingUpdate")
        {
            default_value(rolling, "maxUnavailable", json!("25%"));
            default_value(rolling, "maxSurge", json!("25%"));
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_value(spec, "progressDeadlineSeconds", json!(600));
    workload_template(spec);
}

/// `SetDefaults_ReplicaSet`.
fn replica_set(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "replicas", json!(1));
    workload_template(spec);
}

/// `SetDefaults_DaemonSet`.
fn daemon_set(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    if let Some(strategy) = ensure_obj(spec, "updateStrategy") {
        default_str(strategy, "type", "RollingUpdate");
        if str_of(strategy, "type") == Some("RollingUpdate")
            && let Some(rolling) = ensure_obj(strategy, "rollingUpdate")
        {
            default_value(rolling, "maxUnavailable", json!(1));
            default_value(rolling, "maxSurge", json!(0));
        }
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    workload_template(spec);
}

/// `SetDefaults_StatefulSet`, plus the claim templates' defaults and the conversion's
/// `apiVersion`/`kind` on them.
fn stateful_set(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(strategy) = ensure_obj(spec, "updateStrategy") {
        if is_empty_str(strategy, "type") {
            strategy.insert("type".to_owned(), json!("RollingUpdate"));
            default_value(strategy, "rollingUpdate", json!({}));
        }
        if str_of(strategy, "type") == Some("RollingUpdate")
            && let Some(rolling) = obj_mut(strategy, "rollingUpdate")
        {
            default_value(rolling, "partition", json!(0));
        }
    }
    if let Some(retention) = ensure_obj(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(retention, "whenDeleted", "Retain");
        default_str(retention, "whenScaled", "Retain");
    }
    default_value(spec, "replicas", json!(1));
    default_value(spec, "revisionHistoryLimit", json!(10));
    workload_template(spec);
    for_each_obj(spec, "volumeClaimTemplates", |claim| {
        claim.insert("apiVersion".to_owned(), json!("v1"));
        claim.insert("kind".to_owned(), json!("PersistentVolumeClaim"));
        persistent_volume_claim(claim);
    });
}

// ---------------------------------------------------------------------------------------------
// batch/v1
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_Job`. The pod template gets `SetDefaults_PodSpec` like every template
/// (`SetObjectDefaults_Job`), so a missing `restartPolicy` becomes `Always`, which Job validation
/// then rejects (`Required value: valid values: "OnFailure", "Never"`).
fn job(o: &mut Obj) {
    let labels = {
        let Some(spec) = ensure_obj(o, "spec") else {
            return;
        };
        if is_unset(spec, "completions") && is_unset(spec, "parallelism") {
            spec.insert("completions".to_owned(), json!(1));
            spec.insert("parallelism".to_owned(), json!(1));
        }
        default_value(spec, "parallelism", json!(1));
        if is_unset(spec, "backoffLimit") {
            let limit = if is_unset(spec, "backoffLimitPerIndex") {
                6
            } else {
                i32::MAX
            };
            spec.insert("backoffLimit".to_owned(), json!(limit));
        }
        default_value(spec, "completionMode", json!("NonIndexed"));
        default_value(spec, "suspend", json!(false));
        pod_failure_policy(spec);
        if is_unset(spec, "podReplacementPolicy") {
            let policy = if is_unset(spec, "podFailurePolicy") {
                "TerminatingOrFailed"
            } else {
                "Failed"
            };
            spec.insert("podReplacementPolicy".to_owned(), json!(policy));
        }
        default_value(spec, "manualSelector", json!(false));
        workload_template(spec);
        obj_mut(spec, "template")
            .and_then(|t| obj_mut(t, "metadata"))
            .and_then(|m| non_empty_map(m, "labels"))
    };
    if let Some(labels) = labels {
        labels_from_template(o, labels);
    }
}

/// `SetDefaults_PodFailurePolicyOnPodConditionsPattern`: a pattern's status defaults to True.
fn pod_failure_policy(job_spec: &mut Obj) {
    if let Some(policy) = obj_mut(job_spec, "podFailurePolicy") {
        for_each_obj(policy, "rules", |rule| {
            for_each_obj(rule, "onPodConditions", |pattern| {
                default_str(pattern, "status", "True");
            });
        });
    }
}

/// `SetDefaults_CronJob`; the job template gets its pod spec's defaults but not the Job's.
fn cron_job(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_str(spec, "concurrencyPolicy", "Allow");
    default_value(spec, "suspend", json!(false));
    default_value(spec, "successfulJobsHistoryLimit", json!(3));
    default_value(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(job_spec) = obj_mut(spec, "jobTemplate").and_then(|t| obj_mut(t, "spec")) {
        pod_failure_policy(job_spec);
        workload_template(job_spec);
    }
}

// ---------------------------------------------------------------------------------------------
// autoscaling
// ---------------------------------------------------------------------------------------------

/// autoscaling/v1 `SetDefaults_HorizontalPodAutoscaler`.
fn hpa_v1(o: &mut Obj) {
    if let Some(spec) = ensure_obj(o, "spec") {
        default_value(spec, "minReplicas", json!(1));
    }
}

/// autoscaling/v2 `SetDefaults_HorizontalPodAutoscaler` and
/// `SetDefaults_HorizontalPodAutoscalerBehavior`.
fn hpa_v2(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "minReplicas", json!(1));
    if is_empty_list(spec, "metrics") {
        spec.insert(
            "metrics".to_owned(),
            json!([{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 80}
                }
            }]),
        );
    }
    // Only a behavior that is there gets its rules filled in.
    if let Some(behavior) = obj_mut(spec, "behavior") {
        if let Some(up) = ensure_obj(behavior, "scaleUp") {
            default_value(up, "stabilizationWindowSeconds", json!(0));
            default_value(up, "selectPolicy", json!("Max"));
            default_value(
                up,
                "policies",
                json!([
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]),
            );
        }
        if let Some(down) = ensure_obj(behavior, "scaleDown") {
            // No stabilizationWindowSeconds: the controller's flag decides it.
            default_value(down, "selectPolicy", json!("Max"));
            default_value(
                down,
                "policies",
                json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// networking, discovery, rbac, scheduling, storage
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_NetworkPolicy` and `SetDefaults_NetworkPolicyPort`.
fn network_policy(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    for key in ["ingress", "egress"] {
        for_each_obj(spec, key, |rule| {
            for_each_obj(rule, "ports", |port| {
                default_value(port, "protocol", json!("TCP"));
            });
        });
    }
    if is_empty_list(spec, "policyTypes") {
        let types = if has_items(spec, "egress") {
            json!(["Ingress", "Egress"])
        } else {
            json!(["Ingress"])
        };
        spec.insert("policyTypes".to_owned(), types);
    }
}

/// `SetDefaults_IngressClass`.
fn ingress_class(o: &mut Obj) {
    if let Some(parameters) = obj_mut(o, "spec").and_then(|s| obj_mut(s, "parameters")) {
        default_value(parameters, "scope", json!("Cluster"));
    }
}

/// discovery/v1 `SetDefaults_EndpointPort`.
fn endpoint_slice(o: &mut Obj) {
    for_each_obj(o, "ports", |port| {
        default_value(port, "name", json!(""));
        default_value(port, "protocol", json!("TCP"));
    });
}

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject`.
fn role_binding(o: &mut Obj) {
    const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
    if let Some(role_ref) = ensure_obj(o, "roleRef") {
        default_str(role_ref, "apiGroup", RBAC_GROUP);
    }
    for_each_obj(o, "subjects", |subject| {
        if is_empty_str(subject, "apiGroup")
            && matches!(str_of(subject, "kind"), Some("User" | "Group"))
        {
            subject.insert("apiGroup".to_owned(), json!(RBAC_GROUP));
        }
    });
}

/// `SetDefaults_PriorityClass`.
fn priority_class(o: &mut Obj) {
    default_value(o, "preemptionPolicy", json!("PreemptLowerPriority"));
}

/// `SetDefaults_StorageClass`.
fn storage_class(o: &mut Obj) {
    default_value(o, "reclaimPolicy", json!("Delete"));
    default_value(o, "volumeBindingMode", json!("Immediate"));
}

/// `SetDefaults_CSIDriver` (CSIInlineVolume, CSIVolumeFSGroupPolicy and
/// SELinuxMountReadWriteOncePod are on in v1.33).
fn csi_driver(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "attachRequired", json!(true));
    default_value(spec, "podInfoOnMount", json!(false));
    default_value(spec, "storageCapacity", json!(false));
    default_value(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
    if is_empty_list(spec, "volumeLifecycleModes") {
        spec.insert("volumeLifecycleModes".to_owned(), json!(["Persistent"]));
    }
    default_value(spec, "requiresRepublish", json!(false));
    default_value(spec, "seLinuxMount", json!(false));
}

// ---------------------------------------------------------------------------------------------
// admissionregistration/v1, flowcontrol/v1, apiextensions/v1
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_ValidatingWebhook` / `SetDefaults_MutatingWebhook`, `SetDefaults_Rule` and
/// `SetDefaults_ServiceReference`.
fn webhook(w: &mut Obj, mutating: bool) {
    default_value(w, "failurePolicy", json!("Fail"));
    default_value(w, "matchPolicy", json!("Equivalent"));
    default_value(w, "namespaceSelector", json!({}));
    default_value(w, "objectSelector", json!({}));
    default_value(w, "timeoutSeconds", json!(10));
    if mutating {
        default_value(w, "reinvocationPolicy", json!("Never"));
    }
    for_each_obj(w, "rules", rule);
    if let Some(service) = obj_mut(w, "clientConfig").and_then(|c| obj_mut(c, "service")) {
        default_value(service, "port", json!(443));
    }
}

/// `SetDefaults_Rule`.
fn rule(r: &mut Obj) {
    default_value(r, "scope", json!("*"));
}

/// `SetDefaults_ValidatingAdmissionPolicySpec`.
fn validating_admission_policy(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    default_value(spec, "failurePolicy", json!("Fail"));
    if let Some(m) = obj_mut(spec, "matchConstraints") {
        match_resources(m);
    }
}

/// `SetDefaults_MatchResources`.
fn match_resources(m: &mut Obj) {
    default_value(m, "matchPolicy", json!("Equivalent"));
    default_value(m, "namespaceSelector", json!({}));
    default_value(m, "objectSelector", json!({}));
    for key in ["resourceRules", "excludeResourceRules"] {
        for_each_obj(m, key, rule);
    }
}

/// flowcontrol/v1 priority level defaults.
fn priority_level_configuration(o: &mut Obj) {
    let Some(spec) = ensure_obj(o, "spec") else {
        return;
    };
    if let Some(limited) = obj_mut(spec, "limited") {
        default_value(limited, "nominalConcurrencyShares", json!(30));
        default_value(limited, "lendablePercent", json!(0));
        if let Some(queuing) = obj_mut(limited, "limitResponse").and_then(|r| obj_mut(r, "queuing"))
        {
            default_zero(queuing, "handSize", json!(8));
            default_zero(queuing, "queues", json!(64));
            default_zero(queuing, "queueLengthLimit", json!(50));
        }
    }
    if let Some(exempt) = obj_mut(spec, "exempt") {
        default_value(exempt, "nominalConcurrencyShares", json!(0));
        default_value(exempt, "lendablePercent", json!(0));
    }
}

/// apiextensions/v1 `SetDefaults_CustomResourceDefinition(Spec)` and `SetDefaults_ServiceReference`.
fn custom_resource_definition(o: &mut Obj) {
    let stored = {
        let Some(spec) = ensure_obj(o, "spec") else {
            return;
        };
        if let Some(names) = obj_mut(spec, "names")
            && let Some(kind) = str_of(names, "kind").filter(|k| !k.is_empty())
        {
            let (singular, list_kind) = (kind.to_lowercase(), format!("{kind}List"));
            default_str(names, "singular", &singular);
            default_str(names, "listKind", &list_kind);
        }
        default_value(spec, "conversion", json!({"strategy": "None"}));
        if let Some(service) = obj_mut(spec, "conversion")
            .and_then(|c| obj_mut(c, "webhook"))
            .and_then(|w| obj_mut(w, "clientConfig"))
            .and_then(|c| obj_mut(c, "service"))
        {
            default_value(service, "port", json!(443));
        }
        match spec.get("versions") {
            Some(Value::Array(versions)) => versions
                .iter()
                .find(|v| v.get("storage") == Some(&Value::Bool(true)))
                .and_then(|v| v.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    };
    if let Some(stored) = stored
        && let Some(status) = ensure_obj(o, "status")
        && is_empty_list(status, "storedVersions")
    {
        status.insert("storedVersions".to_owned(), json!([stored]));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn defaulted(group: &str, version: &str, kind: &str, object: Value) -> Value {
        let mut object = object;
        apply_defaults(group, version, kind, &mut object);
        object
    }

    /// The pod spec real kube-apiserver v1.33 stores for `{"containers":[{"name":"c","image":image}]}`
    /// inside a template (no pod-only defaults).
    fn template_spec(image: &str, pull: &str) -> Value {
        json!({
            "containers": [{
                "name": "c",
                "image": image,
                "imagePullPolicy": pull,
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30
        })
    }

    #[test]
    fn bare_pod_gets_all_defaults() {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({
                "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }),
        );
        let mut expected = template_spec("nginx", "Always");
        expected["enableServiceLinks"] = json!(true);
        assert_eq!(pod["spec"], expected);
        assert_eq!(pod["metadata"], json!({"name": "p"}));
        assert!(pod.get("status").is_none());
        // Not defaulting: admission's business.
        for field in [
            "priority",
            "preemptionPolicy",
            "serviceAccountName",
            "tolerations",
        ] {
            assert!(pod["spec"].get(field).is_none(), "{field}");
        }
    }

    #[test]
    fn pod_without_spec_gets_one() {
        let pod = defaulted("", "v1", "Pod", json!({"metadata": {"name": "p"}}));
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["enableServiceLinks"], true);
    }

    #[test]
    fn pod_nested_defaults() {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {
                "hostNetwork": true,
                "initContainers": [{"name": "i", "image": "busybox:1.36",
                    "resources": {"limits": {"cpu": "1"}}}],
                "containers": [{
                    "name": "c",
                    "image": "nginx:1.27",
                    "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP", "hostPort": 5353}],
                    "env": [
                        {"name": "A", "value": "a"},
                        {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
                    ],
                    "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m"}},
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 5},
                    "startupProbe": {"grpc": {"port": 9000}},
                    "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}
                }],
                "ephemeralContainers": [{"name": "debug", "image": "busybox"}],
                "volumes": [
                    {"name": "empty"},
                    {"name": "cm", "configMap": {"name": "x"}},
                    {"name": "sec", "secret": {"secretName": "x", "defaultMode": 256}},
                    {"name": "host", "hostPath": {"path": "/tmp"}},
                    {"name": "down", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                    {"name": "proj", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}
                    ]}},
                    {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
                    {"name": "rbd", "rbd": {"monitors": ["m"], "image": "i"}},
                    {"name": "iscsi", "iscsi": {"targetPortal": "t", "iqn": "q", "lun": 0}},
                    {"name": "az", "azureDisk": {"diskName": "d", "diskURI": "u"}},
                    {"name": "sio", "scaleIO": {"gateway": "g", "system": "s", "secretRef": {"name": "x"}}}
                ]
            }}),
        );
        let spec = &pod["spec"];
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            c["ports"][0],
            json!({"containerPort": 80, "protocol": "TCP", "hostPort": 80})
        );
        assert_eq!(
            c["ports"][1],
            json!({"containerPort": 53, "protocol": "UDP", "hostPort": 5353})
        );
        assert_eq!(c["env"][0], json!({"name": "A", "value": "a"}));
        assert_eq!(c["env"][1]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            c["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "1Gi"}})
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
        assert_eq!(c["readinessProbe"]["failureThreshold"], 3);
        assert_eq!(
            c["startupProbe"]["grpc"],
            json!({"port": 9000, "service": ""})
        );
        assert_eq!(
            c["lifecycle"]["preStop"]["httpGet"],
            json!({"port": 80, "path": "/stop", "scheme": "HTTP"})
        );
        let init = &spec["initContainers"][0];
        assert_eq!(init["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(init["terminationMessagePolicy"], "File");
        let debug = &spec["ephemeralContainers"][0];
        assert_eq!(debug["imagePullPolicy"], "Always");
        assert_eq!(debug["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(debug["resources"], json!({}));

        let v = &spec["volumes"];
        assert_eq!(v[0], json!({"name": "empty", "emptyDir": {}}));
        assert_eq!(v[1]["configMap"], json!({"name": "x", "defaultMode": 420}));
        assert_eq!(
            v[2]["secret"],
            json!({"secretName": "x", "defaultMode": 256})
        );
        assert_eq!(v[3]["hostPath"], json!({"path": "/tmp", "type": ""}));
        assert_eq!(v[4]["downwardAPI"]["defaultMode"], 420);
        assert_eq!(
            v[4]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(v[5]["projected"]["defaultMode"], 420);
        assert_eq!(
            v[5]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
            3600
        );
        assert_eq!(
            v[5]["projected"]["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            "v1"
        );
        assert_eq!(
            v[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
            "Filesystem"
        );
        assert!(
            v[6]["ephemeral"]["volumeClaimTemplate"]
                .get("status")
                .is_none()
        );
        assert_eq!(v[7]["rbd"]["pool"], "rbd");
        assert_eq!(v[7]["rbd"]["user"], "admin");
        assert_eq!(v[7]["rbd"]["keyring"], "/etc/ceph/keyring");
        assert_eq!(v[8]["iscsi"]["iscsiInterface"], "default");
        assert_eq!(
            v[9]["azureDisk"],
            json!({"diskName": "d", "diskURI": "u", "cachingMode": "ReadWrite",
                "fsType": "ext4", "readOnly": false, "kind": "Shared"})
        );
        assert_eq!(v[10]["scaleIO"]["storageMode"], "ThinProvisioned");
        assert_eq!(v[10]["scaleIO"]["fsType"], "xfs");
        assert!(v[1].get("emptyDir").is_none());
    }

    #[test]
    fn user_set_values_are_kept() {
        let spec = json!({
            "dnsPolicy": "Default",
            "restartPolicy": "Never",
            "schedulerName": "mine",
            "securityContext": {"runAsUser": 1000},
            "terminationGracePeriodSeconds": 0,
            "enableServiceLinks": false,
            "containers": [{
                "name": "c", "image": "nginx", "imagePullPolicy": "Never",
                "terminationMessagePath": "/tmp/x", "terminationMessagePolicy": "FallbackToLogsOnError",
                "resources": {"requests": {"cpu": "1"}},
                "ports": [{"containerPort": 1, "protocol": "SCTP"}],
                "livenessProbe": {"exec": {"command": ["true"]}, "timeoutSeconds": 5, "periodSeconds": 7,
                    "successThreshold": 1, "failureThreshold": 9},
                "readinessProbe": {"httpGet": {"port": 1, "path": "/healthz", "scheme": "HTTPS"}}
            }],
            "volumes": [{"name": "h", "hostPath": {"path": "/", "type": "Directory"}}]
        });
        let pod = defaulted("", "v1", "Pod", json!({"spec": spec.clone()}));
        let mut expected = spec;
        let probe = &mut expected["containers"][0]["readinessProbe"];
        probe["timeoutSeconds"] = json!(1);
        probe["periodSeconds"] = json!(10);
        probe["successThreshold"] = json!(1);
        probe["failureThreshold"] = json!(3);
        assert_eq!(pod["spec"], expected);

        let deploy = defaulted(
            "apps",
            "v1",
            "Deployment",
            json!({"spec": {
                "replicas": 0, "revisionHistoryLimit": 1, "progressDeadlineSeconds": 60,
                "strategy": {"type": "Recreate"}
            }}),
        );
        assert_eq!(deploy["spec"]["replicas"], 0);
        assert_eq!(deploy["spec"]["revisionHistoryLimit"], 1);
        assert_eq!(deploy["spec"]["progressDeadlineSeconds"], 60);
        assert_eq!(deploy["spec"]["strategy"], json!({"type": "Recreate"}));

        let svc = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "NodePort", "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local",
                "ipFamilyPolicy": "PreferDualStack",
                "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}]}}),
        );
        assert_eq!(
            svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
            60
        );
        assert_eq!(svc["spec"]["externalTrafficPolicy"], "Local");
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Local");
        assert_eq!(svc["spec"]["ipFamilyPolicy"], "PreferDualStack");
        assert_eq!(
            svc["spec"]["ports"][0],
            json!({"port": 80, "targetPort": "http", "protocol": "UDP"})
        );
    }

    #[test]
    fn image_pull_policy_rules() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("library/nginx:latest", "Always"),
            ("docker.io/library/nginx", "Always"),
            ("registry.example.com:5000/team/app", "Always"),
            ("registry.example.com:5000/team/app:latest", "Always"),
            ("localhost/app", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("nginx:Latest", "IfNotPresent"),
            ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
            (
                "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            (
                "nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "Always",
            ),
            (
                "nginx:1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            // Unparseable references: the tag is unknown, so IfNotPresent.
            ("", "IfNotPresent"),
            ("Nginx", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
            ("bad image", "IfNotPresent"),
            ("nginx//x", "IfNotPresent"),
            (
                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "IfNotPresent",
            ),
            // An upper-case first component is a domain, which may have upper case.
            ("Registry/app", "Always"),
            ("[::1]:5000/app", "Always"),
            ("my-registry.io/a__b/c-d/e.f:tag_1", "IfNotPresent"),
        ];
        for (image, expected) in cases {
            assert_eq!(default_image_pull_policy(image), expected, "{image}");
            let pod = defaulted(
                "",
                "v1",
                "Pod",
                json!({"spec": {"containers": [{"name": "c", "image": image}]}}),
            );
            assert_eq!(
                pod["spec"]["containers"][0]["imagePullPolicy"], expected,
                "{image}"
            );
        }
        // No image at all parses as "" (invalid): IfNotPresent.
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        // An image of the wrong type is left for the decoder to reject.
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": 7}]}}),
        );
        assert!(
            pod["spec"]["containers"][0]
                .get("imagePullPolicy")
                .is_none()
        );
    }

    #[test]
    fn deployment_template_is_defaulted() {
        let d = defaulted(
            "apps",
            "v1",
            "Deployment",
            json!({
                "metadata": {"name": "d"},
                "spec": {
                    "selector": {"matchLabels": {"app": "d"}},
                    "template": {
                        "metadata": {"labels": {"app": "d"}},
                        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}
                    }
                }
            }),
        );
        assert_eq!(
            d["spec"],
            json!({
                "replicas": 1,
                "selector": {"matchLabels": {"app": "d"}},
                "strategy": {"type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "revisionHistoryLimit": 10,
                "progressDeadlineSeconds": 600,
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": template_spec("nginx:1.27", "IfNotPresent")
                }
            })
        );
        // apps/v1 does not touch the object's labels.
        assert!(d["metadata"].get("labels").is_none());
    }

    #[test]
    fn template_specs_do_not_get_pod_only_defaults() {
        let d = defaulted(
            "apps",
            "v1",
            "ReplicaSet",
            json!({"spec": {"template": {"spec": {"hostNetwork": true, "containers": [{
                "name": "c", "image": "x:1", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"cpu": "1"}}
            }]}}}}),
        );
        let spec = &d["spec"]["template"]["spec"];
        assert!(spec.get("enableServiceLinks").is_none());
        let c = &spec["containers"][0];
        assert!(c["resources"].get("requests").is_none());
        assert!(c["ports"][0].get("hostPort").is_none());
        assert_eq!(d["spec"]["replicas"], 1);
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"selector": {"app": "a"}, "ports": [
                {"port": 80},
                {"port": 443, "targetPort": 0},
                {"port": 53, "targetPort": "", "protocol": "UDP"},
                {"port": 8080, "targetPort": 9090}
            ]}}),
        );
        assert_eq!(
            svc["spec"],
            json!({
                "selector": {"app": "a"},
                "ports": [
                    {"port": 80, "targetPort": 80, "protocol": "TCP"},
                    {"port": 443, "targetPort": 443, "protocol": "TCP"},
                    {"port": 53, "targetPort": 53, "protocol": "UDP"},
                    {"port": 8080, "targetPort": 9090, "protocol": "TCP"}
                ],
                "type": "ClusterIP",
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ipFamilyPolicy": "SingleStack"
            })
        );
        assert!(svc.get("status").is_none());

        let lb = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]},
                "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "h"}]}}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["status"]["loadBalancer"]["ingress"][0]["ipMode"], "VIP");
        assert!(
            lb["status"]["loadBalancer"]["ingress"][1]
                .get("ipMode")
                .is_none()
        );

        let node_port = defaulted("", "v1", "Service", json!({"spec": {"type": "NodePort"}}));
        assert_eq!(node_port["spec"]["externalTrafficPolicy"], "Cluster");
        assert!(
            node_port["spec"]
                .get("allocateLoadBalancerNodePorts")
                .is_none()
        );

        let external_ips = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"externalIPs": ["1.2.3.4"]}}),
        );
        assert_eq!(external_ips["spec"]["externalTrafficPolicy"], "Cluster");

        let external_name = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        for field in [
            "externalTrafficPolicy",
            "internalTrafficPolicy",
            "ipFamilyPolicy",
        ] {
            assert!(external_name["spec"].get(field).is_none(), "{field}");
        }

        let headless = defaulted("", "v1", "Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        let headless_with_selector = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"clusterIPs": ["None"], "selector": {"a": "b"}}}),
        );
        assert_eq!(
            headless_with_selector["spec"]["ipFamilyPolicy"],
            "SingleStack"
        );

        let client_ip = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"sessionAffinity": "ClientIP"}}),
        );
        assert_eq!(
            client_ip["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );
        let none = defaulted(
            "",
            "v1",
            "Service",
            json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
        );
        assert!(none["spec"].get("sessionAffinityConfig").is_none());
    }

    #[test]
    fn cron_job_job_template_is_defaulted() {
        let cj = defaulted(
            "batch",
            "v1",
            "CronJob",
            json!({"spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "c", "image": "busybox"}]
            }}}}}}),
        );
        let mut pod_spec = template_spec("busybox", "Always");
        pod_spec["restartPolicy"] = json!("OnFailure");
        assert_eq!(
            cj["spec"],
            json!({
                "schedule": "*/1 * * * *",
                "concurrencyPolicy": "Allow",
                "suspend": false,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 1,
                // The job template gets no Job defaults (backoffLimit, ...), only pod spec ones.
                "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}
            })
        );
    }

    #[test]
    fn job_defaults() {
        let job = defaulted(
            "batch",
            "v1",
            "Job",
            json!({"metadata": {"name": "j"}, "spec": {"template": {
                "metadata": {"labels": {"app": "j"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            }}}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
        assert_eq!(spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(job["metadata"]["labels"], json!({"app": "j"}));

        // Parallelism alone: completions stay unset.
        let job = defaulted(
            "batch",
            "v1",
            "Job",
            json!({"metadata": {"labels": {"mine": "x"}}, "spec": {
                "parallelism": 3, "backoffLimitPerIndex": 1, "completionMode": "Indexed",
                "podFailurePolicy": {"rules": [{"action": "Ignore",
                    "onPodConditions": [{"type": "DisruptionTarget"}]}]},
                "template": {"metadata": {"labels": {"app": "j"}}, "spec": {}}
            }}),
        );
        let spec = &job["spec"];
        assert_eq!(spec["parallelism"], 3);
        assert!(spec.get("completions").is_none());
        assert_eq!(spec["backoffLimit"], 2147483647);
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!(spec["podReplacementPolicy"], "Failed");
        assert_eq!(
            spec["podFailurePolicy"]["rules"][0]["onPodConditions"][0]["status"],
            "True"
        );
        assert_eq!(job["metadata"]["labels"], json!({"mine": "x"}));

        // As in kube-apiserver, the template's restartPolicy defaults to Always (and Job
        // validation must reject it).
        let job = defaulted(
            "batch",
            "v1",
            "Job",
            json!({"spec": {"template": {"spec": {"containers": []}}}}),
        );
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Always");

        // Completions alone: parallelism defaults to 1.
        let job = defaulted("batch", "v1", "Job", json!({"spec": {"completions": 5}}));
        assert_eq!(job["spec"]["completions"], 5);
        assert_eq!(job["spec"]["parallelism"], 1);
    }

    #[test]
    fn replication_controller_defaults() {
        let rc = defaulted(
            "",
            "v1",
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": {
                "metadata": {"labels": {"app": "rc"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}
            }}}),
        );
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["selector"], json!({"app": "rc"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "rc"}));
        assert_eq!(rc["spec"]["template"]["spec"]["restartPolicy"], "Always");

        let rc = defaulted(
            "",
            "v1",
            "ReplicationController",
            json!({"metadata": {"labels": {"x": "y"}}, "spec": {"replicas": 3, "selector": {"s": "t"},
                "template": {"metadata": {"labels": {"app": "rc"}}}}}),
        );
        assert_eq!(rc["spec"]["replicas"], 3);
        assert_eq!(rc["spec"]["selector"], json!({"s": "t"}));
        assert_eq!(rc["metadata"]["labels"], json!({"x": "y"}));
    }

    #[test]
    fn stateful_set_and_daemon_set_defaults() {
        let sts = defaulted(
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {
                "serviceName": "s",
                "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
            }}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let claim = &spec["volumeClaimTemplates"][0];
        assert_eq!(claim["apiVersion"], "v1");
        assert_eq!(claim["kind"], "PersistentVolumeClaim");
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        assert_eq!(claim["status"], json!({"phase": "Pending"}));
        assert_eq!(
            spec["template"]["spec"]["schedulerName"],
            "default-scheduler"
        );

        // An explicit RollingUpdate without rollingUpdate gets none.
        let sts = defaulted(
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        );
        assert_eq!(
            sts["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
        let sts = defaulted(
            "apps",
            "v1",
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
        );
        assert_eq!(sts["spec"]["updateStrategy"], json!({"type": "OnDelete"}));

        let ds = defaulted("apps", "v1", "DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"],
            json!({"updateStrategy": {"type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                "revisionHistoryLimit": 10})
        );
    }

    #[test]
    fn pod_template_defaults() {
        let pt = defaulted(
            "",
            "v1",
            "PodTemplate",
            json!({"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}),
        );
        assert_eq!(
            pt["template"]["spec"],
            template_spec("nginx:1", "IfNotPresent")
        );
    }

    #[test]
    fn service_account_alias() {
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"serviceAccount": "old", "containers": []}}),
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "old");
        assert_eq!(pod["spec"]["serviceAccount"], "old");
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"serviceAccountName": "new", "serviceAccount": "old"}}),
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "new");
        assert_eq!(pod["spec"]["serviceAccount"], "new");
    }

    #[test]
    fn core_kinds() {
        let secret = defaulted(
            "",
            "v1",
            "Secret",
            json!({"data": {"a": "YQ==", "b": "Yg=="}, "stringData": {"b": "two", "c": "hello!!"}}),
        );
        assert_eq!(
            secret,
            json!({"type": "Opaque", "data": {"a": "YQ==", "b": "dHdv", "c": "aGVsbG8hIQ=="}})
        );
        let secret = defaulted(
            "",
            "v1",
            "Secret",
            json!({"type": "kubernetes.io/tls", "stringData": {}}),
        );
        assert_eq!(secret, json!({"type": "kubernetes.io/tls"}));

        let ns = defaulted("", "v1", "Namespace", json!({"metadata": {"name": "team"}}));
        assert_eq!(
            ns,
            json!({"metadata": {"name": "team", "labels": {"kubernetes.io/metadata.name": "team"}},
                "status": {"phase": "Active"}})
        );

        let pvc = defaulted(
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"accessModes": ["ReadWriteOnce"]}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pvc["status"]["phase"], "Pending");
        let pvc = defaulted(
            "",
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"volumeMode": "Block"}}),
        );
        assert_eq!(pvc["spec"]["volumeMode"], "Block");

        let pv = defaulted(
            "",
            "v1",
            "PersistentVolume",
            json!({"spec": {"hostPath": {"path": "/data"}}}),
        );
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["volumeMode"], "Filesystem");
        assert_eq!(pv["spec"]["hostPath"]["type"], "");
        assert_eq!(pv["status"]["phase"], "Pending");

        let ep = defaulted(
            "",
            "v1",
            "Endpoints",
            json!({"subsets": [{"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}]}),
        );
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(ep["subsets"][0]["ports"][1]["protocol"], "UDP");

        let node = defaulted(
            "",
            "v1",
            "Node",
            json!({"status": {"capacity": {"cpu": "4"}}}),
        );
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));

        let lr = defaulted(
            "",
            "v1",
            "LimitRange",
            json!({"spec": {"limits": [
                {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}},
                {"type": "Pod", "max": {"cpu": "2"}}
            ]}}),
        );
        assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
        assert_eq!(
            lr["spec"]["limits"][0]["defaultRequest"],
            json!({"cpu": "2", "memory": "1Mi"})
        );
        assert!(lr["spec"]["limits"][1].get("default").is_none());

        // ConfigMap: `data: {}` is invisible in Go's output, so nothing is added.
        let cm = defaulted("", "v1", "ConfigMap", json!({"metadata": {"name": "c"}}));
        assert_eq!(cm, json!({"metadata": {"name": "c"}}));
    }

    #[test]
    fn other_groups() {
        let hpa = defaulted(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"maxReplicas": 5}}),
        );
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(
            hpa["spec"]["metrics"],
            json!([{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 80}}}])
        );
        assert!(hpa["spec"].get("behavior").is_none());
        let hpa = defaulted(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            json!({"spec": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}}}),
        );
        assert_eq!(
            hpa["spec"]["behavior"],
            json!({
                "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
                    {"type": "Pods", "value": 4, "periodSeconds": 15},
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]},
                "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Max", "policies": [
                    {"type": "Percent", "value": 100, "periodSeconds": 15}
                ]}
            })
        );
        let hpa = defaulted("autoscaling", "v1", "HorizontalPodAutoscaler", json!({}));
        assert_eq!(hpa["spec"], json!({"minReplicas": 1}));

        let np = defaulted(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}, "egress": [{"ports": [{"port": 53}]}]}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        let np = defaulted(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            json!({"spec": {"podSelector": {}}}),
        );
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress"]));

        let ic = defaulted(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            json!({"spec": {"controller": "x", "parameters": {"kind": "K", "name": "n"}}}),
        );
        assert_eq!(ic["spec"]["parameters"]["scope"], "Cluster");

        let slice = defaulted(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            json!({"addressType": "IPv4", "endpoints": [], "ports": [{"port": 80}]}),
        );
        assert_eq!(
            slice["ports"][0],
            json!({"port": 80, "name": "", "protocol": "TCP"})
        );

        let rb = defaulted(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [
                {"kind": "User", "name": "u"},
                {"kind": "Group", "name": "g"},
                {"kind": "ServiceAccount", "name": "sa", "namespace": "ns"}
            ]}),
        );
        assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][1]["apiGroup"], "rbac.authorization.k8s.io");
        assert!(rb["subjects"][2].get("apiGroup").is_none());

        let pc = defaulted(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"value": 10}),
        );
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
        let pc = defaulted(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            json!({"value": 10, "preemptionPolicy": "Never"}),
        );
        assert_eq!(pc["preemptionPolicy"], "Never");

        let sc = defaulted(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            json!({"provisioner": "p"}),
        );
        assert_eq!(sc["reclaimPolicy"], "Delete");
        assert_eq!(sc["volumeBindingMode"], "Immediate");

        let csi = defaulted("storage.k8s.io", "v1", "CSIDriver", json!({"spec": {}}));
        assert_eq!(
            csi["spec"],
            json!({"attachRequired": true, "podInfoOnMount": false, "storageCapacity": false,
                "fsGroupPolicy": "ReadWriteOnceWithFSType", "volumeLifecycleModes": ["Persistent"],
                "requiresRepublish": false, "seLinuxMount": false})
        );

        let mwc = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            json!({"webhooks": [{"name": "w", "clientConfig": {"service": {"name": "s", "namespace": "n"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
                "sideEffects": "None", "admissionReviewVersions": ["v1"]}]}),
        );
        let w = &mwc["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["objectSelector"], json!({}));
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        let vwc = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            json!({"webhooks": [{"name": "w"}]}),
        );
        assert!(vwc["webhooks"][0].get("reinvocationPolicy").is_none());
        assert_eq!(vwc["webhooks"][0]["failurePolicy"], "Fail");

        let vap = defaulted(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            json!({"spec": {"matchConstraints": {"resourceRules": [{"operations": ["CREATE"]}]}}}),
        );
        assert_eq!(vap["spec"]["failurePolicy"], "Fail");
        assert_eq!(
            vap["spec"]["matchConstraints"],
            json!({"resourceRules": [{"operations": ["CREATE"], "scope": "*"}],
                "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {}})
        );

        let plc = defaulted(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "PriorityLevelConfiguration",
            json!({"spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queuing", "queuing": {}}}}}),
        );
        assert_eq!(
            plc["spec"]["limited"],
            json!({"nominalConcurrencyShares": 30, "lendablePercent": 0,
                "limitResponse": {"type": "Queuing",
                    "queuing": {"handSize": 8, "queues": 64, "queueLengthLimit": 50}}})
        );
        let fs = defaulted(
            "flowcontrol.apiserver.k8s.io",
            "v1",
            "FlowSchema",
            json!({"spec": {}}),
        );
        assert_eq!(fs["spec"]["matchingPrecedence"], 1000);

        let crd = defaulted(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            json!({"spec": {"group": "g", "names": {"kind": "CronTab", "plural": "crontabs"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": false},
                             {"name": "v2", "served": true, "storage": true}]}}),
        );
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["storedVersions"], json!(["v2"]));
    }

    #[test]
    fn lists_default_their_items() {
        let list = defaulted(
            "",
            "v1",
            "SecretList",
            json!({"items": [{"metadata": {"name": "a"}}, {"type": "x"}]}),
        );
        assert_eq!(list["items"][0]["type"], "Opaque");
        assert_eq!(list["items"][1]["type"], "x");
    }

    #[test]
    fn unknown_kinds_are_left_alone() {
        let object = json!({"spec": {"containers": [{"name": "c"}]}});
        for (group, version, kind) in [
            ("", "v1", "ConfigMap"),
            ("", "v1", "Event"),
            ("coordination.k8s.io", "v1", "Lease"),
            ("policy", "v1", "PodDisruptionBudget"),
            ("example.com", "v1", "Pod"),
            ("", "v2", "Pod"),
            ("", "v1", "List"),
        ] {
            assert_eq!(
                defaulted(group, version, kind, object.clone()),
                object,
                "{kind}"
            );
        }
    }

    #[test]
    fn defaulting_is_idempotent() {
        let cases = [
            (
                "",
                "v1",
                "Pod",
                json!({"spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"limits": {"cpu": "1"}}}], "volumes": [{"name": "v"}]}}),
            ),
            (
                "",
                "v1",
                "Service",
                json!({"spec": {"ports": [{"port": 80}]}}),
            ),
            ("", "v1", "Secret", json!({"stringData": {"a": "b"}})),
            (
                "apps",
                "v1",
                "StatefulSet",
                json!({"spec": {"volumeClaimTemplates": [{}]}}),
            ),
            (
                "batch",
                "v1",
                "Job",
                json!({"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}),
            ),
        ];
        for (group, version, kind, object) in cases {
            let once = defaulted(group, version, kind, object);
            let twice = defaulted(group, version, kind, once.clone());
            assert_eq!(once, twice, "{kind}");
        }
    }

    #[test]
    fn wrong_types_never_panic_and_are_left_alone() {
        let weird = [
            json!(null),
            json!("pod"),
            json!(42),
            json!([1, 2]),
            json!({"spec": null}),
            json!({"spec": "x"}),
            json!({"spec": []}),
            json!({"metadata": "x", "spec": {"template": "x", "jobTemplate": 1, "selector": 3}}),
            json!({"spec": {"containers": "x", "initContainers": [1, null, "x", []],
                "volumes": {"a": 1}, "securityContext": "x", "strategy": 5, "updateStrategy": "x",
                "ports": [{"port": "x", "targetPort": []}], "behavior": 1, "limits": [{"type": "Container", "max": 1, "default": 2}]}}),
            json!({"spec": {"containers": [{"image": [], "resources": 1, "ports": "x",
                "env": [{"valueFrom": 1}], "livenessProbe": [], "lifecycle": {"preStop": 1}}]}}),
            json!({"spec": {"template": {"metadata": {"labels": "x"}, "spec": {"containers": [{"name": 1}]}}},
                "metadata": {"labels": 7}}),
            json!({"stringData": {"a": 1}, "data": "x", "items": "x", "subsets": [{"ports": 1}], "status": []}),
            json!({"stringData": {"a": "b"}, "data": 1}),
            json!({"metadata": {"name": 5, "labels": "x"}, "roleRef": 1, "subjects": [1]}),
            json!({"spec": {"names": {"kind": 1}, "versions": 1, "conversion": 1}, "webhooks": [{"rules": 1, "clientConfig": 1}]}),
        ];
        let kinds = [
            ("", "v1", "Pod"),
            ("", "v1", "PodList"),
            ("", "v1", "PodTemplate"),
            ("", "v1", "ReplicationController"),
            ("", "v1", "Service"),
            ("", "v1", "Endpoints"),
            ("", "v1", "Secret"),
            ("", "v1", "Namespace"),
            ("", "v1", "Node"),
            ("", "v1", "PersistentVolume"),
            ("", "v1", "PersistentVolumeClaim"),
            ("", "v1", "LimitRange"),
            ("apps", "v1", "Deployment"),
            ("apps", "v1", "ReplicaSet"),
            ("apps", "v1", "StatefulSet"),
            ("apps", "v1", "DaemonSet"),
            ("batch", "v1", "Job"),
            ("batch", "v1", "CronJob"),
            ("autoscaling", "v1", "HorizontalPodAutoscaler"),
            ("autoscaling", "v2", "HorizontalPodAutoscaler"),
            ("networking.k8s.io", "v1", "NetworkPolicy"),
            ("networking.k8s.io", "v1", "IngressClass"),
            ("discovery.k8s.io", "v1", "EndpointSlice"),
            ("rbac.authorization.k8s.io", "v1", "RoleBinding"),
            ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding"),
            ("scheduling.k8s.io", "v1", "PriorityClass"),
            ("storage.k8s.io", "v1", "StorageClass"),
            ("storage.k8s.io", "v1", "CSIDriver"),
            (
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingWebhookConfiguration",
            ),
            (
                "admissionregistration.k8s.io",
                "v1",
                "MutatingWebhookConfiguration",
            ),
            (
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingAdmissionPolicy",
            ),
            (
                "admissionregistration.k8s.io",
                "v1",
                "ValidatingAdmissionPolicyBinding",
            ),
            ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema"),
            (
                "flowcontrol.apiserver.k8s.io",
                "v1",
                "PriorityLevelConfiguration",
            ),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ];
        for (group, version, kind) in kinds {
            for object in &weird {
                let _ = defaulted(group, version, kind, object.clone());
            }
        }
        // Fields of the wrong type keep their value.
        let pod = defaulted(
            "",
            "v1",
            "Pod",
            json!({"spec": {"securityContext": "x", "dnsPolicy": 3, "terminationGracePeriodSeconds": "30",
                "containers": [{"name": "c", "image": "nginx", "resources": 1, "terminationMessagePath": false}]}}),
        );
        assert_eq!(pod["spec"]["securityContext"], "x");
        assert_eq!(pod["spec"]["dnsPolicy"], 3);
        assert_eq!(pod["spec"]["terminationGracePeriodSeconds"], "30");
        assert_eq!(pod["spec"]["containers"][0]["resources"], 1);
        assert_eq!(
            pod["spec"]["containers"][0]["terminationMessagePath"],
            false
        );
        let secret = defaulted("", "v1", "Secret", json!({"stringData": {"a": 1}}));
        assert_eq!(secret["stringData"], json!({"a": 1}));
        assert!(secret.get("data").is_none());
    }

    #[test]
    fn base64_matches_the_standard_encoding() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }
}
