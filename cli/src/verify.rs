//! `feastfast verify --gateway <url>`: checks the invariants that span
//! services on one reading of the gateway's audit (`GET /api/v1/ops/audit`,
//! `contracts::audit`), prints each violation on its own line with the
//! facts every service holds about it, and fails if there is any.
//!
//! [`check`] is the whole judgement, a pure function of the audit: each
//! rule below is one `Rule`, unit-tested with data that breaks it. Facts
//! that travel by event may lag (delivery may know of a pick-up orders has
//! not consumed yet), so a status agrees with every later fact; a saga
//! with commands in flight is judged only on its safety rules until its
//! grace period is over, then it is stuck. `--wait` re-reads until the
//! report is clean or the wait ends: a platform recovering from a crash
//! converges, and the last report is the one that counts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use clap::Args;
use contracts::OrderId;
use contracts::audit::{
    DeliveryAudit, EventsAudit, OrderAudit, PaymentAudit, PlatformAudit, ReservationAudit,
    TicketAudit,
};
use contracts::delivery::DeliveryStatus;
use contracts::kitchen::{ReservationStatus, TicketStatus};
use contracts::orders::OrderStatus;
use contracts::payments::PaymentStatus;

use crate::load::mix::parse_duration;

#[derive(Args, Debug)]
pub(crate) struct VerifyArgs {
    /// The gateway whose ops API serves the audit.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    gateway: String,
    /// How long a saga may have commands in flight, a decision may be
    /// overdue, or an event may wait in an outbox before it counts as stuck.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    grace: Duration,
    /// Keep re-checking (every second) until clean or this long has passed;
    /// the last report is the one printed.
    #[arg(long, value_parser = parse_duration)]
    wait: Option<Duration>,
}

/// The invariants, each with what breaking it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rule {
    /// A service's audit could not be read: nothing about it is known.
    Unreadable,
    /// A service holds a record of an order orders does not know.
    UnknownOrder,
    AuthorizedTwice,
    CapturedTwice,
    CaptureAboveAuthorization,
    /// Money taken before the courier had the food.
    CaptureWithoutPickup,
    /// A rejected or cancelled order still holds the customer's funds.
    LiveAuthorization,
    /// A rejected or cancelled order still holds stock.
    StockHeld,
    /// A courier with two active deliveries.
    CourierDoubleBooked,
    /// Commands outstanding past the grace period.
    SagaStuck,
    /// The restaurant's acceptance window closed past the grace period and
    /// the saga did not decide.
    DecisionOverdue,
    /// A participant's state does not fit the order's status.
    StateMismatch,
    /// Events waiting in an outbox past the grace period.
    OutboxStuck,
    /// An event a consumer parked.
    DeadLetter,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Unreadable => "unreadable",
            Rule::UnknownOrder => "unknown order",
            Rule::AuthorizedTwice => "authorized twice",
            Rule::CapturedTwice => "captured twice",
            Rule::CaptureAboveAuthorization => "capture above authorization",
            Rule::CaptureWithoutPickup => "capture without pick-up",
            Rule::LiveAuthorization => "live authorization",
            Rule::StockHeld => "stock held",
            Rule::CourierDoubleBooked => "courier double-booked",
            Rule::SagaStuck => "saga stuck",
            Rule::DecisionOverdue => "decision overdue",
            Rule::StateMismatch => "state mismatch",
            Rule::OutboxStuck => "outbox stuck",
            Rule::DeadLetter => "dead letter",
        }
    }
}

/// One broken invariant.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Violation {
    pub(crate) rule: Rule,
    pub(crate) order: Option<OrderId>,
    pub(crate) what: String,
    /// What each service holds about it.
    pub(crate) facts: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(order) = self.order {
            write!(f, "order {order}: ")?;
        }
        write!(f, "{}: {}", self.rule.name(), self.what)?;
        if !self.facts.is_empty() {
            write!(f, " [{}]", self.facts)?;
        }
        Ok(())
    }
}

/// What every service holds about one order.
#[derive(Default)]
struct Facts<'a> {
    order: Option<&'a OrderAudit>,
    payment: Option<&'a PaymentAudit>,
    reservation: Option<&'a ReservationAudit>,
    ticket: Option<&'a TicketAudit>,
    delivery: Option<&'a DeliveryAudit>,
}

/// Which services could be read: a fact of one that could not is unknown,
/// not absent.
struct Readable {
    orders: bool,
    payments: bool,
    restaurants: bool,
    delivery: bool,
}

