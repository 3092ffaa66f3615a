//! Every transition and compensation of the saga, one behaviour per test.

use contracts::orders::OrderStatus;

use super::*;

const SUBTOTAL: i64 = 2_500;
const FEE: i64 = 299;
const TOTAL: i64 = SUBTOTAL + FEE;

fn reserved() -> SagaEvent {
    SagaEvent::StockReserved {
        subtotal_cents: SUBTOTAL,
        delivery_fee_cents: FEE,
    }
}

fn authorized() -> SagaEvent {
    SagaEvent::PaymentAuthorized {
        amount_cents: TOTAL,
    }
}

fn assigned(courier: &str) -> SagaEvent {
    SagaEvent::CourierAssigned {
        courier_id: courier.to_owned(),
    }
}

fn reason(text: &str) -> String {
    text.to_owned()
}

/// Applies an event the test expects the saga to take.
fn act(saga: &Saga, event: SagaEvent) -> (Saga, Vec<Command>) {
    let name = event.name();
    saga.apply(event)
        .unwrap_or_else(|e| panic!("{name} in {}: {e}", saga.status()))
}

/// The saga after `events`, each expected to be taken.
fn after(events: impl IntoIterator<Item = SagaEvent>) -> Saga {
    events
        .into_iter()
        .fold(Saga::new(), |saga, event| act(&saga, event).0)
}

fn pending() -> Saga {
    after([SagaEvent::Started])
}

fn payment_pending() -> Saga {
    after([SagaEvent::Started, reserved()])
}

/// Awaiting the restaurant, the ticket's creation not yet acknowledged.
fn ticket_being_created() -> Saga {
    after([SagaEvent::Started, reserved(), authorized()])
}

fn awaiting_restaurant() -> Saga {
    after([
        SagaEvent::Started,
        reserved(),
        authorized(),
        SagaEvent::TicketCreated,
    ])
}

fn confirmed() -> Saga {
    act(&awaiting_restaurant(), SagaEvent::TicketAccepted).0
}

fn courier_assigned() -> Saga {
    act(&confirmed(), assigned("courier-1")).0
}

fn picked_up() -> Saga {
    act(&courier_assigned(), SagaEvent::PickedUp).0
}

fn delivered() -> Saga {
    let saga = act(&picked_up(), SagaEvent::PaymentCaptured).0;
    act(&saga, SagaEvent::Delivered).0
}

fn is_unexpected(result: Result<(Saga, Vec<Command>), SagaError>) -> bool {
    matches!(result, Err(SagaError::Unexpected { .. }))
}

// ---- the happy path -------------------------------------------------------

#[test]
fn starting_reserves_stock_and_announces_the_order() {
    let saga = Saga::new();

    let (saga, commands) = act(&saga, SagaEvent::Started);

    assert_eq!(saga.status(), OrderStatus::Pending);
    assert_eq!(
        commands,
        [
            Command::ReserveStock,
            Command::Publish(OrderEventKind::Placed)
        ]
    );
    assert_eq!(saga.outstanding(), [Command::ReserveStock]);
}

#[test]
fn reserved_stock_asks_to_authorize_subtotal_plus_delivery_fee() {
    let saga = pending();

    let (saga, commands) = act(&saga, reserved());

    assert_eq!(saga.status(), OrderStatus::PaymentPending);
    assert_eq!(
        commands,
        [Command::Authorize {
            amount_cents: TOTAL
        }]
    );
    assert!(saga.stock_reserved());
    assert_eq!(saga.quote().map(|q| q.total_cents()), Some(TOTAL));
}

#[test]
fn an_authorized_payment_creates_the_kitchen_ticket() {
    let saga = payment_pending();

    let (saga, commands) = act(&saga, authorized());

    assert_eq!(saga.status(), OrderStatus::AwaitingRestaurant);
    assert_eq!(commands, [Command::CreateTicket]);
    assert_eq!(saga.authorized_cents(), Some(TOTAL));
}

#[test]
fn a_created_ticket_waits_for_the_restaurant() {
    let saga = ticket_being_created();

    let (saga, commands) = act(&saga, SagaEvent::TicketCreated);

    assert_eq!(saga.status(), OrderStatus::AwaitingRestaurant);
    assert!(commands.is_empty());
    assert!(saga.outstanding().is_empty());
    assert_eq!(saga.ticket(), TicketState::Open);
}

