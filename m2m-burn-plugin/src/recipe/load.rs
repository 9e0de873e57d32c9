//! Reading recipe files: `base:` chains, `--set a.b=value` overrides, RON options.

use std::path::{Path, PathBuf};

use ron::extensions::Extensions;

use super::check::{Recipe, RecipeError};
use super::raw::{Merge, RawRecipe};

/// Why a recipe file could not be loaded; the message names the file (or the `--set`
/// expression) and, for RON and range errors, the line or the field.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A recipe file (the one given or one of its bases) could not be found or read.
    #[error("{path}: cannot read recipe: {cause}")]
    Io {
        /// The file, as given or as joined from a `base:` field.
        path: PathBuf,
        /// The operating system's error.
        cause: std::io::Error,
    },
    /// A recipe file is not valid RON for a recipe (a syntax error, an unknown field, a
    /// value of the wrong type).
    #[error("{path}: {reason}")]
    Parse {
        /// The file that failed to parse.
        path: PathBuf,
        /// The parser's message with its line and column.
        reason: String,
    },
    /// A `--set KEY.PATH=VALUE` override is malformed or its value is not valid RON
    /// for that field.
    #[error("--set {expr}: {reason}")]
    Override {
        /// The override as given.
        expr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Following the `base:` fields leads back to a file already in the chain.
    #[error("{path}: `base` chain loops back to {again}")]
    Cycle {
        /// The recipe file that was being loaded.
        path: PathBuf,
        /// The base that was reached a second time.
        again: PathBuf,
    },
    /// The merged recipe has a field that is missing or out of range.
    #[error("{path}: {cause}")]
    Invalid {
        /// The recipe file that was being loaded.
        path: PathBuf,
        /// The refused field and why.
        cause: RecipeError,
    },
}

/// RON as recipe and suite files are read: `Some(..)` may be left out.
pub(crate) fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME)
}

/// RON as recipe and suite files are written back.
pub(crate) fn ron_pretty() -> ron::ser::PrettyConfig {
    ron::ser::PrettyConfig::new().extensions(Extensions::IMPLICIT_SOME).struct_names(false)
}

fn parse_raw(text: &str) -> Result<RawRecipe, String> {
    ron_options()
        .from_str::<RawRecipe>(text)
        .map_err(|e| format!("line {}, column {}: {}", e.position.line, e.position.col, e.code))
}

/// Reads `path` and its `base` chain, merged (the file wins over its base).
pub fn resolve_raw(path: &Path) -> Result<RawRecipe, LoadError> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut layers: Vec<RawRecipe> = Vec::new();
    let mut next = Some(path.to_path_buf());
    while let Some(p) = next.take() {
        let canonical = std::fs::canonicalize(&p).map_err(|cause| LoadError::Io { path: p.clone(), cause })?;
        if seen.contains(&canonical) {
            return Err(LoadError::Cycle { path: path.to_path_buf(), again: p });
        }
        seen.push(canonical);
        let text = std::fs::read_to_string(&p).map_err(|cause| LoadError::Io { path: p.clone(), cause })?;
        let raw = parse_raw(&text).map_err(|reason| LoadError::Parse { path: p.clone(), reason })?;
        if let Some(base) = &raw.base {
            let dir = p.parent().unwrap_or(Path::new("."));
            next = Some(dir.join(base));
        }
        layers.push(raw);
    }
    let mut merged = RawRecipe::default();
    for layer in layers.into_iter().rev() {
        merged = layer.merge_over(merged);
    }
    merged.base = None;
    Ok(merged)
}

/// Turns `a.b.c=value` into a partial recipe `(a: (b: (c: value)))`; a [`LoadError::Override`]
/// when the expression has no `=`, a key is not a field name or the value is not valid RON
/// for the field.
pub(crate) fn parse_override(expr: &str) -> Result<RawRecipe, LoadError> {
    let bad = |reason: &str| LoadError::Override { expr: expr.to_string(), reason: reason.to_string() };
    let (path, value) = expr.split_once('=').ok_or_else(|| bad("expected KEY.PATH=VALUE"))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
        return Err(bad("the key path must be dot-separated field names"));
    }
    let mut text = value.trim().to_string();
    for key in keys.iter().rev() {
        text = format!("({key}: {text})");
    }
    parse_raw(&text).map_err(|mut reason| {
        if reason.contains("Expected string") {
            // The usual cause: the shell ate the quotes of `--set name="x"`.
            reason.push_str(&format!(" (RON strings need double quotes, which the shell strips unless the whole expression is quoted: --set '{}=\"{}\"')", path.trim(), value.trim()));
        }
        LoadError::Override { expr: expr.to_string(), reason }
    })
}

/// Loads, merges, applies overrides and checks a recipe file: reads `path` and its `base`
/// chain (the file wins over its base, field by field), applies each of `overrides`
/// (`a.b=VALUE` with a RON value, as `--set` takes them) in order, and checks the result.
/// Nothing else is read: the data set and any checkpoints are looked for when the run
/// starts.
///
/// # Errors
///
/// A [`LoadError`] naming the file, or the `--set` expression, and what was wrong with it;
/// for a value that is missing or out of range, [`LoadError::Invalid`] with the field.
///
/// # Examples
///
/// ```
/// use std::path::Path;
/// use m2m_burn_plugin::recipe::{load_recipe, LoadError};
///
/// // A repository recipe (doctests run in the package folder); its data set is only
/// // looked for when training starts, and its base `fmnist-lt100-base.ron` is merged in.
/// let path = Path::new("../recipes/erm-fmnist-lt100-quick.ron");
/// let recipe = load_recipe(path, &["seed=3".to_string()]).unwrap();
/// assert_eq!(recipe.name, "erm-fmnist-lt100-quick");
/// assert_eq!(recipe.epochs, 12);
/// assert_eq!(recipe.batch_size, 128); // from the base recipe
/// assert_eq!(recipe.seed, 3); // from the override
/// assert!(recipe.m2m.is_none());
///
/// // A value out of range is refused, naming the file and the field.
/// let err = load_recipe(path, &["dataset.ratio=0.5".to_string()]).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "../recipes/erm-fmnist-lt100-quick.ron: dataset.ratio: must be a finite number >= 1, got 0.5"
/// );
/// let LoadError::Invalid { cause, .. } = err else { panic!("{err}") };
/// assert_eq!(cause.field, "dataset.ratio");
/// ```
pub fn load_recipe(path: &Path, overrides: &[String]) -> Result<Recipe, LoadError> {
    let mut raw = resolve_raw(path)?;
    for expr in overrides {
        raw = parse_override(expr)?.merge_over(raw);
    }
    raw.check().map_err(|cause| LoadError::Invalid { path: path.to_path_buf(), cause })
}

/// The resolved recipe as RON, loadable again as a recipe file.
pub fn to_ron(raw: &RawRecipe) -> String {
    ron::ser::to_string_pretty(raw, ron_pretty()).expect("a raw recipe always serialises")
}
