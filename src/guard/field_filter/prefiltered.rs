//! How a response a handler serialized already filtered crosses
//! [`FieldFilter`](super::FieldFilter) without being scanned again.
//!
//! On the way in, the filter leaves its configuration for the handler: in
//! the request context when the auth layer ran before it, or else as a
//! [`Plan`] in the request extensions. A [`ReadView`](super::ReadView)
//! filters with the configuration of the filter nearest the handler while
//! serializing and records a [`Prefiltered`] in the request
//! context (defined there, so that the context does not depend on the
//! filter): the very body buffer it wrote, the permissions and the plan it
//! filtered with, and where its entity came from. On the way out the
//! filter trusts the body only when all of them are the ones it would
//! filter with itself — the same buffer (not a copy another layer might
//! have changed), the same request's permissions, the same entity, the
//! same configuration. Anything else is scanned as any body is, so the
//! filter stays the net for every response, recorded or not.
//!
//! These types are private to the crate: nothing else can make them.

use std::{any::Any, sync::Arc};

use bytes::Bytes;

use super::Config;
pub(crate) use crate::guard::context::{EntityFrom, Prefiltered};
use crate::model::{CompiledPermissions, Requirement};

/// The filter's configuration, in the request extensions (a filter outside
/// the auth layer; inside it, the request context carries it).
// Read only by ReadView (feature `axum`).
#[cfg_attr(not(feature = "axum"), allow(dead_code))]
#[derive(Clone, Debug)]
pub(crate) struct Plan(pub(crate) Arc<Config>);

/// The one rule FieldFilter and ReadView filter by, for a caller with
/// `perms` on `entity`: a top-level key survives when it is always allowed
/// or a group the caller can READ (or WRITE). The entity's groups are
/// looked up once, not once per key, in their index.
pub(crate) fn keeper<'a>(
    config: &'a Config,
    perms: &'a CompiledPermissions,
    entity: &str,
) -> impl Fn(&str) -> bool + 'a {
    let readable = perms.readable_groups(entity);
    // Groups first: most top-level keys of an entity are its groups.
    move |key| {
        readable.is_some_and(|groups| groups.contains(key))
            || config.always_allowed_set.contains(key)
    }
}

/// Whether `FieldFilter` may send `body` as it is: it is the buffer the
/// view recorded in `stamp`, written for these permissions, this entity
/// (the view's, resolved against the route's `requirement`) and this
/// filter's configuration.
pub(crate) fn vouches_for(
    stamp: &Prefiltered,
    body: &Bytes,
    permissions: &Arc<CompiledPermissions>,
    entity: &str,
    config: &Arc<Config>,
    requirement: Option<&Requirement>,
) -> bool {
    let view_entity = match stamp.entity_from {
        EntityFrom::Requirement => requirement.and_then(Requirement::entity),
        EntityFrom::Plan => config.entity.as_deref(),
    };
    body.as_ptr() == stamp.body.as_ptr()
        && body.len() == stamp.body.len()
        && Arc::ptr_eq(permissions, &stamp.permissions)
        && same_allocation(&stamp.filter, config)
        && view_entity == Some(entity)
}

/// Whether the view's (type-erased) configuration is `config` itself.
fn same_allocation(filter: &Arc<dyn Any + Send + Sync>, config: &Arc<Config>) -> bool {
    std::ptr::eq(
        Arc::as_ptr(filter).cast::<()>(),
        Arc::as_ptr(config).cast::<()>(),
    )
}
