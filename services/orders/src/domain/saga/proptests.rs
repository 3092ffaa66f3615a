//! The saga's invariants, checked over random runs.
//!
//! Two kinds of run: arbitrary event sequences (anything the network could
//! deliver, in any order, errors ignored as the orchestrator ignores them,
//! threaded with the happy path so that runs reach the late states too),
//! and a simulated world in which participants faithfully execute every
//! command, idempotently, while the customer, the restaurant, the courier,
//! the acceptance timer and crashes of the orchestrator interleave at random.
//! The second checks the money and stock the participants actually hold,
//! not only what the saga believes.

use contracts::orders::OrderStatus;
use proptest::prelude::*;
use proptest::sample::select;

use super::*;

/// What the saga has been told and has asked for, kept independently of its
/// own state so the checks do not trust what they check.
#[derive(Debug, Default)]
struct Ledger {
    authorize_commands: usize,
    capture_commands: usize,
    authorized: Option<i64>,
    voided: bool,
    capture_asked: Option<i64>,
    captured: Option<i64>,
    reserved: bool,
    released: bool,
    ticket_created: bool,
    ticket_closed: bool,
}

impl Ledger {
    fn authorization_live(&self) -> bool {
        self.authorized.is_some() && !self.voided && self.captured.is_none()
    }

    fn stock_held(&self) -> bool {
        self.reserved && !self.released
    }

    fn ticket_open(&self) -> bool {
        self.ticket_created && !self.ticket_closed
    }

    /// Feeds `event` to `saga` as the orchestrator would (an error is
    /// ignored) and checks every invariant on the way. Returns the new saga
    /// and the commands to execute.
    fn apply(
        &mut self,
        saga: &Saga,
        event: SagaEvent,
    ) -> Result<(Saga, Vec<Command>), TestCaseError> {
        let Ok((next, commands)) = saga.apply(event.clone()) else {
            return Ok((saga.clone(), Vec::new()));
        };
        self.record_fact(&event);
        for command in &commands {
            self.record_command(command)?;
        }
        check_step(saga, &event, &next, &commands)?;
        self.check_state(saga, &next)?;
        Ok((next, commands))
    }

    fn record_fact(&mut self, event: &SagaEvent) {
        match event {
            SagaEvent::StockReserved { .. } => self.reserved = true,
            SagaEvent::StockReleased => self.released = true,
            SagaEvent::PaymentAuthorized { amount_cents } => {
                self.authorized.get_or_insert(*amount_cents);
            }
            SagaEvent::PaymentVoided => self.voided = true,
            SagaEvent::PaymentCaptured => self.captured = self.capture_asked,
            SagaEvent::TicketCreated | SagaEvent::TicketAccepted => self.ticket_created = true,
            SagaEvent::TicketRejected { .. } => {
                self.ticket_created = true;
                self.ticket_closed = true;
            }
            SagaEvent::TicketCancelled => self.ticket_closed = true,
            _ => {}
        }
    }

    fn record_command(&mut self, command: &Command) -> Result<(), TestCaseError> {
        match *command {
            Command::Authorize { .. } => {
                self.authorize_commands += 1;
                prop_assert!(self.authorize_commands <= 1, "Authorize commanded twice");
            }
            Command::Capture { amount_cents } => {
                self.capture_commands += 1;
                prop_assert!(self.capture_commands <= 1, "Capture commanded twice");
                prop_assert!(
                    self.authorization_live(),
                    "Capture without a live authorization"
                );
                let authorized = self.authorized.unwrap_or(0);
                prop_assert!(
                    amount_cents <= authorized,
                    "capture of {amount_cents} exceeds the {authorized} authorized"
                );
                self.capture_asked = Some(amount_cents);
            }
            _ => {}
        }
        Ok(())
    }

