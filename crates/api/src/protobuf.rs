//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), decoded into
//! the JSON object a JSON client would have sent for the same Go object.
//!
//! The body is the 4-byte prefix `k8s\0` and a `runtime.Unknown` envelope: `{1: TypeMeta
//! {1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`, where `raw` is the
//! kind's own message (`k8s.io.api.apps.v1.Deployment`, ...). The messages' fields come from
//! the generated table in `proto_schema.rs` (`scripts/gen-proto-schema`).
//!
//! The JSON is what Go's `encoding/json` prints for the struct the protobuf decodes to:
//! - Go's protobuf encoder writes value fields even when zero, so a zero scalar is dropped
//!   when the Go field has `omitempty` ([`OMIT_EMPTY`]) and is not a pointer ([`POINTER`]);
//!   messages, repeated fields and maps appear when present on the wire, and a field without
//!   `omitempty` always appears (`"rules": null`);
//! - embedded Go structs (Volume's VolumeSource) are inlined ([`INLINE`]);
//! - `bytes` are base64; `Time` is RFC 3339 (null when zero), `MicroTime` with microseconds,
//!   `Duration` as Go prints it (`1h0m0s`), `Quantity` its string, `IntOrString` a number or
//!   a string, `RawExtension`/`FieldsV1`/apiextensions `JSON` the JSON they carry, the
//!   `JSONSchemaPropsOr*` wrappers their JSON forms, `ExtraValue`/`Verbs` string arrays.
//!
//! Unknown field tags are skipped, as protobuf does. Malformed input is an error, never a
//! panic; nesting deeper than [`MAX_DEPTH`] messages is refused.

use std::fmt;

use serde_json::{Map, Value};

use crate::proto_schema::{DELETE_OPTIONS, KINDS, MESSAGES};

/// The media type of Kubernetes protobuf.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The prefix of every Kubernetes protobuf body.
const MAGIC: &[u8; 4] = b"k8s\0";

/// How deeply messages may nest (JSONSchemaProps are recursive; real objects stay far below).
pub const MAX_DEPTH: usize = 100;

/// Why a body could not be decoded. The messages follow Go's protobuf decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The body does not start with `k8s\0`.
    MissingPrefix,
    /// The data ends inside a field.
    UnexpectedEof,
    /// A varint longer than 64 bits.
    IntegerOverflow,
    /// A length that does not fit the data.
    InvalidLength,
    /// A field number 0 or a wire type protobuf does not have (or a group).
    IllegalTag {
        /// The field number.
        tag: u64,
        /// The wire type.
        wire: u8,
    },
    /// A known field with the wrong wire type.
    WrongWireType {
        /// The message's protobuf name.
        message: &'static str,
        /// The field's JSON name.
        field: &'static str,
        /// The wire type found.
        wire: u8,
    },
    /// Messages nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The envelope has no kind.
    MissingKind,
    /// The envelope has no apiVersion.
    MissingVersion {
        /// The kind it names.
        kind: String,
    },
    /// No built-in kind by that apiVersion and kind.
    UnknownKind {
        /// The envelope's apiVersion.
        api_version: String,
        /// The envelope's kind.
        kind: String,
    },
    /// A value the JSON form cannot express (bad embedded JSON, an impossible IntOrString
    /// type, a non-finite number, a time out of range).
    InvalidValue {
        /// The message's protobuf name.
        message: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingPrefix => write!(
                f,
                "provided data does not appear to be a protobuf message, expected prefix {:?}",
                MAGIC
            ),
            Self::UnexpectedEof => f.write_str("unexpected EOF"),
            Self::IntegerOverflow => f.write_str("proto: integer overflow"),
            Self::InvalidLength => f.write_str("proto: negative length found during unmarshaling"),
            Self::IllegalTag { tag, wire } => {
                write!(f, "proto: illegal tag {tag} (wire type {wire})")
            }
            Self::WrongWireType {
                message,
                field,
                wire,
            } => write!(
                f,
                "proto: wrong wireType = {wire} for field {field} of {message}"
            ),
            Self::TooDeep => write!(f, "proto: messages nested deeper than {MAX_DEPTH}"),
            Self::MissingKind => f.write_str("Object 'Kind' is missing in the protobuf envelope"),
            Self::MissingVersion { kind } => {
                write!(
                    f,
                    "Object 'apiVersion' is missing in the {kind} protobuf envelope"
                )
            }
            Self::UnknownKind { api_version, kind } => write!(
                f,
                "no kind \"{kind}\" is registered for version \"{api_version}\""
            ),
            Self::InvalidValue { message, detail } => write!(f, "{message}: {detail}"),
        }
    }
}

impl std::error::Error for DecodeError {}

// ---------------------------------------------------------------------------------------
// The schema table's types (the table itself is generated into `proto_schema.rs`).

/// A field's protobuf type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    /// A message, by index in `MESSAGES`.
    M(u16),
}

/// A repeated field (a JSON array).
pub(crate) const REPEATED: u8 = 1;
/// A `map<string, T>` field (a JSON object): entries `{1: key, 2: value}`.
pub(crate) const MAP: u8 = 2;
/// An embedded Go struct: its fields are the parent's in JSON.
pub(crate) const INLINE: u8 = 4;
/// A Go pointer: a zero on the wire is a value, printed (`replicas: 0`).
pub(crate) const POINTER: u8 = 8;
/// Go's `omitempty` (on anything but a struct value): a zero value is not printed. Without
/// it, Go prints the field even when the wire does not have it (`null` for a nil pointer,
/// slice or map, `{}` for an empty struct).
pub(crate) const OMIT_EMPTY: u8 = 16;

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) tag: u32,
    /// The JSON name (empty when inlined).
    pub(crate) json: &'static str,
    pub(crate) ty: Type,
    pub(crate) flags: u8,
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    Plain,
    Time,
    MicroTime,
    Duration,
    Quantity,
    IntOrString,
    RawExtension,
    RawJson,
    StringList,
    SchemaOrArray,
    SchemaOrBool,
    SchemaOrStringArray,
}

