//! Where the default model is installed (`scripts/install.d/model`), for the tests and
//! benchmarks of every crate that needs the real model.

use std::path::PathBuf;

/// The default model's path: `PITH_MODEL`, else `~/.cache/pith/models/SmolLM2-135M-Instruct.gguf`.
pub fn default_model_path() -> PathBuf {
    std::env::var_os("PITH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cache/pith/models/SmolLM2-135M-Instruct.gguf")
        })
}

/// The installed default model, for a test: `None` (with a printed SKIPPED line) when it is
/// absent; under CI (`CI` set) its absence is a failure, since the install hook provides it.
///
/// # Panics
/// Under CI, when the model is missing.
pub fn model_for_tests() -> Option<PathBuf> {
    let path = default_model_path();
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "model {} missing under CI: scripts/install.d/model installs it",
        path.display()
    );
    eprintln!(
        "SKIPPED: model {} not found (run scripts/install.d/model or set PITH_MODEL)",
        path.display()
    );
    None
}
