//! CustomResourceDefinition structural schemas (`apiextensions.k8s.io/v1` `openAPIV3Schema`,
//! handled as JSON values) applied to custom objects the way kube-apiserver's
//! apiextensions-apiserver does it in Kubernetes v1.33:
//!
//! - [`check_structural`]: the CRD-time checks of a version's schema (structural invariants of
//!   `pkg/apiserver/schema/validation.go` and `complete.go`, the schema rules of
//!   `ValidateCustomResourceDefinitionOpenAPISchema`, and the validation of `default` values).
//! - [`prune`]: dropping unknown fields (`pkg/apiserver/schema/pruning`), followed, as the
//!   custom resource decoder does, by removing non-nullable nulls without a default.
//! - [`apply_defaults`] follows `pkg/apiserver/schema/defaulting`.
//! - [`validate`]: kube-openapi's schema validator (`k8s.io/kube-openapi/pkg/validation/validate`)
//!   with its errors converted to field errors as `apiserver/validation` does, followed by the
//!   `x-kubernetes-list-type` set/map uniqueness checks (`pkg/apiserver/schema/listtype`).
//!
//! Field paths and messages are kube's: kube-openapi names the value `spec.items[0].name` and
//! says `spec.items[0].name in body must be of type string: "integer"`. Errors kube reports
//! against a nil path (the `anyOf`/`oneOf`/`allOf`/`not` summaries, errors about the object
//! root) carry the field `<nil>`, as kube prints them.
//!
//! Every function is total: malformed schemas are read leniently (a keyword of the wrong JSON
//! type is ignored; [`check_structural`] reports it), and nesting deeper than [`MAX_DEPTH`] is
//! not followed ([`validate`] and [`check_structural`] report it).
//!
//! Not covered: `x-kubernetes-validations` (CEL rules), ratcheting of unchanged fields on
//! update, the ObjectMeta checks of embedded resources (`x-kubernetes-embedded-resource`
//! metadata is kept as is), and the status-subresource restrictions on the root schema.

use crate::validation::{FieldError, go_quote};
use serde_json::{Map, Number, Value};
use std::collections::{HashMap, HashSet};

/// The deepest nesting (of schemas, and of values under a schema) the functions follow.
pub const MAX_DEPTH: usize = 64;

const PRESERVE: &str = "x-kubernetes-preserve-unknown-fields";
const EMBEDDED: &str = "x-kubernetes-embedded-resource";
const INT_OR_STRING: &str = "x-kubernetes-int-or-string";
const LIST_TYPE: &str = "x-kubernetes-list-type";
const LIST_MAP_KEYS: &str = "x-kubernetes-list-map-keys";
const MAP_TYPE: &str = "x-kubernetes-map-type";

fn is_meta(key: &str) -> bool {
    matches!(key, "apiVersion" | "kind" | "metadata")
}

fn depth_detail() -> String {
    format!("must not be nested more than {MAX_DEPTH} levels deep")
}

// ---------------------------------------------------------------------------------------------
// Reading schema nodes (lenient: a keyword of the wrong JSON type counts as absent)
// ---------------------------------------------------------------------------------------------

fn s_str<'a>(s: &'a Value, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or("")
}

fn s_opt_str<'a>(s: &'a Value, key: &str) -> Option<&'a str> {
    s.get(key).and_then(Value::as_str)
}

fn s_flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool).unwrap_or(false)
}

fn s_props(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

fn s_prop<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s_props(s).and_then(|p| p.get(key))
}

fn s_items(s: &Value) -> Option<&Value> {
    s.get("items").filter(|v| v.is_object())
}

fn s_array<'a>(s: &'a Value, key: &str) -> &'a [Value] {
    s.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn s_strings<'a>(s: &'a Value, key: &str) -> Vec<&'a str> {
    s_array(s, key).iter().filter_map(Value::as_str).collect()
}

fn s_default(s: &Value) -> Option<&Value> {
    s.get("default").filter(|v| !v.is_null())
}

fn s_i64(s: &Value, key: &str) -> Option<i64> {
    s.get(key).and_then(Value::as_i64)
}

fn s_f64(s: &Value, key: &str) -> Option<f64> {
    s.get(key).and_then(Value::as_f64)
}

/// `additionalProperties`: absent, a boolean, or a schema.
#[derive(Clone, Copy)]
enum Additional<'a> {
    Absent,
    Bool(bool),
    Schema(&'a Value),
}

impl<'a> Additional<'a> {
    fn of(s: &'a Value) -> Additional<'a> {
        match s.get("additionalProperties") {
            Some(Value::Bool(b)) => Additional::Bool(*b),
            Some(v @ Value::Object(_)) => Additional::Schema(v),
            _ => Additional::Absent,
        }
    }

    fn present(self) -> bool {
        !matches!(self, Additional::Absent)
    }

    fn schema(self) -> Option<&'a Value> {
        match self {
            Additional::Schema(v) => Some(v),
            _ => None,
        }
    }
}

/// The schema of the value of `key` in an object of schema `s` (a property, else the
/// `additionalProperties` schema).
fn field_schema<'a>(s: &'a Value, key: &str) -> Option<&'a Value> {
    s_prop(s, key).or_else(|| Additional::of(s).schema())
}

/// A JSON value "unset" as Go sees it after decoding (zero value or empty collection).
fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(_) => false,
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn key_path(path: &str, key: &str) -> String {
    format!("{path}[{key}]")
}

fn index_path(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

// ---------------------------------------------------------------------------------------------
// Numbers and Go's renderings of values
// ---------------------------------------------------------------------------------------------

/// A JSON number as Go's unstructured decoding holds it: int64 when it is an integer literal
/// that fits, float64 otherwise.
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

fn num_of(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) => Num::I(i),
        None => Num::F(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// go-openapi's `IsFloat64AJSONInteger`: integral (within a relative 1e-9) and within ±(2^53-1).
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    if !f.is_finite() || !(-MAX..=MAX).contains(&f) {
        return false;
    }
    let rounded = f.round();
    if f == rounded {
        return true;
    }
    if rounded == 0.0 {
        return false;
    }
    (f - rounded).abs() < 1e-9 * rounded.abs()
}

/// The shortest decimal digits of a finite, non-zero `f` and its decimal exponent (the
/// position of the decimal point: value = 0.DIGITS × 10^point).
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// Digits placed around a decimal point (`%f` with the shortest precision).
fn fixed_notation(digits: &str, point: i32) -> String {
    let nd = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= nd {
        format!(
            "{digits}{}",
            "0".repeat(usize::try_from(point - nd).unwrap_or(0))
        )
    } else {
        let split = usize::try_from(point).unwrap_or(0);
        let (a, b) = digits.split_at(split.min(digits.len()));
        format!("{a}.{b}")
    }
}

/// Digits in scientific notation, Go style (`1.5e+06`, exponent of at least two digits).
fn exp_notation(digits: &str, point: i32, pad: bool) -> String {
    let exp = point - 1;
    let mut out = String::new();
    let mut chars = digits.chars();
    if let Some(first) = chars.next() {
        out.push(first);
    }
    let rest: String = chars.collect();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(&rest);
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if pad && abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
    out
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): `100`, `0.5`, `1e+06`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        format!("{sign}{}", exp_notation(&digits, point, true))
    } else {
        format!("{sign}{}", fixed_notation(&digits, point))
    }
}

/// Go's `json.Marshal` of a float64: `2`, `0.5`, `1e+21`, `1e-7`.
fn go_json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".to_string();
    }
    let sign = if f.is_sign_negative() && f != 0.0 {
        "-"
    } else {
        ""
    };
    if f == 0.0 {
        return "0".to_string();
    }
    let abs = f.abs();
    let (digits, point) = shortest_digits(f);
    if !(1e-6..1e21).contains(&abs) {
        format!("{sign}{}", exp_notation(&digits, point, false))
    } else {
        format!("{sign}{}", fixed_notation(&digits, point))
    }
}

/// Go's `%v` of a JSON number as unstructured data holds it.
fn go_number(n: &Number) -> String {
    match num_of(n) {
        Num::I(i) => i.to_string(),
        Num::F(f) => go_float(f),
    }
}

/// How `field.Error.ErrorBody` prints a bad value: strings quoted, numbers and booleans
/// plainly, `null` for nil, and Go's `%#v` for lists and maps.
fn go_bad_value(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        other => go_sharp_v(other, 0),
    }
}

/// Go's `%#v` of unstructured data (`[]interface {}{...}`, `map[string]interface {}{...}`).
fn go_sharp_v(v: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "...".to_string();
    }
    match v {
        Value::Null => "interface {}(nil)".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| go_sharp_v(i, depth + 1)).collect();
            format!("[]interface {{}}{{{}}}", inner.join(", "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .filter_map(|k| {
                    m.get(k)
                        .map(|x| format!("{}:{}", go_quote(k), go_sharp_v(x, depth + 1)))
                })
                .collect();
            format!("map[string]interface {{}}{{{}}}", inner.join(", "))
        }
    }
}

