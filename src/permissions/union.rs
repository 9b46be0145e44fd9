//! [`UnionSource`]: one caller's permissions from several sources, merged.
//!
//! A service whose IdP grants roles (compiled against a catalogue), puts
//! flat permissions in the token, and hands out OAuth scopes can count all
//! three: the union grants what any part grants. It is still one source to
//! the request context, so each part is called at most once per request.
//!
//! ```
//! use iam_guard::{
//!     permissions::{oauth_scopes::OAuthScopesSource, union::UnionSource},
//!     Catalogue, CatalogueSource, ClaimsSource,
//! };
//!
//! let source = UnionSource::new()
//!     .with(CatalogueSource::new(Catalogue::students_fixture()))
//!     .with(ClaimsSource::new())
//!     .optional(OAuthScopesSource::new());
//! # let _ = source;
//! ```

use std::{fmt, sync::Arc};

use super::source::{PermissionError, PermissionFuture, PermissionSource};
use crate::{model::CompiledPermissions, principal::Principal};

/// A source of the union and whether the union needs it.
struct Part {
    source: Box<dyn PermissionSource>,
    required: bool,
}

/// The union of several permission sources. See the [module docs](self).
///
/// A part added with [`with`](Self::with) is required: when it fails the
/// union fails, and the guards answer 503 `IAM_UNAVAILABLE` (a caller whose
/// permissions are partly unknown is not judged on the rest). A part added
/// with [`optional`](Self::optional) that fails contributes nothing, and
/// the failure is logged. An empty union grants nothing.
#[derive(Default)]
pub struct UnionSource {
    parts: Vec<Part>,
}

impl fmt::Debug for UnionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnionSource")
            .field("parts", &self.parts.len())
            .field(
                "required",
                &self.parts.iter().filter(|p| p.required).count(),
            )
            .finish()
    }
}

impl UnionSource {
    /// A union of no sources yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a required part.
    pub fn with(mut self, source: impl PermissionSource) -> Self {
        self.parts.push(Part {
            source: Box::new(source),
            required: true,
        });
        self
    }

    /// Adds a part whose failure grants nothing instead of failing the
    /// union.
    pub fn optional(mut self, source: impl PermissionSource) -> Self {
        self.parts.push(Part {
            source: Box::new(source),
            required: false,
        });
        self
    }

    /// Adds one part's answer to `merged`, or fails the union.
    fn absorb(
        part: &Part,
        principal: &Principal,
        answer: Result<Arc<CompiledPermissions>, PermissionError>,
        merged: &mut CompiledPermissions,
    ) -> Result<(), PermissionError> {
        match answer {
            Ok(perms) => {
                merged.merge(&perms);
                Ok(())
            }
            Err(e) if part.required => Err(e),
            Err(e) => {
                tracing::warn!(
                    target: "iam_guard::permissions",
                    user = principal.user_id(),
                    error = %e,
                    "an optional permission source failed; it grants nothing to this request"
                );
                Ok(())
            }
        }
    }
}

impl PermissionSource for UnionSource {
    fn load<'a>(&'a self, principal: &'a Principal) -> PermissionFuture<'a> {
        Box::pin(async move {
            let mut merged = CompiledPermissions::deny_all();
            for part in &self.parts {
                let answer = match part.source.load_now(principal) {
                    Some(answer) => answer,
                    None => part.source.load(principal).await,
                };
                Self::absorb(part, principal, answer, &mut merged)?;
            }
            Ok(Arc::new(merged))
        })
    }

    /// `Some` when every part always answers without waiting. A union
    /// with a part that may wait does not probe the others here: they
    /// would be asked again by `load`, and each part is asked once per
    /// request.
    fn load_now(
        &self,
        principal: &Principal,
    ) -> Option<Result<Arc<CompiledPermissions>, PermissionError>> {
        if !self.answers_without_waiting() {
            return None;
        }
        let mut merged = CompiledPermissions::deny_all();
        for part in &self.parts {
            let answer = part.source.load_now(principal)?;
            if let Err(e) = Self::absorb(part, principal, answer, &mut merged) {
                return Some(Err(e));
            }
        }
        Some(Ok(Arc::new(merged)))
    }

    fn answers_without_waiting(&self) -> bool {
        self.parts
            .iter()
            .all(|p| p.source.answers_without_waiting())
    }

    /// What the parts that know departments say holds there, merged;
    /// `None` when no part knows departments. Parts that do not know them
    /// are not asked again: what they grant is not tied to roles, and the
    /// request's permissions already hold it.
    fn in_department(
        &self,
        principal: &Principal,
        department: &str,
    ) -> Option<Arc<CompiledPermissions>> {
        let mut merged: Option<CompiledPermissions> = None;
        for here in self
            .parts
            .iter()
            .filter_map(|p| p.source.in_department(principal, department))
        {
            merged
                .get_or_insert_with(CompiledPermissions::deny_all)
                .merge(&here);
        }
        merged.map(Arc::new)
    }
}
