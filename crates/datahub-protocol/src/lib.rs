//! Alibaba Cloud DataHub's HTTP protocol as the official SDK (`pydatahub` 2.29) speaks it:
//! the JSON bodies, the protobuf record messages and their `DHUB` frame, request signatures
//! and body compression. Both the destination (`sluice-sink-datahub`) and the harness's own
//! DataHub-protocol server (`sluice-datahub-server`) use it, and the server's conformance is
//! proven by the SDK itself (crates/datahub-server/tests), so a mistake here cannot hide
//! behind both sides agreeing.
#![deny(missing_docs)]

pub mod api;
pub mod compress;
pub mod frame;
pub mod pb;
pub mod sign;

pub use compress::Compression;

/// Header names.
pub mod header {
    /// Client protocol version (`1.1`).
    pub const CLIENT_VERSION: &str = "x-datahub-client-version";
    /// Uncompressed body size.
    pub const RAW_SIZE: &str = "x-datahub-content-raw-size";
    /// `pub` or `sub` (protobuf calls).
    pub const REQUEST_ACTION: &str = "x-datahub-request-action";
    /// STS token.
    pub const SECURITY_TOKEN: &str = "x-datahub-security-token";
    /// Every answer's request id.
    pub const REQUEST_ID: &str = "x-datahub-request-id";
}

/// Content types.
pub mod content_type {
    /// JSON bodies.
    pub const JSON: &str = "application/json";
    /// Protobuf bodies.
    pub const PROTOBUF: &str = "application/x-protobuf";
    /// BATCH bodies.
    pub const BINARY: &str = "application/x-binary";
}
