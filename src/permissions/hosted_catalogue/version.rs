//! What a catalogue fetch yields: a validated [`CatalogueVersion`], or a
//! [`CatalogueFetchError`] saying why none could be had.

use std::sync::Arc;

use bytes::Bytes;

use crate::{
    jwt::source::FetchError,
    model::{CatalogueError, TenantCatalogues},
};

/// Fetching the catalogue failed, or what was fetched was refused.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogueFetchError {
    /// The IAM could not be asked, answered an error status, or sent a
    /// document over the size cap ([`FetchError::TooLarge`]).
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The document is not a valid catalogue; the error names the problem.
    #[error("the catalogue is invalid: {0}")]
    Invalid(Arc<CatalogueError>),
    /// The IAM answered 304 Not Modified although no version is held to
    /// be current.
    #[error("the IAM answered 304 Not Modified but no catalogue is held")]
    UnexpectedNotModified,
    /// Nothing has been fetched yet, and the retry pause after a failure
    /// has not passed.
    #[error("no catalogue has been fetched yet")]
    NotFetched,
}

impl CatalogueFetchError {
    /// Whether the IAM answered, but with something that must not be used
    /// (as opposed to not answering at all).
    pub(super) fn is_refusal(&self) -> bool {
        matches!(
            self,
            Self::Invalid(_) | Self::UnexpectedNotModified | Self::Fetch(FetchError::TooLarge(_))
        )
    }
}

/// One validated version of the catalogue, as installed by a
/// [`CatalogueFetcher`](super::CatalogueFetcher).
#[derive(Debug)]
pub struct CatalogueVersion {
    pub(super) number: u64,
    pub(super) etag: Option<String>,
    pub(super) catalogues: TenantCatalogues,
    /// What it was parsed from, to recognise the same document served
    /// again without an ETag.
    pub(super) body: Bytes,
}

impl CatalogueVersion {
    /// The fetcher's number for this version: 1 for the first catalogue
    /// installed, one more for each document with different contents. A
    /// 304, or the same document again, keeps the number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The entity tag the IAM sent with it, if any.
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// The document's own `version` field, if it has one.
    pub fn document_version(&self) -> Option<&str> {
        self.catalogues.version()
    }

    /// The catalogues of this version.
    pub fn catalogues(&self) -> &TenantCatalogues {
        &self.catalogues
    }
}
