//! The person's rights as they travel (issue 19): the types are the policy crate's
//! ([`fedq_policy::rights`]), shared with the requester API.

pub use fedq_policy::rights::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::message::LookupAnswer;

    #[test]
    fn a_rights_answer_with_empty_parts_in_the_middle_travels_as_postcard() {
        let decision = |signature: Option<&str>| Decision {
            decision: "approve".into(),
            officer: "reviewer-chen".into(),
            at: "2026-12-01T00:00:00Z".into(),
            note: "ok".into(),
            signature: signature.map(str::to_owned),
        };
        let answer = LookupAnswer::Rights(RightsAnswer {
            repairs: vec![RepairState {
                id: "rep-1".into(),
                dataset: "court.dishonest_debtors".into(),
                record: "(2025)湘0102执101号".into(),
                grounds: RepairGrounds::Performance,
                reason: "performed".into(),
                evidence: "R-1".into(),
                filed_at: "2026-11-30T00:00:00Z".into(),
                status: RepairStatus::Reversed,
                decisions: vec![decision(None), decision(Some("jws")), decision(None)],
            }],
            objections: vec![ObjectionState {
                id: "obj-1".into(),
                dataset: "court.dishonest_debtors".into(),
                record: "k".into(),
                reason: "r".into(),
                evidence: "e".into(),
                filed_at: "t".into(),
                status: ObjectionStatus::Open,
                resolution: None,
            }],
            filed: None,
            unverified: None,
            ..RightsAnswer::default()
        });
        let bytes = postcard::to_allocvec(&answer).unwrap();
        let back: LookupAnswer = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, answer);
    }
}
