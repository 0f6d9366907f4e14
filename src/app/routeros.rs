//! `knockr routeros rules` (the native knock script for a profile or
//! `--sequence`), `knockr routeros check` (can knockd use its routers?) and
//! `knockr routeros apply` (the same rules installed over REST).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{RuleFlags, RulesArgs};
use crate::client::plan::{self, DEFAULT_DELAY, PlanError, Target};
use crate::config::profiles::{Overrides, Profile, Profiles, Sequence};
use crate::core::knock::{self, Family, Knock, Proto};
use crate::exit_codes::ExitCode;
use crate::routeros::rules;

pub(super) fn rules(args: &RulesArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let flags = &args.rules;
    let family = Family::from(flags.family);
    let text = if args.undo {
        rules::undo(&tag(flags), family != Family::Ipv6, family != Family::Ipv4)
            .map_err(|err| usage(err.to_string()))?
    } else {
        let script = rules::script(&spec(flags, args.config.clone().or(config))?)
            .map_err(|err| usage(err.to_string()))?;
        warn(&script.warnings)?;
        script.text
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::Success)
}

pub(super) fn usage(message: String) -> anyhow::Error {
    anyhow::Error::from(PlanError::Usage(message))
}

/// The weak sequences `--allow-weak` let through, on stderr.
pub(super) fn warn(warnings: &[rules::Weakness]) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    for weakness in warnings {
        writeln!(
            stderr,
            "knockr: warning: {weakness} (generated anyway: --allow-weak)"
        )?;
    }
    Ok(())
}

/// The tag of the rules: `--tag`, else `knockr-PROFILE`, else `knockr`.
fn tag(flags: &RuleFlags) -> String {
    flags.tag.clone().unwrap_or_else(|| match &flags.profile {
        Some(profile) => format!("knockr-{profile}"),
        None => "knockr".to_string(),
    })
}

