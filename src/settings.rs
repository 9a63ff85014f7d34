//! What every configuration struct shares: the typed error its `validate` returns, and the
//! one-line check each field's rule is written with.

/// A setting outside its allowed range: the field as named in the config file, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The field's path in the config file, e.g. `proximity.range`.
    pub field: &'static str,
    /// What is wrong, with the value found.
    pub reason: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for InvalidSetting {}

/// `Ok` if `ok`, else an [`InvalidSetting`] for `field` saying it "must be `rule`, got `value`".
///
/// # Errors
/// [`InvalidSetting`] when `ok` is false.
pub fn require(
    field: &'static str,
    ok: bool,
    rule: impl std::fmt::Display,
    value: impl std::fmt::Debug,
) -> Result<(), InvalidSetting> {
    if ok {
        Ok(())
    } else {
        Err(InvalidSetting {
            field,
            reason: format!("must be {rule}, got {value:?}"),
        })
    }
}

/// Whether `x` is finite and greater than zero.
pub fn positive(x: f64) -> bool {
    x.is_finite() && x > 0.0
}
