//! Applying a transaction: the kernel applies each one atomically (all of it or nothing).
//! It goes as one netlink batch ([`crate::netlink`]); `nft -f -`, as knftables runs it for
//! kube-proxy, is the fallback for text the translator does not know, and the only path
//! with `RKUBE_NFT_BACKEND=nft`.

use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::netlink;

/// The `nft` binary (`RKUBE_NFT` overrides, for odd installs).
fn nft_binary() -> String {
    std::env::var("RKUBE_NFT").unwrap_or_else(|_| "nft".to_owned())
}

/// Whether transactions go through `nft` rather than netlink (`RKUBE_NFT_BACKEND=nft`).
fn nft_only() -> bool {
    std::env::var("RKUBE_NFT_BACKEND").as_deref() == Ok("nft")
}

/// Applies one transaction.
pub async fn apply(script: &str) -> anyhow::Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    if !nft_only() {
        match netlink::encode(script) {
            Ok(batch) => return send(script, batch).await,
            Err(err) => {
                tracing::warn!("cannot send this transaction over netlink, running nft: {err}");
            }
        }
    }
    apply_with_nft(script).await
}

/// Sends a batch and names the script lines the kernel refused.
async fn send(script: &str, batch: netlink::Batch) -> anyhow::Result<()> {
    let failures = match tokio::task::spawn_blocking(move || netlink::send(&batch)).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(failures)) => failures,
        Err(err) => bail!("the netlink sender stopped: {err}"),
    };
    if failures
        .iter()
        .any(|f| f.error.kind() == std::io::ErrorKind::PermissionDenied)
    {
        bail!("changing nftables needs root (CAP_NET_ADMIN): run the proxy as root");
    }
    let lines: Vec<&str> = script.lines().collect();
    let described: Vec<String> = failures
        .iter()
        .take(6)
        .map(|f| match f.line.and_then(|i| lines.get(i)) {
            Some(line) => format!("{} in `{}`", f.error, netlink::excerpt(line)),
            None => f.error.to_string(),
        })
        .collect();
    bail!(
        "nf_tables refused the transaction: {}",
        described.join(" | ")
    )
}

/// Applies one transaction with `nft -f -`.
pub async fn apply_with_nft(script: &str) -> anyhow::Result<()> {
    if script.is_empty() {
        return Ok(());
    }
    let mut child = Command::new(nft_binary())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run nft (is nftables installed?)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .context("writing the nft transaction")?;
    }
    let out = child.wait_with_output().await.context("waiting for nft")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first: Vec<&str> = stderr.lines().take(6).collect();
        bail!("nft failed ({}): {}", out.status, first.join(" | "));
    }
    Ok(())
}

/// Deletes a table; a table that does not exist is not an error.
pub async fn delete_table(family: &str, table: &str) -> anyhow::Result<()> {
    // `add` first makes the delete succeed whether or not the table existed.
    apply(&format!(
        "add table {family} {table}\ndelete table {family} {table}\n"
    ))
    .await
}
