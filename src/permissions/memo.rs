//! Request-scoped memoization: the permission source is called at most
//! once per request, however many guards, extractors and filters ask, and
//! not at all when nothing asks.
//!
//! The request context that JwtAuthGuard plants holds one
//! [`PermissionCell`]; it loads nothing until the first reader asks, and
//! later readers get the same `Arc`.

use std::{fmt, sync::Arc};

use tokio::sync::OnceCell;

use super::source::{PermissionError, PermissionSource};
use crate::{model::CompiledPermissions, principal::Principal};

/// What a load gives: memoized whether it succeeded or not, so a request
/// does not retry a failing IAM once per guard.
pub(crate) type Loaded = Result<Arc<CompiledPermissions>, PermissionError>;

/// The lazily loaded permissions of one request.
#[derive(Default)]
pub(crate) struct PermissionCell {
    cell: OnceCell<Loaded>,
}

impl fmt::Debug for PermissionCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionCell")
            .field("loaded", &self.cell.initialized())
            .finish()
    }
}

impl PermissionCell {
    /// The permissions of `principal`, loading them from `source` on first
    /// use.
    pub(crate) async fn get(&self, source: &dyn PermissionSource, principal: &Principal) -> Loaded {
        self.cell
            .get_or_init(|| source.load(principal))
            .await
            .clone()
    }

    /// The permissions if they are loaded or `source` can give them without
    /// waiting ([`PermissionSource::load_now`]); memoized like
    /// [`get`](Self::get)'s answer. `None` means: await `get`.
    pub(crate) fn load_now(
        &self,
        source: &dyn PermissionSource,
        principal: &Principal,
    ) -> Option<&Loaded> {
        if let Some(loaded) = self.cell.get() {
            return Some(loaded);
        }
        let now = source.load_now(principal)?;
        // Only fails if another reader of this request got there first;
        // its answer is as good.
        let _ = self.cell.set(now);
        self.cell.get()
    }
}
