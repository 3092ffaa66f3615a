//! The opaque cursor of the restaurant list: the (name, id) of the last
//! restaurant on a page.
//!
//! Invariant: a cursor only says where to resume in (name, id) order, so a
//! cursor that decodes is always safe to use, even with other filters; one
//! that does not decode was not issued by this service.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use contracts::RestaurantId;

/// Where the next page starts: after this (name, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) name: String,
    pub(crate) id: RestaurantId,
}

/// Text that is not a cursor this service issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is malformed; pass back the next_cursor of a previous page")]
pub(crate) struct InvalidCursor;

impl Cursor {
    /// Base64url of a JSON pair, so any name (quotes, commas, newlines)
    /// survives and the text is safe in a query string.
    pub(crate) fn encode(&self) -> String {
        let pair = (&self.name, self.id.to_string());
        let json = serde_json::to_vec(&pair).expect("a pair of strings always serialises");
        URL_SAFE_NO_PAD.encode(json)
    }

    pub(crate) fn decode(text: &str) -> Result<Self, InvalidCursor> {
        let json = URL_SAFE_NO_PAD.decode(text).map_err(|_| InvalidCursor)?;
        let (name, id): (String, String) =
            serde_json::from_slice(&json).map_err(|_| InvalidCursor)?;
        let id = RestaurantId::parse(&id).map_err(|_| InvalidCursor)?;
        Ok(Self { name, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_any_name() {
        for name in [
            "Pizza Place",
            "\"Quoted\", with commas\nand a newline",
            "Café ☕",
            "",
        ] {
            let cursor = Cursor {
                name: name.to_owned(),
                id: RestaurantId::new(),
            };
            assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        }
    }

    #[test]
    fn is_url_safe() {
        let cursor = Cursor {
            name: "???>>>~~~".to_owned(),
            id: RestaurantId::new(),
        };
        let text = cursor.encode();
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{text}"
        );
    }

    #[test]
    fn refuses_what_it_did_not_issue() {
        let not_a_pair = URL_SAFE_NO_PAD.encode(b"{\"name\":\"a\"}");
        let bad_id = URL_SAFE_NO_PAD.encode(b"[\"a\",\"42\"]");
        for text in ["", "!!!", "not base64 at all", &not_a_pair, &bad_id] {
            assert_eq!(Cursor::decode(text), Err(InvalidCursor), "{text:?}");
        }
    }
}
