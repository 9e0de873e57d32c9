//! How many leading epochs two recipes train identically: what lets a run start as an
//! exact fork of another run (`start_from: (run: ..., epoch: E)`) and lets suites train a
//! shared prefix once (DRS, DRW and M2m are ERM until their deferred epoch).

use m2m_core::sampling::SamplerKind;

use super::Recipe;

/// The number of leading epochs in which runs of `a` and `b` compute the same thing:
/// the same data, model, optimiser, LR schedule, batch sizes, seed and evaluation, and in
/// each of those epochs the same sampler, the same class weights and no M2m. Per-epoch
/// seeding makes the sampling, augmentation and translation streams of an epoch depend
/// only on the seed and the epoch, so a run of `b` may continue a run of `a` from any
/// epoch up to this number and reproduce a from-scratch run of `b` exactly.
///
/// Names, output folders, backends and `start_from` are not compared (callers decide).
pub fn shared_epochs(a: &Recipe, b: &Recipe) -> usize {
    let same_throughout = a.dataset == b.dataset
        && a.architecture == b.architecture
        && a.cosine_head == b.cosine_head
        && a.optimizer == b.optimizer
        && a.epochs == b.epochs
        && a.schedule == b.schedule
        && a.batch_size == b.batch_size
        && a.eval_batch_size == b.eval_batch_size
        && a.eval_logit_adjustment == b.eval_logit_adjustment
        && a.seed == b.seed
        && a.loss.kind == b.loss.kind
        // SMOTE adds its synthetic images when the run begins, whatever its epoch.
        && (a.sampler == b.sampler || (a.sampler.value != SamplerKind::Smote && b.sampler.value != SamplerKind::Smote));
    if !same_throughout {
        return 0;
    }
    let m2m_from = |r: &Recipe| r.m2m.as_ref().map_or(usize::MAX, |m| m.from_epoch);
    (0..a.epochs)
        .find(|&e| {
            let sampler = |r: &Recipe| r.sampler.at(e).copied().unwrap_or(SamplerKind::Natural);
            let weights = |r: &Recipe| r.loss.weighting.as_ref().and_then(|w| w.at(e).copied());
            let (wa, wb) = (weights(a), weights(b));
            sampler(a) != sampler(b)
                || wa != wb
                || (wa.is_some() && a.loss.weighted_mean != b.loss.weighted_mean)
                || (e >= m2m_from(a).min(m2m_from(b)) && a.m2m != b.m2m)
        })
        .unwrap_or(a.epochs)
}