#[test]
fn an_accepted_ticket_confirms_the_order_and_tells_delivery() {
    let saga = awaiting_restaurant();

    let (saga, commands) = act(&saga, SagaEvent::TicketAccepted);

    assert_eq!(saga.status(), OrderStatus::Confirmed);
    assert_eq!(commands, [Command::Publish(OrderEventKind::Confirmed)]);
}

#[test]
fn an_acceptance_that_overtakes_the_ticket_creation_still_confirms() {
    // An auto-accepting restaurant publishes ticket.accepted while the
    // orchestrator is still recording the CreateTicket answer.
    let saga = ticket_being_created();

    let (saga, commands) = act(&saga, SagaEvent::TicketAccepted);
    assert_eq!(saga.status(), OrderStatus::Confirmed);
    assert_eq!(commands, [Command::Publish(OrderEventKind::Confirmed)]);
    assert!(saga.outstanding().is_empty());

    let (saga, commands) = act(&saga, SagaEvent::TicketCreated);
    assert_eq!(saga.status(), OrderStatus::Confirmed);
    assert!(commands.is_empty());
}

#[test]
fn an_assigned_courier_is_recorded() {
    let saga = confirmed();

    let (saga, commands) = act(&saga, assigned("courier-1"));

    assert_eq!(saga.status(), OrderStatus::CourierAssigned);
    assert_eq!(saga.courier_id(), Some("courier-1"));
    assert!(commands.is_empty());
}

#[test]
fn a_courier_can_be_reassigned_before_pick_up() {
    let saga = courier_assigned();

    let (saga, commands) = act(&saga, assigned("courier-2"));

    assert_eq!(saga.status(), OrderStatus::CourierAssigned);
    assert_eq!(saga.courier_id(), Some("courier-2"));
    assert!(commands.is_empty());
}

#[test]
fn pick_up_captures_the_authorized_amount() {
    let saga = courier_assigned();

    let (saga, commands) = act(&saga, SagaEvent::PickedUp);

    assert_eq!(saga.status(), OrderStatus::PickedUp);
    assert_eq!(
        commands,
        [Command::Capture {
            amount_cents: TOTAL
        }]
    );
}

#[test]
fn delivery_completes_the_order() {
    let saga = act(&picked_up(), SagaEvent::PaymentCaptured).0;

    let (saga, commands) = act(&saga, SagaEvent::Delivered);

    assert_eq!(saga.status(), OrderStatus::Delivered);
    assert_eq!(commands, [Command::Publish(OrderEventKind::Completed)]);
    assert_eq!(saga.captured_cents(), Some(TOTAL));
    assert!(saga.outstanding().is_empty());
}

#[test]
fn the_happy_path_runs_from_pending_to_delivered() {
    let events = [
        SagaEvent::Started,
        reserved(),
        authorized(),
        SagaEvent::TicketCreated,
        SagaEvent::TicketAccepted,
        assigned("courier-1"),
        SagaEvent::PickedUp,
        SagaEvent::PaymentCaptured,
        SagaEvent::Delivered,
    ];
    let mut saga = Saga::new();
    let mut statuses = vec![saga.status()];

    for event in events {
        saga = act(&saga, event).0;
        if statuses.last() != Some(&saga.status()) {
            statuses.push(saga.status());
        }
    }

    assert_eq!(
        statuses,
        [
            OrderStatus::Pending,
            OrderStatus::PaymentPending,
            OrderStatus::AwaitingRestaurant,
            OrderStatus::Confirmed,
            OrderStatus::CourierAssigned,
            OrderStatus::PickedUp,
            OrderStatus::Delivered,
        ]
    );
    assert!(saga.outstanding().is_empty());
    assert!(!saga.authorization_live());
}

#[test]
fn delivery_reported_before_the_capture_reaches_delivered_and_still_owes_the_capture() {
    let saga = picked_up();

    let (saga, commands) = act(&saga, SagaEvent::Delivered);
    assert_eq!(saga.status(), OrderStatus::Delivered);
    assert_eq!(commands, [Command::Publish(OrderEventKind::Completed)]);
    assert_eq!(
        saga.outstanding(),
        [Command::Capture {
            amount_cents: TOTAL
        }]
    );

    let (saga, commands) = act(&saga, SagaEvent::PaymentCaptured);
    assert_eq!(saga.status(), OrderStatus::Delivered);
    assert!(commands.is_empty());
    assert!(saga.outstanding().is_empty());
    assert_eq!(saga.captured_cents(), Some(TOTAL));
}

