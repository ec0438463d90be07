//! `ping`: the worker's version, uptime and what it keeps in memory.

use super::Context;
use slam_protocol::{ColumnType, OutputSink, ResultSet, SlamError, Value};

/// `ping`: who answers, since when. The install script and the XP use it to check
/// that a worker of the right version listens.
pub fn ping(ctx: &Context<'_>, sink: &mut dyn OutputSink) -> Result<(), SlamError> {
    let version = env!("CARGO_PKG_VERSION");
    let protocol = slam_protocol::PROTOCOL_VERSION;
    let (mode, uptime, cached, unlocked) = match &ctx.resident {
        Some(r) => (
            "worker",
            Some(r.uptime().as_secs()),
            r.caches_tokens().then(|| r.cached_sessions()),
            r.unlocked_keys().map(|k| k.len()),
        ),
        None => ("in-process", None, None, None),
    };
    match uptime {
        Some(seconds) => sink.info(&format!(
            "SLAM worker {version} (protocol {protocol}, pid {}) has been up for {}.",
            std::process::id(),
            describe_duration(seconds)
        )),
        None => sink.info(&format!("SLAM {version} (protocol {protocol}) running in-process (--local).")),
    }
    let mut result = ResultSet::new(&[
        ("version", ColumnType::Text),
        ("protocol_version", ColumnType::Int),
        ("mode", ColumnType::Text),
        ("pid", ColumnType::Int),
        ("uptime_seconds", ColumnType::Int),
        ("cached_sessions", ColumnType::Int),
        ("unlocked_keys", ColumnType::Int),
    ]);
    let int = |v: Option<u64>| v.map_or(Value::Null, |v| Value::Int(i64::try_from(v).unwrap_or(i64::MAX)));
    result.push(vec![
        version.into(),
        Value::Int(i64::from(protocol)),
        mode.into(),
        Value::Int(i64::from(std::process::id())),
        int(uptime),
        int(cached.map(|c| c as u64)),
        int(unlocked.map(|k| k as u64)),
    ]);
    sink.result_set(result);
    Ok(())
}

/// `3d 4h 5m 6s`, leaving out leading zero units.
fn describe_duration(seconds: u64) -> String {
    let units = [(seconds / 86_400, "d"), (seconds / 3_600 % 24, "h"), (seconds / 60 % 60, "m"), (seconds % 60, "s")];
    let parts: Vec<String> =
        units.iter().skip_while(|(n, u)| *n == 0 && *u != "s").map(|(n, u)| format!("{n}{u}")).collect();
    parts.join(" ")
}
