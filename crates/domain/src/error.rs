//! Errors the domain raises when input breaks a rule.

/// A rejected value, naming the field it came from so the API can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// Every way a domain rule can refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// A value over a size limit, as a whole (a policy document longer than its kind may be):
    /// told apart because some protocols name it (STS's `PackedPolicyTooLarge`).
    #[error(transparent)]
    TooLarge(FieldError),
}

impl DomainError {
    /// The refusal as a field error, whichever way the rule refused.
    pub fn into_field_error(self) -> FieldError {
        match self {
            Self::Invalid(f) | Self::TooLarge(f) => f,
        }
    }
}

impl From<DomainError> for FieldError {
    fn from(e: DomainError) -> Self {
        e.into_field_error()
    }
}