#[test]
fn a_pick_up_that_overtakes_the_assignment_still_captures() {
    let saga = confirmed();

    let (saga, commands) = act(&saga, SagaEvent::PickedUp);
    assert_eq!(saga.status(), OrderStatus::PickedUp);
    assert_eq!(
        commands,
        [Command::Capture {
            amount_cents: TOTAL
        }]
    );

    let (saga, commands) = act(&saga, assigned("courier-1"));
    assert_eq!(saga.status(), OrderStatus::PickedUp);
    assert_eq!(saga.courier_id(), Some("courier-1"));
    assert!(commands.is_empty());
}

#[test]
fn a_delivery_that_overtakes_the_pick_up_delivers_and_captures() {
    let saga = courier_assigned();

    let (saga, commands) = act(&saga, SagaEvent::Delivered);
    assert_eq!(saga.status(), OrderStatus::Delivered);
    assert_eq!(
        commands,
        [
            Command::Capture {
                amount_cents: TOTAL
            },
            Command::Publish(OrderEventKind::Completed)
        ]
    );

    let (saga, commands) = act(&saga, SagaEvent::PickedUp);
    assert_eq!(saga.status(), OrderStatus::Delivered);
    assert!(commands.is_empty());
}

#[test]
fn after_pick_up_the_courier_can_no_longer_change() {
    let saga = picked_up();

    assert!(is_unexpected(saga.apply(assigned("courier-2"))));
}

// ---- failures ---------------------------------------------------------------

#[test]
fn unavailable_stock_rejects_with_nothing_to_compensate() {
    let saga = pending();

    let (saga, commands) = act(
        &saga,
        SagaEvent::StockUnavailable {
            reason: reason("out of falafel"),
        },
    );

    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(saga.rejection_reason(), Some("out of falafel"));
    assert_eq!(
        saga.rejection_cause(),
        Some(RejectionCause::StockUnavailable)
    );
    assert_eq!(commands, [Command::Publish(OrderEventKind::Rejected)]);
    assert!(saga.outstanding().is_empty());
}

#[test]
fn a_declined_card_rejects_and_releases_the_stock() {
    let saga = payment_pending();

    let (saga, commands) = act(
        &saga,
        SagaEvent::PaymentDeclined {
            reason: reason("card declined"),
        },
    );

    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(saga.rejection_reason(), Some("card declined"));
    assert_eq!(
        commands,
        [
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Rejected)
        ]
    );
}

#[test]
fn a_rejected_ticket_voids_and_releases_but_leaves_the_ticket_to_the_restaurant() {
    let saga = awaiting_restaurant();

    let (saga, commands) = act(
        &saga,
        SagaEvent::TicketRejected {
            reason: reason("kitchen closed"),
        },
    );

    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(saga.rejection_reason(), Some("kitchen closed"));
    assert_eq!(
        commands,
        [
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Rejected)
        ]
    );
}

#[test]
fn an_acceptance_timeout_cancels_the_ticket_voids_and_releases() {
    let saga = awaiting_restaurant();

    let (saga, commands) = act(&saga, SagaEvent::AcceptanceTimedOut);

    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(
        saga.rejection_cause(),
        Some(RejectionCause::AcceptanceTimedOut)
    );
    assert!(saga.rejection_reason().is_some());
    assert_eq!(
        commands,
        [
            Command::CancelTicket,
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Rejected)
        ]
    );
}

#[test]
fn an_acceptance_timeout_before_the_ticket_exists_cancels_it_once_it_does() {
    let saga = ticket_being_created();

    let (saga, commands) = act(&saga, SagaEvent::AcceptanceTimedOut);
    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(
        commands,
        [
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Rejected)
        ]
    );
    // The creation is still in flight; cancelling before it lands could be
    // overtaken by a retried create.
    assert_eq!(
        saga.outstanding(),
        [Command::CreateTicket, Command::Void, Command::ReleaseStock]
    );

    let (saga, commands) = act(&saga, SagaEvent::TicketCreated);
    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(commands, [Command::CancelTicket]);
}

