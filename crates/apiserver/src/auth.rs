//! Authentication: who is asking. Client certificates signed by the cluster CA (CN is the
//! user, O the groups) and bearer tokens (the node join token). Anonymous requests are
//! refused, except for the health and version endpoints that kube-apiserver also opens to
//! everyone (`system:public-info-viewer`).

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;

use crate::pki::Pki;

/// An authenticated user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct User {
    /// The user name.
    pub name: String,
    /// The groups, always including `system:authenticated`.
    pub groups: Vec<String>,
    /// The identity's uid where it has one (a service account's), or empty.
    pub uid: String,
    /// What else the authenticator knows (kube's `extra`): the credential id (a client
    /// certificate's SHA-256, a service-account token's id) and, for a bound token, the pod
    /// and node it is bound to.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl User {
    /// A component of the server's own process, by kube's name for it
    /// (`system:kube-scheduler`, say).
    pub fn component(name: &str) -> Self {
        Self::new(name.to_owned(), Vec::new())
    }

    /// Who the node join token authenticates.
    pub fn node_bootstrap() -> Self {
        Self::new(
            "system:node-bootstrap".into(),
            vec!["system:nodes".into(), "system:bootstrappers".into()],
        )
    }

    fn new(name: String, mut groups: Vec<String>) -> Self {
        groups.push("system:authenticated".into());
        Self {
            name,
            groups,
            ..Self::default()
        }
    }

    /// The user as `UserInfo` (SelfSubjectReview, TokenReview): the uid and extra only
    /// where there are some.
    pub fn info(&self) -> serde_json::Value {
        let mut info = serde_json::json!({"username": self.name, "groups": self.groups});
        if !self.uid.is_empty() {
            info["uid"] = self.uid.clone().into();
        }
        if !self.extra.is_empty() {
            info["extra"] = serde_json::json!(self.extra);
        }
        info
    }
}

/// The TLS configuration: the serving certificate, and client certificates verified against
/// the cluster CA but not required (token clients have none).
pub fn server_tls_config(pki: &Pki) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let chain = CertificateDer::pem_slice_iter(pki.serving_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The user of a verified client certificate on this connection.
pub fn user_from_connection(conn: &rustls::ServerConnection) -> Option<User> {
    let cert = conn.peer_certificates()?.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_owned))
        .collect();
    let mut user = User::new(name, groups);
    user.extra = certificate_extra(cert.as_ref());
    Some(user)
}

/// kube's `extra` of a client certificate's user: its credential id, `X509SHA256=` the
/// SHA-256 of the certificate (DER) in hex, so an audit or a CSR tells which of a user's
/// certificates was used.
fn certificate_extra(der: &[u8]) -> BTreeMap<String, Vec<String>> {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    BTreeMap::from([(
        "authentication.kubernetes.io/credential-id".to_owned(),
        vec![format!("X509SHA256={}", crate::pki::hex(digest.as_ref()))],
    )])
}

/// The user of a bearer token: the node join token, or a service-account token whose
/// service account still exists (with the same uid) and whose audience is this server.
pub(crate) async fn authenticate_token(state: &crate::State, token: &str) -> Option<User> {
    authenticate_token_for(state, token, &[])
        .await
        .map(|(user, _)| user)
}

/// Who a bearer token authenticates for `audiences` (the API's own when empty, as a
/// TokenReview without audiences asks), and those of them it is valid for, as kube's
/// audience-aware authenticators answer: a service-account token for the audiences it was
/// issued for; the node join token, which names none, for the API's.
pub(crate) async fn authenticate_token_for(
    state: &crate::State,
    token: &str,
    audiences: &[String],
) -> Option<(User, Vec<String>)> {
    let api = [crate::sa_token::ISSUER.to_owned()];
    let wanted = if audiences.is_empty() {
        &api[..]
    } else {
        audiences
    };
    let valid_for = |issued_for: &[String]| -> Option<Vec<String>> {
        let matched: Vec<String> = wanted
            .iter()
            .filter(|a| issued_for.contains(a))
            .cloned()
            .collect();
        (!matched.is_empty()).then_some(matched)
    };
    if let Some(user) = user_from_token(token, &state.node_token) {
        return Some((user, valid_for(&api)?));
    }
    let claims = state.signer.verify(token)?;
    let matched = valid_for(&claims.audiences)?;
    let key = format!(
        "/registry/core/serviceaccounts/{}/{}",
        claims.namespace, claims.name
    );
    if !still_there(state, &key, &claims.uid).await || !bound_objects_live(state, &claims).await {
        return None;
    }
    let mut user = User::new(
        format!("system:serviceaccount:{}:{}", claims.namespace, claims.name),
        vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{}", claims.namespace),
        ],
    );
    user.uid = claims.uid.clone();
    user.extra = service_account_extra(&claims);
    Some((user, matched))
}

