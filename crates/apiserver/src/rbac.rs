//! Authorization: what an authenticated user may do, by kube's rules.
//!
//! - Members of `system:masters` may do everything, as kube-apiserver's privileged-group
//!   authorizer lets them, without a lookup.
//! - Everyone else is authorized by RBAC (kube's `rbac.authorization.k8s.io/v1`): the rules
//!   of the ClusterRoles that ClusterRoleBindings bind to the user (by name, group or
//!   service account), then those of the Roles and ClusterRoles that RoleBindings in the
//!   request's namespace bind to them. Rules match as kube's do (`*` for verbs, groups,
//!   resources; `*/subresource`; resourceNames; nonResourceURLs with a trailing `*`). The
//!   objects are read from the watch cache, as kube's authorizer reads its informers.
//! - Creating or updating a Role, ClusterRole or binding needs the permissions it grants
//!   (or `escalate` on the role, `bind` on the bound role), as kube's RBAC registry checks,
//!   so no one grants what they do not hold.
//!
//! The request's attributes are kube's `RequestInfo`: the verb from the method (`list`,
//! `watch`, `deletecollection` for collections), the namespace (a namespace's own name for
//! `namespaces`), the name (also from a `metadata.name` field selector of a list or watch);
//! discovery, OpenAPI and metrics are non-resource paths with the method as the verb.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::State;
use crate::auth::User;
use crate::cache::Cached;
use crate::errors::ApiError;
use crate::routes::Route;

/// The group every cluster-wide privilege is given to.
pub const MASTERS: &str = "system:masters";
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";

/// What a request asks to do (kube's `authorizer.Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    /// A request on a resource, else on a non-resource path.
    pub resource_request: bool,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The URL path of a non-resource request.
    pub path: String,
}

impl Attributes {
    /// The attributes of a request, as kube's `RequestInfoFactory` makes them.
    pub fn of(route: &Route, method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let Route::Resource(rp) = route else {
            return Self {
                verb: method.as_str().to_ascii_lowercase(),
                path: path.to_owned(),
                ..Self::default()
            };
        };
        let query = crate::http_util::query(query);
        let watch = rp.legacy_watch || query.get("watch").is_some_and(|w| w == "true" || w == "1");
        let collection = rp.name.is_none();
        let verb = match *method {
            http::Method::GET | http::Method::HEAD if watch => "watch",
            http::Method::GET | http::Method::HEAD if collection => "list",
            http::Method::GET | http::Method::HEAD => "get",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE if collection => "deletecollection",
            http::Method::DELETE => "delete",
            _ => "",
        };
        let mut name = rp.name.clone().unwrap_or_default();
        if collection && matches!(verb, "list" | "watch") {
            // kube authorizes a list or watch of one name as on that name.
            if let Some(selected) = query
                .get("fieldSelector")
                .and_then(|s| name_from_field_selector(s))
            {
                name = selected;
            }
        }
        let namespace = match &rp.namespace {
            Some(ns) => ns.clone(),
            // A namespace is in itself.
            None if rp.group.is_empty() && rp.plural == "namespaces" => name.clone(),
            None => String::new(),
        };
        Self {
            verb: verb.to_owned(),
            resource_request: true,
            group: rp.group.clone(),
            resource: rp.plural.clone(),
            subresource: rp.subresource.clone().unwrap_or_default(),
            namespace,
            name,
            path: path.to_owned(),
        }
    }

    /// `resource` or `resource/subresource`, as rules and messages name it.
    fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The name a field selector `metadata.name=X` (or `==`) picks, if it picks one.
fn name_from_field_selector(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (field, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(f, _)| !f.ends_with('!'))?;
        (field.trim() == "metadata.name").then(|| value.trim().to_owned())
    })
}

