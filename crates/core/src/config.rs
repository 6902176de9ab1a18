//! What a component's settings check reports: the field at fault, named within the
//! component's section of the project file (`partition_mode` of `destination`), and what is
//! wrong with the fix. The project file adds the section, the file and the line.

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The field, relative to its section (`partition_mode`, `topics`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