/// One message type.
#[derive(Debug)]
pub(crate) struct Message {
    /// The protobuf full name (`k8s.io.api.core.v1.Pod`).
    pub(crate) name: &'static str,
    pub(crate) special: Special,
    /// Sorted by tag.
    pub(crate) fields: &'static [Field],
}

impl Message {
    fn field(&self, tag: u64) -> Option<&'static Field> {
        let fields: &'static [Field] = self.fields;
        fields
            .binary_search_by_key(&tag, |f| u64::from(f.tag))
            .ok()
            .and_then(|i| fields.get(i))
    }

    fn message_at(&self, tag: u64) -> Option<u16> {
        match self.field(tag)?.ty {
            Type::M(index) => Some(index),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Public entry points.

/// Decodes a Kubernetes protobuf body (`k8s\0` + `runtime.Unknown`) into the JSON object,
/// with `apiVersion` and `kind` from the envelope.
pub fn decode(body: &[u8]) -> Result<Value, DecodeError> {
    decode_envelope(body, 0)
}

/// Decodes one message by its protobuf full name (`k8s.io.api.core.v1.ConfigMap`); `None`
/// for a message the table does not have.
pub fn decode_message(type_name: &str, bytes: &[u8]) -> Option<Result<Value, DecodeError>> {
    let index = MESSAGES.binary_search_by(|m| m.name.cmp(type_name)).ok()?;
    let index = u16::try_from(index).ok()?;
    Some(message(index, bytes, 0))
}

fn decode_envelope(body: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(DecodeError::MissingPrefix)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut fields = Reader(envelope);
    while let Some((tag, value)) = fields.next_field()? {
        match (tag, value) {
            (1, Wire::Len(type_meta)) => {
                let mut type_meta = Reader(type_meta);
                while let Some((tag, value)) = type_meta.next_field()? {
                    match (tag, value) {
                        (1, Wire::Len(s)) => api_version = string(s),
                        (2, Wire::Len(s)) => kind = string(s),
                        (1 | 2, other) => return Err(wrong("runtime.TypeMeta", tag, &other)),
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(bytes)) => raw = bytes,
            // contentEncoding and contentType: kube-apiserver does not look at them either.
            (3 | 4, Wire::Len(_)) => {}
            (1..=4, other) => return Err(wrong("runtime.Unknown", tag, &other)),
            _ => {}
        }
    }
    if kind.is_empty() {
        return Err(DecodeError::MissingKind);
    }
    if api_version.is_empty() {
        return Err(DecodeError::MissingVersion { kind });
    }
    let index = KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, index)| *index)
        .or((kind == "DeleteOptions").then_some(DELETE_OPTIONS))
        .ok_or_else(|| DecodeError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let mut object = Map::new();
    object.insert("apiVersion".into(), Value::String(api_version));
    object.insert("kind".into(), Value::String(kind));
    decode_into(&mut object, index, raw, depth + 1)?;
    fill_absent(&mut object, index, depth + 1)?;
    Ok(Value::Object(object))
}

fn wrong(message: &'static str, tag: u64, value: &Wire<'_>) -> DecodeError {
    let field = match (message, tag) {
        ("runtime.TypeMeta", 1) => "apiVersion",
        ("runtime.TypeMeta", _) => "kind",
        (_, 1) => "typeMeta",
        (_, 2) => "raw",
        (_, 3) => "contentEncoding",
        _ => "contentType",
    };
    DecodeError::WrongWireType {
        message,
        field,
        wire: value.wire_type(),
    }
}

// ---------------------------------------------------------------------------------------
// The wire format.

/// One field's value as it is on the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    /// No Kubernetes field is a fixed32 or a float; only skipped.
    Fixed32,
}

impl Wire<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Self::Varint(_) => 0,
            Self::Fixed64(_) => 1,
            Self::Len(_) => 2,
            Self::Fixed32 => 5,
        }
    }
}

/// Reads fields off the front of a message.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate() {
            if i == 9 && *byte > 1 {
                return Err(DecodeError::IntegerOverflow);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = self.0.get(i + 1..).unwrap_or_default();
                return Ok(value);
            }
            if i == 9 {
                return Err(DecodeError::IntegerOverflow);
            }
        }
        Err(DecodeError::UnexpectedEof)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.0.len() {
            return Err(DecodeError::UnexpectedEof);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next field's number and value; `None` at the end of the message.
    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, DecodeError> {
        if self.0.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (tag, wire) = (key >> 3, (key & 7) as u8);
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(DecodeError::IllegalTag { tag, wire });
        }
        let value = match wire {
            0 => Wire::Varint(self.varint()?),
            1 => Wire::Fixed64(u64::from_le_bytes(self.fixed()?)),
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| DecodeError::InvalidLength)?;
                if len > self.0.len() {
                    return Err(if len > isize::MAX as usize {
                        DecodeError::InvalidLength
                    } else {
                        DecodeError::UnexpectedEof
                    });
                }
                Wire::Len(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Wire::Fixed32
            }
            // Groups (3, 4) are not used by any Kubernetes message; 6 and 7 do not exist.
            _ => return Err(DecodeError::IllegalTag { tag, wire }),
        };
        Ok(Some((tag, value)))
    }
}

