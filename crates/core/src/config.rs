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

/// A setting given in the file (`field`) or read from the environment variable it names
/// (`field_env`), not both; a named variable that is not set is an error naming it.
pub fn given_or_env(
    value: Option<String>,
    env: Option<String>,
    field: &str,
) -> Result<Option<String>, FieldError> {
    match (value, env) {
        (Some(_), Some(_)) => Err(FieldError::new(
            field,
            format!("give {field} or {field}_env, not both"),
        )),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(var)) => std::env::var(&var).map(Some).map_err(|_| {
            FieldError::new(
                format!("{field}_env"),
                format!("environment variable {var} is not set"),
            )
        }),
        (None, None) => Ok(None),
    }
}
