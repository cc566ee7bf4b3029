//! A container's environment, as kube's kubelet builds it (`makeEnvironmentVariables`):
//!
//! 1. the service variables of the pod's namespace (unless `enableServiceLinks: false`) and of
//!    the `kubernetes` service in `default` (always) are the lowest layer;
//! 2. `envFrom` sources, in order, each key with the source's prefix (a later source wins);
//! 3. `env`, in order: `value` with `$(VAR)` references expanded against the variables
//!    defined so far and the service variables, or `valueFrom` (fieldRef, resourceFieldRef,
//!    configMapKeyRef, secretKeyRef); a later definition wins.
//!
//! kube hands the runtime its variables in map order; here the order is fixed: the service
//! variables the container does not redefine (by service name, each service's variables in
//! kube's order), then the container's own in the order they were first defined.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::downward::{self, FieldError};
use crate::objects::{ObjectError, ObjectSource};

/// What a container's environment is computed from besides the pod.
pub struct EnvContext<'a> {
    /// Where ConfigMaps, Secrets and Services are read.
    pub objects: &'a dyn ObjectSource,
    /// The node's allocatable resources: the limits of a container that sets none, for
    /// `resourceFieldRef`.
    pub allocatable: &'a BTreeMap<String, Quantity>,
    /// The node's addresses (`status.hostIP` is the first, `status.hostIPs` all).
    pub host_ips: &'a [IpAddr],
    /// The pod's addresses from its sandbox (empty for a pod not yet networked).
    pub pod_ips: &'a [IpAddr],
}

/// Why a container's environment cannot be built; the text is kube's, which the pod worker
/// shows as the container's `CreateContainerConfigError` message.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{name}\" not found")]
    ConfigMapNotFound { name: String },
    #[error("secret \"{name}\" not found")]
    SecretNotFound { name: String },
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("failed to list services when setting up env vars")]
    Services(#[source] ObjectError),
    #[error("the node has no address for status.hostIP")]
    NoHostIp,
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error(transparent)]
    Object(#[from] ObjectError),
}

/// The environment of `container` in `pod`, as `(name, value)` pairs with unique names.
pub async fn container_env(
    ctx: &EnvContext<'_>,
    pod: &Pod,
    container: &Container,
) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let links = pod
        .spec
        .as_ref()
        .and_then(|s| s.enable_service_links)
        .unwrap_or(true);
    let services = service_env(ctx, namespace, links).await?;
    let service_map: HashMap<&str, &str> = services
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();

    let mut cache = Objects::default();
    let mut own = OrderedEnv::default();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.as_deref().unwrap_or("");
        if let Some(r) = &from.config_map_ref {
            let optional = r.optional.unwrap_or(false);
            let Some(cm) = cache.config_map(ctx, namespace, &r.name, optional).await? else {
                continue;
            };
            for (k, v) in cm.data.iter().flatten() {
                own.set(format!("{prefix}{k}"), v.clone());
            }
        } else if let Some(r) = &from.secret_ref {
            let optional = r.optional.unwrap_or(false);
            let Some(secret) = cache.secret(ctx, namespace, &r.name, optional).await? else {
                continue;
            };
            for (k, v) in secret.data.iter().flatten() {
                own.set(format!("{prefix}{k}"), lossy(&v.0));
            }
        }
    }

    for var in container.env.iter().flatten() {
        let value = var.value.as_deref().unwrap_or("");
        let resolved = if !value.is_empty() {
            expand(value, |name| {
                own.get(name)
                    .or_else(|| service_map.get(name).copied())
                    .map(str::to_owned)
            })
        } else if let Some(from) = &var.value_from {
            if let Some(f) = &from.field_ref {
                pod_field(ctx, pod, f.api_version.as_deref(), &f.field_path)?
            } else if let Some(r) = &from.resource_field_ref {
                downward::resource_value(r, pod, Some(container), ctx.allocatable)?
            } else if let Some(r) = &from.config_map_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(cm) = cache.config_map(ctx, namespace, &r.name, optional).await? else {
                    continue;
                };
                match cm.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapKeyMissing {
                            namespace: namespace.to_owned(),
                            name: r.name.clone(),
                            key: r.key.clone(),
                        });
                    }
                }
            } else if let Some(r) = &from.secret_key_ref {
                let optional = r.optional.unwrap_or(false);
                let Some(secret) = cache.secret(ctx, namespace, &r.name, optional).await? else {
                    continue;
                };
                match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
                    Some(v) => lossy(&v.0),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretKeyMissing {
                            namespace: namespace.to_owned(),
                            name: r.name.clone(),
                            key: r.key.clone(),
                        });
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        own.set(var.name.clone(), resolved);
    }

    let mut out: Vec<(String, String)> = services
        .into_iter()
        .filter(|(k, _)| own.get(k).is_none())
        .collect();
    out.extend(own.vars);
    Ok(out)
}

