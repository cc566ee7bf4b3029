//! kube-apiserver's validation helpers, with the messages of
//! `k8s.io/apimachinery/pkg/util/validation` (and its `field` package) as of Kubernetes v1.33.
//!
//! The `is_*` functions return the list of problems with a value (empty when valid), exactly as
//! the Go functions of the same names do. [`FieldError`] mirrors Go's `field.Error`: its
//! [`Display`](std::fmt::Display) output (so `to_string()`) is `field.Error.Error()`, and
//! [`FieldError::body`] is `ErrorBody()`, which kube puts in `StatusCause.message`.
//! [`invalid_message`] builds the message of a 422 `Invalid` status (`errors.NewInvalid`).

use serde_json::{Map, Value};
use std::fmt;

/// Max length of a DNS (RFC 1123) label.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Max length of a DNS (RFC 1123) subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Max length of a DNS (RFC 1035) label.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Max length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Max length of the name part of a qualified name (label / annotation key).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Max total size (keys + values, in bytes) of an object's annotations.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * (1 << 10);

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";

// ---------------------------------------------------------------------------------------------
// Message helpers (validation.go)
// ---------------------------------------------------------------------------------------------

/// `MaxLenError`: "must be no more than N characters".
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `RegexError`: explanation of a regex validation failure, with optional examples.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = String::from(msg);
    out.push_str(" (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// `EmptyError`: "must be non-empty".
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

/// `InclusiveRangeError`: "must be between LO and HI, inclusive".
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

// ---------------------------------------------------------------------------------------------
// Matchers equivalent to the anchored Go regular expressions
// ---------------------------------------------------------------------------------------------

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `^[a-z]([-a-z0-9]*[a-z0-9])?$`
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_lowercase()
                && is_lower_alnum(last)
                && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// `^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`
fn matches_qualified_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
        }
        _ => false,
    }
}

/// `^[-._a-zA-Z0-9]+$`
fn matches_config_map_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

// ---------------------------------------------------------------------------------------------
// Value validators (validation.go)
// ---------------------------------------------------------------------------------------------

/// `IsDNS1123Subdomain`: a lowercase RFC 1123 subdomain, at most 253 characters.
/// Most resource names (ConfigMap, Secret, Deployment, ...) must be one.
pub fn is_dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(v) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `IsDNS1123Label`: a lowercase RFC 1123 label, at most 63 characters (namespace names, ...).
pub fn is_dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(v) {
        if matches_dns1123_subdomain(v) {
            // A valid subdomain but not a valid label: since length was checked, it must be dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1035Label`: a DNS-1035 label (must start with a letter), at most 63 characters
/// (Service names).
pub fn is_dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(v) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// `IsQualifiedName`: a label or annotation key, `[prefix/]name` where the optional prefix is a
/// DNS subdomain and the name is at most 63 alphanumeric, '-', '_' or '.' characters.
pub fn is_qualified_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = v.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`: empty, or at most 63 alphanumeric, '-', '_' or '.' characters starting
/// and ending with an alphanumeric character.
pub fn is_valid_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !(v.is_empty() || matches_qualified_name(v)) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `IsConfigMapKey`: a key of a ConfigMap's or Secret's data.
pub fn is_config_map_key(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_config_map_key(v) {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if v == "." {
        errs.push("must not be '.'".to_string());
    } else if v == ".." {
        errs.push("must not be '..'".to_string());
    } else if v.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Go value rendering
// ---------------------------------------------------------------------------------------------

/// Approximation of Go's `unicode.IsPrint` (Rust's std has no general-category tables):
/// control characters, non-ASCII spaces, line/paragraph separators, common format characters,
/// private-use characters and noncharacters are not printable.
fn go_is_print(c: char) -> bool {
    let u = c as u32;
    if (0x20..0x7f).contains(&u) {
        return true;
    }
    if c.is_control() {
        return false;
    }
    !matches!(u,
        0x00A0 | 0x1680 | 0x2000..=0x200F | 0x2028..=0x202F | 0x205F..=0x2064 | 0x2066..=0x206F
        | 0x3000 | 0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0xFEFF
        | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF | 0xE000..=0xF8FF | 0x110BD | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F | 0xF0000..=0x10FFFF)
}

/// Go's `strconv.Quote` (what `%q` prints for a string).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// What Go's `%#v` prints for a `[]string` (`None` is a nil slice).
pub fn go_string_slice(values: Option<&[String]>) -> String {
    match values {
        None => "[]string(nil)".to_string(),
        Some(vs) => {
            let quoted: Vec<String> = vs.iter().map(|v| go_quote(v)).collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
    }
}

/// How a field error shows a JSON bad value: strings quoted as Go's `%q`, numbers and booleans
/// plainly, arrays of strings like Go's `[]string{...}`, anything else as compact JSON.
pub fn render_bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let strs: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect();
            go_string_slice(Some(&strs))
        }
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------------------------
// Field errors (field/errors.go)
// ---------------------------------------------------------------------------------------------

/// The kinds of field error (Go's `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    TooLong,
    Forbidden,
    TooMany,
}

impl ErrorKind {
    /// The machine-readable reason, used as `StatusCause.reason` (Go's `ErrorType` value).
    pub fn reason(&self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooMany => "FieldValueTooMany",
        }
    }

    /// The human-readable name (Go's `ErrorType.String()`), e.g. "Invalid value".
    pub fn description(&self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::TooLong => "Too long",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooMany => "Too many",
        }
    }
}