/// An authorizer's answer: allowed or not, and why (kube's reason, empty when none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Whether `user` may do what `attributes` say, and which binding allows it (kube's
/// reason, for access reviews; RBAC gives none when it denies).
pub fn authorize(state: &State, user: &User, attributes: &Attributes) -> Decision {
    if is_master(user) {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    let mut reason = String::new();
    let allowed = visit_rules(state, user, &attributes.namespace, &mut |source, rule| {
        let allows = rule_allows(rule, attributes);
        if allows {
            reason = format!("RBAC: allowed by {source}");
        }
        allows
    });
    Decision { allowed, reason }
}

/// Whether `user` may do what `attributes` say, without saying why (every request asks).
fn allowed(state: &State, user: &User, attributes: &Attributes) -> bool {
    is_master(user)
        || visit_rules(state, user, &attributes.namespace, &mut |_, rule| {
            rule_allows(rule, attributes)
        })
}

fn is_master(user: &User) -> bool {
    user.groups.iter().any(|g| g == MASTERS)
}

/// Authorizes a request: a 403 in kube's words when it is not allowed.
pub fn check(state: &State, user: &User, attributes: &Attributes) -> Result<(), ApiError> {
    let create;
    let refused = if !allowed(state, user, attributes) {
        attributes
    } else if attributes.verb == "get" && websocket_subresource(attributes) {
        // kube (AuthorizePodWebsocketUpgradeCreatePermission) also wants `create` for a
        // WebSocket's GET on exec, attach and portforward, as SPDY's POST needs.
        create = Attributes {
            verb: "create".into(),
            ..attributes.clone()
        };
        if allowed(state, user, &create) {
            return Ok(());
        }
        &create
    } else {
        return Ok(());
    };
    if user.name.starts_with("system:") && !user.name.starts_with("system:serviceaccount:") {
        // A component of the cluster refused is an operator's problem to see.
        tracing::warn!(user = %user.name, attributes = ?refused, "forbidden");
    } else {
        tracing::debug!(user = %user.name, attributes = ?refused, "forbidden");
    }
    Err(forbidden(user, refused))
}

fn websocket_subresource(a: &Attributes) -> bool {
    a.group.is_empty()
        && a.resource == "pods"
        && matches!(a.subresource.as_str(), "exec" | "attach" | "portforward")
}

/// kube's 403: `pods is forbidden: User "u" cannot list resource "pods" in API group "" in
/// the namespace "default"`.
pub fn forbidden(user: &User, a: &Attributes) -> ApiError {
    let why = if !a.resource_request {
        format!("User {:?} cannot {} path {:?}", user.name, a.verb, a.path)
    } else if !a.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name,
            a.verb,
            a.combined_resource(),
            a.group,
            a.namespace
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name,
            a.verb,
            a.combined_resource(),
            a.group
        )
    };
    forbidden_on(&a.group, &a.resource, &a.name, &why)
}

/// kube's `NewForbidden(groupResource, name, err)`.
fn forbidden_on(group: &str, resource: &str, name: &str, why: &str) -> ApiError {
    let message = if resource.is_empty() {
        format!("forbidden: {why}")
    } else {
        let qualified = if group.is_empty() {
            resource.to_owned()
        } else {
            format!("{resource}.{group}")
        };
        if name.is_empty() {
            format!("{qualified} is forbidden: {why}")
        } else {
            format!("{qualified} {name:?} is forbidden: {why}")
        }
    };
    ApiError::forbidden(group, resource, name, message)
}

/// The store key of an RBAC object.
fn key(plural: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("/registry/{GROUP}/{plural}/{ns}/{name}"),
        None => format!("/registry/{GROUP}/{plural}/{name}"),
    }
}

fn all(state: &State, plural: &str, namespace: Option<&str>) -> Vec<Arc<Cached>> {
    let prefix = format!("/registry/{GROUP}/{plural}/");
    let within = match namespace {
        Some(ns) => format!("{prefix}{ns}/"),
        None => prefix.clone(),
    };
    state
        .cacher
        .page(&prefix, &within, None, 0, &|_| true)
        .items
}

/// The strings of a JSON array (none when it is not one).
pub(crate) fn str_list(value: &Value) -> impl Iterator<Item = &str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// Whether a binding's subject is `user` (kube's `appliesToUser`).
fn applies_to(subject: &Value, user: &User, binding_namespace: &str) -> bool {
    let name = subject["name"].as_str().unwrap_or_default();
    match subject["kind"].as_str().unwrap_or_default() {
        "User" => user.name == name,
        "Group" => user.groups.iter().any(|g| g == name),
        "ServiceAccount" => {
            let namespace = subject["namespace"]
                .as_str()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(binding_namespace);
            user.name
                .strip_prefix("system:serviceaccount:")
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(ns, sa)| ns == namespace && sa == name)
        }
        _ => false,
    }
}

