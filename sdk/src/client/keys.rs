//! Every key the client keeps in the visitor's storage, in one list, with what erasing the
//! visitor's data does to each. `Client::forget` walks this list, so a key added here cannot be
//! missed by an erase; a key built anywhere else would be (the test below looks for strays).

/// One thing kept about the visitor, stored under `<storageKey><suffix>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The event log itself (`store::EventLog`).
    Log,
    /// A GRU recommender's session state, so a reload does not replay the history.
    State,
    /// Items the placements returned today, for attribution and `excludeRecentlyShown`.
    Shown,
    /// The experiment variants assigned on this device.
    Variants,
    /// The visitor's consent choice.
    Consent,
    /// Reports waiting to be sent, and the day the last one was prepared.
    Outbox,
    /// The ε spent per day.
    Budget,
}

/// What `forget()` does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnForget {
    /// Removed.
    Erase,
    /// Rewritten by its owner without anything about the visitor's behaviour: the outbox drops
    /// its reports but keeps the day it last prepared one, so an erase cannot buy a second
    /// report that day.
    Rewrite,
    /// Kept: a choice the visitor made (consent), or privacy spent that erasing cannot refund
    /// (the ε budget).
    Keep,
}

impl Kept {
    pub(crate) const ALL: [Kept; 7] = [Kept::Outbox, Kept::Budget, Kept::Consent, Kept::State, Kept::Shown, Kept::Variants, Kept::Log];

    fn suffix(self) -> &'static str {
        match self {
            Kept::Log => "",
            Kept::State => ".state",
            Kept::Shown => ".shown",
            Kept::Variants => ".variants",
            Kept::Consent => ".consent",
            Kept::Outbox => ".outbox",
            Kept::Budget => ".outbox.budget",
        }
    }

    pub(crate) fn on_forget(self) -> OnForget {
        match self {
            Kept::Log | Kept::State | Kept::Shown | Kept::Variants => OnForget::Erase,
            Kept::Outbox => OnForget::Rewrite,
            Kept::Consent | Kept::Budget => OnForget::Keep,
        }
    }
}

/// The keys of one storage key (`Config::storage_key`: one per shop on a shared origin).
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    base: String,
}

impl Keys {
    pub(crate) fn new(base: impl Into<String>) -> Self {
        Keys { base: base.into() }
    }

    pub(crate) fn of(&self, kept: Kept) -> String {
        format!("{}{}", self.base, kept.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_and_under_the_storage_key() {
        let keys = Keys::new("shop");
        let all: Vec<String> = Kept::ALL.iter().map(|&k| keys.of(k)).collect();
        let unique: std::collections::HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert!(all.iter().all(|k| k == "shop" || k.starts_with("shop.")), "{all:?}");
    }
}