impl Facts<'_> {
    fn describe(&self, read: &Readable) -> String {
        let unknown = |readable: bool| if readable { "none" } else { "unknown" };
        let orders = self.order.map_or(unknown(read.orders).to_owned(), |o| {
            let outstanding = if o.outstanding.is_empty() {
                String::new()
            } else {
                format!(", outstanding {}", o.outstanding.join("+"))
            };
            format!("{}{outstanding}", o.status.as_str())
        });
        let payments = self.payment.map_or(unknown(read.payments).to_owned(), |p| {
            format!(
                "{} {}¢ captured {}¢ (authorize×{} capture×{} void×{})",
                p.status.as_str(),
                p.authorized_cents,
                p.captured_cents,
                p.authorizations.count,
                p.captures.count,
                p.voids.count
            )
        });
        let reservation = self
            .reservation
            .map_or(unknown(read.restaurants).to_owned(), |r| {
                format!("{:?}", r.status).to_lowercase()
            });
        let ticket = self
            .ticket
            .map_or(unknown(read.restaurants).to_owned(), |t| {
                format!("{:?}", t.status).to_uppercase()
            });
        let delivery = self
            .delivery
            .map_or(unknown(read.delivery).to_owned(), |d| match d.courier_id {
                Some(courier) => format!("{} courier {courier}", d.status.as_str()),
                None => d.status.as_str().to_owned(),
            });
        format!(
            "orders: {orders}; payments: {payments}; restaurants: reservation {reservation}, ticket {ticket}; delivery: {delivery}"
        )
    }
}

