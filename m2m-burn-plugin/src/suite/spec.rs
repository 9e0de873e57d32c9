//! Suite files: methods × datasets × imbalance ratios × data seeds × training seeds over
//! one base recipe, checked and expanded into cells (one recipe each).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::search::{self, Axis, Halving, HalvingParams, Prune, PruneParams, Sampling};
use crate::recipe::{resolve_raw, BaselineSource, Merge, RawDataset, RawImages, RawImbalance, RawRecipe, Recipe};

/// One method of a suite: a name for the table and the recipe fields that make it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMethod {
    /// The method's name in cell names and tables: letters, digits, `+`, `-` and `_`,
    /// unique within the suite.
    pub name: String,
    /// Fields merged over the suite's base recipe (e.g. `(sampler: (kind: ClassBalanced, from_epoch: 8))`).
    #[serde(default)]
    pub recipe: RawRecipe,
    /// Search the method's settings instead of running one: each trial is the method's
    /// recipe with one setting of the search's fields over it, compared on validation
    /// balanced accuracy with successive halving; the report shows the chosen trial.
    #[serde(default)]
    pub search: Option<RawSearch>,
}

/// A search over a method's settings, as written in a suite file (docs/suites.md,
/// "Choosing settings on your data").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    /// The recipe fields searched and the values tried, e.g.
    /// `(field: "m2m.step_size", values: ["0.1", "0.5"])`.
    pub axes: Vec<Axis>,
    /// Every combination (`Grid`, the default) or a seeded sample of them.
    #[serde(default)]
    pub sampling: Sampling,
    /// The rungs: epochs after the trials part ways before the first comparison, and the
    /// factor `eta` by which rungs grow and trials are cut.
    pub halving: HalvingParams,
    /// M2m searches only: drop settings whose translations g rarely accepts on training
    /// batches, before any training (`m2m probe`'s measurement).
    #[serde(default)]
    pub prune: Option<PruneParams>,
}

/// A suite file as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuite {
    /// The suite's name, in the report's title and `suite.json`: non-empty, with no path
    /// separator.
    pub name: String,
    /// The recipe every cell starts from, relative to the suite file.
    pub base: PathBuf,
    /// Where cells, the report and the plots go (relative to the working directory).
    pub output_dir: PathBuf,
    /// The method the report's Δ column compares with.
    #[serde(default)]
    pub baseline: Option<String>,
    /// The methods compared, in table order (at least one).
    pub methods: Vec<RawMethod>,
    /// Dataset fields merged over the base's dataset; default: the base's dataset.
    #[serde(default)]
    pub datasets: Option<Vec<RawDataset>>,
    /// `dataset.ratio` values; default: the base's ratio.
    #[serde(default)]
    pub ratios: Option<Vec<f64>>,
    /// `dataset.data_seed` values (which long-tailed subset); default: the base's.
    #[serde(default)]
    pub data_seeds: Option<Vec<u64>>,
    /// Training seeds (at least one).
    pub seeds: Vec<u64>,
}

/// A suite file error, naming the file and the field.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The suite file could not be read.
    #[error("{path}: cannot read suite: {cause}")]
    Io {
        /// The suite file.
        path: PathBuf,
        /// Why reading it failed.
        cause: std::io::Error,
    },
    /// The file is not a suite in RON (a syntax error, or an unknown, missing or
    /// mistyped field).
    #[error("{path}: {reason}")]
    Parse {
        /// The suite file.
        path: PathBuf,
        /// Where and what: `line L, column C: ...`.
        reason: String,
    },
    /// A field's value is refused: e.g. an empty list, a method name used twice, a
    /// baseline that is not one of the methods, or a recipe field the suite sets itself.
    #[error("{path}: {field}: {reason}")]
    Invalid {
        /// The suite file.
        path: PathBuf,
        /// The field's path in the suite file, e.g. `methods[2].name` or `ratios`.
        field: String,
        /// Why the value is refused.
        reason: String,
    },
    /// The base recipe could not be read or resolved.
    #[error("{path}: base recipe: {cause}")]
    Base {
        /// The suite file.
        path: PathBuf,
        /// The base recipe's error.
        cause: crate::recipe::LoadError,
    },
    /// A cell's recipe (method and cell fields merged over the base) fails the recipe
    /// checks.
    #[error("{path}: cell {cell}: {cause}")]
    Cell {
        /// The suite file.
        path: PathBuf,
        /// The cell's run name (`METHOD.DATASET.rRATIO.dDATASEED.sSEED`).
        cell: String,
        /// The recipe check that failed, naming the field.
        cause: crate::recipe::RecipeError,
    },
}

