//! The names of everything the replicas keep in Redis, derived from one
//! prefix (default `iam-guard:`).

use std::fmt::Write;

use aws_lc_rs::digest::{digest, SHA256};

use crate::permissions::cache::local::CacheKey;

/// Default prefix of every key and of the channel.
pub const DEFAULT_PREFIX: &str = "iam-guard:";

/// Key and channel names.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// Pub/sub channel of invalidations and revocations.
    pub(crate) channel: String,
    /// Sorted set of revocations, scored by when each may be forgotten.
    pub(crate) revocations: String,
    /// The generation of the shared permission cache.
    pub(crate) generation: String,
    permissions: String,
    dpop: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            channel: format!("{prefix}events"),
            revocations: format!("{prefix}revocations"),
            generation: format!("{prefix}permissions:generation"),
            permissions: format!("{prefix}permissions:"),
            dpop: format!("{prefix}dpop:"),
        }
    }

    /// The key marking one DPoP proof as used: `<prefix>dpop:<hex of the
    /// proof id>` (SHA-256 of the key thumbprint, a zero byte and the
    /// `jti`).
    pub(crate) fn dpop_proof(&self, id: &[u8; 32]) -> String {
        let mut name = String::with_capacity(self.dpop.len() + 64);
        name.push_str(&self.dpop);
        for byte in id {
            let _ = write!(name, "{byte:02x}");
        }
        name
    }

    /// The hash holding one caller's shared permission entry:
    /// `<prefix>permissions:<sha256 hex of "issuer\ntenant\nuser">`, the
    /// tenant empty when there is none.
    ///
    /// `None` when a tenant or user contains a line feed, which would make
    /// two callers' inputs alike: such callers skip the shared level.
    pub(crate) fn permissions(&self, key: &CacheKey<'_>) -> Option<String> {
        self.permissions_of(key.issuer, key.tenant, key.user)
    }

    pub(crate) fn permissions_of(
        &self,
        issuer: &str,
        tenant: Option<&str>,
        user: &str,
    ) -> Option<String> {
        let tenant = tenant.unwrap_or_default();
        if [issuer, tenant, user]
            .iter()
            .any(|part| part.contains('\n'))
        {
            return None;
        }
        let input = format!("{issuer}\n{tenant}\n{user}");
        let hash = digest(&SHA256, input.as_bytes());
        let mut name = String::with_capacity(self.permissions.len() + 64);
        name.push_str(&self.permissions);
        for byte in hash.as_ref() {
            let _ = write!(name, "{byte:02x}");
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_entry_key_is_the_documented_hash() {
        let keys = Keys::new(DEFAULT_PREFIX);
        // printf '%s\n%s\n%s' https://iam.example.com school-1 user-1 | sha256sum
        assert_eq!(
            keys.permissions_of("https://iam.example.com", Some("school-1"), "user-1")
                .unwrap(),
            "iam-guard:permissions:1f7840fbf15d410780cc4554c8058ba01ef4d9f09c457cee796e7dd27e35e26f"
        );
        assert_eq!(keys.channel, "iam-guard:events");
        assert_ne!(
            keys.permissions_of("i", Some("t"), "u"),
            keys.permissions_of("i", None, "u")
        );
        assert_eq!(keys.permissions_of("i", Some("a\nb"), "c"), None);
    }
}
