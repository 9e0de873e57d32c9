//! Running a recipe through burn-train: open (or resume, or fork) its run directory,
//! prepare the data, build f (and M2m's g), the learner and its strategy, train, and record
//! the outcome.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use burn::backend::Flex;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::SgdConfig;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining, TrainingStrategy};
use m2m_core::metrics::ClassGroups;

use super::renderer::{self, LogRenderer};
use super::{
    fork, load_start, on_board, Board, Components, EpochScheduler, EvalLoader, ImbalancedStrategy, Optim, TrainLoader,
};
use crate::data::{DataFormat, DataSource, PreparedData};
use crate::m2m::{M2m, M2mSchedule};
use crate::model::{load_classifier, save_classifier, ModelSpec, Net};
use crate::provenance::Session;
use crate::recipe::{to_ron, Recipe, StartFrom};
use crate::run_dir::{best_val, EpochRecord, FinalMetrics, RunDir, RunState};

/// The recorder of burn-train's checkpoints, also used to check them before resuming.
type CheckpointRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressView {
    /// burn's terminal dashboard when stdout is a terminal, log lines otherwise.
    Auto,
    /// Log lines only.
    Log,
}

/// How a run relates to other runs' first epochs (suites set them; `m2m train
/// --keep-epochs` the first). None changes what the run computes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prefixes {
    /// Epoch counts after which the run keeps its burn-train checkpoint and best model,
    /// so that other runs can fork from it there.
    pub keep: Vec<usize>,
    /// Start a new run directory as an exact fork of this run directory after this many
    /// epochs (as `start_from: (run: ..., epoch: ...)` does from a recipe).
    pub fork_from: Option<(std::path::PathBuf, usize)>,
    /// Stop, resumably, once this many epochs are complete (a search rung's end): the run
    /// returns [`Stopped::Rung`](crate::stop::Stopped::Rung) and a later run with a later
    /// (or no) pause goes on from there. `None`, or the last epoch: train to the end.
    pub pause_after: Option<usize>,
}

/// What a finished (or already finished) run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub run_dir: std::path::PathBuf,
    pub metrics: FinalMetrics,
    /// False when the run directory already held the finished run.
    pub trained_now: bool,
}

/// Trains `recipe` on `device`, resuming from the run directory when it holds an
/// unfinished run of the same recipe. `baseline` gives M2m's g; it is called once, and
/// only when the recipe has an `m2m` section and the run is not finished yet (the run
/// layer, `crate::run`, resolves it: a checkpoint, or a cached ERM run).
///
/// The steps: open the run directory (fork, resume or finish), prepare the data, build
/// the model and optimiser (from scratch, a checkpoint or the resumed epoch), assemble
/// burn-train's learner with our epoch loop, run it, and record the outcome.
pub fn train_recipe<B: AutodiffBackend>(
    recipe: &Recipe,
    device: B::Device,
    progress: ProgressView,
    prefixes: &Prefixes,
    baseline: impl FnOnce(&ModelSpec) -> anyhow::Result<Net<B>>,
) -> anyhow::Result<RunOutcome> {
    let (run, state) = match open_run(recipe, prefixes)? {
        Opened::Finished(outcome) => return Ok(outcome),
        Opened::ToTrain { run, state } => (run, state),
    };
    if let Some(why) = state.as_ref().and_then(|s| s.stopped.as_ref()) {
        tracing::info!("{}: {why} last time; resuming", run.root.display());
    }
    let data = prepare_data(recipe, &run)?;
    let completed = resumable_epoch::<B>(&run, state.as_ref().map_or(0, |s| s.completed_epochs), &device);
    let mut sessions = open_session::<B>(&run, &device, completed)?;
    let spec = recipe.model_spec(&data.manifest.format);
    let start = model_and_optimizer::<B>(recipe, &spec, &run, completed, &device)?;
    let m2m = match &recipe.m2m {
        None => None,
        Some(plan) => {
            let g = baseline(&spec)?;
            let schedule = M2mSchedule { from_epoch: plan.from_epoch, seed: recipe.seed };
            Some((M2m::new(&g, data.manifest.train_counts.clone(), plan.translation.clone()), schedule))
        }
    };
    let mut previous = run.read_records()?;
    previous.retain(|r| r.epoch < completed);
    let selected_on_test = data.manifest.selected_on_test;
    let session = sessions.last().expect("this process's session");
    let setup =
        Setup { recipe, run: &run, spec: &spec, prefixes, previous, first_epoch: start.first_epoch, m2m, session };
    let (training, scheduler, failure, board) = learner::<B>(setup, data, progress, completed, device);
    let result = training.launch(Learner::new(start.model, start.optimizer, scheduler));
    drop(result.renderer); // restores the terminal after the dashboard
    if let Some(e) = failure.lock().expect("failure slot").take() {
        let how = match crate::error::stopped_by(&e) {
            Some(why) => format!("{why}"),
            None => {
                on_board(&board, |b| b.fail());
                format!("failed: {e}")
            }
        };
        close_session(&run, &mut sessions, how);
        return Err(e);
    }
    let model = <Net<B> as burn::module::AutodiffModule<B>>::from_inner(result.model);
    let outcome = record_outcome(recipe, run.clone(), &spec, &model, selected_on_test)?;
    close_session(&run, &mut sessions, "finished".into());
    let m = &outcome.metrics;
    on_board(&board, |b| b.finish(m.last.epoch, m.best_val.test.balanced_accuracy));
    Ok(outcome)
}

