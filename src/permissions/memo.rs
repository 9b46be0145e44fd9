//! Request-scoped memoization: the permission source is called at most
//! once per request, however many guards, extractors and filters ask, and
//! not at all when nothing asks.
//!
//! [`JwtAuthGuard`](crate::guard::auth::JwtAuthGuard) plants a
//! [`PermissionSlot`] in the request extensions when it admits a caller.
//! The slot holds the source and the caller but loads nothing until the
//! first reader awaits it; later readers get the same `Arc`.

use std::{fmt, sync::Arc};

use http::Extensions;
use tokio::sync::OnceCell;

use super::source::{PermissionError, PermissionSource};
use crate::{model::CompiledPermissions, principal::Principal, rejection::ErrorRenderer};

/// The lazily loaded permissions of one request. Cheap to clone.
#[derive(Clone)]
pub struct PermissionSlot {
    inner: Arc<SlotInner>,
}

struct SlotInner {
    config: Arc<SlotConfig>,
    principal: Principal,
    cell: OnceCell<Result<Arc<CompiledPermissions>, PermissionError>>,
}

/// What every slot of one JwtAuthGuard shares.
pub(crate) struct SlotConfig {
    pub(crate) source: Arc<dyn PermissionSource>,
    pub(crate) super_user_bypass: bool,
    pub(crate) renderer: ErrorRenderer,
}

impl fmt::Debug for SlotConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotConfig")
            .field("super_user_bypass", &self.super_user_bypass)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PermissionSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PermissionSlot")
            .field("user", &self.inner.principal.user_id())
            .field("loaded", &self.inner.cell.initialized())
            .finish_non_exhaustive()
    }
}

impl PermissionSlot {
    pub(crate) fn new(config: Arc<SlotConfig>, principal: Principal) -> Self {
        Self {
            inner: Arc::new(SlotInner {
                config,
                principal,
                cell: OnceCell::new(),
            }),
        }
    }

    /// The slot of a request, if JwtAuthGuard planted one.
    pub fn from_extensions(extensions: &Extensions) -> Option<&Self> {
        extensions.get::<Self>()
    }

    /// The caller's compiled permissions, loading them on first use.
    ///
    /// # Errors
    ///
    /// The source's error (memoized too: a request does not retry a
    /// failing IAM once per guard).
    pub async fn get(&self) -> Result<Arc<CompiledPermissions>, PermissionError> {
        self.inner
            .cell
            .get_or_init(|| self.inner.config.source.load(&self.inner.principal))
            .await
            .clone()
    }

    /// The permissions if a reader already loaded them: lets a guard
    /// decide without awaiting.
    pub fn loaded(&self) -> Option<&Result<Arc<CompiledPermissions>, PermissionError>> {
        self.inner.cell.get()
    }

    /// The permissions if they are loaded or the source can give them
    /// without waiting ([`PermissionSource::load_now`]); the answer is
    /// memoized like [`get`](Self::get)'s. `None` means: await `get`.
    pub fn load_now(&self) -> Option<&Result<Arc<CompiledPermissions>, PermissionError>> {
        if let Some(loaded) = self.inner.cell.get() {
            return Some(loaded);
        }
        let now = self.inner.config.source.load_now(&self.inner.principal)?;
        // Only fails if another reader of this request got there first;
        // its answer is as good.
        let _ = self.inner.cell.set(now);
        self.inner.cell.get()
    }

    /// How rejections are rendered for this request (the auth layer's
    /// renderer, so every guard answers in one format).
    pub(crate) fn renderer(&self) -> &ErrorRenderer {
        &self.inner.config.renderer
    }

    /// The caller.
    pub fn principal(&self) -> &Principal {
        &self.inner.principal
    }

    /// Whether this caller passes every guard as a super user: the token's
    /// flag AND the opt-in on the guard.
    pub fn bypasses(&self) -> bool {
        self.inner.config.super_user_bypass && self.inner.principal.is_super_user()
    }
}
