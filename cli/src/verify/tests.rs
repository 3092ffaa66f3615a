//! Each rule of `check`, broken on purpose in otherwise clean data.

use std::time::Duration;

use contracts::audit::*;
use contracts::delivery::DeliveryStatus;
use contracts::kitchen::{ReservationStatus, TicketStatus};
use contracts::orders::OrderStatus;
use contracts::payments::PaymentStatus;
use contracts::{OrderId, UserId};

use super::{Rule, check};

const NOW: &str = "2026-05-01T12:00:00.000Z";
const RECENT: &str = "2026-05-01T11:59:55.000Z";
const LONG_AGO: &str = "2026-05-01T11:50:00.000Z";
const GRACE: Duration = Duration::from_secs(30);

fn order(status: OrderStatus) -> OrderAudit {
    OrderAudit {
        id: OrderId::new(),
        status,
        created_at: RECENT.to_owned(),
        updated_at: RECENT.to_owned(),
        outstanding: Vec::new(),
        decide_by: None,
    }
}

fn payment(order: OrderId, status: PaymentStatus) -> PaymentAudit {
    let cents = 2_000;
    let one = Tally { count: 1, cents };
    let captured = matches!(status, PaymentStatus::Captured);
    PaymentAudit {
        order_id: order,
        status,
        authorized_cents: cents,
        captured_cents: if captured { cents } else { 0 },
        authorizations: one,
        captures: if captured { one } else { Tally::default() },
        voids: if status == PaymentStatus::Voided {
            one
        } else {
            Tally::default()
        },
        refunds: Tally::default(),
    }
}

/// An order's status and what each participant holds for it.
type Row = (
    OrderStatus,
    Option<PaymentStatus>,
    Option<ReservationStatus>,
    Option<TicketStatus>,
    Option<DeliveryStatus>,
);

/// A platform at rest: one order in each settled state, every
/// participant agreeing with it.
fn clean() -> PlatformAudit {
    let mut audit = PlatformAudit {
        taken_at: NOW.to_owned(),
        orders: Some(OrdersAudit::default()),
        payments: Some(PaymentsAudit::default()),
        restaurants: Some(RestaurantsAudit::default()),
        delivery: Some(DeliveriesAudit::default()),
        ..PlatformAudit::default()
    };
    use DeliveryStatus as D;
    use PaymentStatus as P;
    use ReservationStatus as R;
    use TicketStatus as T;
    let rows: [Row; 6] = [
        (
            OrderStatus::Delivered,
            Some(P::Captured),
            Some(R::Reserved),
            Some(T::Ready),
            Some(D::Delivered),
        ),
        (
            OrderStatus::Cancelled,
            Some(P::Voided),
            Some(R::Released),
            Some(T::Cancelled),
            Some(D::Cancelled),
        ),
        (
            OrderStatus::Rejected,
            Some(P::Declined),
            Some(R::Released),
            None,
            None,
        ),
        (
            OrderStatus::Confirmed,
            Some(P::Authorized),
            Some(R::Reserved),
            Some(T::Accepted),
            Some(D::Pending),
        ),
        (
            OrderStatus::CourierAssigned,
            Some(P::Authorized),
            Some(R::Reserved),
            Some(T::Accepted),
            Some(D::Assigned),
        ),
        (
            OrderStatus::AwaitingRestaurant,
            Some(P::Authorized),
            Some(R::Reserved),
            Some(T::Pending),
            None,
        ),
    ];
    for (status, p, r, t, d) in rows {
        add(&mut audit, order(status), p, r, t, d);
    }
    audit
}

fn add(
    audit: &mut PlatformAudit,
    order: OrderAudit,
    p: Option<PaymentStatus>,
    r: Option<ReservationStatus>,
    t: Option<TicketStatus>,
    d: Option<DeliveryStatus>,
) {
    let id = order.id;
    audit.orders.as_mut().expect("orders").orders.push(order);
    if let Some(p) = p {
        let mut row = payment(id, p);
        if p == PaymentStatus::Declined {
            row.authorizations = Tally::default();
        }
        audit
            .payments
            .as_mut()
            .expect("payments")
            .payments
            .push(row);
    }
    let restaurants = audit.restaurants.as_mut().expect("restaurants");
    if let Some(status) = r {
        restaurants.reservations.push(ReservationAudit {
            order_id: id,
            status,
        });
    }
    if let Some(status) = t {
        restaurants.tickets.push(TicketAudit {
            order_id: id,
            status,
        });
    }
    if let Some(status) = d {
        audit
            .delivery
            .as_mut()
            .expect("delivery")
            .deliveries
            .push(DeliveryAudit {
                order_id: id,
                courier_id: (status != DeliveryStatus::Pending).then(UserId::new),
                status,
            });
    }
}