/// A run directory after [`open_run`].
enum Opened {
    /// It held the finished run of this recipe.
    Finished(RunOutcome),
    /// Training starts or continues; `state` is `None` for a new run.
    ToTrain { run: RunDir, state: Option<RunState> },
}

/// The run directory of `recipe`: started as a fork when the recipe or the suite says
/// so, refused when it holds another recipe's run, and reported as is when finished.
fn open_run(recipe: &Recipe, prefixes: &Prefixes) -> anyhow::Result<Opened> {
    let run = RunDir::new(recipe.run_dir());
    let mut state = run.read_state()?;
    let fork_from = match &recipe.start_from {
        Some(StartFrom::Run { run, epoch }) => Some((run.clone(), *epoch)),
        _ => prefixes.fork_from.clone(),
    };
    if let (None, Some((source, epoch))) = (&state, fork_from) {
        fork::start_fork(&RunDir::new(source), epoch, &run, recipe, &to_ron(&recipe.raw))?;
        state = run.read_state()?;
    }
    if state.is_some() {
        // Compared as recipes, not as text: fields added to recipes by a newer m2m read
        // back as unset from an older run's file, so upgrading keeps runs resumable.
        let old = crate::recipe::resolve_raw(&run.recipe_path())
            .with_context(|| format!("{} holds state.json but no readable recipe", run.root.display()))?;
        if old != recipe.raw {
            bail!(
                "{} already holds a run of a different recipe (compare {}); choose another `name`/`output_dir`, or delete the folder",
                run.root.display(),
                run.recipe_path().display()
            );
        }
    }
    if let Some(RunState { finished: true, .. }) = state {
        let metrics = run
            .read_final()?
            .with_context(|| format!("{}: state.json says finished but final.json is missing", run.root.display()))?;
        tracing::info!("{} is already finished; nothing to do", run.root.display());
        return Ok(Opened::Finished(RunOutcome { run_dir: run.root, metrics, trained_now: false }));
    }
    Ok(Opened::ToTrain { run, state })
}

/// The recipe's data, prepared and logged, with the resolved recipe and the data
/// manifest written into the run directory.
fn prepare_data(recipe: &Recipe, run: &RunDir) -> anyhow::Result<PreparedData> {
    let data = recipe.dataset.prepare().context("preparing the data set")?;
    let m = &data.manifest;
    tracing::info!(
        "{}: {} training images, counts {:?} (imbalance {:.0}), {} validation, {} test",
        m.dataset,
        m.train_total,
        m.train_counts,
        m.imbalance_factor,
        m.val_size,
        m.test_size
    );
    std::fs::create_dir_all(&run.root).with_context(|| format!("creating {}", run.root.display()))?;
    run.write_recipe(&to_ron(&recipe.raw))?;
    run.write_data_manifest(m)?;
    Ok(data)
}

/// What burn's learner starts from.
struct Start<B: AutodiffBackend> {
    model: Net<B>,
    optimizer: Optim<B>,
    /// The first epoch (0-based) this run trains: 0, or `start_from.epoch`.
    first_epoch: usize,
}