/// What to generate for a profile's or the flags' sequence, the profile
/// read from `profiles` (else the default profiles file).
fn spec(flags: &RuleFlags, profiles: Option<PathBuf>) -> anyhow::Result<rules::RuleSpec> {
    let family = Family::from(flags.family);
    let (ipv4, ipv6) = (family != Family::Ipv6, family != Family::Ipv4);
    let (sequence, delay) = knocks(flags.profile.as_deref(), &flags.sequence, profiles)?;
    let protect = flags
        .protect
        .iter()
        .map(|text| rules::parse_protect(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| usage(err.to_string()))?;
    Ok(rules::RuleSpec {
        tag: tag(flags),
        sequence,
        wan: flags.wan.clone(),
        protect,
        list: flags.list.clone(),
        timeout: flags.timeout,
        stage_timeout: stage_timeout(flags.stage_timeout, delay),
        delay,
        block_for: flags.block_for,
        place_before: flags.place_before.clone(),
        allow_weak: flags.allow_weak,
        ipv4,
        ipv6,
    })
}

/// The knocks and delay to detect: `profile`'s from `profiles` (else the
/// default profiles file), or `--sequence`'s with the default delay. Shared
/// by `routeros rules` and `nft rules`.
pub(super) fn knocks(
    profile: Option<&str>,
    sequence: &[String],
    profiles: Option<PathBuf>,
) -> anyhow::Result<(Vec<Knock>, Duration)> {
    match profile {
        Some(profile) => {
            let profiles = plan::load_profiles(profiles)?;
            Ok(router_knock(&profiles, profile)?)
        }
        None => {
            let sequence = sequence
                .iter()
                .map(|spec| {
                    knock::parse_knock(spec, Proto::Tcp).map_err(|err| {
                        usage(format!("invalid value {spec:?} for --sequence: {err}"))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok((sequence, DEFAULT_DELAY))
        }
    }
}

/// `--stage-timeout`, else 10s or 4x the knocks' delay if longer: room for a
/// slow link without letting a stage wait long. Shared by `nft rules`.
pub(super) fn stage_timeout(flag: Option<Duration>, delay: Duration) -> Duration {
    flag.unwrap_or_else(|| (delay * 4).max(Duration::from_secs(10)))
}

/// The knocks and delay the router must detect for `profile`, as the planner
/// knocks it: one profile (not a group) whose sequence is fixed, which a
/// router can follow without a secret or a file of used lines.
fn router_knock(profiles: &Profiles, profile: &str) -> Result<(Vec<Knock>, Duration), PlanError> {
    let targets = plan::profile_targets(
        profiles,
        &[profile.to_string()],
        &Overrides::default(),
        &plan::Bind::default(),
    )?;
    if let Some(Profile::Group { .. }) = profiles.profiles.get(profile) {
        return Err(PlanError::Usage(format!(
            "profile `{profile}` is a group: name one of its profiles, whose sequence the router will detect"
        )));
    }
    // A profile of hosts has at least one (the profiles file says so): its
    // first is planned like any other.
    let Some(Target {
        sequence, settings, ..
    }) = targets.into_iter().next()
    else {
        return Err(PlanError::Usage(format!("profile `{profile}` has no host")));
    };
    match sequence {
        Sequence::Fixed(sequence) => Ok((sequence, settings.delay)),
        Sequence::Otp(_) | Sequence::OneTime(_) => Err(PlanError::Usage(format!(
            "profile `{profile}` uses time-based or one-time sequences, which the router cannot follow: give --sequence"
        ))),
    }
}

/// `knockr routeros check`: exit 0 when every router of every door is ready.
#[cfg(feature = "server")]
pub(super) fn check(args: &crate::cli::CheckArgs) -> anyhow::Result<ExitCode> {
    use crate::routeros::check;
    let config = crate::config::server::load(&args.config)?;
    // The passwords are judged for the account knockd would read them as.
    let reader = config.account().map_err(anyhow::Error::msg)?;
    let mut routers = Vec::new();
    for door in &config.doors {
        let Some(action) = &door.routeros else {
            continue;
        };
        for router in &action.routers {
            routers.push(check::Door {
                door: door.door.name.clone(),
                router: router.clone(),
                list: action.list.clone(),
                password: crate::config::secret::load_password(&router.password, &reader)
                    .map_err(|err| format!("router {}: {err}", router.url)),
            });
        }
    }
    let checks = super::runtime()?.block_on(check::check(routers));
    let ready = check::print(&checks, &mut std::io::stdout().lock())?;
    Ok(ExitCode::from_ok(ready))
}

/// `knockr routeros apply`: exit 0 when every router ends as wanted.
#[cfg(feature = "server")]
pub(super) fn apply(args: &crate::cli::ApplyArgs) -> anyhow::Result<ExitCode> {
    use crate::routeros::apply::{self, Goal};
    use crate::routeros::rest::AddressList;
    let flags = &args.rules;
    let family = Family::from(flags.family);
    let tag = tag(flags);
    // Everything a user can get wrong is refused before any router is asked.
    let goal = if args.remove {
        rules::undo(&tag, family != Family::Ipv6, family != Family::Ipv4)
            .map_err(|err| usage(err.to_string()))?;
        let families = [(false, Family::Ipv6), (true, Family::Ipv4)]
            .into_iter()
            .filter(|(_, not)| family != *not)
            .map(|(ipv6, _)| ipv6)
            .collect();
        Goal::Remove(families)
    } else {
        let (families, warnings) = rules::rules(&spec(flags, args.profiles.clone())?)
            .map_err(|err| usage(err.to_string()))?;
        warn(&warnings)?;
        Goal::Install(families)
    };
    let me = crate::config::account::Account::current();
    let mut clients = Vec::new();
    for router in apply_routers(args)? {
        let password = crate::config::secret::load_password(&router.password, &me)
            .map_err(|err| usage(format!("router {}: {err}", router.url)))?;
        for warning in router.warnings() {
            eprintln!("knockr: {warning}");
        }
        clients.push(AddressList::new(&router, password).map_err(usage)?);
    }
    // Every router at once, so one that is down does not hold up the
    // others; the results are printed in the order the routers were given.
    let results = super::runtime()?.block_on(async {
        let goal = std::sync::Arc::new(goal);
        let mut tasks = Vec::new();
        for client in clients {
            let (goal, tag) = (goal.clone(), tag.clone());
            let (dry_run, retry) = (args.dry_run, args.retry);
            tasks.push(tokio::spawn(async move {
                let result = apply::apply(&client, &tag, &goal, dry_run, retry).await;
                (client.router.url.clone(), result)
            }));
        }
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await);
        }
        results
    });
    let mut ok = true;
    let mut stdout = std::io::stdout().lock();
    for result in results {
        let (url, result) = result?;
        let url = crate::core::text::sanitize(&url).into_owned();
        match result {
            Ok(reports) => {
                for report in reports {
                    writeln!(stdout, "router {url}: {report}")?;
                }
            }
            Err(err) => {
                ok = false;
                // A REST error names its router already; a plan error does not.
                let text = match err {
                    apply::ApplyError::Plan(err) => format!("router {url}: {err}"),
                    apply::ApplyError::Rest(err) => err.to_string(),
                };
                eprintln!("knockr: {}", crate::core::text::sanitize(&text));
            }
        }
    }
    Ok(ExitCode::from_ok(ok))
}

/// The routers of `--door`'s `[door.routeros]`, or of the flags.
#[cfg(feature = "server")]
fn apply_routers(
    args: &crate::cli::ApplyArgs,
) -> anyhow::Result<Vec<crate::routeros::rest::Router>> {
    use crate::core::secret::SecretSource;
    use crate::routeros::rest::{self, Router};
    use crate::routeros::tls::{self, Trust};
    if let Some(door) = &args.door {
        let config = crate::config::server::load(&args.config)?;
        let path = args.config.display();
        let Some(found) = config
            .doors
            .iter()
            .find(|d| d.door.name.as_str() == door.as_str())
        else {
            return Err(usage(format!("{path} has no door named {door:?}")));
        };
        return match &found.routeros {
            Some(action) => Ok(action.routers.clone()),
            None => Err(usage(format!(
                "door {door:?} of {path} has no [door.routeros] table: expected one naming its routers"
            ))),
        };
    }
    let user = args.user.clone().unwrap_or_default();
    if user.is_empty() || user.contains(':') {
        return Err(usage(format!(
            "--user {user:?} is not usable: expected a RouterOS user name without ':'"
        )));
    }
    let password = match (&args.password_file, &args.password_env) {
        (Some(file), _) => SecretSource::File(file.clone()),
        (None, Some(var)) => SecretSource::Env(var.clone()),
        (None, None) => {
            return Err(usage(
                "no password: expected --password-file FILE or --password-env VAR".into(),
            ));
        }
    };
    let trust = match (&args.ca_file, &args.fingerprint, args.insecure) {
        (Some(ca), _, _) => Trust::CaFile(ca.clone()),
        (None, Some(pin), _) => Trust::Fingerprint(tls::parse_fingerprint(pin).map_err(usage)?),
        (None, None, true) => Trust::Insecure,
        (None, None, false) => Trust::System,
    };
    args.url
        .iter()
        .map(|url| {
            rest::rest_base(url).map_err(usage)?;
            Ok(Router {
                url: url.clone(),
                user: user.clone(),
                password: password.clone(),
                trust: trust.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_take_a_fixed_profiles_planned_delay_and_refuse_what_the_router_cannot_follow() {
        let profiles = Profiles::parse(
            std::path::Path::new("profiles.toml"),
            r#"
            [defaults]
            delay = "3s"
            [profiles.home]
            host = "gw"
            sequence = ["7000", "8000:udp"]
            [profiles.once]
            host = "gw"
            one_time_sequences = "/nonexistent/one-time"
            [profiles.all]
            include = ["home"]
            "#,
        )
        .unwrap();
        let (sequence, delay) = router_knock(&profiles, "home").unwrap();
        assert_eq!(sequence.len(), 2);
        assert_eq!(
            delay,
            Duration::from_secs(3),
            "[defaults] through the planner"
        );
        // Refused from the profile alone: its one-time file is never read.
        let err = router_knock(&profiles, "once").unwrap_err().to_string();
        assert!(err.contains("which the router cannot follow"), "{err}");
        let err = router_knock(&profiles, "all").unwrap_err().to_string();
        assert!(err.contains("is a group"), "{err}");
    }
}
