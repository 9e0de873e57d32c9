//! The report's section on searches: per search the chosen setting, every trial's score
//! at every rung it reached, and the epochs spent against training every trial to the end.

use super::{Report, SearchResult};

/// The Markdown section on `r`'s searches (empty when the suite searches nothing).
pub fn section(r: &Report) -> String {
    if r.searches.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## Searches\n\nA searched method's row holds, for each data set, ratio, data seed and seed, the trial its \
         search chose on **validation** balanced accuracy with successive halving; the test split played no part in \
         the choice. A trial's score at a rung is its best validation bACC (%) over its epochs after the epochs \
         all trials share, up to the rung's end; ✓ marks the trials that went on (after the last rung: the chosen \
         one). M2m accepted: translations accepted of those attempted in the trial's own epochs.\n",
    );
    for s in &r.searches {
        md.push_str(&one(s));
    }
    md
}

/// One search: the choice, the cost and the table of scores.
fn one(s: &SearchResult) -> String {
    let rec = &s.record;
    let mut md = format!("\n### {}\n\n", rec.key.run_name());
    match rec.chosen {
        Some(c) => md.push_str(&format!("Chosen on validation: `{}` ({}).", rec.trials[c].run, rec.trials[c].setting)),
        None => md.push_str(&format!("Not done yet: {} of {} rungs.", rec.rungs.len(), rec.rung_ends.len())),
    }
    let share = 100.0 * rec.epochs_trained as f64 / rec.epochs_full_grid.max(1) as f64;
    md.push_str(&format!(
        " Trial epochs after the {} shared ones: {} with successive halving against {} for every trial to the \
         end ({share:.0}%).\n\n| trial | setting |",
        rec.shared, rec.epochs_trained, rec.epochs_full_grid
    ));
    for (i, end) in rec.rung_ends.iter().enumerate() {
        md.push_str(&format!(" rung {} (epoch {end}) |", i + 1));
    }
    let m2m = s.translations.iter().any(Option::is_some);
    if m2m {
        md.push_str(" M2m accepted |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---:|".repeat(rec.rung_ends.len() + m2m as usize));
    md.push('\n');
    for (k, t) in rec.trials.iter().enumerate() {
        md.push_str(&format!("| t{k} | {} |", t.setting));
        for (i, _) in rec.rung_ends.iter().enumerate() {
            let cell = rec.rungs.get(i).and_then(|rung| {
                let at = rung.trained.iter().position(|&x| x == k)?;
                let went_on = if rung.promoted.contains(&k) { " ✓" } else { "" };
                Some(rung.scores[at].map_or("failed".to_string(), |v| format!("{:.2}{went_on}", 100.0 * v)))
            });
            let pruned = i == 0 && rec.pruned.contains(&k);
            md.push_str(&format!(" {} |", if pruned { "pruned".into() } else { cell.unwrap_or_default() }));
        }
        if m2m {
            let accepted = s.translations[k].as_ref().map_or("–".into(), |g| {
                format!(
                    "{}/{} ({})",
                    g.total_accepted(),
                    g.total_attempts(),
                    percent(g.total_accepted(), g.total_attempts())
                )
            });
            md.push_str(&format!(" {accepted} |"));
        }
        md.push('\n');
    }
    if let Some(p) = &rec.prune {
        md.push_str(&pruned(rec, p));
    }
    for (k, why) in &rec.failed {
        md.push_str(&format!("\n`{}` failed: {why}\n", rec.trials[*k].run));
    }
    md
}

/// The line on the probe filter: how many settings it dropped, at what threshold, each
/// with its probed acceptance.
fn pruned(rec: &crate::suite::SearchRecord, p: &crate::suite::search::PruneParams) -> String {
    let rate = |(a, n): (u64, u64)| format!("{a}/{n}, {}", percent(a, n));
    let dropped: Vec<String> =
        rec.pruned.iter().filter_map(|&k| Some(format!("t{k} ({})", rate(*rec.probed.get(k)?)))).collect();
    let kept: Vec<String> = (0..rec.probed.len())
        .filter(|k| !rec.pruned.contains(k))
        .map(|k| format!("t{k} ({})", rate(rec.probed[k])))
        .collect();
    format!(
        "\nPruned before any training: {} of {} settings, whose M2m accepted under {}% of its translations on {} \
         class-balanced training batches (g standing in for f){}{}. Kept: {}.\n",
        rec.pruned.len(),
        rec.trials.len(),
        100.0 * p.min_acceptance,
        p.batches,
        if dropped.is_empty() { "" } else { ": " },
        dropped.join(", "),
        if kept.is_empty() { "none".to_string() } else { kept.join(", ") }
    )
}

/// `a` of `n` as a percentage with two decimals (0.00% when `n` is 0).
fn percent(a: u64, n: u64) -> String {
    format!("{:.2}%", 100.0 * a as f64 / n.max(1) as f64)
}
