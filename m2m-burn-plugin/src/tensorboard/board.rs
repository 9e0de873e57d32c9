//! What an `m2m` run writes for TensorBoard: one event file per process that trains the
//! run (a resumed run adds a file with the epochs it trains; none is written twice).

use std::io;
use std::path::Path;

use m2m_core::metrics::ClassificationReport;
use m2m_core::translation::GenerationStats;

use super::event::{EventWriter, HParamSpec, HParamValue, MetricSpec, SessionStatus};
use crate::run_dir::EpochRecord;

/// The scalars the HParams view shows beside each run's recipe fields.
const HPARAM_METRICS: [(&str, &str); 4] = [
    ("test/bACC", "test bACC (last epoch)"),
    ("best_val/test_bACC", "test bACC at the best validation epoch"),
    ("test/GM", "test geometric mean (last epoch)"),
    ("test/minor", "test recall of the minor third (last epoch)"),
];

/// A run's TensorBoard log (`RUN/tensorboard/`).
pub struct RunBoard {
    writer: EventWriter,
    class_names: Vec<String>,
}

impl RunBoard {
    /// A new event file in `dir` for epochs from `first_epoch` on, with the resolved
    /// recipe as text and the hparams plugin's records: the experiment (every recipe field
    /// of `hparams` and the metrics above, the same in every run so suites compare) and
    /// this run's values. `copied_from`: the run whose first `first_epoch` epochs this
    /// one took over (a fork), noted as text: those epochs appear in that run's curves only.
    /// `provenance`: this process's session (what trains, where, since when), as text.
    pub fn open(
        dir: &Path,
        recipe_text: &str,
        hparams: &[(String, HParamValue)],
        class_names: Vec<String>,
        first_epoch: usize,
        copied_from: Option<&Path>,
        provenance: &str,
    ) -> io::Result<Self> {
        let mut writer = EventWriter::create(dir)?;
        let step = first_epoch as i64;
        writer.add_text("recipe", &format!("```\n{recipe_text}\n```"), step)?;
        writer.add_text("provenance", provenance, step)?;
        if let Some(source) = copied_from {
            let note = format!(
                "Epochs 0 to {} of this run were taken over from {} (a fork of its first epochs); \
                 their curves are that run's, and this run's start at epoch {first_epoch}.",
                first_epoch.saturating_sub(1),
                source.display()
            );
            writer.add_text("fork", &note, step)?;
        }
        let names: Vec<String> = hparams.iter().map(|(name, _)| name.clone()).collect();
        add_experiment(&mut writer, &names)?;
        let values: Vec<(&str, HParamValue)> = hparams.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        writer.add_hparams_session_start(&values, "")?;
        Ok(Self { writer, class_names })
    }

    /// One finished epoch; `gallery`: the PNG of its accepted translations, if drawn.
    pub fn epoch(&mut self, r: &EpochRecord, gallery: Option<&[u8]>) -> io::Result<()> {
        let step = r.epoch as i64;
        let w = &mut self.writer;
        w.add_scalar("lr", r.lr as f32, step)?;
        w.add_scalar("train/loss", r.train_loss as f32, step)?;
        w.add_scalar("train/accuracy", r.train_accuracy as f32, step)?;
        w.add_scalar("epoch_seconds", r.seconds as f32, step)?;
        for (split, report) in [("val", &r.val), ("test", &r.test)] {
            split_scalars(w, split, report, &self.class_names, step)?;
        }
        if let Some(s) = &r.m2m {
            m2m_scalars(w, s, &self.class_names, step)?;
        }
        if let Some(png) = gallery {
            if let Some((width, height)) = png_size(png) {
                w.add_image_png("m2m/translations", png, width, height, 3, step)?;
            }
        }
        Ok(())
    }

    /// The run ended with an error (a NaN loss, a failed write): the hparams session's end
    /// says so. (A run stopped by a signal or a lost lease writes nothing: it resumes.)
    pub fn fail(&mut self) -> io::Result<()> {
        self.writer.add_hparams_session_end(SessionStatus::Failure)
    }

    /// The run finished: its best-validation test bACC (at the last step) and the hparams
    /// session's end.
    pub fn finish(&mut self, last_epoch: usize, best_val_test_bacc: f64) -> io::Result<()> {
        self.writer.add_scalar("best_val/test_bACC", best_val_test_bacc as f32, last_epoch as i64)?;
        self.writer.add_hparams_session_end(SessionStatus::Success)
    }
}

/// The hparams experiment: the recipe fields `names` and the metrics the HParams view shows.
fn add_experiment(writer: &mut EventWriter, names: &[String]) -> io::Result<()> {
    let specs: Vec<HParamSpec> =
        names.iter().map(|name| HParamSpec { name: name.clone(), description: String::new() }).collect();
    let metrics: Vec<MetricSpec> = HPARAM_METRICS
        .iter()
        .map(|(tag, shown)| MetricSpec { tag: tag.to_string(), group: String::new(), display_name: shown.to_string() })
        .collect();
    writer.add_hparams_config(&specs, &metrics)
}

/// The hparams experiment of a whole suite, in the folder TensorBoard is opened on (its
/// root run, which TensorBoard reads the experiment from first): every recipe field any
/// cell sets, so the HParams view has a column for each (M2m's fields beside ERM's cells).
/// Written once: nothing is done when `dir` already holds an event file.
pub fn write_experiment(dir: &Path, names: &[String]) -> io::Result<()> {
    let written = std::fs::read_dir(dir)
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains(".tfevents.")))
        .unwrap_or(false);
    if written {
        return Ok(());
    }
    add_experiment(&mut EventWriter::create(dir)?, names)
}

