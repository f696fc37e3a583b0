//! `--color=auto|always|never` and `NO_COLOR` (https://no-color.org): whether the
//! `[<status>]` line is red. `auto` colours only a terminal, and not when `NO_COLOR` is set
//! to anything non-empty; an explicit `always` or `never` wins over `NO_COLOR`.

use std::sync::OnceLock;

/// When to colour.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    #[default]
    Auto,
    /// Always (even with `NO_COLOR`).
    Always,
    /// Never.
    Never,
}

static CHOICE: OnceLock<ColorWhen> = OnceLock::new();

/// Records the command line's choice (the first call wins).
pub fn set(choice: ColorWhen) {
    let _ = CHOICE.set(choice);
}

/// Whether to colour a stream that is (`terminal`) or is not a terminal.
pub fn enabled(terminal: bool) -> bool {
    decide(CHOICE.get().copied().unwrap_or_default(), terminal, std::env::var_os("NO_COLOR"))
}

fn decide(choice: ColorWhen, terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    match choice {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => terminal && no_color.is_none_or(|v| v.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_choices_win_and_no_color_turns_auto_off() {
        assert!(decide(ColorWhen::Auto, true, None));
        assert!(decide(ColorWhen::Auto, true, Some("".into())));
        assert!(!decide(ColorWhen::Auto, true, Some("1".into())));
        assert!(!decide(ColorWhen::Auto, false, None));
        assert!(decide(ColorWhen::Always, false, Some("1".into())));
        assert!(!decide(ColorWhen::Never, true, None));
    }
}