#[test]
fn a_rejected_order_stays_rejected_while_its_compensations_are_acknowledged() {
    let saga = act(&awaiting_restaurant(), SagaEvent::AcceptanceTimedOut).0;

    let saga = [
        SagaEvent::TicketCancelled,
        SagaEvent::PaymentVoided,
        SagaEvent::StockReleased,
    ]
    .into_iter()
    .fold(saga, |saga, ack| {
        let (saga, commands) = act(&saga, ack);
        assert_eq!(saga.status(), OrderStatus::Rejected);
        assert!(commands.is_empty());
        saga
    });

    assert!(saga.outstanding().is_empty());
    assert!(!saga.authorization_live());
    assert!(!saga.stock_reserved());
    assert!(!saga.ticket_open());
}

// ---- cancel -----------------------------------------------------------------

#[test]
fn cancel_while_reserving_waits_for_the_reservation_and_then_releases_it() {
    let saga = pending();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert!(saga.cancel_requested());
    assert_eq!(commands, [Command::Publish(OrderEventKind::Cancelled)]);
    assert_eq!(saga.outstanding(), [Command::ReserveStock]);

    let (saga, commands) = act(&saga, reserved());
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(commands, [Command::ReleaseStock]);

    let (saga, commands) = act(&saga, SagaEvent::StockReleased);
    assert_eq!(saga.status(), OrderStatus::Cancelled);
    assert!(commands.is_empty());
}

#[test]
fn cancel_while_reserving_stock_that_turns_out_unavailable_is_cancelled_at_once() {
    let saga = act(&pending(), SagaEvent::CancelRequested).0;

    let (saga, commands) = act(
        &saga,
        SagaEvent::StockUnavailable {
            reason: reason("sold out"),
        },
    );

    assert_eq!(saga.status(), OrderStatus::Cancelled);
    assert_eq!(saga.rejection_reason(), None);
    assert!(commands.is_empty());
}

#[test]
fn cancel_while_authorizing_releases_stock_and_voids_the_late_authorization() {
    let saga = payment_pending();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(
        commands,
        [
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Cancelled)
        ]
    );

    let (saga, commands) = act(&saga, authorized());
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(commands, [Command::Void], "void, not CreateTicket");

    let saga = act(&saga, SagaEvent::StockReleased).0;
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    let saga = act(&saga, SagaEvent::PaymentVoided).0;
    assert_eq!(saga.status(), OrderStatus::Cancelled);
    assert_eq!(saga.ticket(), TicketState::NotRequested);
}

#[test]
fn cancel_while_authorizing_a_card_that_is_then_declined_only_releases_stock() {
    let saga = act(&payment_pending(), SagaEvent::CancelRequested).0;

    let (saga, commands) = act(
        &saga,
        SagaEvent::PaymentDeclined {
            reason: reason("card declined"),
        },
    );
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert!(commands.is_empty());
    assert_eq!(saga.outstanding(), [Command::ReleaseStock]);

    let saga = act(&saga, SagaEvent::StockReleased).0;
    assert_eq!(saga.status(), OrderStatus::Cancelled);
}

#[test]
fn cancel_while_awaiting_the_restaurant_cancels_the_ticket_voids_and_releases() {
    let saga = awaiting_restaurant();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);

    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(
        commands,
        [
            Command::CancelTicket,
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Cancelled)
        ]
    );
}

#[test]
fn cancel_while_the_ticket_is_being_created_cancels_it_once_created() {
    let saga = ticket_being_created();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(
        commands,
        [
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Cancelled)
        ]
    );

    let (saga, commands) = act(&saga, SagaEvent::TicketCreated);
    assert_eq!(commands, [Command::CancelTicket]);
    assert_eq!(saga.status(), OrderStatus::CancelPending);
}

#[test]
fn an_acceptance_of_a_ticket_still_being_created_after_cancel_only_lets_it_be_cancelled() {
    let saga = act(&ticket_being_created(), SagaEvent::CancelRequested).0;

    let (saga, commands) = act(&saga, SagaEvent::TicketAccepted);

    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(commands, [Command::CancelTicket]);
}

#[test]
fn cancel_after_confirmation_cancels_the_ticket_voids_and_releases() {
    let saga = confirmed();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);

    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(
        commands,
        [
            Command::CancelTicket,
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Cancelled)
        ]
    );
}

#[test]
fn cancel_with_a_courier_assigned_publishes_the_cancel_that_frees_the_courier() {
    let saga = courier_assigned();

    let (saga, commands) = act(&saga, SagaEvent::CancelRequested);

    assert_eq!(saga.status(), OrderStatus::CancelPending);
    assert_eq!(
        commands,
        [
            Command::CancelTicket,
            Command::Void,
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Cancelled)
        ]
    );
}