/// What identifies a cell in the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellKey {
    /// The method's name, as in the suite file.
    pub method: String,
    /// The data set's label: a built-in set's name (`FashionMnist`) or `dataset.images.name`.
    pub dataset: String,
    /// `dataset.ratio`; `None` for a data set trained with its own counts (`AsIs`).
    pub ratio: Option<f64>,
    /// `dataset.data_seed`: which long-tailed subset of the data set the cell trains on.
    pub data_seed: u64,
    /// The training seed (the recipe's `seed`).
    pub seed: u64,
}

impl CellKey {
    /// The run name of the cell: `METHOD.DATASET.rRATIO.dDATASEED.sSEED` (`rAsIs` for a
    /// data set with its own counts).
    pub fn run_name(&self) -> String {
        let ratio = self.ratio.map_or("AsIs".to_string(), |r| r.to_string());
        format!("{}.{}.r{ratio}.d{}.s{}", self.method, self.dataset, self.data_seed, self.seed)
    }
}

/// One run of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Where the cell sits on the suite's axes; its run name is `key.run_name()`. A
    /// search's trial `K` has the method name `METHOD-tK`.
    pub key: CellKey,
    /// The cell's checked recipe: the method's fields and the cell's data set, ratio,
    /// data seed and seed merged over the base, named after the cell and writing into
    /// `OUTPUT_DIR/cells/`.
    pub recipe: Recipe,
    /// Set when the cell is a trial of a searched method.
    pub trial: Option<Trial>,
}

/// A cell that is one trial of a method's search.
#[derive(Debug, Clone, PartialEq)]
pub struct Trial {
    /// The cell the search stands for in the report: the searched method's name on the
    /// trial's data set, ratio, data seed and seed.
    pub group: CellKey,
    /// The trial's number `K` (its cell's method is `METHOD-tK`), in the search's order.
    pub number: usize,
    /// The setting tried: `(field, value)` as `--set FIELD=VALUE` takes them.
    pub setting: Vec<(String, String)>,
    /// The search's successive halving.
    pub halving: Halving,
    /// The search's probe filter, if any.
    pub prune: Option<Prune>,
    /// The epoch count the trial trains to if the trials went on in trial order: what
    /// estimates and the dealing to shards count (the real end depends on the scores).
    pub planned_end: usize,
}

impl Trial {
    /// The setting as `field=value` pairs joined by `, `.
    pub fn setting_text(&self) -> String {
        self.setting.iter().map(|(f, v)| format!("{f}={v}")).collect::<Vec<_>>().join(", ")
    }
}

/// A checked suite: every cell's recipe is valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// The suite's name, from the suite file.
    pub name: String,
    /// Where cells, the report and the plots go: the `output_dir` passed to `load_suite`
    /// when given, else the suite file's.
    pub output_dir: PathBuf,
    /// The method the report's Δ column compares with, if any (one of `methods`).
    pub baseline: Option<String>,
    /// The method names, in suite-file order (the report's rows).
    pub methods: Vec<String>,
    /// Every cell, in run order: dataset, ratio, data seed, seed, method.
    pub cells: Vec<Cell>,
    /// The suite file as resolved (written next to the cells).
    pub raw: RawSuite,
}

