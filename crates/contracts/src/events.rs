//! Events: CloudEvents 1.0 envelopes around versioned, typed payloads.
//!
//! A payload type implements [`Event`], which names its versioned type
//! (`feastfast.order.confirmed.v1`) and the service that produces it. Its
//! JSON Schema is checked in under `contracts/schemas/events/`, and a test
//! fails when a change would break a consumer of the checked-in version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The CloudEvents version FeastFast speaks.
pub const SPEC_VERSION: &str = "1.0";

/// A typed event payload.
pub trait Event: Serialize + DeserializeOwned {
    /// The versioned type, e.g. `feastfast.order.confirmed.v1`.
    const TYPE: &'static str;
    /// The producing service, e.g. `orders`.
    const SOURCE: &'static str;
    /// What the event is about (usually an order id).
    fn subject(&self) -> String;
}

/// A CloudEvents 1.0 JSON envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    pub id: String,
    /// `feastfast/<service>`.
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// RFC 3339 UTC.
    pub time: String,
    pub datacontenttype: String,
    /// W3C trace context of the change that caused the event (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub data: serde_json::Value,
}

/// An event that is not what the reader expected.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("expected an event of type {expected}, got {actual}")]
    WrongType {
        expected: &'static str,
        actual: String,
    },
    #[error("the data of {kind} does not match its schema: {source}")]
    Data {
        kind: String,
        source: serde_json::Error,
    },
}

impl CloudEvent {
    /// Wraps `payload` with a fresh id, the time `time` and the trace.
    pub fn new<E: Event>(payload: &E, time: String, traceparent: Option<String>) -> Self {
        Self {
            specversion: SPEC_VERSION.to_owned(),
            id: uuid::Uuid::now_v7().to_string(),
            source: format!("feastfast/{}", E::SOURCE),
            kind: E::TYPE.to_owned(),
            subject: Some(payload.subject()),
            time,
            datacontenttype: "application/json".to_owned(),
            traceparent,
            data: serde_json::to_value(payload).expect("event payloads always serialise to JSON"),
        }
    }

    /// Whether this envelope carries an `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.kind == E::TYPE
    }

    /// The typed payload.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if !self.is::<E>() {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                actual: self.kind.clone(),
            });
        }
        serde_json::from_value(self.data.clone()).map_err(|source| DecodeError::Data {
            kind: self.kind.clone(),
            source,
        })
    }
}

/// One entry of a producer's ordered event feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedEntry {
    /// Strictly increasing, without gaps, in the order the producer
    /// committed the events.
    pub position: i64,
    pub event: CloudEvent,
}

/// `GET /events?after=&limit=&wait=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedPage {
    pub entries: Vec<FeedEntry>,
    /// The position to ask after next time.
    pub last_position: i64,
    /// The producer's newest position: `head - last_position` is how far
    /// behind the reader is.
    #[serde(default)]
    pub head: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pinged {
        order_id: String,
        n: u32,
    }

    impl Event for Pinged {
        const TYPE: &'static str = "feastfast.test.pinged.v1";
        const SOURCE: &'static str = "tests";
        fn subject(&self) -> String {
            self.order_id.clone()
        }
    }

    #[test]
    fn an_envelope_is_cloudevents_json_and_decodes_back() {
        let payload = Pinged {
            order_id: "o-1".to_owned(),
            n: 3,
        };
        let event = CloudEvent::new(&payload, "2026-01-01T00:00:00.000Z".to_owned(), None);
        let json = serde_json::to_value(&event).expect("serialises");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "feastfast.test.pinged.v1");
        assert_eq!(json["source"], "feastfast/tests");
        assert_eq!(json["subject"], "o-1");
        assert_eq!(json["datacontenttype"], "application/json");
        assert!(json.get("traceparent").is_none());
        let back: CloudEvent = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back.decode::<Pinged>().expect("decodes"), payload);
    }

    #[test]
    fn decoding_checks_the_type() {
        let mut event = CloudEvent::new(
            &Pinged {
                order_id: "o".to_owned(),
                n: 1,
            },
            "2026-01-01T00:00:00.000Z".to_owned(),
            None,
        );
        event.kind = "feastfast.test.other.v1".to_owned();
        assert!(matches!(
            event.decode::<Pinged>(),
            Err(DecodeError::WrongType { .. })
        ));
    }
}
