//! Cluster bootstrap data in the store, as k3s keeps it: the cluster CA, the service-account
//! signing key and the join token, encrypted with a key derived from the join token, under
//! `/bootstrap/ID` (ID from a hash of the token). The first server of a cluster uploads it; a
//! server that starts with an empty data dir on a store that already holds a cluster takes
//! it from there when given the token (`rkube server --token`), so every server of an HA
//! control plane shares one CA and one signing key without copying files.

use std::num::NonZeroU32;
use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rkube_store::{RangeRequest, Store, StoreError};
use serde_json::{Value, json};

const PREFIX: &str = "/bootstrap/";
/// The files every server of a cluster shares, relative to the data dir.
const SHARED: [&str; 3] = ["tls/ca.crt", "tls/ca.key", "tls/sa.key"];
const TOKEN_FILE: &str = "node-token";
const ITERATIONS: u32 = 10_000;

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// The store key of the bootstrap data for this token.
fn key_for(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    format!("{PREFIX}{}", crate::pki::hex(&digest.as_ref()[..8]))
}

fn derive_key(token: &str, salt: &[u8]) -> anyhow::Result<LessSafeKey> {
    let mut key = [0u8; 32];
    let iterations = NonZeroU32::new(ITERATIONS).context("iterations")?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        token.as_bytes(),
        &mut key,
    );
    let unbound = UnboundKey::new(&AES_256_GCM, &key)
        .map_err(|_| anyhow::anyhow!("cannot make the bootstrap key"))?;
    Ok(LessSafeKey::new(unbound))
}

fn seal(token: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| anyhow::anyhow!("no randomness for the bootstrap data"))?;
    let key = derive_key(token, &salt)?;
    let mut data = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| anyhow::anyhow!("cannot encrypt the bootstrap data"))?;
    let sealed = json!({
        "salt": b64().encode(salt),
        "nonce": b64().encode(nonce),
        "data": b64().encode(data),
    });
    Ok(serde_json::to_vec(&sealed)?)
}

fn open(token: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let sealed: Value = serde_json::from_slice(sealed).context("bootstrap data is not JSON")?;
    let field = |name: &str| -> anyhow::Result<Vec<u8>> {
        let text = sealed[name].as_str().unwrap_or_default();
        b64()
            .decode(text)
            .with_context(|| format!("bootstrap data: bad {name}"))
    };
    let salt = field("salt")?;
    let nonce: [u8; NONCE_LEN] = field("nonce")?
        .try_into()
        .map_err(|_| anyhow::anyhow!("bootstrap data: bad nonce"))?;
    let mut data = field("data")?;
    let key = derive_key(token, &salt)?;
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| anyhow::anyhow!("the token does not decrypt the cluster's bootstrap data"))?;
    Ok(plain.to_vec())
}

/// Before the PKI is loaded: on an empty data dir, takes the cluster's shared files from the
/// store when it already holds a cluster (the token is required then); otherwise writes the
/// given token as the node token of the new cluster.
pub async fn restore(
    store: &dyn Store,
    data_dir: &Path,
    token: Option<&str>,
) -> anyhow::Result<()> {
    let token_path = data_dir.join(TOKEN_FILE);
    if data_dir.join("tls/ca.key").exists() {
        return Ok(());
    }
    let listed = store
        .range(RangeRequest {
            prefix: PREFIX.to_owned(),
            ..RangeRequest::default()
        })
        .await?;
    let local_token = std::fs::read_to_string(&token_path)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let token = token.map(str::to_owned).or(local_token);
    if listed.kvs.is_empty() {
        // A new cluster: its token is the one given, if any.
        if let Some(token) = token {
            crate::pki::write_private_bytes(&token_path, format!("{token}\n").as_bytes())?;
        }
        return Ok(());
    }
    let Some(token) = token else {
        bail!(
            "the datastore already holds a cluster: start this server with --token set to the first server's DATA_DIR/node-token to join it"
        );
    };
    let Some(kv) = store.get(&key_for(&token)).await? else {
        bail!(
            "the --token given is not this cluster's join token (see the first server's DATA_DIR/node-token)"
        );
    };
    let plain = open(&token, &kv.value)?;
    let files: Value = serde_json::from_slice(&plain).context("bootstrap data")?;
    std::fs::create_dir_all(data_dir.join("tls"))?;
    for name in SHARED {
        let contents = files[name]
            .as_str()
            .and_then(|c| b64().decode(c).ok())
            .with_context(|| format!("bootstrap data lacks {name}"))?;
        crate::pki::write_private_bytes(&data_dir.join(name), &contents)?;
    }
    crate::pki::write_private_bytes(&token_path, format!("{token}\n").as_bytes())?;
    tracing::info!("joined the cluster in the datastore with its bootstrap data");
    Ok(())
}

/// After the PKI is loaded: stores this cluster's shared files, unless already stored.
pub async fn upload(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(data_dir.join(TOKEN_FILE))?
        .trim()
        .to_owned();
    let key = key_for(&token);
    if store.get(&key).await?.is_some() {
        return Ok(());
    }
    let mut files = serde_json::Map::new();
    for name in SHARED {
        let contents = std::fs::read(data_dir.join(name))
            .with_context(|| format!("cannot read {name} for the bootstrap data"))?;
        files.insert(name.to_owned(), json!(b64().encode(contents)));
    }
    let sealed = seal(&token, &serde_json::to_vec(&Value::Object(files))?)?;
    match store.create(&key, sealed.into()).await {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_token() {
        let sealed = seal("secret-token", b"the CA").unwrap();
        assert_eq!(open("secret-token", &sealed).unwrap(), b"the CA");
        assert!(open("another-token", &sealed).is_err());
        assert!(!String::from_utf8_lossy(&sealed).contains("the CA"));
        assert_ne!(key_for("a"), key_for("b"));
    }
}
