//! Leader election through a coordination.k8s.io Lease, as client-go's leaderelection does:
//! a candidate takes the lease when its holder has not renewed it within the lease
//! duration (judged by the candidate's own clock, from when it last saw the record change),
//! the leader renews it every retry period, and a leader that cannot renew within the renew
//! deadline stops leading.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::chrono::Utc;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::{Stop, StopHandle};

/// kube's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
#[derive(Clone, Debug)]
pub struct Config {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Config {
    pub fn new(name: &str, identity: &str) -> Self {
        Self {
            namespace: "kube-system".to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// A unique identity for this process: host name and a random suffix, as kube uses.
pub fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}_{:08x}", rand::random::<u32>())
}

struct Observed {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    at: Instant,
}

/// Runs `lead` each time this process becomes leader, stopping it (through the [`Stop`] it is
/// given) when leadership is lost; returns when `stop` fires.
pub async fn run<F, Fut>(client: Client, config: Config, stop: Stop, mut lead: F)
where
    F: FnMut(Stop) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut observed: Option<Observed> = None;
    loop {
        // Candidate: try until the lease is ours.
        loop {
            if stop.is_stopped() {
                return;
            }
            match try_acquire(&api, &config, &mut observed).await {
                Ok(true) => break,
                Ok(false) => {}
                Err(err) => tracing::debug!(lease = %config.name, "leader election: {err}"),
            }
            tokio::select! {
                () = tokio::time::sleep(config.retry_period) => {}
                () = stop.stopped() => return,
            }
        }
        tracing::info!(lease = %config.name, identity = %config.identity, "became leader");
        let (handle, leading): (StopHandle, Stop) = Stop::new();
        let work = tokio::spawn(lead(leading));
        // Leader: renew until a renewal fails past the deadline.
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(config.retry_period) => {}
                () = stop.stopped() => {
                    handle.stop();
                    release(&api, &config).await;
                    let _ = work.await;
                    return;
                }
            }
            match try_acquire(&api, &config, &mut observed).await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => {
                    tracing::warn!(lease = %config.name, "leadership taken by another");
                    break;
                }
                Err(err) => {
                    if last_renewal.elapsed() > config.renew_deadline {
                        tracing::warn!(lease = %config.name, "failed to renew the lease: {err}");
                        break;
                    }
                }
            }
        }
        tracing::warn!(lease = %config.name, "lost leadership; stopping");
        handle.stop();
        let _ = work.await;
    }
}

/// Takes or renews the lease. `Ok(false)`: another holder still has it.
async fn try_acquire(
    api: &Api<Lease>,
    config: &Config,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = MicroTime(Utc::now());
    let duration_secs = i32::try_from(config.lease_duration.as_secs()).unwrap_or(15);
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(duration_secs),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        api.create(&PostParams::default(), &lease).await?;
        return Ok(true);
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let ours = holder.as_deref() == Some(config.identity.as_str());
    if !ours {
        // Judge expiry by our clock: from when we saw the record last change.
        let changed = observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != spec.renew_time);
        if changed {
            *observed = Some(Observed {
                holder: holder.clone(),
                renew_time: spec.renew_time.clone(),
                at: Instant::now(),
            });
        }
        let lease_secs = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(15);
        let expired = observed
            .as_ref()
            .is_some_and(|o| o.at.elapsed() > Duration::from_secs(lease_secs));
        if holder.is_some() && !expired {
            return Ok(false);
        }
    }
    let mut new_spec = spec.clone();
    new_spec.holder_identity = Some(config.identity.clone());
    new_spec.lease_duration_seconds = Some(duration_secs);
    new_spec.renew_time = Some(now.clone());
    if !ours {
        new_spec.acquire_time = Some(now);
        new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    lease.spec = Some(new_spec);
    match api
        .replace(&config.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the lease up on a clean exit, so another candidate need not wait for it to expire.
async fn release(api: &Api<Lease>, config: &Config) {
    let Ok(Some(mut lease)) = api.get_opt(&config.name).await else {
        return;
    };
    let Some(spec) = lease.spec.as_mut() else {
        return;
    };
    if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
        return;
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    let _ = api
        .replace(&config.name, &PostParams::default(), &lease)
        .await;
}