#[test]
fn a_cancel_completes_only_when_every_compensation_is_acknowledged() {
    let saga = act(&confirmed(), SagaEvent::CancelRequested).0;

    let saga = act(&saga, SagaEvent::PaymentVoided).0;
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    let saga = act(&saga, SagaEvent::TicketCancelled).0;
    assert_eq!(saga.status(), OrderStatus::CancelPending);
    let (saga, commands) = act(&saga, SagaEvent::StockReleased);

    assert_eq!(saga.status(), OrderStatus::Cancelled);
    assert!(commands.is_empty());
    assert!(saga.outstanding().is_empty());
    assert!(!saga.authorization_live());
    assert!(!saga.stock_reserved());
    assert!(!saga.ticket_open());
}

#[test]
fn cancel_after_pick_up_is_refused() {
    let saga = picked_up();

    let result = saga.apply(SagaEvent::CancelRequested);

    assert_eq!(
        result,
        Err(SagaError::CannotCancel {
            status: OrderStatus::PickedUp
        })
    );
}

#[test]
fn cancel_of_a_delivered_or_rejected_order_is_refused() {
    let rejected = act(&awaiting_restaurant(), SagaEvent::AcceptanceTimedOut).0;

    for saga in [delivered(), rejected] {
        let result = saga.apply(SagaEvent::CancelRequested);
        assert_eq!(
            result,
            Err(SagaError::CannotCancel {
                status: saga.status()
            })
        );
    }
}

#[test]
fn a_repeated_cancel_is_accepted_and_changes_nothing() {
    let cancel_pending = act(&confirmed(), SagaEvent::CancelRequested).0;
    let cancelled = after([
        SagaEvent::Started,
        SagaEvent::CancelRequested,
        SagaEvent::StockUnavailable {
            reason: reason("sold out"),
        },
    ]);
    assert_eq!(cancelled.status(), OrderStatus::Cancelled);

    for saga in [cancel_pending, cancelled] {
        let (again, commands) = act(&saga, SagaEvent::CancelRequested);
        assert_eq!(again, saga);
        assert!(commands.is_empty());
    }
}

// ---- duplicates ---------------------------------------------------------------

#[test]
fn a_repeated_authorization_does_not_create_a_second_ticket() {
    let saga = ticket_being_created();

    let (again, commands) = act(&saga, authorized());

    assert_eq!(again, saga);
    assert!(commands.is_empty());
}

#[test]
fn a_repeated_acceptance_does_not_confirm_twice() {
    let saga = confirmed();

    let (again, commands) = act(&saga, SagaEvent::TicketAccepted);

    assert_eq!(again, saga);
    assert!(commands.is_empty());
}

#[test]
fn every_repeated_fact_on_the_happy_path_produces_no_command() {
    let steps = [
        SagaEvent::Started,
        reserved(),
        authorized(),
        SagaEvent::TicketCreated,
        SagaEvent::TicketAccepted,
        assigned("courier-1"),
        SagaEvent::PickedUp,
        SagaEvent::PaymentCaptured,
        SagaEvent::Delivered,
    ];
    let mut saga = Saga::new();
    for (i, event) in steps.iter().enumerate() {
        saga = act(&saga, event.clone()).0;
        // Every fact recorded so far, delivered again, is a no-op.
        for repeat in &steps[..=i] {
            let (again, commands) = act(&saga, repeat.clone());
            assert_eq!(
                again,
                saga,
                "{} repeated after {}",
                repeat.name(),
                event.name()
            );
            assert!(commands.is_empty());
        }
    }
}

#[test]
fn repeated_acknowledgements_of_compensations_change_nothing() {
    let mut saga = act(&awaiting_restaurant(), SagaEvent::CancelRequested).0;
    for ack in [
        SagaEvent::TicketCancelled,
        SagaEvent::PaymentVoided,
        SagaEvent::StockReleased,
    ] {
        saga = act(&saga, ack.clone()).0;
        let (again, commands) = act(&saga, ack);
        assert_eq!(again, saga);
        assert!(commands.is_empty());
    }
    assert_eq!(saga.status(), OrderStatus::Cancelled);
}

