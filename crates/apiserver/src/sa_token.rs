//! Service-account tokens: JWTs signed by the server's key (ES256), as kube-apiserver issues
//! through `serviceaccounts/token` and accepts as bearer tokens, so that in-cluster clients
//! authenticate as `system:serviceaccount:NAMESPACE:NAME`.

use std::path::Path;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use serde_json::{Map, Value, json};

/// The issuer and default audience, as kube-apiserver's defaults in a cluster.local cluster.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Signs and verifies service-account tokens.
pub struct TokenSigner {
    key: EcdsaKeyPair,
    key_id: String,
    rng: SystemRandom,
}

/// What a token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub name: String,
    /// The service account's uid when the token was issued.
    pub uid: String,
    /// The token's id (`jti`), empty in a token without one.
    pub id: String,
    /// The audiences.
    pub audiences: Vec<String>,
    /// Expiry, seconds since the epoch.
    pub expires: i64,
    /// The objects the token is bound to (a TokenRequest's `boundObjectRef`, and a bound
    /// pod's node): the token is good only while they exist with these uids.
    pub bound: BoundObjects,
}

/// The `pod`, `secret` and `node` claims of a bound token: each a name and a uid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundObjects {
    pub pod: Option<BoundObject>,
    pub secret: Option<BoundObject>,
    pub node: Option<BoundObject>,
}

/// One bound object: its name and, when known, its uid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundObject {
    pub name: String,
    pub uid: String,
}

impl BoundObject {
    fn claim(&self) -> Value {
        let mut claim = json!({"name": self.name});
        if !self.uid.is_empty() {
            claim["uid"] = json!(self.uid);
        }
        claim
    }

    fn from_claim(claim: &Value) -> Option<Self> {
        Some(Self {
            name: claim["name"].as_str()?.to_owned(),
            uid: claim["uid"].as_str().unwrap_or("").to_owned(),
        })
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl TokenSigner {
    /// Loads the signing key from `DATA_DIR/tls/sa.key`, making it on first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("tls").join("sa.key");
        let rng = SystemRandom::new();
        let pkcs8 = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("cannot generate the service-account key"))?;
                crate::pki::write_private_bytes(&path, doc.as_ref())?;
                doc.as_ref().to_vec()
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .map_err(|_| anyhow::anyhow!("{} is not a P-256 PKCS#8 key", path.display()))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(Self { key, key_id, rng })
    }

    /// Issues a token for a service account.
    pub fn issue(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        audiences: &[String],
        expiration_seconds: i64,
        bound: &BoundObjects,
    ) -> anyhow::Result<(String, i64)> {
        let issued = now();
        let expires = issued + expiration_seconds;
        let mut k8s = Map::new();
        k8s.insert("namespace".into(), json!(namespace));
        k8s.insert("serviceaccount".into(), json!({"name": name, "uid": uid}));
        for (kind, object) in [
            ("pod", &bound.pod),
            ("secret", &bound.secret),
            ("node", &bound.node),
        ] {
            if let Some(object) = object {
                k8s.insert(kind.into(), object.claim());
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": expires,
            "iat": issued,
            "nbf": issued,
            "iss": ISSUER,
            "jti": crate::pki::new_uuid(),
            "kubernetes.io": k8s,
            "sub": format!("system:serviceaccount:{namespace}:{name}"),
        });
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|_| anyhow::anyhow!("signing failed"))?;
        Ok((
            format!(
                "{signing_input}.{}",
                URL_SAFE_NO_PAD.encode(signature.as_ref())
            ),
            expires,
        ))
    }

    /// Verifies a token's signature, issuer and lifetime, and returns its claims.
    pub fn verify(&self, token: &str) -> Option<TokenClaims> {
        let mut parts = token.split('.');
        let (header, claims, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let public =
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref());
        let signed = &token[..token.len() - parts_len_tail(token)?];
        public.verify(signed.as_bytes(), &signature).ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).ok()?).ok()?;
        let t = now();
        if claims["iss"] != ISSUER
            || claims["exp"].as_i64()? < t
            || claims["nbf"].as_i64().unwrap_or(0) > t + 60
        {
            return None;
        }
        let k8s = &claims["kubernetes.io"];
        let audiences = match &claims["aud"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect(),
            _ => vec![],
        };
        Some(TokenClaims {
            namespace: k8s["namespace"].as_str()?.to_owned(),
            name: k8s["serviceaccount"]["name"].as_str()?.to_owned(),
            uid: k8s["serviceaccount"]["uid"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            id: claims["jti"].as_str().unwrap_or("").to_owned(),
            audiences,
            expires: claims["exp"].as_i64()?,
            bound: BoundObjects {
                pod: BoundObject::from_claim(&k8s["pod"]),
                secret: BoundObject::from_claim(&k8s["secret"]),
                node: BoundObject::from_claim(&k8s["node"]),
            },
        })
    }
}

/// The length of `.signature` at the end of a JWT.
fn parts_len_tail(token: &str) -> Option<usize> {
    token.rfind('.').map(|i| token.len() - i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_tampering_is_caught() {
        let dir = tempfile_dir();
        let signer = TokenSigner::load_or_create(&dir).unwrap();
        let (token, _) = signer
            .issue(
                "default",
                "builder",
                "uid-1",
                &[ISSUER.to_owned()],
                3600,
                &BoundObjects {
                    pod: Some(BoundObject {
                        name: "web-0".into(),
                        uid: "pod-uid".into(),
                    }),
                    node: Some(BoundObject {
                        name: "n1".into(),
                        uid: String::new(),
                    }),
                    secret: None,
                },
            )
            .unwrap();
        let claims = signer.verify(&token).unwrap();
        assert_eq!(
            (
                claims.namespace.as_str(),
                claims.name.as_str(),
                claims.uid.as_str()
            ),
            ("default", "builder", "uid-1")
        );
        // Another key (a restart reuses the same one; a different cluster does not).
        let again = TokenSigner::load_or_create(&dir).unwrap();
        assert!(again.verify(&token).is_some(), "the key was not reused");
        let mut tampered = token.clone().into_bytes();
        let i = token.find('.').unwrap() + 5;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert!(
            signer
                .verify(std::str::from_utf8(&tampered).unwrap())
                .is_none()
        );
        assert_eq!(
            claims.bound.pod,
            Some(BoundObject {
                name: "web-0".into(),
                uid: "pod-uid".into()
            })
        );
        assert_eq!(
            claims
                .bound
                .node
                .as_ref()
                .map(|n| (n.name.as_str(), n.uid.as_str())),
            Some(("n1", "")),
            "a node without a uid is named alone"
        );
        assert_eq!(claims.bound.secret, None);
        let (expired, _) = signer
            .issue("default", "b", "u", &[], -10, &BoundObjects::default())
            .unwrap();
        assert!(signer.verify(&expired).is_none());
        assert!(signer.verify("not.a.token").is_none());
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("rkube-sa-{}", crate::pki::new_uuid()));
        std::fs::create_dir_all(dir.join("tls")).unwrap();
        dir
    }
}
