//! Partial updates: telling "field absent" from "field set to null".

use serde::{Deserialize, Deserializer};

/// Deserialises a present field (even `null`) as `Some(value)`, so that
/// `#[serde(default, deserialize_with = "patch::present")] field: Option<Option<T>>`
/// reads absent as `None`, `null` as `Some(None)` and a value as `Some(Some(v))`.
pub fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct Patch {
        #[serde(default, deserialize_with = "super::present")]
        stock: Option<Option<i64>>,
    }

    fn parse(json: &str) -> Option<Option<i64>> {
        serde_json::from_str::<Patch>(json).expect("valid").stock
    }

    #[test]
    fn tells_absent_from_null_from_value() {
        assert_eq!(parse("{}"), None);
        assert_eq!(parse(r#"{"stock":null}"#), Some(None));
        assert_eq!(parse(r#"{"stock":3}"#), Some(Some(3)));
    }
}