/// What `m2m report` needs to know about a suite, written as `suite.json` in its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteManifest {
    /// The suite's name.
    pub name: String,
    /// Fingerprint of every cell's recipe (without its output folder), so that shards of
    /// different suites with the same cell names are not merged. Empty in manifests
    /// written before it existed (those still report; rerunning the suite fills it in).
    #[serde(default)]
    pub fingerprint: String,
    /// The method the report's Δ column compares with, if any.
    pub baseline: Option<String>,
    /// The method names, in suite order (the report's rows).
    pub methods: Vec<String>,
    /// The key of every cell, in the suite's run order; the report expects each of them.
    /// A searched method has one key per data set, ratio, data seed and seed: its chosen
    /// trial (`search/RUN_NAME.json`) stands there.
    pub cells: Vec<CellKey>,
    /// The methods whose settings are searched.
    #[serde(default)]
    pub searched: Vec<String>,
}

impl Suite {
    /// The suite's manifest (`suite.json`), with the fingerprint (16 hex digits of FNV-1a)
    /// of its cells' recipes computed now.
    pub fn manifest(&self) -> SuiteManifest {
        let mut text = String::new();
        for c in &self.cells {
            let mut raw = c.recipe.raw.clone();
            raw.output_dir = None;
            text.push_str(&crate::recipe::to_ron(&raw));
        }
        SuiteManifest {
            name: self.name.clone(),
            fingerprint: format!("{:016x}", crate::fingerprint::fnv1a64(text.as_bytes())),
            baseline: self.baseline.clone(),
            methods: self.methods.clone(),
            cells: self.report_keys(),
            searched: self.raw.methods.iter().filter(|m| m.search.is_some()).map(|m| m.name.clone()).collect(),
        }
    }

    /// The cells the report has a place for, in run order: every cell that is not a
    /// trial, and each search once (at its first trial).
    pub fn report_keys(&self) -> Vec<CellKey> {
        let mut keys: Vec<CellKey> = Vec::new();
        for c in &self.cells {
            let key = c.trial.as_ref().map_or(&c.key, |t| &t.group);
            if c.trial.as_ref().is_none_or(|t| t.number == 0) {
                keys.push(key.clone());
            }
        }
        keys
    }

    /// Where the cells' run directories live.
    pub fn cells_dir(&self) -> PathBuf {
        self.output_dir.join("cells")
    }
}

/// Which part of a suite one process runs: cell `j` (in expansion order) belongs to
/// shard `j mod count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's number, 0-based, below `count`.
    pub index: usize,
    /// How many shards the suite is split into (at least 1).
    pub count: usize,
}