fn string(bytes: &[u8]) -> String {
    // Go's decoder does not check UTF-8; its JSON encoder replaces invalid sequences.
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------------------------------
// Messages to JSON.

fn schema(index: u16) -> Result<&'static Message, DecodeError> {
    MESSAGES
        .get(usize::from(index))
        .ok_or_else(|| DecodeError::InvalidValue {
            message: "schema",
            detail: format!("no message {index}"),
        })
}

/// One message's JSON value.
fn message(index: u16, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    let schema = schema(index)?;
    if schema.special == Special::Plain {
        let mut object = Map::new();
        decode_into(&mut object, index, bytes, depth)?;
        fill_absent(&mut object, index, depth)?;
        Ok(Value::Object(object))
    } else {
        special(schema, bytes, depth)
    }
}

/// Adds a message's fields to `out` (protobuf merges repeated occurrences of a message).
fn decode_into(
    out: &mut Map<String, Value>,
    index: u16,
    bytes: &[u8],
    depth: usize,
) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let schema = schema(index)?;
    let mut reader = Reader(bytes);
    while let Some((tag, value)) = reader.next_field()? {
        let Some(field) = schema.field(tag) else {
            continue;
        };
        let wrong = |value: &Wire<'_>| DecodeError::WrongWireType {
            message: schema.name,
            field: field.json,
            wire: value.wire_type(),
        };
        if field.flags & MAP != 0 {
            let Wire::Len(entry) = value else {
                return Err(wrong(&value));
            };
            let (key, value) = map_entry(schema, field, entry, depth)?;
            let map = out
                .entry(field.json)
                .or_insert_with(|| Value::Object(Map::new()));
            if !map.is_object() {
                *map = Value::Object(Map::new());
            }
            if let Value::Object(map) = map {
                map.insert(key, value);
            }
        } else if field.flags & REPEATED != 0 {
            let mut items = Vec::new();
            match (field.ty, value) {
                (Type::M(index), Wire::Len(bytes)) => items.push(message(index, bytes, depth + 1)?),
                (Type::Str | Type::Bytes, Wire::Len(bytes)) => {
                    items.push(scalar(schema, field, Wire::Len(bytes))?);
                }
                (Type::Str | Type::Bytes | Type::M(_), other) => return Err(wrong(&other)),
                // A packed run of numbers.
                (_, Wire::Len(bytes)) => {
                    let mut packed = Reader(bytes);
                    while !packed.0.is_empty() {
                        let value = match field.ty {
                            Type::F64 => Wire::Fixed64(u64::from_le_bytes(packed.fixed()?)),
                            _ => Wire::Varint(packed.varint()?),
                        };
                        items.push(scalar(schema, field, value)?);
                    }
                }
                (_, other) => items.push(scalar(schema, field, other)?),
            }
            let array = out
                .entry(field.json)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(array) = array {
                array.extend(items);
            } else {
                *array = Value::Array(items);
            }
        } else if let Type::M(child) = field.ty {
            let Wire::Len(bytes) = value else {
                return Err(wrong(&value));
            };
            if field.flags & INLINE != 0 {
                decode_into(out, child, bytes, depth + 1)?;
            } else if let Some(Value::Object(existing)) = out.get_mut(field.json)
                && self::schema(child)?.special == Special::Plain
            {
                decode_into(existing, child, bytes, depth + 1)?;
            } else {
                out.insert(field.json.into(), message(child, bytes, depth + 1)?);
            }
        } else {
            let value = scalar(schema, field, value)?;
            if field.flags & (POINTER | OMIT_EMPTY) == OMIT_EMPTY && is_zero(&value) {
                out.remove(field.json);
            } else {
                out.insert(field.json.into(), value);
            }
        }
    }
    Ok(())
}

/// Adds what Go's JSON prints for the fields without `omitempty` that the wire did not have:
/// `null` for a nil pointer, slice or map, the zero value of anything else.
fn fill_absent(out: &mut Map<String, Value>, index: u16, depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    for field in schema(index)?.fields {
        if field.flags & INLINE != 0 {
            if let Type::M(child) = field.ty {
                fill_absent(out, child, depth + 1)?;
            }
            continue;
        }
        if field.flags & OMIT_EMPTY != 0 || out.contains_key(field.json) {
            continue;
        }
        let zero = if field.flags & (REPEATED | MAP | POINTER) != 0 {
            Value::Null
        } else {
            match field.ty {
                Type::Str => Value::String(String::new()),
                Type::Bytes => Value::Null,
                Type::Bool => Value::Bool(false),
                Type::I32 | Type::I64 | Type::F64 => Value::from(0),
                Type::M(child) => message(child, &[], depth + 1)?,
            }
        };
        out.insert(field.json.into(), zero);
    }
    Ok(())
}