/// f and SGD: initialised from the recipe's seed, or read from `start_from`'s checkpoint
/// when the run begins there (a resumed run's own checkpoint is restored by burn-train).
fn model_and_optimizer<B: AutodiffBackend>(
    recipe: &Recipe,
    spec: &ModelSpec,
    run: &RunDir,
    completed: usize,
    device: &B::Device,
) -> anyhow::Result<Start<B>> {
    let start = match &recipe.start_from {
        Some(StartFrom::Checkpoint { checkpoint, epoch }) if completed == 0 => {
            let start = load_start::<B>(checkpoint, *epoch, spec, device)?;
            tracing::info!(
                "f starts from {} at epoch {} ({}, momentum for {} of {} parameters)",
                checkpoint.display(),
                epoch,
                start.record.format,
                start.record.momentum_buffers,
                start.record.parameters
            );
            run.write_start(&start.record)?;
            Some(start)
        }
        _ => None,
    };
    // A fork's first epochs are its own (taken over from the source); a run from a
    // checkpoint has no records before its first epoch.
    let first_epoch = match &recipe.start_from {
        Some(StartFrom::Checkpoint { epoch, .. }) => *epoch,
        _ => 0,
    };
    let o = &recipe.optimizer;
    let momentum = MomentumConfig::new().with_momentum(o.momentum).with_dampening(0.0).with_nesterov(o.nesterov);
    let optimizer = SgdConfig::new()
        .with_momentum(Some(momentum))
        .with_weight_decay((o.weight_decay > 0.0).then(|| WeightDecayConfig::new(o.weight_decay as f32)))
        .init::<B, Net<B>>();
    let (model, optimizer) = match start {
        Some(s) => (s.model.clone(), s.optimizer(optimizer)),
        None => (spec.init_seeded(recipe.seed, device), optimizer),
    };
    Ok(Start { model, optimizer, first_epoch })
}
/// What the learner is assembled from, besides the data and the device.
struct Setup<'a, B: AutodiffBackend> {
    recipe: &'a Recipe,
    run: &'a RunDir,
    spec: &'a ModelSpec,
    prefixes: &'a Prefixes,
    /// Records of the epochs finished before this launch (resume).
    previous: Vec<EpochRecord>,
    first_epoch: usize,
    m2m: Option<(M2m<B, Net<B>>, M2mSchedule)>,
    /// This process's share of the run, written into its TensorBoard log.
    session: &'a Session,
}

/// The failure slot our epoch loop fills when it stops on an error.
type Failure = Arc<Mutex<Option<anyhow::Error>>>;

/// burn-train's supervised training with our epoch loop ([`ImbalancedStrategy`]), its
/// loaders, checkpointer and progress display, resuming after `completed` epochs; the
/// LR scheduler for the learner; and the slot the loop reports a failure in.
fn learner<B: AutodiffBackend>(
    setup: Setup<'_, B>,
    data: PreparedData,
    progress: ProgressView,
    completed: usize,
    device: B::Device,
) -> (SupervisedTraining<Components<B>>, EpochScheduler, Failure, Board) {
    let Setup { recipe, run, spec, prefixes, previous, first_epoch, m2m, session } = setup;
    let PreparedData { train, val, test, manifest } = data;
    let board = Arc::new(Mutex::new(open_board(recipe, run, &manifest.format.class_names, completed, session)));
    let train_loader = Arc::new(TrainLoader::<B>::new(
        Arc::new(train),
        recipe.sampler,
        recipe.dataset.augmentation,
        recipe.batch_size,
        recipe.seed,
        device.clone(),
    ));
    let scheduler =
        EpochScheduler::new(recipe.schedule.clone(), train_loader.batches_per_epoch()).starting_at_epoch(first_epoch);
    let val = Arc::new(val);
    let eval_loader = |set| EvalLoader::<B::InnerBackend>::new(set, recipe.eval_batch_size, device.clone());
    let failure = Arc::new(Mutex::new(None));
    let strategy = ImbalancedStrategy::<B> {
        train: train_loader.clone(),
        val: eval_loader(val.clone()),
        test: eval_loader(Arc::new(test)),
        groups: ClassGroups::new(manifest.train_counts.clone()),
        run: RunDir::new(run.root.clone()),
        spec: spec.clone(),
        previous,
        first_epoch,
        fork_points: prefixes.keep.clone(),
        pause_after: prefixes.pause_after,
        class_names: manifest.format.class_names.clone(),
        image_size: (manifest.format.height, manifest.format.width),
        loss: recipe.loss,
        eval_logit_adjustment: recipe.eval_logit_adjustment,
        m2m,
        failure: failure.clone(),
        board: board.clone(),
    };
    let mut training = SupervisedTraining::new(run.burn_dir(), train_loader, Arc::new(eval_loader(val)))
        .metrics((AccuracyMetric::<Flex>::new(), LossMetric::<Flex>::new()))
        .metric_train_numeric(LearningRateMetric::new())
        .with_file_checkpointer(CheckpointRecorder::new())
        .with_checkpointing_strategy(fork::KeepForkPoints { keep: prefixes.keep.clone() })
        .with_application_logger(None)
        .num_epochs(recipe.epochs)
        .with_training_strategy(TrainingStrategy::Custom(Arc::new(strategy)));
    let dashboard = progress == ProgressView::Auto && std::io::stdout().is_terminal();
    if !dashboard {
        training = training.renderer(LogRenderer::new(renderer::log_interval()));
    }
    if completed > 0 {
        tracing::info!("resuming {} after epoch {completed}", run.root.display());
        training = training.checkpoint(completed);
    }
    (training, scheduler, failure, board)
}

