//! Taints and tolerations (`v1.Toleration.ToleratesTaint`).

/// A taint's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaintEffect {
    NoSchedule,
    PreferNoSchedule,
    NoExecute,
    /// An effect this version does not know; no scheduling rule applies to it.
    Other,
}

impl TaintEffect {
    pub fn parse(s: &str) -> TaintEffect {
        match s {
            "NoSchedule" => TaintEffect::NoSchedule,
            "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
            "NoExecute" => TaintEffect::NoExecute,
            _ => TaintEffect::Other,
        }
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: TaintEffect,
}

impl Taint {
    pub fn from_api(t: &k8s_openapi::api::core::v1::Taint) -> Taint {
        Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect: TaintEffect::parse(&t.effect),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Equal,
    Exists,
    /// Unknown operators tolerate nothing.
    Invalid,
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    key: String,
    operator: Operator,
    value: String,
    /// `None` tolerates every effect.
    effect: Option<TaintEffect>,
}

impl Toleration {
    pub fn from_api(t: &k8s_openapi::api::core::v1::Toleration) -> Toleration {
        Toleration {
            key: t.key.clone().unwrap_or_default(),
            operator: match t.operator.as_deref().unwrap_or("") {
                "" | "Equal" => Operator::Equal,
                "Exists" => Operator::Exists,
                _ => Operator::Invalid,
            },
            value: t.value.clone().unwrap_or_default(),
            effect: t
                .effect
                .as_deref()
                .filter(|e| !e.is_empty())
                .map(TaintEffect::parse),
        }
    }

    /// A toleration of `key:effect` with operator Exists.
    pub fn exists(key: &str, effect: Option<TaintEffect>) -> Toleration {
        Toleration {
            key: key.to_owned(),
            operator: Operator::Exists,
            value: String::new(),
            effect,
        }
    }

    /// Whether the effect is empty (all) or the given one.
    pub fn has_effect(&self, effect: TaintEffect) -> bool {
        self.effect.is_none_or(|e| e == effect)
    }

    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != taint.key {
            return false;
        }
        match self.operator {
            Operator::Equal => self.value == taint.value,
            Operator::Exists => true,
            Operator::Invalid => false,
        }
    }
}

/// The first taint with an effect `filter` accepts that no toleration tolerates
/// (`v1helper.FindMatchingUntoleratedTaint`).
pub fn find_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations.iter().any(|tol| tol.tolerates(t)))
}

/// The taints the Filter phase enforces: NoSchedule and NoExecute.
pub fn do_not_schedule(t: &Taint) -> bool {
    matches!(t.effect, TaintEffect::NoSchedule | TaintEffect::NoExecute)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: TaintEffect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        Toleration::from_api(&k8s_openapi::api::core::v1::Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: Some(value.into()),
            effect: Some(effect.into()),
            toleration_seconds: None,
        })
    }

    #[test]
    fn tolerations() {
        let t = taint("dedicated", "gpu", TaintEffect::NoSchedule);
        assert!(tol("dedicated", "Equal", "gpu", "NoSchedule").tolerates(&t));
        assert!(tol("dedicated", "", "gpu", "").tolerates(&t), "any effect");
        assert!(!tol("dedicated", "Equal", "cpu", "NoSchedule").tolerates(&t));
        assert!(!tol("dedicated", "Equal", "gpu", "NoExecute").tolerates(&t));
        assert!(tol("dedicated", "Exists", "", "NoSchedule").tolerates(&t));
        assert!(
            tol("", "Exists", "", "").tolerates(&t),
            "tolerates everything"
        );
        assert!(!tol("other", "Exists", "", "").tolerates(&t));
        assert!(!tol("dedicated", "Lt", "gpu", "").tolerates(&t));
        let taints = [taint("soft", "", TaintEffect::PreferNoSchedule), t.clone()];
        assert_eq!(
            find_untolerated(&taints, &[], do_not_schedule),
            Some(&taints[1])
        );
        assert_eq!(
            find_untolerated(
                &taints,
                &[tol("dedicated", "Exists", "", "")],
                do_not_schedule
            ),
            None
        );
    }
}
