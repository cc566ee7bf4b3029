//! Resource amounts as the scheduler counts them: quantities parsed once into integers
//! (milli-CPU, bytes, counts), a pod's effective requests (kube's `PodRequests`, with init
//! and sidecar containers and overhead), and the sums a node keeps.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The CPU a container without a CPU request counts as when scoring (kube's
/// `DefaultMilliCPURequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring (200 MB,
/// kube's `DefaultMemoryRequest`).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A quantity string (`100m`, `1.5`, `500Mi`, `1e3`, `2k`) as an exact rational number
/// `mantissa * 10^exp10 * 2^exp2`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Parsed {
    mantissa: i128,
    exp10: i32,
    exp2: u32,
}

fn parse(s: &str) -> Option<Parsed> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if frac_part.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c - b'0'))?;
    }
    let mut exp10 = -i32::try_from(frac_part.len()).ok()?;
    let mut exp2 = 0u32;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => exp2 = 10,
        "Mi" => exp2 = 20,
        "Gi" => exp2 = 30,
        "Ti" => exp2 = 40,
        "Pi" => exp2 = 50,
        "Ei" => exp2 = 60,
        other => {
            let exponent = other.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            exp10 = exp10.checked_add(exponent)?;
        }
    }
    Some(Parsed {
        mantissa: if negative { -mantissa } else { mantissa },
        exp10,
        exp2,
    })
}

/// `ceil(value * 10^scale)` as an i64, saturating; `None` for a malformed quantity.
fn scaled(q: &str, scale: i32) -> Option<i64> {
    let p = parse(q)?;
    let mut num = p.mantissa;
    for _ in 0..p.exp2 {
        num = num.saturating_mul(2);
    }
    let exp = p.exp10 + scale;
    let value = if exp >= 0 {
        let mut v = num;
        for _ in 0..exp.min(40) {
            v = v.saturating_mul(10);
        }
        v
    } else {
        let mut den: i128 = 1;
        for _ in 0..(-exp).min(38) {
            den = den.saturating_mul(10);
        }
        // Round up, as kube's Quantity.Value()/MilliValue() do.
        let q = num.div_euclid(den);
        if num.rem_euclid(den) != 0 { q + 1 } else { q }
    };
    Some(value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// A quantity's integer value, rounded up (kube's `Quantity.Value()`); 0 when malformed.
pub fn value(q: &Quantity) -> i64 {
    scaled(&q.0, 0).unwrap_or(0)
}

/// A quantity in thousandths, rounded up (kube's `Quantity.MilliValue()`); 0 when malformed.
pub fn milli_value(q: &Quantity) -> i64 {
    scaled(&q.0, 3).unwrap_or(0)
}

/// Whether a quantity string parses.
pub fn is_valid(q: &Quantity) -> bool {
    parse(&q.0).is_some()
}

/// Resource names beyond cpu, memory, ephemeral-storage and pods that the scheduler counts
/// (kube's `IsScalarResourceName`): extended resources (`example.com/gpu`), hugepages,
/// `kubernetes.io/`-prefixed native resources and attachable volumes.
pub fn is_scalar_resource_name(name: &str) -> bool {
    is_extended_resource_name(name)
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

/// An extended resource: a domain-prefixed name outside `kubernetes.io/`, and not a quota
/// `requests.` name.
pub fn is_extended_resource_name(name: &str) -> bool {
    name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.")
}

/// Amounts of each resource the scheduler tracks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// The `pods` resource (only meaningful for a node's allocatable).
    pub allowed_pod_number: i64,
    /// Scalar resources, sorted by name.
    pub scalar: Vec<(String, i64)>,
}

impl Resource {
    /// From a resource list (requests, limits, allocatable, overhead).
    pub fn from_list(list: &BTreeMap<String, Quantity>) -> Resource {
        let mut r = Resource::default();
        r.add_list(list);
        r
    }

    /// Adds every entry of a resource list.
    pub fn add_list(&mut self, list: &BTreeMap<String, Quantity>) {
        for (name, q) in list {
            match name.as_str() {
                "cpu" => self.milli_cpu = self.milli_cpu.saturating_add(milli_value(q)),
                "memory" => self.memory = self.memory.saturating_add(value(q)),
                "ephemeral-storage" => {
                    self.ephemeral_storage = self.ephemeral_storage.saturating_add(value(q))
                }
                "pods" => {
                    self.allowed_pod_number = self.allowed_pod_number.saturating_add(value(q))
                }
                other if is_scalar_resource_name(other) => self.add_scalar(other, value(q)),
                _ => {}
            }
        }
    }

    /// The amount of a scalar resource (0 when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1,
            Err(_) => 0,
        }
    }

    fn scalar_slot(&mut self, name: &str) -> &mut i64 {
        let i = match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.scalar.insert(i, (name.to_owned(), 0));
                i
            }
        };
        &mut self.scalar[i].1
    }

    pub fn add_scalar(&mut self, name: &str, amount: i64) {
        let slot = self.scalar_slot(name);
        *slot = slot.saturating_add(amount);
    }

    /// Adds another amount (pods count too).
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        self.allowed_pod_number = self
            .allowed_pod_number
            .saturating_add(other.allowed_pod_number);
        for (name, amount) in &other.scalar {
            self.add_scalar(name, *amount);
        }
    }

    /// Subtracts another amount.
    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        self.allowed_pod_number = self
            .allowed_pod_number
            .saturating_sub(other.allowed_pod_number);
        for (name, amount) in &other.scalar {
            let slot = self.scalar_slot(name);
            *slot = slot.saturating_sub(*amount);
        }
    }

    /// Raises each amount to at least the other's.
    pub fn set_max(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (name, amount) in &other.scalar {
            let slot = self.scalar_slot(name);
            *slot = (*slot).max(*amount);
        }
    }

    /// Whether nothing is requested (pods aside).
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }
}

