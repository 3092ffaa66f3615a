//! Logs: JSON lines by default (one object per event, with the request's
//! trace id), or human-readable with `LOG_FORMAT=pretty`. `RUST_LOG` filters.
//!
//! A line written while a request is served names that request (method,
//! route, trace id, request id), read from [`crate::context`] when the
//! line is written. No tracing span is made per request: a span's fields
//! are formatted when it is made, whether or not anything is logged in it,
//! and most requests log nothing.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::context::{self, RequestContext};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

impl FromStr for LogFormat {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(LogFormat::Json),
            "pretty" | "text" => Ok(LogFormat::Pretty),
            _ => Err("must be json or pretty"),
        }
    }
}

/// Installs the global subscriber. A second call (tests that start several
/// services in one process) keeps the first.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = builder.event_format(Lines(format)).try_init();
}

/// Writes one event as a line in `LogFormat`, with the request it was
/// written for, if any.
struct Lines(LogFormat);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        match self.0 {
            LogFormat::Json => writeln!(writer, "{}", json_line(event)),
            LogFormat::Pretty => {
                write!(writer, "{} {:>5} ", crate::time::now(), meta.level())?;
                context::with_current(|c| {
                    write!(writer, "{} {} trace_id={}: ", c.method, c.route, c.trace_id)
                })
                .transpose()?;
                write!(writer, "{}: ", meta.target())?;
                ctx.field_format().format_fields(writer.by_ref(), event)?;
                writeln!(writer)
            }
        }
    }
}

/// `{"timestamp":…,"level":…,"fields":{…},"target":…,"span":{…}}`, the
/// request being served under `span` (where a tracing span's fields used
/// to be).
fn json_line(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut fields = JsonFields(Map::new());
    event.record(&mut fields);
    let mut line = String::with_capacity(256);
    let _ = write!(
        line,
        r#"{{"timestamp":{},"level":{},"fields":{},"target":{}"#,
        Value::from(crate::time::now()),
        Value::from(meta.level().as_str()),
        Value::Object(fields.0),
        Value::from(meta.target()),
    );
    if let Some(request) = context::with_current(request_json) {
        let _ = write!(line, r#","span":{request}"#);
    }
    line.push('}');
    line
}

fn request_json(c: &RequestContext) -> Value {
    serde_json::json!({
        "name": "request",
        "method": c.method.as_str(),
        "route": &*c.route,
        "trace_id": c.trace_id,
        "request_id": c.request_id,
    })
}

/// An event's fields as JSON values (numbers and booleans as such, the
/// rest as text).
struct JsonFields(Map<String, Value>);

impl JsonFields {
    fn put(&mut self, field: &Field, value: impl Into<Value>) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

impl Visit for JsonFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value);
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value);
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

/// For tests: logs only when `TEST_LOG` is set, so a passing run is quiet.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init(LogFormat::Pretty);
    }
}

/// What a subscriber with [`Lines`] wrote (tests of this crate).
#[cfg(test)]
#[derive(Clone, Default)]
pub(crate) struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

#[cfg(test)]
impl Captured {
    /// A subscriber writing `format` lines here.
    pub(crate) fn subscriber(&self, format: LogFormat) -> impl Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(Lines(format))
            .finish()
    }

    pub(crate) fn text(&self) -> String {
        let bytes = self.0.lock().expect("never poisoned").clone();
        String::from_utf8(bytes).expect("log lines are UTF-8")
    }
}

#[cfg(test)]
impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("never poisoned")
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logged(format: LogFormat, log: impl FnOnce()) -> String {
        let captured = Captured::default();
        tracing::subscriber::with_default(captured.subscriber(format), log);
        captured.text()
    }

    fn request() -> RequestContext {
        RequestContext {
            method: axum::http::Method::POST,
            route: "/orders/{id}/cancel".into(),
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            request_id: "r-1".into(),
            deadline: None,
        }
    }

    #[test]
    fn a_line_logged_while_serving_a_request_names_it_and_one_outside_does_not() {
        let lines = logged(LogFormat::Json, || {
            context::in_scope(request(), || {
                tracing::warn!(status = 503u16, latency_ms = 1.5, ok = false, why = %"x\"y", "request answered with a server error");
            });
            tracing::info!("listening");
        });
        let lines: Vec<Value> = lines
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
            .collect();
        assert_eq!(lines.len(), 2);
        let served = &lines[0];
        assert_eq!(served["level"], "WARN");
        assert_eq!(
            served["fields"]["message"],
            "request answered with a server error"
        );
        assert_eq!(served["fields"]["status"], 503);
        assert_eq!(served["fields"]["latency_ms"], 1.5);
        assert_eq!(served["fields"]["ok"], false);
        assert_eq!(served["fields"]["why"], "x\"y");
        assert_eq!(served["span"]["method"], "POST");
        assert_eq!(served["span"]["route"], "/orders/{id}/cancel");
        assert_eq!(
            served["span"]["trace_id"],
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(served["span"]["request_id"], "r-1");
        assert!(
            served["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        let outside = &lines[1];
        assert_eq!(outside["fields"]["message"], "listening");
        assert!(outside.get("span").is_none(), "{outside}");
    }

    #[test]
    fn a_pretty_line_names_the_request_too() {
        let line = logged(LogFormat::Pretty, || {
            context::in_scope(request(), || tracing::info!(n = 3, "done"));
        });
        assert!(
            line.contains("POST /orders/{id}/cancel trace_id=4bf92f3577b34da6a3ce929d0e0e4736: "),
            "{line}"
        );
        assert!(line.contains("done") && line.contains("n=3"), "{line}");
    }
}
