//! A client profile with `one_time_sequences = FILE` (the C knockd's format):
//! it knocks the first unused line and marks it used, `--dry-run` shows the
//! line without marking it, and a used-up file is a clear error.

use crate::support;
use crate::support::{Door, json, profiles};

const HOST: &str = "127.0.1.94";

/// The (port, protocol) knocks a `--json` run reported for its target.
fn reported(output: &std::process::Output) -> Vec<u64> {
    json(output)["targets"][0]["knocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["port"].as_u64().unwrap())
        .collect()
}

#[test]
fn each_run_knocks_the_next_unused_line_and_marks_it_and_a_dry_run_marks_nothing() {
    let door = Door::new(HOST);
    for port in 47410..=47413 {
        door.udp_on(port);
    }
    let file = profiles(&format!(
        "[profiles.once]\nhost = \"{HOST}\"\none_time_sequences = \"LIST\"\ndelay = \"20ms\"\n"
    ));
    let list = file.dir.path().join("sequences");
    let original =
        "# spent long ago\n#47400:udp,47401:udp\n 47410:udp,47411:udp\n 47412:udp,47413:udp\n";
    std::fs::write(&list, original).unwrap();
    let text = support::read(&file.path).replace("LIST", &list.display().to_string());
    std::fs::write(&file.path, text).unwrap();

    let output = file.run(&["--dry-run", "--json", "once"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(reported(&output), [47410, 47411], "the first unused line");
    assert_eq!(support::read(&list), original, "a dry run marks nothing");
    assert!(
        door.collect_for(std::time::Duration::from_millis(200))
            .is_empty()
    );

    let output = file.run(&["--json", "once"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let seen: Vec<u16> = door.wait_for(2).iter().map(|a| a.to.port()).collect();
    assert_eq!(seen, [47410, 47411]);
    assert_eq!(
        support::read(&list),
        "# spent long ago\n#47400:udp,47401:udp\n#47410:udp,47411:udp\n 47412:udp,47413:udp\n",
        "the knocked line is marked used, as knockd marks it"
    );

    let output = file.run(&["--json", "once"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(reported(&output), [47412, 47413]);
    let seen: Vec<u16> = door.wait_for(2).iter().map(|a| a.to.port()).collect();
    assert_eq!(seen, [47412, 47413], "the second run knocks the next line");

    let output = file.run(&["once"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let expected = format!(
        "profile `once`: every sequence in {} is used: append new lines",
        list.display()
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[test]
fn every_is_refused_for_a_one_time_profile_and_a_bad_line_names_file_and_line() {
    let file = profiles(&format!(
        "[profiles.once]\nhost = \"{HOST}\"\none_time_sequences = \"LIST\"\n"
    ));
    let list = file.dir.path().join("sequences");
    std::fs::write(&list, " 47410:udp\n").unwrap();
    let text = support::read(&file.path).replace("LIST", &list.display().to_string());
    std::fs::write(&file.path, text).unwrap();
    let output = file.run(&["--every", "1s", "once"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--every would repeat a used one"),
        "{output:?}"
    );
    assert_eq!(support::read(&list), " 47410:udp\n");

    std::fs::write(&list, "#used\n 47410:udp,99999\n").unwrap();
    let output = file.run(&["once"]);
    assert_eq!(output.status.code(), Some(2));
    let expected = format!("{}:2: port 99999 is out of range", list.display());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&expected),
        "{output:?}"
    );
}