/// A field-level validation error (Go's `field.Error`).
///
/// `message` is Go's `Detail`; `bad_value` is the already-rendered bad value (`None` when it
/// is omitted). Build with the constructors, which render values as Go does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    pub kind: ErrorKind,
    /// The bad value as Go prints it (e.g. `"Bad_Name"` with the quotes), or `None`.
    pub bad_value: Option<String>,
    /// The detail (may be empty).
    pub message: String,
}

impl FieldError {
    /// `field.Required`.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Required,
            bad_value: None,
            message: detail.into(),
        }
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Forbidden,
            bad_value: None,
            message: detail.into(),
        }
    }

    /// `field.Invalid` with a string bad value.
    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Invalid,
            bad_value: Some(go_quote(value)),
            message: detail.into(),
        }
    }

    /// `field.Invalid` with a JSON bad value (rendered by [`render_bad_value`]).
    pub fn invalid_value(
        field: impl Into<String>,
        value: &Value,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Invalid,
            bad_value: Some(render_bad_value(value)),
            message: detail.into(),
        }
    }

    /// `field.Invalid` with a bad value already rendered (`None` omits it).
    pub fn invalid_rendered(
        field: impl Into<String>,
        rendered: Option<String>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Invalid,
            bad_value: rendered,
            message: detail.into(),
        }
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: impl Into<String>, value: &Value) -> FieldError {
        FieldError {
            field: field.into(),
            kind: ErrorKind::Duplicate,
            bad_value: Some(render_bad_value(value)),
            message: String::new(),
        }
    }

    /// `field.NotSupported`: detail lists the supported values, quoted.
    pub fn not_supported(
        field: impl Into<String>,
        value: &Value,
        valid_values: &[&str],
    ) -> FieldError {
        let message = if valid_values.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid_values.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            field: field.into(),
            kind: ErrorKind::NotSupported,
            bad_value: Some(render_bad_value(value)),
            message,
        }
    }

    /// `field.TooLong`: "may not be more than N bytes" (`None`: "value is too long").
    pub fn too_long(field: impl Into<String>, max_length: Option<usize>) -> FieldError {
        let message = match max_length {
            Some(n) => format!("may not be more than {n} bytes"),
            None => "value is too long".to_string(),
        };
        FieldError {
            field: field.into(),
            kind: ErrorKind::TooLong,
            bad_value: Some("\"<value omitted>\"".to_string()),
            message,
        }
    }

    /// `field.TooMany`: "must have at most N items" (`None`: "has too many items").
    pub fn too_many(
        field: impl Into<String>,
        actual: Option<usize>,
        max: Option<usize>,
    ) -> FieldError {
        let message = match max {
            Some(n) => format!("must have at most {n} items"),
            None => "has too many items".to_string(),
        };
        FieldError {
            field: field.into(),
            kind: ErrorKind::TooMany,
            bad_value: actual.map(|a| a.to_string()),
            message,
        }
    }

    /// Go's `ErrorBody()`: the error without the field path, e.g.
    /// `Invalid value: "Bad_Name": a lowercase RFC 1123 ...`. This is `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = String::from(self.kind.description());
        match self.kind {
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong => {}
            _ => {
                if let Some(v) = &self.bad_value {
                    s.push_str(": ");
                    s.push_str(v);
                }
            }
        }
        if !self.message.is_empty() {
            s.push_str(": ");
            s.push_str(&self.message);
        }
        s
    }
}

