//! The public route table: which service owns each `/api/v1` path, and
//! whether the gateway demands a token before forwarding.

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::{MethodFilter, MethodRouter};

use crate::AppState;
use crate::forward::forward;

/// Whether the gateway checks the caller's token itself before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// Anyone may call; a token, if sent, is passed on unchecked.
    Public,
    /// A valid token is required; without one the answer is 401 at once.
    Token,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
    Put,
    Patch,
}

impl Method {
    fn filter(self) -> MethodFilter {
        match self {
            Method::Get => MethodFilter::GET,
            Method::Post => MethodFilter::POST,
            Method::Put => MethodFilter::PUT,
            Method::Patch => MethodFilter::PATCH,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
        }
    }
}

/// One public path (below `/api/v1`, same text upstream).
pub(crate) struct Route {
    pub(crate) path: &'static str,
    pub(crate) service: &'static str,
    pub(crate) methods: &'static [(Method, Auth)],
}

pub(crate) const PREFIX: &str = "/api/v1";

use Auth::{Public, Token};
use Method::{Get, Patch, Post, Put};

#[rustfmt::skip]
pub(crate) static ROUTES: &[Route] = &[
    Route { path: "/auth/register",                              service: "users",        methods: &[(Post, Public)] },
    Route { path: "/auth/login",                                 service: "users",        methods: &[(Post, Public)] },
    Route { path: "/me",                                         service: "users",        methods: &[(Get, Token)] },
    Route { path: "/restaurants",                                service: "restaurants",  methods: &[(Get, Public), (Post, Token)] },
    Route { path: "/restaurants/mine",                           service: "restaurants",  methods: &[(Get, Token)] },
    Route { path: "/restaurants/{id}",                           service: "restaurants",  methods: &[(Get, Public)] },
    Route { path: "/restaurants/{id}/menu",                      service: "restaurants",  methods: &[(Post, Token)] },
    Route { path: "/restaurants/{id}/menu/{item_id}",            service: "restaurants",  methods: &[(Patch, Token)] },
    Route { path: "/restaurants/{id}/tickets",                   service: "restaurants",  methods: &[(Get, Token)] },
    Route { path: "/restaurants/{id}/tickets/{order_id}/accept", service: "restaurants",  methods: &[(Post, Token)] },
    Route { path: "/restaurants/{id}/tickets/{order_id}/reject", service: "restaurants",  methods: &[(Post, Token)] },
    Route { path: "/restaurants/{id}/tickets/{order_id}/ready",  service: "restaurants",  methods: &[(Post, Token)] },
    Route { path: "/orders",                                     service: "orders",       methods: &[(Get, Token), (Post, Token)] },
    Route { path: "/orders/{id}",                                service: "orders",       methods: &[(Get, Token)] },
    Route { path: "/orders/{id}/stream",                         service: "orders",       methods: &[(Get, Token)] },
    Route { path: "/orders/{id}/cancel",                         service: "orders",       methods: &[(Post, Token)] },
    Route { path: "/couriers/me",                                service: "delivery",     methods: &[(Put, Token)] },
    Route { path: "/couriers/me/deliveries",                     service: "delivery",     methods: &[(Get, Token)] },
    Route { path: "/deliveries/{id}/pickup",                     service: "delivery",     methods: &[(Post, Token)] },
    Route { path: "/deliveries/{id}/deliver",                    service: "delivery",     methods: &[(Post, Token)] },
];

/// Public paths whose `GET` answer the gateway composes from more than one
/// service (see `compose.rs`).
pub(crate) const COMPOSED: &[&str] = &["/orders/{id}"];

/// The public path answered as server-sent events (see `live.rs`).
pub(crate) const STREAMED: &str = "/orders/{id}/stream";

/// Public paths whose `GET` answer the edge cache keeps (see `edge.rs`).
pub(crate) const CACHED: &[&str] = &["/restaurants", "/restaurants/{id}"];

pub(crate) fn public_routes() -> Router<AppState> {
    ROUTES.iter().fold(Router::new(), |router, route| {
        let composed = COMPOSED.contains(&route.path);
        let cached = CACHED.contains(&route.path);
        let methods = route
            .methods
            .iter()
            .fold(MethodRouter::new(), |mr, &(method, auth)| {
                mr.on(
                    method.filter(),
                    move |State(state): State<AppState>, req: Request| async move {
                        if route.path == STREAMED && method == Method::Get {
                            crate::live::stream(&state, req).await
                        } else if composed && method == Method::Get {
                            crate::compose::order(&state, auth, req).await
                        } else if cached && method == Method::Get {
                            crate::edge::get(&state, route.service, auth, req).await
                        } else if route.service == "restaurants" && method != Method::Get {
                            crate::edge::write(&state, route.service, auth, req).await
                        } else {
                            forward(&state, route.service, auth, req).await
                        }
                    },
                )
            });
        router.route(&format!("{PREFIX}{}", route.path), methods)
    })
}
