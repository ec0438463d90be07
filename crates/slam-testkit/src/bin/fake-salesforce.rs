//! `slam-fake-salesforce`: runs a fake Salesforce by hand for demos.
//!
//! Starts the fake with a production org `acme` (My Domain `acme`), a sandbox
//! `acme--partial`, and user `etl@acme.com` (password `demo-password`, security token
//! `DEMOTOKEN`), writes the test CA to `--dir`, optionally registers a JWT app, prints how to
//! reach it and runs until Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use slam_testkit::{App, FakeSalesforce, Org, User};

const USAGE: &str = "\
usage: slam-fake-salesforce [--dir DIR] [--app-cert FILE --consumer-key KEY]

  --dir DIR            where to write fake-salesforce-ca.pem (default: current directory)
  --app-cert FILE      PEM certificate of a JWT bearer app (pre-authorizes etl@acme.com)
  --consumer-key KEY   consumer key (JWT iss) of that app
";

struct Args {
    dir: PathBuf,
    app_cert: Option<PathBuf>,
    consumer_key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { dir: PathBuf::from("."), app_cert: None, consumer_key: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--app-cert" => args.app_cert = Some(PathBuf::from(value("--app-cert")?)),
            "--consumer-key" => args.consumer_key = Some(value("--consumer-key")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if args.app_cert.is_some() != args.consumer_key.is_some() {
        return Err("--app-cert and --consumer-key must be given together".to_owned());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            eprint!("{USAGE}");
            return if msg.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) };
        }
    };
    let app_cert = match &args.app_cert {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        eprintln!("error: cannot create {}: {e}", args.dir.display());
        return ExitCode::FAILURE;
    }

    let fake = FakeSalesforce::start();
    let acme = Org::production("acme").with_name("Acme Corp");
    let partial = Org::sandbox("acme--partial").with_name("Acme Corp (partial)");
    let user = User::new("etl@acme.com", &acme)
        .with_password("demo-password")
        .with_security_token("DEMOTOKEN")
        .with_full_name("ETL Service");
    let sandbox_user = User::new("etl@acme.com.partial", &partial)
        .with_password("demo-password")
        .with_security_token("DEMOTOKEN")
        .with_full_name("ETL Service");
    if let (Some(pem), Some(key)) = (app_cert, &args.consumer_key) {
        fake.add_app(App::new(key.clone(), &acme, pem).pre_authorize("etl@acme.com"));
    }
    println!("orgs:");
    for org in [&acme, &partial] {
        println!("  {} ({}) {}", org.name, org.org_id, org.instance_url());
    }
    println!("users:  etl@acme.com / etl@acme.com.partial, password demo-password, token DEMOTOKEN");
    fake.add_org(acme);
    fake.add_org(partial);
    fake.add_user(user);
    fake.add_user(sandbox_user);

    let ca_path = fake.write_ca_file(&args.dir);
    let ca_path = ca_path.canonicalize().unwrap_or(ca_path);
    println!("address: {}", fake.addr());
    println!("CA file: {}", ca_path.display());
    println!("resolve: {}", fake.resolve_spec());
    if let Some(key) = &args.consumer_key {
        println!("JWT app: consumer key {key}, pre-authorized etl@acme.com");
    }
    println!("running; press Ctrl-C to stop");

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = runtime.block_on(tokio::signal::ctrl_c()) {
        eprintln!("error: waiting for Ctrl-C: {e}");
        return ExitCode::FAILURE;
    }
    println!("stopping ({} requests served)", fake.requests().len());
    ExitCode::SUCCESS
}
