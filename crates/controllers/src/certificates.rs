//! CertificateSigningRequests: kube's CSR approving and signing controllers in one.
//!
//! - Approving: a request for the `kubernetes.io/kubelet-serving` signer from a node (the
//!   group `system:nodes`) is approved when it asks for what a kubelet's serving certificate
//!   is: subject `O=system:nodes, CN=system:node:NAME`, DNS and IP names only, and the usages
//!   `server auth` with `digital signature` / `key encipherment`. Anything else waits for
//!   an admin (`kubectl certificate approve`).
//! - Signing: approved requests for `kubernetes.io/kubelet-serving`,
//!   `kubernetes.io/kube-apiserver-client` and `kubernetes.io/kube-apiserver-client-kubelet`
//!   are signed with the cluster CA (kube's `--cluster-signing-cert-file` and
//!   `--cluster-signing-key-file`), for a year or the request's `expirationSeconds` (at
//!   least ten minutes). Others are left to their own signers.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kube::api::{Api, Patch, PatchParams};
use rcgen::{
    CertificateSigningRequestParams, DnType, DnValue, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use serde_json::json;

use crate::informer::{Informer, key_of};
use crate::queue::WorkQueue;
use crate::{Context, Next, Options, Reconcile, on_change, run_workers};

pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
const SIGNED: &[&str] = &[
    KUBELET_SERVING,
    "kubernetes.io/kube-apiserver-client",
    "kubernetes.io/kube-apiserver-client-kubelet",
];
/// kube's `--cluster-signing-duration` (a year) and the shortest `expirationSeconds`.
const DEFAULT_DURATION: i64 = 365 * 24 * 3600;
const MIN_DURATION: i64 = 600;

/// The cluster CA, PEM: what signs.
#[derive(Clone, Debug)]
pub struct SigningCa {
    pub cert_pem: String,
    pub key_pem: String,
}

struct Controller {
    ctx: Context,
    requests: Informer<CertificateSigningRequest>,
    ca: SigningCa,
}

pub fn start(ctx: &Context, options: &Options) {
    let Some(ca) = options.signing_ca.clone() else {
        tracing::info!("no cluster signing CA: certificate signing requests are not signed");
        return;
    };
    let requests = ctx.informer::<CertificateSigningRequest>();
    let queue = WorkQueue::default();
    let q = queue.clone();
    on_change(&requests, ctx.stop.clone(), move |change| {
        let csr = change.object();
        if csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_none()
        {
            q.add(key_of(csr.as_ref()));
        }
    });
    let controller = Arc::new(Controller {
        ctx: ctx.clone(),
        requests,
        ca,
    });
    run_workers(controller, queue, 1, ctx.stop.clone());
}

fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// Why a request is not a kubelet's serving certificate request, if it is not.
pub fn kubelet_serving_refusal(
    csr: &CertificateSigningRequest,
    params: &CertificateSigningRequestParams,
) -> Option<String> {
    let spec = &csr.spec;
    if spec.signer_name != KUBELET_SERVING {
        return Some(format!("signer {}", spec.signer_name));
    }
    if !spec.groups.iter().flatten().any(|g| g == "system:nodes") {
        return Some("the requestor is not in the group system:nodes".into());
    }
    let usages: Vec<&str> = spec.usages.iter().flatten().map(String::as_str).collect();
    if !usages.contains(&"server auth")
        || usages
            .iter()
            .any(|u| !["digital signature", "key encipherment", "server auth"].contains(u))
    {
        return Some(format!("usages {usages:?}"));
    }
    let dn = &params.params.distinguished_name;
    let text = |t: DnType| match dn.get(&t) {
        Some(DnValue::Utf8String(s)) => Some(s.clone()),
        Some(DnValue::PrintableString(s)) => Some(s.as_str().to_owned()),
        _ => None,
    };
    let cn = text(DnType::CommonName).unwrap_or_default();
    if !cn.starts_with("system:node:") || cn.len() == "system:node:".len() {
        return Some(format!("subject CN {cn:?}"));
    }
    if text(DnType::OrganizationName).as_deref() != Some("system:nodes") {
        return Some("subject O is not system:nodes".into());
    }
    let names_ok = params
        .params
        .subject_alt_names
        .iter()
        .all(|n| matches!(n, SanType::DnsName(_) | SanType::IpAddress(_)));
    if params.params.subject_alt_names.is_empty() || !names_ok {
        return Some("subject alternative names must be DNS names and IP addresses".into());
    }
    None
}

/// The certificate (PEM) for an approved request.
pub fn sign(
    csr: &CertificateSigningRequest,
    mut params: CertificateSigningRequestParams,
    ca: &SigningCa,
) -> Result<String, rcgen::Error> {
    let seconds = csr
        .spec
        .expiration_seconds
        .map_or(DEFAULT_DURATION, |s| i64::from(s).max(MIN_DURATION))
        .min(DEFAULT_DURATION);
    let now = time::OffsetDateTime::now_utc();
    let cert = &mut params.params;
    cert.not_before = now - time::Duration::minutes(5);
    cert.not_after = now + time::Duration::seconds(seconds);
    cert.is_ca = rcgen::IsCa::NoCa;
    cert.use_authority_key_identifier_extension = true;
    cert.key_usages = Vec::new();
    cert.extended_key_usages = Vec::new();
    for usage in csr.spec.usages.iter().flatten() {
        match usage.as_str() {
            "digital signature" => cert.key_usages.push(KeyUsagePurpose::DigitalSignature),
            "key encipherment" => cert.key_usages.push(KeyUsagePurpose::KeyEncipherment),
            "server auth" => cert
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth),
            "client auth" => cert
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth),
            _ => {}
        }
    }
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, KeyPair::from_pem(&ca.key_pem)?)?;
    Ok(params.signed_by(&issuer)?.pem())
}

