//! The Kubernetes API's rules, without I/O: which resources exist (group, version, kind,
//! scope, short names, subresources), and the logic the API server applies to objects.

pub mod conversion;
pub mod defaults;
pub mod patch;
pub mod pods;
pub mod protobuf;
#[rustfmt::skip]
mod proto_schema;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod validate_types;
pub mod validation;
