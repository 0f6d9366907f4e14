//! What the fuzz targets check beyond "no panic": the promises a loaded
//! configuration makes to the rest of knockr. Shared by the two server
//! config targets, so both formats are held to the same rules.

use std::net::IpAddr;

use knockr::config::server::{Action, ServerConfig};

/// Fuzz input as the text of a file: the loaders read files with
/// `read_to_string`, which refuses anything that is not UTF-8.
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The rules `check_doors` promises the server (and its matcher) it enforced.
pub fn check_server_config(config: &ServerConfig) {
    assert!(!config.doors.is_empty(), "a config without doors loaded");
    let mut names = std::collections::HashSet::new();
    for door in &config.doors {
        let name = &door.door.name;
        assert!(!name.trim().is_empty(), "a door without a name loaded");
        assert!(names.insert(name), "door name {name:?} loaded twice");
        let knocks = door.door.sequence.len();
        match &door.one_time_sequences {
            Some(_) => assert_eq!(knocks, 0, "door {name:?} has both kinds of sequence"),
            None => assert!(
                (1..=32).contains(&knocks),
                "door {name:?} has {knocks} knocks"
            ),
        }
        assert!(
            door.door.sequence.knocks().all(|k| k.port != 0),
            "door {name:?} knocks port 0"
        );
        assert_eq!(
            door.door.flags.set & door.door.flags.unset,
            0,
            "door {name:?} requires and forbids a flag"
        );
        if door.stop.is_some() || door.stop6.is_some() {
            assert!(
                door.cmd_timeout.is_some(),
                "door {name:?} stops without a delay"
            );
        }
        // Substitution is what reaches a shell: it must only ever put the
        // address's own text where %IP% was.
        for action in [&door.start, &door.start6, &door.stop, &door.stop6]
            .into_iter()
            .flatten()
        {
            let ip: IpAddr = "2001:db8::7".parse().unwrap();
            let filled = action.substitute(ip, name);
            match (action, &filled) {
                (Action::Argv(before), Action::Argv(after)) => {
                    assert_eq!(before.len(), after.len(), "substitution split an argument")
                }
                (Action::Shell(_), Action::Shell(_)) => {}
                _ => panic!("substitution changed the kind of command"),
            }
        }
    }
}
