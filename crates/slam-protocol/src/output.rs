//! Messages and result sets: the two kinds of output an operation produces.

use serde::{Deserialize, Serialize};

/// How a message should be presented. SQL Server shows both as severity-10
/// informational messages; warnings carry a `Warning:` prefix so they stand out in
/// SSMS's Messages tab and in SQL Agent job history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Progress and results a person reads.
    Info,
    /// Something that works now but risks failure or exposure later.
    Warning,
}

/// One line (or short paragraph) of human-readable output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Info or warning.
    pub severity: Severity,
    /// The text. Never contains a secret.
    pub text: String,
}

/// The SQL-ish type of a result-set column, so the XP can describe it to SQL Server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// `NVARCHAR`.
    Text,
    /// `BIGINT`.
    Int,
    /// `BIT`.
    Bool,
    /// `DATETIME2` in UTC, carried as RFC 3339 text.
    DateTime,
}

/// A result-set column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// snake_case name; also the JSON key in `--format json`.
    pub name: String,
    /// The column's type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// SQL NULL / JSON null.
    Null,
    /// A boolean (`BIT`).
    Bool(bool),
    /// An integer (`BIGINT`).
    Int(i64),
    /// Text, or a timestamp in RFC 3339 form for [`ColumnType::DateTime`].
    Text(String),
}

impl Value {
    /// Text for display in a table: NULL shows as an empty cell.
    pub fn display(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Text(s) => s.clone(),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A table of typed rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultSet {
    /// Column descriptions, in order.
    pub columns: Vec<Column>,
    /// Rows; each has exactly one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// A result set with these columns and no rows yet.
    pub fn new(columns: &[(&str, ColumnType)]) -> Self {
        Self {
            columns: columns.iter().map(|(name, ty)| Column { name: (*name).to_string(), ty: *ty }).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row. Rows of the wrong width are a programming error, caught in
    /// debug builds and by tests; release builds pad or truncate rather than panic,
    /// because this code may one day run behind the XP boundary.
    pub fn push(&mut self, mut row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len(), "row width must match columns");
        row.resize(self.columns.len(), Value::Null);
        self.rows.push(row);
    }

    /// The rows as JSON objects keyed by column name: what `--format json` prints.
    pub fn to_json_objects(&self) -> serde_json::Value {
        let rows = self
            .rows
            .iter()
            .map(|row| {
                let object = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(column, value)| {
                        let json = match value {
                            Value::Null => serde_json::Value::Null,
                            Value::Bool(b) => serde_json::Value::Bool(*b),
                            Value::Int(i) => serde_json::Value::from(*i),
                            Value::Text(s) => serde_json::Value::String(s.clone()),
                        };
                        (column.name.clone(), json)
                    })
                    .collect::<serde_json::Map<_, _>>();
                serde_json::Value::Object(object)
            })
            .collect();
        serde_json::Value::Array(rows)
    }
}

/// Where an operation sends its output as it goes (so a person waiting sees progress).
pub trait OutputSink {
    /// Reports a message.
    fn message(&mut self, severity: Severity, text: &str);
    /// Reports a complete result set.
    fn result_set(&mut self, result: ResultSet);

    /// Shorthand for an informational message.
    fn info(&mut self, text: &str) {
        self.message(Severity::Info, text);
    }
    /// Shorthand for a warning.
    fn warning(&mut self, text: &str) {
        self.message(Severity::Warning, text);
    }
}

/// A sink that keeps everything, in order, for tests (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecordingSink {
    /// Messages, in the order reported.
    pub messages: Vec<Message>,
    /// Result sets, in the order reported.
    pub result_sets: Vec<ResultSet>,
}

#[cfg(any(test, feature = "test-util"))]
impl RecordingSink {
    /// The texts of all warnings.
    pub fn warnings(&self) -> Vec<&str> {
        self.texts(Severity::Warning)
    }

    /// The texts of all informational messages.
    pub fn infos(&self) -> Vec<&str> {
        self.texts(Severity::Info)
    }

    fn texts(&self, severity: Severity) -> Vec<&str> {
        self.messages.iter().filter(|m| m.severity == severity).map(|m| m.text.as_str()).collect()
    }
}

#[cfg(any(test, feature = "test-util"))]
impl OutputSink for RecordingSink {
    fn message(&mut self, severity: Severity, text: &str) {
        self.messages.push(Message { severity, text: text.to_string() });
    }
    fn result_set(&mut self, result: ResultSet) {
        self.result_sets.push(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_objects_use_column_names_and_native_types() {
        let mut rs = ResultSet::new(&[
            ("name", ColumnType::Text),
            ("days_left", ColumnType::Int),
            ("has_passphrase", ColumnType::Bool),
            ("note", ColumnType::Text),
        ]);
        rs.push(vec!["acme".into(), 12i64.into(), true.into(), Value::Null]);
        let json = rs.to_json_objects();
        assert_eq!(json, serde_json::json!([{"name": "acme", "days_left": 12, "has_passphrase": true, "note": null}]));
    }

    #[test]
    fn recording_sink_separates_warnings() {
        let mut sink = RecordingSink::default();
        sink.info("one");
        sink.warning("two");
        assert_eq!(sink.infos(), ["one"]);
        assert_eq!(sink.warnings(), ["two"]);
    }
}
