//! What is revoked: the three sets a [`Revocations`](super::Revocations)
//! keeps, pure data with no clock of its own and no locking.

use std::collections::HashMap;

use super::Revocation;

/// A user's sessions revoked before an instant.
#[derive(Debug, Clone, Default)]
struct UserEntry {
    /// `(before, kept_until)` for every tenant.
    everywhere: Option<(u64, u64)>,
    /// `(tenant, before, kept_until)`; few per user, so a list.
    per_tenant: Vec<(Box<str>, u64, u64)>,
}

/// The revoked token ids, users and token versions.
///
/// Every entry has the instant it may be forgotten (`kept_until`, unix
/// seconds): a token's own `exp`, or the revocation's instant plus the
/// longest token lifetime accepted, after which no token it covers can
/// still be valid. Applying a revocation twice, or an older one after a
/// newer, changes nothing: the sets keep the strongest of each.
#[derive(Debug, Default)]
pub(super) struct RevocationState {
    tokens: HashMap<Box<str>, u64>,
    users: HashMap<Box<str>, UserEntry>,
    versions: HashMap<Box<str>, (u64, u64)>,
    /// The earliest `kept_until` of any entry, so that pruning is skipped
    /// until something can go.
    earliest_end: u64,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RevokedBy {
    /// Its `jti` is revoked.
    TokenId,
    /// It was issued before its user's sessions were revoked (or it carries
    /// no `iat` to tell).
    UserBefore,
    /// Its version claim is below the user's current version.
    Version,
}

/// The parts of a token that a revocation can name.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenFacts<'a> {
    pub(crate) jti: Option<&'a str>,
    pub(crate) user: &'a str,
    pub(crate) tenant: Option<&'a str>,
    pub(crate) issued_at: Option<u64>,
    pub(crate) version: Option<u64>,
}

impl RevocationState {
    /// Records `revocation`, kept until `kept_until`. Returns whether the
    /// state changed.
    pub(super) fn apply(&mut self, revocation: &Revocation, kept_until: u64) -> bool {
        let changed = match revocation {
            Revocation::Token { jti, .. } => {
                let slot = self.tokens.entry(jti.as_str().into()).or_insert(0);
                let changed = kept_until > *slot;
                *slot = (*slot).max(kept_until);
                changed
            }
            Revocation::User {
                user,
                tenant: None,
                before,
            } => {
                let entry = self.users.entry(user.as_str().into()).or_default();
                let (b, k) = entry.everywhere.get_or_insert((0, 0));
                let changed = *before > *b || kept_until > *k;
                *b = (*b).max(*before);
                *k = (*k).max(kept_until);
                changed
            }
            Revocation::User {
                user,
                tenant: Some(tenant),
                before,
            } => {
                let entry = self.users.entry(user.as_str().into()).or_default();
                match entry
                    .per_tenant
                    .iter_mut()
                    .find(|(t, _, _)| **t == **tenant)
                {
                    Some((_, b, k)) => {
                        let changed = *before > *b || kept_until > *k;
                        *b = (*b).max(*before);
                        *k = (*k).max(kept_until);
                        changed
                    }
                    None => {
                        entry
                            .per_tenant
                            .push((tenant.as_str().into(), *before, kept_until));
                        true
                    }
                }
            }
            Revocation::TokenVersion { user, version } => {
                let slot = self.versions.entry(user.as_str().into()).or_insert((0, 0));
                let changed = *version > slot.0 || kept_until > slot.1;
                slot.0 = slot.0.max(*version);
                slot.1 = slot.1.max(kept_until);
                changed
            }
        };
        if changed && (self.earliest_end == 0 || kept_until < self.earliest_end) {
            self.earliest_end = kept_until;
        }
        changed
    }

    /// Forgets what no longer covers any valid token at `now`. Returns how
    /// many entries went.
    pub(super) fn prune(&mut self, now: u64) -> usize {
        if self.earliest_end == 0 || self.earliest_end > now {
            return 0;
        }
        let before = self.len();
        self.tokens.retain(|_, until| *until > now);
        self.versions.retain(|_, (_, until)| *until > now);
        self.users.retain(|_, entry| {
            if entry.everywhere.is_some_and(|(_, until)| until <= now) {
                entry.everywhere = None;
            }
            entry.per_tenant.retain(|(_, _, until)| *until > now);
            entry.everywhere.is_some() || !entry.per_tenant.is_empty()
        });
        let ends = self
            .tokens
            .values()
            .copied()
            .chain(self.versions.values().map(|(_, until)| *until))
            .chain(self.users.values().flat_map(|e| {
                e.everywhere
                    .map(|(_, until)| until)
                    .into_iter()
                    .chain(e.per_tenant.iter().map(|(_, _, until)| *until))
            }));
        self.earliest_end = ends.min().unwrap_or(0);
        before - self.len()
    }

    /// Entries held: token ids, users with revoked sessions (per tenant
    /// counted apart), token versions.
    pub(super) fn len(&self) -> usize {
        self.tokens.len()
            + self
                .users
                .values()
                .map(|e| usize::from(e.everywhere.is_some()) + e.per_tenant.len())
                .sum::<usize>()
            + self.versions.len()
    }