fn id_of(audit: &PlatformAudit, status: OrderStatus) -> OrderId {
    audit
        .orders
        .as_ref()
        .expect("orders")
        .orders
        .iter()
        .find(|o| o.status == status)
        .expect("an order in that status")
        .id
}

fn payment_of(audit: &mut PlatformAudit, status: OrderStatus) -> &mut PaymentAudit {
    let id = id_of(audit, status);
    audit
        .payments
        .as_mut()
        .expect("payments")
        .payments
        .iter_mut()
        .find(|p| p.order_id == id)
        .expect("a payment")
}

/// The rules `audit` breaks.
fn broken(audit: &PlatformAudit) -> Vec<Rule> {
    check(audit, GRACE).iter().map(|v| v.rule).collect()
}

#[test]
fn a_platform_at_rest_breaks_nothing() {
    let audit = clean();
    assert_eq!(check(&audit, GRACE), Vec::new());
}

#[test]
fn a_service_that_could_not_be_read_is_reported() {
    let mut audit = clean();
    audit.delivery = None;
    audit
        .unavailable
        .insert("delivery".to_owned(), "connection refused".to_owned());
    let found = check(&audit, GRACE);
    assert_eq!(
        found.iter().map(|v| v.rule).collect::<Vec<_>>(),
        [Rule::Unreadable]
    );
    assert!(found[0].to_string().contains("delivery could not be read"));
}

#[test]
fn a_record_of_an_order_orders_does_not_know_is_reported() {
    let mut audit = clean();
    audit
        .payments
        .as_mut()
        .expect("payments")
        .payments
        .push(payment(OrderId::new(), PaymentStatus::Authorized));
    assert_eq!(broken(&audit), [Rule::UnknownOrder]);
}

#[test]
fn a_second_authorization_is_reported() {
    let mut audit = clean();
    payment_of(&mut audit, OrderStatus::Confirmed)
        .authorizations
        .count = 2;
    assert_eq!(broken(&audit), [Rule::AuthorizedTwice]);
}

#[test]
fn a_second_capture_is_reported() {
    let mut audit = clean();
    let p = payment_of(&mut audit, OrderStatus::Delivered);
    p.captures.count = 2;
    p.captures.cents = p.authorizations.cents;
    assert_eq!(broken(&audit), [Rule::CapturedTwice]);
}

#[test]
fn a_capture_above_the_authorization_is_reported() {
    let mut audit = clean();
    payment_of(&mut audit, OrderStatus::Delivered)
        .captures
        .cents += 1;
    assert_eq!(broken(&audit), [Rule::CaptureAboveAuthorization]);
}

#[test]
fn a_capture_before_the_pick_up_is_reported() {
    let mut audit = clean();
    let p = payment_of(&mut audit, OrderStatus::CourierAssigned);
    p.captures = p.authorizations;
    let rules = broken(&audit);
    assert!(rules.contains(&Rule::CaptureWithoutPickup), "{rules:?}");
}

#[test]
fn an_authorization_left_on_a_cancelled_order_is_reported() {
    let mut audit = clean();
    payment_of(&mut audit, OrderStatus::Cancelled).status = PaymentStatus::Authorized;
    assert_eq!(broken(&audit), [Rule::LiveAuthorization]);
}

#[test]
fn stock_held_for_a_rejected_order_is_reported() {
    let mut audit = clean();
    let id = id_of(&audit, OrderStatus::Rejected);
    let restaurants = audit.restaurants.as_mut().expect("restaurants");
    restaurants
        .reservations
        .iter_mut()
        .filter(|r| r.order_id == id)
        .for_each(|r| r.status = ReservationStatus::Reserved);
    assert_eq!(broken(&audit), [Rule::StockHeld]);
}