impl fmt::Display for FieldError {
    /// Go's `Error()`: `<field>: <body>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Go's `ErrorList.ToAggregate().Error()`: duplicates (by message) dropped, a single error as
/// is, several as `[err1, err2]`; empty for no errors.
pub fn aggregate_errors(errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// The message of kube's 422 `Invalid` status (`errors.NewInvalid`), e.g.
/// `ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": ...`.
/// `kind` is the qualified kind as Go's `GroupKind.String()` prints it (`ConfigMap`,
/// `Deployment.apps`).
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    if errors.is_empty() {
        format!("{kind} {} is invalid", go_quote(name))
    } else {
        format!(
            "{kind} {} is invalid: {}",
            go_quote(name),
            aggregate_errors(errors)
        )
    }
}

// ---------------------------------------------------------------------------------------------
// ObjectMeta validation (api/validation/objectmeta.go)
// ---------------------------------------------------------------------------------------------

/// `maskTrailingDash`: for generateName, replaces a trailing dash so the prefix can be checked
/// with the name validator (kept faithful to Go, which drops two bytes and appends "a").
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        let cut = name.len() - 2;
        let head = match name.get(..cut) {
            Some(h) => h.to_string(),
            None => {
                String::from_utf8_lossy(name.as_bytes().get(..cut).unwrap_or_default()).into_owned()
            }
        };
        return head + "a";
    }
    name.to_string()
}

/// A string field of `meta`: `Ok(None)` when absent or null, `Err` when of another type.
fn string_field<'a>(meta: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, &'a Value> {
    match meta.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(other),
    }
}

/// Validates a `map[string]string` of labels (`ValidateLabels`).
pub fn validate_labels(labels: &Map<String, Value>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(field, k, msg));
        }
        match v {
            Value::String(s) => {
                for msg in is_valid_label_value(s) {
                    errs.push(FieldError::invalid(field, s, msg));
                }
            }
            other => errs.push(FieldError::invalid_value(field, other, "must be a string")),
        }
    }
    errs
}

/// Validates a `map[string]string` of annotations (`ValidateAnnotations`): keys are qualified
/// names (case-insensitive), total size at most 256 KiB.
pub fn validate_annotations(annotations: &Map<String, Value>, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total: usize = 0;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(field, k, msg));
        }
        total = total.saturating_add(k.len());
        match v {
            Value::String(s) => total = total.saturating_add(s.len()),
            other => errs.push(FieldError::invalid_value(field, other, "must be a string")),
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_B {
        errs.push(FieldError::too_long(
            field,
            Some(TOTAL_ANNOTATION_SIZE_LIMIT_B),
        ));
    }
    errs
}

/// Validates a map-valued field of metadata (labels or annotations) that may be absent.
fn validate_map_field(
    meta: &Map<String, Value>,
    key: &str,
    field: &str,
    f: fn(&Map<String, Value>, &str) -> Vec<FieldError>,
) -> Vec<FieldError> {
    match meta.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(m)) => f(m, field),
        Some(other) => vec![FieldError::invalid_value(field, other, "must be an object")],
    }
}

/// `schema.ParseGroupVersion` + `FromAPIVersionAndKind`: (group, version), both empty when the
/// apiVersion does not parse.
fn parse_group_version(api_version: &str) -> (&str, &str) {
    if api_version.is_empty() || api_version == "/" {
        return ("", "");
    }
    match api_version.matches('/').count() {
        0 => ("", api_version),
        1 => api_version.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    }
}

