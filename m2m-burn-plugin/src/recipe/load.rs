//! Reading recipe files: `base:` chains, `--set a.b=value` overrides, RON options.

use std::path::{Path, PathBuf};

use ron::extensions::Extensions;

use super::check::{Recipe, RecipeError};
use super::raw::{Merge, RawRecipe};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read recipe: {cause}")]
    Io { path: PathBuf, cause: std::io::Error },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("--set {expr}: {reason}")]
    Override { expr: String, reason: String },
    #[error("{path}: `base` chain loops back to {again}")]
    Cycle { path: PathBuf, again: PathBuf },
    #[error("{path}: {cause}")]
    Invalid { path: PathBuf, cause: RecipeError },
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

/// Turns `a.b.c=value` into a partial recipe `(a: (b: (c: value)))`.
pub fn parse_override(expr: &str) -> Result<RawRecipe, LoadError> {
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

/// Loads, merges, applies overrides and checks a recipe file.
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