/// Secret bytes as text, as Go's `string(bytes)` keeps them (invalid UTF-8 replaced here).
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Variables in first-definition order; setting an existing name replaces its value.
#[derive(Default)]
struct OrderedEnv {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl OrderedEnv {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.index.get(name).map(|&i| self.vars[i].1.as_str())
    }
}

/// ConfigMaps and Secrets read once per container, as kube's function caches them.
#[derive(Default)]
struct Objects {
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Objects {
    async fn config_map(
        &mut self,
        ctx: &EnvContext<'_>,
        namespace: &str,
        name: &str,
        optional: bool,
    ) -> Result<Option<&ConfigMap>, EnvError> {
        if !self.config_maps.contains_key(name) {
            let found = ctx.objects.config_map(namespace, name).await?;
            self.config_maps.insert(name.to_owned(), found);
        }
        match self.config_maps.get(name).and_then(Option::as_ref) {
            Some(cm) => Ok(Some(cm)),
            None if optional => Ok(None),
            None => Err(EnvError::ConfigMapNotFound {
                name: name.to_owned(),
            }),
        }
    }

    async fn secret(
        &mut self,
        ctx: &EnvContext<'_>,
        namespace: &str,
        name: &str,
        optional: bool,
    ) -> Result<Option<&Secret>, EnvError> {
        if !self.secrets.contains_key(name) {
            let found = ctx.objects.secret(namespace, name).await?;
            self.secrets.insert(name.to_owned(), found);
        }
        match self.secrets.get(name).and_then(Option::as_ref) {
            Some(s) => Ok(Some(s)),
            None if optional => Ok(None),
            None => Err(EnvError::SecretNotFound {
                name: name.to_owned(),
            }),
        }
    }
}

/// A `fieldRef` of an environment variable (kube's `podFieldSelectorRuntimeValue`).
fn pod_field(
    ctx: &EnvContext<'_>,
    pod: &Pod,
    api_version: Option<&str>,
    path: &str,
) -> Result<String, EnvError> {
    if let Some(v) = api_version.filter(|v| !v.is_empty() && *v != "v1") {
        return Err(FieldError::Version(v.to_owned()).into());
    }
    let pod_ips = sorted_pod_ips(ctx.pod_ips, ctx.host_ips);
    let spec = pod.spec.as_ref();
    let join = |ips: &[IpAddr]| {
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    Ok(match path {
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => ctx.host_ips.first().ok_or(EnvError::NoHostIp)?.to_string(),
        "status.hostIPs" => {
            if ctx.host_ips.is_empty() {
                return Err(EnvError::NoHostIp);
            }
            join(ctx.host_ips)
        }
        "status.podIP" => pod_ips.first().map(ToString::to_string).unwrap_or_default(),
        "status.podIPs" => join(&pod_ips),
        other => downward::metadata_field(pod, other)?,
    })
}

/// The pod's addresses with the node's preferred family (its first address's) first.
fn sorted_pod_ips(pod_ips: &[IpAddr], host_ips: &[IpAddr]) -> Vec<IpAddr> {
    let mut ips = pod_ips.to_vec();
    if let Some(first) = host_ips.first() {
        let v4 = first.is_ipv4();
        ips.sort_by_key(|ip| ip.is_ipv4() != v4);
    }
    ips
}

/// The service variables a pod in `namespace` sees (kube's `getServiceEnvVarMap`).
async fn service_env(
    ctx: &EnvContext<'_>,
    namespace: &str,
    links: bool,
) -> Result<Vec<(String, String)>, EnvError> {
    let mut chosen: BTreeMap<String, Service> = BTreeMap::new();
    if let Some(master) = ctx
        .objects
        .service("default", "kubernetes")
        .await
        .map_err(EnvError::Services)?
    {
        chosen.insert("kubernetes".to_owned(), master);
    }
    if links {
        // The pod's own namespace wins over the master service of the same name.
        for s in ctx
            .objects
            .services(namespace)
            .await
            .map_err(EnvError::Services)?
        {
            if let Some(name) = s.metadata.name.clone() {
                chosen.insert(name, s);
            }
        }
    }
    let mut out = Vec::new();
    for service in chosen.values() {
        out.extend(service_variables(service));
    }
    Ok(out)
}

/// kube's `FromServices` for one service: `NAME_SERVICE_HOST`, `NAME_SERVICE_PORT`,
/// `NAME_SERVICE_PORT_<PORT NAME>` per named port, then the Docker link variables
/// (`NAME_PORT`, and per port `NAME_PORT_<N>_<PROTO>` with `_PROTO`, `_PORT`, `_ADDR`).
/// Nothing for a service without a cluster IP (headless, ExternalName).
pub fn service_variables(service: &Service) -> Vec<(String, String)> {
    let Some(spec) = &service.spec else {
        return Vec::new();
    };
    let ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ports = spec.ports.as_deref().unwrap_or(&[]);
    if ip.is_empty() || ip == "None" || ports.is_empty() {
        return Vec::new();
    }
    let prefix = env_name(service.metadata.name.as_deref().unwrap_or(""));
    let mut out = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.to_owned()),
        (format!("{prefix}_SERVICE_PORT"), ports[0].port.to_string()),
    ];
    for p in ports {
        if let Some(n) = p.name.as_deref().filter(|n| !n.is_empty()) {
            out.push((
                format!("{prefix}_SERVICE_PORT_{}", env_name(n)),
                p.port.to_string(),
            ));
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let protocol = p
            .protocol
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("TCP");
        let lower = protocol.to_lowercase();
        let url = format!("{lower}://{ip}:{}", p.port);
        if i == 0 {
            out.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!("{prefix}_PORT_{}_{}", p.port, protocol.to_uppercase());
        out.push((port_prefix.clone(), url));
        out.push((format!("{port_prefix}_PROTO"), lower));
        out.push((format!("{port_prefix}_PORT"), p.port.to_string()));
        out.push((format!("{port_prefix}_ADDR"), ip.to_owned()));
    }
    out
}

/// kube's `makeEnvVariableName`: upper case, `.` and `-` to `_`, `_` before a leading digit.
fn env_name(s: &str) -> String {
    let name = s.replace(['.', '-'], "_").to_uppercase();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        format!("_{name}")
    } else {
        name
    }
}

/// kube's `$(VAR)` expansion: `$(NAME)` becomes the variable's value, or stays as written
/// when there is none; `$$` is one `$` (so `$$(NAME)` is the text `$(NAME)`); a `$` before
/// anything else, and an unclosed `$(`, are kept.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let mut chars = after.chars();
        match chars.next() {
            // A `$` at the very end stays.
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A container's command and args with `$(VAR)` references to its environment expanded
/// (kube's `ExpandContainerCommandAndArgs`).
pub fn expand_command_and_args(
    container: &Container,
    env: &[(String, String)],
) -> (Vec<String>, Vec<String>) {
    let map: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let lookup = |n: &str| map.get(n).map(|v| (*v).to_owned());
    let command = container
        .command
        .iter()
        .flatten()
        .map(|c| expand(c, lookup))
        .collect();
    let args = container
        .args
        .iter()
        .flatten()
        .map(|a| expand(a, lookup))
        .collect();
    (command, args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::MemoryObjects;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec, SecretEnvSource, SecretKeySelector, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "A" => Some("1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_kube_rules() {
        let cases = [
            ("$(A)", "1"),
            ("x$(A)y$(A)", "x1y1"),
            ("$(B)", "$(B)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$1"),
            ("$$", "$"),
            ("$", "$"),
            ("a$", "a$"),
            ("$(A", "$(A"),
            ("$A", "$A"),
            ("$é$(A)", "$é1"),
            ("$(EMPTY)x", "x"),
            ("$()", "$()"),
            ("(A)", "(A)"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, lookup), want, "{input}");
        }
    }

    fn service(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| ServicePort {
                            name: n.map(str::to_owned),
                            port: *p,
                            protocol: Some((*proto).into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn service_variables_have_kube_names_and_order() {
        let s = service(
            "ns",
            "my-svc.v1",
            "10.43.0.5",
            &[(Some("http"), 80, "TCP"), (Some("dns-udp"), 53, "UDP")],
        );
        let vars: Vec<String> = service_variables(&s)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            vars,
            [
                "MY_SVC_V1_SERVICE_HOST=10.43.0.5",
                "MY_SVC_V1_SERVICE_PORT=80",
                "MY_SVC_V1_SERVICE_PORT_HTTP=80",
                "MY_SVC_V1_SERVICE_PORT_DNS_UDP=53",
                "MY_SVC_V1_PORT=tcp://10.43.0.5:80",
                "MY_SVC_V1_PORT_80_TCP=tcp://10.43.0.5:80",
                "MY_SVC_V1_PORT_80_TCP_PROTO=tcp",
                "MY_SVC_V1_PORT_80_TCP_PORT=80",
                "MY_SVC_V1_PORT_80_TCP_ADDR=10.43.0.5",
                "MY_SVC_V1_PORT_53_UDP=udp://10.43.0.5:53",
                "MY_SVC_V1_PORT_53_UDP_PROTO=udp",
                "MY_SVC_V1_PORT_53_UDP_PORT=53",
                "MY_SVC_V1_PORT_53_UDP_ADDR=10.43.0.5",
            ]
        );
        assert_eq!(env_name("3d-svc"), "_3D_SVC");
        assert!(service_variables(&service("ns", "h", "None", &[(None, 80, "TCP")])).is_empty());
        assert!(service_variables(&service("ns", "e", "", &[(None, 80, "TCP")])).is_empty());
    }

    fn objects() -> MemoryObjects {
        MemoryObjects {
            config_maps: vec![ConfigMap {
                metadata: ObjectMeta {
                    name: Some("cfg".into()),
                    namespace: Some("ns".into()),
                    ..Default::default()
                },
                data: Some(
                    [
                        ("COLOR".to_owned(), "blue".to_owned()),
                        ("SIZE".to_owned(), "9".to_owned()),
                    ]
                    .into(),
                ),
                ..Default::default()
            }],
            secrets: vec![Secret {
                metadata: ObjectMeta {
                    name: Some("sec".into()),
                    namespace: Some("ns".into()),
                    ..Default::default()
                },
                data: Some([("PASSWORD".to_owned(), ByteString(b"hunter2".to_vec()))].into()),
                ..Default::default()
            }],
            services: vec![
                service(
                    "default",
                    "kubernetes",
                    "10.43.0.1",
                    &[(Some("https"), 443, "TCP")],
                ),
                service("default", "other", "10.43.0.9", &[(None, 1, "TCP")]),
                service("ns", "web", "10.43.0.7", &[(None, 8080, "TCP")]),
                service("ns", "headless", "None", &[(None, 80, "TCP")]),
            ],
            ..Default::default()
        }
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    fn var_from(name: &str, from: EnvVarSource) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(from),
        }
    }

    fn pod(links: Option<bool>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                uid: Some("u-1".into()),
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-a".into()),
                service_account_name: Some("default".into()),
                enable_service_links: links,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    async fn env_of(
        objects: &MemoryObjects,
        pod: &Pod,
        c: &Container,
    ) -> Result<Vec<(String, String)>, EnvError> {
        let allocatable = BTreeMap::new();
        let host = ["192.168.1.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))];
        let pod_ips = [
            "fd00::5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            "10.42.0.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        ];
        let ctx = EnvContext {
            objects,
            allocatable: &allocatable,
            host_ips: &host,
            pod_ips: &pod_ips,
        };
        container_env(&ctx, pod, c).await
    }

    fn get<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn precedence_expansion_and_sources() {
        let objects = objects();
        let c = Container {
            name: "app".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cfg".into(),
                        optional: None,
                    }),
                    prefix: Some("CFG_".into()),
                    secret_ref: None,
                },
                EnvFromSource {
                    secret_ref: Some(SecretEnvSource {
                        name: "sec".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "absent".into(),
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
            ]),
            env: Some(vec![
                var("CFG_COLOR", "red"),
                var(
                    "GREETING",
                    "hi $(CFG_SIZE) $(WEB_SERVICE_HOST) $(LATER) $$(CFG_SIZE)",
                ),
                var("LATER", "x"),
                var("WEB_SERVICE_PORT", "override"),
                var_from(
                    "NODE",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "spec.nodeName".into(),
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "POD_IP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: "status.podIP".into(),
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "POD_IPS",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: "status.podIPs".into(),
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "APP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: "metadata.labels['app']".into(),
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "PW",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "sec".into(),
                            key: "PASSWORD".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                var_from(
                    "MAYBE",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cfg".into(),
                            key: "nope".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    },
                ),
            ]),
            ..Default::default()
        };
        let env = env_of(&objects, &pod(None), &c).await.unwrap_or_default();
        assert_eq!(get(&env, "CFG_COLOR"), Some("red"));
        assert_eq!(get(&env, "CFG_SIZE"), Some("9"));
        assert_eq!(get(&env, "PASSWORD"), Some("hunter2"));
        assert_eq!(
            get(&env, "GREETING"),
            Some("hi 9 10.43.0.7 $(LATER) $(CFG_SIZE)")
        );
        assert_eq!(get(&env, "NODE"), Some("node-a"));
        // The node is IPv4, so the IPv4 pod address comes first.
        assert_eq!(get(&env, "POD_IP"), Some("10.42.0.5"));
        assert_eq!(get(&env, "POD_IPS"), Some("10.42.0.5,fd00::5"));
        assert_eq!(get(&env, "APP"), Some("web"));
        assert_eq!(get(&env, "PW"), Some("hunter2"));
        assert_eq!(get(&env, "MAYBE"), None);
        assert_eq!(get(&env, "WEB_SERVICE_PORT"), Some("override"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        assert_eq!(get(&env, "KUBERNETES_SERVICE_PORT_HTTPS"), Some("443"));
        assert_eq!(get(&env, "HEADLESS_SERVICE_HOST"), None);
        // Only `kubernetes` comes from default.
        assert_eq!(get(&env, "OTHER_SERVICE_HOST"), None);
        // Names are unique; service variables come first.
        let mut names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names[0], "KUBERNETES_SERVICE_HOST");
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), env.len());

        // Without service links only the master service remains.
        let env = env_of(&objects, &pod(Some(false)), &c)
            .await
            .unwrap_or_default();
        assert_eq!(get(&env, "WEB_SERVICE_HOST"), None);
        assert_eq!(get(&env, "KUBERNETES_SERVICE_HOST"), Some("10.43.0.1"));
        assert_eq!(
            get(&env, "GREETING"),
            Some("hi 9 $(WEB_SERVICE_HOST) $(LATER) $(CFG_SIZE)")
        );
    }

    #[tokio::test]
    async fn missing_objects_give_kube_errors() {
        let objects = objects();
        let one = |from: EnvVarSource| Container {
            name: "app".into(),
            env: Some(vec![var_from("X", from)]),
            ..Default::default()
        };
        let cases = [
            (
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "absent".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                "configmap \"absent\" not found",
            ),
            (
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cfg".into(),
                        key: "k".into(),
                        optional: Some(false),
                    }),
                    ..Default::default()
                },
                "couldn't find key k in ConfigMap ns/cfg",
            ),
            (
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "gone".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                "secret \"gone\" not found",
            ),
            (
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "sec".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                },
                "couldn't find key k in Secret ns/sec",
            ),
        ];
        for (from, want) in cases {
            let err = env_of(&objects, &pod(None), &one(from)).await.err();
            assert_eq!(err.map(|e| e.to_string()).as_deref(), Some(want));
        }
        // An optional secret that is absent is skipped.
        let c = one(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "gone".into(),
                key: "k".into(),
                optional: Some(true),
            }),
            ..Default::default()
        });
        let env = env_of(&objects, &pod(None), &c).await.unwrap_or_default();
        assert_eq!(get(&env, "X"), None);
    }

    #[test]
    fn command_and_args_are_expanded() {
        let c = Container {
            command: Some(vec!["echo".into(), "$(A)".into()]),
            args: Some(vec!["$(B)".into(), "$$(A)".into()]),
            ..Default::default()
        };
        let env = vec![("A".to_owned(), "1".to_owned())];
        let (cmd, args) = expand_command_and_args(&c, &env);
        assert_eq!(cmd, ["echo", "1"]);
        assert_eq!(args, ["$(B)", "$(A)"]);
    }
}