fn parse(csr: &CertificateSigningRequest) -> Result<CertificateSigningRequestParams, String> {
    let pem = std::str::from_utf8(&csr.spec.request.0)
        .map_err(|_| "the request is not a PEM CERTIFICATE REQUEST".to_owned())?;
    CertificateSigningRequestParams::from_pem(pem).map_err(|e| e.to_string())
}

impl Reconcile for Controller {
    fn name(&self) -> &'static str {
        "certificatesigningrequest"
    }

    async fn reconcile(&self, key: String) -> anyhow::Result<Next> {
        let Some(csr) = self.requests.get(&key) else {
            return Ok(Next::Done);
        };
        let name = csr.metadata.name.clone().unwrap_or_default();
        let api: Api<CertificateSigningRequest> = Api::all(self.ctx.client.clone());
        let done = csr.status.as_ref().is_some_and(|s| s.certificate.is_some());
        if done || has_condition(&csr, "Denied") || has_condition(&csr, "Failed") {
            return Ok(Next::Done);
        }
        if !SIGNED.contains(&csr.spec.signer_name.as_str()) {
            return Ok(Next::Done);
        }
        let params = match parse(&csr) {
            Ok(params) => params,
            Err(err) => {
                tracing::warn!(csr = %name, "unreadable certificate request: {err}");
                return Ok(Next::Done);
            }
        };
        if !has_condition(&csr, "Approved") {
            if let Some(why) = kubelet_serving_refusal(&csr, &params) {
                tracing::debug!(csr = %name, "left for an admin to approve: {why}");
                return Ok(Next::Done);
            }
            let now = k8s_openapi::chrono::Utc::now();
            let approval = json!({"status": {"conditions": [{
                "type": "Approved",
                "status": "True",
                "reason": "AutoApproved",
                "message": "Auto approving kubelet serving certificate after checking its subject, names and usages.",
                "lastUpdateTime": now,
                "lastTransitionTime": now,
            }]}});
            api.patch_subresource(
                "approval",
                &name,
                &PatchParams::default(),
                &Patch::Merge(approval),
            )
            .await?;
            // Signed when the approval comes back through the watch.
            return Ok(Next::Done);
        }
        let pem = match sign(&csr, params, &self.ca) {
            Ok(pem) => pem,
            Err(err) => {
                tracing::warn!(csr = %name, "signing failed: {err}");
                return Ok(Next::After(Duration::from_secs(30)));
            }
        };
        let certificate = serde_json::to_value(ByteString(pem.into_bytes()))?;
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"certificate": certificate}})),
        )
        .await?;
        tracing::info!(csr = %name, signer = %csr.spec.signer_name, "signed");
        Ok(Next::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;

    fn request(cn: &str, org: &str, usages: &[&str]) -> CertificateSigningRequest {
        let key = KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["node-1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params
            .distinguished_name
            .push(DnType::OrganizationName, org);
        let pem = params.serialize_request(&key).unwrap().pem().unwrap();
        CertificateSigningRequest {
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.into_bytes()),
                signer_name: KUBELET_SERVING.into(),
                groups: Some(vec!["system:nodes".into(), "system:authenticated".into()]),
                usages: Some(usages.iter().map(|u| (*u).to_owned()).collect()),
                ..CertificateSigningRequestSpec::default()
            },
            ..CertificateSigningRequest::default()
        }
    }

    fn refusal(csr: &CertificateSigningRequest) -> Option<String> {
        kubelet_serving_refusal(csr, &parse(csr).unwrap())
    }

    #[test]
    fn only_kubelet_serving_requests_are_approved() {
        let usages = ["digital signature", "server auth"];
        let good = request("system:node:node-1", "system:nodes", &usages);
        assert_eq!(refusal(&good), None);
        assert!(refusal(&request("admin", "system:nodes", &usages)).is_some());
        assert!(refusal(&request("system:node:n", "system:masters", &usages)).is_some());
        assert!(refusal(&request("system:node:n", "system:nodes", &["client auth"])).is_some());
        let mut outsider = good.clone();
        outsider.spec.groups = Some(vec!["system:authenticated".into()]);
        assert!(refusal(&outsider).is_some());
        let mut other_signer = good.clone();
        other_signer.spec.signer_name = "example.com/signer".into();
        assert!(refusal(&other_signer).is_some());
    }

    #[test]
    fn signed_certificates_carry_the_requested_names_and_usages() {
        let csr = request(
            "system:node:node-1",
            "system:nodes",
            &["digital signature", "server auth"],
        );
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca = SigningCa {
            cert_pem: ca_cert.pem(),
            key_pem: ca_key.serialize_pem(),
        };
        let pem = sign(&csr, parse(&csr).unwrap(), &ca).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        assert_ne!(pem, ca.cert_pem);
        // A request that is not PEM is refused, not signed.
        let mut garbage = csr.clone();
        garbage.spec.request = ByteString(b"nope".to_vec());
        assert!(parse(&garbage).is_err());
    }
}
