//! The merge of one person's POS (X-Series) and eCom sides into the one
//! view Lightspeed's customer sync gives a retailer. Pure rules, no I/O:
//! the reader loads and stores [`PersonState`]s in the state store, so a
//! restart keeps who is who.
//!
//! Identity is the normalised email. Each field comes from the side that
//! changed most recently (X `updated_at` against eCom `updated`; a tie goes
//! to the POS, where Lightspeed centralises customers), falling back to
//! the other side when the newer one has no value. The group is the newer
//! side's, by exact title, the default groups meaning none; two sides that
//! name different groups are a conflict, kept to be listed. The marketing
//! preference is the newer explicit one (eCom's null says nothing).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tillflow_core::model::{Address, Person, Text};

/// The default X-Series group: being in it is being in no group.
pub const POS_DEFAULT_GROUP: &str = "All Customers";
/// The default eCom group (id 0).
pub const ECOM_DEFAULT_GROUP: &str = "General";

/// An email as the merge compares it: trimmed, lower case; `None` when it
/// is not an address.
pub fn normalise_email(email: &str) -> Option<Text> {
    let email = email.trim().to_lowercase();
    (email.len() > 2 && email.contains('@')).then(|| Text::from(email))
}

/// One system's view of the person, as that system last showed it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub id: Text,
    pub email: Option<Text>,
    pub first_name: Option<Text>,
    pub last_name: Option<Text>,
    pub phone: Option<Text>,
    pub company: Option<Text>,
    pub address: Address,
    /// The group's title; `None` for the default group.
    pub group: Option<Text>,
    /// An explicit preference: `Some(false)` may not be emailed.
    pub marketing: Option<bool>,
    pub created_at: Option<Timestamp>,
    pub changed_at: Option<Timestamp>,
}

/// Everything the merge knows of one person.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PersonState {
    pub pos: Option<Side>,
    pub ecom: Option<Side>,
    /// They bought online at least once: what admits an eCom-only person.
    #[serde(default)]
    pub bought_online: bool,
    /// The view's preference and since when it has held (see [`settle`](Self::settle)).
    #[serde(default)]
    pub consent_since: Option<(bool, Timestamp)>,
    /// The view's group and since when it has held.
    #[serde(default)]
    pub group_since: Option<(Option<Text>, Timestamp)>,
    /// A group conflict of this person is listed among the source's notices.
    #[serde(default)]
    pub conflict_listed: bool,
}

/// Where a person is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    Pos,
    Ecom,
    Both,
}

impl Known {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pos => "pos",
            Self::Ecom => "ecom",
            Self::Both => "both",
        }
    }
}

/// Two sides naming different groups: the newer side's group was taken.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupConflict {
    pub pos_group: Option<Text>,
    pub ecom_group: Option<Text>,
    pub chosen: Option<Text>,
    pub chosen_side: String,
}

/// The one view of a person.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    /// The X-Series id, or `ecom:<id>` for someone only eCom knows.
    pub external_id: Text,
    pub known: Known,
    pub person: Person,
    pub group: Option<Text>,
    pub marketing: Option<bool>,
    pub created_at: Option<Timestamp>,
    pub changed_at: Option<Timestamp>,
    pub conflict: Option<GroupConflict>,
    /// Since when the view's preference has held (a change, or its first statement).
    pub consent_changed_at: Option<Timestamp>,
    /// Since when the view's group has held.
    pub group_changed_at: Option<Timestamp>,
}

/// What applying a POS customer found about duplicate emails in X-Series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// The customer whose fields the view keeps (the most recently updated).
    pub kept: Text,
    /// The other one.
    pub other: Text,
}

impl PersonState {
    /// Takes a POS customer. X-Series allows two customers with one email:
    /// the most recently updated is the person's POS side, and the pair is
    /// reported. An older reading of the same customer changes nothing.
    pub fn apply_pos(&mut self, side: Side) -> Option<Duplicate> {
        match &self.pos {
            Some(current) if current.id != side.id => {
                if side.changed_at >= current.changed_at {
                    let other = current.id.clone();
                    let kept = side.id.clone();
                    self.pos = Some(side);
                    Some(Duplicate { kept, other })
                } else {
                    Some(Duplicate { kept: current.id.clone(), other: side.id })
                }
            }
            Some(current) if side.changed_at < current.changed_at => None,
            _ => {
                self.pos = Some(side);
                None
            }
        }
    }

    /// Takes an eCom customer (an older reading changes nothing).
    pub fn apply_ecom(&mut self, side: Side) {
        if self.ecom.as_ref().is_none_or(|current| current.id != side.id || side.changed_at >= current.changed_at) {
            self.ecom = Some(side);
        }
    }

