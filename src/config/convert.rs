//! `knockr knockd --convert`: a loaded knockd.conf written out as knockr's
//! TOML, the same doors, commands, flags and timeouts, with comments where
//! the TOML can say more than the knockd.conf did (a plain argv instead of a
//! shell line, `strict`, `tolerate_repeats`, `user`).
//!
//! The output is made from the validated [`ServerConfig`], not from the
//! file's text, so it holds exactly what knockr runs for the knockd.conf:
//! the fallbacks are already applied (an IPv6 command that is the IPv4 one,
//! the 10 s `cmd_timeout` of a stop command) and a repeated section already
//! has its `NAME#2`. Text generation only: it reads and writes nothing.

use std::path::Path;

use crate::config::profiles::ConfigError;
use crate::config::server::{Action, DEFAULT_STATE_FILE, DoorConfig, Format, ServerConfig};
use crate::core::knock::Proto;
use crate::core::matcher::FlagRule;
use crate::core::packet::tcp_flags;
use crate::core::units;

/// What stands in for a knockd.conf's empty `Start_Command_6 =` (or
/// `Stop_Command_6 =`): a TOML command cannot be empty, and IPv6 knockers
/// run the IPv4 command when none is written.
const NOTHING: &str = "/bin/true";

/// The TOML for `config`, a knockd.conf as [`crate::config::server::load`]
/// read it; loaded again, it gives the same doors and commands.
pub fn to_toml(config: &ServerConfig) -> Result<String, ConfigError> {
    let fail = |message: String| ConfigError {
        path: config.path.clone(),
        position: None,
        message,
    };
    if config.format == Format::Toml {
        return Err(fail(
            "the file is knockr's TOML already: --convert reads a classic knockd.conf".into(),
        ));
    }
    let mut out = header(config);
    out += &options(config).map_err(&fail)?;
    for door in &config.doors {
        out += "\n";
        out += &door_toml(door).map_err(|message| ConfigError {
            path: config.path.clone(),
            position: Some((door.line, 1)),
            message,
        })?;
    }
    Ok(out)
}

fn header(config: &ServerConfig) -> String {
    format!(
        "# Converted by `knockr knockd --convert` from {}.\n\
         # The same doors, commands, flags and timeouts as knockr runs for that file.\n\
         # Commands stay `/bin/sh -c` lines, as knockd runs them; where a line needs\n\
         # no shell, the comment above it gives the plain argv, which runs without one.\n\
         # Check it with `knockr knockd -c FILE --check` before replacing the old file.\n\n",
        config.path.display()
    )
}

/// The `[knockd]` table: what `[options]` set, and `user`, which it could not.
fn options(config: &ServerConfig) -> Result<String, String> {
    let mut out = String::from("[knockd]\n");
    if config.interfaces.is_empty() {
        out += "# No Interface: captures on every interface (\"any\") unless -i says otherwise.\n";
    } else {
        let interfaces = config.interfaces.iter().map(|i| quote(i)).collect();
        out += &format!("interfaces = {}\n", array(interfaces));
    }
    if let Some(file) = &config.log_file {
        out += &format!("log_file = {}\n", path(file)?);
    }
    if config.use_syslog {
        out += "syslog = true\n";
    }
    if let Some(file) = &config.pid_file {
        out += &format!("pid_file = {}\n", path(file)?);
    }
    if config.state_file != Path::new(DEFAULT_STATE_FILE) {
        out += &format!("state_file = {}\n", path(&config.state_file)?);
    }
    out += "# knockd.conf cannot drop root; here knockd can, once the captures are open\n\
            # (the commands then run as that user, so they need its rights):\n\
            # user = \"knockr\"\n";
    Ok(out)
}

