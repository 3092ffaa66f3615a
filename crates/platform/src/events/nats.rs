//! The production transport: NATS JetStream.
//!
//! Each producing service has one stream, `<PREFIX>_<SERVICE>`, holding the
//! subjects `<prefix>.<service>.>`; an event of type `order.confirmed.v1`
//! from orders is published on `feastfast.orders.order.confirmed.v1`. The
//! relay publishes each event with `Nats-Msg-Id` = the event id, so a
//! batch published again after a crash is dropped by the server's
//! duplicate window (and by the consumers' inbox beyond it), and with the
//! event's `traceparent` as a header.
//!
//! A consuming service reads a producer's stream through one durable pull
//! consumer named after itself; its replicas share that consumer, so each
//! event goes to one of them. The acks are the consumer's position: no
//! cursor is stored, and an event it does not want is acknowledged without
//! a transaction. A message is acknowledged only after the
//! transaction that applied it (and recorded its id in the inbox)
//! committed; a failure is negatively acknowledged with a growing delay, so
//! JetStream redelivers it later while the rest keeps flowing; after the
//! configured attempts it is parked in `dead_letters` and acknowledged.
//!
//! Only this module knows NATS.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull, stream};
use contracts::events::{CloudEvent, FeedEntry};
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use super::BoxFuture;
use super::consumer::{Consumer, Handler, Outcome};
use super::transport::Publisher;

/// How long the server remembers message ids to drop duplicates.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long JetStream waits for an ack before delivering a message again:
/// the time a message lies with a consumer that crashed holding it (the
/// consumer takes a batch at once, so a crash strands the rest of it
/// too). Short, because a stranded event holds up its saga, while a
/// redelivery only costs the inbox claim that finds it applied (a batch
/// that takes longer than this to work through has its tail delivered
/// again too, and those claims find it applied). NATS's own default is
/// 30 s.
pub const ACK_WAIT: Duration = Duration::from_secs(5);

/// A connection to NATS JetStream, with the subject prefix of this
/// deployment.
#[derive(Clone)]
pub struct Nats {
    conn: Arc<Connection>,
    prefix: String,
    /// The service this connection belongs to: the producer of what it
    /// publishes, the durable consumer name of what it consumes.
    service: String,
}