#[test]
fn a_courier_with_two_active_deliveries_is_reported() {
    let mut audit = clean();
    let deliveries = &mut audit.delivery.as_mut().expect("delivery").deliveries;
    let busy = deliveries
        .iter()
        .find(|d| d.status == DeliveryStatus::Assigned)
        .and_then(|d| d.courier_id);
    for d in deliveries.iter_mut() {
        if d.status == DeliveryStatus::Delivered {
            d.courier_id = busy;
            d.status = DeliveryStatus::PickedUp;
        }
    }
    let rules = broken(&audit);
    assert!(rules.contains(&Rule::CourierDoubleBooked), "{rules:?}");
}

#[test]
fn commands_outstanding_past_the_grace_are_a_stuck_saga_but_not_within_it() {
    let mut audit = clean();
    let orders = &mut audit.orders.as_mut().expect("orders").orders;
    orders[0].outstanding = vec!["capture".to_owned()];
    assert_eq!(broken(&audit), Vec::new(), "in flight, within the grace");
    audit.orders.as_mut().expect("orders").orders[0].updated_at = LONG_AGO.to_owned();
    assert_eq!(broken(&audit), [Rule::SagaStuck]);
}

#[test]
fn an_acceptance_window_closed_long_ago_is_an_overdue_decision() {
    let mut audit = clean();
    let id = id_of(&audit, OrderStatus::AwaitingRestaurant);
    let orders = &mut audit.orders.as_mut().expect("orders").orders;
    let waiting = orders.iter_mut().find(|o| o.id == id).expect("order");
    waiting.decide_by = Some(RECENT.to_owned());
    assert_eq!(broken(&audit), Vec::new());
    audit
        .orders
        .as_mut()
        .expect("orders")
        .orders
        .iter_mut()
        .filter(|o| o.id == id)
        .for_each(|o| o.decide_by = Some(LONG_AGO.to_owned()));
    assert_eq!(broken(&audit), [Rule::DecisionOverdue]);
}

#[test]
fn a_participant_behind_the_orders_status_is_a_mismatch_one_ahead_is_not() {
    let mut audit = clean();
    let id = id_of(&audit, OrderStatus::Confirmed);
    let set = |audit: &mut PlatformAudit, status| {
        audit
            .delivery
            .as_mut()
            .expect("delivery")
            .deliveries
            .iter_mut()
            .filter(|d| d.order_id == id)
            .for_each(|d| d.status = status);
    };
    // Delivery is ahead (orders has not consumed the pick-up yet): fine.
    set(&mut audit, DeliveryStatus::Assigned);
    assert_eq!(broken(&audit), Vec::new());
    // A confirmed order whose delivery was cancelled: wrong.
    set(&mut audit, DeliveryStatus::Cancelled);
    let found = check(&audit, GRACE);
    assert_eq!(
        found.iter().map(|v| v.rule).collect::<Vec<_>>(),
        [Rule::StateMismatch]
    );
    let line = found[0].to_string();
    assert!(line.contains(&id.to_string()), "{line}");
    assert!(line.contains("delivery CANCELLED"), "{line}");
    assert!(line.contains("payments: authorized"), "{line}");
}

#[test]
fn an_outbox_draining_within_the_grace_is_fine_one_stuck_is_not() {
    let mut audit = clean();
    let events = &mut audit.payments.as_mut().expect("payments").events;
    events.outbox_unpublished = 3;
    events.outbox_oldest_seconds = Some(2.0);
    assert_eq!(broken(&audit), Vec::new());
    audit
        .payments
        .as_mut()
        .expect("payments")
        .events
        .outbox_oldest_seconds = Some(45.0);
    assert_eq!(broken(&audit), [Rule::OutboxStuck]);
}

#[test]
fn every_parked_dead_letter_is_reported() {
    let mut audit = clean();
    let parked = DeadLetter {
        event_id: "e1".to_owned(),
        source: "orders".to_owned(),
        kind: "feastfast.order.confirmed.v1".to_owned(),
        position: Some(7),
        error: "boom".to_owned(),
        attempts: 8,
        dead_at: RECENT.to_owned(),
        redriven_at: None,
    };
    let events = &mut audit.delivery.as_mut().expect("delivery").events;
    events.dead_letters = vec![
        parked.clone(),
        DeadLetter {
            event_id: "e2".to_owned(),
            ..parked
        },
    ];
    assert_eq!(broken(&audit), [Rule::DeadLetter, Rule::DeadLetter]);
}