impl Shard {
    /// The whole suite in one process: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// This process's shard from its job array: Slurm's `SLURM_ARRAY_TASK_ID` (counted
    /// from `SLURM_ARRAY_TASK_MIN`, so `--array=1-8` works as `0-7`) of
    /// `SLURM_ARRAY_TASK_COUNT`, else a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX`
    /// of `M2M_SHARD_COUNT` (Kubernetes does not pass the count; set it to the Job's
    /// `completions`).
    pub fn from_env() -> Result<Shard, String> {
        let var = |name: &str| std::env::var(name).ok();
        let number = |name: &str, text: String| {
            text.trim().parse::<usize>().map_err(|_| format!("{name}={text}: not a whole number"))
        };
        let (index, count) = if let Some(id) = var("SLURM_ARRAY_TASK_ID") {
            let id = number("SLURM_ARRAY_TASK_ID", id)?;
            let min = var("SLURM_ARRAY_TASK_MIN").map(|m| number("SLURM_ARRAY_TASK_MIN", m)).transpose()?.unwrap_or(0);
            let count =
                var("SLURM_ARRAY_TASK_COUNT").ok_or("SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")?;
            (
                id.checked_sub(min).ok_or(format!("SLURM_ARRAY_TASK_ID {id} < SLURM_ARRAY_TASK_MIN {min}"))?,
                number("SLURM_ARRAY_TASK_COUNT", count)?,
            )
        } else if let Some(index) = var("JOB_COMPLETION_INDEX") {
            let count = var("M2M_SHARD_COUNT").ok_or(
                "JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job) but M2M_SHARD_COUNT is not: set it to the Job's completions",
            )?;
            (number("JOB_COMPLETION_INDEX", index)?, number("M2M_SHARD_COUNT", count)?)
        } else {
            return Err("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX \
                        (a Kubernetes Indexed Job) is set"
                .into());
        };
        if count == 0 || index >= count {
            return Err(format!(
                "--shard auto: task {index} of {count} (needs 0 <= index < count; an array with gaps?)"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `i/n` with `0 <= i < n` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID` from `--array=0-(n-1)`).
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected INDEX/COUNT, e.g. 0/4"))?;
        let index: usize = i.trim().parse().map_err(|_| format!("`{s}`: the index `{i}` is not a number"))?;
        let count: usize = n.trim().parse().map_err(|_| format!("`{s}`: the count `{n}` is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!("`{s}`: needs 0 <= INDEX < COUNT"));
        }
        Ok(Shard { index, count })
    }
}

fn parse_suite(text: &str) -> Result<RawSuite, String> {
    crate::recipe::ron_options()
        .from_str::<RawSuite>(text)
        .map_err(|e| format!("line {}, column {}: {}", e.position.line, e.position.col, e.code))
}

/// Reads and checks a suite file; `output_dir` replaces the file's when given.
pub fn load_suite(path: &Path, output_dir: Option<&Path>) -> Result<Suite, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|cause| SuiteError::Io { path: path.to_path_buf(), cause })?;
    let mut raw = parse_suite(&text).map_err(|reason| SuiteError::Parse { path: path.to_path_buf(), reason })?;
    if let Some(o) = output_dir {
        raw.output_dir = o.to_path_buf();
    }
    let base_path = path.parent().unwrap_or(Path::new(".")).join(&raw.base);
    let base = resolve_raw(&base_path).map_err(|cause| SuiteError::Base { path: path.to_path_buf(), cause })?;
    // The resolved suite is written next to the cells: name the base absolutely there.
    raw.base = std::fs::canonicalize(&base_path).unwrap_or(base_path);
    expand(&raw, &base).map_err(|e| match e {
        Expand::Field(field, reason) => SuiteError::Invalid { path: path.to_path_buf(), field, reason },
        Expand::Cell(cell, cause) => SuiteError::Cell { path: path.to_path_buf(), cell, cause },
    })
}

enum Expand {
    Field(String, String),
    Cell(String, crate::recipe::RecipeError),
}

fn field<T>(name: &str, reason: impl Into<String>) -> Result<T, Expand> {
    Err(Expand::Field(name.to_string(), reason.into()))
}

fn non_empty<T: Clone>(v: &Option<Vec<T>>, name: &str, default: Option<T>) -> Result<Vec<T>, Expand> {
    match v {
        Some(v) if v.is_empty() => field(name, "must list at least one value (or be left out)"),
        Some(v) => Ok(v.clone()),
        None => match default {
            Some(d) => Ok(vec![d]),
            None => field(name, "missing here and in the base recipe"),
        },
    }
}

/// Expands a suite over its (resolved) base recipe. Cells are ordered dataset, ratio,
/// data seed, seed, method, so that the first seed of every method finishes first.
fn expand(raw: &RawSuite, base: &RawRecipe) -> Result<Suite, Expand> {
    let names = check_methods(raw)?;
    let variants = variants(raw, &names)?;
    let axes = Axes::of(raw, base)?;
    let cells_dir = raw.output_dir.join("cells");
    let mut cells = Vec::new();
    for (di, d) in axes.datasets.iter().enumerate() {
        // An entry that names its data set (built-in `name` or `images`) replaces the
        // base's, so that one suite can run built-in sets and image folders side by side.
        let mut base = base.clone();
        if let Some(b) = base.dataset.as_mut().filter(|_| d.name.is_some() || d.images.is_some()) {
            b.name = None;
            b.images = None;
        }
        for ratio in axes.ratios_of(d) {
            for &data_seed in &axes.data_seeds {
                for &seed in &raw.seeds {
                    for (mi, method) in variants.iter().enumerate() {
                        for variant in method {
                            let dataset = RawDataset { ratio, data_seed: Some(data_seed), ..d.clone() };
                            let at = CellAt { dataset_index: di, dataset, seed, method_index: mi };
                            cells.push(cell(raw, &base, at, variant, &names, &cells_dir)?);
                        }
                    }
                }
            }
        }
    }
    for g in search::search_groups(&cells) {
        let mi = raw.methods.iter().position(|m| m.name == g.key.method).unwrap_or_default();
        if g.trials.iter().any(|&t| cells[t].recipe.epochs != g.total) {
            return field(
                &format!("methods[{mi}].search.axes"),
                "the trials train for different `epochs`: rungs compare trials at the same epoch, so search `epochs` with one method per value",
            );
        }
        if g.prune.is_some() && g.trials.iter().any(|&t| cells[t].recipe.m2m.is_none()) {
            return field(&format!("methods[{mi}].search.prune"), "probes M2m's translations: the method has no `m2m`");
        }
        for (k, end) in g.planned_ends().into_iter().enumerate() {
            if let Some(t) = cells[g.trials[k]].trial.as_mut() {
                t.planned_end = end;
            }
        }
    }
    Ok(Suite {
        name: raw.name.clone(),
        output_dir: raw.output_dir.clone(),
        baseline: raw.baseline.clone(),
        methods: names,
        cells,
        raw: raw.clone(),
    })
}

/// Checks the suite's name, methods, baseline and seeds; the method names in order.
fn check_methods(raw: &RawSuite) -> Result<Vec<String>, Expand> {
    if raw.name.is_empty() || raw.name.contains(['/', '\\']) {
        return field("name", "must be non-empty and contain no path separator");
    }
    if raw.methods.is_empty() {
        return field("methods", "must list at least one method");
    }
    let mut names: Vec<String> = Vec::new();
    for (i, m) in raw.methods.iter().enumerate() {
        let f = format!("methods[{i}]");
        if m.name.is_empty() || !m.name.chars().all(|c| c.is_ascii_alphanumeric() || "+-_".contains(c)) {
            return field(&format!("{f}.name"), format!("`{}`: use letters, digits, `+`, `-` and `_`", m.name));
        }
        if names.contains(&m.name) {
            return field(&format!("{f}.name"), format!("`{}` appears twice", m.name));
        }
        if let Some(what) = suite_owned_field(&m.recipe) {
            return field(&format!("{f}.recipe.{what}"), "is set by the suite; leave it out of methods");
        }
        names.push(m.name.clone());
    }
    if let Some(b) = &raw.baseline {
        if !names.contains(b) {
            return field("baseline", format!("`{b}` is not one of the methods {names:?}"));
        }
    }
    if raw.seeds.is_empty() {
        return field("seeds", "must list at least one seed");
    }
    Ok(names)
}

/// The first of the recipe fields the suite sets for each cell (`base`, `name`,
/// `output_dir`, `seed`) that `r` sets, if any.
fn suite_owned_field(r: &RawRecipe) -> Option<&'static str> {
    [
        (r.base.is_some(), "base"),
        (r.name.is_some(), "name"),
        (r.output_dir.is_some(), "output_dir"),
        (r.seed.is_some(), "seed"),
    ]
    .into_iter()
    .find_map(|(set, what)| set.then_some(what))
}

/// One recipe a method runs with: the method itself, or one trial of its search.
struct Variant {
    /// The cell's method name: the method's, or `METHOD-tK` for trial `K`.
    name: String,
    /// The method's recipe fields, with the trial's setting over them.
    recipe: RawRecipe,
    /// Set for a trial of the method's search.
    trial: Option<TrialSetting>,
}

/// What a variant that is a search's trial adds: its number, setting and the halving.
struct TrialSetting {
    number: usize,
    setting: Vec<(String, String)>,
    halving: Halving,
    prune: Option<Prune>,
}

/// Each method's variants, in suite order: the method alone, or its search's trials.
fn variants(raw: &RawSuite, names: &[String]) -> Result<Vec<Vec<Variant>>, Expand> {
    let mut out = Vec::new();
    for (i, m) in raw.methods.iter().enumerate() {
        let Some(s) = &m.search else {
            out.push(vec![Variant { name: m.name.clone(), recipe: m.recipe.clone(), trial: None }]);
            continue;
        };
        let f = format!("methods[{i}].search");
        let halving = s.halving.check().or_else(|e| field(&format!("{f}.halving"), e.to_string()))?;
        let prune =
            s.prune.map(PruneParams::check).transpose().or_else(|e| field(&format!("{f}.prune"), e.to_string()))?;
        let settings = search::settings(&s.axes, s.sampling).or_else(|e| field(&f, e.to_string()))?;
        let mut trials = Vec::new();
        for (k, setting) in settings.into_iter().enumerate() {
            let name = format!("{}-t{k}", m.name);
            if names.contains(&name) {
                return field(&f, format!("its trial `{name}` has the name of another method"));
            }
            let mut recipe = m.recipe.clone();
            for (a, (field_name, value)) in setting.iter().enumerate() {
                let layer = crate::recipe::parse_override(&format!("{field_name}={value}"))
                    .or_else(|e| field(&format!("{f}.axes[{a}]"), e.to_string()))?;
                if suite_owned_field(&layer).is_some() {
                    return field(&format!("{f}.axes[{a}].field"), format!("`{field_name}` is set by the suite"));
                }
                recipe = layer.merge_over(recipe);
            }
            trials.push(Variant { name, recipe, trial: Some(TrialSetting { number: k, setting, halving, prune }) });
        }
        out.push(trials);
    }
    Ok(out)
}

/// The data axes of a suite: data sets, ratios and data seeds, the base's where left out.
struct Axes {
    datasets: Vec<RawDataset>,
    ratios: Vec<f64>,
    data_seeds: Vec<u64>,
    /// The base recipe's data set, for what an entry leaves out.
    base_dataset: RawDataset,
}

impl Axes {
    fn of(raw: &RawSuite, base: &RawRecipe) -> Result<Self, Expand> {
        let base_dataset = base.dataset.clone().unwrap_or_default();
        let datasets = non_empty(&raw.datasets, "datasets", Some(RawDataset::default()))?;
        let mut axes = Axes { datasets, ratios: Vec::new(), data_seeds: Vec::new(), base_dataset };
        axes.ratios = match (axes.datasets.iter().all(|d| axes.as_is(d)), &raw.ratios) {
            (false, _) => non_empty(&raw.ratios, "ratios", axes.base_dataset.ratio)?,
            (true, None) => Vec::new(),
            (true, Some(_)) => {
                return field("ratios", "every data set is `imbalance: AsIs` (its own class counts): leave ratios out")
            }
        };
        axes.data_seeds = non_empty(&raw.data_seeds, "data_seeds", axes.base_dataset.data_seed)?;
        Ok(axes)
    }

    /// Whether data set `d` is kept as it is (`imbalance: AsIs`, here or in the base).
    fn as_is(&self, d: &RawDataset) -> bool {
        matches!(d.imbalance.or(self.base_dataset.imbalance), Some(RawImbalance::AsIs))
    }

    /// The ratio axis applies to the data sets cut to a long tail; one kept as it is has
    /// one column, at its own ratio (`None`).
    fn ratios_of(&self, d: &RawDataset) -> Vec<Option<f64>> {
        if self.as_is(d) {
            vec![None]
        } else {
            self.ratios.iter().copied().map(Some).collect()
        }
    }
}

/// Where a cell sits on the suite's axes: its data set entry (with this cell's ratio and
/// data seed), seed and method.
struct CellAt {
    dataset_index: usize,
    dataset: RawDataset,
    seed: u64,
    method_index: usize,
}

/// One checked cell: the method's recipe and the cell's data and seed over the base.
fn cell(
    raw: &RawSuite,
    base: &RawRecipe,
    at: CellAt,
    variant: &Variant,
    names: &[String],
    cells_dir: &Path,
) -> Result<Cell, Expand> {
    let (ratio, data_seed) = (at.dataset.ratio, at.dataset.data_seed.expect("set by expand"));
    let cell = RawRecipe {
        dataset: Some(at.dataset),
        seed: Some(at.seed),
        output_dir: Some(cells_dir.to_path_buf()),
        ..Default::default()
    };
    let mut merged = cell.merge_over(variant.recipe.clone().merge_over(base.clone()));
    if ratio.is_none() {
        // Not the base's ratio: AsIs has none.
        merged.dataset.get_or_insert_with(Default::default).ratio = None;
    }
    let label = match merged.dataset.as_ref() {
        Some(RawDataset { name: Some(n), .. }) => format!("{n:?}"),
        Some(RawDataset { images: Some(RawImages { name: Some(n), .. }), .. }) => n.clone(),
        _ => {
            return field(
                &format!("datasets[{}].name", at.dataset_index),
                "missing here and in the base recipe (a built-in `name`, or `images` with its `name`)",
            )
        }
    };
    let key = CellKey { method: variant.name.clone(), dataset: label, ratio, data_seed, seed: at.seed };
    let trial = variant.trial.as_ref().map(|t| Trial {
        group: CellKey { method: raw.methods[at.method_index].name.clone(), ..key.clone() },
        number: t.number,
        setting: t.setting.clone(),
        halving: t.halving,
        prune: t.prune,
        planned_end: 0,
    });
    merged.name = Some(key.run_name());
    if let Some(m2m) = merged.m2m.as_mut() {
        if let Some(BaselineSource::Method(g_method)) = &m2m.g {
            let g_key = CellKey { method: g_method_of(raw, at.method_index, g_method, names)?, ..key.clone() };
            m2m.g = Some(BaselineSource::Checkpoint(cells_dir.join(g_key.run_name())));
        }
    }
    let recipe = merged.check().map_err(|e| Expand::Cell(key.run_name(), e))?;
    Ok(Cell { key, recipe, trial })
}

/// `m2m.g = Method(g_method)` of method `mi`: g comes from that method's cell of the same
/// data and seed, which must exist and train without M2m.
fn g_method_of(raw: &RawSuite, mi: usize, g_method: &str, names: &[String]) -> Result<String, Expand> {
    let m = &raw.methods[mi];
    let Some(gm) = raw.methods.iter().find(|x| x.name == g_method) else {
        return field(
            &format!("methods[{mi}].recipe.m2m.g"),
            format!("Method({g_method:?}) is not one of the methods {names:?}"),
        );
    };
    if gm.recipe.m2m.is_some() || gm.name == m.name {
        return field("methods", format!("{}: m2m.g = Method({g_method:?}) must name a method without M2m", m.name));
    }
    if gm.search.is_some() {
        return field(
            &format!("methods[{mi}].recipe.m2m.g"),
            format!("Method({g_method:?}) is searched: g must be one fixed method"),
        );
    }
    Ok(g_method.to_string())
}

/// The resolved suite as RON.
pub fn suite_to_ron(raw: &RawSuite) -> String {
    ron::ser::to_string_pretty(raw, crate::recipe::ron_pretty()).expect("a suite always serialises")
}
