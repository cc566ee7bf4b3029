//! The swagger 2.0 document as gnostic's `openapi.v2.Document` protobuf
//! (github.com/google/gnostic-models `openapiv2/OpenAPIv2.proto`): what client-go's
//! `OpenAPISchema()` asks `/openapi/v2` for and decodes, whatever it is sent.
//!
//! kube-openapi makes it with gnostic's `ParseDocument` and `proto.Marshal`; this is the same
//! mapping, for the parts of swagger 2.0 rkube's document uses. Values gnostic keeps as
//! `Any` (extensions, defaults, enums, examples) carry their YAML text; JSON is YAML, and
//! client-go reads them with a YAML decoder.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint((u64::from(field) << 3) | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, data: &[u8]) {
        self.key(field, 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
    }

    /// A proto3 string: omitted when empty.
    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn string_of(&mut self, field: u32, v: &Value) {
        if let Some(s) = v.as_str() {
            self.string(field, s);
        }
    }

    /// Repeated strings: every element, empty or not.
    fn strings(&mut self, field: u32, v: &Value) {
        match v {
            Value::Array(items) => {
                for s in items.iter().filter_map(Value::as_str) {
                    self.bytes(field, s.as_bytes());
                }
            }
            Value::String(s) => self.bytes(field, s.as_bytes()),
            _ => {}
        }
    }

    fn boolean(&mut self, field: u32, v: &Value) {
        if v.as_bool() == Some(true) {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: &Value) {
        if let Some(n) = v.as_i64().filter(|n| *n != 0) {
            self.key(field, 0);
            self.varint(n as u64);
        }
    }

    fn double(&mut self, field: u32, v: &Value) {
        if let Some(n) = v.as_f64().filter(|n| *n != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&n.to_le_bytes());
        }
    }

    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }
}

/// gnostic's `Any`: the value's YAML text.
fn any(v: &Value) -> Message {
    let mut m = Message::default();
    let mut text = serde_json::to_string(v).unwrap_or_default();
    text.push('\n');
    m.string(2, &text);
    m
}

/// `repeated NamedAny vendor_extension`: the `x-` keys of an object.
fn vendor_extensions(m: &mut Message, field: u32, object: &Map<String, Value>) {
    for (name, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
        let mut named = Message::default();
        named.string(1, name);
        named.message(2, any(value));
        m.message(field, named);
    }
}

/// Encodes a swagger 2.0 document.
pub fn encode_document(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    let Some(object) = doc.as_object() else {
        return m.0;
    };
    m.string_of(1, &doc["swagger"]);
    let info = &doc["info"];
    if let Some(object) = info.as_object() {
        let mut i = Message::default();
        i.string_of(1, &info["title"]);
        i.string_of(2, &info["version"]);
        i.string_of(3, &info["description"]);
        vendor_extensions(&mut i, 7, object);
        m.message(2, i);
    }
    m.string_of(3, &doc["host"]);
    m.string_of(4, &doc["basePath"]);
    m.strings(5, &doc["schemes"]);
    m.strings(6, &doc["consumes"]);
    m.strings(7, &doc["produces"]);
    if let Some(paths) = doc["paths"].as_object() {
        let mut p = Message::default();
        vendor_extensions(&mut p, 1, paths);
        for (path, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let mut named = Message::default();
            named.string(1, path);
            named.message(2, path_item(item));
            p.message(2, named);
        }
        m.message(8, p);
    }
    if let Some(definitions) = doc["definitions"].as_object() {
        let mut d = Message::default();
        for (name, schema) in definitions {
            d.message(1, named_schema(name, schema));
        }
        m.message(9, d);
    }
    for requirement in doc["security"].as_array().into_iter().flatten() {
        let mut r = Message::default();
        for (name, scopes) in requirement.as_object().into_iter().flatten() {
            let mut named = Message::default();
            named.string(1, name);
            let mut list = Message::default();
            list.strings(1, scopes);
            named.message(2, list);
            r.message(1, named);
        }
        m.message(12, r);
    }
    if let Some(definitions) = doc["securityDefinitions"].as_object() {
        let mut s = Message::default();
        for (name, def) in definitions {
            let mut named = Message::default();
            named.string(1, name);
            let mut item = Message::default();
            if def["type"] == "apiKey" {
                let mut key = Message::default();
                key.string_of(1, &def["type"]);
                key.string_of(2, &def["name"]);
                key.string_of(3, &def["in"]);
                key.string_of(4, &def["description"]);
                item.message(2, key);
            } else if def["type"] == "basic" {
                let mut basic = Message::default();
                basic.string_of(1, &def["type"]);
                basic.string_of(2, &def["description"]);
                item.message(1, basic);
            }
            named.message(2, item);
            s.message(1, named);
        }
        m.message(13, s);
    }
    vendor_extensions(&mut m, 16, object);
    m.0
}