/// The run's TensorBoard log for the epochs after `completed` (a new event file: the
/// epochs already logged are not written again), or `None` when the recipe keeps none or
/// it cannot be created (a warning; training goes on).
fn open_board(
    recipe: &Recipe,
    run: &RunDir,
    class_names: &[String],
    completed: usize,
    session: &Session,
) -> Option<crate::tensorboard::RunBoard> {
    if !recipe.tensorboard {
        return None;
    }
    let dir = run.tensorboard_dir();
    // A fork that starts its log now: its first epochs are the source's.
    let copied_from = match run.read_fork() {
        Ok(Some(fork)) if !dir.exists() => Some(fork.source),
        _ => None,
    };
    let hparams = serde_json::to_value(&recipe.raw).map(|v| crate::tensorboard::recipe_hparams(&v)).unwrap_or_default();
    let opened = crate::tensorboard::RunBoard::open(
        &dir,
        &to_ron(&recipe.raw),
        &hparams,
        class_names.to_vec(),
        completed,
        copied_from.as_deref(),
        &session.summary(),
    );
    match opened {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!("TensorBoard: creating {}: {e}; training without a TensorBoard log", dir.display());
            None
        }
    }
}

/// This process's [`Session`] added to the run's provenance (`provenance.json`), before it
/// trains epoch `completed` on: the sessions so far, this one last.
fn open_session<B: AutodiffBackend>(
    run: &RunDir,
    device: &B::Device,
    completed: usize,
) -> anyhow::Result<Vec<Session>> {
    let mut sessions = run.read_provenance()?;
    sessions.push(Session::start::<B>(device, completed));
    run.write_provenance(&sessions)?;
    Ok(sessions)
}

/// Ends this process's session (the last of `sessions`) `how`, with the epochs the run
/// has completed. Training is over either way: a failure to write it is a warning.
fn close_session(run: &RunDir, sessions: &mut [Session], how: String) {
    let completed = run.read_state().ok().flatten().map_or(0, |s| s.completed_epochs);
    if let Some(session) = sessions.last_mut() {
        session.end(how, completed);
    }
    if let Err(e) = run.write_provenance(sessions) {
        tracing::warn!("{}: recording how this process ended: {e:#}", run.root.display());
    }
}

/// After training: the last model saved, the final metrics (last epoch and best
/// validation epoch) and the finished state written.
fn record_outcome<B: AutodiffBackend>(
    recipe: &Recipe,
    run: RunDir,
    spec: &ModelSpec,
    model: &Net<B>,
    selected_on_test: bool,
) -> anyhow::Result<RunOutcome> {
    let records = run.read_records()?;
    let (Some(last), Some(best)) = (records.last().cloned(), best_val(&records).cloned()) else {
        bail!("training stopped before finishing an epoch");
    };
    if last.epoch + 1 < recipe.epochs {
        bail!("training was interrupted after epoch {}; run the same command again to resume", last.epoch);
    }
    save_classifier(model, spec, &run.last_model_path())?;
    let mean_epoch_seconds = records.iter().map(|r| r.seconds).sum::<f64>() / records.len() as f64;
    let metrics = FinalMetrics {
        recipe: recipe.name.clone(),
        epochs: recipe.epochs,
        last,
        best_val: best,
        selected_on_test,
        mean_epoch_seconds,
    };
    run.write_final(&metrics)?;
    run.write_state(&RunState {
        completed_epochs: recipe.epochs,
        total_epochs: recipe.epochs,
        finished: true,
        stopped: None,
    })?;
    let m2m = records.iter().filter_map(|r| r.m2m.clone()).reduce(|mut a, b| {
        a.merge(&b);
        a
    });
    if let Some(note) = m2m.as_ref().and_then(crate::m2m::acceptance::low_acceptance) {
        tracing::warn!("{}: M2m {note}", recipe.name);
    }
    Ok(RunOutcome { run_dir: run.root, metrics, trained_now: true })
}

