//! Helpers for reading Hugging Face `config.json` files.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::{Error, Result};

/// Deserializes an image or patch size given as an integer or as a square `[n, n]` pair.
/// Non-square sizes are rejected: the position-embedding grids of these models are square.
pub fn square_size<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    let bad = || {
        serde::de::Error::custom(format!(
            "expected a positive integer or a square [n, n] pair, got {v}"
        ))
    };
    match &v {
        Value::Number(n) => n.as_i64().filter(|&n| n > 0).ok_or_else(bad),
        Value::Array(a) => match a.as_slice() {
            [x, y] if x == y => x.as_i64().filter(|&n| n > 0).ok_or_else(bad),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Checks a size-like field is in `1..=max`.
pub fn check_range(name: &str, value: i64, max: i64) -> Result<()> {
    if (1..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{name}` = {value} is outside 1..={max}"
        )))
    }
}

/// Checks a LayerNorm epsilon is positive and finite.
pub fn check_eps(value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`layer_norm_eps` = {value} must be positive and finite"
        )))
    }
}

/// Deserializes a JSON object into a config struct, with errors naming the problem and the
/// field it is in (e.g. "hidden_size: invalid type: string \"768\", expected usize").
pub fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            Error::config(inner.to_string())
        } else {
            Error::config(format!("{path}: {inner}"))
        }
    })
}
