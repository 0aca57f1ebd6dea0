//! The demo's scenario: the first persons of every data set, fixed whatever the seed,
//! each with exactly the records its role claims. Written to `OUT/scenario.json` so the
//! demo and the end-to-end tests know whom to ask about.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::person::{FixedPerson, Sex};
use crate::SynthError;

/// `OUT/scenario.json`.
pub const SCENARIO_FILE: &str = "scenario.json";

/// Who the scenario persons are, and what each has on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// The `--today` the data was generated for: the disclosure window ends here.
    #[serde(with = "iso_date")]
    pub today: time::Date,
    /// The `--seed` used.
    pub seed: u64,
    /// An active court dishonest-debtor listing within 3 years, unperformed: disclosed.
    pub blacklisted: ScenarioPerson,
    /// No negative record anywhere; some volunteer service.
    pub clean: ScenarioPerson,
    /// Only negative record started more than 3 years ago: never disclosed.
    pub expired: ScenarioPerson,
    /// Only negative record is within 3 years but repaired: never disclosed.
    pub repaired: ScenarioPerson,
    /// Active tax arrears within 3 years.
    pub tax_arrears: ScenarioPerson,
}

/// One scenario person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioPerson {
    /// The 18-character resident ID (synthetic; valid check character).
    pub resident_id: String,
    /// Name.
    pub name: String,
    /// Every record written for this person, in every dataset.
    pub records: Vec<ScenarioRecord>,
}

/// One record of a scenario person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioRecord {
    /// Department (node), e.g. `court`.
    pub department: String,
    /// Dataset within it, e.g. `dishonest_debtors`.
    pub dataset: String,
    /// The record's key (the dataset's `key` field), e.g. `(2026)湘0104执1234号`.
    pub key: String,
}

impl Scenario {
    /// The roles, by name, in a fixed order.
    pub fn roles(&self) -> [(&'static str, &ScenarioPerson); 5] {
        [
            ("blacklisted", &self.blacklisted),
            ("clean", &self.clean),
            ("expired", &self.expired),
            ("repaired", &self.repaired),
            ("tax_arrears", &self.tax_arrears),
        ]
    }

    /// Reads `dir/scenario.json` as written by `fedq gen-data --out dir`.
    pub fn read(dir: &Path) -> Result<Scenario, SynthError> {
        let path = dir.join(SCENARIO_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| SynthError::io(&path, e))?;
        serde_json::from_str(&text).map_err(|e| SynthError::json(&path, e))
    }
}

impl ScenarioPerson {
    /// The records in `department.dataset`.
    pub fn records_in<'a>(
        &'a self,
        department: &'a str,
        dataset: &'a str,
    ) -> impl Iterator<Item = &'a ScenarioRecord> + 'a {
        self.records
            .iter()
            .filter(move |r| r.department == department && r.dataset == dataset)
    }
}

/// What a forced record is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Forced {
    /// Not repaired, window started this many days before today.
    Unrepaired(i64),
    /// Repaired, window started this many days before today.
    Repaired(i64),
    /// A good-conduct record this many days before today; left out if the catalogues
    /// lack the dataset.
    Positive(i64),
}

/// A role: the fixed person and the records it has (besides identity basics).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Role {
    pub name: &'static str,
    pub person: FixedPerson,
    pub records: &'static [(&'static str, Forced)],
}

/// Four years and a month: well outside the 3-year window, inside the 6-year spread.
const EXPIRED_DAYS: i64 = 4 * 365 + 30;

/// Fictional persons with common names (no real person's data).
pub(crate) const ROLES: [Role; 5] = [
    Role {
        name: "blacklisted",
        person: FixedPerson {
            name: "王建国",
            sex: Sex::Male,
            birth: (1978, 4, 12),
            district: 2,
        },
        records: &[("court.dishonest_debtors", Forced::Unrepaired(200))],
    },
    Role {
        name: "clean",
        person: FixedPerson {
            name: "李晓燕",
            sex: Sex::Female,
            birth: (1990, 9, 23),
            district: 0,
        },
        records: &[
            ("civil-affairs.volunteer_service", Forced::Positive(700)),
            ("civil-affairs.volunteer_service", Forced::Positive(300)),
            ("civil-affairs.volunteer_service", Forced::Positive(40)),
        ],
    },
    Role {
        name: "expired",
        person: FixedPerson {
            name: "张志强",
            sex: Sex::Male,
            birth: (1972, 1, 30),
            district: 4,
        },
        records: &[("court.dishonest_debtors", Forced::Unrepaired(EXPIRED_DAYS))],
    },
    Role {
        name: "repaired",
        person: FixedPerson {
            name: "刘芳",
            sex: Sex::Female,
            birth: (1985, 6, 18),
            district: 3,
        },
        records: &[("court.dishonest_debtors", Forced::Repaired(400))],
    },
    Role {
        name: "tax_arrears",
        person: FixedPerson {
            name: "陈伟",
            sex: Sex::Male,
            birth: (1968, 11, 5),
            district: 1,
        },
        records: &[("tax.arrears", Forced::Unrepaired(120))],
    },
];

pub(crate) mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &time::Date, s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::new();
        crate::records::push_date(&mut out, *d);
        s.serialize_str(&out)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<time::Date, D::Error> {
        let s = String::deserialize(d)?;
        fedq_policy::transform::parse_date(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("expected a date YYYY-MM-DD, got `{s}`"))
        })
    }
}