/// Every violation in `audit`, ages measured against its `taken_at`.
pub(crate) fn check(audit: &PlatformAudit, grace: Duration) -> Vec<Violation> {
    let mut found = Vec::new();
    let mut broke = |rule, order, what: String, facts: String| {
        found.push(Violation {
            rule,
            order,
            what,
            facts,
        })
    };
    for (service, why) in &audit.unavailable {
        broke(
            Rule::Unreadable,
            None,
            format!("{service} could not be read: {why}"),
            String::new(),
        );
    }
    let read = Readable {
        orders: audit.orders.is_some(),
        payments: audit.payments.is_some(),
        restaurants: audit.restaurants.is_some(),
        delivery: audit.delivery.is_some(),
    };
    let now = instant(&audit.taken_at);
    let grace_s = grace.as_secs_f64();

    let mut by_order: BTreeMap<OrderId, Facts> = BTreeMap::new();
    for o in audit.orders.iter().flat_map(|a| &a.orders) {
        by_order.entry(o.id).or_default().order = Some(o);
    }
    for p in audit.payments.iter().flat_map(|a| &a.payments) {
        by_order.entry(p.order_id).or_default().payment = Some(p);
    }
    for r in audit.restaurants.iter().flat_map(|a| &a.reservations) {
        by_order.entry(r.order_id).or_default().reservation = Some(r);
    }
    for t in audit.restaurants.iter().flat_map(|a| &a.tickets) {
        by_order.entry(t.order_id).or_default().ticket = Some(t);
    }
    for d in audit.delivery.iter().flat_map(|a| &a.deliveries) {
        by_order.entry(d.order_id).or_default().delivery = Some(d);
    }

    for (id, facts) in &by_order {
        let id = Some(*id);
        let described = || facts.describe(&read);
        if let Some(p) = facts.payment {
            if p.authorizations.count > 1 {
                broke(
                    Rule::AuthorizedTwice,
                    id,
                    format!("{} authorizations", p.authorizations.count),
                    described(),
                );
            }
            if p.captures.count > 1 {
                broke(
                    Rule::CapturedTwice,
                    id,
                    format!("{} captures", p.captures.count),
                    described(),
                );
            }
            if p.captures.cents > p.authorizations.cents || p.captured_cents > p.authorized_cents {
                broke(
                    Rule::CaptureAboveAuthorization,
                    id,
                    format!(
                        "{}¢ captured of {}¢ authorized",
                        p.captures.cents.max(p.captured_cents),
                        p.authorizations.cents.min(p.authorized_cents)
                    ),
                    described(),
                );
            }
            let picked_up = facts.delivery.is_some_and(|d| {
                matches!(
                    d.status,
                    DeliveryStatus::PickedUp | DeliveryStatus::Delivered
                )
            });
            if p.captures.count > 0 && read.delivery && !picked_up {
                broke(
                    Rule::CaptureWithoutPickup,
                    id,
                    "captured, but no courier picked the order up".to_owned(),
                    described(),
                );
            }
        }
        let Some(order) = facts.order else {
            if read.orders {
                broke(
                    Rule::UnknownOrder,
                    id,
                    "other services hold records of an order orders does not know".to_owned(),
                    described(),
                );
            }
            continue;
        };
        let age = |at: &str| {
            now.zip(instant(at))
                .map(|(now, at)| (now - at).as_seconds_f64())
        };
        if !order.outstanding.is_empty() {
            if let Some(age) = age(&order.updated_at).filter(|a| *a > grace_s) {
                broke(
                    Rule::SagaStuck,
                    id,
                    format!(
                        "{} outstanding for {age:.0} s",
                        order.outstanding.join(", ")
                    ),
                    described(),
                );
            }
            // In flight within its grace: only the safety rules above apply.
            continue;
        }
        if let Some(late) = order
            .decide_by
            .as_deref()
            .and_then(age)
            .filter(|a| *a > grace_s)
        {
            broke(
                Rule::DecisionOverdue,
                id,
                format!("the acceptance window closed {late:.0} s ago, still undecided"),
                described(),
            );
        }
        let failed = matches!(order.status, OrderStatus::Rejected | OrderStatus::Cancelled);
        if failed
            && facts
                .payment
                .is_some_and(|p| p.status == PaymentStatus::Authorized)
        {
            broke(
                Rule::LiveAuthorization,
                id,
                format!(
                    "a {} order's authorization was never voided",
                    order.status.as_str()
                ),
                described(),
            );
        }
        if failed
            && facts
                .reservation
                .is_some_and(|r| r.status == ReservationStatus::Reserved)
        {
            broke(
                Rule::StockHeld,
                id,
                format!("a {} order still holds stock", order.status.as_str()),
                described(),
            );
        }
        let disagree = mismatches(order.status, facts, &read);
        if !disagree.is_empty() {
            broke(
                Rule::StateMismatch,
                id,
                format!(
                    "{} does not fit {}",
                    order.status.as_str(),
                    disagree.join(", ")
                ),
                described(),
            );
        }
    }

    let mut active: BTreeMap<String, Vec<OrderId>> = BTreeMap::new();
    for d in audit.delivery.iter().flat_map(|a| &a.deliveries) {
        if let (Some(courier), true) = (d.courier_id, d.status.is_active()) {
            active
                .entry(courier.to_string())
                .or_default()
                .push(d.order_id);
        }
    }
    for (courier, orders) in active.into_iter().filter(|(_, o)| o.len() > 1) {
        let orders: Vec<String> = orders.iter().map(ToString::to_string).collect();
        broke(
            Rule::CourierDoubleBooked,
            None,
            format!(
                "courier {courier} has {} active deliveries: {}",
                orders.len(),
                orders.join(", ")
            ),
            String::new(),
        );
    }

    let events: [(&str, Option<&EventsAudit>); 4] = [
        ("orders", audit.orders.as_ref().map(|a| &a.events)),
        ("payments", audit.payments.as_ref().map(|a| &a.events)),
        ("restaurants", audit.restaurants.as_ref().map(|a| &a.events)),
        ("delivery", audit.delivery.as_ref().map(|a| &a.events)),
    ];
    for (service, events) in events {
        let Some(events) = events else { continue };
        if let Some(oldest) = events.outbox_oldest_seconds.filter(|s| *s > grace_s)
            && events.outbox_unpublished > 0
        {
            broke(
                Rule::OutboxStuck,
                None,
                format!(
                    "{service} has {} unpublished events, the oldest {oldest:.0} s old",
                    events.outbox_unpublished
                ),
                String::new(),
            );
        }
        for dead in &events.dead_letters {
            broke(
                Rule::DeadLetter,
                None,
                format!(
                    "{service} parked {} {} from {} after {} attempts: {}",
                    dead.kind, dead.event_id, dead.source, dead.attempts, dead.error
                ),
                String::new(),
            );
        }
    }
    found
}