    fn check_state(&self, before: &Saga, after: &Saga) -> Result<(), TestCaseError> {
        if before.is_final() {
            prop_assert_eq!(after.status(), before.status(), "a final status changed");
        }
        prop_assert!(self.captured.unwrap_or(0) <= self.authorized.unwrap_or(0));
        let stopped = matches!(
            after.status(),
            OrderStatus::Rejected | OrderStatus::Cancelled
        );
        if stopped && after.outstanding().is_empty() {
            prop_assert!(
                !self.authorization_live(),
                "{:?} with a live authorization",
                after
            );
            prop_assert!(!self.stock_held(), "{:?} with stock held", after);
            prop_assert!(!self.ticket_open(), "{:?} with an open ticket", after);
            // The saga's own view agrees.
            prop_assert!(!after.authorization_live() && !after.stock_reserved());
            prop_assert!(!after.ticket_open());
        }
        prop_assert!(after.status() != OrderStatus::Cancelled || after.outstanding().is_empty());
        Ok(())
    }
}

/// Checks of one accepted step that need no history.
fn check_step(
    before: &Saga,
    event: &SagaEvent,
    after: &Saga,
    commands: &[Command],
) -> Result<(), TestCaseError> {
    let was_outstanding = before.outstanding();
    let now_outstanding = after.outstanding();
    for command in commands {
        if matches!(command, Command::Publish(_)) {
            continue;
        }
        // Issued once, and remembered until acknowledged: a crash right
        // after this step re-issues it, and nothing issues it twice.
        prop_assert!(
            now_outstanding.contains(command),
            "{command:?} not outstanding"
        );
        prop_assert!(
            !was_outstanding.contains(command),
            "{command:?} issued twice"
        );
    }
    // The same fact delivered again at once changes nothing.
    if let Ok((again, repeat_commands)) = after.apply(event.clone()) {
        prop_assert_eq!(&again, after, "{} is not idempotent", event.name());
        prop_assert!(
            repeat_commands.is_empty(),
            "{} repeated commands",
            event.name()
        );
    }
    // What the orchestrator stores is what it reads back.
    let json = serde_json::to_string(after).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: Saga = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&back, after);
    Ok(())
}

fn reason() -> impl Strategy<Value = String> {
    select(vec!["sold out", "card declined", "kitchen closed", ""]).prop_map(str::to_owned)
}

/// Any event. Events that move the order forward are drawn more often than
/// those that stop it, and amounts come from a few values so that a random
/// authorization often matches the amount asked: otherwise few runs would
/// get past the first failure.
fn any_event() -> impl Strategy<Value = SagaEvent> {
    prop_oneof![
        1 => Just(SagaEvent::Started),
        4 => select(vec![(2_500_i64, 299_i64), (2_500, 299), (1_000, 0)]).prop_map(
            |(subtotal_cents, delivery_fee_cents)| SagaEvent::StockReserved {
                subtotal_cents,
                delivery_fee_cents
            }
        ),
        1 => reason().prop_map(|reason| SagaEvent::StockUnavailable { reason }),
        4 => select(vec![2_799_i64, 2_799, 1_000, 7])
            .prop_map(|amount_cents| SagaEvent::PaymentAuthorized { amount_cents }),
        1 => reason().prop_map(|reason| SagaEvent::PaymentDeclined { reason }),
        3 => Just(SagaEvent::TicketCreated),
        3 => Just(SagaEvent::TicketAccepted),
        1 => reason().prop_map(|reason| SagaEvent::TicketRejected { reason }),
        1 => Just(SagaEvent::AcceptanceTimedOut),
        1 => Just(SagaEvent::PaymentTimedOut),
        3 => select(vec!["courier-1", "courier-2"]).prop_map(|id| SagaEvent::CourierAssigned {
            courier_id: id.to_owned()
        }),
        3 => Just(SagaEvent::PickedUp),
        3 => Just(SagaEvent::PaymentCaptured),
        3 => Just(SagaEvent::Delivered),
        1 => Just(SagaEvent::CancelRequested),
        2 => Just(SagaEvent::StockReleased),
        2 => Just(SagaEvent::PaymentVoided),
        2 => Just(SagaEvent::TicketCancelled),
    ]
}

