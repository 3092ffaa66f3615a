//! The JSON Schema of every event type, and the check that keeps them
//! compatible.
//!
//! Each event's schema is generated from its Rust type and checked in under
//! `crates/contracts/schemas/events/<type>.json`. A test regenerates them
//! and fails when a type changed: with the list of breaking differences if
//! a consumer of the checked-in version could no longer read the new events
//! (bump the type's version instead), or with the command that refreshes
//! the files if the change is compatible.

use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::events::Event;

/// The schema of `E` as a standalone JSON Schema document: the root, with
/// every type it refers to under `$defs`.
pub fn schema_of<E: Event + ToSchema>() -> Value {
    let mut deps = Vec::new();
    E::schemas(&mut deps);
    let mut defs = Map::new();
    for (name, schema) in deps {
        defs.insert(name, to_json(&schema));
    }
    let mut root = to_json(&E::schema());
    if let Value::Object(obj) = &mut root {
        obj.insert(
            "$schema".to_owned(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        obj.insert("$id".to_owned(), json!(E::TYPE));
        obj.insert("title".to_owned(), json!(E::TYPE));
        if !defs.is_empty() {
            obj.insert("$defs".to_owned(), Value::Object(defs));
        }
    }
    root
}

fn to_json<T: serde::Serialize>(schema: &T) -> Value {
    let text = serde_json::to_string(schema)
        .expect("a schema always serialises")
        .replace("#/components/schemas/", "#/$defs/");
    serde_json::from_str(&text).expect("a serialised schema parses")
}

/// Every event type FeastFast publishes, with its schema.
pub fn all() -> Vec<(&'static str, Value)> {
    use crate::delivery::{CourierMoved, DeliveryAssigned, DeliveryDelivered, DeliveryPickedUp};
    use crate::kitchen::{TicketAccepted, TicketReady, TicketRejected};
    use crate::orders::{
        OrderCancelled, OrderCompleted, OrderConfirmed, OrderPlaced, OrderRejected,
        OrderStatusChanged,
    };
    use crate::payments::{
        PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentRefunded, PaymentVoided,
    };
    vec![
        (OrderPlaced::TYPE, schema_of::<OrderPlaced>()),
        (OrderConfirmed::TYPE, schema_of::<OrderConfirmed>()),
        (OrderRejected::TYPE, schema_of::<OrderRejected>()),
        (OrderCancelled::TYPE, schema_of::<OrderCancelled>()),
        (OrderCompleted::TYPE, schema_of::<OrderCompleted>()),
        (OrderStatusChanged::TYPE, schema_of::<OrderStatusChanged>()),
        (DeliveryAssigned::TYPE, schema_of::<DeliveryAssigned>()),
        (DeliveryPickedUp::TYPE, schema_of::<DeliveryPickedUp>()),
        (DeliveryDelivered::TYPE, schema_of::<DeliveryDelivered>()),
        (CourierMoved::TYPE, schema_of::<CourierMoved>()),
        (TicketAccepted::TYPE, schema_of::<TicketAccepted>()),
        (TicketRejected::TYPE, schema_of::<TicketRejected>()),
        (TicketReady::TYPE, schema_of::<TicketReady>()),
        (PaymentAuthorized::TYPE, schema_of::<PaymentAuthorized>()),
        (PaymentDeclined::TYPE, schema_of::<PaymentDeclined>()),
        (PaymentCaptured::TYPE, schema_of::<PaymentCaptured>()),
        (PaymentVoided::TYPE, schema_of::<PaymentVoided>()),
        (PaymentRefunded::TYPE, schema_of::<PaymentRefunded>()),
    ]
}

/// How `new` breaks readers of `old` (empty when it does not).
///
/// Breaking: a property removed or its type changed, a property newly
/// required (old events lack it), a changed set of enum values or a changed
/// reference. Adding an optional property is compatible.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    compare(old, new, "", &mut problems);
    if let (Some(old_defs), Some(new_defs)) = (old["$defs"].as_object(), new["$defs"].as_object()) {
        for (name, old_def) in old_defs {
            match new_defs.get(name) {
                Some(new_def) => compare(old_def, new_def, &format!("$defs/{name}"), &mut problems),
                None => problems.push(format!("$defs/{name}: removed")),
            }
        }
    }
    problems
}

fn compare(old: &Value, new: &Value, at: &str, problems: &mut Vec<String>) {
    let here = if at.is_empty() { "(root)" } else { at };
    for key in ["type", "$ref", "format", "enum"] {
        if old.get(key) != new.get(key) {
            problems.push(format!(
                "{here}: {key} changed from {} to {}",
                show(old.get(key)),
                show(new.get(key))
            ));
        }
    }
    let old_required = string_set(&old["required"]);
    for name in string_set(&new["required"]) {
        if !old_required.contains(&name) {
            problems.push(format!("{here}: {name} became required"));
        }
    }
    if let Some(old_props) = old["properties"].as_object() {
        for (name, old_prop) in old_props {
            match new["properties"].get(name) {
                Some(new_prop) => compare(old_prop, new_prop, &format!("{at}/{name}"), problems),
                None => problems.push(format!("{here}: property {name} removed")),
            }
        }
    }
    if old.get("items").is_some() {
        compare(&old["items"], &new["items"], &format!("{at}[]"), problems);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let (Some(o), Some(n)) = (old[key].as_array(), new[key].as_array()) {
            if o.len() != n.len() {
                problems.push(format!(
                    "{here}: {key} has {} alternatives, was {}",
                    n.len(),
                    o.len()
                ));
            }
            for (i, (o, n)) in o.iter().zip(n).enumerate() {
                compare(o, n, &format!("{at}/{key}[{i}]"), problems);
            }
        }
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "nothing".to_owned(), Value::to_string)
}

fn string_set(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(props: Value, required: &[&str]) -> Value {
        json!({"type": "object", "properties": props, "required": required})
    }

    #[test]
    fn adding_an_optional_field_is_compatible() {
        let old = schema(json!({"a": {"type": "string"}}), &["a"]);
        let new = schema(
            json!({"a": {"type": "string"}, "b": {"type": "integer"}}),
            &["a"],
        );
        assert!(breaking_changes(&old, &new).is_empty());
    }

    #[test]
    fn removing_retyping_or_requiring_a_field_breaks_readers() {
        let old = schema(
            json!({"a": {"type": "string"}, "n": {"type": "integer"}}),
            &["a"],
        );
        let removed = schema(json!({"n": {"type": "integer"}}), &[]);
        assert_eq!(
            breaking_changes(&old, &removed),
            ["(root): property a removed"]
        );
        let retyped = schema(
            json!({"a": {"type": "integer"}, "n": {"type": "integer"}}),
            &["a"],
        );
        assert_eq!(breaking_changes(&old, &retyped).len(), 1);
        let required = schema(
            json!({"a": {"type": "string"}, "n": {"type": "integer"}, "c": {"type": "string"}}),
            &["a", "c"],
        );
        assert_eq!(
            breaking_changes(&old, &required),
            ["(root): c became required"]
        );
    }

    #[test]
    fn every_event_matches_its_checked_in_schema() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/events");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut failures = Vec::new();
        for (kind, generated) in all() {
            let path = dir.join(format!("{kind}.json"));
            let pretty = serde_json::to_string_pretty(&generated).expect("serialises") + "\n";
            let checked_in = std::fs::read_to_string(&path).ok();
            let Some(checked_in) = checked_in else {
                if update {
                    std::fs::create_dir_all(&dir).expect("creates the schema directory");
                    std::fs::write(&path, &pretty).expect("writes the schema");
                } else {
                    failures.push(format!(
                        "{kind}: no checked-in schema; run UPDATE_SCHEMAS=1 cargo test -p contracts"
                    ));
                }
                continue;
            };
            if checked_in == pretty {
                continue;
            }
            let old: Value =
                serde_json::from_str(&checked_in).expect("a checked-in schema is JSON");
            let breaking = breaking_changes(&old, &generated);
            if !breaking.is_empty() {
                failures.push(format!(
                    "{kind}: incompatible with its checked-in schema ({}); publish a new version of the type instead",
                    breaking.join("; ")
                ));
            } else if update {
                std::fs::write(&path, &pretty).expect("writes the schema");
            } else {
                failures.push(format!("{kind}: changed compatibly; refresh with UPDATE_SCHEMAS=1 cargo test -p contracts"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
