//! `/labels`: every label in the inventory, the implicit ones included, with how many
//! hosts have it in each state, so an admin sees what a `runs-on` can get.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use crate::farm::hosts::{HostState, LabelCount};
use crate::web::AppState;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// A label and its hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LabelView {
    pub label: String,
    /// How many hosts have it.
    pub hosts: usize,
    pub by_state: StateCounts,
}

/// Hosts by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateCounts {
    pub ready: usize,
    pub leased: usize,
    pub repairing: usize,
    pub broken: usize,
    pub maintenance: usize,
}

impl LabelView {
    pub fn new(count: &LabelCount) -> LabelView {
        let of = |state| count.by_state.get(&state).copied().unwrap_or(0);
        LabelView {
            label: count.label.clone(),
            hosts: count.hosts,
            by_state: StateCounts {
                ready: of(HostState::Ready),
                leased: of(HostState::Leased),
                repairing: of(HostState::Repairing),
                broken: of(HostState::Broken),
                maintenance: of(HostState::Maintenance),
            },
        }
    }
}

/// Lists the labels, by name.
#[utoipa::path(
    get, path = "/labels", tag = "labels", operation_id = "list_labels",
    responses((status = 200, body = [LabelView], description = "Every label, the implicit ones included"))
)]
async fn list(State(state): State<AppState>) -> Result<Json<Vec<LabelView>>, ApiError> {
    let counts = state.inventory.label_counts().await?;
    Ok(Json(counts.iter().map(LabelView::new).collect()))
}