/// kube's `describeSubject`.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let kind = subject["kind"].as_str().unwrap_or_default();
    let name = subject["name"].as_str().unwrap_or_default();
    if kind == "ServiceAccount" {
        let ns = subject["namespace"]
            .as_str()
            .filter(|ns| !ns.is_empty())
            .unwrap_or(binding_namespace);
        format!("{kind} {:?}", format!("{name}/{ns}"))
    } else {
        format!("{kind} {name:?}")
    }
}

/// The role a binding refers to (a Role in the binding's namespace, or a ClusterRole),
/// if it exists.
fn bound_role(state: &State, role_ref: &Value, namespace: Option<&str>) -> Option<Arc<Cached>> {
    let name = role_ref["name"].as_str()?;
    let key = match (role_ref["kind"].as_str()?, namespace) {
        ("ClusterRole", _) => key("clusterroles", None, name),
        ("Role", Some(ns)) => key("roles", Some(ns), name),
        _ => return None,
    };
    state.cacher.get(&key)
}

/// Where a rule comes from: a binding of a role to a subject.
pub struct Source<'a> {
    binding: &'a Value,
    subject: &'a Value,
    /// The binding's namespace; empty for a ClusterRoleBinding.
    namespace: &'a str,
}

impl std::fmt::Display for Source<'_> {
    /// kube's `clusterRoleBindingDescriber` and `roleBindingDescriber`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.binding["metadata"]["name"]
            .as_str()
            .unwrap_or_default();
        let role = &self.binding["roleRef"];
        let (kind, role_name) = (
            role["kind"].as_str().unwrap_or_default(),
            role["name"].as_str().unwrap_or_default(),
        );
        let subject = describe_subject(self.subject, self.namespace);
        if self.namespace.is_empty() {
            write!(
                f,
                "ClusterRoleBinding {name:?} of {kind} {role_name:?} to {subject}"
            )
        } else {
            let name = format!("{name}/{}", self.namespace);
            write!(
                f,
                "RoleBinding {name:?} of {kind} {role_name:?} to {subject}"
            )
        }
    }
}