/// A container's requests; with `non_missing`, an absent cpu or memory request counts as
/// the scoring default (kube's `NonMissingContainerRequests`).
fn container_requests(container: &Container, non_missing: bool) -> Resource {
    let requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let mut r = requests.map(Resource::from_list).unwrap_or_default();
    if non_missing {
        let has = |name: &str| requests.is_some_and(|l| l.contains_key(name));
        if !has("cpu") {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !has("memory") {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

/// A pod's effective requests (kube's `resourcehelper.PodRequests`): the sum of its
/// containers; at least what any init container needs while it runs (with the sidecars
/// started before it); sidecars (init containers with `restartPolicy: Always`) added to the
/// sum; plus the pod overhead.
pub fn pod_requests(spec: &PodSpec, non_missing: bool) -> Resource {
    let mut total = Resource::default();
    for c in &spec.containers {
        total.add(&container_requests(c, non_missing));
    }
    let mut sidecars = Resource::default();
    let mut init_peak = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let requests = container_requests(c, non_missing);
        if c.restart_policy.as_deref() == Some("Always") {
            total.add(&requests);
            sidecars.add(&requests);
            init_peak.set_max(&sidecars);
        } else {
            let mut running = requests;
            running.add(&sidecars);
            init_peak.set_max(&running);
        }
    }
    total.set_max(&init_peak);
    if let Some(overhead) = &spec.overhead {
        total.add(&Resource::from_list(overhead));
    }
    total.allowed_pod_number = 0;
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ResourceRequirements;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    #[test]
    fn quantities() {
        assert_eq!(milli_value(&q("100m")), 100);
        assert_eq!(milli_value(&q("1")), 1000);
        assert_eq!(milli_value(&q("0.5")), 500);
        assert_eq!(milli_value(&q("1.0001")), 1001, "rounded up");
        assert_eq!(value(&q("500Mi")), 500 * 1024 * 1024);
        assert_eq!(value(&q("1Gi")), 1 << 30);
        assert_eq!(value(&q("32Gi")), 32 << 30);
        assert_eq!(value(&q("1k")), 1000);
        assert_eq!(value(&q("1e3")), 1000);
        assert_eq!(value(&q("1.5G")), 1_500_000_000);
        assert_eq!(value(&q("100m")), 1, "rounded up");
        assert_eq!(value(&q("110")), 110);
        assert_eq!(value(&q("-1")), -1);
        assert_eq!(value(&q("bogus")), 0);
        assert!(!is_valid(&q("1.2.3")));
        assert_eq!(value(&q("8Ei")), i64::MAX, "saturates");
    }

    fn container(name: &str, cpu: &str, mem: &str, sidecar: bool) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), q(cpu)),
                    ("memory".to_owned(), q(mem)),
                ])),
                ..Default::default()
            }),
            restart_policy: sidecar.then(|| "Always".to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn init_containers_take_the_max_and_sidecars_add_up() {
        // kube's example: containers 2+1 cpu, 1G+1G; init 2 cpu/1G and 2 cpu/3G: 3 cpu, 3G.
        let spec = PodSpec {
            containers: vec![
                container("c1", "2", "1G", false),
                container("c2", "1", "1G", false),
            ],
            init_containers: Some(vec![
                container("i1", "2", "1G", false),
                container("i2", "2", "3G", false),
            ]),
            ..Default::default()
        };
        let r = pod_requests(&spec, false);
        assert_eq!((r.milli_cpu, r.memory), (3000, 3_000_000_000));

        // A sidecar (1 cpu) runs with the containers (1 cpu) and during the later init
        // container (3 cpu): max(1+1, 1+3) = 4.
        let spec = PodSpec {
            containers: vec![container("c", "1", "1G", false)],
            init_containers: Some(vec![
                container("sidecar", "1", "1G", true),
                container("init", "3", "1G", false),
            ]),
            overhead: Some(BTreeMap::from([("cpu".to_owned(), q("250m"))])),
            ..Default::default()
        };
        let r = pod_requests(&spec, false);
        assert_eq!(r.milli_cpu, 4250, "max(2, 4) plus overhead");
        assert_eq!(r.memory, 2_000_000_000);
    }

    #[test]
    fn non_missing_requests_default_only_absent_ones() {
        let spec = PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(BTreeMap::from([("cpu".to_owned(), q("0"))])),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = pod_requests(&spec, true);
        assert_eq!((r.milli_cpu, r.memory), (0, DEFAULT_MEMORY_REQUEST));
        let r = pod_requests(&spec, false);
        assert_eq!((r.milli_cpu, r.memory), (0, 0));
    }

    #[test]
    fn scalar_resources() {
        let r = Resource::from_list(&BTreeMap::from([
            ("example.com/gpu".to_owned(), q("2")),
            ("hugepages-2Mi".to_owned(), q("4Mi")),
            ("unknown".to_owned(), q("3")),
        ]));
        assert_eq!(r.scalar("example.com/gpu"), 2);
        assert_eq!(r.scalar("hugepages-2Mi"), 4 << 20);
        assert_eq!(r.scalar("unknown"), 0);
    }
}
