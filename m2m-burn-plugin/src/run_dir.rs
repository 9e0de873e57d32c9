//! The run directory: resolved recipe, data manifest, per-epoch metrics (CSV and JSON
//! lines), the final metrics, model files and the resume state. [`RunDir`] is the only
//! code that knows these file names: training writes through it, and the suite report,
//! `m2m resume` and model loading read through it. Every file is replaced atomically, so
//! an interrupted run never leaves a torn file behind.

use std::path::PathBuf;

use anyhow::Context;
use m2m_core::metrics::ClassificationReport;
use m2m_core::sampling::SamplerKind;
use m2m_core::translation::GenerationStats;
use serde::{Deserialize, Serialize};

use crate::fs::{read_json_opt, write_atomic};
use crate::provenance::Session;

/// Metrics of one finished epoch (0-based `epoch`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: usize,
    pub lr: f64,
    pub sampler: SamplerKind,
    /// Per-class loss weights in force (`None`: unit weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_weights: Option<Vec<f64>>,
    pub seconds: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub val: ClassificationReport,
    pub test: ClassificationReport,
    /// M2m's generation statistics in M2m epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m2m: Option<GenerationStats>,
}

/// What a resumed run needs to continue: how many epochs are done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub completed_epochs: usize,
    pub total_epochs: usize,
    pub finished: bool,
    /// Why the run stopped before finishing when it was asked to (a signal, a lost lock
    /// lease), with the epoch it was in; cleared by the next completed epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// Test metrics at the last epoch and at the best-validation epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalMetrics {
    pub recipe: String,
    pub epochs: usize,
    pub last: EpochRecord,
    /// Best validation balanced accuracy; ties go to the later epoch (M2m's `>=`).
    pub best_val: EpochRecord,
    /// True when validation is the test set itself (LDAM-DRW protocol).
    pub selected_on_test: bool,
    pub mean_epoch_seconds: f64,
}

/// Where a forked run came from (`fork.json`): it took over the first `epoch` epochs of
/// the run in `source` (records, best model, burn-train checkpoint) and trained the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkRecord {
    pub source: PathBuf,
    pub epoch: usize,
}

/// Its file in the run directory: the latest M2m epoch's first accepted translations.
const TRANSLATIONS_PNG: &str = "translations.png";

