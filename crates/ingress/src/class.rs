//! Which Ingresses this controller serves: those whose class (spec.ingressClassName, or the
//! deprecated `kubernetes.io/ingress.class` annotation) names an IngressClass of ours, and
//! those without class while one of our IngressClasses is the default. Also the IngressClass
//! `rkube` itself, made at start when absent.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressClass, IngressClassSpec};
use kube::api::{Api, ObjectMeta, PostParams};

/// The annotation that makes an IngressClass the default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";
/// The annotation that named an Ingress's class before spec.ingressClassName.
pub const LEGACY_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The class an Ingress asks for, if any.
pub fn class_of(ingress: &Ingress) -> Option<&str> {
    ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ingress
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LEGACY_CLASS_ANNOTATION))
                .map(String::as_str)
        })
        .filter(|c| !c.is_empty())
}

fn is_default(class: &IngressClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// Whether an Ingress is ours, given the IngressClasses that exist.
pub fn served<'a>(
    ingress: &Ingress,
    controller: &str,
    classes: impl IntoIterator<Item = &'a IngressClass>,
) -> bool {
    let ours = |c: &IngressClass| {
        c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(controller)
    };
    match class_of(ingress) {
        Some(name) => classes
            .into_iter()
            .any(|c| c.metadata.name.as_deref() == Some(name) && ours(c)),
        None => classes.into_iter().any(|c| ours(c) && is_default(c)),
    }
}

/// Creates the IngressClass `name` for `controller`, marked default, unless it exists.
pub async fn ensure_class(client: kube::Client, name: &str, controller: &str) -> kube::Result<()> {
    let api: Api<IngressClass> = Api::all(client);
    if api.get_opt(name).await?.is_some() {
        return Ok(());
    }
    let class = IngressClass {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            annotations: Some(BTreeMap::from([(
                DEFAULT_CLASS_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..Default::default()
        },
        spec: Some(IngressClassSpec {
            controller: Some(controller.to_owned()),
            parameters: None,
        }),
    };
    match api.create(&PostParams::default(), &class).await {
        Ok(_) => {
            tracing::info!(class = name, "created the default IngressClass");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::IngressSpec;

    fn class(name: &str, controller: &str, default: bool) -> IngressClass {
        let mut annotations = BTreeMap::new();
        if default {
            annotations.insert(DEFAULT_CLASS_ANNOTATION.to_owned(), "true".to_owned());
        }
        IngressClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some(annotations),
                ..Default::default()
            },
            spec: Some(IngressClassSpec {
                controller: Some(controller.into()),
                parameters: None,
            }),
        }
    }

    fn ingress(class: Option<&str>, annotation: Option<&str>) -> Ingress {
        Ingress {
            metadata: ObjectMeta {
                annotations: annotation
                    .map(|a| BTreeMap::from([(LEGACY_CLASS_ANNOTATION.to_owned(), a.to_owned())])),
                ..Default::default()
            },
            spec: Some(IngressSpec {
                ingress_class_name: class.map(str::to_owned),
                ..Default::default()
            }),
            status: None,
        }
    }

    #[test]
    fn serves_its_classes_and_classless_when_default() {
        let ours = "rkube.io/ingress-controller";
        let classes = [
            class("rkube", ours, true),
            class("nginx", "k8s.io/ingress-nginx", false),
        ];
        assert!(served(&ingress(Some("rkube"), None), ours, &classes));
        assert!(!served(&ingress(Some("nginx"), None), ours, &classes));
        assert!(!served(&ingress(Some("missing"), None), ours, &classes));
        assert!(served(&ingress(None, None), ours, &classes));
        assert!(served(&ingress(None, Some("rkube")), ours, &classes));
        assert!(!served(&ingress(None, Some("nginx")), ours, &classes));
        let not_default = [class("rkube", ours, false)];
        assert!(!served(&ingress(None, None), ours, &not_default));
        assert!(served(&ingress(Some("rkube"), None), ours, &not_default));
    }
}