/// Loads the best-validation model of a finished run (for evaluation or as M2m's g).
pub fn load_best<B: burn::tensor::backend::Backend>(recipe: &Recipe, device: &B::Device) -> anyhow::Result<Net<B>> {
    let run = RunDir::new(recipe.run_dir());
    Ok(load_classifier(&recipe.model_spec(&run_format(recipe, &run)?), &run.best_model_path(), device)?)
}

/// The data format a run trained on: from its manifest, or (runs from before manifests
/// recorded it) the built-in data set's standard format.
fn run_format(recipe: &Recipe, run: &RunDir) -> anyhow::Result<DataFormat> {
    match (run.read_data_format()?, &recipe.dataset.source) {
        (Some(format), _) => Ok(format),
        (None, DataSource::Builtin(name)) => Ok(name.format()),
        (None, DataSource::Images(_)) => {
            bail!("{}: data-manifest.json does not record the data format", run.root.display())
        }
    }
}

/// The last finished epoch, at most `completed`, whose burn-train checkpoint (model,
/// optimiser, scheduler) is on disk and decodes. burn writes checkpoints asynchronously
/// and in place, so a run killed during that write, a full disk or a damaged file can
/// leave the newest checkpoint missing or truncated; burn-train would then panic while
/// restoring it. The run falls back to the newest intact epoch (burn keeps the last two),
/// or starts over when none is intact, and says which file it skipped and why.
fn resumable_epoch<B: AutodiffBackend>(run: &RunDir, completed: usize, device: &B::Device) -> usize {
    for e in (1..=completed).rev() {
        match checkpoint_problem::<B>(run, e, device) {
            None => {
                if e < completed {
                    tracing::warn!("{}: resuming after epoch {e} instead of {completed}", run.root.display());
                }
                return e;
            }
            Some(problem) => {
                tracing::warn!("{}: the checkpoint of epoch {e} cannot be restored: {problem}", run.root.display())
            }
        }
    }
    if completed > 0 {
        tracing::warn!(
            "{}: no intact checkpoint of epochs 1..={completed}; training starts over from epoch 0",
            run.root.display()
        );
    }
    0
}

/// Why burn-train could not restore epoch `e` of `run` (`None`: it can).
fn checkpoint_problem<B: AutodiffBackend>(run: &RunDir, e: usize, device: &B::Device) -> Option<String> {
    use burn::optim::lr_scheduler::LrScheduler;
    use burn::optim::Optimizer;
    type ModelRecord<B> = <Net<B> as burn::module::Module<B>>::Record;
    type OptimRecord<B> = <Optim<B> as Optimizer<Net<B>, B>>::Record;
    type SchedulerRecord<B> = <EpochScheduler as LrScheduler>::Record<B>;
    let file = |kind: &str| run.checkpoint_path(kind, e);
    decodes::<B, ModelRecord<B>>(file("model"), device)
        .and_then(|()| decodes::<B, OptimRecord<B>>(file("optim"), device))
        .and_then(|()| decodes::<B, SchedulerRecord<B>>(file("scheduler"), device))
        .err()
}

/// Whether the checkpoint `file` exists and decodes as `R`.
fn decodes<B: AutodiffBackend, R: burn::record::Record<B>>(
    file: std::path::PathBuf,
    device: &B::Device,
) -> Result<(), String> {
    use burn::record::Recorder;
    // burn's recorder adds the extension itself.
    let stem = file.with_extension("");
    if !file.is_file() {
        return Err(format!("{} is missing", file.display()));
    }
    // A decoder may panic on some damage instead of returning an error: both count.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Recorder::<B>::load::<R>(&CheckpointRecorder::new(), stem, device)
    })) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{}: {e}", file.display())),
        Err(_) => Err(format!("{}: the decoder panicked (damaged file)", file.display())),
    }
}