/// One `[[door]]` table.
fn door_toml(entry: &DoorConfig) -> Result<String, String> {
    let door = &entry.door;
    let mut out = match &entry.repeats {
        Some(written) => format!(
            "# Section [{written}] again (line {}): knockd runs both, and so does knockr,\n\
             # which names this one `{}` in the log and the state file.\n",
            entry.line, door.name
        ),
        None => format!("# Section [{}], line {}.\n", door.name, entry.line),
    };
    out += "[[door]]\n";
    out += &format!("name = {}\n", quote(&door.name));
    if let Some(file) = &entry.one_time_sequences {
        out += &format!("one_time_sequences = {}\n", path(file)?);
    } else {
        let knocks = door.sequence.knocks().map(|k| match k.proto {
            Proto::Tcp => quote(&k.port.to_string()),
            Proto::Udp | Proto::Icmp => quote(&k.to_string()),
        });
        out += &format!("sequence = {}\n", array(knocks.collect()));
    }
    out += &format!("seq_timeout = {}\n", duration(door.seq_timeout));
    if door.flags != FlagRule::default() {
        out += &format!("tcp_flags = {}\n", quote(&flags(&door.flags)));
    }
    if let Some(target) = door.target {
        out += &format!("target = {}\n", quote(&target.to_string()));
    }
    out += "# knockd's matching: a knock on another port some door watches resets this one.\n\
            # true: any other SYN or UDP packet to this host resets it (defeats port scans).\n";
    out += &format!("strict = {}\n", door.strict);
    out +=
        "# true: a repeat of the knock just matched (a SYN retransmit) is ignored, not a reset.\n";
    out += &format!("tolerate_repeats = {}\n", door.tolerate_repeats);
    out += &command("start", "Start_Command", entry.start.as_ref(), None);
    out += &command(
        "start6",
        "Start_Command_6",
        entry.start6.as_ref(),
        Some(entry.start.as_ref()),
    );
    if let Some(timeout) = entry.cmd_timeout {
        out += &format!("cmd_timeout = {}\n", duration(timeout));
    }
    out += &command("stop", "Stop_Command", entry.stop.as_ref(), None);
    out += &command(
        "stop6",
        "Stop_Command_6",
        entry.stop6.as_ref(),
        Some(entry.stop.as_ref()),
    );
    Ok(out)
}

/// `key = [...]` for one command, with a comment saying how it runs. An
/// IPv6 command (`ipv4` is its IPv4 counterpart) is written only where it
/// is not what the TOML's fallback would give.
fn command(
    key: &str,
    directive: &str,
    action: Option<&Action>,
    ipv4: Option<Option<&Action>>,
) -> String {
    match (action, ipv4) {
        (None, None) => String::new(),
        (action, Some(ipv4)) if action == ipv4 => String::new(),
        (None, Some(_)) => format!(
            "# {directive} was empty, so IPv6 knockers run nothing; a TOML command cannot be\n\
             # empty, and {NOTHING} (which does nothing) stands in for it.\n\
             {key} = {}\n",
            array(vec![quote(NOTHING)])
        ),
        (Some(Action::Argv(argv)), _) => {
            format!(
                "{key} = {}\n",
                array(argv.iter().map(|a| quote(a)).collect())
            )
        }
        (Some(Action::Shell(line)), _) => {
            let shell = array(["/bin/sh", "-c", line].map(quote).to_vec());
            let advice = match plain_argv(line) {
                Some((argv, comment)) => {
                    let dropped = match comment {
                        true => ", leaving out its shell comment",
                        false => "",
                    };
                    format!(
                        "# {directive}, through /bin/sh -c as knockd runs it. It needs no shell; as an\n\
                         # argv run without one{dropped}:\n\
                         #   {key} = {}\n",
                        array(argv.iter().map(|a| quote(a)).collect())
                    )
                }
                None => format!(
                    "# {directive}, through /bin/sh -c as knockd runs it (it uses shell syntax).\n"
                ),
            };
            format!("{advice}{key} = {shell}\n")
        }
    }
}

/// The words of a shell line that `/bin/sh` would pass on unchanged, with
/// whether a comment (a word starting with `#`) was cut off; `None` when
/// any word holds quoting, expansion, redirection or other shell syntax,
/// or when the first one sets a variable (`X=1 cmd`).
fn plain_argv(line: &str) -> Option<(Vec<String>, bool)> {
    let plain = |word: &str| {
        word == "{"
            || word == "}"
            || word
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=%,@+".contains(c))
    };
    let mut argv = Vec::new();
    let mut comment = false;
    for word in line.split_whitespace() {
        if word.starts_with('#') {
            comment = true;
            break;
        }
        if !plain(word) || (argv.is_empty() && word.contains('=')) {
            return None;
        }
        argv.push(word.to_string());
    }
    (!argv.is_empty()).then_some((argv, comment))
}

/// `syn,!ack`, in the order knockd lists the flags.
fn flags(rule: &FlagRule) -> String {
    let names = [
        (tcp_flags::FIN, "fin"),
        (tcp_flags::SYN, "syn"),
        (tcp_flags::RST, "rst"),
        (tcp_flags::PSH, "psh"),
        (tcp_flags::ACK, "ack"),
        (tcp_flags::URG, "urg"),
    ];
    let set = names.iter().filter(|(bit, _)| rule.set & bit != 0);
    let unset = names.iter().filter(|(bit, _)| rule.unset & bit != 0);
    let words: Vec<String> = set
        .map(|(_, name)| name.to_string())
        .chain(unset.map(|(_, name)| format!("!{name}")))
        .collect();
    words.join(",")
}

fn duration(duration: std::time::Duration) -> String {
    quote(&units::format_duration(duration))
}

/// A TOML string, escaped as TOML escapes it.
fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(", "))
}