fn path_item(item: &Value) -> Message {
    let mut m = Message::default();
    m.string_of(1, &item["$ref"]);
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method) {
            m.message(field, operation(op));
        }
    }
    for p in item["parameters"].as_array().into_iter().flatten() {
        m.message(9, parameters_item(p));
    }
    if let Some(object) = item.as_object() {
        vendor_extensions(&mut m, 10, object);
    }
    m
}

fn operation(op: &Value) -> Message {
    let mut m = Message::default();
    m.strings(1, &op["tags"]);
    m.string_of(2, &op["summary"]);
    m.string_of(3, &op["description"]);
    m.string_of(5, &op["operationId"]);
    m.strings(6, &op["produces"]);
    m.strings(7, &op["consumes"]);
    for p in op["parameters"].as_array().into_iter().flatten() {
        m.message(8, parameters_item(p));
    }
    if let Some(responses) = op["responses"].as_object() {
        let mut r = Message::default();
        for (code, answer) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let mut named = Message::default();
            named.string(1, code);
            let mut value = Message::default();
            if let Some(reference) = answer["$ref"].as_str() {
                let mut j = Message::default();
                j.string(1, reference);
                value.message(2, j);
            } else {
                let mut response = Message::default();
                response.string_of(1, &answer["description"]);
                if let Some(schema) = answer.get("schema") {
                    let mut item = Message::default();
                    item.message(1, encode_schema(schema));
                    response.message(2, item);
                }
                if let Some(object) = answer.as_object() {
                    vendor_extensions(&mut response, 5, object);
                }
                value.message(1, response);
            }
            named.message(2, value);
            r.message(1, named);
        }
        vendor_extensions(&mut r, 2, responses);
        m.message(9, r);
    }
    m.strings(10, &op["schemes"]);
    m.boolean(11, &op["deprecated"]);
    if let Some(object) = op.as_object() {
        vendor_extensions(&mut m, 13, object);
    }
    m
}

/// `ParametersItem`: a reference or a parameter (body, or query/path/header/formData).
fn parameters_item(p: &Value) -> Message {
    let mut m = Message::default();
    if let Some(reference) = p["$ref"].as_str() {
        let mut j = Message::default();
        j.string(1, reference);
        m.message(2, j);
        return m;
    }
    let mut parameter = Message::default();
    if p["in"] == "body" {
        let mut body = Message::default();
        body.string_of(1, &p["description"]);
        body.string_of(2, &p["name"]);
        body.string_of(3, &p["in"]);
        body.boolean(4, &p["required"]);
        if let Some(schema) = p.get("schema") {
            body.message(5, encode_schema(schema));
        }
        if let Some(object) = p.as_object() {
            vendor_extensions(&mut body, 6, object);
        }
        parameter.message(1, body);
    } else {
        // Query and form parameters have `allowEmptyValue` at 5, shifting the rest by one.
        let (oneof, shift) = match p["in"].as_str() {
            Some("header") => (1, 0),
            Some("formData") => (2, 1),
            Some("query") => (3, 1),
            _ => (4, 0),
        };
        let mut sub = Message::default();
        sub.boolean(1, &p["required"]);
        sub.string_of(2, &p["in"]);
        sub.string_of(3, &p["description"]);
        sub.string_of(4, &p["name"]);
        if shift == 1 {
            sub.boolean(5, &p["allowEmptyValue"]);
        }
        sub.string_of(5 + shift, &p["type"]);
        sub.string_of(6 + shift, &p["format"]);
        sub.string_of(8 + shift, &p["collectionFormat"]);
        if let Some(default) = p.get("default") {
            sub.message(9 + shift, any(default));
        }
        sub.boolean(19 + shift, &p["uniqueItems"]);
        for value in p["enum"].as_array().into_iter().flatten() {
            sub.message(20 + shift, any(value));
        }
        if let Some(object) = p.as_object() {
            vendor_extensions(&mut sub, 22 + shift, object);
        }
        let mut non_body = Message::default();
        non_body.message(oneof, sub);
        parameter.message(2, non_body);
    }
    m.message(1, parameter);
    m
}

