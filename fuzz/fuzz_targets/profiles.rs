//! The client's profiles file loader (`Profiles::parse`), then what the client
//! does next with a loaded file: expand every profile into the hosts to knock
//! and, for time-based profiles, derive a sequence from the loaded spec.

#![no_main]

use std::path::Path;

use knockr::config::profiles::{Profile, Profiles, Sequence};
use knockr_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let profiles = match Profiles::parse(Path::new("profiles.toml"), text) {
        Ok(profiles) => profiles,
        Err(err) => {
            let message = err.to_string();
            assert!(!message.contains('\n'), "not one line: {message}");
            assert!(message.starts_with("profiles.toml"), "{message}");
            if let Some((line, col)) = err.position {
                assert!(line >= 1 && col >= 1, "{message}");
                assert!(line <= text.split('\n').count(), "{message}");
            }
            return;
        }
    };
    for name in profiles.profiles.keys() {
        let members = profiles
            .members(std::slice::from_ref(name))
            .expect("a loaded profile expands");
        assert!(!members.is_empty(), "profile {name:?} knocks no host");
        for member in &members {
            assert!(
                matches!(profiles.profiles[&member.profile], Profile::Hosts { .. }),
                "group {:?} knocked as hosts",
                member.profile
            );
            assert!(!member.host.trim().is_empty());
            match &member.sequence {
                Sequence::Fixed(knocks) => {
                    assert!(!knocks.is_empty(), "profile {name:?} knocks nothing");
                    assert!(knocks.iter().all(|k| k.port != 0));
                }
                // The file is read when the profile is knocked, never at load time.
                Sequence::OneTime(_) => {}
                Sequence::Otp(otp) => {
                    let spec = &otp.spec;
                    let knocks = spec.sequence(&[7; 20], &otp.door, 1);
                    assert_eq!(knocks.len(), spec.length());
                    for (i, knock) in knocks.iter().enumerate() {
                        assert!((spec.low()..=spec.high()).contains(&knock.port));
                        assert!(!spec.avoid().contains(&knock.port));
                        assert!(spec.protos().contains(&knock.proto));
                        assert!(knocks[..i].iter().all(|k| k.port != knock.port));
                    }
                }
            }
        }
    }
});