/// One run's folder (`output_dir/name`).
#[derive(Debug, Clone)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn burn_dir(&self) -> PathBuf {
        self.root.join("burn")
    }
    pub fn recipe_path(&self) -> PathBuf {
        self.root.join("recipe.resolved.ron")
    }
    pub fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }
    pub fn best_model_path(&self) -> PathBuf {
        self.root.join("model-best-val")
    }
    /// burn-train's checkpoint files of `epoch` completed epochs (`kind`: model, optim,
    /// scheduler), as its `NamedMpkFileRecorder` names them.
    pub fn checkpoint_path(&self, kind: &str, epoch: usize) -> PathBuf {
        self.burn_dir().join("checkpoint").join(format!("{kind}-{epoch}.mpk"))
    }
    /// The best-validation model as it was after `epoch` epochs, kept for forks.
    pub fn fork_best_model_path(&self, epoch: usize) -> PathBuf {
        self.root.join("fork-points").join(format!("epoch-{epoch}")).join("model-best-val")
    }
    pub fn write_fork(&self, fork: &ForkRecord) -> anyhow::Result<()> {
        self.write_json("fork.json", fork)
    }
    /// Where the run was forked from (`None`: it trained every epoch itself).
    pub fn read_fork(&self) -> anyhow::Result<Option<ForkRecord>> {
        read_json_opt(&self.root.join("fork.json"))
    }
    pub fn last_model_path(&self) -> PathBuf {
        self.root.join("model-last")
    }
    /// The picture of accepted translations (written by M2m runs).
    pub fn translations_path(&self) -> PathBuf {
        self.root.join(TRANSLATIONS_PNG)
    }
    fn records_path(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }
    fn final_path(&self) -> PathBuf {
        self.root.join("final.json")
    }

    fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let path = self.root.join(name);
        write_atomic(&path, bytes).with_context(|| format!("writing {}", path.display()))
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        crate::fs::write_json(&self.root.join(name), value)
    }

    /// Where the run's numbers came from: one session per process that trained it, in order
    /// (empty for runs written before m2m recorded it).
    pub fn read_provenance(&self) -> anyhow::Result<Vec<Session>> {
        Ok(read_json_opt(&self.root.join("provenance.json"))?.unwrap_or_default())
    }
    /// Replaces `provenance.json` with `sessions`.
    pub fn write_provenance(&self, sessions: &[Session]) -> anyhow::Result<()> {
        self.write_json("provenance.json", &sessions)
    }

    /// The resolved recipe (RON text) the run trains.
    pub fn write_recipe(&self, ron: &str) -> anyhow::Result<()> {
        self.write("recipe.resolved.ron", ron.as_bytes())
    }
    pub fn write_data_manifest<T: Serialize>(&self, manifest: &T) -> anyhow::Result<()> {
        self.write_json("data-manifest.json", manifest)
    }
    /// Where f started from (`start_from`).
    pub fn write_start<T: Serialize>(&self, record: &T) -> anyhow::Result<()> {
        self.write_json("start.json", record)
    }
    pub fn write_final(&self, metrics: &FinalMetrics) -> anyhow::Result<()> {
        self.write_json("final.json", metrics)
    }
    /// Written last after an epoch, so a state never points at an epoch whose files are missing.
    pub fn write_state(&self, state: &RunState) -> anyhow::Result<()> {
        self.write_json("state.json", state)
    }

    /// The data format recorded in the run's data manifest (`None` for runs written
    /// before manifests held it: those used a built-in data set's standard format).
    pub fn read_data_format<T: for<'de> Deserialize<'de>>(&self) -> anyhow::Result<Option<T>> {
        #[derive(Deserialize)]
        struct WithFormat<T> {
            format: Option<T>,
        }
        let path = self.root.join("data-manifest.json");
        Ok(read_json_opt::<WithFormat<T>>(&path)?.and_then(|m| m.format))
    }

    /// `max N_k / min N_k` of the classes the run trained on, from its data manifest.
    pub fn read_imbalance_factor(&self) -> anyhow::Result<Option<f64>> {
        #[derive(Deserialize)]
        struct WithFactor {
            imbalance_factor: f64,
        }
        let path = self.root.join("data-manifest.json");
        Ok(read_json_opt::<WithFactor>(&path)?.map(|m| m.imbalance_factor))
    }

    pub fn read_state(&self) -> anyhow::Result<Option<RunState>> {
        read_json_opt(&self.state_path())
    }

    /// The final metrics of a finished run; `None` while it is not finished.
    pub fn read_final(&self) -> anyhow::Result<Option<FinalMetrics>> {
        read_json_opt(&self.final_path())
    }

    /// TensorBoard's event files of the run (one per process that trained it).
    pub fn tensorboard_dir(&self) -> PathBuf {
        self.root.join("tensorboard")
    }

    pub fn is_finished(&self) -> bool {
        self.final_path().is_file()
    }

    pub fn read_records(&self) -> anyhow::Result<Vec<EpochRecord>> {
        let path = self.records_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(i, l)| {
                    serde_json::from_str(l)
                        .with_context(|| format!("{} line {}: corrupt record", path.display(), i + 1))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Rewrites `metrics.jsonl` and `metrics.csv` from all records.
    pub fn write_records(&self, records: &[EpochRecord]) -> anyhow::Result<()> {
        let mut jsonl = String::new();
        for r in records {
            jsonl.push_str(&serde_json::to_string(r)?);
            jsonl.push('\n');
        }
        self.write("metrics.jsonl", jsonl.as_bytes())?;
        self.write("metrics.csv", records_csv(records).as_bytes())
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.6}")).unwrap_or_default()
}

/// One row per epoch; per-class test recalls at the end.
pub fn records_csv(records: &[EpochRecord]) -> String {
    let classes = records.first().map_or(0, |r| r.test.per_class_recall.len());
    let mut out = String::from(
        "epoch,lr,sampler,weighted,seconds,train_loss,train_acc,val_loss,val_acc,val_bacc,val_gm,test_loss,test_acc,test_bacc,test_gm,test_major,test_neutral,test_minor,test_many,test_medium,test_few,m2m_attempts,m2m_accepted,m2m_accept_rate,m2m_g_conf,m2m_f_p_target,m2m_f_p_seed",
    );
    for k in 0..classes {
        out.push_str(&format!(",test_recall_{k}"));
    }
    out.push('\n');
    for r in records {
        let cells = [
            r.epoch.to_string(),
            format!("{:.4e}", r.lr),
            format!("{:?}", r.sampler),
            r.class_weights.is_some().to_string(),
            format!("{:.3}", r.seconds),
            format!("{:.6}", r.train_loss),
            format!("{:.6}", r.train_accuracy),
            opt(r.val.loss),
            format!("{:.6}", r.val.accuracy),
            format!("{:.6}", r.val.balanced_accuracy),
            format!("{:.6}", r.val.geometric_mean),
            opt(r.test.loss),
            format!("{:.6}", r.test.accuracy),
            format!("{:.6}", r.test.balanced_accuracy),
            format!("{:.6}", r.test.geometric_mean),
            opt(r.test.major),
            opt(r.test.neutral),
            opt(r.test.minor),
            opt(r.test.many_shot),
            opt(r.test.medium_shot),
            opt(r.test.few_shot),
            r.m2m.as_ref().map_or(String::new(), |s| s.total_attempts().to_string()),
            r.m2m.as_ref().map_or(String::new(), |s| s.total_accepted().to_string()),
            opt(r.m2m.as_ref().and_then(GenerationStats::acceptance_rate)),
            opt(r.m2m.as_ref().and_then(GenerationStats::mean_g_confidence)),
            opt(r.m2m.as_ref().and_then(GenerationStats::mean_f_target_prob)),
            opt(r.m2m.as_ref().and_then(GenerationStats::mean_f_seed_prob)),
        ];
        out.push_str(&cells.join(","));
        for rec in &r.test.per_class_recall {
            out.push(',');
            out.push_str(&opt(*rec));
        }
        out.push('\n');
    }
    out
}

/// The best-validation record: highest validation balanced accuracy, later epoch on ties.
pub fn best_val(records: &[EpochRecord]) -> Option<&EpochRecord> {
    records.iter().fold(None, |best: Option<&EpochRecord>, r| match best {
        Some(b) if r.val.balanced_accuracy < b.val.balanced_accuracy => Some(b),
        _ => Some(r),
    })
}