/// A map entry `{1: key, 2: value}`; a missing part is its zero value.
fn map_entry(
    schema: &'static Message,
    field: &'static Field,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), DecodeError> {
    let (mut key, mut value) = (String::new(), None);
    let mut reader = Reader(entry);
    while let Some((tag, wire)) = reader.next_field()? {
        match (tag, wire) {
            (1, Wire::Len(bytes)) => key = string(bytes),
            (2, wire) => {
                value = Some(match (field.ty, wire) {
                    (Type::M(index), Wire::Len(bytes)) => message(index, bytes, depth + 1)?,
                    (Type::M(_), other) => {
                        return Err(DecodeError::WrongWireType {
                            message: schema.name,
                            field: field.json,
                            wire: other.wire_type(),
                        });
                    }
                    (_, wire) => scalar(schema, field, wire)?,
                });
            }
            (1, other) => {
                return Err(DecodeError::WrongWireType {
                    message: schema.name,
                    field: field.json,
                    wire: other.wire_type(),
                });
            }
            _ => {}
        }
    }
    let value = match (value, field.ty) {
        (Some(value), _) => value,
        (None, Type::M(index)) => message(index, &[], depth + 1)?,
        (None, Type::Str | Type::Bytes) => Value::String(String::new()),
        (None, Type::Bool) => Value::Bool(false),
        (None, _) => Value::from(0),
    };
    Ok((key, value))
}

fn scalar(
    schema: &'static Message,
    field: &'static Field,
    value: Wire<'_>,
) -> Result<Value, DecodeError> {
    Ok(match (field.ty, value) {
        (Type::Str, Wire::Len(bytes)) => Value::String(string(bytes)),
        (Type::Bytes, Wire::Len(bytes)) => Value::String(base64(bytes)),
        (Type::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // int32 is sign-extended to 64 bits on the wire; Go truncates.
        (Type::I32, Wire::Varint(v)) => Value::from(v as i32),
        (Type::I64, Wire::Varint(v)) => Value::from(v as i64),
        (Type::F64, Wire::Fixed64(bits)) => float(schema, f64::from_bits(bits))?,
        (_, other) => {
            return Err(DecodeError::WrongWireType {
                message: schema.name,
                field: field.json,
                wire: other.wire_type(),
            });
        }
    })
}

/// A float as Go's JSON prints it: integral values without a fraction.
fn float(schema: &'static Message, value: f64) -> Result<Value, DecodeError> {
    if !value.is_finite() {
        return Err(DecodeError::InvalidValue {
            message: schema.name,
            detail: format!("unsupported value: {value}"),
        });
    }
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if value.fract() == 0.0 && value.abs() < EXACT {
        return Ok(Value::from(value as i64));
    }
    Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------
// The apimachinery types with their own JSON forms.

fn special(schema: &'static Message, bytes: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep);
    }
    let invalid = |detail: String| DecodeError::InvalidValue {
        message: schema.name,
        detail,
    };
    let wrong = |tag: u64, value: &Wire<'_>| DecodeError::WrongWireType {
        message: schema.name,
        field: schema.field(tag).map_or("?", |f| f.json),
        wire: value.wire_type(),
    };
    // Every special message's fields are numbers, bytes or messages, with tags 1 to 3.
    let mut varints = [0u64; 4];
    let mut single: [Option<&[u8]>; 4] = [None; 4];
    let mut repeated: Vec<&[u8]> = Vec::new();
    let mut reader = Reader(bytes);
    while let Some((tag, value)) = reader.next_field()? {
        let slot = match usize::try_from(tag) {
            Ok(slot) if slot < 4 && schema.field(tag).is_some() => slot,
            _ => continue,
        };
        let expects_len = match schema.special {
            Special::Time | Special::MicroTime | Special::Duration => false,
            Special::IntOrString => tag == 3,
            Special::SchemaOrBool => tag == 2,
            _ => true,
        };
        match value {
            Wire::Varint(v) if !expects_len => varints[slot] = v,
            Wire::Len(b) if expects_len => {
                let repeats = matches!(
                    (schema.special, tag),
                    (Special::StringList, 1)
                        | (Special::SchemaOrArray, 2)
                        | (Special::SchemaOrStringArray, 2)
                );
                if repeats {
                    repeated.push(b);
                } else {
                    single[slot] = Some(b);
                }
            }
            other => return Err(wrong(tag, &other)),
        }
    }
    let schema_at = |tag: u64, bytes: &[u8]| -> Result<Value, DecodeError> {
        let index = schema
            .message_at(tag)
            .ok_or_else(|| invalid(format!("field {tag} is not a message")))?;
        message(index, bytes, depth + 1)
    };
    let strings =
        |items: &[&[u8]]| Value::Array(items.iter().map(|s| Value::String(string(s))).collect());
    Ok(match schema.special {
        Special::Plain => return Err(invalid("not a special message".into())),
        // Go's Time keeps whole seconds only; an empty message (or Go's zero time) is null.
        Special::Time => {
            if bytes.is_empty() || varints[1] as i64 == GO_ZERO_TIME {
                Value::Null
            } else {
                Value::String(rfc3339(varints[1] as i64, None).map_err(invalid)?)
            }
        }
        Special::MicroTime => {
            let (seconds, nanos) = (varints[1] as i64, i64::from(varints[2] as i32));
            if bytes.is_empty() || (seconds == GO_ZERO_TIME && nanos == 0) {
                Value::Null
            } else {
                let seconds = seconds
                    .checked_add(nanos.div_euclid(1_000_000_000))
                    .ok_or_else(|| invalid("time out of range".into()))?;
                let micros = (nanos.rem_euclid(1_000_000_000) / 1000) as u32;
                Value::String(rfc3339(seconds, Some(micros)).map_err(invalid)?)
            }
        }
        Special::Duration => Value::String(go_duration(varints[1] as i64)),
        Special::Quantity => Value::String(single[1].map_or_else(|| "0".into(), string)),
        Special::IntOrString => match varints[1] {
            0 => Value::from(varints[2] as i32),
            1 => Value::String(single[3].map(string).unwrap_or_default()),
            other => return Err(invalid(format!("impossible IntOrString.Type {other}"))),
        },
        Special::RawExtension => match single[1] {
            None | Some([]) => Value::Null,
            Some(raw) if raw.starts_with(MAGIC) => decode_envelope(raw, depth + 1)?,
            Some(raw) => json(raw).map_err(invalid)?,
        },
        Special::RawJson => match single[1] {
            None | Some([]) => Value::Null,
            Some(raw) => json(raw).map_err(invalid)?,
        },
        Special::StringList => strings(&repeated),
        Special::SchemaOrArray => {
            if repeated.is_empty() {
                match single[1] {
                    Some(b) => schema_at(1, b)?,
                    None => Value::Null,
                }
            } else {
                Value::Array(
                    repeated
                        .iter()
                        .map(|b| schema_at(2, b))
                        .collect::<Result<_, _>>()?,
                )
            }
        }
        Special::SchemaOrBool => match single[2] {
            Some(b) => schema_at(2, b)?,
            None => Value::Bool(varints[1] != 0),
        },
        Special::SchemaOrStringArray => {
            if !repeated.is_empty() {
                strings(&repeated)
            } else if let Some(b) = single[1] {
                schema_at(1, b)?
            } else {
                Value::Null
            }
        }
    })
}