fn validate_owner_references(refs: &Value, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let list = match refs {
        Value::Null => return errs,
        Value::Array(list) => list,
        other => {
            errs.push(FieldError::invalid_value(field, other, "must be an array"));
            return errs;
        }
    };
    let mut first_controller: Option<String> = None;
    for r in list {
        let Some(obj) = r.as_object() else {
            errs.push(FieldError::invalid_value(field, r, "must be an object"));
            continue;
        };
        let get = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
        let api_version = get("apiVersion");
        let kind = get("kind");
        let name = get("name");
        let uid = get("uid");
        let (group, version) = parse_group_version(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{field}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                format!("{field}.kind"),
                kind,
                "kind must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                format!("{field}.name"),
                name,
                "name must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                format!("{field}.uid"),
                uid,
                "uid must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid_value(
                field,
                r,
                format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if obj.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid_value(
                    field,
                    refs,
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

fn validate_finalizers(finalizers: &Value, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let list = match finalizers {
        Value::Null => return errs,
        Value::Array(list) => list,
        other => {
            errs.push(FieldError::invalid_value(field, other, "must be an array"));
            return errs;
        }
    };
    let mut orphan = false;
    let mut foreground = false;
    for f in list {
        let Some(s) = f.as_str() else {
            errs.push(FieldError::invalid_value(field, f, "must be a string"));
            continue;
        };
        for msg in is_qualified_name(s) {
            errs.push(FieldError::invalid(field, s, msg));
        }
        orphan |= s == "orphan";
        foreground |= s == "foregroundDeletion";
    }
    if orphan && foreground {
        errs.push(FieldError::invalid_value(
            field,
            finalizers,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// `ValidateObjectMetaAccessor` on creation, for an object's `metadata` (as JSON):
///
/// - `metadata.generateName` must pass `name_validator` (with a trailing dash masked);
/// - `metadata.name` is required (`name or generateName is required`; name generation is
///   expected to have happened) and must pass `name_validator`;
/// - `metadata.namespace` is required and a DNS-1123 label for namespaced resources, and
///   forbidden (`not allowed on this type`) for cluster-scoped ones;
/// - `metadata.generation` must not be negative;
/// - `metadata.labels` keys are qualified names and values label values;
/// - `metadata.annotations` keys are qualified names, total size at most 262144 bytes;
/// - `metadata.ownerReferences` and `metadata.finalizers` as in kube.
///
/// Values of the wrong JSON type are reported as invalid (kube rejects them when decoding).
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_validator: fn(&str) -> Vec<String>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty = Map::new();
    let meta = match meta {
        Value::Object(m) => m,
        Value::Null => &empty,
        other => {
            errs.push(FieldError::invalid_value(
                "metadata",
                other,
                "must be an object",
            ));
            &empty
        }
    };

    match string_field(meta, "generateName") {
        Ok(Some(g)) if !g.is_empty() => {
            for msg in name_validator(&mask_trailing_dash(g)) {
                errs.push(FieldError::invalid("metadata.generateName", g, msg));
            }
        }
        Ok(_) => {}
        Err(v) => errs.push(FieldError::invalid_value(
            "metadata.generateName",
            v,
            "must be a string",
        )),
    }

    match string_field(meta, "name") {
        Ok(Some(n)) if !n.is_empty() => {
            for msg in name_validator(n) {
                errs.push(FieldError::invalid("metadata.name", n, msg));
            }
        }
        Ok(_) => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Err(v) => errs.push(FieldError::invalid_value(
            "metadata.name",
            v,
            "must be a string",
        )),
    }

    match string_field(meta, "namespace") {
        Ok(ns) => {
            let ns = ns.unwrap_or("");
            if namespaced {
                if ns.is_empty() {
                    errs.push(FieldError::required("metadata.namespace", ""));
                } else {
                    for msg in is_dns1123_label(ns) {
                        errs.push(FieldError::invalid("metadata.namespace", ns, msg));
                    }
                }
            } else if !ns.is_empty() {
                errs.push(FieldError::forbidden(
                    "metadata.namespace",
                    "not allowed on this type",
                ));
            }
        }
        Err(v) => errs.push(FieldError::invalid_value(
            "metadata.namespace",
            v,
            "must be a string",
        )),
    }

    if let Some(g) = meta
        .get("generation")
        .filter(|g| g.as_i64().is_some_and(|n| n < 0))
    {
        errs.push(FieldError::invalid_value(
            "metadata.generation",
            g,
            "must be greater than or equal to 0",
        ));
    }

    errs.extend(validate_map_field(
        meta,
        "labels",
        "metadata.labels",
        validate_labels,
    ));
    errs.extend(validate_map_field(
        meta,
        "annotations",
        "metadata.annotations",
        validate_annotations,
    ));
    if let Some(refs) = meta.get("ownerReferences") {
        errs.extend(validate_owner_references(refs, "metadata.ownerReferences"));
    }
    if let Some(f) = meta.get("finalizers") {
        errs.extend(validate_finalizers(f, "metadata.finalizers"));
    }
    errs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn dns1123_subdomain() {
        for good in [
            "a",
            "ab",
            "abc",
            "a1",
            "a-1",
            "a--1--2--b",
            "0",
            "01",
            "a.a",
            "a.b.c",
            "example.com",
            "1.2.3.4",
            "a0.b1",
            &"a".repeat(253),
        ] {
            assert!(is_dns1123_subdomain(good).is_empty(), "{good}");
        }
        for bad in [
            "", "A", "ABC", "aBc", "A1", "a_b", "a@b", "-", "-1", "1-", "a..b", ".a", "a.", "a b",
            "a-.b", "a.-b", "é",
        ] {
            assert_eq!(is_dns1123_subdomain(bad), vec![SUBDOMAIN_MSG], "{bad:?}");
        }
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert_eq!(
            is_dns1123_subdomain(&format!("{}-", "a".repeat(254))),
            vec![
                "must be no more than 253 characters".to_string(),
                SUBDOMAIN_MSG.to_string()
            ]
        );
    }

    #[test]
    fn dns1123_label() {
        for good in ["a", "ab", "a-1", "0", "1-a", "my-name", &"a".repeat(63)] {
            assert!(is_dns1123_label(good).is_empty(), "{good}");
        }
        for bad in ["", "A", "-a", "a-", "a_b", "a b", "Bad_Name"] {
            assert_eq!(is_dns1123_label(bad), vec![LABEL_MSG], "{bad:?}");
        }
        assert_eq!(is_dns1123_label("a.b"), vec!["must not contain dots"]);
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn dns1035_label() {
        for good in ["a", "ab", "a-1", "my-name", "abc-123", &"a".repeat(63)] {
            assert!(is_dns1035_label(good).is_empty(), "{good}");
        }
        for bad in ["", "0", "1a", "-a", "a-", "A", "a.b", "a_b"] {
            assert_eq!(is_dns1035_label(bad), vec![DNS1035_MSG], "{bad:?}");
        }
        assert_eq!(
            is_dns1035_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn qualified_name() {
        for good in [
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "1234",
            "simple/simple",
            "now-with-dashes/simple",
            "now-with-dashes/now-with-dashes",
            "now.with.dots/now-with-dashes",
            "now-with.dashes-and.dots/now-with-dashes",
            "now.with.dots/now.with.dots",
            "now-with.dashes-and.dots/now.with.dots",
            "UpperCase123",
            "app.kubernetes.io/name",
            &format!("{}/a", "a".repeat(253)),
            &"a".repeat(63),
        ] {
            assert!(is_qualified_name(good).is_empty(), "{good}");
        }
        for bad in [
            "nospecialchars%^=@",
            "cantendwithadash-",
            "-cantstartwithadash-",
            "only/one/slash",
            "Example.com/abc",
            "example_com/abc",
            "example.com/",
            "/simple",
            "",
            &"a".repeat(64),
            &format!("{}/a", "a".repeat(254)),
        ] {
            assert!(!is_qualified_name(bad).is_empty(), "{bad}");
        }
        assert_eq!(is_qualified_name("a$b"), vec![NAME_PART_MSG]);
        assert_eq!(
            is_qualified_name(""),
            vec![
                "name part must be non-empty".to_string(),
                NAME_PART_MSG.to_string()
            ]
        );
        assert_eq!(
            is_qualified_name(&"a".repeat(64)),
            vec!["name part must be no more than 63 characters"]
        );
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(
            is_qualified_name("Example.com/a"),
            vec![format!("prefix part {SUBDOMAIN_MSG}")]
        );
        assert_eq!(
            is_qualified_name("a/b/c"),
            vec![
                "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            ]
        );
    }

    #[test]
    fn label_value() {
        for good in [
            "",
            "simple",
            "now-with-dashes",
            "1-starts-with-num",
            "end-with-num-1",
            "1234",
            "A",
            "my_value",
            "a.b",
            &"a".repeat(63),
        ] {
            assert!(is_valid_label_value(good).is_empty(), "{good}");
        }
        for bad in [
            "nospecialchars%^=@",
            "Tama-nui-te-rā.is.Māori.sun",
            "\\backslashes\\are\\bad",
            "-starts-with-dash",
            "ends-with-dash-",
            ".starts.with.dot",
            "ends.with.dot.",
            "a/b",
        ] {
            assert_eq!(is_valid_label_value(bad), vec![LABEL_VALUE_MSG], "{bad}");
        }
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters"]
        );
    }

    #[test]
    fn config_map_key() {
        for good in ["a", "key.name", "KEY_NAME", "key-name", ".dotfile", "a..b"] {
            assert!(is_config_map_key(good).is_empty(), "{good}");
        }
        assert_eq!(is_config_map_key("."), vec!["must not be '.'"]);
        assert_eq!(is_config_map_key(".."), vec!["must not be '..'"]);
        assert_eq!(is_config_map_key("..a"), vec!["must not start with '..'"]);
        assert_eq!(
            is_config_map_key("a/b"),
            vec![
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
            ]
        );
        assert_eq!(is_config_map_key("").len(), 1);
    }

    #[test]
    fn regex_error_format() {
        assert_eq!(
            regex_error("m", "f", &[]),
            "m (regex used for validation is 'f')"
        );
        assert_eq!(
            regex_error("m", "f", &["a"]),
            "m (e.g. 'a', regex used for validation is 'f')"
        );
        assert_eq!(
            regex_error("m", "f", &["a", "b"]),
            "m (e.g. 'a',  or 'b', regex used for validation is 'f')"
        );
        assert_eq!(
            inclusive_range_error(1, 65535),
            "must be between 1 and 65535, inclusive"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(go_quote("abc"), "\"abc\"");
        assert_eq!(go_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(
            go_quote("\n\t\r\u{7}\u{8}\u{b}\u{c}"),
            "\"\\n\\t\\r\\a\\b\\v\\f\""
        );
        assert_eq!(go_quote("\u{0}\u{1f}\u{7f}"), "\"\\x00\\x1f\\x7f\"");
        assert_eq!(
            go_quote("\u{80}\u{a0}\u{feff}"),
            "\"\\u0080\\u00a0\\ufeff\""
        );
        assert_eq!(go_quote("\u{f0000}"), "\"\\U000f0000\"");
        assert_eq!(go_quote("rā 日本 😀"), "\"rā 日本 😀\"");
        assert_eq!(go_string_slice(None), "[]string(nil)");
        assert_eq!(
            go_string_slice(Some(&["a".to_string(), "b".to_string()])),
            "[]string{\"a\", \"b\"}"
        );
        assert_eq!(go_string_slice(Some(&[])), "[]string{}");
        assert_eq!(render_bad_value(&json!(-1)), "-1");
        assert_eq!(render_bad_value(&json!(true)), "true");
        assert_eq!(render_bad_value(&json!(null)), "null");
        assert_eq!(render_bad_value(&json!("x")), "\"x\"");
        assert_eq!(render_bad_value(&json!(["x"])), "[]string{\"x\"}");
        assert_eq!(render_bad_value(&json!({"a": 1})), "{\"a\":1}");
    }

    #[test]
    fn error_kind_reasons() {
        let all = [
            (ErrorKind::Required, "FieldValueRequired", "Required value"),
            (ErrorKind::Invalid, "FieldValueInvalid", "Invalid value"),
            (
                ErrorKind::Duplicate,
                "FieldValueDuplicate",
                "Duplicate value",
            ),
            (
                ErrorKind::NotSupported,
                "FieldValueNotSupported",
                "Unsupported value",
            ),
            (ErrorKind::TooLong, "FieldValueTooLong", "Too long"),
            (ErrorKind::Forbidden, "FieldValueForbidden", "Forbidden"),
            (ErrorKind::TooMany, "FieldValueTooMany", "Too many"),
        ];
        for (k, reason, desc) in all {
            assert_eq!(k.reason(), reason);
            assert_eq!(k.description(), desc);
        }
    }

    #[test]
    fn field_error_strings() {
        assert_eq!(
            FieldError::required("metadata.name", "name or generateName is required").to_string(),
            "metadata.name: Required value: name or generateName is required"
        );
        assert_eq!(
            FieldError::required("metadata.namespace", "").to_string(),
            "metadata.namespace: Required value"
        );
        assert_eq!(
            FieldError::forbidden("metadata.namespace", "not allowed on this type").to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert_eq!(
            FieldError::invalid("metadata.name", "Bad_Name", SUBDOMAIN_MSG).to_string(),
            format!("metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}")
        );
        let e = FieldError::invalid("metadata.name", "Bad_Name", "x");
        assert_eq!(e.body(), "Invalid value: \"Bad_Name\": x");
        assert_eq!(e.kind.reason(), "FieldValueInvalid");
        assert_eq!(
            FieldError::invalid_rendered("f", None, "d").to_string(),
            "f: Invalid value: d"
        );
        assert_eq!(
            FieldError::too_long("metadata.annotations", Some(262144)).to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_long("f", None).to_string(),
            "f: Too long: value is too long"
        );
        assert_eq!(
            FieldError::too_many("spec.items", Some(5), Some(3)).to_string(),
            "spec.items: Too many: 5: must have at most 3 items"
        );
        assert_eq!(
            FieldError::too_many("spec.items", None, None).to_string(),
            "spec.items: Too many: has too many items"
        );
        assert_eq!(
            FieldError::duplicate("spec.ports[1].name", &json!("http")).to_string(),
            "spec.ports[1].name: Duplicate value: \"http\""
        );
        assert_eq!(
            FieldError::not_supported("spec.type", &json!("Foo"), &["ClusterIP", "NodePort"])
                .to_string(),
            "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
        );
        assert_eq!(
            FieldError::not_supported("spec.type", &json!("Foo"), &[]).to_string(),
            "spec.type: Unsupported value: \"Foo\""
        );
    }

    #[test]
    fn invalid_messages() {
        let e1 = FieldError::invalid("metadata.name", "Bad_Name", SUBDOMAIN_MSG);
        assert_eq!(
            invalid_message("ConfigMap", "Bad_Name", std::slice::from_ref(&e1)),
            format!(
                "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
            )
        );
        let e2 = FieldError::required("metadata.namespace", "");
        assert_eq!(
            invalid_message(
                "Deployment.apps",
                "x",
                &[e1.clone(), e2.clone(), e1.clone()]
            ),
            format!(
                "Deployment.apps \"x\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}, metadata.namespace: Required value]"
            )
        );
        // Duplicates collapse to a single, unbracketed error.
        assert_eq!(
            invalid_message("ConfigMap", "a", &[e2.clone(), e2]),
            "ConfigMap \"a\" is invalid: metadata.namespace: Required value"
        );
        assert_eq!(
            invalid_message("ConfigMap", "a", &[]),
            "ConfigMap \"a\" is invalid"
        );
        assert_eq!(aggregate_errors(&[]), "");
    }

    #[test]
    fn object_meta_valid() {
        let meta = json!({
            "name": "my-config",
            "namespace": "default",
            "labels": {"app": "web", "app.kubernetes.io/name": "x", "empty": ""},
            "annotations": {"Example.com/Foo": "anything goes here: !@#"},
            "finalizers": ["kubernetes.io/pvc-protection"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "123", "controller": true}],
            "generation": 3
        });
        assert!(validate_object_meta(&meta, true, is_dns1123_subdomain).is_empty());
        let meta = json!({"name": "node-1"});
        assert!(validate_object_meta(&meta, false, is_dns1123_subdomain).is_empty());
        let meta = json!({"generateName": "web-", "name": "web-x7k2p", "namespace": "ns"});
        assert!(validate_object_meta(&meta, true, is_dns1123_label).is_empty());
    }

    #[test]
    fn object_meta_name() {
        let errs = validate_object_meta(
            &json!({"name": "Bad_Name", "namespace": "default"}),
            true,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(errs[0].kind, ErrorKind::Invalid);
        assert_eq!(
            invalid_message("ConfigMap", "Bad_Name", &errs),
            format!(
                "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
            )
        );

        let errs =
            validate_object_meta(&json!({"namespace": "default"}), true, is_dns1123_subdomain);
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["metadata.name: Required value: name or generateName is required"]
        );
        assert_eq!(errs[0].kind.reason(), "FieldValueRequired");

        // Missing metadata entirely.
        let errs = validate_object_meta(&Value::Null, true, is_dns1123_subdomain);
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec![
                "metadata.name: Required value: name or generateName is required",
                "metadata.namespace: Required value"
            ]
        );

        // generateName alone still needs the generated name.
        let errs = validate_object_meta(
            &json!({"generateName": "Bad-", "namespace": "d"}),
            true,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec![
                format!("metadata.generateName: Invalid value: \"Bad-\": {SUBDOMAIN_MSG}"),
                "metadata.name: Required value: name or generateName is required".to_string()
            ]
        );

        // Service names (DNS-1035).
        let errs = validate_object_meta(
            &json!({"name": "1abc", "namespace": "d"}),
            true,
            is_dns1035_label,
        );
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.name: Invalid value: \"1abc\": {DNS1035_MSG}")
        );

        // Too-long name: both messages, both reported.
        let long = "a".repeat(254);
        let errs = validate_object_meta(
            &json!({"name": long, "namespace": "d"}),
            true,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "must be no more than 253 characters");
        let errs = validate_object_meta(&json!({"name": 5}), false, is_dns1123_subdomain);
        assert_eq!(errs[0].field, "metadata.name");
        assert_eq!(errs[0].kind, ErrorKind::Invalid);
    }

    #[test]
    fn object_meta_namespace() {
        let errs = validate_object_meta(&json!({"name": "a"}), true, is_dns1123_subdomain);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].to_string(), "metadata.namespace: Required value");

        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "default"}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
        assert_eq!(errs[0].kind.reason(), "FieldValueForbidden");

        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "Bad.NS"}),
            true,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs[0].to_string(),
            format!("metadata.namespace: Invalid value: \"Bad.NS\": {LABEL_MSG}")
        );
        let errs = validate_object_meta(
            &json!({"name": "a", "namespace": "a.b"}),
            true,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Invalid value: \"a.b\": must not contain dots"
        );
    }

    #[test]
    fn object_meta_labels_annotations() {
        let errs = validate_object_meta(
            &json!({
                "name": "a",
                "labels": {"bad key": "ok", "good": "bad value!"},
            }),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec![
                format!("metadata.labels: Invalid value: \"bad key\": {NAME_PART_MSG}"),
                format!("metadata.labels: Invalid value: \"bad value!\": {LABEL_VALUE_MSG}"),
            ]
        );

        let errs = validate_object_meta(
            &json!({"name": "a", "annotations": {"a/b/c": "x", "Foo/Bar": "y"}}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "metadata.annotations");
        assert_eq!(errs[0].bad_value.as_deref(), Some("\"a/b/c\""));

        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B);
        let errs = validate_object_meta(
            &json!({"name": "a", "annotations": {"k": big}}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        assert_eq!(errs[0].kind.reason(), "FieldValueTooLong");
        let just_fits = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1);
        assert!(
            validate_object_meta(
                &json!({"name": "a", "annotations": {"k": just_fits}}),
                false,
                is_dns1123_subdomain,
            )
            .is_empty()
        );

        let errs = validate_object_meta(
            &json!({"name": "a", "labels": {"a": 1}, "annotations": "x"}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "metadata.labels");
        assert_eq!(errs[1].field, "metadata.annotations");
    }

    #[test]
    fn object_meta_misc() {
        let errs = validate_object_meta(
            &json!({"name": "a", "generation": -1}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0"
        );

        let errs = validate_object_meta(
            &json!({"name": "a", "finalizers": ["a/b/c", "orphan", "foregroundDeletion"]}),
            false,
            is_dns1123_subdomain,
        );
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].field, "metadata.finalizers");
        assert_eq!(
            errs[1].to_string(),
            "metadata.finalizers: Invalid value: []string{\"a/b/c\", \"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
        );

        let errs = validate_object_meta(
            &json!({"name": "a", "ownerReferences": [
                {"apiVersion": "", "kind": "", "name": "", "uid": ""},
                {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1", "controller": true},
                {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "2", "controller": true},
            ]}),
            false,
            is_dns1123_subdomain,
        );
        let strs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            strs[..4],
            [
                "metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty",
                "metadata.ownerReferences.kind: Invalid value: \"\": kind must not be empty",
                "metadata.ownerReferences.name: Invalid value: \"\": name must not be empty",
                "metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty",
            ]
        );
        assert!(strs[4].ends_with(": /v1, Kind=Event is disallowed from being an owner"));
        assert!(strs[5].ends_with(
            ": Only one reference can have Controller set to true. Found \"true\" in references for Event/e and Pod/p"
        ));
        assert_eq!(strs.len(), 6);

        let errs = validate_object_meta(&json!("nope"), false, is_dns1123_subdomain);
        assert_eq!(errs[0].field, "metadata");
    }

    #[test]
    fn mask_trailing_dash_like_go() {
        assert_eq!(mask_trailing_dash("abc-"), "aba");
        assert_eq!(mask_trailing_dash("-"), "-");
        assert_eq!(mask_trailing_dash("ab"), "ab");
        assert_eq!(mask_trailing_dash("a-"), "a");
        // A multi-byte character before the dash does not panic.
        let masked = mask_trailing_dash("aé-");
        assert!(!is_dns1123_subdomain(&masked).is_empty());
        assert_eq!(parse_group_version("apps/v1"), ("apps", "v1"));
        assert_eq!(parse_group_version("v1"), ("", "v1"));
        assert_eq!(parse_group_version("a/b/c"), ("", ""));
        assert_eq!(parse_group_version("/"), ("", ""));
    }
}
