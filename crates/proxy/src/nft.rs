//! Running `nft`: each transaction is one `nft -f -` invocation, which the kernel applies
//! atomically (all of it or nothing), as knftables does for kube-proxy.

use std::process::Stdio;

use anyhow::{Context as _, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// The `nft` binary (`RKUBE_NFT` overrides, for odd installs).
fn nft_binary() -> String {
    std::env::var("RKUBE_NFT").unwrap_or_else(|_| "nft".to_owned())
}

/// Applies one transaction.
pub async fn apply(script: &str) -> anyhow::Result<()> {
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