fn happy_path() -> impl Iterator<Item = SagaEvent> {
    [
        SagaEvent::StockReserved {
            subtotal_cents: 2_500,
            delivery_fee_cents: 299,
        },
        SagaEvent::PaymentAuthorized {
            amount_cents: 2_799,
        },
        SagaEvent::TicketCreated,
        SagaEvent::TicketAccepted,
        SagaEvent::CourierAssigned {
            courier_id: "courier-1".to_owned(),
        },
        SagaEvent::PickedUp,
        SagaEvent::PaymentCaptured,
        SagaEvent::Delivered,
    ]
    .into_iter()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_event_sequences_keep_every_invariant(
        slots in prop::collection::vec(prop::option::weighted(0.7, any_event()), 0..30)
    ) {
        // An empty slot takes the next step of the happy path, so that runs
        // reach the late states too, with arbitrary events in between.
        let mut happy_path = happy_path();
        let mut ledger = Ledger::default();
        let (mut saga, _) = ledger.apply(&Saga::new(), SagaEvent::Started)?;
        for slot in slots {
            let Some(event) = slot.or_else(|| happy_path.next()) else {
                continue;
            };
            saga = ledger.apply(&saga, event)?.0;
        }
    }
}

// ---- a faithful world -----------------------------------------------------------

const SUBTOTAL: i64 = 2_500;
const FEE: i64 = 299;

/// Something that happens between two steps of the orchestrator.
#[derive(Debug, Clone)]
enum Nudge {
    /// A waiting result reaches the saga (results arrive in any order).
    Deliver(usize),
    /// An event already delivered arrives again (at-least-once delivery).
    Redeliver(usize),
    /// The orchestrator restarts and re-issues every outstanding command.
    Crash,
    CustomerCancels,
    /// The restaurant decides an open ticket: accept (`true`) or reject.
    RestaurantDecides(bool),
    /// The acceptance timer fires, if armed.
    TimerFires,
    /// The delivery service takes its next step.
    CourierMoves,
}