fn json(raw: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(raw).map_err(|e| format!("invalid JSON: {e}"))
}

/// `time.Time{}.Unix()`: Go's zero time, which JSON prints as null.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// RFC 3339 in UTC, as Go's `time.RFC3339` (or `RFC3339Micro` with `micros`) formats it.
fn rfc3339(seconds: i64, micros: Option<u32>) -> Result<String, String> {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        return Err(format!("time out of range: {seconds}s since the epoch"));
    }
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let frac = micros.map(|u| format!(".{u:06}")).unwrap_or_default();
    Ok(format!(
        "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{frac}Z"
    ))
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Go's `time.Duration.String()`: `1h0m0s`, `1m30.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    let mut u = nanos.unsigned_abs();
    let sign = if nanos < 0 { "-" } else { "" };
    if u == 0 {
        return "0s".into();
    }
    if u < 1_000_000_000 {
        let (unit, prec) = match u {
            0..1_000 => ("ns", 0),
            1_000..1_000_000 => ("µs", 3),
            _ => ("ms", 6),
        };
        let (frac, whole) = go_fraction(u, prec);
        return format!("{sign}{whole}{frac}{unit}");
    }
    let (frac, seconds) = go_fraction(u, 9);
    u = seconds;
    let mut out = format!("{}{frac}s", u % 60);
    u /= 60;
    if u > 0 {
        out = format!("{}m{out}", u % 60);
        u /= 60;
        if u > 0 {
            out = format!("{u}h{out}");
        }
    }
    format!("{sign}{out}")
}

/// The fraction `v / 10^prec` as Go's fmtFrac writes it (".5", no trailing zeros, nothing
/// when zero) and the integer part.
fn go_fraction(mut v: u64, prec: u32) -> (String, u64) {
    let mut digits = Vec::new();
    let mut print = false;
    for _ in 0..prec {
        let digit = (v % 10) as u8;
        print = print || digit != 0;
        if print {
            digits.push(b'0' + digit);
        }
        v /= 10;
    }
    if !print {
        return (String::new(), v);
    }
    digits.reverse();
    (format!(".{}", String::from_utf8_lossy(&digits)), v)
}