    /// POS customers are always in the view; eCom-only ones once they have
    /// bought online.
    pub fn admitted(&self) -> bool {
        self.pos.is_some() || (self.ecom.is_some() && self.bought_online)
    }

    /// Records when the view's preference and group took their current
    /// values: only a change of the view moves them, so a side that becomes
    /// newer without changing either (a new phone number) moves neither,
    /// and a sink syncing consent never applies an unchanged preference again.
    pub fn settle(&mut self) {
        let Some(view) = self.merged() else { return };
        let at = view.changed_at.unwrap_or_else(Timestamp::now);
        if let Some(value) = view.marketing
            && self.consent_since.as_ref().map(|(held, _)| *held) != Some(value)
        {
            self.consent_since = Some((value, at));
        }
        if self.group_since.as_ref().map(|(held, _)| held) != Some(&view.group) {
            self.group_since = Some((view.group, at));
        }
    }

    /// The view of this person, if they are in it.
    pub fn merged(&self) -> Option<Merged> {
        if !self.admitted() {
            return None;
        }
        let (newer, older, known) = match (&self.pos, &self.ecom) {
            (Some(pos), Some(ecom)) if ecom.changed_at > pos.changed_at => (ecom, Some(pos), Known::Both),
            (Some(pos), Some(ecom)) => (pos, Some(ecom), Known::Both),
            (Some(pos), None) => (pos, None, Known::Pos),
            (None, Some(ecom)) => (ecom, None, Known::Ecom),
            (None, None) => return None,
        };
        let field =
            |pick: fn(&Side) -> &Option<Text>| pick(newer).clone().or_else(|| older.and_then(|o| pick(o).clone()));
        let address = if newer.address != Address::default() {
            newer.address.clone()
        } else {
            older.map(|o| o.address.clone()).unwrap_or_default()
        };
        let external_id = match &self.pos {
            Some(pos) => pos.id.clone(),
            None => Text::display(format_args!("ecom:{}", newer.id)),
        };
        let person = Person {
            customer_id: Some(external_id.clone()),
            email: field(|s| &s.email),
            first_name: field(|s| &s.first_name),
            last_name: field(|s| &s.last_name),
            phone: field(|s| &s.phone),
            company: field(|s| &s.company),
            title: None,
            address,
        };
        let marketing = [Some(newer), older].into_iter().flatten().find_map(|side| side.marketing);
        let conflict = match (&self.pos, &self.ecom) {
            (Some(pos), Some(ecom)) if pos.group != ecom.group => Some(GroupConflict {
                pos_group: pos.group.clone(),
                ecom_group: ecom.group.clone(),
                chosen: newer.group.clone(),
                chosen_side: if std::ptr::eq(newer, pos) { "pos" } else { "ecom" }.to_owned(),
            }),
            _ => None,
        };
        let created_at =
            [self.pos.as_ref(), self.ecom.as_ref()].into_iter().flatten().filter_map(|s| s.created_at).min();
        let changed_at =
            [self.pos.as_ref(), self.ecom.as_ref()].into_iter().flatten().filter_map(|s| s.changed_at).max();
        Some(Merged {
            external_id,
            known,
            person,
            group: newer.group.clone(),
            marketing,
            consent_changed_at: self
                .consent_since
                .as_ref()
                .filter(|(held, _)| Some(*held) == marketing)
                .map(|(_, since)| *since),
            group_changed_at: self
                .group_since
                .as_ref()
                .filter(|(held, _)| *held == newer.group)
                .map(|(_, since)| *since),
            created_at,
            changed_at,
            conflict,
        })
    }
}