#[test]
fn a_repeated_result_that_disagrees_with_the_first_is_a_contradiction() {
    let saga = ticket_being_created();

    let result = saga.apply(SagaEvent::PaymentAuthorized { amount_cents: 1 });

    assert!(matches!(result, Err(SagaError::Contradicts { .. })));
}

#[test]
fn an_authorization_for_another_amount_than_asked_is_a_contradiction() {
    let saga = payment_pending();

    let result = saga.apply(SagaEvent::PaymentAuthorized {
        amount_cents: TOTAL + 1,
    });

    assert!(matches!(result, Err(SagaError::Contradicts { .. })));
}

// ---- events out of place --------------------------------------------------------

#[test]
fn nothing_but_the_start_applies_to_a_new_saga() {
    let saga = Saga::new();

    assert!(is_unexpected(saga.apply(reserved())));
    assert!(is_unexpected(saga.apply(SagaEvent::CancelRequested)));
}

#[test]
fn pick_up_while_awaiting_the_restaurant_is_unexpected() {
    let saga = awaiting_restaurant();

    let result = saga.apply(SagaEvent::PickedUp);

    assert_eq!(
        result,
        Err(SagaError::Unexpected {
            event: "PickedUp",
            status: OrderStatus::AwaitingRestaurant
        })
    );
}

#[test]
fn a_late_acceptance_after_the_timeout_does_not_confirm_and_the_ticket_stays_owed_a_cancel() {
    let saga = act(&awaiting_restaurant(), SagaEvent::AcceptanceTimedOut).0;

    let result = saga.apply(SagaEvent::TicketAccepted);

    assert!(is_unexpected(result));
    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert!(saga.outstanding().contains(&Command::CancelTicket));
}

#[test]
fn a_timer_that_fires_after_the_acceptance_is_ignored() {
    let saga = confirmed();

    assert!(is_unexpected(saga.apply(SagaEvent::AcceptanceTimedOut)));
}

#[test]
fn a_delivered_order_takes_no_further_progress() {
    let saga = delivered();

    for event in [
        SagaEvent::TicketRejected {
            reason: reason("late"),
        },
        SagaEvent::AcceptanceTimedOut,
        SagaEvent::PaymentVoided,
        SagaEvent::StockReleased,
        assigned("courier-2"),
    ] {
        assert!(
            saga.apply(event.clone()).is_err(),
            "{} after DELIVERED",
            event.name()
        );
    }
}

#[test]
fn a_cancelled_order_ignores_the_late_pick_up_and_delivery() {
    let saga = act(&courier_assigned(), SagaEvent::CancelRequested).0;
    let saga = after_acks(saga);
    assert_eq!(saga.status(), OrderStatus::Cancelled);

    assert!(is_unexpected(saga.apply(SagaEvent::PickedUp)));
    assert!(is_unexpected(saga.apply(SagaEvent::Delivered)));
    assert!(is_unexpected(saga.apply(assigned("courier-2"))));
}

#[test]
fn a_late_pick_up_while_the_cancel_is_pending_captures_nothing() {
    let saga = act(&courier_assigned(), SagaEvent::CancelRequested).0;

    assert!(is_unexpected(saga.apply(SagaEvent::PickedUp)));
    assert!(
        !saga
            .outstanding()
            .iter()
            .any(|c| matches!(c, Command::Capture { .. }))
    );
}

#[test]
fn an_acknowledgement_of_a_command_never_issued_is_unexpected() {
    let saga = awaiting_restaurant();

    assert!(is_unexpected(saga.apply(SagaEvent::PaymentVoided)));
    assert!(is_unexpected(saga.apply(SagaEvent::StockReleased)));
    assert!(is_unexpected(saga.apply(SagaEvent::TicketCancelled)));
    assert!(is_unexpected(saga.apply(SagaEvent::PaymentCaptured)));
}

#[test]
fn an_impossible_quote_is_invalid() {
    let saga = pending();

    for (subtotal_cents, delivery_fee_cents) in [(0, 0), (-1, 10), (100, -1), (i64::MAX, 1)] {
        let result = saga.apply(SagaEvent::StockReserved {
            subtotal_cents,
            delivery_fee_cents,
        });
        assert!(matches!(result, Err(SagaError::Invalid { .. })));
    }
}

#[test]
fn an_empty_courier_id_is_invalid() {
    let saga = confirmed();

    let result = saga.apply(assigned(" "));

    assert!(matches!(result, Err(SagaError::Invalid { .. })));
}