/// kube's `extra` of a service-account token's user: its credential id (`JTI=` the token's
/// id), the pod it is bound to, and the node (the pod's, or the one it is bound to).
fn service_account_extra(claims: &crate::sa_token::TokenClaims) -> BTreeMap<String, Vec<String>> {
    const PREFIX: &str = "authentication.kubernetes.io/";
    let mut extra = BTreeMap::new();
    let mut put = |key: &str, value: &str| {
        extra.insert(format!("{PREFIX}{key}"), vec![value.to_owned()]);
    };
    if !claims.id.is_empty() {
        put("credential-id", &format!("JTI={}", claims.id));
    }
    if let Some(pod) = claims.bound.pod.as_ref().filter(|p| !p.uid.is_empty()) {
        put("pod-name", &pod.name);
        put("pod-uid", &pod.uid);
    }
    if let Some(node) = &claims.bound.node {
        put("node-name", &node.name);
        if !node.uid.is_empty() {
            put("node-uid", &node.uid);
        }
    }
    extra
}

/// kube's leeway: an object marked for deletion longer ago than this no longer backs a
/// token.
const DELETION_LEEWAY_SECONDS: i64 = 60;

/// Whether `object` was marked for deletion more than the leeway ago.
fn deleted_past_leeway(object: &serde_json::Value) -> bool {
    object["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(crate::time_util::parse)
        .is_some_and(|at| {
            at.unix_timestamp() + DELETION_LEEWAY_SECONDS
                < time::OffsetDateTime::now_utc().unix_timestamp()
        })
}

/// Whether the objects a token is bound to are still the ones it names (kube's validator):
/// its pod, its secret, or (for a token bound to a node itself) its node exists with the
/// uid in the token and was not deleted past the leeway. A pod's node is only named.
async fn bound_objects_live(state: &crate::State, claims: &crate::sa_token::TokenClaims) -> bool {
    let namespace = &claims.namespace;
    let bound = &claims.bound;
    let mut checks = Vec::new();
    if let Some(pod) = &bound.pod {
        checks.push((format!("/registry/core/pods/{namespace}/{}", pod.name), pod));
    }
    if let Some(secret) = &bound.secret {
        checks.push((
            format!("/registry/core/secrets/{namespace}/{}", secret.name),
            secret,
        ));
    }
    if let (None, Some(node)) = (&bound.pod, &bound.node) {
        checks.push((format!("/registry/core/nodes/{}", node.name), node));
    }
    for (key, object) in checks {
        if !still_there(state, &key, &object.uid).await {
            return false;
        }
    }
    true
}

/// Whether the object at `key` has `uid` (any uid when it is empty: a token issued
/// without one) and was not deleted past the leeway. The watch cache answers for an object
/// it has, as kube's token getters read informers; one it lacks or has another version of
/// (it may trail a write) is read from the store.
async fn still_there(state: &crate::State, key: &str, uid: &str) -> bool {
    let same = |found: &serde_json::Value| {
        uid.is_empty() || found["metadata"]["uid"].as_str().unwrap_or("") == uid
    };
    let live = |found: &serde_json::Value| same(found) && !deleted_past_leeway(found);
    if let Some(cached) = state.cacher.get(key)
        && same(&cached.value)
    {
        return live(&cached.value);
    }
    match state.store.get(key).await {
        Ok(Some(kv)) => serde_json::from_slice(&kv.value).is_ok_and(|found| live(&found)),
        _ => false,
    }
}

/// The user of the node join token.
pub fn user_from_token(token: &str, node_token: &str) -> Option<User> {
    if !node_token.is_empty() && constant_time_eq(token.as_bytes(), node_token.as_bytes()) {
        return Some(User::node_bootstrap());
    }
    None
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_backs_a_token_until_a_minute_after_its_deletion_time() {
        let marked = |seconds_from_now: i64| {
            let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds_from_now);
            serde_json::json!({"metadata": {"deletionTimestamp": crate::time_util::format(at)}})
        };
        assert!(deleted_past_leeway(&marked(-120)));
        assert!(!deleted_past_leeway(&marked(-30)), "within the leeway");
        // A pod deleted gracefully is marked for the end of its grace period.
        assert!(!deleted_past_leeway(&marked(30)));
        assert!(!deleted_past_leeway(&serde_json::json!({"metadata": {}})));
    }

    #[test]
    fn only_the_node_token_authenticates() {
        assert!(user_from_token("secret", "secret").is_some());
        assert!(user_from_token("secreT", "secret").is_none());
        assert!(user_from_token("", "").is_none());
    }
}