/// A group title as the merge compares it: exact, the default groups none.
pub fn group_title(title: Option<Text>) -> Option<Text> {
    title.filter(|t| !t.is_empty() && t != POS_DEFAULT_GROUP && t != ECOM_DEFAULT_GROUP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(1_700_000_000 + second).unwrap())
    }

    fn side(id: &str, changed: i64) -> Side {
        Side { id: id.into(), email: Some("a@x.io".into()), changed_at: at(changed), ..Side::default() }
    }

    #[test]
    fn the_newer_side_wins_each_field_and_the_older_fills_its_gaps() {
        let mut state = PersonState::default();
        state.apply_pos(Side { first_name: Some("Ann".into()), phone: Some("+1 555".into()), ..side("x1", 10) });
        state.apply_ecom(Side { first_name: Some("Anna".into()), ..side("7", 20) });
        let merged = state.merged().unwrap();
        assert_eq!(merged.person.first_name.as_deref(), Some("Anna"), "eCom changed last");
        assert_eq!(merged.person.phone.as_deref(), Some("+1 555"), "eCom has none: the POS's stays");
        assert_eq!(merged.external_id, "x1", "the X-Series id whenever POS knows them");
        assert_eq!(merged.known, Known::Both);
    }

    #[test]
    fn the_group_is_the_newer_sides_and_a_difference_is_a_conflict() {
        let mut state = PersonState::default();
        state.apply_pos(Side { group: Some("VIP".into()), ..side("x1", 30) });
        state.apply_ecom(Side { group: Some("Vip ".into()), ..side("7", 20) });
        let merged = state.merged().unwrap();
        assert_eq!(merged.group.as_deref(), Some("VIP"));
        let conflict = merged.conflict.unwrap();
        assert_eq!((conflict.chosen_side.as_str(), conflict.ecom_group.as_deref()), ("pos", Some("Vip ")));
        state.apply_ecom(Side { group: Some("VIP".into()), ..side("7", 40) });
        assert_eq!(state.merged().unwrap().conflict, None, "the same title on both sides");
    }

    #[test]
    fn the_newest_explicit_preference_wins_and_ecoms_null_says_nothing() {
        let mut state = PersonState::default();
        state.apply_pos(Side { marketing: Some(false), ..side("x1", 10) });
        state.apply_ecom(Side { marketing: None, ..side("7", 20) });
        assert_eq!(state.merged().unwrap().marketing, Some(false));
        state.apply_ecom(Side { marketing: Some(true), ..side("7", 30) });
        assert_eq!(state.merged().unwrap().marketing, Some(true));
        state.apply_pos(Side { marketing: Some(false), ..side("x1", 40) });
        assert_eq!(state.merged().unwrap().marketing, Some(false), "the POS opt-out is the latest");
    }

    #[test]
    fn an_ecom_only_person_is_in_the_view_once_they_bought_online() {
        let mut state = PersonState::default();
        state.apply_ecom(side("7", 10));
        assert_eq!(state.merged(), None);
        state.bought_online = true;
        let merged = state.merged().unwrap();
        assert_eq!((merged.external_id.as_str(), merged.known), ("ecom:7", Known::Ecom));
    }

    #[test]
    fn of_duplicate_pos_emails_the_most_recently_updated_is_kept() {
        let mut state = PersonState::default();
        assert_eq!(state.apply_pos(side("x1", 10)), None);
        assert_eq!(state.apply_pos(side("x2", 20)), Some(Duplicate { kept: "x2".into(), other: "x1".into() }));
        assert_eq!(state.apply_pos(side("x1", 15)), Some(Duplicate { kept: "x2".into(), other: "x1".into() }));
        assert_eq!(state.merged().unwrap().external_id, "x2");
        assert_eq!(state.apply_pos(side("x2", 5)), None, "an older reading of the kept one");
        assert_eq!(state.pos.as_ref().unwrap().changed_at, at(20));
    }

    #[test]
    fn only_a_change_of_the_view_moves_when_its_preference_and_group_changed() {
        let mut state = PersonState::default();
        state.apply_pos(Side { marketing: Some(true), group: Some("VIP".into()), ..side("x1", 10) });
        state.settle();
        let first = state.merged().unwrap();
        assert_eq!((first.consent_changed_at, first.group_changed_at), (at(10), at(10)));
        // eCom becomes the newer side, saying the same: nothing moves.
        state.apply_ecom(Side {
            marketing: Some(true),
            group: Some("VIP".into()),
            phone: Some("1".into()),
            ..side("7", 20)
        });
        state.settle();
        let same = state.merged().unwrap();
        assert_eq!((same.consent_changed_at, same.group_changed_at), (at(10), at(10)));
        // An opt-out at the till moves the preference's time, not the group's.
        state.apply_pos(Side { marketing: Some(false), group: Some("VIP".into()), ..side("x1", 30) });
        state.settle();
        let changed = state.merged().unwrap();
        assert_eq!(
            (changed.marketing, changed.consent_changed_at, changed.group_changed_at),
            (Some(false), at(30), at(10))
        );
        let unsettled = PersonState { consent_since: None, ..state.clone() };
        assert_eq!(unsettled.merged().unwrap().consent_changed_at, None, "nothing to apply before it is settled");
    }

    #[test]
    fn default_groups_are_no_group_and_titles_match_exactly() {
        assert_eq!(group_title(Some("All Customers".into())), None);
        assert_eq!(group_title(Some("General".into())), None);
        assert_eq!(group_title(Some("Vip ".into())).as_deref(), Some("Vip "));
    }
}
