//! `knockr routeros rules` (the native knock script for a profile or
//! `--sequence`) and `knockr routeros check` (can knockd use its routers?).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::RulesArgs;
use crate::client::plan::{self, DEFAULT_DELAY, PlanError, Target};
use crate::config::profiles::{Overrides, Profile, Profiles, Sequence};
use crate::core::knock::{self, Family, Knock, Proto};
use crate::exit_codes::ExitCode;
use crate::routeros::rules;

pub(super) fn rules(args: &RulesArgs, config: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let script = script(args, config)?;
    std::io::stdout().lock().write_all(script.as_bytes())?;
    Ok(ExitCode::Success)
}

/// The script for a profile's or the flags' sequence, or with `--undo` the
/// one that removes it; a weak sequence let through is warned about on stderr.
fn script(args: &RulesArgs, config: Option<PathBuf>) -> anyhow::Result<String> {
    let usage = |message: String| anyhow::Error::from(PlanError::Usage(message));
    let family = Family::from(args.family);
    let (ipv4, ipv6) = (family != Family::Ipv6, family != Family::Ipv4);
    let tag = args.tag.clone().unwrap_or_else(|| match &args.profile {
        Some(profile) => format!("knockr-{profile}"),
        None => "knockr".to_string(),
    });
    if args.undo {
        return rules::undo(&tag, ipv4, ipv6).map_err(|err| usage(err.to_string()));
    }
    let (sequence, delay) = match &args.profile {
        Some(profile) => {
            let profiles = plan::load_profiles(args.config.clone().or(config))?;
            router_knock(&profiles, profile)?
        }
        None => {
            let sequence = args
                .sequence
                .iter()
                .map(|spec| {
                    knock::parse_knock(spec, Proto::Tcp).map_err(|err| {
                        usage(format!("invalid value {spec:?} for --sequence: {err}"))
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            (sequence, DEFAULT_DELAY)
        }
    };
    let protect = args
        .protect
        .iter()
        .map(|text| rules::parse_protect(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| usage(err.to_string()))?;
    let spec = rules::RuleSpec {
        tag,
        sequence,
        wan: args.wan.clone(),
        protect,
        list: args.list.clone(),
        timeout: args.timeout,
        stage_timeout: args
            .stage_timeout
            .unwrap_or_else(|| (delay * 4).max(Duration::from_secs(10))),
        delay,
        block_for: args.block_for,
        place_before: args.place_before.clone(),
        allow_weak: args.allow_weak,
        ipv4,
        ipv6,
    };
    let script = rules::script(&spec).map_err(|err| usage(err.to_string()))?;
    let mut stderr = std::io::stderr().lock();
    for weakness in &script.warnings {
        writeln!(
            stderr,
            "knockr: warning: {weakness} (generated anyway: --allow-weak)"
        )?;
    }
    Ok(script.text)
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
