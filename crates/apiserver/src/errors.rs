//! API errors, answered as `metav1.Status` with kube-apiserver's codes, reasons and messages.

use rkube_store::StoreError;
use serde_json::{Value, json};

/// An error the API answers with a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `StatusReason`.
    pub reason: &'static str,
    /// What is wrong, in kube-apiserver's words.
    pub message: String,
    /// `StatusDetails`, when there are any.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 for an object: `configmaps "x" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        let qualified = qualified(group, plural);
        Self::new(404, "NotFound", format!("{qualified} \"{name}\" not found"))
            .with_details(details(group, plural, name))
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 AlreadyExists.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        let qualified = qualified(group, plural);
        Self::new(
            409,
            "AlreadyExists",
            format!("{qualified} \"{name}\" already exists"),
        )
        .with_details(details(group, plural, name))
    }

    /// 409 Conflict on a stale write.
    pub fn conflict(group: &str, plural: &str, name: &str, why: &str) -> Self {
        let qualified = qualified(group, plural);
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {qualified} \"{name}\": {why}"),
        )
        .with_details(details(group, plural, name))
    }

    /// The message of a stale update, as kube-apiserver words it.
    pub const MODIFIED: &'static str = "the object has been modified; please apply your changes to the latest version and try again";

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 422 Invalid, with one cause per field error.
    pub fn invalid(
        group: &str,
        kind: &str,
        name: &str,
        message: String,
        causes: Vec<Value>,
    ) -> Self {
        Self::new(422, "Invalid", message).with_details(json!({
            "name": name,
            "group": group,
            "kind": kind,
            "causes": causes,
        }))
    }

    /// 422 for an object of `kind` in `group` named `name` that failed validation with
    /// `errors` (kube's `NewInvalid`: every error a cause, all of them in the message).
    pub fn from_field_errors(
        group: &str,
        kind: &str,
        name: &str,
        errors: &[rkube_api::validation::FieldError],
    ) -> Self {
        let causes = errors
            .iter()
            .map(|e| json!({"reason": e.kind.reason(), "message": e.body(), "field": e.field}))
            .collect();
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        Self::invalid(
            group,
            kind,
            name,
            rkube_api::validation::invalid_message(&qualified, name, errors),
            causes,
        )
    }

    /// 422 for an options object (`DeleteOptions.meta.k8s.io "" is invalid: ...`), one field.
    pub fn invalid_simple(kind: &str, field: &str, detail: &str) -> Self {
        Self::invalid(
            "meta.k8s.io",
            kind,
            "",
            format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
            vec![json!({"reason": "FieldValueInvalid", "message": detail, "field": field})],
        )
    }

    /// 429 TooManyRequests with one cause (an eviction a disruption budget refuses).
    pub fn too_many_requests(message: &str, cause: &str) -> Self {
        Self::new(429, "TooManyRequests", message).with_details(json!({
            "causes": [{"reason": "DisruptionBudget", "message": cause}],
        }))
    }

    /// 403 Forbidden.
    pub fn forbidden(group: &str, plural: &str, name: &str, message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message).with_details(details(group, plural, name))
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_allowed(method: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({method})"),
        )
        .with_details(json!({}))
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!(
                "the server was unable to respond with a content type that the client supports ({accept})"
            ),
        )
    }

    /// 406 NotAcceptable, saying why.
    pub fn not_acceptable_because(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 413 RequestEntityTooLarge.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 UnsupportedMediaType.
    pub fn unsupported_media(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf ({content_type})"
            ),
        )
    }

    /// 410 Gone (reason Expired) for a resource version that was compacted.
    pub fn expired(requested: i64, oldest: i64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 500 InternalError.
    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message}]}))
    }

    /// An error answer of a kubelet, relayed as kube-apiserver's `NewGenericServerResponse`
    /// does: the reason by the code, the kubelet's text as the message.
    pub fn from_backend(code: u16, body: &str) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            422 => "Invalid",
            429 => "TooManyRequests",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "Unknown",
        };
        let body = body.trim();
        let message = if body.is_empty() {
            format!(
                "the server responded with the status code {code} but did not return more information"
            )
        } else {
            body.to_owned()
        };
        Self::new(code, reason, message)
    }

    /// 503 ServiceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// A patch that cannot be applied, with the code kube-apiserver answers.
    pub fn from_patch(err: rkube_api::patch::PatchError) -> Self {
        match err.code {
            413 => Self::new(413, "RequestEntityTooLarge", err.message),
            422 => Self::new(422, "Invalid", err.message),
            500 => Self::internal(err.message),
            _ => Self::bad_request(err.message),
        }
    }

    /// A store error on one object.
    pub fn from_store(err: StoreError, group: &str, plural: &str, name: &str) -> Self {
        match err {
            StoreError::NotFound { .. } => Self::not_found(group, plural, name),
            StoreError::AlreadyExists { .. } => Self::already_exists(group, plural, name),
            StoreError::Conflict { .. } => Self::conflict(group, plural, name, Self::MODIFIED),
            StoreError::Compacted {
                requested,
                compacted,
            } => Self::expired(requested, compacted),
            StoreError::FutureRevision { requested, current } => Self::new(
                504,
                "Timeout",
                format!("Too large resource version: {requested}, current: {current}"),
            )
            .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1})),
            StoreError::ValueTooLarge { .. } => Self::too_large(rkube_store::MAX_VALUE_BYTES),
            StoreError::Unavailable { reason } => Self::unavailable(reason),
            other => Self::internal(other.to_string()),
        }
    }

    /// The `Status` object.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        Self::from_store(err, "", "", "")
    }
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_owned()
    } else {
        format!("{plural}.{group}")
    }
}

fn details(group: &str, plural: &str, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": plural});
    if !group.is_empty() {
        d["group"] = json!(group);
    }
    d
}
