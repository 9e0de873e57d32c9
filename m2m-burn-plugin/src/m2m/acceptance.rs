//! When M2m accepted too few translations to matter. M2m trains on the class-balanced
//! sampler's batches with some minority slots replaced by translations; a run that
//! accepted almost none trained on nearly the same batches as DRS, and its numbers say
//! nothing about translation. Reports and run logs say so next to the numbers.

use m2m_core::translation::GenerationStats;

/// Below this share of attempted translations accepted, an M2m run is, for practical
/// purposes, a DRS run (fewer than 1 slot in 100 of the minority slots M2m tried to
/// fill took a translation).
pub const LOW_ACCEPTANCE: f64 = 0.01;

/// Where docs/m2m.md explains it and how to choose a translation budget.
pub const LOW_ACCEPTANCE_HELP: &str = "docs/m2m.md#when-m2m-accepts-almost-nothing";

/// A sentence for a person reading the results, when `stats` accepted under
/// [`LOW_ACCEPTANCE`] of its attempts (or attempted nothing).
pub fn low_acceptance(stats: &GenerationStats) -> Option<String> {
    let (accepted, attempts) = (stats.total_accepted(), stats.total_attempts());
    let rate = stats.acceptance_rate().unwrap_or(0.0);
    (rate < LOW_ACCEPTANCE).then(|| {
        format!(
            "accepted {accepted} of {attempts} translations ({:.2}%), under {:.0}%: it trained on nearly the \
             batches DRS (the class-balanced sampler alone) trains on, so its numbers say little about M2m's \
             translation. See {LOW_ACCEPTANCE_HELP}; `m2m probe` measures acceptance for other settings \
             (step size, steps, gamma) and `m2m translate` shows translations on images",
            100.0 * rate,
            100.0 * LOW_ACCEPTANCE
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(attempts: &[u64], accepted: &[u64]) -> GenerationStats {
        let mut s = GenerationStats::new(attempts.len());
        s.attempts = attempts.to_vec();
        s.accepted = accepted.to_vec();
        s
    }

    #[test]
    fn under_one_percent_is_flagged_and_above_is_not() {
        let low = low_acceptance(&stats(&[0, 3000, 740], &[0, 2, 1])).unwrap();
        assert!(low.contains("accepted 3 of 3740 translations (0.08%)") && low.contains(LOW_ACCEPTANCE_HELP), "{low}");
        assert!(low_acceptance(&stats(&[0, 100, 100], &[0, 1, 1])).is_none(), "exactly 1%");
        assert!(low_acceptance(&stats(&[0, 0], &[0, 0])).is_some(), "nothing attempted");
    }
}