    /// Whether a revocation covers the token described by `facts` at `now`.
    pub(crate) fn covers(&self, facts: &TokenFacts<'_>, now: u64) -> Option<RevokedBy> {
        if let Some(jti) = facts.jti {
            if self.tokens.get(jti).is_some_and(|until| *until > now) {
                return Some(RevokedBy::TokenId);
            }
        }
        if let Some(entry) = self.users.get(facts.user) {
            // A token without `iat` cannot show it postdates the
            // revocation: it is covered.
            let older = |before: u64| facts.issued_at.is_none_or(|iat| iat < before);
            let everywhere = entry
                .everywhere
                .is_some_and(|(before, until)| until > now && older(before));
            let here = facts.tenant.is_some_and(|tenant| {
                entry
                    .per_tenant
                    .iter()
                    .any(|(t, before, until)| **t == *tenant && *until > now && older(*before))
            });
            if everywhere || here {
                return Some(RevokedBy::UserBefore);
            }
        }
        if let Some((current, until)) = self.versions.get(facts.user) {
            if *until > now && facts.version.unwrap_or(0) < *current {
                return Some(RevokedBy::Version);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(jti: Option<&'a str>, user: &'a str, iat: Option<u64>) -> TokenFacts<'a> {
        TokenFacts {
            jti,
            user,
            tenant: Some("t1"),
            issued_at: iat,
            version: None,
        }
    }

    fn token(jti: &str) -> Revocation {
        Revocation::Token {
            jti: jti.into(),
            exp: None,
        }
    }

    fn user(user: &str, tenant: Option<&str>, before: u64) -> Revocation {
        Revocation::User {
            user: user.into(),
            tenant: tenant.map(Into::into),
            before,
        }
    }

    #[test]
    fn a_revoked_token_id_is_covered_until_it_is_kept() {
        let mut state = RevocationState::default();
        assert!(state.apply(&token("j1"), 200));
        assert!(
            !state.apply(&token("j1"), 150),
            "an earlier end changes nothing"
        );
        assert_eq!(
            state.covers(&facts(Some("j1"), "u", Some(10)), 100),
            Some(RevokedBy::TokenId)
        );
        assert_eq!(state.covers(&facts(Some("j2"), "u", Some(10)), 100), None);
        assert_eq!(state.covers(&facts(Some("j1"), "u", Some(10)), 200), None);
        assert_eq!(state.prune(199), 0);
        assert_eq!(state.prune(200), 1);
        assert_eq!(state.len(), 0);
    }

    #[test]
    fn revoking_a_user_covers_older_tokens_and_tokens_without_iat() {
        let mut state = RevocationState::default();
        state.apply(&user("u", None, 100), 1_000);
        assert_eq!(
            state.covers(&facts(None, "u", Some(99)), 150),
            Some(RevokedBy::UserBefore)
        );
        assert_eq!(
            state.covers(&facts(None, "u", None), 150),
            Some(RevokedBy::UserBefore)
        );
        assert_eq!(state.covers(&facts(None, "u", Some(100)), 150), None);
        assert_eq!(state.covers(&facts(None, "other", Some(1)), 150), None);
        // An older revocation arriving late does not weaken the newer one.
        state.apply(&user("u", None, 50), 1_000);
        assert!(state.covers(&facts(None, "u", Some(99)), 150).is_some());
    }

    #[test]
    fn a_tenant_revocation_covers_that_tenant_only() {
        let mut state = RevocationState::default();
        state.apply(&user("u", Some("t2"), 100), 1_000);
        assert_eq!(state.covers(&facts(None, "u", Some(50)), 150), None);
        let in_t2 = TokenFacts {
            tenant: Some("t2"),
            ..facts(None, "u", Some(50))
        };
        assert_eq!(state.covers(&in_t2, 150), Some(RevokedBy::UserBefore));
        let no_tenant = TokenFacts {
            tenant: None,
            ..in_t2
        };
        assert_eq!(state.covers(&no_tenant, 150), None);
    }

    #[test]
    fn a_version_revokes_tokens_below_it_and_only_rises() {
        let mut state = RevocationState::default();
        let bump = |v| Revocation::TokenVersion {
            user: "u".into(),
            version: v,
        };
        state.apply(&bump(3), 1_000);
        state.apply(&bump(2), 1_000);
        let with = |v| TokenFacts {
            version: v,
            ..facts(None, "u", Some(1))
        };
        assert_eq!(state.covers(&with(Some(2)), 10), Some(RevokedBy::Version));
        assert_eq!(state.covers(&with(None), 10), Some(RevokedBy::Version));
        assert_eq!(state.covers(&with(Some(3)), 10), None);
        assert_eq!(state.covers(&with(Some(4)), 10), None);
    }

    #[test]
    fn pruning_keeps_what_still_covers_and_tracks_the_next_end() {
        let mut state = RevocationState::default();
        state.apply(&token("a"), 10);
        state.apply(&token("b"), 30);
        state.apply(&user("u", None, 5), 20);
        state.apply(&user("u", Some("t1"), 5), 40);
        assert_eq!(state.len(), 4);
        assert_eq!(state.prune(15), 1);
        assert_eq!(state.prune(16), 0, "nothing else ends before 20");
        assert_eq!(state.prune(25), 1);
        assert_eq!(
            state.covers(&facts(None, "u", Some(1)), 25),
            Some(RevokedBy::UserBefore)
        );
        assert_eq!(state.prune(45), 2);
        assert_eq!(state.len(), 0);
    }
}