fn any_nudge() -> impl Strategy<Value = Nudge> {
    prop_oneof![
        6 => any::<usize>().prop_map(Nudge::Deliver),
        1 => any::<usize>().prop_map(Nudge::Redeliver),
        1 => Just(Nudge::Crash),
        1 => Just(Nudge::CustomerCancels),
        2 => any::<bool>().prop_map(Nudge::RestaurantDecides),
        1 => Just(Nudge::TimerFires),
        2 => Just(Nudge::CourierMoves),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KitchenTicket {
    None,
    Open,
    Accepted,
    Rejected,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Courier {
    Idle,
    Searching,
    Assigned,
    PickedUp,
    Delivered,
    Cancelled,
}

/// The participants, each answering a repeated command (same idempotency
/// key) with its first result, and the orchestrator around the saga.
#[derive(Debug)]
struct World {
    saga: Saga,
    ledger: Ledger,
    /// Results and events on their way to the saga.
    inbox: Vec<SagaEvent>,
    delivered: Vec<SagaEvent>,
    stock_available: bool,
    card_ok: bool,
    // restaurants
    reservation: Option<SagaEvent>,
    stock_held: bool,
    ticket: KitchenTicket,
    // payments
    authorization: Option<SagaEvent>,
    funds_held: i64,
    captured: i64,
    captures: usize,
    // delivery, and the acceptance timer
    courier: Courier,
    timer_armed: bool,
}

impl World {
    fn new(stock_available: bool, card_ok: bool) -> Self {
        Self {
            saga: Saga::new(),
            ledger: Ledger::default(),
            inbox: Vec::new(),
            delivered: Vec::new(),
            stock_available,
            card_ok,
            reservation: None,
            stock_held: false,
            ticket: KitchenTicket::None,
            authorization: None,
            funds_held: 0,
            captured: 0,
            captures: 0,
            courier: Courier::Idle,
            timer_armed: false,
        }
    }

    fn feed(&mut self, event: SagaEvent) -> Result<(), TestCaseError> {
        let (next, commands) = self.ledger.apply(&self.saga, event.clone())?;
        if next.status() == OrderStatus::AwaitingRestaurant
            && self.saga.status() != OrderStatus::AwaitingRestaurant
        {
            self.timer_armed = true;
        }
        self.saga = next;
        self.delivered.push(event);
        for command in commands {
            self.execute(command)?;
        }
        Ok(())
    }

    /// A participant executes `command`; its answer joins the inbox.
    fn execute(&mut self, command: Command) -> Result<(), TestCaseError> {
        let answer = match command {
            Command::ReserveStock => {
                if let Some(first) = &self.reservation {
                    first.clone()
                } else {
                    let answer = if self.stock_available {
                        self.stock_held = true;
                        SagaEvent::StockReserved {
                            subtotal_cents: SUBTOTAL,
                            delivery_fee_cents: FEE,
                        }
                    } else {
                        SagaEvent::StockUnavailable {
                            reason: "sold out".to_owned(),
                        }
                    };
                    self.reservation = Some(answer.clone());
                    answer
                }
            }
            Command::ReleaseStock => {
                self.stock_held = false;
                SagaEvent::StockReleased
            }
            Command::Authorize { amount_cents } => {
                if let Some(first) = &self.authorization {
                    first.clone()
                } else {
                    let answer = if self.card_ok {
                        self.funds_held = amount_cents;
                        SagaEvent::PaymentAuthorized { amount_cents }
                    } else {
                        SagaEvent::PaymentDeclined {
                            reason: "card declined".to_owned(),
                        }
                    };
                    self.authorization = Some(answer.clone());
                    answer
                }
            }
            Command::Void => {
                prop_assert_eq!(self.captured, 0, "void after capture");
                self.funds_held = 0;
                SagaEvent::PaymentVoided
            }
            Command::Capture { amount_cents } => {
                if self.captures == 0 {
                    prop_assert!(self.funds_held > 0, "capture without held funds");
                    prop_assert!(amount_cents <= self.funds_held, "capture above the hold");
                    self.captured = amount_cents;
                    self.funds_held = 0;
                    self.captures = 1;
                }
                SagaEvent::PaymentCaptured
            }
            Command::CreateTicket => {
                if self.ticket == KitchenTicket::None {
                    self.ticket = KitchenTicket::Open;
                }
                SagaEvent::TicketCreated
            }
            Command::CancelTicket => {
                if matches!(self.ticket, KitchenTicket::Open | KitchenTicket::Accepted) {
                    self.ticket = KitchenTicket::Cancelled;
                }
                SagaEvent::TicketCancelled
            }
            Command::Publish(kind) => {
                match kind {
                    OrderEventKind::Confirmed if self.courier == Courier::Idle => {
                        self.courier = Courier::Searching;
                    }
                    OrderEventKind::Cancelled
                        if matches!(self.courier, Courier::Searching | Courier::Assigned) =>
                    {
                        self.courier = Courier::Cancelled;
                    }
                    _ => {}
                }
                return Ok(());
            }
        };
        self.inbox.push(answer);
        Ok(())
    }

    fn nudge(&mut self, nudge: Nudge) -> Result<(), TestCaseError> {
        match nudge {
            Nudge::Deliver(i) => {
                if !self.inbox.is_empty() {
                    let event = self.inbox.remove(i % self.inbox.len());
                    self.feed(event)?;
                }
            }
            Nudge::Redeliver(i) => {
                if !self.delivered.is_empty() {
                    let event = self.delivered[i % self.delivered.len()].clone();
                    self.feed(event)?;
                }
            }
            Nudge::Crash => {
                for command in self.saga.outstanding() {
                    self.execute(command)?;
                }
            }
            Nudge::CustomerCancels => self.feed(SagaEvent::CancelRequested)?,
            Nudge::RestaurantDecides(accept) => {
                if self.ticket == KitchenTicket::Open {
                    if accept {
                        self.ticket = KitchenTicket::Accepted;
                        self.inbox.push(SagaEvent::TicketAccepted);
                    } else {
                        // The stock stays reserved: releasing it is the
                        // saga's compensation, not a side effect of the
                        // rejection.
                        self.ticket = KitchenTicket::Rejected;
                        self.inbox.push(SagaEvent::TicketRejected {
                            reason: "kitchen closed".to_owned(),
                        });
                    }
                }
            }
            Nudge::TimerFires => {
                if self.timer_armed {
                    self.inbox.push(SagaEvent::AcceptanceTimedOut);
                }
            }
            Nudge::CourierMoves => {
                let (next, event) = match self.courier {
                    Courier::Searching => (
                        Courier::Assigned,
                        SagaEvent::CourierAssigned {
                            courier_id: "courier-1".to_owned(),
                        },
                    ),
                    Courier::Assigned => (Courier::PickedUp, SagaEvent::PickedUp),
                    Courier::PickedUp => (Courier::Delivered, SagaEvent::Delivered),
                    Courier::Idle | Courier::Delivered | Courier::Cancelled => return Ok(()),
                };
                self.courier = next;
                self.inbox.push(event);
            }
        }
        Ok(())
    }

    /// After the random part, the world settles: every waiting result
    /// arrives, the restaurant accepts, the courier delivers, and a timer
    /// closes a ticket nobody decides.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..200 {
            if !self.inbox.is_empty() {
                self.nudge(Nudge::Deliver(0))?;
            } else if !self.saga.outstanding().is_empty() {
                self.nudge(Nudge::Crash)?;
            } else if self.saga.status() == OrderStatus::AwaitingRestaurant {
                if self.ticket == KitchenTicket::Open {
                    self.nudge(Nudge::RestaurantDecides(true))?;
                } else {
                    self.nudge(Nudge::TimerFires)?;
                }
            } else if !self.saga.is_final()
                && matches!(
                    self.courier,
                    Courier::Searching | Courier::Assigned | Courier::PickedUp
                )
            {
                self.nudge(Nudge::CourierMoves)?;
            } else {
                return Ok(());
            }
        }
        Err(TestCaseError::fail(format!(
            "the world never settled: {self:?}"
        )))
    }

    fn check_end(&self) -> Result<(), TestCaseError> {
        prop_assert!(self.saga.is_final(), "ended {:?}", self.saga);
        prop_assert!(
            self.saga.outstanding().is_empty(),
            "ended owing {:?}",
            self.saga.outstanding()
        );
        match self.saga.status() {
            OrderStatus::Delivered => {
                prop_assert_eq!(self.captured, SUBTOTAL + FEE);
                prop_assert_eq!(self.captures, 1);
                prop_assert_eq!(self.funds_held, 0);
                prop_assert_eq!(self.ticket, KitchenTicket::Accepted);
            }
            _ => {
                prop_assert_eq!(self.funds_held, 0, "funds still held");
                prop_assert_eq!(self.captured, 0, "a stopped order was charged");
                prop_assert!(!self.stock_held, "stock still held");
                prop_assert!(
                    !matches!(self.ticket, KitchenTicket::Open | KitchenTicket::Accepted),
                    "the ticket is still open"
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_faithful_world_always_ends_the_order_cleanly(
        stock_available in prop::bool::weighted(0.85),
        card_ok in prop::bool::weighted(0.85),
        nudges in prop::collection::vec(any_nudge(), 0..40),
    ) {
        let mut world = World::new(stock_available, card_ok);
        world.feed(SagaEvent::Started)?;
        for nudge in nudges {
            world.nudge(nudge)?;
        }
        world.settle()?;
        world.check_end()?;
    }
}

#[test]
fn an_undisturbed_faithful_world_delivers() {
    let mut world = World::new(true, true);

    let started = world.feed(SagaEvent::Started);
    let settled = world.settle();

    assert!(
        started.is_ok() && settled.is_ok(),
        "{started:?} {settled:?}"
    );
    let end = world.check_end();
    assert!(end.is_ok(), "{end:?}");
    assert_eq!(world.saga.status(), OrderStatus::Delivered);
}