/// What the participants hold that does not fit a settled order's
/// `status`. Each status accepts the later facts of its participants
/// (events may not have reached orders yet), never the earlier ones; a
/// participant that could not be read is not judged.
fn mismatches(status: OrderStatus, facts: &Facts, read: &Readable) -> Vec<String> {
    use DeliveryStatus as D;
    use PaymentStatus as P;
    use ReservationStatus as R;
    use TicketStatus as T;
    // `None` in a list: the participant holds nothing for the order.
    // A rule left `None` is not judged here (a rule of its own covers it,
    // or the status says nothing about that participant).
    struct Expect {
        payment: Option<&'static [Option<P>]>,
        reservation: Option<&'static [Option<R>]>,
        ticket: Option<&'static [Option<T>]>,
        delivery: Option<&'static [Option<D>]>,
    }
    const HELD: &[Option<R>] = &[Some(R::Reserved)];
    const AUTHORIZED: &[Option<P>] = &[Some(P::Authorized)];
    const CAPTURED: &[Option<P>] = &[
        Some(P::Captured),
        Some(P::Refunded),
        Some(P::PartiallyRefunded),
    ];
    const ACCEPTED: &[Option<T>] = &[Some(T::Accepted), Some(T::Ready)];
    let expect = match status {
        // Settled in these, the saga forgot a step: nothing fits.
        OrderStatus::Pending | OrderStatus::PaymentPending | OrderStatus::CancelPending => {
            return vec!["its saga waiting for nothing".to_owned()];
        }
        OrderStatus::AwaitingRestaurant => Expect {
            payment: Some(AUTHORIZED),
            reservation: Some(HELD),
            ticket: Some(&[
                Some(T::Pending),
                Some(T::Accepted),
                Some(T::Ready),
                Some(T::Rejected),
            ]),
            delivery: Some(&[None]),
        },
        OrderStatus::Confirmed => Expect {
            payment: Some(AUTHORIZED),
            reservation: Some(HELD),
            ticket: Some(ACCEPTED),
            delivery: Some(&[
                None,
                Some(D::Pending),
                Some(D::Assigned),
                Some(D::PickedUp),
                Some(D::Delivered),
            ]),
        },
        OrderStatus::CourierAssigned => Expect {
            payment: Some(AUTHORIZED),
            reservation: Some(HELD),
            ticket: Some(ACCEPTED),
            delivery: Some(&[Some(D::Assigned), Some(D::PickedUp), Some(D::Delivered)]),
        },
        OrderStatus::PickedUp => Expect {
            payment: Some(CAPTURED),
            reservation: Some(HELD),
            ticket: Some(ACCEPTED),
            delivery: Some(&[Some(D::PickedUp), Some(D::Delivered)]),
        },
        OrderStatus::Delivered => Expect {
            payment: Some(CAPTURED),
            reservation: Some(HELD),
            ticket: Some(ACCEPTED),
            delivery: Some(&[Some(D::Delivered)]),
        },
        // Money and stock: `LiveAuthorization` and `StockHeld`.
        OrderStatus::Rejected | OrderStatus::Cancelled => Expect {
            payment: None,
            reservation: None,
            ticket: Some(&[None, Some(T::Rejected), Some(T::Cancelled)]),
            delivery: Some(&[None, Some(D::Cancelled)]),
        },
    };
    let mut wrong = Vec::new();
    judge(
        &mut wrong,
        "payment",
        read.payments,
        expect.payment,
        facts.payment.map(|p| p.status),
        |s| s.as_str().to_owned(),
    );
    judge(
        &mut wrong,
        "reservation",
        read.restaurants,
        expect.reservation,
        facts.reservation.map(|r| r.status),
        |s| format!("{s:?}").to_lowercase(),
    );
    judge(
        &mut wrong,
        "ticket",
        read.restaurants,
        expect.ticket,
        facts.ticket.map(|t| t.status),
        |s| format!("{s:?}").to_uppercase(),
    );
    judge(
        &mut wrong,
        "delivery",
        read.delivery,
        expect.delivery,
        facts.delivery.map(|d| d.status),
        |s| s.as_str().to_owned(),
    );
    wrong
}

/// Adds `name held` to `wrong` when `held` is not among `allowed` (a
/// participant that was read, under a rule that judges it).
fn judge<S: Copy + PartialEq>(
    wrong: &mut Vec<String>,
    name: &str,
    readable: bool,
    allowed: Option<&[Option<S>]>,
    held: Option<S>,
    show: impl Fn(S) -> String,
) {
    if readable && allowed.is_some_and(|allowed| !allowed.contains(&held)) {
        wrong.push(format!("{name} {}", held.map_or("none".to_owned(), show)));
    }
}

fn instant(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

pub(crate) async fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let url = format!("{}/api/v1/ops/audit", args.gateway.trim_end_matches('/'));
    let until = Instant::now() + args.wait.unwrap_or_default();
    let (violations, orders) = loop {
        let (violations, orders) = match read(&client, &url).await {
            Ok(audit) => (
                check(&audit, args.grace),
                audit.orders.as_ref().map_or(0, |o| o.orders.len()),
            ),
            Err(e) => (
                vec![Violation {
                    rule: Rule::Unreadable,
                    order: None,
                    what: format!("the audit at {url} could not be read: {e:#}"),
                    facts: String::new(),
                }],
                0,
            ),
        };
        if violations.is_empty() || Instant::now() >= until {
            break (violations, orders);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for violation in &violations {
        println!("{violation}");
    }
    println!("{} violations ({orders} orders checked)", violations.len());
    if violations.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{} invariants broken", violations.len())
    }
}

async fn read(client: &reqwest::Client, url: &str) -> anyhow::Result<PlatformAudit> {
    let response = client.get(url).send().await?.error_for_status()?;
    Ok(response.json().await?)
}

#[cfg(test)]
mod tests;