/// Standard base64 with padding, as Go's JSON encodes `[]byte`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A test-only protobuf encoder.
    #[derive(Default)]
    struct Enc(Vec<u8>);

    impl Enc {
        fn new() -> Self {
            Self::default()
        }
        fn raw_varint(&mut self, mut v: u64) {
            loop {
                let byte = (v & 0x7f) as u8;
                v >>= 7;
                if v == 0 {
                    self.0.push(byte);
                    return;
                }
                self.0.push(byte | 0x80);
            }
        }
        fn key(mut self, tag: u64, wire: u64) -> Self {
            self.raw_varint((tag << 3) | wire);
            self
        }
        fn varint(self, tag: u64, v: u64) -> Self {
            let mut e = self.key(tag, 0);
            e.raw_varint(v);
            e
        }
        fn int(self, tag: u64, v: i64) -> Self {
            self.varint(tag, v as u64)
        }
        fn bytes(self, tag: u64, b: &[u8]) -> Self {
            let mut e = self.key(tag, 2);
            e.raw_varint(b.len() as u64);
            e.0.extend_from_slice(b);
            e
        }
        fn str(self, tag: u64, s: &str) -> Self {
            self.bytes(tag, s.as_bytes())
        }
        fn msg(self, tag: u64, m: Enc) -> Self {
            self.bytes(tag, &m.0)
        }
        fn double(self, tag: u64, v: f64) -> Self {
            let mut e = self.key(tag, 1);
            e.0.extend_from_slice(&v.to_bits().to_le_bytes());
            e
        }
        fn entry(self, tag: u64, key: &str, value: Enc) -> Self {
            self.msg(tag, Enc::new().str(1, key).msg(2, value))
        }
        fn str_entry(self, tag: u64, key: &str, value: &str) -> Self {
            self.msg(tag, Enc::new().str(1, key).str(2, value))
        }
    }

    fn envelope(api_version: &str, kind: &str, object: Enc) -> Vec<u8> {
        let mut body = MAGIC.to_vec();
        let unknown = Enc::new()
            .msg(1, Enc::new().str(1, api_version).str(2, kind))
            .msg(2, object)
            .str(3, "")
            .str(4, "");
        body.extend(unknown.0);
        body
    }

    fn quantity(s: &str) -> Enc {
        Enc::new().str(1, s)
    }

    /// ObjectMeta as Go writes it: every value field, zero or not.
    fn meta(name: &str) -> Enc {
        Enc::new()
            .str(1, name)
            .str(2, "")
            .str(3, "")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, Enc::new())
    }

    #[test]
    fn configmap() {
        let object = Enc::new()
            .msg(1, meta("x").str_entry(11, "app", "web"))
            .str_entry(2, "a", "b")
            .str_entry(2, "c", "")
            .varint(4, 0);
        let value = decode(&envelope("v1", "ConfigMap", object)).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "x", "creationTimestamp": null, "labels": {"app": "web"}},
                "data": {"a": "b", "c": ""},
                "immutable": false,
            })
        );
    }

    #[test]
    fn events_k8s_io_event() {
        // client-go's events recorder sends events.k8s.io/v1 Events as protobuf.
        let object = Enc::new()
            .msg(1, meta("e"))
            .str(4, "example.com/ctl")
            .str(5, "ctl-1")
            .str(6, "Scale")
            .str(7, "Scaled")
            .msg(8, Enc::new().str(1, "Deployment").str(3, "web"))
            .str(10, "scaled up")
            .str(11, "Normal");
        let value = decode(&envelope("events.k8s.io/v1", "Event", object)).unwrap();
        assert_eq!(value["apiVersion"], "events.k8s.io/v1");
        assert_eq!(value["reportingController"], "example.com/ctl");
        assert_eq!(value["regarding"]["name"], "web");
        assert_eq!(value["note"], "scaled up");
    }

    #[test]
    fn secret_bytes_are_base64() {
        let object = Enc::new()
            .msg(1, meta("s"))
            .msg(2, Enc::new().str(1, "bin").bytes(2, &[0, 1, 2, 0xff, 0xfe]))
            .msg(2, Enc::new().str(1, "empty"))
            .msg(2, Enc::new().str(1, "text").bytes(2, b"hello"))
            .str(3, "Opaque");
        let value = decode(&envelope("v1", "Secret", object)).unwrap();
        assert_eq!(
            value["data"],
            json!({"bin": "AAEC//4=", "empty": "", "text": "aGVsbG8="})
        );
        assert_eq!(value["type"], "Opaque");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"abc"), "YWJj");
        assert_eq!(base64(b""), "");
    }

    #[test]
    fn deployment_with_intstr_quantities_and_times() {
        let container = Enc::new()
            .str(1, "app")
            .str(2, "nginx")
            .str(5, "")
            .msg(
                6,
                Enc::new()
                    .str(1, "")
                    .int(2, 0)
                    .int(3, 80)
                    .str(4, "TCP")
                    .str(5, ""),
            )
            .msg(
                8,
                Enc::new()
                    .entry(1, "cpu", quantity("500m"))
                    .entry(2, "memory", quantity("128Mi")),
            )
            .str(13, "")
            .varint(16, 0);
        let volume = Enc::new().str(1, "cache").msg(
            2,
            Enc::new().msg(2, Enc::new().str(1, "").msg(2, quantity("1Gi"))),
        );
        let template = Enc::new()
            .msg(1, meta("").str_entry(11, "app", "web"))
            .msg(2, Enc::new().msg(1, volume).msg(2, container).str(3, ""));
        let strategy = Enc::new().str(1, "RollingUpdate").msg(
            2,
            Enc::new()
                .msg(1, Enc::new().int(1, 0).int(2, 1).str(3, ""))
                .msg(2, Enc::new().int(1, 1).int(2, 0).str(3, "25%")),
        );
        let spec = Enc::new()
            .int(1, 0)
            .msg(2, Enc::new().str_entry(1, "app", "web"))
            .msg(3, template)
            .msg(4, strategy)
            .int(5, 0)
            .varint(7, 0);
        let object = Enc::new()
            .msg(1, meta("web").msg(8, Enc::new().int(1, 1_700_000_000)))
            .msg(2, spec)
            .msg(3, Enc::new());
        let value = decode(&envelope("apps/v1", "Deployment", object)).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "creationTimestamp": "2023-11-14T22:13:20Z"},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                        "spec": {
                            "volumes": [{"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}}],
                            "containers": [{
                                "name": "app",
                                "image": "nginx",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "128Mi"}},
                            }],
                        },
                    },
                    "strategy": {
                        "type": "RollingUpdate",
                        "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "25%"},
                    },
                },
                "status": {},
            })
        );
    }

    #[test]
    fn raw_extension_carries_json_or_a_nested_object() {
        let revision = |raw: &[u8]| {
            let object = Enc::new()
                .msg(1, meta("r"))
                .msg(2, Enc::new().bytes(1, raw))
                .int(3, 3);
            decode(&envelope("apps/v1", "ControllerRevision", object))
        };
        let value = revision(br#"{"spec":{"template":{"a":[1,2]}}}"#).unwrap();
        assert_eq!(value["data"], json!({"spec": {"template": {"a": [1, 2]}}}));
        assert_eq!(value["revision"], 3);

        let nested = envelope("v1", "ConfigMap", Enc::new().str_entry(2, "k", "v"));
        let value = revision(&nested).unwrap();
        assert_eq!(
            value["data"],
            json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                // Struct values print even when absent, as Go's JSON does.
                "metadata": {"creationTimestamp": null},
                "data": {"k": "v"},
            })
        );

        assert_eq!(revision(b"").unwrap()["data"], Value::Null);
        assert!(matches!(
            revision(b"{not json"),
            Err(DecodeError::InvalidValue { .. })
        ));
    }

    #[test]
    fn micro_time_and_pointer_zeros() {
        let spec = Enc::new()
            .str(1, "")
            .int(2, 0)
            .msg(3, Enc::new().int(1, 1_700_000_000).int(2, 123_456_789))
            .msg(4, Enc::new());
        let object = Enc::new().msg(1, meta("l")).msg(2, spec);
        let value = decode(&envelope("coordination.k8s.io/v1", "Lease", object)).unwrap();
        assert_eq!(
            value["spec"],
            json!({
                "holderIdentity": "",
                "leaseDurationSeconds": 0,
                "acquireTime": "2023-11-14T22:13:20.123456Z",
                "renewTime": null,
            })
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(rfc3339(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, None).unwrap(), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1, Some(5)).unwrap(), "1969-12-31T23:59:59.000005Z");
        assert_eq!(
            rfc3339(253_402_300_799, None).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert!(rfc3339(253_402_300_800, None).is_err());
        assert!(rfc3339(i64::MIN, None).is_err());
        // Go's zero time is null.
        let time = decode_message(
            "k8s.io.apimachinery.pkg.apis.meta.v1.Time",
            &Enc::new().int(1, GO_ZERO_TIME).0,
        );
        assert_eq!(time, Some(Ok(Value::Null)));
    }

    #[test]
    fn durations_print_as_go() {
        let cases = [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (500_000, "500µs"),
            (1_500_000, "1.5ms"),
            (30_000_000_000, "30s"),
            (90_500_000_000, "1m30.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (-2_000_000_000, "-2s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ];
        for (nanos, want) in cases {
            assert_eq!(go_duration(nanos), want, "{nanos}");
        }
    }

    #[test]
    fn user_extra_is_a_map_of_string_lists() {
        let spec = Enc::new()
            .str(3, "alice")
            .str(4, "dev")
            .entry(5, "scopes", Enc::new().str(1, "a").str(1, "b"))
            .entry(5, "none", Enc::new());
        let object = Enc::new().msg(1, meta("")).msg(2, spec).msg(3, Enc::new());
        let value = decode(&envelope(
            "authorization.k8s.io/v1",
            "SubjectAccessReview",
            object,
        ))
        .unwrap();
        assert_eq!(
            value["spec"],
            json!({"user": "alice", "groups": ["dev"], "extra": {"scopes": ["a", "b"], "none": []}})
        );
    }

    #[test]
    fn json_schema_props_wrappers() {
        let string_schema = || Enc::new().str(5, "string");
        let props = Enc::new()
            .str(5, "object")
            .msg(8, Enc::new().str(1, r#"{"a":1}"#))
            .double(9, 10.0)
            .double(11, 0.5)
            .msg(20, Enc::new().str(1, "\"x\""))
            .msg(24, Enc::new().msg(1, Enc::new().str(5, "integer")))
            .entry(29, "name", string_schema())
            .msg(30, Enc::new().varint(1, 0))
            .entry(32, "a", Enc::new().str(2, "b").str(2, "c"))
            .msg(33, Enc::new().varint(1, 0).msg(2, string_schema()))
            .varint(37, 0)
            .varint(38, 1);
        let value = decode_message(
            "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            &props.0,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            value,
            json!({
                "type": "object",
                "default": {"a": 1},
                "maximum": 10,
                "minimum": 0.5,
                "enum": ["x"],
                "items": {"type": "integer"},
                "properties": {"name": {"type": "string"}},
                "additionalProperties": false,
                "dependencies": {"a": ["b", "c"]},
                "additionalItems": {"type": "string"},
                "x-kubernetes-preserve-unknown-fields": true,
            })
        );
        let array = Enc::new().msg(
            24,
            Enc::new().msg(2, string_schema()).msg(2, string_schema()),
        );
        let value = decode_message(
            "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
            &array.0,
        );
        assert_eq!(
            value,
            Some(Ok(
                json!({"items": [{"type": "string"}, {"type": "string"}]})
            ))
        );
    }

    #[test]
    fn delete_options_under_any_group_keep_pointer_zeros() {
        let options = Enc::new().int(1, 0).str(4, "Foreground").str(5, "All");
        let value = decode(&envelope("apps/v1", "DeleteOptions", options)).unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "apps/v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
            })
        );
    }

    #[test]
    fn packed_and_unpacked_numbers_unknown_fields_and_merging() {
        let mut packed = Enc::new();
        packed.raw_varint(3);
        packed.raw_varint(4);
        let mut context = Enc::new()
            .int(4, 1)
            .int(4, -2)
            .bytes(4, &packed.0)
            .int(99, 7)
            .str(98, "ignored")
            .key(97, 5);
        context.0.extend([1, 2, 3, 4]);
        let mut context = context.key(96, 1);
        context.0.extend([0; 8]);
        // Two occurrences of a message merge, as protobuf does.
        let pod = Enc::new()
            .msg(1, Enc::new().str(1, "p"))
            .msg(1, Enc::new().str(3, "ns"))
            .msg(2, Enc::new().msg(14, context));
        let value = decode(&envelope("v1", "Pod", pod)).unwrap();
        assert_eq!(
            value["metadata"],
            json!({"name": "p", "namespace": "ns", "creationTimestamp": null})
        );
        // `containers` has no omitempty: Go prints the nil slice as null.
        assert_eq!(
            value["spec"],
            json!({
                "containers": null,
                "securityContext": {"supplementalGroups": [1, -2, 3, 4]},
            })
        );
    }

    #[test]
    fn fields_without_omitempty_are_printed_when_absent() {
        let role = Enc::new().msg(1, meta("agg")).msg(
            3,
            Enc::new().msg(
                1,
                Enc::new().str_entry(1, "rbac.example.com/aggregate", "true"),
            ),
        );
        let value = decode(&envelope(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            role,
        ))
        .unwrap();
        assert_eq!(
            value,
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": "agg", "creationTimestamp": null},
                "rules": null,
                "aggregationRule": {
                    "clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate": "true"}}],
                },
            })
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        let object = Enc::new().msg(1, meta("x")).str_entry(2, "a", "b");
        let object_len = object.0.len();
        let good = envelope("v1", "ConfigMap", object);
        assert_eq!(decode(b"{}"), Err(DecodeError::MissingPrefix));
        assert_eq!(decode(b""), Err(DecodeError::MissingPrefix));
        // No truncation panics; every cut inside the object is an error (the envelope ends
        // with the object and two empty strings, 4 bytes).
        let object_end = good.len() - 4;
        for len in 0..good.len() {
            let result = decode(&good[..len]);
            if (object_end - object_len..object_end).contains(&len) {
                assert!(result.is_err(), "prefix of {len} bytes");
            }
        }
        let body = |object: Enc| decode(&envelope("v1", "ConfigMap", object));
        // metadata as a varint
        assert!(matches!(
            body(Enc::new().varint(1, 5)),
            Err(DecodeError::WrongWireType {
                field: "metadata",
                wire: 0,
                ..
            })
        ));
        // a varint of 11 bytes
        let mut long = MAGIC.to_vec();
        long.extend([0x08]);
        long.extend([0xff; 10]);
        long.push(0x01);
        assert_eq!(decode(&long), Err(DecodeError::IntegerOverflow));
        // a length past the end
        let mut past = MAGIC.to_vec();
        past.extend([0x12, 0x05, b'a']);
        assert_eq!(decode(&past), Err(DecodeError::UnexpectedEof));
        let mut huge = MAGIC.to_vec();
        huge.extend([
            0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert!(decode(&huge).is_err());
        // wire types 3, 4, 6, 7 and field 0
        for key in [0x0b, 0x0c, 0x0e, 0x0f, 0x02] {
            let mut bad = MAGIC.to_vec();
            bad.extend([key, 0]);
            assert!(
                matches!(decode(&bad), Err(DecodeError::IllegalTag { .. })),
                "key {key}"
            );
        }
        assert_eq!(
            decode(&envelope("v1", "Nope", Enc::new())),
            Err(DecodeError::UnknownKind {
                api_version: "v1".into(),
                kind: "Nope".into()
            })
        );
        assert_eq!(
            decode(&envelope("v1", "", Enc::new())),
            Err(DecodeError::MissingKind)
        );
        assert_eq!(
            decode(&envelope("", "Pod", Enc::new())),
            Err(DecodeError::MissingVersion { kind: "Pod".into() })
        );
        // spec.ports[0].targetPort with IntOrString type 2
        let impossible = Enc::new().msg(
            2,
            Enc::new().msg(1, Enc::new().msg(4, Enc::new().int(1, 2))),
        );
        assert!(matches!(
            decode(&envelope("v1", "Service", impossible)),
            Err(DecodeError::InvalidValue { .. })
        ));
        assert_eq!(
            DecodeError::MissingPrefix.to_string(),
            "provided data does not appear to be a protobuf message, expected prefix [107, 56, 115, 0]"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        const PROPS: &str =
            "k8s.io.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";
        let nested = |levels: usize| {
            let mut schema = Enc::new().str(5, "string");
            for _ in 0..levels {
                schema = Enc::new().msg(28, schema);
            }
            schema
        };
        let value = decode_message(PROPS, &nested(50).0).unwrap().unwrap();
        assert_eq!(
            value.pointer(&format!("{}/type", "/not".repeat(50))),
            Some(&json!("string"))
        );
        assert_eq!(
            decode_message(PROPS, &nested(MAX_DEPTH + 5).0),
            Some(Err(DecodeError::TooDeep))
        );
        // Far deeper than any stack would take recursively.
        assert_eq!(
            decode_message(PROPS, &nested(100_000).0),
            Some(Err(DecodeError::TooDeep))
        );
        assert_eq!(decode_message("no.such.Message", b""), None);
    }

    #[test]
    fn every_kind_and_field_of_the_table_is_consistent() {
        for (i, message) in MESSAGES.iter().enumerate() {
            assert!(
                message.fields.windows(2).all(|w| w[0].tag < w[1].tag),
                "{}: fields sorted by tag",
                message.name
            );
            for field in message.fields {
                if let Type::M(index) = field.ty {
                    assert!(usize::from(index) < MESSAGES.len(), "{}", message.name);
                }
                assert_eq!(
                    field.json.is_empty(),
                    field.flags & INLINE != 0,
                    "{}",
                    message.name
                );
            }
            if i > 0 {
                assert!(MESSAGES[i - 1].name < message.name, "names sorted");
            }
        }
        for (api_version, kind, index) in KINDS {
            let name = MESSAGES[usize::from(*index)].name;
            assert!(
                name.ends_with(&format!(".{kind}")),
                "{api_version} {kind}: {name}"
            );
        }
    }
}
