//! Operations: the state of each service as the gateway sees it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Ready: it answered `/readyz` with 200.
    Up,
    /// Running but not ready (its database or transport failing, or draining).
    Degraded,
    /// No answer.
    Down,
}

/// One service in `GET /api/v1/ops/services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    pub name: String,
    pub url: String,
    pub status: Health,
    pub version: Option<String>,
    /// How long the readiness probe took.
    pub latency_ms: Option<f64>,
    /// Why it is not up, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The process state of a service under `feastfast up`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    Running,
    Stopped,
    /// Crashed; the supervisor restarts it after a back-off.
    Restarting,
}

/// The answer of a stop or start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProcessStatus {
    pub name: String,
    pub status: ProcessState,
    pub pid: Option<u32>,
}