/// Calls `visit` with each rule that applies to `user` cluster-wide and, when `namespace`
/// is not empty, in that namespace, with where it comes from; true as soon as `visit` is.
fn visit_rules(
    state: &State,
    user: &User,
    namespace: &str,
    visit: &mut dyn FnMut(&Source<'_>, &Value) -> bool,
) -> bool {
    let cluster = all(state, "clusterrolebindings", None);
    let local = if namespace.is_empty() {
        Vec::new()
    } else {
        all(state, "rolebindings", Some(namespace))
    };
    let bindings = cluster
        .iter()
        .map(|b| (b, ""))
        .chain(local.iter().map(|b| (b, namespace)));
    for (binding, binding_namespace) in bindings {
        let binding = &binding.value;
        let Some(subject) =
            str_objects(&binding["subjects"]).find(|s| applies_to(s, user, binding_namespace))
        else {
            continue;
        };
        let within = Some(binding_namespace).filter(|ns| !ns.is_empty());
        let Some(role) = bound_role(state, &binding["roleRef"], within) else {
            continue;
        };
        let source = Source {
            binding,
            subject,
            namespace: binding_namespace,
        };
        if str_objects(&role.value["rules"]).any(|rule| visit(&source, rule)) {
            return true;
        }
    }
    false
}

fn str_objects(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// The rules that apply to `user` in `namespace` (cluster-wide ones too), in the order
/// kube's rule resolver gives them.
pub fn rules_for(state: &State, user: &User, namespace: &str) -> Vec<Value> {
    let mut rules = Vec::new();
    visit_rules(state, user, namespace, &mut |_, rule| {
        rules.push(rule.clone());
        false
    });
    rules
}

/// Whether one of `rule`'s values is `*` or `want`.
fn has(rule: &Value, field: &str, want: &str) -> bool {
    str_list(&rule[field]).any(|v| v == "*" || v == want)
}

/// Whether `rule` allows `a` (kube's `RuleAllows`).
pub fn rule_allows(rule: &Value, a: &Attributes) -> bool {
    if !has(rule, "verbs", &a.verb) {
        return false;
    }
    if !a.resource_request {
        return str_list(&rule["nonResourceURLs"]).any(|url| url_matches(url, &a.path));
    }
    has(rule, "apiGroups", &a.group)
        && resource_matches(rule, &a.resource, &a.subresource)
        && names_match(rule, &a.name)
}

fn url_matches(rule_url: &str, path: &str) -> bool {
    rule_url == "*"
        || rule_url == path
        || rule_url
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

/// Whether one of `rule`'s resources is `*`, the resource (with its subresource, if
/// any), or `*/subresource` (kube's `ResourceMatches`).
fn resource_matches(rule: &Value, resource: &str, subresource: &str) -> bool {
    str_list(&rule["resources"]).any(|r| {
        r == "*"
            || match r.split_once('/') {
                None => subresource.is_empty() && r == resource,
                Some((res, sub)) => {
                    !subresource.is_empty() && sub == subresource && (res == resource || res == "*")
                }
            }
    })
}

fn names_match(rule: &Value, name: &str) -> bool {
    let mut names = str_list(&rule["resourceNames"]).peekable();
    names.peek().is_none() || names.any(|n| n == name)
}

/// One permission a rule grants: a verb on one group's resource (maybe one name), or on a
/// non-resource URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Atom {
    verb: String,
    group: String,
    resource: String,
    name: String,
    url: String,
}

/// kube's `BreakdownRule`: each permission `rule` grants, alone.
fn breakdown(rule: &Value) -> Vec<Atom> {
    let mut atoms = Vec::new();
    for verb in str_list(&rule["verbs"]) {
        for group in str_list(&rule["apiGroups"]) {
            for resource in str_list(&rule["resources"]) {
                let names: Vec<&str> = str_list(&rule["resourceNames"]).collect();
                for name in if names.is_empty() { vec![""] } else { names } {
                    atoms.push(Atom {
                        verb: verb.into(),
                        group: group.into(),
                        resource: resource.into(),
                        name: name.into(),
                        url: String::new(),
                    });
                }
            }
        }
        for url in str_list(&rule["nonResourceURLs"]) {
            atoms.push(Atom {
                verb: verb.into(),
                group: String::new(),
                resource: String::new(),
                name: String::new(),
                url: url.into(),
            });
        }
    }
    atoms
}

/// Whether an owner's rule grants `atom` (kube's `ruleCovers`: `*` in the owner's rule
/// covers anything, `*` in the atom only `*`).
fn covers(owner: &Value, atom: &Atom) -> bool {
    if !has(owner, "verbs", &atom.verb) {
        return false;
    }
    if !atom.url.is_empty() {
        return str_list(&owner["nonResourceURLs"]).any(|u| url_matches(u, &atom.url));
    }
    let (resource, subresource) = atom
        .resource
        .split_once('/')
        .unwrap_or((&atom.resource, ""));
    has(owner, "apiGroups", &atom.group)
        && resource_matches(owner, resource, subresource)
        && names_match(owner, &atom.name)
}

/// kube's `ConfirmNoEscalation`: a 403 naming the permissions in `rules` that `user` does
/// not hold in `namespace` (cluster-wide when empty).
fn confirm_no_escalation(
    state: &State,
    user: &User,
    namespace: &str,
    rules: &Value,
    (group, resource, name): (&str, &str, &str),
) -> Result<(), ApiError> {
    let owner = rules_for(state, user, namespace);
    let missing: Vec<Atom> = str_objects(rules)
        .flat_map(breakdown)
        .filter(|atom| !owner.iter().any(|rule| covers(rule, atom)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = compact(&missing).iter().map(describe_rule).collect();
    let why = format!(
        "user {:?} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        go_quoted(&user.groups),
        listed.join("\n")
    );
    Err(forbidden_on(group, resource, name, &why))
}

/// Go's `%q` of a list of strings: `["a" "b"]`.
fn go_quoted<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{:?}", i.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}

/// Permissions of the same group, resource, name or URL together, with their verbs (kube's
/// `CompactRules`), in the order they came.
fn compact(atoms: &[Atom]) -> Vec<(Atom, Vec<String>)> {
    let mut rules: Vec<(Atom, Vec<String>)> = Vec::new();
    for atom in atoms {
        let key = Atom {
            verb: String::new(),
            ..atom.clone()
        };
        match rules.iter_mut().find(|(k, _)| *k == key) {
            Some((_, verbs)) => verbs.push(atom.verb.clone()),
            None => rules.push((key, vec![atom.verb.clone()])),
        }
    }
    rules
}

/// kube's `CompactString` of a rule.
fn describe_rule((atom, verbs): &(Atom, Vec<String>)) -> String {
    let mut parts = Vec::new();
    if atom.url.is_empty() {
        parts.push(format!("APIGroups:{}", go_quoted(&[&atom.group])));
        parts.push(format!("Resources:{}", go_quoted(&[&atom.resource])));
    } else {
        parts.push(format!("NonResourceURLs:{}", go_quoted(&[&atom.url])));
    }
    if !atom.name.is_empty() {
        parts.push(format!("ResourceNames:{}", go_quoted(&[&atom.name])));
    }
    parts.push(format!("Verbs:{}", go_quoted(verbs)));
    format!("{{{}}}", parts.join(", "))
}

/// The checks kube's RBAC registry makes of a Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding that `user` creates or updates: a role's rules must be held by the
/// user (or they may `escalate` it); a binding's role must be held (or they may `bind`
/// it); an aggregating ClusterRole only from a privileged user.
pub fn check_grant(
    state: &State,
    user: &User,
    plural: &str,
    namespace: Option<&str>,
    object: &Value,
) -> Result<(), ApiError> {
    if is_master(user) {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let ns = namespace.unwrap_or_default();
    let may = |verb: &str, resource: &str, name: &str| {
        allowed(
            state,
            user,
            &Attributes {
                verb: verb.into(),
                resource_request: true,
                group: GROUP.into(),
                resource: resource.into(),
                namespace: ns.into(),
                name: name.into(),
                ..Attributes::default()
            },
        )
    };
    match plural {
        "roles" | "clusterroles" => {
            if may("escalate", plural, name) {
                Ok(())
            } else if !object["aggregationRule"].is_null() {
                Err(forbidden_on(
                    GROUP,
                    plural,
                    name,
                    "must have cluster-admin privileges to use the aggregationRule",
                ))
            } else {
                confirm_no_escalation(state, user, ns, &object["rules"], (GROUP, plural, name))
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = &object["roleRef"];
            let role_name = role_ref["name"].as_str().unwrap_or_default();
            let role_plural = match role_ref["kind"].as_str() {
                Some("Role") => "roles",
                _ => "clusterroles",
            };
            if may("bind", role_plural, role_name) {
                return Ok(());
            }
            let Some(role) = bound_role(state, role_ref, namespace) else {
                return Err(ApiError::not_found(GROUP, role_plural, role_name));
            };
            confirm_no_escalation(state, user, ns, &role.value["rules"], (GROUP, plural, name))
        }
        _ => Ok(()),
    }
}

/// Whether an update of an RBAC object changes only what the garbage collector writes
/// (owner references, finalizers), which kube lets through without the grant checks.
pub fn only_gc_fields_differ(old: &Value, new: &Value) -> bool {
    let without = |object: &Value| {
        let mut object = object.clone();
        if let Some(meta) = object["metadata"].as_object_mut() {
            for field in [
                "ownerReferences",
                "finalizers",
                "resourceVersion",
                "managedFields",
            ] {
                meta.remove(field);
            }
        }
        object
    };
    without(old) == without(new)
}

/// The user a request acts as: the authenticated `user`, or whom its `Impersonate-User`,
/// `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-KEY` headers name when
/// `user` may `impersonate` each of them (kube's impersonation filter: users, groups and
/// service accounts in the core group, uids and `userextras/KEY` in
/// `authentication.k8s.io`).
pub fn impersonate(state: &State, user: User, headers: &http::HeaderMap) -> Result<User, ApiError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    let name = values("impersonate-user").into_iter().next();
    let groups = values("impersonate-group");
    let uid = values("impersonate-uid").into_iter().next();
    let mut extra: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (header, value) in headers {
        if let Some(key) = header.as_str().strip_prefix("impersonate-extra-")
            && let Ok(value) = value.to_str()
        {
            extra
                // kube escapes keys that are not header tokens (`url.PathUnescape`).
                .entry(crate::http_util::path_unescape(key))
                .or_default()
                .push(value.to_owned());
        }
    }
    let Some(name) = name else {
        if groups.is_empty() && uid.is_none() && extra.is_empty() {
            return Ok(user);
        }
        return Err(ApiError::internal(
            "requested impersonation of groups, a uid or extra without impersonating a user",
        ));
    };
    let may = |attributes: Attributes| -> Result<(), ApiError> {
        if allowed(state, &user, &attributes) {
            Ok(())
        } else {
            Err(forbidden(&user, &attributes))
        }
    };
    let ask =
        |group: &str, resource: &str, subresource: &str, namespace: &str, name: &str| Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: namespace.into(),
            name: name.into(),
            ..Attributes::default()
        };
    let account = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.split_once(':'));
    match account {
        Some((ns, sa)) => may(ask("", "serviceaccounts", "", ns, sa))?,
        None => may(ask("", "users", "", "", &name))?,
    }
    for group in &groups {
        may(ask("", "groups", "", "", group))?;
    }
    if let Some(uid) = &uid {
        may(ask("authentication.k8s.io", "uids", "", "", uid))?;
    }
    for (key, values) in &extra {
        for value in values {
            may(ask("authentication.k8s.io", "userextras", key, "", value))?;
        }
    }
    let mut all_groups = groups;
    if let Some((ns, _)) = account
        && all_groups.is_empty()
    {
        all_groups = vec![
            "system:serviceaccounts".to_owned(),
            format!("system:serviceaccounts:{ns}"),
        ];
    }
    if name != "system:anonymous" && !all_groups.iter().any(|g| g == "system:authenticated") {
        all_groups.push("system:authenticated".to_owned());
    }
    Ok(User {
        name,
        groups: all_groups,
        uid: uid.unwrap_or_default(),
        extra,
    })
}

/// The attributes a SubjectAccessReview's spec asks about.
pub fn review_attributes(spec: &Value) -> Attributes {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    if let Some(r) = spec["resourceAttributes"].as_object() {
        let field = |f: &str| r.get(f).map(text).unwrap_or_default();
        Attributes {
            verb: field("verb"),
            resource_request: true,
            group: field("group"),
            resource: field("resource"),
            subresource: field("subresource"),
            namespace: field("namespace"),
            name: field("name"),
            path: String::new(),
        }
    } else {
        let r = &spec["nonResourceAttributes"];
        Attributes {
            verb: text(&r["verb"]),
            path: text(&r["path"]),
            ..Attributes::default()
        }
    }
}

/// A SubjectAccessReview's status for `decision`.
pub fn review_status(decision: &Decision) -> Value {
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    status
}

/// A SelfSubjectRulesReview's status: the rules of `user` in `namespace`, resource and
/// non-resource apart.
pub fn rules_review_status(state: &State, user: &User, namespace: &str) -> Value {
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules_for(state, user, namespace) {
        let verbs = rule["verbs"].clone();
        if rule["nonResourceURLs"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
        {
            non_resource_rules
                .push(json!({"verbs": verbs, "nonResourceURLs": rule["nonResourceURLs"]}));
            continue;
        }
        let mut out = json!({
            "verbs": verbs,
            "apiGroups": rule["apiGroups"],
            "resources": rule["resources"],
        });
        if rule["resourceNames"]
            .as_array()
            .is_some_and(|n| !n.is_empty())
        {
            out["resourceNames"] = rule["resourceNames"].clone();
        }
        resource_rules.push(out);
    }
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, query: Option<&str>) -> Attributes {
        let method = http::Method::from_bytes(method.as_bytes()).unwrap_or(http::Method::GET);
        Attributes::of(&crate::routes::parse(path), &method, path, query)
    }

    #[test]
    fn requests_have_kubes_attributes() {
        let a = request("GET", "/api/v1/namespaces/default/pods", None);
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str(), a.resource.as_str()),
            ("list", "default", "pods")
        );
        let a = request("GET", "/api/v1/pods", Some("watch=1"));
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("watch", ""));
        let a = request(
            "GET",
            "/api/v1/namespaces/a/pods",
            Some("fieldSelector=metadata.name%3Dweb&watch=true"),
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = request("DELETE", "/apis/apps/v1/namespaces/a/deployments", None);
        assert_eq!(
            (a.verb.as_str(), a.group.as_str()),
            ("deletecollection", "apps")
        );
        let a = request("POST", "/api/v1/namespaces/a/pods/p/exec", None);
        assert_eq!(
            (
                a.verb.as_str(),
                a.combined_resource().as_str(),
                a.name.as_str()
            ),
            ("create", "pods/exec", "p")
        );
        // A namespace is in itself.
        let a = request("GET", "/api/v1/namespaces/kube-system", None);
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str()),
            ("get", "kube-system")
        );
        let a = request("GET", "/apis/apps/v1", None);
        assert!(!a.resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/apis/apps/v1"));
    }

    #[test]
    fn rules_match_as_kubes_do() {
        let attrs = |verb: &str, group: &str, resource: &str, sub: &str, name: &str| Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Attributes::default()
        };
        let rule =
            json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/log"]});
        assert!(rule_allows(&rule, &attrs("get", "", "pods", "", "p")));
        assert!(!rule_allows(&rule, &attrs("delete", "", "pods", "", "p")));
        assert!(!rule_allows(&rule, &attrs("get", "apps", "pods", "", "p")));
        // A rule for pods does not grant their subresources; `*/log` grants every log.
        assert!(!rule_allows(&rule, &attrs("get", "", "pods", "exec", "p")));
        assert!(rule_allows(&rule, &attrs("get", "", "pods", "log", "p")));
        let named = json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["configmaps"], "resourceNames": ["a"]});
        assert!(rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "a")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("update", "", "configmaps", "", "b")
        ));
        assert!(!rule_allows(
            &named,
            &attrs("list", "", "configmaps", "", "")
        ));
        let urls = json!({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]});
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(rule_allows(&urls, &path("/apis/apps/v1")));
        assert!(rule_allows(&urls, &path("/version")));
        assert!(!rule_allows(&urls, &path("/metrics")));
        assert!(!rule_allows(&rule, &path("/version")));
    }

    #[test]
    fn service_account_subjects_default_to_the_bindings_namespace() {
        let user = User {
            name: "system:serviceaccount:team:builder".into(),
            groups: vec!["system:serviceaccounts".into()],
            ..User::default()
        };
        let sa = json!({"kind": "ServiceAccount", "name": "builder"});
        assert!(applies_to(&sa, &user, "team"));
        assert!(!applies_to(&sa, &user, "other"));
        let group = json!({"kind": "Group", "name": "system:serviceaccounts"});
        assert!(applies_to(&group, &user, ""));
        assert_eq!(
            describe_subject(&sa, "team"),
            "ServiceAccount \"builder/team\""
        );
    }

    #[test]
    fn a_grant_is_covered_only_by_rules_that_hold_it() {
        let owner = json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "configmaps"]});
        let wanted = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]});
        assert!(breakdown(&wanted).iter().all(|a| covers(&owner, a)));
        let more = json!({"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods"]});
        let missing: Vec<Atom> = breakdown(&more)
            .into_iter()
            .filter(|a| !covers(&owner, a))
            .collect();
        assert_eq!(
            compact(&missing)
                .iter()
                .map(describe_rule)
                .collect::<Vec<_>>(),
            [r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#]
        );
        let two = json!({"verbs": ["create", "update"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s"]});
        assert_eq!(
            compact(&breakdown(&two))
                .iter()
                .map(describe_rule)
                .collect::<Vec<_>>(),
            [
                r#"{APIGroups:[""], Resources:["secrets"], ResourceNames:["s"], Verbs:["create" "update"]}"#
            ]
        );
        // `*` asked for is held only by `*`.
        let star = json!({"verbs": ["*"], "apiGroups": [""], "resources": ["pods"]});
        assert!(!breakdown(&star).iter().all(|a| covers(&owner, a)));
        let named_owner = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"]});
        let any_pod = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        assert!(!breakdown(&any_pod).iter().all(|a| covers(&named_owner, a)));
    }

    #[test]
    fn only_owner_references_and_finalizers_pass_without_the_grant_checks() {
        let old = json!({"metadata": {"name": "b", "resourceVersion": "5"}, "subjects": []});
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["example.com/keep"]);
        new["metadata"]["ownerReferences"] = json!([{"kind": "X", "name": "x"}]);
        assert!(only_gc_fields_differ(&old, &new));
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(!only_gc_fields_differ(&old, &new));
        let mut granting = old.clone();
        granting["subjects"] = json!([{"kind": "User", "name": "u"}]);
        assert!(!only_gc_fields_differ(&old, &granting));
    }

    #[test]
    fn rbac_keys_are_where_the_registry_stores_them() {
        let resources = rkube_api::registry::builtin_resources();
        let find = |plural: &str| {
            resources
                .iter()
                .find(|r| r.group == GROUP && r.plural == plural)
                .cloned()
        };
        let roles = find("roles").unwrap_or_else(|| panic!("roles"));
        assert_eq!(
            roles.storage_key(Some("a"), "r"),
            key("roles", Some("a"), "r")
        );
        let crbs = find("clusterrolebindings").unwrap_or_else(|| panic!("crbs"));
        assert_eq!(
            crbs.storage_key(None, "b"),
            key("clusterrolebindings", None, "b")
        );
    }
}