// ---- persistence and recovery ----------------------------------------------------

fn after_acks(mut saga: Saga) -> Saga {
    for ack in [
        SagaEvent::TicketCancelled,
        SagaEvent::PaymentVoided,
        SagaEvent::StockReleased,
    ] {
        if let Ok((next, _)) = saga.apply(ack) {
            saga = next;
        }
    }
    saga
}

#[test]
fn outstanding_lists_what_to_re_issue_after_a_crash() {
    let saga = act(&ticket_being_created(), SagaEvent::CancelRequested).0;

    assert_eq!(
        saga.outstanding(),
        [Command::CreateTicket, Command::Void, Command::ReleaseStock]
    );
}

#[test]
fn the_state_survives_a_round_trip_through_json() {
    let saga = act(&courier_assigned(), SagaEvent::CancelRequested).0;

    let json = serde_json::to_string(&saga).expect("serialises");
    let back: Saga = serde_json::from_str(&json).expect("deserialises");

    assert_eq!(back, saga);
    assert_eq!(back.outstanding(), saga.outstanding());
}

#[test]
fn the_stored_json_form_is_stable() {
    // Stored sagas outlive deployments: a change here needs a migration.
    let saga = ticket_being_created();

    let json = serde_json::to_value(&saga).expect("serialises");

    assert_eq!(
        json,
        serde_json::json!({
            "status": "AWAITING_RESTAURANT",
            "stock": "reserved",
            "quote": {"subtotal_cents": SUBTOTAL, "delivery_fee_cents": FEE},
            "payment": {"state": "authorized", "amount_cents": TOTAL},
            "ticket": "creating",
            "courier_id": null,
            "rejection": null
        })
    );
}

#[test]
fn every_command_names_a_distinct_step() {
    let commands = [
        Command::Publish(OrderEventKind::Placed),
        Command::Publish(OrderEventKind::Confirmed),
        Command::Publish(OrderEventKind::Rejected),
        Command::Publish(OrderEventKind::Cancelled),
        Command::Publish(OrderEventKind::Completed),
    ]
    .into_iter()
    .chain(Command::CALLS)
    .collect::<Vec<_>>();
    let mut steps: Vec<&str> = commands.iter().map(Command::step).collect();
    steps.sort_unstable();
    steps.dedup();
    assert_eq!(steps.len(), commands.len());
}

#[test]
fn a_payment_deadline_rejects_releases_the_stock_and_keeps_asking_to_learn_the_outcome() {
    let saga = payment_pending();

    let (saga, commands) = act(&saga, SagaEvent::PaymentTimedOut);

    assert_eq!(saga.status(), OrderStatus::Rejected);
    assert_eq!(
        saga.rejection_cause(),
        Some(RejectionCause::PaymentTimedOut)
    );
    assert_eq!(
        commands,
        [
            Command::ReleaseStock,
            Command::Publish(OrderEventKind::Rejected)
        ]
    );
    // The authorization's fate is unknown: it stays outstanding.
    assert!(saga.outstanding().contains(&Command::Authorize {
        amount_cents: TOTAL
    }));
    // A repeated timer changes nothing.
    assert_eq!(
        act(&saga, SagaEvent::PaymentTimedOut),
        (saga.clone(), vec![])
    );

    // Payments comes back and says it did authorize: void it.
    let (voiding, commands) = act(&saga, authorized());
    assert_eq!(voiding.status(), OrderStatus::Rejected);
    assert_eq!(commands, [Command::Void]);
    let (voided, commands) = act(&voiding, SagaEvent::PaymentVoided);
    assert!(commands.is_empty());
    let (done, _) = act(&voided, SagaEvent::StockReleased);
    assert!(done.outstanding().is_empty());

    // Or it declined: nothing is held.
    let (declined, commands) = act(
        &saga,
        SagaEvent::PaymentDeclined {
            reason: reason("card declined"),
        },
    );
    assert!(commands.is_empty());
    assert_eq!(declined.outstanding(), [Command::ReleaseStock]);
}

#[test]
fn a_payment_deadline_after_payments_answered_is_refused() {
    let saga = awaiting_restaurant();
    assert!(is_unexpected(saga.apply(SagaEvent::PaymentTimedOut)));
    let cancelled = act(&payment_pending(), SagaEvent::CancelRequested).0;
    assert!(is_unexpected(cancelled.apply(SagaEvent::PaymentTimedOut)));
}