fn named_schema(name: &str, schema: &Value) -> Message {
    let mut named = Message::default();
    named.string(1, name);
    named.message(2, encode_schema(schema));
    named
}

/// gnostic's `Schema`.
fn encode_schema(schema: &Value) -> Message {
    let mut m = Message::default();
    let Some(object) = schema.as_object() else {
        return m;
    };
    m.string_of(1, &schema["$ref"]);
    m.string_of(2, &schema["format"]);
    m.string_of(3, &schema["title"]);
    m.string_of(4, &schema["description"]);
    if let Some(default) = object.get("default") {
        m.message(5, any(default));
    }
    m.double(6, &schema["multipleOf"]);
    m.double(7, &schema["maximum"]);
    m.boolean(8, &schema["exclusiveMaximum"]);
    m.double(9, &schema["minimum"]);
    m.boolean(10, &schema["exclusiveMinimum"]);
    m.int64(11, &schema["maxLength"]);
    m.int64(12, &schema["minLength"]);
    m.string_of(13, &schema["pattern"]);
    m.int64(14, &schema["maxItems"]);
    m.int64(15, &schema["minItems"]);
    m.boolean(16, &schema["uniqueItems"]);
    m.int64(17, &schema["maxProperties"]);
    m.int64(18, &schema["minProperties"]);
    m.strings(19, &schema["required"]);
    for value in schema["enum"].as_array().into_iter().flatten() {
        m.message(20, any(value));
    }
    match object.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            item.key(2, 0);
            item.varint(u64::from(*b));
            m.message(21, item);
        }
        Some(inner @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, encode_schema(inner));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(kind) = object.get("type") {
        let mut item = Message::default();
        item.strings(1, kind);
        m.message(22, item);
    }
    match object.get("items") {
        Some(Value::Array(list)) => {
            let mut item = Message::default();
            for s in list {
                item.message(1, encode_schema(s));
            }
            m.message(23, item);
        }
        Some(inner @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, encode_schema(inner));
            m.message(23, item);
        }
        _ => {}
    }
    for s in schema["allOf"].as_array().into_iter().flatten() {
        m.message(24, encode_schema(s));
    }
    if let Some(properties) = object.get("properties").and_then(Value::as_object) {
        let mut p = Message::default();
        for (name, s) in properties {
            p.message(1, named_schema(name, s));
        }
        m.message(25, p);
    }
    m.string_of(26, &schema["discriminator"]);
    m.boolean(27, &schema["readOnly"]);
    if let Some(example) = object.get("example") {
        m.message(30, any(example));
    }
    vendor_extensions(&mut m, 31, object);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_fields_in_gnostics_numbering() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1"},
            "definitions": {
                "a.B": {"type": "object", "x-kubernetes-group-version-kind": [{"group": "", "kind": "B", "version": "v1"}]},
            },
        });
        let bytes = encode_document(&doc);
        // swagger = 1 (string "2.0")
        assert_eq!(&bytes[..5], &[0x0a, 3, b'2', b'.', b'0']);
        // info = 2
        assert_eq!(bytes[5], 0x12);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("a.B"));
        assert!(text.contains("x-kubernetes-group-version-kind"));
        assert!(text.contains(r#"[{"group":"","kind":"B","version":"v1"}]"#));
    }

    #[test]
    fn query_parameters_skip_allow_empty_value() {
        let p = json!({"in": "query", "name": "watch", "type": "boolean", "uniqueItems": true});
        let bytes = parameters_item(&p).0;
        // ParametersItem.parameter(1) > Parameter.non_body_parameter(2) > query(3)
        assert_eq!(bytes[0], 0x0a);
        assert_eq!(bytes[2], 0x12);
        assert_eq!(bytes[4], 0x1a);
        // type is field 6 in QueryParameterSubSchema, unique_items field 20.
        let sub = &bytes[6..];
        assert!(sub.windows(2).any(|w| w == [0x32, 7]));
        assert!(sub.windows(3).any(|w| w == [0xa0, 0x01, 1]));
    }
}