/// M2m's statistics of one epoch: attempts, accepted, the acceptance rate overall and per
/// target class, g's mean confidence and f's mean probabilities on accepted samples.
pub fn m2m_scalars(w: &mut EventWriter, s: &GenerationStats, names: &[String], step: i64) -> io::Result<()> {
    w.add_scalar("m2m/attempts", s.total_attempts() as f32, step)?;
    w.add_scalar("m2m/accepted", s.total_accepted() as f32, step)?;
    if let Some(rate) = s.acceptance_rate() {
        w.add_scalar("m2m/acceptance", rate as f32, step)?;
    }
    for (k, rate) in s.acceptance_rate_per_class().iter().enumerate() {
        if let Some(rate) = rate {
            w.add_scalar(&format!("m2m/acceptance/{}", class_tag(names, k)), *rate as f32, step)?;
        }
    }
    for (tag, value) in [
        ("m2m/g_confidence", s.mean_g_confidence()),
        ("m2m/f_target_prob", s.mean_f_target_prob()),
        ("m2m/f_seed_prob", s.mean_f_seed_prob()),
    ] {
        if let Some(v) = value {
            w.add_scalar(tag, v as f32, step)?;
        }
    }
    Ok(())
}

fn split_scalars(
    w: &mut EventWriter,
    split: &str,
    r: &ClassificationReport,
    names: &[String],
    step: i64,
) -> io::Result<()> {
    w.add_scalar(&format!("{split}/bACC"), r.balanced_accuracy as f32, step)?;
    w.add_scalar(&format!("{split}/GM"), r.geometric_mean as f32, step)?;
    w.add_scalar(&format!("{split}/accuracy"), r.accuracy as f32, step)?;
    let optional = [
        ("loss", r.loss),
        ("major", r.major),
        ("neutral", r.neutral),
        ("minor", r.minor),
        ("many_shot", r.many_shot),
        ("medium_shot", r.medium_shot),
        ("few_shot", r.few_shot),
    ];
    for (name, value) in optional {
        if let Some(v) = value {
            w.add_scalar(&format!("{split}/{name}"), v as f32, step)?;
        }
    }
    for (k, recall) in r.per_class_recall.iter().enumerate() {
        if let Some(v) = recall {
            w.add_scalar(&format!("{split}/recall/{}", class_tag(names, k)), *v as f32, step)?;
        }
    }
    Ok(())
}

/// `03_dress`: the class index first, so TensorBoard sorts classes in order.
fn class_tag(names: &[String], k: usize) -> String {
    let name = names.get(k).map(|n| n.replace([' ', '/'], "_")).unwrap_or_default();
    if name.is_empty() {
        format!("{k:02}")
    } else {
        format!("{k:02}_{name}")
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

/// The scalar fields of a recipe (its resolved RON as JSON) as hparams, with dotted
/// names (`optimizer.lr`, `m2m.translation.gamma`); paths and names of folders left out.
pub fn recipe_hparams(recipe_json: &serde_json::Value) -> Vec<(String, HParamValue)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, HParamValue)>) {
        let skip = ["path", "output_dir", "base", "cache_dir"];
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if skip.contains(&k.as_str()) {
                        continue;
                    }
                    let name = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&name, v, out);
                }
            }
            serde_json::Value::Number(n) => {
                out.push((prefix.to_string(), HParamValue::Number(n.as_f64().unwrap_or(f64::NAN))))
            }
            serde_json::Value::String(s) => out.push((prefix.to_string(), HParamValue::Str(s.clone()))),
            serde_json::Value::Bool(b) => out.push((prefix.to_string(), HParamValue::Bool(*b))),
            // Lists (milestones, class weights) as their text.
            serde_json::Value::Array(_) => out.push((prefix.to_string(), HParamValue::Str(v.to_string()))),
            serde_json::Value::Null => {}
        }
    }
    let mut out = Vec::new();
    walk("", recipe_json, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_fields_become_dotted_hparams_without_paths() {
        let json = serde_json::json!({
            "name": "m2m", "optimizer": {"lr": 0.1, "momentum": 0.9},
            "dataset": {"path": "/data", "ratio": 100.0}, "output_dir": "runs",
            "m2m": {"translation": {"gamma": 0.9}}, "tensorboard": true, "schedule": {"milestones": [160, 180]}
        });
        let h = recipe_hparams(&json);
        let get = |k: &str| h.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("optimizer.lr"), Some(HParamValue::Number(0.1)));
        assert_eq!(get("m2m.translation.gamma"), Some(HParamValue::Number(0.9)));
        assert_eq!(get("name"), Some(HParamValue::Str("m2m".into())));
        assert_eq!(get("tensorboard"), Some(HParamValue::Bool(true)));
        assert_eq!(get("schedule.milestones"), Some(HParamValue::Str("[160,180]".into())));
        assert_eq!((get("dataset.path"), get("output_dir")), (None, None));
    }

    #[test]
    fn png_sizes_come_from_the_header() {
        let mut png = Vec::new();
        image::RgbImage::new(7, 5).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        assert_eq!(png_size(&png), Some((7, 5)));
        assert_eq!(png_size(b"not a png at all, not at all"), None);
    }
}
