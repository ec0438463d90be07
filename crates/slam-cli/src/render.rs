//! Rendering an operation's output stream on a terminal.
//!
//! Messages are printed to stderr as they arrive (so a person sees progress);
//! result sets are printed to stdout, as aligned tables or as JSON arrays of objects
//! whose keys are the column names.

use slam_protocol::{OutputSink, ResultSet, Severity, SlamError};
use std::io::Write;
use std::process::ExitCode;

/// How result sets are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns for people (one-row results are printed as name/value lines).
    Table,
    /// JSON for scripts: an array of objects with snake_case keys.
    Json,
}

/// Prints output as it comes; result sets are held until the end so a JSON
/// document is written whole.
pub(crate) struct TerminalSink {
    format: Format,
    result_sets: Vec<ResultSet>,
    json_envelope: bool,
}

impl TerminalSink {
    pub(crate) fn new(format: Format) -> Self {
        Self { format, result_sets: Vec::new(), json_envelope: false }
    }

    /// Print a one-row result as `{"ok":true, ...columns}` in JSON (commands whose
    /// answer is one object, like test-login).
    pub(crate) fn set_json_envelope(&mut self, on: bool) {
        self.json_envelope = on;
    }

    /// A warning from the CLI itself (not from the operation).
    pub(crate) fn warning_now(&mut self, text: &str) {
        self.message(Severity::Warning, text);
    }

    /// Prints the result sets, or the error, and gives the process exit code.
    pub(crate) fn finish(self, error: Option<&SlamError>) -> ExitCode {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if let Some(error) = error {
            eprintln!("error: {error}");
            eprintln!("(SLAM error {} {})", error.code.number(), error.code.as_str());
            if self.format == Format::Json {
                let json = serde_json::json!({
                    "ok": false,
                    "error": {
                        "number": error.code.number(),
                        "code": error.code.as_str(),
                        "message": error.message,
                        "hint": error.hint,
                    }
                });
                let _ = writeln!(out, "{json}");
            }
            return ExitCode::from(1);
        }
        let written = match self.format {
            Format::Json if self.json_envelope => write_envelope(&mut out, &self.result_sets),
            Format::Json => write_json(&mut out, &self.result_sets),
            Format::Table => self.result_sets.iter().try_for_each(|rs| write_table(&mut out, rs)),
        };
        match written.and_then(|()| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            // A closed pipe (e.g. `| head`) is not worth a panic; report and fail.
            Err(e) => {
                eprintln!("error: writing the output failed: {e}");
                ExitCode::from(1)
            }
        }
    }
}

impl OutputSink for TerminalSink {
    fn message(&mut self, severity: Severity, text: &str) {
        match severity {
            Severity::Info => eprintln!("{text}"),
            Severity::Warning => eprintln!("warning: {text}"),
        }
    }

    fn result_set(&mut self, result: ResultSet) {
        self.result_sets.push(result);
    }
}

fn write_json(out: &mut impl Write, result_sets: &[ResultSet]) -> std::io::Result<()> {
    let json = match result_sets {
        [] => serde_json::Value::Array(Vec::new()),
        [one] => one.to_json_objects(),
        many => serde_json::Value::Array(many.iter().map(ResultSet::to_json_objects).collect()),
    };
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

fn write_envelope(out: &mut impl Write, result_sets: &[ResultSet]) -> std::io::Result<()> {
    let mut object = serde_json::Map::new();
    object.insert("ok".into(), serde_json::Value::Bool(true));
    for rs in result_sets {
        if let Some(serde_json::Value::Object(row)) =
            rs.to_json_objects().as_array().and_then(|rows| rows.first()).cloned()
        {
            object.extend(row);
        }
    }
    let text = serde_json::to_string_pretty(&serde_json::Value::Object(object)).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

fn write_table(out: &mut impl Write, rs: &ResultSet) -> std::io::Result<()> {
    if rs.rows.len() == 1 {
        let width = rs.columns.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for (column, value) in rs.columns.iter().zip(&rs.rows[0]) {
            writeln!(out, "{:width$}  {}", column.name, value.display())?;
        }
        return Ok(());
    }
    let cells: Vec<Vec<String>> = rs.rows.iter().map(|row| row.iter().map(|v| v.display()).collect()).collect();
    let widths: Vec<usize> = rs
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|row| row[i].chars().count()).chain([c.name.len()]).max().unwrap_or(0))
        .collect();
    let line = |values: Vec<&str>| {
        let padded: Vec<String> = values.iter().zip(&widths).map(|(v, w)| format!("{v:w$}")).collect();
        padded.join("  ").trim_end().to_string()
    };
    writeln!(out, "{}", line(rs.columns.iter().map(|c| c.name.as_str()).collect()))?;
    writeln!(
        out,
        "{}",
        line(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().iter().map(String::as_str).collect())
    )?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}