/// Go's `json.Marshal` of a value, with map keys sorted.
fn go_json(v: &Value, depth: usize) -> String {
    if depth > MAX_DEPTH {
        return "null".to_string();
    }
    match v {
        Value::Number(n) => match num_of(n) {
            Num::I(i) => i.to_string(),
            Num::F(f) => go_json_float(f),
        },
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| go_json(i, depth + 1)).collect();
            format!("[{}]", inner.join(","))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .into_iter()
                .filter_map(|k| {
                    m.get(k).map(|x| {
                        format!(
                            "{}:{}",
                            serde_json::to_string(k).unwrap_or_default(),
                            go_json(x, depth + 1)
                        )
                    })
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// A key identifying a value for set semantics: scalars compare with their Go type (int64 1 and
/// float64 1 differ), compound values by their JSON.
fn identity_key(v: &Value) -> String {
    match v {
        Value::Null => "n".to_string(),
        Value::Bool(b) => format!("b{b}"),
        Value::String(s) => format!("s{s}"),
        Value::Number(n) => match num_of(n) {
            Num::I(i) => format!("i{i}"),
            Num::F(f) => format!("f{}", f.to_bits()),
        },
        other => format!("c{}", go_json(other, 0)),
    }
}

// ---------------------------------------------------------------------------------------------
// Pruning (pkg/apiserver/schema/pruning, defaulting/prunenulls.go)
// ---------------------------------------------------------------------------------------------

/// Removes the fields of `object` that `schema` does not specify, as kube-apiserver prunes a
/// custom resource (`pruning.PruneWithOptions` with `isResourceRoot`), and returns the paths of
/// the pruned fields, sorted, as kube reports them for `fieldValidation=Warn|Strict`
/// (`unknown field "spec.foo"`): `spec.foo`, `spec.items[0].bar`.
///
/// Fields under a schema with `x-kubernetes-preserve-unknown-fields: true` are kept (known
/// properties below are still pruned); `apiVersion`, `kind` and `metadata` at the root (and in
/// `x-kubernetes-embedded-resource` objects) are kept and never pruned below.
///
/// Then, as the custom resource decoder does right after pruning
/// (`PruneNonNullableNullsWithoutDefaults`), fields whose value is `null` are removed when their
/// schema is not `nullable` and has no `default` (those with a default get it from
/// [`apply_defaults`]); these are not reported.
pub fn prune(object: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut path = String::new();
    prune_value(object, Some(schema), true, &mut path, &mut unknown, 0);
    prune_nulls(object, Some(schema), true, 0);
    unknown.sort();
    unknown
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn record_unknown(path: &str, key: &str, out: &mut Vec<String>) {
    out.push(child(path, key));
}

/// Go's `prune`: `resource_root` forces `x-kubernetes-embedded-resource` (the object root).
fn prune_value(
    x: &mut Value,
    s: Option<&Value>,
    resource_root: bool,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let embedded = resource_root || s.is_some_and(|s| s_flag(s, EMBEDDED));
    if let Some(schema) = s
        && s_flag(schema, PRESERVE)
    {
        skip_prune(x, schema, embedded, path, out, depth);
        return;
    }
    let len = path.len();
    match x {
        Value::Object(m) => {
            let Some(schema) = s else {
                for k in m.keys() {
                    record_unknown(path, k, out);
                }
                m.clear();
                return;
            };
            let additional = Additional::of(schema);
            let mut removed: HashSet<String> = HashSet::new();
            for (k, v) in m.iter_mut() {
                if embedded && is_meta(k) {
                    continue;
                }
                let sub = match s_prop(schema, k) {
                    Some(p) => Some(Some(p)),
                    None if additional.present() => Some(additional.schema()),
                    None => None,
                };
                match sub {
                    Some(sub) => {
                        push_key(path, k);
                        prune_value(v, sub, false, path, out, depth + 1);
                        path.truncate(len);
                    }
                    None => {
                        if !is_meta(k) || !path.is_empty() {
                            record_unknown(path, k, out);
                        }
                        removed.insert(k.clone());
                    }
                }
            }
            if !removed.is_empty() {
                m.retain(|k, _| !removed.contains(k));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(s_items);
            for (i, v) in items.iter_mut().enumerate() {
                path.push_str(&format!("[{i}]"));
                prune_value(v, item_schema, false, path, out, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Go's `skipPrune`: below `x-kubernetes-preserve-unknown-fields`, unknown fields stay but
/// specified ones are pruned by their schema.
fn skip_prune(
    x: &mut Value,
    s: &Value,
    embedded: bool,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let len = path.len();
    match x {
        Value::Object(m) => {
            let additional = Additional::of(s);
            for (k, v) in m.iter_mut() {
                if embedded && is_meta(k) {
                    continue;
                }
                let sub = match s_prop(s, k) {
                    Some(p) => Some(Some(p)),
                    None if additional.present() => Some(additional.schema()),
                    None => None,
                };
                if let Some(sub) = sub {
                    push_key(path, k);
                    prune_value(v, sub, false, path, out, depth + 1);
                    path.truncate(len);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s_items(s) {
                let item_embedded = s_flag(item_schema, EMBEDDED);
                for (i, v) in items.iter_mut().enumerate() {
                    path.push_str(&format!("[{i}]"));
                    skip_prune(v, item_schema, item_embedded, path, out, depth + 1);
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
}

/// `PruneNonNullableNullsWithoutDefaults` (root `apiVersion`, `kind`, `metadata` untouched).
fn prune_nulls(x: &mut Value, s: Option<&Value>, root: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            let mut removed: HashSet<String> = HashSet::new();
            for (k, v) in m.iter_mut() {
                if root && is_meta(k) {
                    continue;
                }
                let sub = s.and_then(|s| field_schema(s, k));
                if v.is_null()
                    && let Some(fs) = sub
                    && !s_flag(fs, "nullable")
                    && s_default(fs).is_none()
                {
                    removed.insert(k.clone());
                    continue;
                }
                prune_nulls(v, sub, false, depth + 1);
            }
            if !removed.is_empty() {
                m.retain(|k, _| !removed.contains(k));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(s_items);
            for v in items.iter_mut() {
                prune_nulls(v, item_schema, false, depth + 1);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Defaulting (pkg/apiserver/schema/defaulting/algorithm.go)
// ---------------------------------------------------------------------------------------------

/// Applies the schema's `default` values to `object` (kube's `structuraldefaulting.Default`):
/// an absent property with a default gets a copy of it, and so does a property, array item or
/// `additionalProperties` value that is `null` while its schema is not `nullable`. Defaulting
/// recurses into every object present (including defaults just applied), array items and
/// `additionalProperties` maps; an absent object without a default is not created. `apiVersion`,
/// `kind` and `metadata` at the root are left alone. Meant to run after [`prune`].
pub fn apply_defaults(object: &mut Value, schema: &Value) {
    default_value(object, schema, true, 0);
}

fn default_value(x: &mut Value, s: &Value, root: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match x {
        Value::Object(m) => {
            if let Some(props) = s_props(s) {
                for (k, p) in props {
                    if root && is_meta(k) {
                        continue;
                    }
                    let Some(d) = s_default(p) else { continue };
                    let needed = match m.get(k) {
                        None => true,
                        Some(v) => v.is_null() && !s_flag(p, "nullable"),
                    };
                    if needed {
                        m.insert(k.clone(), d.clone());
                    }
                }
            }
            let additional = Additional::of(s).schema();
            for (k, v) in m.iter_mut() {
                if root && is_meta(k) {
                    continue;
                }
                if let Some(p) = s_prop(s, k) {
                    default_value(v, p, false, depth + 1);
                } else if let Some(ap) = additional {
                    if v.is_null() && !s_flag(ap, "nullable") {
                        *v = s_default(ap).cloned().unwrap_or(Value::Null);
                    }
                    default_value(v, ap, false, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s_items(s) {
                for v in items.iter_mut() {
                    if v.is_null() && !s_flag(item_schema, "nullable") {
                        *v = s_default(item_schema).cloned().unwrap_or(Value::Null);
                    }
                    default_value(v, item_schema, false, depth + 1);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Validation (kube-openapi's SchemaValidator, apiserver/validation's error conversion)
// ---------------------------------------------------------------------------------------------

/// Validates `object` (after [`prune`] and [`apply_defaults`]) against `schema` as
/// kube-apiserver validates a custom resource: kube-openapi's schema validation (`type`,
/// `nullable`, `format`, `enum`, `required`, `properties`, `additionalProperties`, `items`,
/// numeric, string, array and object bounds, `pattern`, `uniqueItems`, `allOf`, `anyOf`,
/// `oneOf`, `not`, `x-kubernetes-int-or-string`), then the uniqueness of
/// `x-kubernetes-list-type: set|map` lists.
///
/// The root `metadata` is validated elsewhere (ObjectMeta rules); only the schema's own
/// constraints on `metadata.name` and `metadata.generateName` are checked here, as kube does.
///
/// As in kube, an integer-valued float (`2.0`) is accepted where `type: integer` is required;
/// numeric formats (`int32`, `float`, ...) set no range in v1.33; `pattern` is a Go (RE2)
/// regular expression, matched by a small RE2 engine here (a pattern using a Unicode class
/// other than `Any`, `L`, `Lu`, `Ll`, `N`, `Nd`, or one too large for it, is not enforced).
pub fn validate(object: &Value, schema: &Value) -> Vec<FieldError> {
    let validator = Validator { base: None };
    let mut errors = validator.node(object, schema, "", 0, true).errors;
    if let Value::Object(m) = object {
        list_types_object(None, schema, m, true, 0, &mut errors);
    }
    errors
}

/// The outcome of validating one value: the errors and kube-openapi's `MatchCount` (used to
/// pick which failing `anyOf`/`oneOf` branch is reported).
#[derive(Default)]
struct Res {
    errors: Vec<FieldError>,
    matches: usize,
}

impl Res {
    fn merge(&mut self, other: Res) {
        self.errors.extend(other.errors);
        self.matches += other.matches;
    }

    fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    fn valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// kube-openapi's validator for one object; `base` is the field path the errors are relative
/// to (`None`: Go's nil path, as for a custom resource).
struct Validator<'a> {
    base: Option<&'a str>,
}

impl Validator<'_> {
    /// The field path of an error about the kube-openapi name `name` (`errPath.Child(name)`).
    fn field(&self, name: &str) -> String {
        let name = if name == "." {
            ""
        } else {
            name.strip_prefix('.').unwrap_or(name)
        };
        match (self.base, name.is_empty()) {
            (None, true) => "<nil>".to_string(),
            (Some(b), true) => b.to_string(),
            (None, false) => name.to_string(),
            (Some(b), false) => format!("{b}.{name}"),
        }
    }

    /// An error that is not an `errors.Validation` (the composition summaries): kube reports
    /// `field.Invalid(fldPath, "", msg)`.
    fn composite(&self, msg: String) -> FieldError {
        FieldError::invalid(self.base.unwrap_or("<nil>"), "", msg)
    }

    /// `errors.InvalidType`, converted to `field.TypeInvalid`.
    fn type_error(&self, name: &str, type_name: &str, value: &str) -> FieldError {
        FieldError::invalid(
            self.field(name),
            value,
            format!(
                "{name} in body must be of type {type_name}: {}",
                go_quote(value)
            ),
        )
    }

    /// Any other `errors.Validation`: `field.Invalid(errPath, value, msg)`.
    fn invalid(&self, name: &str, rendered: String, msg: String) -> FieldError {
        FieldError::invalid_rendered(self.field(name), Some(rendered), msg)
    }

    /// `SchemaValidator.Validate` of `d` against `s`, `path` being kube-openapi's name of `d`.
    fn node(&self, d: &Value, s: &Value, path: &str, depth: usize, root: bool) -> Res {
        let mut res = Res::default();
        if depth > MAX_DEPTH {
            res.push(FieldError::forbidden(self.field(path), depth_detail()));
            return res;
        }
        if !s.is_object() {
            return res;
        }
        let types = schema_types(s);
        let format = effective_format(s, &types);
        let type_applies = !types.is_empty() || !format.is_empty();

        if d.is_null() {
            if type_applies && let Some(e) = self.check_type(d, s, &types, format, path) {
                res.push(e);
            }
            if let Some(e) = self.check_enum(d, s, path) {
                res.push(e);
            }
            return res;
        }

        if type_applies {
            match self.check_type(d, s, &types, format, path) {
                Some(e) => res.push(e),
                None => res.matches += 1,
            }
            res.matches += 1;
        }
        let junctors = self.check_junctors(d, s, path, depth);
        res.merge(junctors);
        res.matches += 1;
        if let Value::String(text) = d {
            if let Some(e) = self.check_string(text, s, path) {
                res.push(e);
            }
            res.matches += 1;
            let normalized = format.replace('-', "");
            if STRING_FORMATS.contains(&normalized.as_str()) {
                if !format_valid(&normalized, text) {
                    res.push(self.type_error(path, format, text));
                }
                res.matches += 1;
            }
        }
        if let Value::Number(n) = d {
            for e in self.check_number(n, s, path) {
                res.push(e);
            }
            res.matches += 1;
        }
        if let Value::Array(items) = d {
            let slice = self.check_array(items, s, path, depth);
            res.merge(slice);
            res.matches += 1;
        }
        if let Some(e) = self.check_enum(d, s, path) {
            res.push(e);
        }
        res.matches += 1;
        if let Value::Object(m) = d {
            let object = self.check_object(m, s, path, depth, root);
            res.merge(object);
            res.matches += 1;
        }
        res.matches += 1;
        res
    }

    /// kube-openapi's `typeValidator`.
    fn check_type(
        &self,
        d: &Value,
        s: &Value,
        types: &[&str],
        format: &str,
        path: &str,
    ) -> Option<FieldError> {
        let (kind, data_format, integral) = match d {
            Value::Null => {
                if !types.is_empty() && !types.contains(&"null") && !s_flag(s, "nullable") {
                    return Some(self.type_error(path, &types.join(","), "null"));
                }
                return None;
            }
            Value::Bool(_) => ("boolean", "", false),
            Value::String(_) => ("string", "", false),
            Value::Number(n) => match num_of(n) {
                Num::I(_) => ("integer", "int64", false),
                Num::F(f) => ("number", "float64", is_json_integer(f)),
            },
            Value::Array(_) => ("array", "", false),
            Value::Object(_) => ("object", "", false),
        };
        let has = |t: &str| types.contains(&t);
        let float_int = kind == "number" && integral && has("integer");
        let int_float = kind == "integer" && has("number");
        let string_or_slice = matches!(d, Value::String(_) | Value::Array(_));
        let type_matches = has(kind) || data_format == format || float_int || int_float;
        if !(string_or_slice || format.is_empty() || type_matches) {
            return Some(self.type_error(path, format, data_format));
        }
        let numeric = has("number") || has("integer");
        if string_or_slice && !numeric && !format.is_empty() {
            return None;
        }
        if !(has(kind) || float_int || int_float) {
            return Some(self.type_error(path, &types.join(","), kind));
        }
        None
    }

    /// kube-openapi's `schemaPropsValidator`: `anyOf`, `oneOf`, `allOf`, `not`.
    fn check_junctors(&self, d: &Value, s: &Value, path: &str, depth: usize) -> Res {
        let mut res = Res::default();

        let any_of = s_array(s, "anyOf");
        if !any_of.is_empty() {
            let mut best: Option<Res> = None;
            let mut first_success: Option<Res> = None;
            for sub in any_of {
                let r = self.node(d, sub, path, depth + 1, false);
                if r.valid() {
                    best = None;
                    first_success = Some(r);
                    break;
                }
                if best.as_ref().is_none_or(|b| r.matches > b.matches) {
                    best = Some(r);
                }
            }
            if first_success.is_none() {
                res.push(self.composite(format!(
                    "{} must validate at least one schema (anyOf)",
                    go_quote(path)
                )));
            }
            if let Some(b) = best {
                res.merge(b);
            } else if let Some(f) = first_success {
                res.merge(f);
            }
        }

        let one_of = s_array(s, "oneOf");
        if !one_of.is_empty() {
            let mut best: Option<Res> = None;
            let mut first_success: Option<Res> = None;
            let mut validated = 0usize;
            for sub in one_of {
                let r = self.node(d, sub, path, depth + 1, false);
                if r.valid() {
                    validated += 1;
                    best = None;
                    if first_success.is_none() {
                        first_success = Some(r);
                    }
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| r.matches > b.matches) {
                    best = Some(r);
                }
            }
            if validated != 1 {
                let additional = if validated == 0 {
                    "Found none valid".to_string()
                } else {
                    format!("Found {validated} valid alternatives")
                };
                res.push(self.composite(format!(
                    "{} must validate one and only one schema (oneOf). {additional}",
                    go_quote(path)
                )));
                if let Some(b) = best {
                    res.merge(b);
                }
            } else if let Some(f) = first_success {
                res.merge(f);
            }
        }

        let all_of = s_array(s, "allOf");
        if !all_of.is_empty() {
            let mut validated = 0usize;
            for sub in all_of {
                let r = self.node(d, sub, path, depth + 1, false);
                if r.valid() {
                    validated += 1;
                }
                res.merge(r);
            }
            if validated != all_of.len() {
                let additional = if validated == 0 {
                    ". None validated"
                } else {
                    ""
                };
                res.push(self.composite(format!(
                    "{} must validate all the schemas (allOf){additional}",
                    go_quote(path)
                )));
            }
        }

        if let Some(not) = s.get("not").filter(|n| n.is_object()) {
            let r = self.node(d, not, path, depth + 1, false);
            if r.valid() {
                res.push(self.composite(format!(
                    "{} must not validate the schema (not)",
                    go_quote(path)
                )));
            }
        }

        res.matches += 1;
        res
    }

    /// kube-openapi's `stringValidator`: the first failing of maxLength, minLength, pattern.
    fn check_string(&self, text: &str, s: &Value, path: &str) -> Option<FieldError> {
        let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
        if let Some(max) = s_i64(s, "maxLength")
            && len > max
        {
            return Some(FieldError::too_long(
                self.field(path),
                usize::try_from(max).ok(),
            ));
        }
        if let Some(min) = s_i64(s, "minLength")
            && len < min
        {
            return Some(self.invalid(
                path,
                go_quote(text),
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
        let pattern = s_str(s, "pattern");
        if !pattern.is_empty() {
            match regex::Regex::new(pattern) {
                Ok(re) => {
                    if re.is_match(text) == Some(false) {
                        return Some(self.invalid(
                            path,
                            go_quote(text),
                            format!("{path} in body should match '{pattern}'"),
                        ));
                    }
                }
                Err(regex::ReError::Invalid(err)) => {
                    return Some(self.invalid(
                        path,
                        go_quote(text),
                        format!(
                            "{path} in body should match '{pattern}, but pattern is invalid: {err}'"
                        ),
                    ));
                }
                Err(regex::ReError::Unsupported) => {}
            }
        }
        None
    }

    /// kube-openapi's `numberValidator` (v1.33: no range check for numeric formats):
    /// multipleOf, minimum, maximum.
    fn check_number(&self, n: &Number, s: &Value, path: &str) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let value = num_of(n);
        let rendered = go_number(n);
        if let Some(factor) = s_f64(s, "multipleOf") {
            match value {
                Num::I(i) => {
                    let f = factor as i64;
                    if f <= 0 {
                        errs.push(self.invalid(
                            path,
                            f.to_string(),
                            format!("factor MultipleOf declared for {path} must be positive: {f}"),
                        ));
                    } else if i.checked_rem(f).is_some_and(|r| r != 0) {
                        errs.push(self.invalid(
                            path,
                            rendered.clone(),
                            format!("{path} in body should be a multiple of {f}"),
                        ));
                    }
                }
                Num::F(x) => {
                    if factor <= 0.0 {
                        errs.push(self.invalid(
                            path,
                            go_float(factor),
                            format!(
                                "factor MultipleOf declared for {path} must be positive: {}",
                                go_float(factor)
                            ),
                        ));
                    } else {
                        let mult = if factor < 1.0 {
                            1.0 / factor * x
                        } else {
                            x / factor
                        };
                        if !is_json_integer(mult) {
                            errs.push(self.invalid(
                                path,
                                rendered.clone(),
                                format!(
                                    "{path} in body should be a multiple of {}",
                                    go_float(factor)
                                ),
                            ));
                        }
                    }
                }
            }
        }
        if let Some(min) = s_f64(s, "minimum") {
            let exclusive = s_flag(s, "exclusiveMinimum");
            let (failed, bound) = match value {
                Num::I(i) => {
                    let m = min as i64;
                    (if exclusive { i <= m } else { i < m }, m.to_string())
                }
                Num::F(x) => (if exclusive { x <= min } else { x < min }, go_float(min)),
            };
            if failed {
                let op = if exclusive { "" } else { " or equal to" };
                errs.push(self.invalid(
                    path,
                    rendered.clone(),
                    format!("{path} in body should be greater than{op} {bound}"),
                ));
            }
        }
        if let Some(max) = s_f64(s, "maximum") {
            let exclusive = s_flag(s, "exclusiveMaximum");
            let (failed, bound) = match value {
                Num::I(i) => {
                    let m = max as i64;
                    (if exclusive { i >= m } else { i > m }, m.to_string())
                }
                Num::F(x) => (if exclusive { x >= max } else { x > max }, go_float(max)),
            };
            if failed {
                let op = if exclusive { "" } else { " or equal to" };
                errs.push(self.invalid(
                    path,
                    rendered,
                    format!("{path} in body should be less than{op} {bound}"),
                ));
            }
        }
        errs
    }

    /// kube-openapi's `schemaSliceValidator`: items, minItems, maxItems, uniqueItems.
    fn check_array(&self, items: &[Value], s: &Value, path: &str, depth: usize) -> Res {
        let mut res = Res::default();
        if let Some(item_schema) = s_items(s) {
            for (i, item) in items.iter().enumerate() {
                let r = self.node(item, item_schema, &index_path(path, i), depth + 1, false);
                res.merge(r);
            }
        }
        let size = items.len();
        let size_i = i64::try_from(size).unwrap_or(i64::MAX);
        if let Some(min) = s_i64(s, "minItems")
            && size_i < min
        {
            res.push(self.invalid(
                path,
                size.to_string(),
                format!("{path} in body should have at least {min} items"),
            ));
        }
        if let Some(max) = s_i64(s, "maxItems")
            && size_i > max
        {
            res.push(FieldError::too_many(
                self.field(path),
                Some(size),
                usize::try_from(max).ok(),
            ));
        }
        if s_flag(s, "uniqueItems") {
            let mut seen = HashSet::new();
            if !items.iter().all(|i| seen.insert(identity_key(i))) {
                res.push(self.invalid(
                    path,
                    "\"\"".to_string(),
                    format!("{path} in body shouldn't contain duplicates"),
                ));
            }
        }
        res.matches += 1;
        res
    }

    /// kube-openapi's `basicCommonValidator`: enum (converted to `field.NotSupported`).
    fn check_enum(&self, d: &Value, s: &Value, path: &str) -> Option<FieldError> {
        let values = s_array(s, "enum");
        if values.is_empty() {
            return None;
        }
        if !d.is_null() && values.iter().any(|e| json_equal(d, e)) {
            return None;
        }
        let supported: Vec<String> = values
            .iter()
            .map(|e| match e {
                Value::String(s) => s.clone(),
                other => go_json(other, 0),
            })
            .collect();
        let refs: Vec<&str> = supported.iter().map(String::as_str).collect();
        let mut e = FieldError::not_supported(self.field(path), d, &refs);
        e.bad_value = Some(go_bad_value(d));
        Some(e)
    }

    /// kube-openapi's `objectValidator`.
    fn check_object(
        &self,
        m: &Map<String, Value>,
        s: &Value,
        path: &str,
        depth: usize,
        root: bool,
    ) -> Res {
        let mut res = Res::default();
        let count = m.len();
        let count_i = i64::try_from(count).unwrap_or(i64::MAX);
        if let Some(min) = s_i64(s, "minProperties")
            && count_i < min
        {
            res.push(self.invalid(
                path,
                count.to_string(),
                format!("{path} in body should have at least {min} properties"),
            ));
        }
        if let Some(max) = s_i64(s, "maxProperties")
            && count_i > max
        {
            res.push(FieldError::too_many(
                self.field(path),
                Some(count),
                usize::try_from(max).ok(),
            ));
        }
        let props = s_props(s);
        let is_property = |k: &str| props.is_some_and(|p| p.contains_key(k));
        match Additional::of(s) {
            Additional::Bool(false) => {
                for k in m.keys() {
                    let allowed = is_property(k) || (root && is_meta(k));
                    if !allowed {
                        res.push(self.invalid(
                            path,
                            go_quote(k),
                            format!("{path}.{k} in body is a forbidden property"),
                        ));
                    }
                }
            }
            Additional::Schema(ap) => {
                for (k, v) in m {
                    let declared = is_property(k) || (root && k == "metadata");
                    if !declared {
                        let r = self.node(v, ap, &format!("{path}.{k}"), depth + 1, false);
                        res.merge(r);
                    }
                }
            }
            _ => {}
        }
        if let Some(props) = props {
            for (name, ps) in props {
                let Some(v) = m.get(name) else { continue };
                if root && name == "metadata" {
                    // ObjectMeta is validated elsewhere; the schema may only restrict these.
                    for sub in ["name", "generateName"] {
                        if let (Some(ss), Some(sv)) = (s_prop(ps, sub), v.get(sub)) {
                            let r = self.node(sv, ss, &format!("metadata.{sub}"), depth + 2, false);
                            res.merge(r);
                        }
                    }
                    continue;
                }
                let r = self.node(v, ps, &child(path, name), depth + 1, false);
                res.merge(r);
            }
        }
        for k in s_strings(s, "required") {
            if !m.contains_key(k) {
                res.push(FieldError::required(self.field(&format!("{path}.{k}")), ""));
            }
        }
        res
    }
}

/// The `type` list kube-openapi validates against (`x-kubernetes-int-or-string` is
/// `integer,string`).
fn schema_types(s: &Value) -> Vec<&str> {
    if s_flag(s, INT_OR_STRING) {
        return vec!["integer", "string"];
    }
    match s_str(s, "type") {
        "" => Vec::new(),
        t => vec![t],
    }
}

/// The string formats kube v1.33 validates for CRDs (names without dashes).
const STRING_FORMATS: [&str; 24] = [
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
];

/// The format left after `StripUnsupportedFormatsPostProcessorForVersion(1.33)`.
fn effective_format<'a>(s: &'a Value, types: &[&str]) -> &'a str {
    let format = s_str(s, "format");
    if format.is_empty() {
        return "";
    }
    let single = match types {
        [t] => *t,
        _ => "",
    };
    let keep = match single {
        "" | "string" => STRING_FORMATS.contains(&format.replace('-', "").as_str()),
        "integer" => format == "int32" || format == "int64",
        "number" => format == "float" || format == "double",
        _ => false,
    };
    if keep { format } else { "" }
}

/// Enum membership: JSON equality, numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (num_of(x), num_of(y)) {
            (Num::I(i), Num::I(j)) => i == j,
            (Num::F(f), Num::F(g)) => f == g,
            (Num::I(i), Num::F(f)) | (Num::F(f), Num::I(i)) => (i as f64) == f,
        },
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// x-kubernetes-list-type (pkg/apiserver/schema/listtype)
// ---------------------------------------------------------------------------------------------

/// Go's `field.Path` built from a nil root: `Child` joins with dots, `Key`/`Index` bracket.
fn lt_child(path: Option<&str>, name: &str) -> String {
    match path {
        None => name.to_string(),
        Some(p) => format!("{p}.{name}"),
    }
}

fn lt_key(path: Option<&str>, key: &str) -> String {
    format!("{}[{key}]", path.unwrap_or(""))
}

fn lt_index(path: Option<&str>, i: usize) -> String {
    format!("{}[{i}]", path.unwrap_or(""))
}

fn list_types_object(
    path: Option<&str>,
    s: &Value,
    obj: &Map<String, Value>,
    root: bool,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(ap) = Additional::of(s).schema() {
        for (k, v) in obj {
            if root && k == "metadata" {
                continue;
            }
            list_types_value(&lt_key(path, k), ap, v, depth + 1, out);
        }
    }
    if let Some(props) = s_props(s) {
        for (k, v) in obj {
            if root && k == "metadata" {
                continue;
            }
            if let Some(sub) = props.get(k) {
                list_types_value(&lt_child(path, k), sub, v, depth + 1, out);
            }
        }
    }
}

fn list_types_value(path: &str, s: &Value, v: &Value, depth: usize, out: &mut Vec<FieldError>) {
    match v {
        Value::Array(items) => list_types_array(path, s, items, depth, out),
        Value::Object(m) => list_types_object(Some(path), s, m, false, depth, out),
        _ => {}
    }
}

fn duplicate(path: String, value: &Value) -> FieldError {
    let mut e = FieldError::duplicate(path, value);
    e.bad_value = Some(go_bad_value(value));
    e
}

/// The indices of the second occurrence of each repeated key (Go's `validateListSet`).
fn non_unique(keys: &[String]) -> Vec<usize> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let times = seen.entry(k.as_str()).or_insert(0);
        if *times == 1 {
            out.push(i);
        }
        *times += 1;
    }
    out
}

fn list_types_array(
    path: &str,
    s: &Value,
    items: &[Value],
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match s_str(s, LIST_TYPE) {
        "set" if items.len() > 1 => {
            let keys: Vec<String> = items.iter().map(identity_key).collect();
            for i in non_unique(&keys) {
                if let Some(v) = items.get(i) {
                    out.push(duplicate(lt_index(Some(path), i), v));
                }
            }
        }
        "map" => list_map(path, s, items, out),
        _ => {}
    }
    if let Some(item_schema) = s_items(s) {
        for (i, v) in items.iter().enumerate() {
            list_types_value(&lt_index(Some(path), i), item_schema, v, depth + 1, out);
        }
    }
}

fn list_map(path: &str, s: &Value, items: &[Value], out: &mut Vec<FieldError>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            out.push(FieldError::invalid_rendered(
                lt_index(Some(path), i),
                Some(go_bad_value(x)),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    if items.len() <= 1 {
        return;
    }
    let key_fields = s_strings(s, LIST_MAP_KEYS);
    if let [key_field] = key_fields.as_slice() {
        let values: Vec<Option<&Value>> = items.iter().map(|x| x.get(*key_field)).collect();
        let keys: Vec<String> = values
            .iter()
            .map(|v| v.map_or_else(|| "u".to_string(), identity_key))
            .collect();
        for i in non_unique(&keys) {
            let mut shown = Map::new();
            if let Some(Some(v)) = values.get(i) {
                shown.insert((*key_field).to_string(), (*v).clone());
            }
            out.push(duplicate(lt_index(Some(path), i), &Value::Object(shown)));
        }
        return;
    }
    let key_maps: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for f in &key_fields {
                if let Some(v) = x.get(*f) {
                    key.insert((*f).to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    let keys: Vec<String> = key_maps.iter().map(identity_key).collect();
    for i in non_unique(&keys) {
        if let Some(k) = key_maps.get(i) {
            out.push(duplicate(lt_index(Some(path), i), k));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CRD schema checks (structural invariants, OpenAPI schema rules, defaults)
// ---------------------------------------------------------------------------------------------

/// Checks a CRD version's `openAPIV3Schema` as kube-apiserver does when a v1
/// CustomResourceDefinition is created, `path` being the schema's field path (e.g.
/// `spec.versions[0].schema.openAPIV3Schema`):
///
/// - the schema is structural (`ValidateStructural`): every specified node has a `type` unless
///   `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields`; `items` for arrays;
///   no `additionalProperties` at the root; `metadata` at the root restricts only `name` and
///   `generateName`; inside `allOf`/`anyOf`/`oneOf`/`not` no `type`, `default`, `nullable`,
///   `additionalProperties`, descriptions or `x-kubernetes-*` extensions, and every property they
///   mention is also specified outside; `pattern`s compile;
/// - the OpenAPI rules (`ValidateCustomResourceDefinitionOpenAPISchema`): known types, no
///   `$ref`/`id`/`patternProperties`/`definitions`/`dependencies`/`additionalItems`, no
///   `uniqueItems`, `additionalProperties` and `properties` mutually exclusive, no defaults in
///   the root `apiVersion`/`kind`/`metadata`, the `x-kubernetes-list-type`,
///   `x-kubernetes-list-map-keys` and `x-kubernetes-map-type` rules;
/// - `default` values are pruned and valid against their schema (`ValidateDefaults`).
///
/// Errors read like kube's, e.g.
/// `spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be
/// empty for specified object fields`. A keyword of the wrong JSON type (which kube would refuse
/// when decoding the CRD) or nesting deeper than [`MAX_DEPTH`] is reported alone.
pub fn check_structural(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut malformed = Vec::new();
    check_shape(schema, path, 0, &mut malformed);
    if !malformed.is_empty() {
        return malformed;
    }

    let mut errs = Vec::new();
    if s_flag(schema, "nullable") {
        errs.push(FieldError::forbidden(
            child(path, "nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let init_error = structural_init_error(schema, 0);
    if init_error.is_none() {
        let mut structural = Vec::new();
        structural_invariants(schema, Level::Root, path, 0, &mut structural);
        value_validation_completeness(schema, schema, path, path, 0, &mut structural);
        structural.sort_by_cached_key(ToString::to_string);
        if structural.is_empty() {
            check_defaults(schema, path, true, false, 0, &mut structural);
        }
        errs.extend(structural);
    }
    openapi_schema_rules(schema, path, &SpecRules::default(), true, 0, &mut errs);
    if errs.is_empty()
        && let Some(e) = init_error
    {
        errs.push(FieldError::invalid(path, "", e));
    }
    errs
}

/// The JSON type a schema keyword must have.
#[derive(Clone, Copy)]
enum Shape {
    Str,
    Bool,
    Number,
    Integer,
    Strings,
    Array,
    Object,
    Schema,
    SchemaOrBool,
    SchemaOrArray,
    Schemas,
    SchemaMap,
}

fn keyword_shape(key: &str) -> Option<Shape> {
    Some(match key {
        "type" | "format" | "title" | "description" | "pattern" | "id" | "$schema" | "$ref"
        | LIST_TYPE | MAP_TYPE => Shape::Str,
        "nullable" | "exclusiveMaximum" | "exclusiveMinimum" | "uniqueItems" | PRESERVE
        | EMBEDDED | INT_OR_STRING => Shape::Bool,
        "maximum" | "minimum" | "multipleOf" => Shape::Number,
        "maxLength" | "minLength" | "maxItems" | "minItems" | "maxProperties" | "minProperties" => {
            Shape::Integer
        }
        "required" | LIST_MAP_KEYS => Shape::Strings,
        "enum" | "x-kubernetes-validations" => Shape::Array,
        "externalDocs" | "dependencies" => Shape::Object,
        "not" => Shape::Schema,
        "additionalProperties" | "additionalItems" => Shape::SchemaOrBool,
        "items" => Shape::SchemaOrArray,
        "allOf" | "anyOf" | "oneOf" => Shape::Schemas,
        "properties" | "patternProperties" | "definitions" => Shape::SchemaMap,
        _ => return None,
    })
}

/// Reports keywords of the wrong JSON type (kube fails to decode such a CRD) and nesting deeper
/// than [`MAX_DEPTH`].
fn check_shape(s: &Value, path: &str, depth: usize, out: &mut Vec<FieldError>) {
    if depth > MAX_DEPTH {
        out.push(FieldError::forbidden(path, depth_detail()));
        return;
    }
    let Some(m) = s.as_object() else {
        out.push(FieldError::invalid_value(path, s, "must be an object"));
        return;
    };
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        let Some(shape) = keyword_shape(k) else {
            continue;
        };
        let p = child(path, k);
        let detail = match shape {
            Shape::Str if !v.is_string() => Some("must be a string"),
            Shape::Bool if !v.is_boolean() => Some("must be a boolean"),
            Shape::Number if !v.is_number() => Some("must be a number"),
            Shape::Integer if !(v.is_i64() || v.is_u64()) => Some("must be an integer"),
            Shape::Strings if !v.as_array().is_some_and(|a| a.iter().all(Value::is_string)) => {
                Some("must be a list of strings")
            }
            Shape::Array if !v.is_array() => Some("must be a list"),
            Shape::Object if !v.is_object() => Some("must be an object"),
            Shape::Schema if !v.is_object() => Some("must be a schema object"),
            Shape::SchemaOrBool if !(v.is_object() || v.is_boolean()) => {
                Some("must be a schema object or a boolean")
            }
            Shape::SchemaOrArray if !(v.is_object() || v.is_array()) => {
                Some("must be a schema object or a list of schemas")
            }
            Shape::Schemas if !v.is_array() => Some("must be a list of schema objects"),
            Shape::SchemaMap if !v.is_object() => Some("must be a map of schema objects"),
            _ => None,
        };
        if let Some(detail) = detail {
            out.push(FieldError::invalid_value(p, v, detail));
            continue;
        }
        match (shape, v) {
            (Shape::Schema | Shape::SchemaOrBool | Shape::SchemaOrArray, Value::Object(_)) => {
                check_shape(v, &p, depth + 1, out);
            }
            (Shape::Schemas | Shape::SchemaOrArray, Value::Array(items)) => {
                for (i, x) in items.iter().enumerate() {
                    check_shape(x, &index_path(&p, i), depth + 1, out);
                }
            }
            (Shape::SchemaMap, Value::Object(entries)) => {
                for (name, x) in entries {
                    check_shape(x, &key_path(&p, name), depth + 1, out);
                }
            }
            (Shape::Object, Value::Object(entries)) if k == "dependencies" => {
                for (name, x) in entries {
                    if x.is_object() {
                        check_shape(x, &key_path(&p, name), depth + 1, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Why `NewStructural` would fail on the schema (`validateUnsupportedFields` and friends).
fn structural_init_error(s: &Value, depth: usize) -> Option<String> {
    if depth > MAX_DEPTH {
        return None;
    }
    let non_empty = |k: &str| s.get(k).is_some_and(|v| !is_zero(v));
    for (key, name) in [
        ("id", "id"),
        ("$schema", "schema"),
        ("$ref", "$ref"),
        ("patternProperties", "patternProperties"),
        ("dependencies", "dependencies"),
    ] {
        if non_empty(key) {
            return Some(format!("OpenAPIV3Schema '{name}' is not supported"));
        }
    }
    if s.get("additionalItems").is_some_and(|v| !v.is_null()) {
        return Some("OpenAPIV3Schema 'additionalItems' is not supported".to_string());
    }
    if non_empty("definitions") {
        return Some("OpenAPIV3Schema 'definitions' is not supported".to_string());
    }
    if let Some(e) = s
        .get("not")
        .filter(|v| v.is_object())
        .and_then(|n| structural_init_error(n, depth + 1))
    {
        return Some(e);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for x in s_array(s, key) {
            if let Some(e) = structural_init_error(x, depth + 1) {
                return Some(e);
            }
        }
    }
    if s.get(PRESERVE) == Some(&Value::Bool(false)) {
        return Some(
            "internal error: 'x-kubernetes-preserve-unknown-fields' must be true or undefined"
                .to_string(),
        );
    }
    match s.get("items") {
        Some(Value::Array(a)) if !a.is_empty() => {
            return Some("OpenAPIV3Schema 'items' must be a schema, but is an array".to_string());
        }
        Some(items @ Value::Object(_)) => {
            if let Some(e) = structural_init_error(items, depth + 1) {
                return Some(e);
            }
        }
        _ => {}
    }
    if let Some(props) = s_props(s) {
        for p in props.values() {
            if let Some(e) = structural_init_error(p, depth + 1) {
                return Some(e);
            }
        }
    }
    Additional::of(s)
        .schema()
        .and_then(|ap| structural_init_error(ap, depth + 1))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// `validateStructuralInvariants`.
fn structural_invariants(
    s: &Value,
    lvl: Level,
    path: &str,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let ty = s_str(s, "type");
    let items = s_items(s);
    if ty == "array" && items.is_none() {
        out.push(FieldError::required(
            child(path, "items"),
            "must be specified",
        ));
    }
    if let Some(items) = items {
        structural_invariants(items, Level::Item, &child(path, "items"), depth + 1, out);
    }
    let props = s_props(s);
    if let Some(props) = props {
        for (k, v) in props {
            let p = key_path(&child(path, "properties"), k);
            structural_invariants(v, Level::Field, &p, depth + 1, out);
        }
    }
    let additional = Additional::of(s);
    if additional.present() {
        if lvl == Level::Root {
            out.push(FieldError::forbidden(
                child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Some(ap) = additional.schema() {
            let p = child(path, "additionalProperties");
            structural_invariants(ap, Level::Field, &p, depth + 1, out);
        }
    }

    let int_or_string = s_flag(s, INT_OR_STRING);
    let preserve = s_flag(s, PRESERVE);
    let embedded = s_flag(s, EMBEDDED);
    if int_or_string && preserve {
        out.push(FieldError::invalid_rendered(
            child(path, PRESERVE),
            Some("true".to_string()),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(FieldError::invalid_rendered(
            child(path, EMBEDDED),
            Some("true".to_string()),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }

    let skip_any_of = is_int_or_string_pattern(s_array(s, "anyOf"));
    let skip_first_all_of = s_array(s, "allOf")
        .first()
        .is_some_and(|first| is_int_or_string_pattern(s_array(first, "anyOf")));
    value_validation(s, skip_any_of, skip_first_all_of, path, depth, out);

    let check_metadata = lvl == Level::Root || embedded;
    if embedded && ty != "object" {
        let detail = "must be object if x-kubernetes-embedded-resource is true";
        if ty.is_empty() {
            out.push(FieldError::required(child(path, "type"), detail));
        } else {
            out.push(FieldError::invalid(child(path, "type"), ty, detail));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(FieldError::required(child(path, "type"), detail));
    }
    if embedded && additional.present() {
        out.push(FieldError::forbidden(
            child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(FieldError::invalid(
            child(path, "type"),
            ty,
            "must be object at the root",
        ));
    }
    if check_metadata {
        for name in ["kind", "apiVersion"] {
            if let Some(p) = props.and_then(|p| p.get(name)) {
                let t = s_str(p, "type");
                if t != "string" {
                    let fp = child(&key_path(&child(path, "properties"), name), "type");
                    out.push(FieldError::invalid(fp, t, "must be string"));
                }
            }
        }
    }
    if let Some(metadata) = props.and_then(|p| p.get("metadata")) {
        let p = key_path(&child(path, "properties"), "metadata");
        metadata_invariants(metadata, check_metadata, lvl, &p, out);
    }
    if embedded && !preserve && props.is_none_or(Map::is_empty) {
        out.push(FieldError::required(
            child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// `anyOf: [{type: integer}, {type: string}]`, the int-or-string exception.
fn is_int_or_string_pattern(any_of: &[Value]) -> bool {
    let only_type = |x: &Value, t: &str| {
        x.as_object().is_some_and(|m| {
            m.get("type").and_then(Value::as_str) == Some(t)
                && m.iter().all(|(k, v)| k == "type" || is_zero(v))
        })
    };
    matches!(any_of, [a, b] if only_type(a, "integer") && only_type(b, "string"))
}

/// `validateStructuralMetadataInvariants`.
fn metadata_invariants(
    s: &Value,
    check_metadata: bool,
    lvl: Level,
    path: &str,
    out: &mut Vec<FieldError>,
) {
    let ty = s_str(s, "type");
    if check_metadata && ty != "object" {
        out.push(FieldError::invalid(
            child(path, "type"),
            ty,
            "must be object",
        ));
    }
    if lvl == Level::Root {
        let props = s_props(s);
        let has = |k: &str| props.is_some_and(|p| p.contains_key(k));
        let count = props.map_or(0, Map::len);
        let only_names = count == 0
            || (has("name") && has("generateName") && count == 2)
            || ((has("name") || has("generateName")) && count == 1);
        let other = s.as_object().is_some_and(|m| {
            m.iter().any(|(k, v)| {
                !is_zero(v)
                    && match k.as_str() {
                        "type" | "default" => false,
                        "properties" => !only_names,
                        _ => true,
                    }
            })
        });
        if other {
            out.push(FieldError::forbidden(
                path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
}

/// `validateValueValidation`: the junctors of a node and its pattern.
fn value_validation(
    s: &Value,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &str,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    if !skip_any_of {
        for (i, x) in s_array(s, "anyOf").iter().enumerate() {
            let p = index_path(&child(path, "anyOf"), i);
            nested_value_validation(x, false, false, &p, depth + 1, out);
        }
    }
    for (i, x) in s_array(s, "allOf").iter().enumerate() {
        let p = index_path(&child(path, "allOf"), i);
        let skip = skip_first_all_of_any_of && i == 0;
        nested_value_validation(x, skip, false, &p, depth + 1, out);
    }
    for (i, x) in s_array(s, "oneOf").iter().enumerate() {
        let p = index_path(&child(path, "oneOf"), i);
        nested_value_validation(x, false, false, &p, depth + 1, out);
    }
    if let Some(not) = s.get("not").filter(|v| v.is_object()) {
        nested_value_validation(not, false, false, &child(path, "not"), depth + 1, out);
    }
    let pattern = s_str(s, "pattern");
    if !pattern.is_empty()
        && let Err(regex::ReError::Invalid(e)) = regex::Regex::new(pattern)
    {
        out.push(FieldError::invalid(
            child(path, "pattern"),
            pattern,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
}

/// `validateNestedValueValidation`: what a schema under a junctor may not say.
fn nested_value_validation(
    s: &Value,
    skip_any_of: bool,
    skip_all_of_any_of: bool,
    path: &str,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH || !s.is_object() {
        return;
    }
    value_validation(s, skip_any_of, skip_all_of_any_of, path, depth, out);
    if let Some(items) = s_items(s) {
        nested_value_validation(items, false, false, &child(path, "items"), depth + 1, out);
    }
    if let Some(props) = s_props(s) {
        for (k, v) in props {
            let p = key_path(&child(path, "properties"), k);
            nested_value_validation(v, false, false, &p, depth + 1, out);
        }
    }
    let forbid = |out: &mut Vec<FieldError>, name: &str, detail: &str| {
        out.push(FieldError::forbidden(child(path, name), detail));
    };
    if !s_str(s, "type").is_empty() {
        forbid(out, "type", "must be empty to be structural");
    }
    if matches!(
        Additional::of(s),
        Additional::Schema(_) | Additional::Bool(true)
    ) {
        forbid(
            out,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if s_default(s).is_some() {
        forbid(out, "default", "must be undefined to be structural");
    }
    if !s_str(s, "title").is_empty() {
        forbid(out, "title", "must be empty to be structural");
    }
    if !s_str(s, "description").is_empty() {
        forbid(out, "description", "must be empty to be structural");
    }
    if s_flag(s, "nullable") {
        forbid(out, "nullable", "must be false to be structural");
    }
    for name in [PRESERVE, EMBEDDED, INT_OR_STRING] {
        if s_flag(s, name) {
            forbid(out, name, "must be false to be structural");
        }
    }
    if !s_array(s, LIST_MAP_KEYS).is_empty() {
        forbid(out, LIST_MAP_KEYS, "must be empty to be structural");
    }
    for name in [LIST_TYPE, MAP_TYPE] {
        if s_opt_str(s, name).is_some() {
            forbid(out, name, "must be undefined to be structural");
        }
    }
    if !s_array(s, "x-kubernetes-validations").is_empty() {
        forbid(
            out,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if s_prop(s, "metadata").is_some() {
        out.push(FieldError::forbidden(
            key_path(&child(path, "properties"), "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// `validateValueValidationCompleteness`: the junctors of `v` (checked against the structural
/// node `s`).
fn value_validation_completeness(
    v: &Value,
    s: &Value,
    s_path: &str,
    v_path: &str,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(not) = v.get("not").filter(|n| n.is_object()) {
        let vp = child(v_path, "not");
        nested_completeness(not, Some(s), s_path, &vp, depth + 1, out);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, x) in s_array(v, key).iter().enumerate() {
            let vp = index_path(&child(v_path, key), i);
            nested_completeness(x, Some(s), s_path, &vp, depth + 1, out);
        }
    }
}

/// `validateNestedValueValidationCompleteness`.
fn nested_completeness(
    v: &Value,
    s: Option<&Value>,
    s_path: &str,
    v_path: &str,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH || !v.is_object() {
        return;
    }
    let Some(s) = s else {
        out.push(FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    value_validation_completeness(v, s, s_path, v_path, depth, out);
    if let Some(items) = s_items(v) {
        nested_completeness(
            items,
            s_items(s),
            &child(s_path, "items"),
            &child(v_path, "items"),
            depth + 1,
            out,
        );
    }
    if let Some(props) = s_props(v) {
        for (k, field) in props {
            let sp = key_path(&child(s_path, "properties"), k);
            let vp = key_path(&child(v_path, "properties"), k);
            match s_prop(s, k) {
                Some(sf) => nested_completeness(field, Some(sf), &sp, &vp, depth + 1, out),
                None => out.push(FieldError::required(
                    sp,
                    format!("because it is defined in {vp}"),
                )),
            }
        }
    }
}

/// `ValidateDefaults`: defaults must be pruned and valid against their own schema. Defaults
/// inside the root `apiVersion`, `kind`, `metadata` are refused by the OpenAPI rules.
fn check_defaults(
    s: &Value,
    path: &str,
    resource_root: bool,
    inside_meta: bool,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH || !s.is_object() {
        return;
    }
    let embedded = resource_root || s_flag(s, EMBEDDED);
    let inside_meta = inside_meta && !embedded;
    if let Some(d) = s_default(s)
        && !inside_meta
    {
        let default_path = child(path, "default");
        let mut pruned = d.clone();
        prune_value(
            &mut pruned,
            Some(s),
            embedded,
            &mut String::new(),
            &mut Vec::new(),
            0,
        );
        if pruned != *d {
            out.push(FieldError::invalid_rendered(
                default_path.clone(),
                Some(go_bad_value(d)),
                "must not have unknown fields",
            ));
        }
        let validator = Validator {
            base: Some(&default_path),
        };
        out.extend(validator.node(d, s, "", 0, false).errors);
    }
    if let Some(items) = s_items(s) {
        check_defaults(
            items,
            &child(path, "items"),
            false,
            inside_meta,
            depth + 1,
            out,
        );
    }
    if let Some(props) = s_props(s) {
        for (k, p) in props {
            let sub_inside = inside_meta || (embedded && is_meta(k));
            let pp = key_path(&child(path, "properties"), k);
            check_defaults(p, &pp, false, sub_inside, depth + 1, out);
        }
    }
}

/// The state of `specStandardValidatorV3` along the walk.
#[derive(Clone, Default)]
struct SpecRules {
    /// Why defaults are forbidden here (`None`: allowed).
    forbid_defaults: Option<String>,
    inside_resource_meta: bool,
}

/// `ValidateCustomResourceDefinitionOpenAPISchema` (v1 CRD creation rules, without CEL).
fn openapi_schema_rules(
    s: &Value,
    path: &str,
    rules: &SpecRules,
    is_root: bool,
    depth: usize,
    out: &mut Vec<FieldError>,
) {
    if depth > MAX_DEPTH || !s.is_object() {
        return;
    }
    let ty = s_str(s, "type");
    let embedded = s_flag(s, EMBEDDED);
    let props = s_props(s);
    let forbid = |out: &mut Vec<FieldError>, name: &str, detail: &str| {
        out.push(FieldError::forbidden(child(path, name), detail));
    };

    // specStandardValidatorV3.validate
    const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
    if !ty.is_empty() && !TYPES.contains(&ty) {
        out.push(FieldError::not_supported(
            child(path, "type"),
            &Value::String(ty.to_string()),
            &TYPES,
        ));
    }
    if s.get("default").is_some()
        && let Some(reason) = &rules.forbid_defaults
    {
        forbid(out, "default", &format!("must not be set {reason}"));
    }
    if !s_str(s, "id").is_empty() {
        forbid(out, "id", "id is not supported");
    }
    if s.get("additionalItems").is_some_and(|v| !v.is_null()) {
        forbid(out, "additionalItems", "additionalItems is not supported");
    }
    if s.get("patternProperties").is_some_and(|v| !is_zero(v)) {
        forbid(
            out,
            "patternProperties",
            "patternProperties is not supported",
        );
    }
    if s.get("definitions").is_some_and(|v| !is_zero(v)) {
        forbid(out, "definitions", "definitions is not supported");
    }
    if s.get("dependencies").is_some_and(|v| !v.is_null()) {
        forbid(out, "dependencies", "dependencies is not supported");
    }
    if s.get("$ref").is_some_and(|v| !v.is_null()) {
        forbid(out, "$ref", "$ref is not supported");
    }
    if ty == "null" {
        forbid(
            out,
            "type",
            "type cannot be set to null, use nullable as an alternative",
        );
    }
    if s.get("items")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid(
            out,
            "items",
            "items must be a schema object and not an array",
        );
    }
    if rules.inside_resource_meta && embedded {
        forbid(out, EMBEDDED, "must not be used inside of resource meta");
    }

    if s_flag(s, "uniqueItems") {
        forbid(
            out,
            "uniqueItems",
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        );
    }

    let additional = Additional::of(s);
    if additional.present() {
        if props.is_some_and(|p| !p.is_empty())
            && matches!(additional, Additional::Bool(false) | Additional::Schema(_))
        {
            forbid(
                out,
                "additionalProperties",
                "additionalProperties and properties are mutual exclusive",
            );
        }
        let mut sub = rules.clone();
        if rules.inside_resource_meta {
            sub.forbid_defaults =
                Some("inside additionalProperties applying to object metadata".to_string());
        }
        if let Some(ap) = additional.schema() {
            let p = child(path, "additionalProperties");
            openapi_schema_rules(ap, &p, &sub, false, depth + 1, out);
        }
    }
    if let Some(props) = props {
        for (k, p) in props {
            let mut sub = rules.clone();
            if (is_root || embedded) && is_meta(k) {
                sub.inside_resource_meta = true;
                if is_root {
                    sub.forbid_defaults = Some(format!("in top-level {k}"));
                }
            }
            let pp = key_path(&child(path, "properties"), k);
            openapi_schema_rules(p, &pp, &sub, false, depth + 1, out);
        }
    }
    if let Some(not) = s.get("not") {
        openapi_schema_rules(not, &child(path, "not"), rules, false, depth + 1, out);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for (i, x) in s_array(s, key).iter().enumerate() {
            let p = index_path(&child(path, key), i);
            openapi_schema_rules(x, &p, rules, false, depth + 1, out);
        }
    }
    if let Some(defs) = s.get("definitions").and_then(Value::as_object) {
        for (k, x) in defs {
            let p = key_path(&child(path, "definitions"), k);
            openapi_schema_rules(x, &p, rules, false, depth + 1, out);
        }
    }
    match s.get("items") {
        Some(items @ Value::Object(_)) => {
            openapi_schema_rules(items, &child(path, "items"), rules, false, depth + 1, out);
        }
        Some(Value::Array(list)) => {
            for (i, x) in list.iter().enumerate() {
                let p = index_path(&child(path, "items"), i);
                openapi_schema_rules(x, &p, rules, false, depth + 1, out);
            }
        }
        _ => {}
    }
    if let Some(deps) = s.get("dependencies").and_then(Value::as_object) {
        for (k, x) in deps {
            let p = key_path(&child(path, "dependencies"), k);
            openapi_schema_rules(x, &p, rules, false, depth + 1, out);
        }
    }

    if s.get(PRESERVE) == Some(&Value::Bool(false)) {
        out.push(FieldError::invalid_rendered(
            child(path, PRESERVE),
            Some("false".to_string()),
            "must be true or undefined",
        ));
    }

    if let Some(map_type) = s_opt_str(s, MAP_TYPE) {
        if ty != "object" {
            let detail = "must be object if x-kubernetes-map-type is specified";
            if ty.is_empty() {
                out.push(FieldError::required(child(path, "type"), detail));
            } else {
                out.push(FieldError::invalid(child(path, "type"), ty, detail));
            }
        }
        if map_type != "atomic" && map_type != "granular" {
            out.push(FieldError::not_supported(
                child(path, MAP_TYPE),
                &Value::String(map_type.to_string()),
                &["atomic", "granular"],
            ));
        }
    }

    let list_type = s_opt_str(s, LIST_TYPE);
    let items = s_items(s);
    if let Some(lt) = list_type {
        if ty != "array" {
            let detail = "must be array if x-kubernetes-list-type is specified";
            if ty.is_empty() {
                out.push(FieldError::required(child(path, "type"), detail));
            } else {
                out.push(FieldError::invalid(child(path, "type"), ty, detail));
            }
        } else if lt == "set"
            && let Some(is) = items
        {
            let detail = "must be atomic as item of a list with x-kubernetes-list-type=set";
            let items_path = child(path, "items");
            let item_list_type = s_opt_str(is, LIST_TYPE);
            match s_str(is, "type") {
                "array" => {
                    if let Some(ilt) = item_list_type.filter(|t| *t != "atomic") {
                        out.push(FieldError::invalid(
                            child(&items_path, LIST_TYPE),
                            ilt,
                            detail,
                        ));
                    }
                }
                "object" if s_opt_str(is, MAP_TYPE) != Some("atomic") => {
                    // kube shows the item's x-kubernetes-list-type here.
                    out.push(FieldError::invalid_rendered(
                        child(&items_path, MAP_TYPE),
                        Some(item_list_type.map_or_else(|| "null".to_string(), go_quote)),
                        detail,
                    ));
                }
                _ => {}
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            out.push(FieldError::not_supported(
                child(path, LIST_TYPE),
                &Value::String(lt.to_string()),
                &["atomic", "set", "map"],
            ));
        }
    }

    let map_keys = s_strings(s, LIST_MAP_KEYS);
    let map_keys_value = s.get(LIST_MAP_KEYS).cloned().unwrap_or(Value::Null);
    if !map_keys.is_empty() {
        let detail = "must be map if x-kubernetes-list-map-keys is non-empty";
        match list_type {
            None => out.push(FieldError::required(child(path, LIST_TYPE), detail)),
            Some(lt) if lt != "map" => {
                out.push(FieldError::invalid(child(path, LIST_TYPE), lt, detail));
            }
            _ => {}
        }
    }
    if list_type == Some("map") {
        if map_keys.is_empty() {
            out.push(FieldError::required(
                child(path, LIST_MAP_KEYS),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match s.get("items") {
            None | Some(Value::Null) => out.push(FieldError::required(
                child(path, "items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(list @ Value::Array(_)) => out.push(FieldError::invalid_value(
                child(path, "items"),
                list,
                "must only have a single schema if x-kubernetes-list-type is map",
            )),
            _ => {}
        }
        if let Some(is) = items {
            let item_type = s_str(is, "type");
            let items_path = child(path, "items");
            if item_type != "object" {
                out.push(FieldError::invalid(
                    child(&items_path, "type"),
                    item_type,
                    "must be object if parent array's x-kubernetes-list-type is map",
                ));
            } else {
                let mut seen = HashSet::new();
                for k in &map_keys {
                    match s_prop(is, k) {
                        Some(p) => {
                            if matches!(s_str(p, "type"), "array" | "object") {
                                let fp =
                                    child(&key_path(&child(&items_path, "properties"), k), "type");
                                out.push(FieldError::invalid(
                                    fp,
                                    item_type,
                                    "must be a scalar type if parent array's x-kubernetes-list-type is map",
                                ));
                            }
                        }
                        None => out.push(FieldError::invalid_value(
                            child(path, LIST_MAP_KEYS),
                            &map_keys_value,
                            "entries must all be names of item properties",
                        )),
                    }
                    if !seen.insert(*k) {
                        out.push(FieldError::invalid_value(
                            child(path, LIST_MAP_KEYS),
                            &map_keys_value,
                            "must not contain duplicate entries",
                        ));
                    }
                }
            }
        }
    }

    // validateMapListKeysMapSet
    if let (Some(is), Some(lt @ ("set" | "map"))) = (items, list_type) {
        let items_path = child(path, "items");
        if s_flag(is, "nullable") {
            out.push(FieldError::forbidden(
                child(&items_path, "nullable"),
                format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
            ));
        }
        if lt == "map" {
            let required = s_strings(is, "required");
            for k in &map_keys {
                let Some(p) = s_prop(is, k) else { continue };
                let pp = key_path(&child(&items_path, "properties"), k);
                if !required.contains(k) && p.get("default").is_none() {
                    out.push(FieldError::required(
                        child(&pp, "default"),
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    ));
                }
                if s_flag(p, "nullable") {
                    out.push(FieldError::forbidden(
                        child(&pp, "nullable"),
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A small RE2 (Go `regexp`) engine: parsed like Go, compiled to a Pike VM (no backtracking)
// ---------------------------------------------------------------------------------------------

mod regex {
    /// Go's limit on counted repetitions (`{n,m}`).
    const MAX_REPEAT: u32 = 1000;
    /// Beyond these the pattern is not enforced (valid for Go, too big for this engine).
    const MAX_INSTS: usize = 20_000;
    const MAX_NEST: usize = 200;
    const MAX_COMPILE_STEPS: usize = 1_000_000;
    const MAX_WORK: usize = 100_000_000;

    pub(super) enum ReError {
        /// Go refuses the pattern; the message is `regexp.Compile`'s.
        Invalid(String),
        /// A valid pattern this engine does not implement (or too large for it).
        Unsupported,
    }

    fn syntax(code: &str, expr: &str) -> ReError {
        ReError::Invalid(format!("error parsing regexp: {code}: `{expr}`"))
    }

    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Look {
        BeginText,
        EndText,
        BeginLine,
        EndLine,
        WordBoundary,
        NotWordBoundary,
    }

    /// The Unicode classes supported (approximated with Rust's char properties).
    #[derive(Clone, Copy, PartialEq, Eq, Debug)]
    enum Uni {
        Any,
        L,
        Lu,
        Ll,
        N,
    }

    #[derive(Clone, Debug)]
    enum Item {
        Range(u32, u32),
        Uni(Uni, bool),
    }

    #[derive(Clone, Debug)]
    struct Class {
        items: Vec<Item>,
        negated: bool,
        fold: bool,
    }

    fn uni_matches(u: Uni, c: char) -> bool {
        match u {
            Uni::Any => true,
            Uni::L => c.is_alphabetic(),
            Uni::Lu => c.is_uppercase(),
            Uni::Ll => c.is_lowercase(),
            Uni::N => c.is_numeric(),
        }
    }

    fn simple_lower(c: char) -> char {
        let mut it = c.to_lowercase();
        match (it.next(), it.next()) {
            (Some(l), None) => l,
            _ => c,
        }
    }

    fn simple_upper(c: char) -> char {
        let mut it = c.to_uppercase();
        match (it.next(), it.next()) {
            (Some(u), None) => u,
            _ => c,
        }
    }

    fn fold_eq(a: char, b: char) -> bool {
        a == b || simple_lower(a) == simple_lower(b) || simple_upper(a) == simple_upper(b)
    }

    impl Class {
        fn raw(&self, c: char) -> bool {
            let u = c as u32;
            self.items.iter().any(|it| match it {
                Item::Range(lo, hi) => *lo <= u && u <= *hi,
                Item::Uni(k, negated) => uni_matches(*k, c) != *negated,
            })
        }

        fn matches(&self, c: char) -> bool {
            let mut m = self.raw(c);
            if !m && self.fold {
                m = self.raw(simple_lower(c)) || self.raw(simple_upper(c));
            }
            m != self.negated
        }
    }

    /// `\d`, `\s`, `\w` (ASCII, as in Go).
    fn perl_ranges(c: char) -> Vec<(u32, u32)> {
        match c.to_ascii_lowercase() {
            'd' => vec![(0x30, 0x39)],
            's' => vec![(0x09, 0x0a), (0x0c, 0x0d), (0x20, 0x20)],
            _ => vec![(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)],
        }
    }

    /// `[:name:]` POSIX classes (ASCII).
    fn posix_ranges(name: &str) -> Option<Vec<(u32, u32)>> {
        Some(match name {
            "alnum" => vec![(0x30, 0x39), (0x41, 0x5a), (0x61, 0x7a)],
            "alpha" => vec![(0x41, 0x5a), (0x61, 0x7a)],
            "ascii" => vec![(0x00, 0x7f)],
            "blank" => vec![(0x09, 0x09), (0x20, 0x20)],
            "cntrl" => vec![(0x00, 0x1f), (0x7f, 0x7f)],
            "digit" => vec![(0x30, 0x39)],
            "graph" => vec![(0x21, 0x7e)],
            "lower" => vec![(0x61, 0x7a)],
            "print" => vec![(0x20, 0x7e)],
            "punct" => vec![(0x21, 0x2f), (0x3a, 0x40), (0x5b, 0x60), (0x7b, 0x7e)],
            "space" => vec![(0x09, 0x0d), (0x20, 0x20)],
            "upper" => vec![(0x41, 0x5a)],
            "word" => vec![(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)],
            "xdigit" => vec![(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
            _ => return None,
        })
    }

    fn complement(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
        ranges.sort_unstable();
        let mut out = Vec::new();
        let mut next = 0u32;
        for (lo, hi) in ranges {
            if lo > next {
                out.push((next, lo - 1));
            }
            next = next.max(hi.saturating_add(1));
        }
        if next <= 0x10ffff {
            out.push((next, 0x10ffff));
        }
        out
    }

    fn class_items(ranges: Vec<(u32, u32)>, negated: bool) -> Vec<Item> {
        let ranges = if negated { complement(ranges) } else { ranges };
        ranges
            .into_iter()
            .map(|(lo, hi)| Item::Range(lo, hi))
            .collect()
    }

    enum Ast {
        Empty,
        Lit(char, bool),
        Any(bool),
        Class(Class),
        Look(Look),
        Concat(Vec<Ast>),
        Alt(Vec<Ast>),
        /// (sub, min, max, counted with braces)
        Repeat(Box<Ast>, u32, Option<u32>, bool),
    }

    /// Go's `repeatIsValid`: nested counted repetitions may not exceed 1000 copies.
    fn repeat_is_valid(ast: &Ast, mut n: u32) -> bool {
        match ast {
            Ast::Repeat(sub, min, max, counted) => {
                if *counted {
                    let m = max.unwrap_or(*min);
                    if m == 0 && max.is_some() {
                        return true;
                    }
                    if m > n {
                        return false;
                    }
                    n = n.checked_div(m).unwrap_or(n);
                }
                repeat_is_valid(sub, n)
            }
            Ast::Concat(items) | Ast::Alt(items) => items.iter().all(|a| repeat_is_valid(a, n)),
            _ => true,
        }
    }

    #[derive(Clone, Copy, Default)]
    struct Flags {
        fold: bool,
        multi_line: bool,
        dot_nl: bool,
    }

    struct Parser {
        chars: Vec<char>,
        pos: usize,
        flags: Flags,
    }

    fn parse_int(chars: &[char], p: &mut usize) -> Option<u32> {
        let start = *p;
        while chars.get(*p).is_some_and(char::is_ascii_digit) {
            *p += 1;
        }
        let digits = chars.get(start..*p)?;
        if digits.is_empty() || (digits.len() >= 2 && digits.first() == Some(&'0')) {
            return None;
        }
        let mut n: u32 = 0;
        for d in digits {
            n = n
                .saturating_mul(10)
                .saturating_add(d.to_digit(10).unwrap_or(0));
        }
        Some(n)
    }

    impl Parser {
        fn peek(&self) -> Option<char> {
            self.chars.get(self.pos).copied()
        }

        fn peek_at(&self, n: usize) -> Option<char> {
            self.chars.get(self.pos + n).copied()
        }

        fn slice(&self, from: usize, to: usize) -> String {
            let to = to.min(self.chars.len());
            self.chars
                .get(from.min(to)..to)
                .map(|s| s.iter().collect())
                .unwrap_or_default()
        }

        fn whole(&self) -> String {
            self.chars.iter().collect()
        }

        fn find(&self, from: usize, what: &[char]) -> Option<usize> {
            (from..self.chars.len())
                .find(|&i| self.chars.get(i..i + what.len()).is_some_and(|w| w == what))
        }

        fn parse_alt(&mut self, depth: usize) -> Result<Ast, ReError> {
            if depth > MAX_NEST {
                return Err(ReError::Unsupported);
            }
            let mut branches = vec![self.parse_concat(depth)?];
            while self.peek() == Some('|') {
                self.pos += 1;
                branches.push(self.parse_concat(depth)?);
            }
            Ok(if branches.len() == 1 {
                branches.swap_remove(0)
            } else {
                Ast::Alt(branches)
            })
        }

        /// `{n}`, `{n,}`, `{n,m}` at the cursor (`None`: a literal `{`).
        fn repeat_braces(&mut self) -> Option<(u32, Option<u32>)> {
            let mut p = self.pos + 1;
            let min = parse_int(&self.chars, &mut p)?;
            let max = if self.chars.get(p) == Some(&',') {
                p += 1;
                if self.chars.get(p) == Some(&'}') {
                    None
                } else {
                    Some(parse_int(&self.chars, &mut p)?)
                }
            } else {
                Some(min)
            };
            if self.chars.get(p) != Some(&'}') {
                return None;
            }
            self.pos = p + 1;
            Some((min, max))
        }

        fn parse_concat(&mut self, depth: usize) -> Result<Ast, ReError> {
            let mut items: Vec<Ast> = Vec::new();
            let mut can_repeat = false;
            let mut last_repeat: Option<usize> = None;
            while let Some(c) = self.peek() {
                match c {
                    '|' | ')' => break,
                    '*' | '+' | '?' | '{' => {
                        let start = self.pos;
                        let (min, max) = match c {
                            '*' => {
                                self.pos += 1;
                                (0, None)
                            }
                            '+' => {
                                self.pos += 1;
                                (1, None)
                            }
                            '?' => {
                                self.pos += 1;
                                (0, Some(1))
                            }
                            _ => match self.repeat_braces() {
                                Some(r) => r,
                                None => {
                                    self.pos += 1;
                                    items.push(Ast::Lit('{', self.flags.fold));
                                    can_repeat = true;
                                    last_repeat = None;
                                    continue;
                                }
                            },
                        };
                        let counted = c == '{';
                        if counted
                            && (min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT || m < min))
                        {
                            return Err(syntax(
                                "invalid repeat count",
                                &self.slice(start, self.pos),
                            ));
                        }
                        let op_end = self.pos;
                        if self.peek() == Some('?') {
                            self.pos += 1;
                        }
                        if let Some(prev) = last_repeat {
                            return Err(syntax(
                                "invalid nested repetition operator",
                                &self.slice(prev, self.pos),
                            ));
                        }
                        let missing = || {
                            syntax(
                                "missing argument to repetition operator",
                                &self.slice(start, self.pos),
                            )
                        };
                        if !can_repeat {
                            return Err(missing());
                        }
                        let Some(last) = items.pop() else {
                            return Err(missing());
                        };
                        let rep = Ast::Repeat(Box::new(last), min, max, counted);
                        if counted
                            && (min >= 2 || max.is_some_and(|m| m >= 2))
                            && !repeat_is_valid(&rep, MAX_REPEAT)
                        {
                            return Err(syntax("invalid repeat count", &self.slice(start, op_end)));
                        }
                        items.push(rep);
                        last_repeat = Some(start);
                    }
                    _ => {
                        last_repeat = None;
                        match self.parse_atom(depth)? {
                            Some(a) => {
                                items.push(a);
                                can_repeat = true;
                            }
                            None => can_repeat = false,
                        }
                    }
                }
            }
            Ok(match items.len() {
                0 => Ast::Empty,
                1 => items.swap_remove(0),
                _ => Ast::Concat(items),
            })
        }

        /// One atom; `None` for a flags group such as `(?i)`.
        fn parse_atom(&mut self, depth: usize) -> Result<Option<Ast>, ReError> {
            let Some(c) = self.peek() else {
                return Ok(Some(Ast::Empty));
            };
            match c {
                '(' => self.parse_group(depth),
                '[' => self.parse_class().map(|c| Some(Ast::Class(c))),
                '\\' => self.parse_escape().map(Some),
                _ => {
                    self.pos += 1;
                    Ok(Some(match c {
                        '.' => Ast::Any(self.flags.dot_nl),
                        '^' if self.flags.multi_line => Ast::Look(Look::BeginLine),
                        '^' => Ast::Look(Look::BeginText),
                        '$' if self.flags.multi_line => Ast::Look(Look::EndLine),
                        '$' => Ast::Look(Look::EndText),
                        _ => Ast::Lit(c, self.flags.fold),
                    }))
                }
            }
        }

        fn parse_group(&mut self, depth: usize) -> Result<Option<Ast>, ReError> {
            let open = self.pos;
            self.pos += 1;
            let saved = self.flags;
            if self.peek() == Some('?') {
                let p_form = self.peek_at(1) == Some('P') && self.peek_at(2) == Some('<');
                if p_form || self.peek_at(1) == Some('<') {
                    let name_start = self.pos + if p_form { 3 } else { 2 };
                    let Some(end) = self.find(name_start, &['>']) else {
                        return Err(syntax(
                            "invalid named capture",
                            &self.slice(open, self.chars.len()),
                        ));
                    };
                    let name = self.slice(name_start, end);
                    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        return Err(syntax("invalid named capture", &self.slice(open, end + 1)));
                    }
                    self.pos = end + 1;
                } else {
                    self.pos += 1;
                    let mut flags = self.flags;
                    let mut negated = false;
                    let mut saw_flag = false;
                    loop {
                        let Some(c) = self.peek() else {
                            return Err(syntax(
                                "invalid or unsupported Perl syntax",
                                &self.slice(open, self.pos),
                            ));
                        };
                        self.pos += 1;
                        let perl = |p: &Parser| {
                            syntax("invalid or unsupported Perl syntax", &p.slice(open, p.pos))
                        };
                        match c {
                            'i' => flags.fold = !negated,
                            'm' => flags.multi_line = !negated,
                            's' => flags.dot_nl = !negated,
                            'U' => {}
                            '-' => {
                                if negated {
                                    return Err(perl(self));
                                }
                                negated = true;
                                saw_flag = false;
                                continue;
                            }
                            ':' | ')' => {
                                if negated && !saw_flag {
                                    return Err(perl(self));
                                }
                                self.flags = flags;
                                if c == ')' {
                                    return Ok(None);
                                }
                                break;
                            }
                            _ => return Err(perl(self)),
                        }
                        saw_flag = true;
                    }
                }
            }
            let inner = self.parse_alt(depth + 1)?;
            if self.peek() != Some(')') {
                return Err(syntax("missing closing )", &self.whole()));
            }
            self.pos += 1;
            self.flags = saved;
            Ok(Some(inner))
        }

        /// An escape outside a class (the cursor on the backslash).
        fn parse_escape(&mut self) -> Result<Ast, ReError> {
            let Some(c) = self.peek_at(1) else {
                return Err(syntax("trailing backslash at end of expression", ""));
            };
            let look = match c {
                'b' => Some(Look::WordBoundary),
                'B' => Some(Look::NotWordBoundary),
                'A' => Some(Look::BeginText),
                'z' => Some(Look::EndText),
                _ => None,
            };
            if let Some(l) = look {
                self.pos += 2;
                return Ok(Ast::Look(l));
            }
            match c {
                'Q' => {
                    self.pos += 2;
                    let mut lits = Vec::new();
                    while let Some(ch) = self.peek() {
                        if ch == '\\' && self.peek_at(1) == Some('E') {
                            self.pos += 2;
                            break;
                        }
                        lits.push(Ast::Lit(ch, self.flags.fold));
                        self.pos += 1;
                    }
                    Ok(Ast::Concat(lits))
                }
                'd' | 'D' | 's' | 'S' | 'w' | 'W' => {
                    self.pos += 2;
                    Ok(Ast::Class(Class {
                        items: class_items(perl_ranges(c), false),
                        negated: c.is_ascii_uppercase(),
                        fold: false,
                    }))
                }
                'p' | 'P' => {
                    let items = self.unicode_class()?;
                    Ok(Ast::Class(Class {
                        items,
                        negated: false,
                        fold: self.flags.fold,
                    }))
                }
                _ => Ok(Ast::Lit(self.escape_char()?, self.flags.fold)),
            }
        }

        /// `\pL`, `\p{Name}`, `\PL`, `\p{^Name}` (the cursor on the backslash).
        fn unicode_class(&mut self) -> Result<Vec<Item>, ReError> {
            let start = self.pos;
            let upper = self.peek_at(1) == Some('P');
            self.pos += 2;
            let name = match self.peek() {
                None => {
                    return Err(syntax(
                        "invalid character class range",
                        &self.slice(start, self.pos),
                    ));
                }
                Some('{') => {
                    let Some(end) = self.find(self.pos, &['}']) else {
                        return Err(syntax(
                            "invalid character class range",
                            &self.slice(start, self.chars.len()),
                        ));
                    };
                    let n = self.slice(self.pos + 1, end);
                    self.pos = end + 1;
                    n
                }
                Some(ch) => {
                    self.pos += 1;
                    ch.to_string()
                }
            };
            let (caret, name) = match name.strip_prefix('^') {
                Some(n) => (true, n),
                None => (false, name.as_str()),
            };
            let uni = match name {
                "Any" => Uni::Any,
                "L" => Uni::L,
                "Lu" => Uni::Lu,
                "Ll" => Uni::Ll,
                "N" | "Nd" => Uni::N,
                _ => return Err(ReError::Unsupported),
            };
            Ok(vec![Item::Uni(uni, upper != caret)])
        }

        /// A single-character escape (the cursor on the backslash).
        fn escape_char(&mut self) -> Result<char, ReError> {
            let start = self.pos;
            self.pos += 1;
            let Some(c) = self.peek() else {
                return Err(syntax("trailing backslash at end of expression", ""));
            };
            self.pos += 1;
            let invalid = |p: &Parser| syntax("invalid escape sequence", &p.slice(start, p.pos));
            let octal = |ch: Option<char>| ch.is_some_and(|d| ('0'..='7').contains(&d));
            match c {
                '1'..='7' if !octal(self.peek()) => Err(invalid(self)),
                '0'..='7' => {
                    let mut v = c.to_digit(8).unwrap_or(0);
                    for _ in 0..2 {
                        match self.peek() {
                            Some(d) if octal(Some(d)) => {
                                v = v * 8 + d.to_digit(8).unwrap_or(0);
                                self.pos += 1;
                            }
                            _ => break,
                        }
                    }
                    char::from_u32(v).ok_or(ReError::Unsupported)
                }
                'x' => match self.peek() {
                    None => Err(invalid(self)),
                    Some('{') => {
                        self.pos += 1;
                        let mut v: u32 = 0;
                        let mut digits = 0;
                        loop {
                            let Some(d) = self.peek() else {
                                return Err(invalid(self));
                            };
                            self.pos += 1;
                            if d == '}' {
                                break;
                            }
                            let Some(h) = d.to_digit(16) else {
                                return Err(invalid(self));
                            };
                            v = v * 16 + h;
                            if v > 0x10ffff {
                                return Err(invalid(self));
                            }
                            digits += 1;
                        }
                        if digits == 0 {
                            return Err(invalid(self));
                        }
                        char::from_u32(v).ok_or(ReError::Unsupported)
                    }
                    Some(h1) => {
                        self.pos += 1;
                        let h2 = self.peek();
                        if h2.is_some() {
                            self.pos += 1;
                        }
                        match (h1.to_digit(16), h2.and_then(|h| h.to_digit(16))) {
                            (Some(a), Some(b)) => {
                                char::from_u32(a * 16 + b).ok_or(ReError::Unsupported)
                            }
                            _ => Err(invalid(self)),
                        }
                    }
                },
                'a' => Ok('\u{7}'),
                'f' => Ok('\u{c}'),
                'n' => Ok('\n'),
                'r' => Ok('\r'),
                't' => Ok('\t'),
                'v' => Ok('\u{b}'),
                c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
                _ => Err(invalid(self)),
            }
        }

        fn parse_class(&mut self) -> Result<Class, ReError> {
            let open = self.pos;
            self.pos += 1;
            let mut class = Class {
                items: Vec::new(),
                negated: false,
                fold: self.flags.fold,
            };
            if self.peek() == Some('^') {
                class.negated = true;
                self.pos += 1;
            }
            let mut first = true;
            loop {
                let Some(c) = self.peek() else {
                    return Err(syntax(
                        "missing closing ]",
                        &self.slice(open, self.chars.len()),
                    ));
                };
                if c == ']' && !first {
                    self.pos += 1;
                    break;
                }
                first = false;
                if c == '['
                    && self.peek_at(1) == Some(':')
                    && let Some(end) = self.find(self.pos + 2, &[':', ']'])
                {
                    let name = self.slice(self.pos + 2, end);
                    let (negated, name) = match name.strip_prefix('^') {
                        Some(n) => (true, n),
                        None => (false, name.as_str()),
                    };
                    let Some(ranges) = posix_ranges(name) else {
                        return Err(syntax(
                            "invalid character class range",
                            &self.slice(self.pos, end + 2),
                        ));
                    };
                    class.items.extend(class_items(ranges, negated));
                    self.pos = end + 2;
                    continue;
                }
                if c == '\\' {
                    match self.peek_at(1) {
                        Some(k @ ('d' | 'D' | 's' | 'S' | 'w' | 'W')) => {
                            self.pos += 2;
                            class
                                .items
                                .extend(class_items(perl_ranges(k), k.is_ascii_uppercase()));
                            continue;
                        }
                        Some('p' | 'P') => {
                            let items = self.unicode_class()?;
                            class.items.extend(items);
                            continue;
                        }
                        _ => {}
                    }
                }
                let range_start = self.pos;
                let lo = self.class_char(open)?;
                let mut hi = lo;
                if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                    self.pos += 1;
                    hi = self.class_char(open)?;
                    if hi < lo {
                        return Err(syntax(
                            "invalid character class range",
                            &self.slice(range_start, self.pos),
                        ));
                    }
                }
                class.items.push(Item::Range(lo as u32, hi as u32));
            }
            Ok(class)
        }

        fn class_char(&mut self, open: usize) -> Result<char, ReError> {
            match self.peek() {
                None => Err(syntax(
                    "missing closing ]",
                    &self.slice(open, self.chars.len()),
                )),
                Some('\\') => self.escape_char(),
                Some(c) => {
                    self.pos += 1;
                    Ok(c)
                }
            }
        }
    }

    #[derive(Clone, Copy, Debug)]
    enum Inst {
        Char(char),
        Fold(char),
        Any,
        AnyNotNl,
        Class(usize),
        Split(usize, usize),
        Jmp(usize),
        Look(Look),
        Match,
    }

    struct Compiler {
        insts: Vec<Inst>,
        classes: Vec<Class>,
        steps: usize,
    }

    impl Compiler {
        fn push(&mut self, inst: Inst) -> Result<usize, ReError> {
            if self.insts.len() >= MAX_INSTS {
                return Err(ReError::Unsupported);
            }
            self.insts.push(inst);
            Ok(self.insts.len() - 1)
        }

        fn set(&mut self, at: usize, inst: Inst) {
            if let Some(slot) = self.insts.get_mut(at) {
                *slot = inst;
            }
        }

        fn emit(&mut self, ast: &Ast) -> Result<(), ReError> {
            self.steps += 1;
            if self.steps > MAX_COMPILE_STEPS {
                return Err(ReError::Unsupported);
            }
            match ast {
                Ast::Empty => {}
                Ast::Lit(c, fold) => {
                    let folds = *fold && (simple_lower(*c) != *c || simple_upper(*c) != *c);
                    self.push(if folds {
                        Inst::Fold(*c)
                    } else {
                        Inst::Char(*c)
                    })?;
                }
                Ast::Any(nl) => {
                    self.push(if *nl { Inst::Any } else { Inst::AnyNotNl })?;
                }
                Ast::Class(c) => {
                    self.classes.push(c.clone());
                    let idx = self.classes.len() - 1;
                    self.push(Inst::Class(idx))?;
                }
                Ast::Look(l) => {
                    self.push(Inst::Look(*l))?;
                }
                Ast::Concat(items) => {
                    for a in items {
                        self.emit(a)?;
                    }
                }
                Ast::Alt(branches) => {
                    let mut jumps = Vec::new();
                    let last = branches.len().saturating_sub(1);
                    for (i, b) in branches.iter().enumerate() {
                        if i < last {
                            let split = self.push(Inst::Split(0, 0))?;
                            self.emit(b)?;
                            jumps.push(self.push(Inst::Jmp(0))?);
                            let next = self.insts.len();
                            self.set(split, Inst::Split(split + 1, next));
                        } else {
                            self.emit(b)?;
                        }
                    }
                    let end = self.insts.len();
                    for j in jumps {
                        self.set(j, Inst::Jmp(end));
                    }
                }
                Ast::Repeat(sub, min, max, _) => {
                    for _ in 0..*min {
                        self.emit(sub)?;
                    }
                    match max {
                        None => {
                            let split = self.push(Inst::Split(0, 0))?;
                            self.emit(sub)?;
                            self.push(Inst::Jmp(split))?;
                            let out = self.insts.len();
                            self.set(split, Inst::Split(split + 1, out));
                        }
                        Some(max) => {
                            let mut splits = Vec::new();
                            for _ in *min..*max {
                                splits.push(self.push(Inst::Split(0, 0))?);
                                self.emit(sub)?;
                            }
                            let out = self.insts.len();
                            for s in splits {
                                self.set(s, Inst::Split(s + 1, out));
                            }
                        }
                    }
                }
            }
            Ok(())
        }
    }

    struct Threads {
        dense: Vec<usize>,
        on: Vec<bool>,
    }

    impl Threads {
        fn new(n: usize) -> Threads {
            Threads {
                dense: Vec::new(),
                on: vec![false; n],
            }
        }

        fn clear(&mut self) {
            for &pc in &self.dense {
                if let Some(b) = self.on.get_mut(pc) {
                    *b = false;
                }
            }
            self.dense.clear();
        }

        fn insert(&mut self, pc: usize) -> bool {
            match self.on.get_mut(pc) {
                Some(b) if !*b => {
                    *b = true;
                    self.dense.push(pc);
                    true
                }
                _ => false,
            }
        }
    }

    fn is_word(c: Option<&char>) -> bool {
        c.is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_')
    }

    fn look_ok(look: Look, pos: usize, chars: &[char]) -> bool {
        let prev = pos.checked_sub(1).and_then(|p| chars.get(p));
        let next = chars.get(pos);
        match look {
            Look::BeginText => pos == 0,
            Look::EndText => pos == chars.len(),
            Look::BeginLine => pos == 0 || prev == Some(&'\n'),
            Look::EndLine => pos == chars.len() || next == Some(&'\n'),
            Look::WordBoundary => is_word(prev) != is_word(next),
            Look::NotWordBoundary => is_word(prev) == is_word(next),
        }
    }

    /// A compiled Go regular expression.
    pub(super) struct Regex {
        insts: Vec<Inst>,
        classes: Vec<Class>,
        anchored: bool,
    }

    impl Regex {
        pub(super) fn new(pattern: &str) -> Result<Regex, ReError> {
            let mut parser = Parser {
                chars: pattern.chars().collect(),
                pos: 0,
                flags: Flags::default(),
            };
            let ast = parser.parse_alt(0)?;
            if parser.pos < parser.chars.len() {
                return Err(syntax("unexpected )", pattern));
            }
            let mut compiler = Compiler {
                insts: Vec::new(),
                classes: Vec::new(),
                steps: 0,
            };
            compiler.emit(&ast)?;
            compiler.push(Inst::Match)?;
            let anchored = matches!(compiler.insts.first(), Some(Inst::Look(Look::BeginText)));
            Ok(Regex {
                insts: compiler.insts,
                classes: compiler.classes,
                anchored,
            })
        }

        /// Whether the pattern matches somewhere in `text` (Go's `MatchString`); `None` when the
        /// match would be too costly to run.
        pub(super) fn is_match(&self, text: &str) -> Option<bool> {
            let chars: Vec<char> = text.chars().collect();
            let n = self.insts.len();
            if n.saturating_mul(chars.len() + 1) > MAX_WORK {
                return None;
            }
            let mut current = Threads::new(n);
            let mut next = Threads::new(n);
            let mut stack = Vec::new();
            for pos in 0..=chars.len() {
                if (pos == 0 || !self.anchored)
                    && self.add(&mut current, 0, pos, &chars, &mut stack)
                {
                    return Some(true);
                }
                if current.dense.is_empty() && self.anchored {
                    return Some(false);
                }
                let Some(&c) = chars.get(pos) else { break };
                next.clear();
                for i in 0..current.dense.len() {
                    let Some(&pc) = current.dense.get(i) else {
                        break;
                    };
                    let step = match self.insts.get(pc) {
                        Some(Inst::Char(x)) => *x == c,
                        Some(Inst::Fold(x)) => fold_eq(*x, c),
                        Some(Inst::Any) => true,
                        Some(Inst::AnyNotNl) => c != '\n',
                        Some(Inst::Class(k)) => {
                            self.classes.get(*k).is_some_and(|cl| cl.matches(c))
                        }
                        _ => false,
                    };
                    if step && self.add(&mut next, pc + 1, pos + 1, &chars, &mut stack) {
                        return Some(true);
                    }
                }
                std::mem::swap(&mut current, &mut next);
                next.clear();
            }
            Some(false)
        }

        /// Adds the thread at `pc` and its epsilon closure; true when it reaches `Match`.
        fn add(
            &self,
            set: &mut Threads,
            pc: usize,
            pos: usize,
            chars: &[char],
            stack: &mut Vec<usize>,
        ) -> bool {
            stack.clear();
            stack.push(pc);
            while let Some(pc) = stack.pop() {
                if !set.insert(pc) {
                    continue;
                }
                match self.insts.get(pc) {
                    Some(Inst::Jmp(t)) => stack.push(*t),
                    Some(Inst::Split(a, b)) => {
                        stack.push(*b);
                        stack.push(*a);
                    }
                    Some(Inst::Look(l)) if look_ok(*l, pos, chars) => {
                        stack.push(pc + 1);
                    }
                    Some(Inst::Match) => return true,
                    _ => {}
                }
            }
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// String formats (kube-openapi strfmt with govalidator, as registered for CRDs in v1.33)
// ---------------------------------------------------------------------------------------------

/// Whether `s` is valid for the (dash-less) format name.
fn format_valid(format: &str, s: &str) -> bool {
    match format {
        "bsonobjectid" => s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()),
        "uri" => is_request_uri(s),
        "email" => is_email(s),
        "hostname" => is_hostname(s),
        "ipv4" => parse_ip_sloppy(s) && s.contains('.'),
        "ipv6" => s.contains(':') && parse_ipv6(s, false),
        "cidr" => is_cidr(s),
        "mac" => is_mac(s),
        "uuid" => re_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid3" => re_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid4" => re_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            s,
        ),
        "uuid5" => re_match(
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            s,
        ),
        "isbn" => is_isbn10(s) || is_isbn13(s),
        "isbn10" => is_isbn10(s),
        "isbn13" => is_isbn13(s),
        "creditcard" => is_credit_card(s),
        "ssn" => s.len() == 11 && re_match(r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", s),
        "hexcolor" => re_match(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", s),
        "rgbcolor" => re_match(
            r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$",
            s,
        ),
        "byte" => is_base64(s),
        "date" => is_date(s),
        "datetime" => is_date_time(s),
        "duration" => is_duration(s),
        _ => true,
    }
}

fn re_match(pattern: &str, s: &str) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(s).unwrap_or(true),
        Err(_) => true,
    }
}

/// govalidator's `IsBase64`: standard alphabet, padded, at least one quantum.
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return false;
    }
    let alpha = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/';
    let (body, last) = b.split_at(b.len() - 4);
    body.iter().all(|&c| alpha(c))
        && match last {
            [a, b, b'=', b'='] => alpha(*a) && alpha(*b),
            [a, b, c, b'='] => alpha(*a) && alpha(*b) && alpha(*c),
            [a, b, c, d] => alpha(*a) && alpha(*b) && alpha(*c) && alpha(*d),
            _ => false,
        }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// `time.Parse("2006-01-02", s)` succeeds.
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    match (num(0..4), num(5..7), num(8..10)) {
        (Some(y), Some(m), Some(d)) => (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m),
        _ => false,
    }
}

/// strfmt's `IsDateTime`.
fn is_date_time(s: &str) -> bool {
    if s.len() < 4 {
        return false;
    }
    let lower = s.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    let (Some(date), Some(time)) = (parts.first(), parts.get(1)) else {
        return false;
    };
    if !is_date(date) {
        return false;
    }
    // ^([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$
    let c: Vec<char> = time.chars().collect();
    let digit = |i: usize| c.get(i).is_some_and(char::is_ascii_digit);
    if !(digit(0) && digit(1) && c.get(2) == Some(&':') && digit(3) && digit(4))
        || !(c.get(5) == Some(&':') && digit(6) && digit(7))
    {
        return false;
    }
    let field = |i: usize| -> String { c.iter().skip(i).take(2).collect() };
    if field(0).as_str() > "23" || field(3).as_str() > "59" || field(6).as_str() > "59" {
        return false;
    }
    let zone = |rest: &[char]| -> bool {
        match rest {
            ['z'] => true,
            [sign, h1, h2, ':', m1, m2] => {
                (*sign == '+' || *sign == '-')
                    && [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
            }
            _ => false,
        }
    };
    let rest = c.get(8..).unwrap_or(&[]);
    if zone(rest) {
        return true;
    }
    match rest.split_first() {
        Some((first, tail)) if *first != '\n' => {
            let digits = tail.iter().take_while(|d| d.is_ascii_digit()).count();
            digits > 0 && zone(tail.get(digits..).unwrap_or(&[]))
        }
        _ => false,
    }
}

/// strfmt's `ParseDuration`: Go's `time.ParseDuration`, else a Scala-like `3 days`.
fn is_duration(s: &str) -> bool {
    go_parse_duration(s) || loose_duration(s)
}

fn go_parse_duration(s: &str) -> bool {
    let mut rest = s;
    if let Some(r) = rest.strip_prefix(['-', '+']) {
        rest = r;
    }
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let mut frac_len = 0;
        let mut after_frac = after;
        if let Some(f) = after.strip_prefix('.') {
            frac_len = f.bytes().take_while(u8::is_ascii_digit).count();
            after_frac = f.get(frac_len..).unwrap_or("");
        } else if int_len == 0 {
            return false;
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        let unit_len = after_frac
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after_frac.len(), |(i, _)| i);
        let (unit, next) = after_frac.split_at(unit_len);
        let ns: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return false,
        };
        let value: u128 = if int_part.is_empty() {
            0
        } else {
            match int_part.parse::<u128>() {
                Ok(v) if v <= u128::from(u64::MAX) => v,
                _ => return false,
            }
        };
        total = total.saturating_add(value.saturating_mul(ns));
        if total > 1u128 << 63 {
            return false;
        }
        rest = next;
    }
    true
}

fn loose_duration(s: &str) -> bool {
    const UNITS: [&[&str]; 8] = [
        &["ns", "nano"],
        &["us", "\u{b5}s", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    let chars: Vec<char> = s.chars().collect();
    let mut ok = false;
    let mut i = 0;
    while i < chars.len() {
        if !chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
            continue;
        }
        let start = i;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
        let digits: String = chars.get(start..i).unwrap_or(&[]).iter().collect();
        let mut j = i;
        while chars
            .get(j)
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}'))
        {
            j += 1;
        }
        let unit_start = j;
        while chars
            .get(j)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == '\u{b5}')
        {
            j += 1;
        }
        if j == unit_start {
            continue;
        }
        if digits.parse::<i64>().is_err() {
            return false;
        }
        let unit: String = chars
            .get(unit_start..j)
            .unwrap_or(&[])
            .iter()
            .collect::<String>()
            .to_lowercase();
        for variants in UNITS {
            let last = variants.len() - 1;
            for (k, v) in variants.iter().enumerate() {
                if (k == last && unit.starts_with(v)) || v.eq_ignore_ascii_case(&unit) {
                    ok = true;
                }
            }
        }
        i = j;
    }
    ok
}

/// strfmt's `IsHostname` (its regular expression, with `\p{L}`/`\p{S}` approximated).
fn is_hostname(s: &str) -> bool {
    if s.len() > 255 || s.split('.').any(|p| p.len() > 63) {
        return false;
    }
    let unit = |c: char| c.is_ascii_alphanumeric() || c.is_alphabetic() || is_symbol(c);
    let chars: Vec<char> = s.chars().collect();
    // A single label: X(-?X{0,62})?
    if let Some((first, rest)) = chars.split_first()
        && unit(*first)
    {
        let rest = rest.strip_prefix(&['-']).unwrap_or(rest);
        if rest.len() <= 62 && rest.iter().all(|c| unit(*c)) {
            return true;
        }
    }
    // (label.)+ tld
    let labels: Vec<&str> = s.split('.').collect();
    let Some((tld, labels)) = labels.split_last() else {
        return false;
    };
    if labels.is_empty() {
        return false;
    }
    let tld_len = tld.chars().count();
    if !(2..=63).contains(&tld_len) || !tld.chars().all(char::is_alphabetic) {
        return false;
    }
    labels.iter().all(|label| {
        let l: Vec<char> = label.chars().collect();
        match l.as_slice() {
            [] => false,
            [one] => unit(*one),
            [first, middle @ .., last] => {
                unit(*first)
                    && unit(*last)
                    && middle.len() <= 61
                    && middle.iter().all(|c| unit(*c) || *c == '-')
            }
        }
    })
}

/// Unicode category S, approximately: ASCII `$+<=>^`|~`, and non-ASCII non-alphanumeric,
/// non-space, non-control characters.
fn is_symbol(c: char) -> bool {
    if c.is_ascii() {
        return matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
    }
    !c.is_alphanumeric() && !c.is_whitespace() && !c.is_control()
}

/// `net/mail.ParseAddress` (approximately): `local@domain` or `Name <local@domain>`.
fn is_email(s: &str) -> bool {
    let s = s.trim();
    let addr = match (s.rfind('<'), s.strip_suffix('>')) {
        (Some(open), Some(inner)) => inner.get(open + 1..).unwrap_or(""),
        (None, None) => s,
        _ => return false,
    };
    let Some(at) = addr.rfind('@') else {
        return false;
    };
    let (local, domain) = (
        addr.get(..at).unwrap_or(""),
        addr.get(at + 1..).unwrap_or(""),
    );
    let atext =
        |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii();
    let dot_atom =
        |x: &str| !x.is_empty() && x.split('.').all(|a| !a.is_empty() && a.chars().all(atext));
    let local_ok = if local.len() >= 2 && local.starts_with('"') && local.ends_with('"') {
        true
    } else {
        dot_atom(local)
    };
    let domain_ok = if domain.starts_with('[') && domain.ends_with(']') {
        domain.len() > 2
    } else {
        dot_atom(domain)
    };
    local_ok && domain_ok
}

/// `url.ParseRequestURI` (approximately): an absolute URI or an absolute path.
fn is_request_uri(s: &str) -> bool {
    if s.is_empty() || s.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return false;
    }
    if s == "*" {
        return true;
    }
    let mut scheme = "";
    let mut rest = s;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            continue;
        }
        if c.is_ascii_digit() || c == '+' || c == '-' || c == '.' {
            if i == 0 {
                break;
            }
            continue;
        }
        if c == ':' {
            if i == 0 {
                return false;
            }
            scheme = s.get(..i).unwrap_or("");
            rest = s.get(i + 1..).unwrap_or("");
        }
        break;
    }
    let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
    if !rest.starts_with('/') {
        return !scheme.is_empty();
    }
    let path = if !scheme.is_empty() && rest.starts_with("//") && !rest.starts_with("///") {
        let after = rest.get(2..).unwrap_or("");
        let (authority, path) = match after.find('/') {
            Some(i) => (after.get(..i).unwrap_or(""), after.get(i..).unwrap_or("")),
            None => (after, ""),
        };
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        if !valid_host(host) {
            return false;
        }
        path
    } else {
        rest
    };
    valid_escapes(path)
}

fn valid_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some((ip, port)) = inner.split_once(']') else {
            return false;
        };
        let ip = ip.split_once('%').map_or(ip, |(a, _)| a);
        return parse_ipv6(ip, false)
            && (port.is_empty()
                || port
                    .strip_prefix(':')
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit())));
    }
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    if port.is_some_and(|p| !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    name.chars()
        .all(|c| c.is_alphanumeric() || "-._~!$&'()*+,;=%".contains(c))
        && valid_escapes(name)
}

fn valid_escapes(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b.get(i) == Some(&b'%') {
            let ok = b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !ok {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The pre-Go-1.17 `parseIPv4` (`k8s.io/utils/net.ParseIPSloppy`): leading zeros allowed.
fn parse_ipv4_sloppy(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.trim_start_matches('0').len() <= 3
                && p.parse::<u32>().unwrap_or(u32::MAX) <= 255
        })
}

/// `netip.ParseAddr`'s IPv4: no leading zeros.
fn parse_ipv4_strict(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|b| b.is_ascii_digit())
                && !(p.len() > 1 && p.starts_with('0'))
                && p.parse::<u32>().unwrap_or(u32::MAX) <= 255
        })
}

/// An IPv6 address (`sloppy`: the old Go parser with leading-zero IPv4 tails and long hex
/// groups; otherwise `netip`'s rules).
fn parse_ipv6(s: &str, sloppy: bool) -> bool {
    let (head, tail) = match s.find("::") {
        Some(i) => (s.get(..i).unwrap_or(""), Some(s.get(i + 2..).unwrap_or(""))),
        None => (s, None),
    };
    if tail.is_some_and(|t| t.contains("::")) {
        return false;
    }
    let groups = |part: &str, allow_v4: bool| -> Option<usize> {
        if part.is_empty() {
            return Some(0);
        }
        let fields: Vec<&str> = part.split(':').collect();
        let mut bytes = 0;
        for (i, f) in fields.iter().enumerate() {
            let last = i + 1 == fields.len();
            if last && allow_v4 && f.contains('.') {
                let ok = if sloppy {
                    parse_ipv4_sloppy(f)
                } else {
                    parse_ipv4_strict(f)
                };
                if !ok {
                    return None;
                }
                bytes += 4;
                continue;
            }
            let hex_ok = !f.is_empty()
                && f.bytes().all(|b| b.is_ascii_hexdigit())
                && if sloppy {
                    u32::from_str_radix(f.trim_start_matches('0'), 16).unwrap_or(0) <= 0xffff
                        && f.trim_start_matches('0').len() <= 4
                } else {
                    f.len() <= 4
                };
            if !hex_ok {
                return None;
            }
            bytes += 2;
        }
        Some(bytes)
    };
    match tail {
        None => groups(head, true) == Some(16),
        Some(tail) => match (groups(head, false), groups(tail, true)) {
            (Some(a), Some(b)) => a + b <= 14,
            _ => false,
        },
    }
}

/// The old Go `ParseIP` (sloppy IPv4), dispatching on the first `.` or `:`.
fn parse_ip_sloppy(s: &str) -> bool {
    match s.find(['.', ':']) {
        Some(i) if s.as_bytes().get(i) == Some(&b'.') => parse_ipv4_sloppy(s),
        Some(_) => parse_ipv6(s, true),
        None => false,
    }
}

/// `ParseCIDRSloppy`.
fn is_cidr(s: &str) -> bool {
    let Some((addr, mask)) = s.split_once('/') else {
        return false;
    };
    let bits = if parse_ipv4_sloppy(addr) {
        32
    } else if parse_ipv6(addr, true) {
        128
    } else {
        return false;
    };
    !mask.is_empty()
        && mask.bytes().all(|b| b.is_ascii_digit())
        && mask.parse::<u32>().is_ok_and(|n| n <= bits)
}

/// `net.ParseMAC`: 6, 8 or 20 octets as `aa:bb:..`, `aa-bb-..` or `aabb.ccdd.eeff`.
fn is_mac(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 14 {
        return false;
    }
    let hex = |x: &[u8]| x.iter().all(u8::is_ascii_hexdigit);
    match (b.get(2), b.get(4)) {
        (Some(&sep @ (b':' | b'-')), _) => {
            if !(b.len() + 1).is_multiple_of(3) {
                return false;
            }
            let n = (b.len() + 1) / 3;
            matches!(n, 6 | 8 | 20)
                && (0..n).all(|i| {
                    b.get(i * 3..i * 3 + 2).is_some_and(hex)
                        && (i + 1 == n || b.get(i * 3 + 2) == Some(&sep))
                })
        }
        (_, Some(b'.')) => {
            if !(b.len() + 1).is_multiple_of(5) {
                return false;
            }
            let n = 2 * (b.len() + 1) / 5;
            matches!(n, 6 | 8 | 20)
                && (0..n / 2).all(|i| {
                    b.get(i * 5..i * 5 + 4).is_some_and(hex)
                        && (i + 1 == n / 2 || b.get(i * 5 + 4) == Some(&b'.'))
                })
        }
        _ => false,
    }
}

fn isbn_digits(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}' | '-'))
        .collect()
}

/// govalidator's `IsISBN10`.
fn is_isbn10(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 10 {
        return false;
    }
    let (body, last) = d.split_at(9);
    if !body.iter().all(char::is_ascii_digit) {
        return false;
    }
    let check = match last.first() {
        Some('X') => 10,
        Some(c) if c.is_ascii_digit() => c.to_digit(10).unwrap_or(0),
        _ => return false,
    };
    let sum: u32 = body
        .iter()
        .zip(1u32..)
        .map(|(c, w)| w * c.to_digit(10).unwrap_or(0))
        .sum::<u32>()
        + 10 * check;
    sum.is_multiple_of(11)
}

/// govalidator's `IsISBN13`.
fn is_isbn13(s: &str) -> bool {
    let d = isbn_digits(s);
    if d.len() != 13 || !d.iter().all(char::is_ascii_digit) {
        return false;
    }
    let digit = |i: usize| d.get(i).and_then(|c| c.to_digit(10)).unwrap_or(0);
    let sum: u32 = (0..12)
        .map(|i| digit(i) * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    digit(12) == (10 - sum % 10) % 10
}

/// govalidator's `IsCreditCard`: the digits match a card number pattern and the Luhn sum.
fn is_credit_card(s: &str) -> bool {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if !re_match(
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$",
        &digits,
    ) {
        return false;
    }
    let mut sum = 0;
    for (i, c) in digits.chars().rev().enumerate() {
        let mut n = c.to_digit(10).unwrap_or(0);
        if i % 2 == 1 {
            n *= 2;
            if n >= 10 {
                n = n % 10 + 1;
            }
        }
        sum += n;
    }
    sum % 10 == 0
}