/// A file name as a TOML string; one that is not UTF-8 cannot be written.
fn path(path: &Path) -> Result<String, String> {
    path.to_str().map(quote).ok_or_else(|| {
        format!(
            "file name {:?} is not UTF-8, which TOML cannot hold: rename the file first",
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::server::parse;

    /// A knockd.conf with each thing the conversion has to say something about.
    const CONF: &str = "\
[options]
    UseSyslog
    LogFile = /var/log/knockd.log
    Interface = eth0
[openSSH]
    sequence    = 7000,8000:udp,9000 # knock
    seq_timeout = 5
    tcpflags    = syn,!ack
    command     = /sbin/iptables -I INPUT -s %IP% -p tcp --dport 22 -j ACCEPT # open
[openClose]
    sequence      = 2222:udp,3333:tcp,4444:udp
    target        = 192.0.2.1
    start_command = /usr/sbin/ufw allow from %IP% to any port 22 && logger \"opened %IP%\"
    start_command_6 =
    stop_command  = /usr/sbin/ufw delete allow from %IP% to any port 22
[openSSH]
    one_time_sequences = /etc/knockd/ssh_sequences
    tcpflags    = fin,!ack
    start_command = nft add element inet fw knocked { %IP% }
    start_command_6 = nft add element inet fw knocked6 { %IP% }
    cmd_timeout = 30
    stop_command = nft delete element inet fw knocked { %IP% }
";

    fn convert(text: &str) -> String {
        to_toml(&parse(Path::new("/etc/knockd.conf"), text).unwrap()).unwrap()
    }

    #[test]
    fn a_knockd_conf_converts_to_commented_toml() {
        insta::assert_snapshot!(convert(CONF));
    }

    #[test]
    fn the_converted_toml_loads_as_the_same_doors_and_commands() {
        let conf = parse(Path::new("/etc/knockd.conf"), CONF).unwrap();
        let toml = parse(Path::new("knockd.toml"), &to_toml(&conf).unwrap()).unwrap();
        assert_eq!(toml.format, Format::Toml);
        let shell = |action: &Option<Action>| match action {
            Some(Action::Shell(line)) => Some(Action::Argv(
                ["/bin/sh", "-c", line].map(String::from).to_vec(),
            )),
            other => other.clone(),
        };
        let nothing = Some(Action::Argv(vec![NOTHING.into()]));
        for (from, to) in conf.doors.iter().zip(&toml.doors) {
            assert_eq!(from.door, to.door);
            assert_eq!(from.one_time_sequences, to.one_time_sequences);
            assert_eq!(from.cmd_timeout, to.cmd_timeout);
            assert_eq!(
                (shell(&from.start), shell(&from.stop)),
                (to.start.clone(), to.stop.clone())
            );
            // An IPv6 command left empty while the IPv4 one runs is /bin/true.
            let ipv6 = |a: &Option<Action>, ipv4: &Option<Action>| match ipv4 {
                Some(_) => shell(a).or(nothing.clone()),
                None => shell(a),
            };
            let start6 = ipv6(&from.start6, &from.start);
            let stop6 = ipv6(&from.stop6, &from.stop);
            assert_eq!((start6, stop6), (to.start6.clone(), to.stop6.clone()));
        }
        assert_eq!(conf.doors.len(), toml.doors.len());
        assert_eq!(
            (toml.interfaces, toml.log_file, toml.use_syslog),
            (conf.interfaces, conf.log_file, conf.use_syslog)
        );
    }

    #[test]
    fn only_lines_without_shell_syntax_get_a_plain_argv() {
        let words = |line: &str| plain_argv(line).map(|(argv, cut)| (argv.join(" "), cut));
        assert_eq!(
            words("/sbin/iptables -A INPUT -s %IP% -j ACCEPT # open"),
            Some(("/sbin/iptables -A INPUT -s %IP% -j ACCEPT".into(), true))
        );
        assert_eq!(
            words("nft add element t s { %IP% }"),
            Some(("nft add element t s { %IP% }".into(), false))
        );
        for shell in [
            "a && b",
            "echo \"x\"",
            "echo $HOME",
            "a > f",
            "X=1 cmd",
            "a;b",
            "echo a#b",
            "# all comment",
        ] {
            assert_eq!(words(shell), None, "{shell}");
        }
    }

    #[test]
    fn a_toml_file_is_not_converted_again() {
        let toml = parse(
            Path::new("k.toml"),
            "[[door]]\nname = \"d\"\nsequence = [1]\n",
        )
        .unwrap();
        assert_eq!(
            to_toml(&toml).unwrap_err().to_string(),
            "k.toml: the file is knockr's TOML already: --convert reads a classic knockd.conf"
        );
    }
}
