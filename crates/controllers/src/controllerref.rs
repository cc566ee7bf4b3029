//! kube's ControllerRefManager: which objects a controller claims. An object controlled by
//! the owner and matching its selector is the owner's; one controlled by it that no longer
//! matches is released; a matching orphan is adopted, unless the owner or the orphan is being
//! deleted. Adoption and release are the strategic merge patches kube sends, carrying the
//! object's uid so they cannot apply to a namesake.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use crate::batchutil::controller_of;

/// What a controller does with one object it looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Already the owner's.
    Owned,
    /// The owner's but no longer matching: remove the controller reference.
    Release,
    /// A matching orphan: add a controller reference.
    Adopt,
    /// Someone else's, or not to be touched now.
    Ignore,
}

/// kube's `ClaimObject` decision for `object`, given the owner's uid, namespace and deletion
/// state and whether the owner's selector matches the object.
pub fn decide(object: &ObjectMeta, owner: &ObjectMeta, matches: bool) -> Claim {
    let owner_uid = owner.uid.as_deref().unwrap_or("");
    let owner_deleting = owner.deletion_timestamp.is_some();
    match controller_of(object) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches || object.deletion_timestamp.is_some() => Claim::Ignore,
        None if owner.namespace.as_deref().is_some_and(|ns| !ns.is_empty())
            && owner.namespace != object.namespace =>
        {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// The patch that makes `controller` the object's controller.
pub fn adopt_patch(controller: &OwnerReference, object_uid: &str) -> Value {
    json!({"metadata": {
        "ownerReferences": [{
            "apiVersion": controller.api_version,
            "kind": controller.kind,
            "name": controller.name,
            "uid": controller.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        }],
        "uid": object_uid,
    }})
}

/// The patch that removes the reference to the owner with `owner_uid`.
pub fn release_patch(owner_uid: &str, object_uid: &str) -> Value {
    json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
        "uid": object_uid,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::chrono::Utc;

    fn meta(uid: &str, controller: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: Some(uid.into()),
            namespace: Some("ns".into()),
            owner_references: controller.map(|c| {
                vec![OwnerReference {
                    uid: c.into(),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]
            }),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn claims_follow_ownership_selector_and_deletion() {
        let owner = meta("rs", None);
        let mut deleting = owner.clone();
        deleting.deletion_timestamp = Some(Time(Utc::now()));
        assert_eq!(decide(&meta("p", Some("rs")), &owner, true), Claim::Owned);
        assert_eq!(
            decide(&meta("p", Some("rs")), &owner, false),
            Claim::Release
        );
        assert_eq!(
            decide(&meta("p", Some("rs")), &deleting, true),
            Claim::Owned
        );
        assert_eq!(
            decide(&meta("p", Some("rs")), &deleting, false),
            Claim::Ignore
        );
        assert_eq!(
            decide(&meta("p", Some("other")), &owner, true),
            Claim::Ignore
        );
        assert_eq!(decide(&meta("p", None), &owner, true), Claim::Adopt);
        assert_eq!(decide(&meta("p", None), &owner, false), Claim::Ignore);
        assert_eq!(decide(&meta("p", None), &deleting, true), Claim::Ignore);
        let mut gone = meta("p", None);
        gone.deletion_timestamp = Some(Time(Utc::now()));
        assert_eq!(decide(&gone, &owner, true), Claim::Ignore);
        let mut elsewhere = meta("p", None);
        elsewhere.namespace = Some("other".into());
        assert_eq!(decide(&elsewhere, &owner, true), Claim::Ignore);
    }
}
