//! `check_suite`: handled in a later step of issue 3.

use super::{Delivered, HandlerError};
use crate::farm::Farm;
use crate::store::Tx;

pub(super) async fn handle(
    _farm: &Farm,
    _tx: &mut Tx,
    delivery: &Delivered<'_>,
) -> Result<String, HandlerError> {
    Ok(format!("{}: stored, not acted on yet", delivery.event))
}