impl Nats {
    /// Connects to `url`, naming the connection after `service`. The
    /// connection retries in the background when the server is away.
    pub async fn connect(url: &str, prefix: &str, service: &str) -> anyhow::Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("feastfast-{service}"))
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to NATS at {url}: {e}"))?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            conn: Arc::new(Connection { client, js }),
            prefix: prefix.to_owned(),
            service: service.to_owned(),
        })
    }

    /// The stream that holds `producer`'s events.
    pub fn stream_name(&self, producer: &str) -> String {
        format!("{}_{}", self.prefix, producer)
            .to_ascii_uppercase()
            .replace(['-', '.'], "_")
    }

    /// The subject of an event of type `kind` from `producer`.
    pub fn subject(&self, producer: &str, kind: &str) -> String {
        format!("{}.{producer}.{kind}", self.prefix)
    }

    /// Creates `producer`'s stream if it does not exist yet (producer and
    /// consumers both call this, whoever comes first).
    pub async fn ensure_stream(&self, producer: &str) -> anyhow::Result<stream::Stream> {
        self.conn
            .js
            .get_or_create_stream(stream::Config {
                name: self.stream_name(producer),
                subjects: vec![format!("{}.{producer}.>", self.prefix)],
                storage: stream::StorageType::File,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("stream {}: {e}", self.stream_name(producer)))
    }

    /// How many messages `producer`'s stream holds, if the stream exists.
    pub async fn stream_messages(&self, producer: &str) -> anyhow::Result<Option<u64>> {
        match self.conn.js.get_stream(self.stream_name(producer)).await {
            Ok(mut stream) => Ok(Some(stream.info().await?.state.messages)),
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js)
                    if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(e.into()),
            },
        }
    }

    /// The streams whose names start with this deployment's prefix, with
    /// how many messages each holds.
    pub async fn streams(&self) -> anyhow::Result<Vec<(String, u64)>> {
        let prefix = format!("{}_", self.prefix.to_ascii_uppercase());
        let mut names = self.conn.js.stream_names();
        let mut found = Vec::new();
        while let Some(name) = names.next().await {
            let name = name?;
            if name.starts_with(&prefix) {
                let messages = self
                    .conn
                    .js
                    .get_stream(&name)
                    .await?
                    .info()
                    .await?
                    .state
                    .messages;
                found.push((name, messages));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Deletes the stream `name` (one of [`Nats::streams`]).
    pub async fn delete_stream_named(&self, name: &str) -> anyhow::Result<()> {
        self.conn.js.delete_stream(name).await?;
        Ok(())
    }

    /// Deletes `producer`'s stream (tests clean up after themselves).
    pub async fn delete_stream(&self, producer: &str) -> anyhow::Result<()> {
        self.conn
            .js
            .delete_stream(self.stream_name(producer))
            .await?;
        Ok(())
    }

    /// The publisher of this service's outbox.
    pub fn publisher(&self) -> NatsPublisher {
        NatsPublisher {
            nats: self.clone(),
            producer: self.service.clone(),
            stream: Arc::new(OnceCell::new()),
        }
    }

    /// Every event `producer` publishes from now on, as it is published
    /// (a plain subscription: nothing durable, for live views).
    pub async fn live(&self, producer: &str) -> anyhow::Result<async_nats::Subscriber> {
        Ok(self
            .conn
            .client
            .subscribe(format!("{}.{producer}.>", self.prefix))
            .await?)
    }

    /// This service's durable pull consumer (named after the service,
    /// shared by its replicas) of `producer`'s stream, redelivering what
    /// is not acked within `ack_wait`. Created, or updated to this
    /// configuration if an earlier version created it otherwise.
    pub async fn durable(&self, producer: &str, ack_wait: Duration) -> anyhow::Result<Durable> {
        let consumer = self.service.as_str();
        let stream = self.ensure_stream(producer).await?;
        let pull = stream
            .create_consumer(pull::Config {
                durable_name: Some(consumer.to_owned()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait,
                // Dead letters are ours (parked in the consumer's
                // database), so the server never gives up on its own.
                max_deliver: -1,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("consumer {consumer} of {producer}: {e}"))?;
        Ok(Durable { pull })
    }
}

/// The client and its JetStream context, shared by every clone.
struct Connection {
    client: async_nats::Client,
    js: jetstream::Context,
}

/// Publishes an outbox's events to its producer's stream.
#[derive(Clone)]
pub struct NatsPublisher {
    nats: Nats,
    producer: String,
    stream: Arc<OnceCell<()>>,
}

impl Publisher for NatsPublisher {
    fn publish<'a>(&'a self, entries: &'a [FeedEntry]) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            self.stream
                .get_or_try_init(|| async {
                    self.nats.ensure_stream(&self.producer).await.map(|_| ())
                })
                .await?;
            // Send the whole batch, then wait for every ack: one round
            // trip's latency per batch, not per event.
            let mut acks = Vec::with_capacity(entries.len());
            for entry in entries {
                let event = &entry.event;
                let mut message = jetstream::message::PublishMessage::build()
                    .payload(serde_json::to_vec(event)?.into())
                    .message_id(&event.id)
                    .header("ce-type", event.kind.as_str());
                if let Some(traceparent) = &event.traceparent {
                    message = message.header("traceparent", traceparent.as_str());
                }
                let subject = self.nats.subject(&self.producer, &event.kind);
                acks.push(self.nats.conn.js.send_publish(subject, message).await?);
            }
            for ack in acks {
                ack.await?;
            }
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "nats"
    }
}

/// A durable pull consumer of one producer's stream.
pub struct Durable {
    pull: jetstream::consumer::PullConsumer,
}

impl Durable {
    /// How many of the stream's messages this consumer has not been
    /// delivered yet.
    pub async fn pending(&self) -> anyhow::Result<u64> {
        Ok(self.pull.get_info().await?.num_pending)
    }

    /// How long the server waits for an ack before delivering again.
    pub async fn ack_wait(&self) -> anyhow::Result<Duration> {
        Ok(self.pull.get_info().await?.config.ack_wait)
    }
}

impl<H: Handler, S: super::transport::Source> Consumer<H, S> {
    /// Consumes the source's stream through this service's durable
    /// consumer, forever: re-creating the consumer after a failure.
    pub(crate) async fn run_jetstream(&self, nats: &Nats) {
        self.count_parked().await;
        let mut backoff = self.config.first_backoff;
        loop {
            let result = async {
                let durable = nats
                    .durable(&self.config.source, self.config.ack_wait)
                    .await?;
                self.export_lag(&durable).await;
                loop {
                    self.jetstream_batch(&durable).await?;
                    backoff = self.config.first_backoff;
                }
                #[allow(unreachable_code)]
                Ok::<(), anyhow::Error>(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(source = %self.config.source, error = %format!("{e:#}"),
                    "JetStream consumer failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.config.max_backoff);
            }
        }
    }

    /// Pulls one batch (waiting up to the configured wait for the first
    /// message) and settles each message.
    async fn jetstream_batch(&self, durable: &Durable) -> anyhow::Result<()> {
        let mut messages = durable
            .pull
            .batch()
            .max_messages(usize::try_from(self.config.batch).unwrap_or(100))
            .expires(self.config.wait)
            .messages()
            .await?;
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| anyhow::anyhow!("{e}"))?;
            self.settle(message).await?;
        }
        self.export_lag(durable).await;
        Ok(())
    }

    /// Exports how many events the durable consumer has not had yet.
    async fn export_lag(&self, durable: &Durable) {
        if let Ok(pending) = durable.pending().await {
            metrics::gauge!("consumer_lag_events", "source" => self.config.source.clone())
                .set(pending as f64);
        }
    }

    /// Applies one message and acks it after the commit; naks it with a
    /// delay on failure, or parks it after the last attempt.
    async fn settle(&self, message: jetstream::Message) -> anyhow::Result<()> {
        let info = message.info().map_err(|e| anyhow::anyhow!("{e}"))?;
        let (sequence, delivered) = (
            i64::try_from(info.stream_sequence).unwrap_or(i64::MAX),
            info.delivered,
        );
        let event: CloudEvent = match serde_json::from_slice(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                // Not an event at all: no attempt can apply it.
                tracing::error!(source = %self.config.source, sequence, error = %e,
                    "a message on the stream is not an event; dropped");
                message
                    .ack_with(AckKind::Term)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                return Ok(());
            }
        };
        let ack = match self.apply(sequence, &event).await {
            Ok(outcome) => {
                self.count(&event, outcome);
                AckKind::Ack
            }
            Err(e) if delivered >= i64::from(self.config.max_attempts) => {
                tracing::error!(source = %self.config.source, event_id = %event.id, kind = %event.kind,
                    attempts = delivered, error = %format!("{e:#}"), "event parked as a dead letter");
                self.dead_letter(
                    sequence,
                    &event,
                    &format!("{e:#}"),
                    u32::try_from(delivered).unwrap_or(u32::MAX),
                )
                .await?;
                self.count(&event, Outcome::DeadLettered);
                AckKind::Ack
            }
            Err(e) => {
                let delay = self
                    .config
                    .backoff(u32::try_from(delivered).unwrap_or(u32::MAX));
                tracing::warn!(source = %self.config.source, event_id = %event.id, kind = %event.kind,
                    attempt = delivered, retry_in_ms = delay.as_millis() as u64,
                    error = %format!("{e:#}"), "applying an event failed; redelivery later");
                AckKind::Nak(Some(delay))
            }
        };
        message
            .ack_with(ack)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}
